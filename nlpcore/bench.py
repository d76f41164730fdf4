"""Speed benchmarks: each compares the project's fast path with the naive
Keras path in the same run and writes a JSON record.

``nlpcore bench sentiment`` → ``bench/results/sentiment.json``
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

SENTENCES = [
    "이 영화 정말 재미있어요 배우들 연기가 최고였다",
    "시간 아깝다 스토리도 엉망이고 너무 지루했다",
    "그냥 그랬어요 기대보다는 별로",
    "인생 영화 또 보고 싶다",
    "This movie was a wonderful surprise.",
    "The plot was boring and the acting was terrible.",
    "Not bad, but I expected more from this director.",
    "One of the best films I have seen this year!",
]


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Wall-clock milliseconds of ``fn``: p50, p90 and mean over ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "calls": repeats,
    }


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def bench_sentiment(bulk_lines: int = 50_000) -> dict[str, object]:
    import keras
    import numpy as np

    from . import data
    from .services import Sentiment
    from .text import count_scripts

    service = Sentiment.load()
    record: dict[str, object] = {"what": "sentiment", "models": service.models, "machine": machine(),
                                 "keras_backend": keras.backend.backend()}
    cycle = iter(SENTENCES * 1000)
    record["service_explain"] = timed(lambda: service.predict([next(cycle)]), 400)
    record["service_label_only"] = timed(lambda: service.predict([next(cycle)], explain=False), 400)

    naive = {}
    for runner in service._runners.values():  # the same weights through model.predict, once per call
        model = runner.keras_model
        mine = [s for s in SENTENCES if count_scripts(s).majority == runner.language] or SENTENCES
        rows = iter([np.asarray(runner.clip(ids), dtype=np.int32)[None] for ids in runner.encode(mine)] * 1000)
        naive[runner.name] = timed(lambda: model.predict(next(rows), verbose=0), 40)
    record["naive_model_predict"] = naive
    slowest_naive = statistics.median(v["p50_ms"] for v in naive.values())
    record["speedup_p50"] = round(slowest_naive / record["service_explain"]["p50_ms"], 1)

    # Bulk: an NSMC-sized file of reviews through the CLI, whole process.
    rows = [r.text for r in data.read_nsmc(data.corpus_path("nsmc"))][:bulk_lines]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reviews.txt"
        path.write_text("\n".join(t.replace("\n", " ") for t in rows) + "\n", encoding="utf-8")
        start = time.perf_counter()
        with open(path, "rb") as stdin:
            result = subprocess.run([sys.executable, "-m", "nlpcore", "sentiment", "--json"], stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        seconds = time.perf_counter() - start
    outputs = result.stdout.decode("utf-8").splitlines()
    record["bulk_cli"] = {"lines": len(rows), "outputs": len(outputs), "seconds": round(seconds, 2),
                          "lines_per_second": round(len(rows) / seconds)}
    return record


def write_record(record: dict[str, object], name: str) -> Path:
    folder = Path(os.environ.get("MALBEOT_BENCH_DIR", Path(__file__).resolve().parent.parent / "bench" / "results"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
