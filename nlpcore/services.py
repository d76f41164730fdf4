"""The Qt-free API the GUI and the CLI call.

Each service turns plain Python values into small frozen records; none of
them imports Qt, and none imports Keras before its first model is loaded.

* :class:`Sentiment` — ``predict(texts) -> list[SentimentResult]``
* :class:`Translator` — ``translate(text, options) -> Translation``
* :class:`Generator` — ``stream(prompt, options, cancel) -> Iterator[GeneratedPiece]``
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# ====================================================================== sentiment
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class WordContribution:
    """How much one word moved the prediction.

    start, end: character offsets of the word in the input text.
    score: change in P(positive) the word is responsible for (positive values
        push towards "positive"), measured by leaving the word out.
    """

    word: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class SentimentResult:
    """One classified text.

    label: ``"positive"`` or ``"negative"``; score: P(positive).
    probabilities: probability of each label.
    language: ``"ko"`` (Hangul), ``"en"`` (Latin), ``"mixed"`` or ``"unknown"``.
    model: name of the package that answered.
    contributions: one entry per whitespace-separated word, in order.
    error: set (and the rest empty) when the text could not be classified.
    """

    text: str
    label: str = ""
    score: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    language: str = "unknown"
    model: str = ""
    contributions: tuple[WordContribution, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"text": self.text, "error": self.error}
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "model": self.model,
            "language": self.language,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "contributions": [[c.word, round(c.score, 4)] for c in self.contributions],
        }


# ====================================================================== translation
@dataclass(frozen=True)
class TranslateOptions:
    """How a sentence is decoded (the GUI's options panel and the CLI flags)."""

    beam_size: int = 5  # 1 = greedy search
    n_best: int = 1  # hypotheses returned, best first (≤ beam_size)
    length_penalty: float = 0.6  # GNMT alpha; 0 disables length normalisation
    max_length_ratio: float = 2.0  # target pieces allowed per source piece (+ 10)
    no_repeat_ngram: int = 3  # block repeating any n-gram of this size (0 = off)
    replace_unknown: bool = True  # copy the most-attended source piece for <unk>

    def __post_init__(self):
        if self.beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise ValueError("n_best must be between 1 and beam_size")
        if self.max_length_ratio <= 0:
            raise ValueError("max_length_ratio must be positive")


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation.

    score: length-normalised log-probability (higher is better).
    pieces: target SentencePiece pieces, [T_tgt].
    attention: [T_tgt, T_src] weights over the source pieces (rows sum to 1).
    """

    text: str
    score: float
    pieces: tuple[str, ...] = ()
    attention: Any = None  # numpy array [T_tgt, T_src]


@dataclass(frozen=True)
class Translation:
    """The result of translating one text (possibly several sentences).

    hypotheses: n-best list, best first; for multi-sentence input the text of
        each is the sentence translations joined with the input's layout.
    source_pieces: [T_src] pieces of the (first) source sentence, for the heatmap.
    timings: seconds spent per stage (``encode``, ``search``, ``total``).
    """

    source: str
    src_lang: str
    tgt_lang: str
    hypotheses: tuple[Hypothesis, ...]
    source_pieces: tuple[str, ...] = ()
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""


# ====================================================================== generation
SAMPLERS = ("greedy", "temperature", "top_k", "top_p")


@dataclass(frozen=True)
class GenerateOptions:
    """How text is sampled (the GUI's options panel and the CLI flags)."""

    max_new_tokens: int = 200
    sampler: str = "top_p"  # one of SAMPLERS
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.1  # >1 discourages pieces already generated
    seed: int | None = None  # same seed, same prompt, same options → same text
    stop: tuple[str, ...] = ()  # stop strings (not included in the output)

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive (use the greedy sampler for argmax)")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0 or self.repetition_penalty <= 0:
            raise ValueError("top_k must be ≥ 0 and repetition_penalty > 0")


@dataclass(frozen=True)
class GeneratedPiece:
    """A run of whole characters ready to show, and the tokens behind it.

    text: decoded text (never a broken UTF-8 sequence or half a syllable).
    token_ids: the pieces this text came from (one or more).
    probabilities: the sampled probability of each of those pieces.
    """

    text: str
    token_ids: tuple[int, ...]
    probabilities: tuple[float, ...]


class CancelFlag:
    """Set from any thread to stop a running generation between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


__all__ = [
    "LABELS",
    "WordContribution",
    "SentimentResult",
    "TranslateOptions",
    "Hypothesis",
    "Translation",
    "SAMPLERS",
    "GenerateOptions",
    "GeneratedPiece",
    "CancelFlag",
]
