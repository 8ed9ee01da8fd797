"""DSSE envelopes (https://github.com/secure-systems-lab/dsse): sign and verify with Ed25519.

Verification checks a signature over PAE(payloadType, payload) before anything decodes the payload.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gfaudit.bundle.keys import keyid
from gfaudit.errors import IntegrityError
from gfaudit.files import strict_json

__all__ = ["INTOTO_PAYLOAD_TYPE", "MAX_ENVELOPE_BYTES", "pae", "sign", "verify"]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding, DSSE v1."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign(payload: bytes, key: Ed25519PrivateKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict:
    sig = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}],
    }


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise IntegrityError(f"signature envelope: {what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"signature envelope: {what} is not valid base64") from None


def verify(envelope_bytes: bytes, key: Ed25519PublicKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
    """Return the payload bytes if one signature in the envelope verifies under ``key``; else raise."""
    if len(envelope_bytes) > MAX_ENVELOPE_BYTES:
        raise IntegrityError("signature envelope is too large")
    env = strict_json.loads(envelope_bytes, "signature envelope", IntegrityError)
    if not isinstance(env, dict):
        raise IntegrityError("signature envelope is not a JSON object")
    if env.get("payloadType") != payload_type:
        raise IntegrityError(f"signature envelope: payloadType is not {payload_type}")
    payload = _b64(env.get("payload"), "payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise IntegrityError("signature envelope holds no signature")
    message = pae(payload_type, payload)
    for entry in sigs:
        if not isinstance(entry, dict):
            continue
        try:
            sig = _b64(entry.get("sig"), "sig")
            key.verify(sig, message)
            return payload
        except (InvalidSignature, IntegrityError):
            continue
    raise IntegrityError("bundle signature does not verify with the given public key")
