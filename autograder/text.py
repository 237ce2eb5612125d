"""Student-controlled text made safe where it enters the trusted side.

Printed output, exception messages and type names, file and zip member names: a student chooses
every byte of them. :func:`neutralise` makes control characters visible instead of interpreted
(an escape sequence in a TA's terminal can write the clipboard, retitle the window or clear the
screen), keeping only newline and tab. It is applied once, where the string enters (intake, the
runner's replies and output), so results files, terminals and web pages never carry them; pages
HTML-escape on top.
"""

from __future__ import annotations

import re

# C0 controls except \t and \n, DEL, C1 controls, and the Unicode bidi overrides and isolates
# (which reorder what a reader sees: "Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    ch = match.group(0)
    code = ord(ch)
    if code == 0x1B:
        return "\\e"
    if code == 0x0D:
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` with every control character except newline and tab shown as an escape
    (``\\e``, ``\\r``, ``\\x07``, ``\\u202e``), and lone surrogates (which cannot be encoded)
    as ``\\udXXX``. Idempotent on its own output."""
    if not isinstance(text, str):
        text = str(text)
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return _CONTROL.sub(_visible, text)


def neutralise_name(name: str | bytes) -> str:
    """A file or zip member name as text safe to show: undecodable bytes as ``\\xNN``, and
    newline and tab shown too (a name never holds them, and one that does must not start a
    line of its own in a note, such as a forged "score 36 / 36")."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="backslashreplace")
    return neutralise(name).replace("\n", "\\n").replace("\t", "\\t")
