"""Model work off the GUI thread.

A :class:`Worker` is a ``QRunnable`` that runs a plain function and reports
through a :class:`WorkerSignals` object living on the GUI thread: ``started``,
``yielded`` (once per item when the function returns a generator),
``returned``, ``errored`` (the exception) and ``finished`` (always last).
A worker whose abort was requested drops its result and error, and stops
iterating a generator at the next item; ``abort()`` also sets the worker's
:class:`~nlpcore.services.CancelFlag`, which the function receives, so a
generation stops between two steps.

:class:`ModelExecutor` is the one serial model thread (a ``QThreadPool`` with
one thread): the loaded services are not thread-safe and share one
framework, so every model call goes through it in order. Submitting with a
``key`` (one per tab) supersedes the key's previous job: a queued one is
taken off the queue, a running one is aborted.

Functions run here must not touch any widget.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, QRunnable, Signal

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
    """The single serial model thread; one current job per key."""

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.pool.setExpiryTimeout(-1)  # keep the thread: frameworks like a stable thread
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
        self.pool.start(worker)
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
        if self.pool.tryTake(worker):  # never started: finish it here, on the GUI thread
            worker._done.set()
            worker.signals.finished.emit()

    def pending(self) -> int:
        return len(self._alive)

    def wait_idle(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 5000) -> bool:
        """Abort everything and wait for the running job (at application exit)."""
        for worker in list(self._alive):
            self.cancel(worker)
        return self.pool.waitForDone(msecs)

    def _finished(self, worker: Worker, key: str | None) -> None:
        self._alive.discard(worker)
        if key is not None and self._current.get(key) is worker:
            del self._current[key]
        if not self._alive:
            self.busyChanged.emit(False)
