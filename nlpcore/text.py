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


def invisible(code: int) -> bool:
    """Whether a character shows nothing and carries no text: a Unicode format
    character (byte-order mark, zero-width space, direction marks, soft hyphen)
    other than :data:`EMOJI_JOINERS`, or an ASCII control character other than
    whitespace. The C1 controls (U+0080-U+009F) stay: in real text they are
    Windows-1252 punctuation read as Latin-1 (IMDB's dashes and quotes), which
    the models learnt as byte pieces between words."""
    if code < 0x20 or code == 0x7F:
        return not chr(code).isspace()
    return code not in EMOJI_JOINERS and unicodedata.category(chr(code)) == "Cf"


@functools.cache
def _invisible_pattern() -> re.Pattern[str]:
    """A character class of every :func:`invisible` character, read from the
    running Python's Unicode database on first use (about 0.2 s)."""
    codes = [c for c in range(sys.maxunicode + 1) if invisible(c)]
    ranges, start = [], 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[i - 1] + 1:
            first, last = re.escape(chr(codes[start])), re.escape(chr(codes[i - 1]))
            ranges.append(first if start == i - 1 else f"{first}-{last}")
            start = i
    return re.compile(f"[{''.join(ranges)}]")


def strip_invisible(text: str) -> str:
    """``text`` without its :func:`invisible` characters."""
    if text.isprintable():  # printable text has none (nor a newline)
        return text
    return _invisible_pattern().sub("", text)


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace and :func:`invisible`
    characters (cheap, for the GUI thread: it stops at the first visible one)."""
    return all(ch.isspace() or invisible(ord(ch)) for ch in text)


def squeeze_spaces(text: str) -> str:
    """Collapse every run of whitespace into one space (what the tokenizer sees)."""
    return " ".join(text.split())
