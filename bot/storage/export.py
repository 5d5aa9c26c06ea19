"""CSV cells a spreadsheet shows as text: never a formula, never a rounded id.

A cell that (after leading spaces) starts with `=`, `+`, `-` or `@` (or their full-width
forms), or that starts with a tab, carriage return or newline, is run as a formula by
spreadsheet programs; a run of 16 or more digits (a Discord id has 17 to 20) loses its last
digits to floating point. Both get a leading apostrophe, the spreadsheets' own mark for "this
is text". Programs should read the JSONL export instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FORMULA_STARTS = frozenset("=+-@＝＋－＠")
CONTROL_STARTS = frozenset("\t\r\n")
_LONG_NUMBER = re.compile(r"\d{16,}")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text:
        return text
    if (
        text[0] in CONTROL_STARTS
        or text.lstrip()[:1] in FORMULA_STARTS
        or _LONG_NUMBER.fullmatch(text)
    ):
        return "'" + text
    return text


def safe_row(row: Mapping[str, Any]) -> dict[str, str]:
    """A CSV row whose every cell is `safe_cell`."""
    return {name: safe_cell(value) for name, value in row.items()}
