"""Where the tabs get their model services from.

The window never constructs a model service itself: it is handed a
:class:`Backends`, three zero-argument callables that each return a loaded
service, plus one that describes the runtime. The app passes the real
``nlpcore.services`` loaders (:func:`real_backends`); tests and
``malbeot --self-test --fake-services`` pass fakes (:mod:`desktop.testing`).

Every callable here runs on the model thread, never on the GUI thread:
constructing a service imports the model framework.

A service that cannot be imported yet (an ``ImportError``) is reported exactly
like a missing model package: :class:`ServiceUnavailable` with a readable
reason, shown in that tab while the others keep working.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

TASKS = ("sentiment", "translate", "generate")

# Where each service class is looked up, first hit wins: the public API in
# nlpcore.services, then the module that implements it.
SERVICE_LOCATIONS = {
    "sentiment": (("nlpcore.services", "Sentiment"),),
    "translate": (("nlpcore.services", "Translator"), ("nlpcore.translation", "Translator")),
    "generate": (("nlpcore.services", "Generator"), ("nlpcore.generation", "Generator")),
}

# The package names each task needs, for messages about what is missing.
PACKAGE_HINTS = {
    "sentiment": "sentiment-ko / sentiment-en",
    "translate": "translate-<src>-<tgt>",
    "generate": "generate-en / generate-ko",
}


class ServiceUnavailable(RuntimeError):
    """A task has no usable model: not installed, corrupt, or not part of this version."""


@dataclass(frozen=True)
class Backends:
    """Zero-argument loaders, called once each on the model thread.

    sentiment() -> object with ``models: list[str]`` and
        ``predict(texts, model="auto") -> list[SentimentResult]``
    translate() -> object with ``directions: list[tuple[str, str]]`` and
        ``translate(text, src, tgt, options) -> Translation``
    generate() -> object with ``models: list[str]`` and
        ``stream(prompt, model, options, cancel) -> Iterator[GeneratedPiece]``
    runtime() -> a one-line description such as ``"TensorFlow · CPU"``
    """

    sentiment: Callable[[], Any]
    translate: Callable[[], Any]
    generate: Callable[[], Any]
    runtime: Callable[[], str]
    name: str = "real"

    def loader(self, task: str) -> Callable[[], Any]:
        return getattr(self, task)


def find_service_class(task: str) -> type:
    """The service class for ``task``; ServiceUnavailable if this version has none."""
    reasons = []
    for module_name, attr in SERVICE_LOCATIONS[task]:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            reasons.append(f"{module_name}: {exc}")
            continue
        cls = getattr(module, attr, None)
        if cls is not None and hasattr(cls, "load"):
            return cls
        reasons.append(f"{module_name} has no {attr}")
    raise ServiceUnavailable(
        f"the {task} model is not part of this version of Malbeot ({'; '.join(reasons)})"
    )


def load_service(task: str) -> Any:
    """Load the real service for ``task`` (model thread only)."""
    cls = find_service_class(task)
    from nlpcore.packages import PackageError

    try:
        return cls.load()
    except PackageError as exc:
        raise ServiceUnavailable(f"{exc} (needs the package {PACKAGE_HINTS[task]})") from exc


def real_backends() -> Backends:
    from .runtime import describe_runtime

    return Backends(
        sentiment=lambda: load_service("sentiment"),
        translate=lambda: load_service("translate"),
        generate=lambda: load_service("generate"),
        runtime=describe_runtime,
        name="real",
    )
