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
from typing import Any, Callable, Sequence

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
    return summary([_milliseconds(fn) for _ in range(repeats)])


def paired(fast: Callable[[Any], object], slow: Callable[[Any], object], items: Sequence[Any],
           warmup: int = 2) -> dict[str, Any]:
    """Both paths on the same ``items``, one call each, taking turns, so that a
    sentence's length or a busy moment of the machine weighs on both alike.

    Returns ``fast`` and ``slow`` (each :func:`summary` of its calls),
    ``speedup_p50`` (slow p50 / fast p50) and ``speedup_per_item_median`` (the
    median over the items of slow / fast time). The first ``warmup`` items run
    through both first and are not counted.
    """
    for item in items[:warmup]:
        fast(item)
        slow(item)
    fast_ms, slow_ms = [], []
    for item in items[warmup:]:
        fast_ms.append(_milliseconds(lambda: fast(item)))
        slow_ms.append(_milliseconds(lambda: slow(item)))
    fast_summary, slow_summary = summary(fast_ms), summary(slow_ms)
    return {"fast": fast_summary, "slow": slow_summary,
            "speedup_p50": round(slow_summary["p50_ms"] / fast_summary["p50_ms"], 1),
            "speedup_per_item_median": round(statistics.median(s / f for f, s in zip(fast_ms, slow_ms)), 1)}


def _milliseconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(samples: Sequence[float]) -> dict[str, float]:
    """p50, p90 and mean of millisecond ``samples``, and their count."""
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "calls": len(samples),
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


def bench_translate(directions: Sequence[str] | None = None) -> dict[str, Any]:
    """Every installed translation direction (or ``directions``), one record."""
    from .packages import PackageError, iter_packages
    from .translation import benchmark

    installed = sorted(card.name.removeprefix("translate-") for _, card in iter_packages()
                       if not isinstance(card, PackageError) and card.task == "translation")
    chosen = list(directions or installed)
    missing = [d for d in chosen if d not in installed]
    if missing or not chosen:
        raise PackageError("no translation model installed for " + (", ".join(missing) or "any direction"))
    record: dict[str, Any] = {"what": "translate", "directions": {}}
    for direction in chosen:
        src, tgt = direction.split("-")
        result = benchmark(src, tgt)
        record.setdefault("machine", result.pop("machine"))
        record.setdefault("keras_backend", result.pop("keras_backend"))
        result.pop("what", None)
        record["directions"][direction] = result
    return record


GENERATION_PROMPTS = {"generate-en": "ROMEO:", "generate-ko": "그는 조용히"}


def bench_generate(new_tokens: int = 300, runs: int = 5, naive_tokens: int = 40) -> dict[str, object]:
    """Streaming generation through :class:`nlpcore.generation.Generator` against the
    naive Keras path, per installed language model, in one run.

    tokens_per_second: new pieces per second over whole streams of up to
    ``new_tokens`` pieces (seeded nucleus sampling; a stream that ends at
    ``</s>`` counts the pieces it made).
    first_piece_after_encoding: the prompt's ids ready → the prompt read in one
    pass and the first piece drawn. first_piece_from_stream_call: ``stream()``
    called → first piece yielded (encoding included).
    naive_predict: ``model.predict`` on the whole sequence so far, once per new
    piece (no state kept), as a first implementation would.
    naive_step_predict: ``model.predict`` of the step model (state carried in
    and out), once per new piece.
    """
    import keras
    import numpy as np

    from .generation import Generator
    from .models.language_model import build_step_model
    from .services import GenerateOptions

    service = Generator.load()
    record: dict[str, object] = {"what": "generate", "models": service.models, "machine": machine(),
                                 "keras_backend": keras.backend.backend(), "new_tokens": new_tokens,
                                 # Other jobs sharing the CPU slow single-row NumPy steps down a lot.
                                 "load_average_before": round(os.getloadavg()[0], 2)}
    for name in service.models:
        runner = service.runner(name)
        config = runner.model.config
        prompt = GENERATION_PROMPTS.get(name, "The")
        options = GenerateOptions(max_new_tokens=new_tokens, sampler="top_p", top_p=0.9, temperature=0.8,
                                  repetition_penalty=1.0, seed=0)
        rates, counts = [], []
        for run in range(runs + 1):
            start = time.perf_counter()
            count = sum(len(p.token_ids) for p in service.stream(prompt, name, options))
            seconds = time.perf_counter() - start
            if run:  # the first run warms caches
                rates.append(count / seconds)
                counts.append(count)

        def first_piece() -> None:
            stream = service.stream(prompt, name, GenerateOptions(max_new_tokens=8, seed=1))
            next(stream, None)
            stream.close()

        ids, allowed, _, _ = runner.prepare_prompt(prompt)

        def prompt_and_first_token() -> None:
            step = runner.prompt_step(ids, allowed)
            tokens = runner.sampler(GenerateOptions(seed=1)).sample(step, ids, runner.model.initial_state(1), 1)
            next(tokens, None)

        model = runner.keras_model
        step_model = build_step_model(model, config)
        rng = np.random.default_rng(0)
        sequence = list(ids)

        def naive_token() -> None:
            logits = model.predict(np.asarray([sequence], np.int32), verbose=0)[0, -1]
            sequence.append(int(rng.choice(len(logits), p=_softmax64(logits))))

        state = [np.zeros((1, config.units), np.float32) for _ in range(2 * config.layers)]
        last = [ids[-1]]

        def naive_step_token() -> None:
            outputs = step_model.predict([np.asarray([last], np.int32), *state], verbose=0)
            state[:] = outputs[1:]
            last[0] = int(rng.choice(outputs[0].shape[-1], p=_softmax64(outputs[0][0, -1])))

        fast_ms = 1000.0 / statistics.median(rates)
        result = {
            "prompt": prompt,
            "tokens_per_second": {"p50": round(statistics.median(rates), 1), "min": round(min(rates), 1),
                                  "pieces_per_run": counts},
            "ms_per_token": round(fast_ms, 3),
            "first_piece_after_encoding": timed(prompt_and_first_token, 50),
            "first_piece_from_stream_call": timed(first_piece, 50),
            "naive_predict_ms_per_token": timed(naive_token, naive_tokens, warmup=2),
            "naive_step_predict_ms_per_token": timed(naive_step_token, naive_tokens, warmup=2),
        }
        result["speedup_vs_naive_predict"] = round(result["naive_predict_ms_per_token"]["p50_ms"] / fast_ms, 1)
        result["speedup_vs_naive_step_predict"] = round(
            result["naive_step_predict_ms_per_token"]["p50_ms"] / fast_ms, 1)
        record[name] = result
    record["load_average_after"] = round(os.getloadavg()[0], 2)
    return record


def _softmax64(logits):
    """Probabilities in float64 (``numpy.random.Generator.choice`` checks that they sum to 1)."""
    import numpy as np

    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()
