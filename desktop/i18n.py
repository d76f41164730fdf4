"""UI text in Korean and English: a small catalogue and ``tr(key, **values)``.

Widgets call :func:`tr` when they build or refresh their text and connect to
``i18n().languageChanged`` to refresh when the user switches language in
Settings. A key missing from the catalogue shows as itself (and a test keeps
the catalogue complete).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from .catalogue import CATALOGUE

LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}


class I18n(QObject):
    languageChanged = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.language = "en"

    def set_language(self, language: str) -> None:
        language = language if language in LANGUAGE_NAMES else "en"
        if language != self.language:
            self.language = language
            self.languageChanged.emit(language)


_instance: I18n | None = None


def i18n() -> I18n:
    global _instance
    if _instance is None:
        _instance = I18n()
    return _instance


def tr(key: str, **values: object) -> str:
    entry = CATALOGUE.get(key)
    text = key if entry is None else entry[1] if i18n().language == "ko" else entry[0]
    return text.format(**values) if values else text


def set_language(language: str) -> None:
    i18n().set_language(language)
