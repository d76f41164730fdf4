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
from typing import Any, Sequence

import numpy as np

from .text import count_scripts, squeeze_spaces, strip_invisible, word_spans

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
DEFAULT_LENGTH_PENALTY = 0.6  # GNMT alpha of a model whose package names none


@dataclass(frozen=True)
class TranslateOptions:
    """How a sentence is decoded (the GUI's options panel and the CLI flags)."""

    beam_size: int = 5  # 1 = greedy search
    n_best: int = 1  # hypotheses returned at most, best first (≤ beam_size; fewer when fewer finished or reranked)
    length_penalty: float | None = None  # GNMT alpha (0: no length normalisation); None: the model's own
    max_length_ratio: float = 2.0  # target pieces allowed per source piece (+ 10)
    no_repeat_ngram: int = 3  # block repeating any n-gram of this size (0 = off)
    replace_unknown: bool = True  # copy the most-attended source piece for <unk>
    copy_numbers: bool = True  # write each output number as the source number it attends to most
    # When a beam search stops: "current" (no alive beam beats the best finished one at its next length)
    # or "exact" (at no reachable length); see nlpcore.decoding.beam_search.
    stopping: str = "current"
    # Weight of log P(source | hypothesis) under the reverse-direction model when the beam's hypotheses are
    # reranked (noisy channel); None: the model's own (0 when it has no such model), 0: no reranking.
    channel_weight: float | None = None

    def __post_init__(self):
        if self.beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise ValueError("n_best must be between 1 and beam_size")
        if self.length_penalty is not None and self.length_penalty < 0:
            raise ValueError("length_penalty must be 0 or more")
        if self.max_length_ratio <= 0:
            raise ValueError("max_length_ratio must be positive")
        if self.channel_weight is not None and self.channel_weight < 0:
            raise ValueError("channel_weight must be 0 or more")
        from .decoding.search import BEAM_STOPPING

        if self.stopping not in BEAM_STOPPING:
            raise ValueError(f"stopping must be one of {', '.join(BEAM_STOPPING)}, not {self.stopping!r}")


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation.

    score: length-normalised log-probability (higher is better), plus the
        weighted log P(source | hypothesis) when the hypotheses were reranked.
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
    source_pieces: [T_src] pieces of every source sentence in order; each
        hypothesis' attention is block-diagonal over them (one block per sentence).
    timings: seconds spent per stage (``encode``, ``search``, ``rerank``, ``total``).
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
    "Sentiment",
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


