"""Entry point of the ``malbeot`` GUI.

The window is shown before any model framework is imported; model work is
added tab by tab on top of :mod:`nlpcore`.
"""

from __future__ import annotations

import sys
from typing import Sequence

from nlpcore import __version__

TABS = (("Sentiment", "sentiment"), ("Translate", "translation"), ("Generate", "generation"))


def build_window():
    from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget

    from nlpcore import packages

    window = QMainWindow()
    window.setWindowTitle(f"Malbeot 말벗 {__version__}")
    tabs = QTabWidget()
    installed = [card for _, card in packages.iter_packages() if not isinstance(card, packages.PackageError)]
    for title, task in TABS:
        names = [card.name for card in installed if card.task == task]
        text = (
            f"Installed models: {', '.join(names)}" if names else "No model package for this task is installed yet."
        )
        label = QLabel(text)
        label.setObjectName(f"{task}-status")
        label.setWordWrap(True)
        tabs.addTab(label, title)
    window.setCentralWidget(tabs)
    window.resize(960, 680)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(list(argv) if argv is not None else sys.argv)
    app.setApplicationName("Malbeot")
    app.setOrganizationName("Malbeot")
    window = build_window()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
