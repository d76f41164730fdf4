"""Text coloured by what the model made of it, as rich text for a ``QLabel``.

* Sentiment: each word's background is green (pushes towards positive) or red
  (towards negative), stronger for a larger contribution.
* Generation: each piece's background goes from red (unlikely) to clear
  (likely), from the probability it was sampled with.
"""

from __future__ import annotations

import html
from typing import Sequence

POSITIVE_RGB = (31, 157, 85)
NEGATIVE_RGB = (214, 69, 69)
LOW_PROB_RGB = (230, 120, 40)


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _span(text: str, rgb: tuple[int, int, int], alpha: float, title: str) -> str:
    a = max(0.0, min(alpha, 1.0))
    if a < 0.04:
        return _escape(text)
    r, g, b = rgb
    return (f'<span style="background-color: rgba({r},{g},{b},{round(a * 255)}); border-radius: 3px;" '
            f'title="{html.escape(title)}">{_escape(text)}</span>')


def contribution_html(text: str, contributions: Sequence[Sequence], scale: float | None = None) -> str:
    """``text`` with each word's span coloured by its contribution.

    contributions: [word, start, end, score] with character offsets into ``text``;
    scale: the score drawn at full strength (default: the largest |score|).
    """
    if not contributions:
        return _escape(text)
    top = scale or max((abs(c[3]) for c in contributions), default=0.0) or 1.0
    out, pos = [], 0
    for word, start, end, score in sorted(contributions, key=lambda c: c[1]):
        if start < pos or end > len(text):
            continue
        out.append(_escape(text[pos:start]))
        rgb = POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
        out.append(_span(text[start:end], rgb, 0.85 * abs(score) / top, f"{score:+.3f}"))
        pos = end
    out.append(_escape(text[pos:]))
    return "".join(out)


def probability_html(pieces: Sequence[Sequence]) -> str:
    """Generated pieces ([text, probability, ...]) with unlikely ones highlighted."""
    return "".join(_span(p[0], LOW_PROB_RGB, 0.75 * (1.0 - float(p[1])), f"p = {float(p[1]):.2f}") for p in pieces)


def plain_html(text: str) -> str:
    return _escape(text)
