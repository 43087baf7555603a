"""Text that can be stored and shown: repaired, bounded, and inert on a terminal.

Text reaches dagflow from users' code (log lines, exception messages, parameter values) and can
hold anything: lone surrogates from `os.fsdecode` of undecodable file names (no database or wire
encoding accepts them), NUL characters (PostgreSQL refuses them), megabytes in one line, or
terminal escape sequences. These functions make such text safe without losing what it says:

- `storable` repairs what an encoding refuses (`\\udcff` -> `\\\\udcff`, NUL -> `\\\\x00`);
- `bounded` cuts text to a size with a visible marker saying how much was cut;
- `inert` escapes control characters (keeping newlines and tabs) before text reaches a terminal.

Each is cheap on ordinary text (an `isascii`/`isprintable`-style check first).
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def storable(text: str) -> str:
    """`text` with what UTF-8 or PostgreSQL cannot take replaced by its escape."""
    if text.isascii():
        return text.replace("\x00", "\\x00") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def bounded(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with a marker of how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    marker = f"... [{cut:,} more characters cut]"
    keep = max(0, limit - len(marker))
    return text[:keep] + marker[: limit - keep]


def inert(text: str) -> str:
    """`text` safe to print: control characters (escape sequences, bells) shown escaped."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
