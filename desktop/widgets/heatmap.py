"""Attention heatmap: target pieces (rows) × source pieces (columns), drawn with QPainter."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from .. import theme

CELL = 22


def _label(piece: str) -> str:
    return piece.replace("\u2581", "·") if piece != "\u2581" else "·"


class AttentionHeatmap(QWidget):
    """weights: [T_tgt][T_src] rows summing to 1; hovering a cell shows its pair and weight."""

    def __init__(self, weights: Sequence[Sequence[float]], target: Sequence[str], source: Sequence[str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        rows = [list(r) for r in weights]
        self.weights = rows
        n_t = len(rows)
        n_s = max((len(r) for r in rows), default=0)
        self.target = [_label(p) for p in list(target)[:n_t]] + [""] * max(0, n_t - len(target))
        self.source = [_label(p) for p in list(source)[:n_s]] + [""] * max(0, n_s - len(source))
        fm = QFontMetrics(self.font())
        self.left = min(max((fm.horizontalAdvance(t) for t in self.target), default=0) + 10, 160)
        self.top = min(max((fm.horizontalAdvance(s) for s in self.source), default=0) + 10, 160)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setFixedSize(self.sizeHint())

    def sizeHint(self) -> QSize:
        return QSize(self.left + CELL * len(self.source) + 4, self.top + CELL * len(self.target) + 4)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        col = (pos.x() - self.left) // CELL
        row = (pos.y() - self.top) // CELL
        if pos.x() >= self.left and pos.y() >= self.top and 0 <= row < len(self.target) and 0 <= col < len(self.source):
            return int(row), int(col)
        return None

    def mouseMoveEvent(self, event) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            QToolTip.hideText()
            return
        r, col = cell
        value = self.weights[r][col] if col < len(self.weights[r]) else 0.0
        QToolTip.showText(event.globalPosition().toPoint(), f"{self.target[r]} ← {self.source[col]}: {value:.3f}", self)

    def paintEvent(self, event) -> None:
        c = theme.colours()
        painter = QPainter(self)
        base = QColor(c.base)
        hot = QColor(c.accent)
        text = QColor(c.text)
        painter.setPen(text)
        for r, row in enumerate(self.weights):
            y = self.top + r * CELL
            painter.drawText(QRect(0, y, self.left - 6, CELL), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             self.target[r])
            for col, value in enumerate(row):
                t = max(0.0, min(float(value), 1.0)) ** 0.7
                colour = QColor(round(base.red() + (hot.red() - base.red()) * t),
                                round(base.green() + (hot.green() - base.green()) * t),
                                round(base.blue() + (hot.blue() - base.blue()) * t))
                painter.fillRect(QRect(self.left + col * CELL, y, CELL - 1, CELL - 1), colour)
        painter.save()
        for col, piece in enumerate(self.source):
            x = self.left + col * CELL
            painter.save()
            painter.translate(x + CELL // 2 + 4, self.top - 6)
            painter.rotate(-90)
            painter.drawText(QRect(0, -CELL // 2, self.top - 6, CELL), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             piece)
            painter.restore()
        painter.restore()
        painter.end()
