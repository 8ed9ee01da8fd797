"""Ed25519 owner keys: generation, loading, and where the verifying key comes from.

The verifying public key always comes from the user (flag, ``GFAUDIT_PUBKEY`` or the config file),
never from a bundle: a bundle that named its own key would vouch for itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli distribution
    import tomli as tomllib  # type: ignore[no-redef, unused-ignore]  # needed only where mypy targets 3.11+

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gfaudit.errors import KeyFileError, UsageError
from gfaudit.files.atomic import write_bytes_atomic
from gfaudit.files.config import config_path
from gfaudit.files.safe_read import MAX_CONFIG_BYTES, MAX_KEY_BYTES, read_regular

__all__ = [
    "PASSWORD_ENV",
    "PUBKEY_ENV",
    "config_path",
    "generate",
    "key_files",
    "keyid",
    "load_private",
    "load_public",
    "parse_public",
    "raw_public",
    "resolve_public",
]

PASSWORD_ENV = "GFAUDIT_KEY_PASSWORD"
PUBKEY_ENV = "GFAUDIT_PUBKEY"


_EMPTY_PASSWORD = (
    f"{PASSWORD_ENV} is set but empty (an undefined CI secret?): set the passphrase, or unset "
    "the variable to use an unencrypted key"
)


def _password(writing: bool = False) -> bytes | None:
    """The passphrase from GFAUDIT_KEY_PASSWORD, or None when the variable is unset or empty. Set but
    empty (a CI secret that is not defined expands to "") is refused when writing a key: the key
    would silently be unencrypted, which is never what someone who set the variable meant."""
    pw = os.environ.get(PASSWORD_ENV)
    if pw is None or (not pw and not writing):
        return None
    if not pw:
        raise KeyFileError(_EMPTY_PASSWORD)
    return pw.encode("utf-8")


def generate(out_dir: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """Write ``owner.key`` (PKCS#8 PEM, mode 0600, encrypted when GFAUDIT_KEY_PASSWORD is set) and ``owner.pub``."""
    out = Path(out_dir)
    key_path, pub_path = out / "owner.key", out / "owner.pub"
    if not force and (key_path.exists() or pub_path.exists()):
        raise UsageError(f"{key_path} or {pub_path} already exists; pass --force to replace them")
    pw = _password(writing=True)  # before anything is written: an empty one is refused
    key = Ed25519PrivateKey.generate()
    enc = serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_bytes_atomic(key_path, priv, mode=0o600)
    write_bytes_atomic(pub_path, pub, mode=0o644)
    return key_path, pub_path


def _read_key_file(path: str | os.PathLike) -> bytes:
    return read_regular(path, MAX_KEY_BYTES, "key file", KeyFileError)


def load_private(path: str | os.PathLike) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    pw = _password()
    try:
        key = serialization.load_pem_private_key(data, password=pw)
    except TypeError:
        if pw is None:
            if os.environ.get(PASSWORD_ENV) == "":
                raise KeyFileError(f"{path}: the key is encrypted and {_EMPTY_PASSWORD}") from None
            raise KeyFileError(f"{path}: the key is encrypted; set {PASSWORD_ENV}") from None
        # A password was given for a key that is not encrypted: the key needs none, so load it as is.
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (TypeError, ValueError):
            raise KeyFileError(f"{path}: not a PEM private key") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key, or wrong {PASSWORD_ENV}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def parse_public(pem: bytes, origin: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise KeyFileError(f"{origin}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{origin}: not an Ed25519 public key")
    return key


def load_public(path: str | os.PathLike) -> Ed25519PublicKey:
    return parse_public(_read_key_file(path), str(path))


def resolve_public(flag: str | None) -> tuple[Ed25519PublicKey, str]:
    """The verifying key and where it came from: --pubkey, then GFAUDIT_PUBKEY (a path or PEM text), then config."""
    if flag:
        return load_public(flag), str(flag)
    env = os.environ.get(PUBKEY_ENV)
    if env:
        if env.lstrip().startswith("-----BEGIN"):
            return parse_public(env.encode("utf-8"), f"${PUBKEY_ENV}"), f"${PUBKEY_ENV}"
        return load_public(env), env
    cfg = config_path()
    if cfg.exists():
        try:
            value = tomllib.loads(read_regular(cfg, MAX_CONFIG_BYTES, "config file", UsageError).decode("utf-8")).get(
                "pubkey"
            )
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{cfg}: not valid TOML ({str(exc).splitlines()[0][:200] if str(exc) else exc})") from None
        except RecursionError:  # tomllib recurses per nesting level: [[[[...]]]] exhausts the stack
            raise UsageError(f"{cfg}: not valid TOML (nested too deeply)") from None
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            if not path.is_absolute():
                path = cfg.parent / path
            return load_public(path), str(path)
    raise UsageError(f"no public key: pass --pubkey owner.pub, set {PUBKEY_ENV}, or set pubkey in {cfg}")


def key_files(flag: str | None) -> list[Path]:
    """Every file the verifying key may be read from for this ``--pubkey`` (flag, GFAUDIT_PUBKEY,
    the config file and the key it names), without loading any: inputs no report may overwrite."""
    files = [Path(v) for v in (flag, os.environ.get(PUBKEY_ENV)) if v and "-----BEGIN" not in v]
    cfg = config_path()
    files.append(cfg)
    try:
        value = tomllib.loads(read_regular(cfg, MAX_CONFIG_BYTES, "config file", UsageError).decode("utf-8")).get(
            "pubkey"
        )
    except (UsageError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        value = None
    if isinstance(value, str) and value:
        named = Path(value).expanduser()
        files.append(named if named.is_absolute() else cfg.parent / named)
    return files


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid(key: Ed25519PublicKey) -> str:
    """A label for the signature (sha256 of the raw public key); informational, never trusted."""
    return hashlib.sha256(raw_public(key)).hexdigest()
