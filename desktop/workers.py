"""Model work off the GUI thread.

A :class:`Worker` is a ``QRunnable`` that runs a plain function and reports
through a :class:`WorkerSignals` object living on the GUI thread: ``started``,
``yielded`` (once per item when the function returns a generator),
``returned``, ``errored`` (the exception) and ``finished`` (always last).
A worker whose abort was requested drops its result and error, and stops
iterating a generator at the next item; ``abort()`` also sets the worker's
:class:`~nlpcore.services.CancelFlag`, which the function receives, so a
generation stops between two steps.

:class:`ModelExecutor` is the one serial model thread: the loaded services
are not thread-safe and share one framework, so every model call goes
through it in order. Submitting with a
``key`` (one per tab) supersedes the key's previous job: a queued one is
taken off the queue, a running one is aborted.

Functions run here must not touch any widget.
"""

from __future__ import annotations

import threading
import time
import types
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from nlpcore.services import CancelFlag

Job = Callable[[CancelFlag], Any]


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """Runs ``fn(cancel)`` once; a generator's items are forwarded through ``yielded``."""

    def __init__(self, fn: Job, name: str = ""):
        super().__init__()
        self.setAutoDelete(False)  # the executor keeps it until ``finished``
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = WorkerSignals()
        self.cancel = CancelFlag()
        self._abort = threading.Event()
        self._done = threading.Event()
        self.seconds = 0.0

    @property
    def abort_requested(self) -> bool:
        return self._abort.is_set()

    def abort(self) -> None:
        """Drop the result and stop at the next generated item (any thread)."""
        self._abort.set()
        self.cancel.set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def run(self) -> None:  # on the model thread
        started = time.perf_counter()
        try:
            if self.abort_requested:
                return
            self.signals.started.emit()
            result = self.fn(self.cancel)
            if isinstance(result, types.GeneratorType):
                try:
                    for item in result:
                        if self.abort_requested:
                            break
                        self.signals.yielded.emit(item)
                finally:
                    result.close()
                result = None
            self.seconds = time.perf_counter() - started
            if not self.abort_requested:
                self.signals.returned.emit(result)
        except BaseException as exc:  # every failure reaches the user as a message
            self.seconds = time.perf_counter() - started
            if not self.abort_requested:
                self.signals.errored.emit(exc)
        finally:
            self._done.set()
            self.signals.finished.emit()


class ModelExecutor(QObject):
    """The single serial model thread; one current job per key.

    The thread is one long-lived Python thread rather than a ``QThreadPool``:
    a pool gives each ``run()`` a fresh Python thread state, and TensorFlow keeps
    per-thread state on the Python side that must survive from the job that
    loads a model to the jobs that use it (otherwise the second job crashes in
    native code).
    """

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None, name: str = "malbeot-model"):
        super().__init__(parent)
        self.name = name
        self._queue: deque[Worker] = deque()
        self._running: Worker | None = None
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._current: dict[str, Worker] = {}
        self._alive: set[Worker] = set()

    def submit(self, fn: Job, key: str | None = None, name: str = "",
               setup: Callable[[Worker], None] | None = None) -> Worker:
        """Queue ``fn(cancel)``; ``setup(worker)`` connects its signals before it can start."""
        if key is not None:
            self.supersede(key)
        worker = Worker(fn, name)
        self._alive.add(worker)
        worker.signals.finished.connect(lambda w=worker, k=key: self._finished(w, k))
        if key is not None:
            self._current[key] = worker
        if setup is not None:
            setup(worker)
        if len(self._alive) == 1:
            self.busyChanged.emit(True)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._queue.append(worker)
            self._cv.notify_all()
        return worker

    def current(self, key: str) -> Worker | None:
        return self._current.get(key)

    def supersede(self, key: str) -> Worker | None:
        """Abort the key's current job (taking it off the queue if it has not started)."""
        worker = self._current.pop(key, None)
        if worker is not None:
            self.cancel(worker)
        return worker

    def cancel(self, worker: Worker) -> None:
        worker.abort()
        with self._cv:
            queued = worker in self._queue
            if queued:
                self._queue.remove(worker)
                self._cv.notify_all()
        if queued:  # never started: finish it here, on the GUI thread
            worker._done.set()
            worker.signals.finished.emit()

    def pending(self) -> int:
        return len(self._alive)

    def wait_idle(self, msecs: int = -1) -> bool:
        """Block until no job is queued or running (``msecs`` < 0: no limit)."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._queue and self._running is None,
                                     None if msecs < 0 else msecs / 1000)

    def shutdown(self, msecs: int = 5000) -> bool:
        """Abort everything and wait for the running job (at application exit)."""
        for worker in list(self._alive):
            self.cancel(worker)
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(msecs / 1000)
            return not thread.is_alive()
        return True

    def _loop(self) -> None:  # the model thread
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                worker = self._queue.popleft()
                self._running = worker
            try:
                worker.run()
            finally:
                with self._cv:
                    self._running = None
                    self._cv.notify_all()

    def _finished(self, worker: Worker, key: str | None) -> None:
        self._alive.discard(worker)
        if key is not None and self._current.get(key) is worker:
            del self._current[key]
        if not self._alive:
            self.busyChanged.emit(False)
