"""The loaded model services and their load state, shared by the tabs.

:class:`ModelHost` loads each service in the background (on the serial model
thread), reports ``stateChanged(task)`` as each becomes ready or fails, and
runs the tabs' jobs against the loaded services. The GUI thread never calls a
service: a load job returns the service together with the plain facts the
tabs need (``models``, ``directions``), read on the model thread.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from .backends import TASKS, Backends
from .records import describe_error
from .workers import ModelExecutor, Worker

IDLE, LOADING, READY, FAILED = "idle", "loading", "ready", "failed"


@dataclass
class TaskState:
    state: str = IDLE
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _facts(service: Any) -> dict[str, Any]:
    facts = {}
    for name in ("models", "directions"):
        value = getattr(service, name, None)
        if value is not None:
            facts[name] = [tuple(v) if isinstance(v, (list, tuple)) else v for v in list(value)]
    return facts


class ModelHost(QObject):
    stateChanged = Signal(str)  # task
    runtimeChanged = Signal(str)

    def __init__(self, backends: Backends, executor: ModelExecutor | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.backends = backends
        self.executor = executor or ModelExecutor(self)
        self.states = {task: TaskState() for task in TASKS}
        self.runtime = ""
        self._services: dict[str, Any] = {}
        self.started_at = time.perf_counter()

    # -------------------------------------------------------------- loading
    def state(self, task: str) -> TaskState:
        return self.states[task]

    def is_ready(self, task: str) -> bool:
        return self.states[task].state == READY

    def all_settled(self) -> bool:
        return all(s.state in (READY, FAILED) for s in self.states.values())

    def load_all(self) -> None:
        """Describe the runtime, then load every service, one after the other."""
        def setup(worker: Worker) -> None:
            worker.signals.returned.connect(self._runtime_known)
            worker.signals.errored.connect(lambda exc: self._runtime_known(f"runtime unknown ({describe_error(exc)})"))

        self.executor.submit(lambda cancel: self.backends.runtime(), name="runtime", setup=setup)
        for task in TASKS:
            self.load(task)

    def load(self, task: str) -> Worker:
        """(Re)load one service; the tab is unusable until it is ready again."""
        self._services.pop(task, None)
        self.states[task] = TaskState(state=LOADING)
        self.stateChanged.emit(task)
        loader = self.backends.loader(task)

        def job(cancel):
            started = time.perf_counter()
            service = loader()
            return service, _facts(service), time.perf_counter() - started

        def setup(worker: Worker) -> None:
            worker.signals.returned.connect(lambda result: self._loaded(task, result))
            worker.signals.errored.connect(lambda exc: self._failed(task, exc))

        return self.executor.submit(job, key=f"load:{task}", name=f"load {task}", setup=setup)

    def _runtime_known(self, text: str) -> None:
        self.runtime = str(text)
        self.runtimeChanged.emit(self.runtime)

    def _loaded(self, task: str, result: tuple[Any, dict[str, Any], float]) -> None:
        service, facts, seconds = result
        self._services[task] = service
        # A loaded framework leaves a very large number of long-lived objects; moving them out of
        # the collector's reach keeps full collections (which pause every thread) short.
        gc.freeze()
        self.states[task] = TaskState(state=READY, info=facts, seconds=seconds)
        self.stateChanged.emit(task)

    def _failed(self, task: str, exc: BaseException) -> None:
        self.states[task] = TaskState(state=FAILED, error=describe_error(exc))
        self.stateChanged.emit(task)

    # -------------------------------------------------------------- jobs
    def run(self, task: str, fn: Callable[[Any, Any], Any], key: str | None = None, name: str = "",
            setup: Callable[[Worker], None] | None = None) -> Worker:
        """Run ``fn(service, cancel)`` on the model thread; ``key`` supersedes that key's previous job;
        ``setup(worker)`` connects to its signals before it can start."""
        if task not in self._services:
            raise RuntimeError(f"the {task} model is not loaded")
        service = self._services[task]
        return self.executor.submit(lambda cancel: fn(service, cancel), key=key, name=name or task, setup=setup)

    def shutdown(self) -> None:
        self.executor.shutdown()
