"""A horizontal bar split between two labels' probabilities, drawn with QPainter."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath
from PySide6.QtWidgets import QSizePolicy, QWidget

from .. import theme


class ProbabilityBar(QWidget):
    """``value`` = P(positive) in [0, 1]: green from the left, red for the rest."""

    def __init__(self, value: float = 0.5, left: str = "", right: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.value = float(min(max(value, 0.0), 1.0))
        self.left, self.right = left, right
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(160)
        self.setToolTip(f"P(positive) = {self.value:.3f}")

    def set_labels(self, left: str, right: str) -> None:
        self.left, self.right = left, right
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(260, 22)

    def paintEvent(self, event) -> None:
        c = theme.colours()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        clip = QPainterPath()
        clip.addRoundedRect(rect, 6, 6)
        painter.setClipPath(clip)
        painter.fillRect(rect, QColor(c.negative))
        painter.fillRect(QRectF(rect.left(), rect.top(), rect.width() * self.value, rect.height()), QColor(c.positive))
        painter.setClipping(False)
        painter.setPen(QColor("#ffffff"))
        font = painter.font()
        font.setPixelSize(11)
        font.setBold(True)
        painter.setFont(font)
        inner = rect.adjusted(8, 0, -8, 0)
        painter.drawText(inner, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         f"{self.left} {self.value:.0%}".strip())
        painter.drawText(inner, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         f"{self.right} {1 - self.value:.0%}".strip())
        painter.end()