# ====================================================================== services
class _ClassifierRunner:
    """One loaded sentiment package: tokenizer + NumPy forward pass (Keras fallback);
    an ensemble package averages its members' probabilities."""

    NUMPY_MAX_BATCH = 64  # up to this many rows (one text and its occlusions) in NumPy

    def __init__(self, package):
        from .inference import NumpyClassifier
        from .train.sentiment import SentimentTrainConfig, member_name

        config = package.config(SentimentTrainConfig)
        self.name = package.card.name
        self.language = package.card.languages[0] if package.card.languages else ""
        self.config = config.model
        self.tokenizer = package.tokenizer()
        self.keras_models = [package.load_model(member_name(i)) for i in range(config.ensemble)]
        self.keras_model = self.keras_models[0]  # the benchmark's naive path calls it
        if self.config.encoder in NumpyClassifier.SUPPORTED:
            self._numpy = [NumpyClassifier(m, self.config) for m in self.keras_models]
        else:  # conv front ends have no NumPy twin: always through Keras
            self._numpy = None

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """[B, T] ids → [B, C] probabilities, averaged over the ensemble members.

        Small batches (interactive use) run in NumPy; large ones through each
        Keras model's compiled predict function, padded to a multiple of 16 so
        only a few shapes are ever compiled.
        """
        if self._numpy is not None and len(ids) <= self.NUMPY_MAX_BATCH:
            from .inference import blas_threads

            with blas_threads(1):
                return np.mean([member(ids) for member in self._numpy], axis=0)
        width = -(-ids.shape[1] // 16) * 16
        ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])))
        return np.mean([np.asarray(m.predict_on_batch(ids)) for m in self.keras_models], axis=0)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Piece ids of each text, before truncation."""
        return self.tokenizer.encode(list(texts))

    def clip(self, sequence: Sequence) -> list:
        from .models.classifier import clip

        return clip(self.config, sequence)

    def probabilities(self, sequences: Sequence[Sequence[int]], batch_size: int = 512) -> np.ndarray:
        """[N, C] class probabilities, batching sequences of similar length."""
        from .inference import pad_batch

        out = np.zeros((len(sequences), self.config.num_classes), dtype=np.float32)
        order = np.argsort([len(s) for s in sequences], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._forward(pad_batch([sequences[i] for i in rows]))
        return out

    def contributions(self, text: str, ids: list[int], score: float, max_spans: int = 48) -> tuple[WordContribution, ...]:
        """Occlusion: how much P(positive) drops when each word is left out.

        text: the original text (offsets refer to it); ids: its whole encoding
        (whitespace-separated words map one-to-one to the tokenizer's words);
        words that truncation cut off get a contribution of 0.

        Long texts are occluded in spans of consecutive words (at most
        ``max_spans`` variants, one batch); each word then gets its span's
        change divided by the span length.
        """
        spans = word_spans(text)
        piece_word = self.clip(self.tokenizer.piece_words(ids))
        ids = self.clip(ids)
        scores = [0.0] * len(spans)
        present = sorted(set(piece_word))
        if present and spans:
            present = [w for w in present if w < len(spans)]
            width = -(-len(present) // max_spans)
            groups = [present[start : start + width] for start in range(0, len(present), width)]
            variants = [[i for i, w in zip(ids, piece_word) if w not in group] for group in map(set, groups)]
            positive = self.probabilities(variants)[:, 1]
            for group, p in zip(groups, positive):
                for w in group:
                    scores[w] = float(score - p) / len(group)
        return tuple(WordContribution(word, start, end, s) for (word, start, end), s in zip(spans, scores))


class Sentiment:
    """Positive/negative classification of Korean and English text.

    ``model="auto"`` routes each text by script (Hangul → ``sentiment-ko``,
    Latin → ``sentiment-en``; mixed text goes to the majority script, Hangul
    syllables weighted ×3); a text in a language with no installed model goes
    to the other model.
    """

    MODEL_FOR_LANGUAGE = {"ko": "sentiment-ko", "en": "sentiment-en"}

    def __init__(self, runners: Sequence[_ClassifierRunner]):
        if not runners:
            raise ValueError("a Sentiment service needs at least one model")
        self._runners = {r.name: r for r in runners}

    @classmethod
    def load(cls, names: Sequence[str] = ("sentiment-ko", "sentiment-en")) -> "Sentiment":
        """Load the named installed packages; missing ones are skipped, none at all is an error."""
        from .packages import PackageError, find_package, load_package

        runners, errors = [], []
        for name in names:
            try:
                runners.append(_ClassifierRunner(load_package(find_package(name))))
            except PackageError as exc:
                errors.append(str(exc))
        if not runners:
            raise PackageError("no sentiment model could be loaded: " + "; ".join(errors))
        return cls(runners)

    @property
    def models(self) -> list[str]:
        return list(self._runners)

    def _route(self, language: str, model: str) -> _ClassifierRunner:
        if model != "auto":
            if model not in self._runners:
                from .packages import PackageError

                raise PackageError(f"sentiment model {model!r} is not installed (installed: {', '.join(self._runners)})")
            return self._runners[model]
        preferred = self.MODEL_FOR_LANGUAGE.get(language)
        if preferred in self._runners:
            return self._runners[preferred]
        return next(iter(self._runners.values()))

    def predict(self, texts: Sequence[str], model: str = "auto", explain: bool = True) -> list[SentimentResult]:
        """Classify each text; the result list has one entry per input, in order.

        Empty or non-text inputs give a result with ``error`` set. With
        ``explain``, each result carries per-word contributions.
        """
        results: list[SentimentResult | None] = [None] * len(texts)
        groups: dict[str, list[tuple[int, str, str]]] = {}
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                results[index] = SentimentResult(text=repr(text), error="not a text")
                continue
            clean = squeeze_spaces(strip_invisible(text))
            if not clean:
                results[index] = SentimentResult(text=text, error="empty text")
                continue
            counts = count_scripts(clean)
            runner = self._route(counts.majority, model)
            groups.setdefault(runner.name, []).append((index, clean, counts.language))
        for name, items in groups.items():
            runner = self._runners[name]
            sequences = runner.encode([clean for _, clean, _ in items])
            probs = runner.probabilities([runner.clip(ids) for ids in sequences])
            for (index, clean, language), ids, p in zip(items, sequences, probs):
                score = float(p[1])
                results[index] = SentimentResult(
                    text=texts[index],
                    label=LABELS[int(p.argmax())],
                    score=score,
                    probabilities={label: float(v) for label, v in zip(LABELS, p)},
                    language=language,
                    model=name,
                    contributions=runner.contributions(texts[index], ids, score) if explain else (),
                )
        return results  # type: ignore[return-value]


def __getattr__(name: str):
    """``Translator`` and ``Generator`` live in their own modules; importing them
    from here loads those modules on first use."""
    if name == "Translator":
        from .translation import Translator

        return Translator
    if name == "Generator":
        from .generation import Generator

        return Generator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
