"""Strict JSON for signed and user-supplied documents: no duplicate keys, no NaN, bounded nesting.

Python's ``json`` keeps the last of two equal keys (so a signer and a reader could disagree on what
was signed), accepts ``NaN``/``Infinity``, and raises ``RecursionError`` on deep nesting. The DSSE
envelope, the signed statement and ``library.json`` are parsed here instead; every failure is
the caller's error class (IntegrityError for the bundle, UsageError for the library).
"""

from __future__ import annotations

import json

from gfaudit.errors import GfauditError

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 64


class _Reject(ValueError):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Reject(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def _constant(name: str):
    raise _Reject(f"non-finite number {name}")


def _depth_ok(doc: object, limit: int) -> bool:
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def loads(data: bytes | str, what: str, error: type[GfauditError], max_depth: int = MAX_DEPTH) -> object:
    """Parse ``data`` strictly; raise ``error`` naming ``what`` on any violation."""
    try:
        doc = json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)
    except _Reject as exc:
        raise error(f"{what}: {exc}") from None
    except RecursionError:
        raise error(f"{what}: nested too deeply (more than {max_depth} levels)") from None
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise error(
            f"{what}: not valid JSON ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
        ) from None
    if not _depth_ok(doc, max_depth):
        raise error(f"{what}: nested too deeply (more than {max_depth} levels)")
    return doc
