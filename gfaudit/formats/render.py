"""Render a CheckResult as text, JSON (schema_version 1) or SARIF 2.1.0 for code-scanning uploads.

Kept for callers of the first API; the formats themselves live in ``gfaudit.formats``.
"""

from __future__ import annotations

from gfaudit import formats
from gfaudit.audit.check import CheckResult
from gfaudit.formats import json as _json_fmt, sarif as _sarif_fmt, text as _text_fmt

SCHEMA_VERSION = _json_fmt.SCHEMA_VERSION
FORMATS = formats.COMMANDS["check"]


def to_json(result: CheckResult, pubkey_source: str | None = None) -> dict:
    return _json_fmt.check_doc(result, pubkey_source)


def to_text(result: CheckResult, pubkey_source: str | None = None) -> str:
    return _text_fmt.check(result, pubkey_source)


def to_sarif(result: CheckResult, pubkey_source: str | None = None) -> dict:
    return _sarif_fmt.check_doc(result, pubkey_source)


def render(result: CheckResult, fmt: str, pubkey_source: str | None = None) -> str:
    return formats.render_check(fmt, result, pubkey_source)
