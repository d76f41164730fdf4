"""Entry point of the ``malbeot`` GUI.

The window is built and shown before any model framework is imported; the
models then load in the background, each tab becoming usable as soon as its
own model is ready.

``malbeot --self-test`` runs offscreen, loads the models, sends one message
through each tab, prints timings as JSON and exits 0 when every reply arrived
(``--fake-services`` swaps in the fake services the tests use).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from nlpcore import __version__


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="malbeot", description="Malbeot 말벗: offline sentiment, translation and generation.")
    parser.add_argument("--version", action="version", version=f"malbeot {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="run offscreen: load the models, send one message per tab, print JSON timings, exit")
    parser.add_argument("--fake-services", action="store_true", help="use fake model services (for tests)")
    parser.add_argument("--timeout", type=float, default=600.0, help="self-test time limit in seconds")
    return parser.parse_known_args(list(argv))


def build_window(backends=None, store=None, settings=None):
    """The main window over ``backends`` (default: the real model services); imports no model framework."""
    from PySide6.QtWidgets import QApplication

    from . import theme
    from .backends import real_backends
    from .host import ModelHost
    from .i18n import set_language
    from .main_window import MainWindow
    from .settings import Settings
    from .store import HistoryStore

    app = QApplication.instance()
    settings = settings if settings is not None else Settings()
    set_language(settings.language)
    theme.apply_font(app)
    theme.apply_theme(app, settings.theme)
    host = ModelHost(backends if backends is not None else real_backends())
    window = MainWindow(host, store if store is not None else HistoryStore(), settings)
    host.setParent(window)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "malbeot", *qt_args])
    app.setApplicationName("Malbeot")
    app.setOrganizationName("Malbeot")
    app.setApplicationDisplayName("Malbeot 말벗")

    backends = None
    if args.fake_services:
        from .testing import fake_backends

        backends = fake_backends(delay=0.05, piece_delay=0.01, load_delay=0.1)
    if args.self_test:
        from . import selftest

        return selftest.run(backends, started, args.timeout)

    window = build_window(backends)
    window.show()
    QTimer.singleShot(0, window.start_loading)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
