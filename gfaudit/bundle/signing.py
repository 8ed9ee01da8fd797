"""Re-signing a bundle (key rotation, a new threshold) and reading a signed payload unverified.

Both start from a bundle already on disk. ``resign`` re-hashes the tensors from the file, so the new
envelope covers what is really there; ``peek_predicate`` is for display (``inspect --unverified``)
and for ``sign --unverified``, where the signer vouches for contents nobody has verified.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from gfaudit.bundle import container as bundle_io, manifest as mf
from gfaudit.bundle.container import parse_payload, read_envelope, sig_path
from gfaudit.bundle.manifest import parse_statement
from gfaudit.errors import IntegrityError
from gfaudit.files import strict_json

__all__ = ["peek_predicate", "resign"]


def resign(bundle: Path, private_key, verifying_key=None, threshold: float | None = None) -> None:
    """Sign ``bundle`` again with ``private_key``: verified first with ``verifying_key`` (None: unverified,
    the caller vouches), tensors re-hashed from the file, the threshold replaced if given."""
    if verifying_key is None:
        predicate: object = peek_predicate(bundle)
        data = bundle_io.read_data(bundle)
    else:
        _, predicate, data = bundle_io.verify_statement(bundle, verifying_key)
    manifest = mf.parse(predicate).raw
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise IntegrityError(
            f"{bundle}: not a readable safetensors file ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
        ) from None
    missing = [n for n in mf.REQUIRED_TENSORS if n not in tensors]
    if missing:
        raise IntegrityError(f"{bundle}: tensor(s) {', '.join(missing)} missing")
    manifest["tensors"] = {n: bundle_io.tensor_entry(tensors[n]) for n in mf.REQUIRED_TENSORS}
    if threshold is not None:
        manifest["scoring"]["threshold"] = mf.decimal_string(threshold)
    mf.parse(manifest)
    bundle_io.write_signed(bundle, data, manifest, private_key)


def peek_predicate(bundle: Path) -> dict:
    """Decode the signed payload WITHOUT verifying it; only for display or explicit --unverified use."""
    env = strict_json.loads(read_envelope(bundle), f"{sig_path(bundle)}", IntegrityError)
    try:
        if not isinstance(env, dict):
            raise TypeError
        payload = base64.b64decode(env["payload"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise IntegrityError(f"{sig_path(bundle)}: not a readable DSSE envelope") from None
    predicate = parse_statement(parse_payload(payload))[1]
    if not isinstance(predicate, dict):
        raise IntegrityError(f"{sig_path(bundle)}: the signed statement holds no manifest")
    return predicate
