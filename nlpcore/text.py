"""Text helpers shared by the services: script detection, word spans, invisible characters."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


def is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def is_latin(ch: str) -> bool:
    code = ord(ch)
    return ("a" <= ch.lower() <= "z") or (0x00C0 <= code <= 0x024F and ch.isalpha())


HANGUL_WEIGHT = 3  # a Hangul syllable carries about as much text as three Latin letters


@dataclass(frozen=True)
class ScriptCounts:
    """Letters of each script in a text (Hangul syllables and jamo; Latin letters)."""

    hangul: int
    latin: int

    @property
    def language(self) -> str:
        """``"ko"``, ``"en"``, ``"mixed"`` (both scripts, the smaller holding ≥ 25 % of
        the weighted letters) or ``"unknown"`` (no letters of either)."""
        ko, en = self.hangul * HANGUL_WEIGHT, self.latin
        if ko + en == 0:
            return "unknown"
        if min(ko, en) >= 0.25 * (ko + en):
            return "mixed"
        return "ko" if ko > en else "en"

    @property
    def majority(self) -> str:
        """The script with more weighted letters (Hangul wins ties); ``"unknown"`` when there are none."""
        if self.hangul + self.latin == 0:
            return "unknown"
        return "ko" if self.hangul * HANGUL_WEIGHT >= self.latin else "en"


def count_scripts(text: str) -> ScriptCounts:
    return ScriptCounts(sum(map(is_hangul, text)), sum(map(is_latin, text)))


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for each whitespace-separated word."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


# Kept although invisible: they join emoji into one picture (family, flags).
EMOJI_JOINERS = {0x200D} | set(range(0xE0020, 0xE0080))


@functools.cache
def _invisible() -> re.Pattern[str]:
    """Characters that show nothing and carry no text: Unicode format characters
    (byte-order mark, zero-width space, direction marks, soft hyphen) except
    :data:`EMOJI_JOINERS`, and the ASCII control characters other than
    whitespace. The C1 controls (U+0080-U+009F) stay: in real text they are
    Windows-1252 punctuation read as Latin-1 (IMDB's dashes and quotes), which
    the models learnt as byte pieces between words. Read from the running
    Python's Unicode database once (about 0.2 s)."""
    codes = [c for c in range(sys.maxunicode + 1) if c not in EMOJI_JOINERS and (
             unicodedata.category(chr(c)) == "Cf" or ((c < 0x20 or c == 0x7F) and not chr(c).isspace()))]
    ranges, start = [], 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[i - 1] + 1:
            first, last = re.escape(chr(codes[start])), re.escape(chr(codes[i - 1]))
            ranges.append(first if start == i - 1 else f"{first}-{last}")
            start = i
    return re.compile(f"[{''.join(ranges)}]")


def strip_invisible(text: str) -> str:
    """``text`` without its invisible characters (see :func:`_invisible`)."""
    if text.isprintable():  # printable text has none (nor a newline)
        return text
    return _invisible().sub("", text)


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace and invisible characters."""
    return not strip_invisible(text).strip()


def squeeze_spaces(text: str) -> str:
    """Collapse every run of whitespace into one space (what the tokenizer sees)."""
    return " ".join(text.split())
