"""The benchmark helpers' bookkeeping, on a fake clock."""

from nlpcore import bench


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def spend(self, ms: float) -> None:
        self.now += ms / 1000


def test_paired_takes_turns_skips_the_warmup_and_takes_the_median_ratio(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    calls = []
    fast_ms = {"a": 50, "b": 10, "c": 20, "d": 40, "e": 10}
    slow_ms = {"a": 500, "b": 100, "c": 400, "d": 1200, "e": 50}

    def fast(item):
        calls.append(("fast", item))
        clock.spend(fast_ms[item])

    def slow(item):
        calls.append(("slow", item))
        clock.spend(slow_ms[item])

    result = bench.paired(fast, slow, list("abcde"), warmup=1)
    assert calls == [(path, item) for item in "abcde" for path in ("fast", "slow")]
    assert result["fast"]["calls"] == result["slow"]["calls"] == 4  # "a" warmed both paths up
    assert result["fast"]["p50_ms"] == 15.0 and result["slow"]["p50_ms"] == 250.0
    assert result["speedup_p50"] == 16.7  # 250 / 15
    assert result["speedup_per_item_median"] == 15.0  # of the ratios 10, 20, 30, 5


def test_timed_counts_only_the_calls_after_the_warmup(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    costs = iter([100, 100, 1, 2, 3, 4, 50])
    result = bench.timed(lambda: clock.spend(next(costs)), repeats=5, warmup=2)
    assert result == {"p50_ms": 3.0, "p90_ms": 4.0, "mean_ms": 12.0, "calls": 5}
