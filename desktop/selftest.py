"""``malbeot --self-test``: the window offscreen, one message through each tab, JSON timings.

History goes to an in-memory database and settings to a temporary file, so a
self-test leaves the user's data alone. The event loop is sampled every 10 ms
while the generation streams; the largest gap is reported and must stay
under :data:`MAX_GAP_MS`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QElapsedTimer, QObject, QTimer
from PySide6.QtWidgets import QApplication

from .backends import TASKS
from .host import FAILED, READY

MAX_GAP_MS = 100.0
SAMPLE_MS = 10
SAMPLES = {
    "sentiment": "이 영화 정말 재미있어요! 배우들 연기가 최고였다.",
    "generate": {"generate-en": "ROMEO:", "generate-ko": "옛날 옛적에"},
}
TRANSLATE_SAMPLES = {"en": "I love you. The weather is nice today.", "fr": "Je t'aime.", "ko": "나는 너를 사랑해."}
FRAMEWORKS = ("tensorflow", "jax", "torch", "keras")


class GapMeter(QObject):
    """How long the event loop went without running a fast timer.

    max_gap_ms: the largest wall-clock interval between two ticks;
    max_busy_ms: the largest GUI-thread CPU time spent between two ticks, which is
        the GUI thread's own work and, unlike wall time, does not grow when other
        processes keep the machine's cores busy.
    """

    def __init__(self, interval_ms: int = SAMPLE_MS):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.max_gap_ms = 0.0
        self.max_busy_ms = 0.0
        self.ticks = 0
        self._last = 0
        self._last_cpu = 0.0

    def start(self) -> None:
        self.clock.start()
        self._last = 0
        self._last_cpu = time.thread_time()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._tick()

    def _tick(self) -> None:
        now, cpu = self.clock.nsecsElapsed(), time.thread_time()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) / 1e6)
        self.max_busy_ms = max(self.max_busy_ms, (cpu - self._last_cpu) * 1e3)
        self._last, self._last_cpu = now, cpu
        self.ticks += 1


class SelfTest(QObject):
    def __init__(self, window, started: float, timeout: float):
        super().__init__()
        self.window = window
        self.started = started
        self.report: dict[str, Any] = {"replies": {}, "load_s": {}}
        self.sent: set[str] = set()
        self.sent_at: dict[str, float] = {}
        self.gap = GapMeter()
        self.load_gap = GapMeter()
        self.deadline = QTimer(self)
        self.deadline.setSingleShot(True)
        self.deadline.timeout.connect(self._timed_out)
        self.deadline.start(int(timeout * 1000))
        for tab in window.all_tabs():
            tab.replyFinished.connect(lambda payload, t=tab.task: self._replied(t, payload))
        window.host.stateChanged.connect(self._state_changed)

    def start(self) -> None:
        self.load_gap.start()
        self.window.start_loading()

    def _state_changed(self, task: str) -> None:
        state = self.window.host.state(task)
        if state.state == READY:
            self.report["load_s"][task] = round(state.seconds, 3)
        elif state.state == FAILED:
            self.report["replies"][task] = {"ok": False, "error": state.error}
        self._next()

    def _next(self) -> None:
        """Send to the next tab once its model is ready and the previous reply has arrived, one at a time,
        so the gaps measured while the generation streams are the generation's own."""
        if any(task in self.sent and task not in self.report["replies"] for task in TASKS):
            return
        for task in TASKS:
            if task in self.report["replies"]:
                continue
            if self.window.host.is_ready(task) and task not in self.sent:
                QTimer.singleShot(50, lambda t=task: self._send(t))
            return
        self._maybe_finish()

    def _send(self, task: str) -> None:
        if task in self.sent:
            return
        self.sent.add(task)
        tab = self.window.tab(task)
        if task == "sentiment":
            text = SAMPLES["sentiment"]
        elif task == "translate":
            src = tab.src_box.currentData()
            text = TRANSLATE_SAMPLES.get(src, "Hello.")
        else:
            text = SAMPLES["generate"].get(tab.model_box.currentData(), "Once upon a time")
            self.gap.start()
        self.sent_at[task] = time.perf_counter()
        if tab.send(text) is None:
            self.report["replies"][task] = {"ok": False, "error": "the message could not be sent"}
            self._next()

    def _replied(self, task: str, payload: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self.sent_at.get(task, time.perf_counter())
        entry: dict[str, Any] = {"ok": payload.get("kind") != "error", "seconds": round(seconds, 3),
                                 "model_seconds": payload.get("seconds")}
        if payload.get("kind") == "error":
            entry["error"] = payload.get("message")
        else:
            entry["text"] = (payload.get("text") or "")[:120]
            entry["model"] = payload.get("model")
        if task == "generate":
            self.gap.stop()
            entry.update(tokens=payload.get("tokens"), tokens_per_s=payload.get("tokens_per_s"))
            entry["ok"] = entry["ok"] and payload.get("tokens", 0) > 0
            self.report["max_event_loop_gap_ms"] = round(self.gap.max_gap_ms, 1)
            self.report["max_gui_busy_ms"] = round(self.gap.max_busy_ms, 1)
        self.report["replies"][task] = entry
        self._next()

    def _timed_out(self) -> None:
        for task in TASKS:
            self.report["replies"].setdefault(task, {"ok": False, "error": "timed out"})
        self._finish()

    def _maybe_finish(self) -> None:
        if all(task in self.report["replies"] for task in TASKS):
            self._finish()

    def _finish(self) -> None:
        self.deadline.stop()
        self.load_gap.stop()
        host = self.window.host
        gap = self.report.get("max_event_loop_gap_ms")
        self.report.update(
            runtime=host.runtime,
            backends=host.backends.name,
            max_event_loop_gap_during_load_ms=round(self.load_gap.max_gap_ms, 1),
            load_average=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            cpu_count=os.cpu_count(),
            total_s=round(time.perf_counter() - self.started, 3),
        )
        busy = self.report.get("max_gui_busy_ms")
        load = self.report["load_average"] / (os.cpu_count() or 1) if self.report["load_average"] is not None else 0.0
        # wall-clock gaps count only on a machine with a core to spare (see GapMeter)
        responsive = busy is not None and busy < MAX_GAP_MS and (gap < MAX_GAP_MS or load >= 1.0)
        self.report["responsive"] = responsive
        self.report["ok"] = all(r.get("ok") for r in self.report["replies"].values()) and responsive \
            and not self.report["framework_before_show"]
        QApplication.instance().exit(0 if self.report["ok"] else 1)


def run(backends, started: float, timeout: float) -> int:
    """Build the window offscreen with ``backends`` (None: the real ones), run the self-test, print JSON."""
    from .app import build_window
    from .settings import Settings
    from .store import HistoryStore

    app = QApplication.instance()
    with tempfile.TemporaryDirectory(prefix="malbeot-selftest-") as tmp:
        settings = Settings.in_file(Path(tmp) / "settings.ini")
        settings.set_value("ui/language", "en")
        settings.set_value("generate/max_new_tokens", 48)
        settings.set_value("generate/seed", 1)
        settings.set_value("translate/beam_size", 4)
        settings.set_value("translate/n_best", 2)
        window = build_window(backends, HistoryStore(":memory:"), settings)
        built = time.perf_counter()
        window.show()
        test = SelfTest(window, started, timeout)
        test.report.update(
            window_built_s=round(built - started, 3),
            window_shown_s=round((window.shown_at or time.perf_counter()) - started, 3),
            framework_before_show=[m for m in FRAMEWORKS if m in sys.modules],
        )
        QTimer.singleShot(0, test.start)
        code = app.exec()
        window.close()
        window.store.close()
        print(json.dumps(test.report, ensure_ascii=False, indent=1), flush=True)
        return code
