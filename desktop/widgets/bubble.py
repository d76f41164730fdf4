"""A chat message bubble: a small header, the body text, optional extras, and actions."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..i18n import tr

ROLES = ("user", "assistant", "error")


class MessageBubble(QFrame):
    """role: ``"user"`` (right, accent colour), ``"assistant"`` (left) or ``"error"`` (left, red).

    ``copy_text`` is what the Copy action puts on the clipboard.
    """

    copied = Signal(str)

    def __init__(self, role: str, text: str = "", meta: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.role = ""
        self.copy_text = text
        self.message_id: int | None = None
        self.payload: dict = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 14, 8)
        layout.setSpacing(4)
        self.meta = QLabel(meta)
        self.meta.setObjectName("bubble-meta")
        self.meta.setVisible(bool(meta))
        layout.addWidget(self.meta)
        self.body = QLabel()
        self.body.setObjectName("bubble-body")
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.body)
        self.extras = QVBoxLayout()
        self.extras.setContentsMargins(0, 2, 0, 2)
        self.extras.setSpacing(6)
        layout.addLayout(self.extras)
        self.action_row = QHBoxLayout()
        self.action_row.setContentsMargins(0, 0, 0, 0)
        self.action_row.setSpacing(2)
        self.action_row.addStretch(1)
        layout.addLayout(self.action_row)
        self.copy_button = self.add_action(tr("bubble.copy"), self.copy)
        self.set_role(role)
        self.set_text(text)

    # -------------------------------------------------------------- content
    def set_role(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(role)
        self.role = role
        self.setObjectName(f"bubble-{role}")
        self.style().unpolish(self)
        self.style().polish(self)
        for label in self.findChildren(QLabel):
            label.style().unpolish(label)
            label.style().polish(label)

    def set_meta(self, text: str) -> None:
        self.meta.setText(text)
        self.meta.setVisible(bool(text))

    def set_text(self, text: str) -> None:
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setText(text)
        self.body.setVisible(bool(text))
        self.copy_text = text
        self._fit_body()

    def set_html(self, html: str, copy_text: str) -> None:
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setText(html)
        self.body.setVisible(True)
        self.copy_text = copy_text
        self._fit_body()

    def fit_width(self, max_width: int) -> None:
        """Grow up to ``max_width`` before wrapping (a word-wrapped label alone would wrap early)."""
        self.setMaximumWidth(max_width)
        self._fit_body()

    def _fit_body(self) -> None:
        for label in [self.body, *self._extra_labels()]:
            self._fit_label(label)

    def _extra_labels(self) -> list[QLabel]:
        labels = []
        for i in range(self.extras.count()):
            widget = self.extras.itemAt(i).widget()
            if isinstance(widget, QLabel) and widget.wordWrap():
                labels.append(widget)
        return labels

    def _fit_label(self, label: QLabel) -> None:
        room = self.maximumWidth() - 32
        if room <= 0 or room > 10_000:
            return
        if label.textFormat() == Qt.TextFormat.RichText:
            doc = QTextDocument()
            doc.setDefaultFont(label.font())
            doc.setHtml(label.text())
            natural = int(doc.idealWidth()) + 2
        else:
            metrics = label.fontMetrics()
            lines = label.text().splitlines() or [""]
            natural = max(metrics.horizontalAdvance(line) for line in lines) + 4 if len(label.text()) < 4000 else room
        label.setMinimumWidth(min(natural, room))

    def text(self) -> str:
        return self.copy_text

    def set_error(self, message: str) -> None:
        self.clear_extras()
        self.set_role("error")
        self.set_text("⚠ " + message)
        self.copy_text = message

    def add_extra(self, widget: QWidget) -> QWidget:
        self.extras.addWidget(widget)
        if isinstance(widget, QLabel) and widget.wordWrap():
            self._fit_label(widget)
        return widget

    def clear_extras(self) -> None:
        while self.extras.count():
            item = self.extras.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        # actions beyond Copy belong to the previous content
        for i in reversed(range(self.action_row.count())):
            w = self.action_row.itemAt(i).widget()
            if w is not None and w is not self.copy_button:
                self.action_row.takeAt(i)
                w.deleteLater()

    def add_action(self, text: str, callback: Callable[..., object], checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setObjectName("bubble-action")
        button.setText(text)
        button.setCheckable(checkable)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setAutoRaise(True)
        if checkable:
            button.toggled.connect(callback)
        else:
            button.clicked.connect(lambda: callback())
        self.action_row.insertWidget(self.action_row.count() - 1, button)
        return button

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.copy_text)
        self.copied.emit(self.copy_text)

    def retranslate(self) -> None:
        self.copy_button.setText(tr("bubble.copy"))
