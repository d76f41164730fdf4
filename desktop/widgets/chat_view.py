"""The transcript: bubbles in a scrolling column, user on the right, model on the left."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from .bubble import MessageBubble

MAX_WIDTH_FRACTION = 0.78


class ChatView(QScrollArea):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("chat-view")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        canvas = QWidget()
        canvas.setObjectName("chat-canvas")
        self.column = QVBoxLayout(canvas)
        self.column.setContentsMargins(16, 16, 16, 16)
        self.column.setSpacing(10)
        self.placeholder = QLabel()
        self.placeholder.setObjectName("tab-notice")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.column.addWidget(self.placeholder)
        self.column.addStretch(1)
        self.setWidget(canvas)
        self._bubbles: list[MessageBubble] = []
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._on_range)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)

    def set_placeholder(self, text: str) -> None:
        self.placeholder.setText(text)
        self.placeholder.setVisible(not self._bubbles and bool(text))

    def bubbles(self) -> list[MessageBubble]:
        return list(self._bubbles)

    def add_bubble(self, bubble: MessageBubble) -> MessageBubble:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if bubble.role == "user":
            row.addStretch(1)
            row.addWidget(bubble)
        else:
            row.addWidget(bubble)
            row.addStretch(1)
        self.column.insertLayout(self.column.count() - 1, row)
        self._bubbles.append(bubble)
        self._fit(bubble)
        self.placeholder.hide()
        self._follow = True
        return bubble

    def remove_bubble(self, bubble: MessageBubble) -> None:
        if bubble not in self._bubbles:
            return
        self._bubbles.remove(bubble)
        for i in range(self.column.count()):
            item = self.column.itemAt(i)
            if item.layout() is not None and item.layout().indexOf(bubble) >= 0:
                layout = self.column.takeAt(i).layout()
                bubble.setParent(None)
                bubble.deleteLater()
                layout.deleteLater()
                break
        self.placeholder.setVisible(not self._bubbles and bool(self.placeholder.text()))

    def clear(self) -> None:
        for bubble in list(self._bubbles):
            self.remove_bubble(bubble)

    def scroll_to_bottom(self) -> None:
        self._follow = True
        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))

    def _fit(self, bubble: MessageBubble) -> None:
        bubble.fit_width(max(280, int(self.viewport().width() * MAX_WIDTH_FRACTION)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for bubble in self._bubbles:
            self._fit(bubble)

    def _on_scroll(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _on_range(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)
