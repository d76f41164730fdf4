"""Batch processing of a TXT/CSV/TSV file: sentiment or translation of every text,
written to a CSV file (Qt-free; runs on the model thread).

:func:`sentiment_job` and :func:`translate_job` return ``job(service, cancel)``
generators that yield ``(done, total)`` after each chunk and stop at the next
chunk when ``cancel`` is set (the rows written so far stay in the output).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable, Iterator

from nlpcore.data import read_user_texts
from nlpcore.services import TranslateOptions

SENTIMENT_CHUNK = 256
TRANSLATE_CHUNK = 16

Progress = Iterator[tuple[int, int]]


def default_output(path: str | Path, task: str) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name.split('.')[0]}.{task}.csv")


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sentiment_job(source: str | Path, output: str | Path, model: str = "auto",
                  column: str | None = None) -> Callable[[Any, Any], Progress]:
    def job(service, cancel) -> Progress:
        rows = list(read_user_texts(source, column))
        done = 0
        yield done, len(rows)
        with open(output, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "text", "label", "score", "model", "language", "error"])
            for chunk in _chunks(rows, SENTIMENT_CHUNK):
                if cancel.is_set():
                    return
                results = service.predict([text for _, text in chunk], model=model, explain=False)
                for (line, text), r in zip(chunk, results):
                    writer.writerow([line, text, r.label, "" if r.error else f"{r.score:.6f}", r.model,
                                     "" if r.error else r.language, r.error or ""])
                done += len(chunk)
                yield done, len(rows)

    return job


def translate_job(source: str | Path, output: str | Path, src: str, tgt: str,
                  options: TranslateOptions = TranslateOptions(n_best=1),
                  column: str | None = None) -> Callable[[Any, Any], Progress]:
    def job(service, cancel) -> Progress:
        rows = list(read_user_texts(source, column))
        done = 0
        yield done, len(rows)
        batch = getattr(service, "translate_batch", None)
        with open(output, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "source", "translation", "score", "error"])
            for chunk in _chunks(rows, TRANSLATE_CHUNK):
                if cancel.is_set():
                    return
                texts = [text for _, text in chunk]
                try:
                    results = batch(texts, src, tgt, options) if batch else [service.translate(t, src, tgt, options) for t in texts]
                    errors = [""] * len(texts)
                except ValueError as exc:  # one bad text: translate the chunk one by one
                    results, errors = [], []
                    for t in texts:
                        try:
                            results.append(service.translate(t, src, tgt, options))
                            errors.append("")
                        except ValueError as one:
                            results.append(None)
                            errors.append(str(one) or str(exc))
                for (line, text), result, error in zip(chunk, results, errors):
                    best = result.hypotheses[0] if result is not None and result.hypotheses else None
                    writer.writerow([line, text, best.text if best else "", f"{best.score:.4f}" if best else "", error])
                done += len(chunk)
                yield done, len(rows)

    return job
