"""Fake model services for tests and ``malbeot --self-test --fake-services``.

They return the same records as the real :mod:`nlpcore.services` (so every
view is exercised as it will be with real models), take a configurable time,
stream generation piece by piece and honour the cancel flag between pieces.
They import neither Qt nor a model framework.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Iterator, Sequence

import numpy as np

from nlpcore.services import (
    LABELS,
    CancelFlag,
    GeneratedPiece,
    GenerateOptions,
    Hypothesis,
    SentimentResult,
    TranslateOptions,
    Translation,
    WordContribution,
)
from nlpcore.text import count_scripts, is_blank, word_spans

from .backends import Backends, ServiceUnavailable

POSITIVE = ("good", "great", "love", "wonderful", "best", "fun", "좋", "최고", "재미", "사랑", "감동")
NEGATIVE = ("bad", "boring", "worst", "awful", "hate", "지루", "최악", "별로", "싫")


def _word_score(word: str) -> float:
    w = word.lower()
    return 0.3 * any(p in w for p in POSITIVE) - 0.3 * any(n in w for n in NEGATIVE)


class FakeSentiment:
    models = ["sentiment-ko", "sentiment-en"]

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[tuple[tuple[str, ...], str]] = []

    def predict(self, texts: Sequence[str], model: str = "auto", explain: bool = True) -> list[SentimentResult]:
        self.calls.append((tuple(texts), model))
        if self.delay:
            time.sleep(self.delay)
        out = []
        for text in texts:
            if is_blank(text):
                out.append(SentimentResult(text=text, error="empty text"))
                continue
            counts = count_scripts(text)
            spans = word_spans(text)
            scores = [_word_score(w) for w, _, _ in spans]
            p = float(min(max(0.5 + sum(scores), 0.02), 0.98))
            name = model if model != "auto" else ("sentiment-ko" if counts.majority == "ko" else "sentiment-en")
            out.append(SentimentResult(
                text=text, label=LABELS[int(p >= 0.5)], score=p,
                probabilities={"negative": 1 - p, "positive": p}, language=counts.language, model=name,
                contributions=tuple(WordContribution(w, s, e, c) for (w, s, e), c in zip(spans, scores)) if explain else (),
            ))
        return out


class FakeTranslator:
    directions = [("en", "fr"), ("fr", "en"), ("ko", "en"), ("en", "ko")]
    models = ["translate-en-fr", "translate-fr-en", "translate-ko-en", "translate-en-ko"]
    WORDS = {"hello": "bonjour", "world": "monde", "i": "je", "love": "aime", "you": "toi", "cat": "chat",
             "the": "le", "is": "est", "good": "bon", "안녕하세요": "hello", "고양이": "cat", "사랑해": "love you"}

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def translate(self, text: str, src: str, tgt: str, options: TranslateOptions = TranslateOptions()) -> Translation:
        if (src, tgt) not in self.directions:
            raise ServiceUnavailable(f"no translation model for {src}→{tgt} is installed")
        if self.delay:
            time.sleep(self.delay)
        source = ["▁" + w for w in text.split()]
        target = ["▁" + self.WORDS.get(w.lower().strip(".,!?"), w[::-1]) for w in text.split()]
        hyps = []
        for k in range(options.n_best):
            pieces = tuple(target if k == 0 else target[::-1] if k == 1 else target + ["▁" + "!" * k])
            n_t, n_s = len(pieces), max(len(source), 1)
            attention = np.full((n_t, n_s), 0.1 / n_s, dtype=np.float32)
            for i in range(n_t):
                attention[i, (i if k == 0 else n_t - 1 - i) % n_s] += 0.9
            hyps.append(Hypothesis(text=" ".join(p[1:] for p in pieces), score=-0.2 - 0.4 * k,
                                   pieces=pieces, attention=attention))
        return Translation(source=text, src_lang=src, tgt_lang=tgt, hypotheses=tuple(hyps),
                           source_pieces=tuple(source), model=f"translate-{src}-{tgt}",
                           timings={"encode": 0.001, "search": self.delay, "total": self.delay + 0.001})


class FakeGenerator:
    models = ["generate-en", "generate-ko"]
    TEXTS = {
        "generate-en": "Shall I compare thee to a summer's day? Thou art more lovely and more temperate: "
                       "rough winds do shake the darling buds of May, and summer's lease hath all too short a date. ",
        "generate-ko": "하늘을 우러러 한 점 부끄럼이 없기를, 잎새에 이는 바람에도 나는 괴로워했다. "
                       "별을 노래하는 마음으로 모든 죽어가는 것을 사랑해야지. ",
    }

    def __init__(self, piece_delay: float = 0.0):
        self.piece_delay = piece_delay
        self.cancelled = threading.Event()

    def stream(self, prompt: str, model: str, options: GenerateOptions = GenerateOptions(),
               cancel: CancelFlag | None = None) -> Iterator[GeneratedPiece]:
        if model not in self.TEXTS:
            raise ServiceUnavailable(f"model {model!r} is not installed")
        if is_blank(prompt):
            raise ValueError("the prompt is empty")
        rng = random.Random(options.seed if options.seed is not None else time.time_ns())
        words = self.TEXTS[model].split(" ")
        start = rng.randrange(len(words))
        for i in range(options.max_new_tokens):
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
                return
            if self.piece_delay:
                time.sleep(self.piece_delay)
            word = words[(start + i) % len(words)]
            yield GeneratedPiece(text=(" " if i else "") + word, token_ids=(i,),
                                 probabilities=(round(rng.uniform(0.05, 0.99), 3),))


def fake_backends(delay: float = 0.0, piece_delay: float = 0.0, load_delay: float = 0.0,
                  missing: Sequence[str] = (), runtime: str = "Fake · CPU") -> Backends:
    """Backends whose services answer after ``delay`` seconds (``piece_delay`` per generated piece).

    missing: tasks whose loader fails as an uninstalled model would.
    """

    def loader(task: str, make):
        def load():
            if load_delay:
                time.sleep(load_delay)
            if task in missing:
                raise ServiceUnavailable(f"no {task} model is installed (fake services)")
            return make()
        return load

    return Backends(
        sentiment=loader("sentiment", lambda: FakeSentiment(delay)),
        translate=loader("translate", lambda: FakeTranslator(delay)),
        generate=loader("generate", lambda: FakeGenerator(piece_delay)),
        runtime=lambda: runtime,
        name="fake",
    )
