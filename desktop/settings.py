"""One typed wrapper over ``QSettings`` (theme, UI language, default options, window state).

Every key has a default and a type in :data:`DEFAULTS`; reads convert to that
type and fall back to the default on a missing or unreadable value. Settings
live where Qt keeps them for organisation and application ``Malbeot``; when
``MALBEOT_HOME`` is set (a portable install, or the test suite) they live in
``$MALBEOT_HOME/settings.ini`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

DEFAULTS: dict[str, Any] = {
    "ui/theme": "auto",  # auto | light | dark
    "ui/language": "",  # "" = follow the system (Korean if the system is Korean, else English)
    "window/geometry": QByteArray(),
    "window/state": QByteArray(),
    "sentiment/model": "auto",
    "translate/src": "en",
    "translate/tgt": "fr",
    "translate/beam_size": 5,
    "translate/n_best": 3,
    "generate/model": "generate-en",
    "generate/sampler": "top_p",
    "generate/temperature": 0.8,
    "generate/top_k": 40,
    "generate/top_p": 0.9,
    "generate/repetition_penalty": 1.1,
    "generate/max_new_tokens": 200,
    "generate/seed": -1,  # -1 = a new seed every time
    "generate/colour_tokens": False,
}
THEMES = ("auto", "light", "dark")
LANGUAGES = ("ko", "en")


def open_qsettings() -> QSettings:
    home = os.environ.get("MALBEOT_HOME")
    if home:
        return QSettings(str(Path(home) / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, "Malbeot", "Malbeot")


class Settings(QObject):
    """Typed access: ``settings.value("generate/top_k")`` is an ``int``."""

    changed = Signal(str)  # key

    def __init__(self, qsettings: QSettings | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._q = qsettings if qsettings is not None else open_qsettings()

    @classmethod
    def in_file(cls, path: str | Path) -> "Settings":
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def value(self, key: str) -> Any:
        default = DEFAULTS[key]
        if not self._q.contains(key):
            return default
        raw = self._q.value(key)
        try:
            if isinstance(default, bool):
                return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
            if isinstance(default, QByteArray):
                return raw if isinstance(raw, QByteArray) else default
            return type(default)(raw)
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        if self.value(key) == value and self._q.contains(key):
            return
        self._q.setValue(key, value)
        self.changed.emit(key)

    def sync(self) -> None:
        self._q.sync()

    # -------------------------------------------------------------- conveniences
    @property
    def theme(self) -> str:
        theme = self.value("ui/theme")
        return theme if theme in THEMES else "auto"

    @property
    def language(self) -> str:
        language = self.value("ui/language")
        if language in LANGUAGES:
            return language
        from PySide6.QtCore import QLocale

        return "ko" if QLocale.system().language() == QLocale.Language.Korean else "en"
