"""Text helpers shared by the services: script detection and word spans."""

from __future__ import annotations

import re
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


def squeeze_spaces(text: str) -> str:
    """Collapse every run of whitespace into one space (what the tokenizer sees)."""
    return " ".join(text.split())
