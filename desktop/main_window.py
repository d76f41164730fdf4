"""The main window: three chat tabs, menus, shortcuts and the status bar."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from nlpcore import __version__

from . import theme
from .backends import TASKS
from .host import FAILED, LOADING, READY, ModelHost
from .i18n import i18n, set_language, tr
from .settings import Settings
from .store import HistoryStore
from .tabs.base import ChatTab
from .tabs.generate import GenerateTab
from .tabs.sentiment import SentimentTab
from .tabs.translate import TranslateTab

STATE_MARK = {READY: "✓", LOADING: "…", FAILED: "✗", "idle": "·"}


class MainWindow(QMainWindow):
    shown = Signal(float)  # perf_counter() when the window was first shown

    def __init__(self, host: ModelHost, store: HistoryStore, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.host = host
        self.store = store
        self.settings = settings
        self.shown_at: float | None = None
        self._closed = False
        self.setObjectName("main-window")
        self.resize(1180, 760)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.sentiment_tab = SentimentTab(host, store, settings)
        self.translate_tab = TranslateTab(host, store, settings)
        self.generate_tab = GenerateTab(host, store, settings)
        for tab in self.all_tabs():
            self.tabs.addTab(tab, "")
            tab.responded.connect(self._responded)
        self.setCentralWidget(self.tabs)

        bar = self.statusBar()
        self.runtime_label = QLabel()
        self.runtime_label.setObjectName("runtime-label")
        self.models_label = QLabel()
        self.models_label.setObjectName("models-label")
        self.response_label = QLabel()
        self.response_label.setObjectName("response-label")
        bar.addWidget(self.runtime_label)
        bar.addWidget(self.models_label, 1)
        bar.addPermanentWidget(self.response_label)

        self._build_menus()
        host.stateChanged.connect(lambda _task: self._update_status())
        host.runtimeChanged.connect(lambda _text: self._update_status())
        i18n().languageChanged.connect(self._language_changed)
        settings.changed.connect(self._setting_changed)
        self.retranslate()
        geometry = settings.value("window/geometry")
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)

    def all_tabs(self) -> list[ChatTab]:
        return [self.sentiment_tab, self.translate_tab, self.generate_tab]

    def tab(self, task: str) -> ChatTab:
        return {t.task: t for t in self.all_tabs()}[task]

    def current_tab(self) -> ChatTab:
        return self.tabs.currentWidget()

    # ================================================================ menus
    def _action(self, menu, key: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:
        action = QAction(self)
        action.setObjectName(f"action-{key}")
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        menu.addAction(action)
        self._actions[key] = action
        return action

    def _build_menus(self) -> None:
        self._actions: dict[str, QAction] = {}
        self._menus = {}
        bar = self.menuBar()
        file_menu = self._menus["menu.file"] = bar.addMenu("")
        self._action(file_menu, "new", lambda: self.current_tab().new_conversation(), "Ctrl+N")
        self._action(file_menu, "export", self.export_dialog, "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "batch", self.batch_dialog, "Ctrl+B")
        file_menu.addSeparator()
        self._action(file_menu, "quit", self.close, QKeySequence.StandardKey.Quit)
        models_menu = self._menus["menu.models"] = bar.addMenu("")
        self._action(models_menu, "models", self.models_dialog, "Ctrl+M")
        self._action(models_menu, "install", self.install_dialog)
        settings_menu = self._menus["menu.settings"] = bar.addMenu("")
        self._action(settings_menu, "preferences", self.settings_dialog, "Ctrl+,")
        help_menu = self._menus["menu.help"] = bar.addMenu("")
        self._action(help_menu, "shortcuts", self.shortcuts_dialog, "F1")
        self._action(help_menu, "about", self.about_dialog)
        for index in range(3):
            self._action_tab(index)

    def _action_tab(self, index: int) -> None:
        action = QAction(self)
        action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
        action.triggered.connect(lambda _checked=False, i=index: self.tabs.setCurrentIndex(i))
        self.addAction(action)

    def _language_changed(self, _language: str) -> None:
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(f"{tr('app.name')} {__version__}")
        for i, tab in enumerate(self.all_tabs()):
            self.tabs.setTabText(i, tr(tab.title_key))
        for key, menu in self._menus.items():
            menu.setTitle(tr(key))
        for key, action in self._actions.items():
            action.setText(tr(f"action.{key}"))
        self._update_status()

    def _setting_changed(self, key: str) -> None:
        if key == "ui/language":
            set_language(self.settings.language)
        elif key == "ui/theme":
            theme.apply_theme(QApplication.instance(), self.settings.theme)
            self.update()

    # ================================================================ status bar
    def _update_status(self) -> None:
        self.runtime_label.setText(self.host.runtime or tr("status.runtime_pending"))
        self.runtime_label.setToolTip(self.host.runtime)
        parts, tips = [], []
        for task in TASKS:
            state = self.host.state(task)
            parts.append(f"{tr('tab.' + task)} {STATE_MARK[state.state]}")
            detail = {READY: tr("state.ready", seconds=state.seconds), LOADING: tr("state.loading"),
                      FAILED: state.error, "idle": tr("state.idle")}[state.state]
            tips.append(f"{tr('tab.' + task)}: {detail}")
        self.models_label.setText(tr("status.models") + "  " + "  ·  ".join(parts))
        self.models_label.setToolTip("\n".join(tips))

    def _responded(self, text: str) -> None:
        self.response_label.setText(text)

    # ================================================================ lifecycle
    def start_loading(self) -> None:
        """Load the models in the background (after the window is on screen)."""
        self.host.load_all()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.shown_at is None:
            self.shown_at = time.perf_counter()
            self.shown.emit(self.shown_at)

    def closeEvent(self, event) -> None:
        if not self._closed:
            self._closed = True
            self.settings.set_value("window/geometry", self.saveGeometry())
            self.settings.sync()
            self.host.shutdown()
            i18n().languageChanged.disconnect(self._language_changed)
            self.settings.changed.disconnect(self._setting_changed)
            for tab in self.all_tabs():
                tab.detach()
        super().closeEvent(event)

    # ================================================================ dialogs
    def export_dialog(self) -> None:
        tab = self.current_tab()
        if tab.conversation is None:
            QMessageBox.information(self, tr("action.export"), tr("export.nothing"))
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in tab.conversation.title).strip() or "conversation"
        path, chosen = QFileDialog.getSaveFileName(
            self, tr("action.export"), str(Path.home() / f"{safe}.md"), "Markdown (*.md);;JSON (*.json)")
        if not path:
            return
        if "json" in chosen.lower() and not path.lower().endswith(".json"):
            path += ".json"
        try:
            tab.export_conversation(path)
        except OSError as exc:
            QMessageBox.warning(self, tr("action.export"), str(exc))
            return
        self.statusBar().showMessage(tr("export.done", path=path), 5000)

    def batch_dialog(self) -> None:
        from .batch_dialog import BatchDialog

        task = self.current_tab().task if self.current_tab().task in ("sentiment", "translate") else "sentiment"
        BatchDialog(self.host, self.settings, task, self).exec()

    def models_dialog(self) -> None:
        from .models_dialog import ModelsDialog

        ModelsDialog(self.host, self).exec()

    def install_dialog(self) -> None:
        from .models_dialog import ModelsDialog

        dialog = ModelsDialog(self.host, self)
        dialog.install()
        dialog.exec()

    def settings_dialog(self) -> None:
        from .settings_dialog import SettingsDialog

        SettingsDialog(self.settings, self).exec()

    def shortcuts_dialog(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b></td><td>&nbsp;&nbsp;{tr(what)}</td></tr>" for keys, what in SHORTCUTS)
        QMessageBox.information(self, tr("action.shortcuts"), f"<table>{rows}</table>")

    def about_dialog(self) -> None:
        QMessageBox.about(self, tr("action.about"), tr("about.text", version=__version__,
                                                          runtime=self.host.runtime or "—"))


SHORTCUTS = [
    ("Enter", "shortcut.send"),
    ("Shift+Enter", "shortcut.newline"),
    ("Ctrl+N", "action.new"),
    ("Ctrl+E", "action.export"),
    ("Ctrl+B", "action.batch"),
    ("Ctrl+M", "action.models"),
    ("Ctrl+,", "action.preferences"),
    ("Ctrl+1 / 2 / 3", "shortcut.tabs"),
    ("F1", "action.shortcuts"),
    ("Ctrl+Q", "action.quit"),
]
