"""Service results as JSON-ready payloads: what a reply bubble renders and what
the history stores, so a restored conversation looks exactly like a live one.

Qt-free. Every payload is a dict with a ``kind``: ``"sentiment"``,
``"translation"``, ``"generation"`` or ``"error"``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable


def _round(value: float, digits: int = 4) -> float:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else 0.0


def options_payload(options: Any) -> dict[str, Any]:
    """A frozen options dataclass as a plain dict (tuples become lists)."""
    if options is None:
        return {}
    body = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in body.items()}


# ------------------------------------------------------------------ sentiment
def sentiment_payload(result: Any, seconds: float = 0.0) -> dict[str, Any]:
    """A :class:`~nlpcore.services.SentimentResult` as a payload."""
    if getattr(result, "error", None):
        return error_payload(f"{result.error}")
    return {
        "kind": "sentiment",
        "label": result.label,
        "score": _round(result.score, 6),
        "probabilities": {k: _round(v, 6) for k, v in dict(result.probabilities).items()},
        "language": result.language,
        "model": result.model,
        "text": result.text,
        "contributions": [[c.word, int(c.start), int(c.end), _round(c.score)] for c in result.contributions],
        "seconds": _round(seconds),
    }


def sentiment_summary(payload: dict[str, Any]) -> str:
    return f"{payload['label']} ({payload['score']:.2f})"


# ------------------------------------------------------------------ translation
def _matrix(attention: Any, limit: int = 200) -> list[list[float]] | None:
    """[T_tgt, T_src] weights as nested lists, at most ``limit`` × ``limit`` (the heatmap's reach)."""
    if attention is None:
        return None
    return [[_round(v, 3) for v in list(row)[:limit]] for row in list(attention)[:limit]]


def translation_payload(translation: Any, options: Any = None, seconds: float = 0.0) -> dict[str, Any]:
    """A :class:`~nlpcore.services.Translation` as a payload (attention of the best hypothesis only)."""
    hyps = list(translation.hypotheses)
    best = hyps[0] if hyps else None
    return {
        "kind": "translation",
        "text": translation.text,
        "source": translation.source,
        "src": translation.src_lang,
        "tgt": translation.tgt_lang,
        "model": translation.model,
        "hypotheses": [{"text": h.text, "score": _round(h.score), "pieces": list(h.pieces)} for h in hyps],
        "source_pieces": list(translation.source_pieces),
        "attention": _matrix(best.attention) if best is not None else None,
        "timings": {k: _round(v) for k, v in dict(translation.timings).items()},
        "options": options_payload(options),
        "seconds": _round(seconds),
    }


# ------------------------------------------------------------------ generation
def generation_payload(pieces: Iterable[Any], model: str, options: Any = None, seconds: float = 0.0,
                       stopped: bool = False) -> dict[str, Any]:
    """Streamed :class:`~nlpcore.services.GeneratedPiece` records as one payload.

    pieces: [[text, mean probability of its tokens, token count]].
    """
    rows, tokens = [], 0
    for piece in pieces:
        probs = list(piece.probabilities)
        count = max(len(piece.token_ids), 1)
        tokens += len(piece.token_ids)
        rows.append([piece.text, _round(sum(probs) / len(probs)) if probs else 1.0, count])
    return {
        "kind": "generation",
        "text": "".join(r[0] for r in rows),
        "model": model,
        "pieces": rows,
        "tokens": tokens,
        "seconds": _round(seconds),
        "tokens_per_s": _round(tokens / seconds, 2) if seconds > 0 else 0.0,
        "stopped": bool(stopped),
        "options": options_payload(options),
    }


# ------------------------------------------------------------------ errors
def error_payload(message: str) -> dict[str, Any]:
    return {"kind": "error", "text": message, "message": message}


def describe_error(exc: BaseException) -> str:
    """A readable one-line message for an exception raised by model work."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    if isinstance(exc, MemoryError) or "OOM" in text or "out of memory" in text.lower() \
            or name == "ResourceExhaustedError":
        return "Out of memory: try a shorter input, a smaller beam or fewer tokens. " + text[:300]
    if isinstance(exc, (ValueError, TypeError)) and name not in ("PackageError",):
        return text
    return text if name in ("ServiceUnavailable", "PackageError") else f"{name}: {text}"


def reply_text(payload: dict[str, Any]) -> str:
    """The plain text of a reply, for copying and for the message table."""
    if payload.get("kind") == "sentiment":
        return sentiment_summary(payload)
    return str(payload.get("text", ""))
