"""Text coloured by what the model made of it, as rich text for a ``QLabel``.

* Sentiment: each word's background is green (pushes towards positive) or red
  (towards negative), stronger for a larger contribution.
* Generation: each piece's background goes from orange (unlikely) to clear
  (likely), from the probability it was sampled with.

Strengths are rounded to a few levels and equal neighbours merged, so even a
long reply is a handful of spans.
"""

from __future__ import annotations

import html
from typing import Sequence

POSITIVE_RGB = (31, 157, 85)
NEGATIVE_RGB = (214, 69, 69)
LOW_PROB_RGB = (230, 120, 40)


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


LEVELS = 6  # colour strengths: few distinct ones keep the rich text small and fast to lay out


def _level(alpha: float) -> int:
    return round(max(0.0, min(alpha, 1.0)) * LEVELS)


def _span(text: str, rgb: tuple[int, int, int], level: int) -> str:
    if level <= 0:
        return _escape(text)
    r, g, b = rgb
    return f'<span style="background-color: rgba({r},{g},{b},{round(255 * level / LEVELS)});">{_escape(text)}</span>'


def _runs(parts: Sequence[tuple[str, tuple[int, int, int], int]]) -> str:
    """Adjacent parts of the same colour and strength merged into one span."""
    out: list[str] = []
    text, key = "", None
    for part, rgb, level in parts:
        k = (rgb, level) if level > 0 else None
        if k == key:
            text += part
            continue
        if text:
            out.append(_span(text, *key) if key else _escape(text))
        text, key = part, k
    if text:
        out.append(_span(text, *key) if key else _escape(text))
    return "".join(out)


def contribution_html(text: str, contributions: Sequence[Sequence], scale: float | None = None) -> str:
    """``text`` with each word's span coloured by its contribution.

    contributions: [word, start, end, score] with character offsets into ``text``;
    scale: the score drawn at full strength (default: the largest |score|).
    """
    if not contributions:
        return _escape(text)
    top = scale or max((abs(c[3]) for c in contributions), default=0.0) or 1.0
    parts, pos = [], 0
    for word, start, end, score in sorted(contributions, key=lambda c: c[1]):
        if start < pos or end > len(text):
            continue
        parts.append((text[pos:start], POSITIVE_RGB, 0))
        parts.append((text[start:end], POSITIVE_RGB if score >= 0 else NEGATIVE_RGB, _level(0.85 * abs(score) / top)))
        pos = end
    parts.append((text[pos:], POSITIVE_RGB, 0))
    return _runs(parts)


def probability_html(pieces: Sequence[Sequence]) -> str:
    """Generated pieces ([text, probability, ...]) with unlikely ones highlighted."""
    return _runs([(p[0], LOW_PROB_RGB, _level(0.75 * (1.0 - float(p[1])))) for p in pieces])


def plain_html(text: str) -> str:
    return _escape(text)
