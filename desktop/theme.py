"""Light and dark themes: the Fusion style, a palette, and the chat bubbles' colours."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colours:
    dark: bool
    window: str
    base: str
    text: str
    muted: str
    user_bubble: str
    user_text: str
    model_bubble: str
    error_bubble: str
    border: str
    accent: str
    positive: str
    negative: str


LIGHT = Colours(False, "#f4f5f7", "#ffffff", "#1d1f23", "#6b7280", "#2f6fde", "#ffffff", "#ffffff", "#fde8e8",
                "#d9dce1", "#2f6fde", "#1f9d55", "#d64545")
DARK = Colours(True, "#1e1f22", "#2b2d31", "#e6e7ea", "#9aa0a8", "#3b74d6", "#ffffff", "#2b2d31", "#4a2424",
               "#3c3f45", "#6ea0ff", "#3ccf7a", "#ff6b6b")

_current = LIGHT

FONT_FAMILIES = ["Noto Sans CJK KR", "Apple SD Gothic Neo", "Malgun Gothic", "NanumGothic", "NanumBarunGothic"]


def colours() -> Colours:
    return _current


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def _palette(c: Colours) -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.window, QPalette.ColorRole.WindowText: c.text,
        QPalette.ColorRole.Base: c.base, QPalette.ColorRole.AlternateBase: c.window,
        QPalette.ColorRole.Text: c.text, QPalette.ColorRole.Button: c.base,
        QPalette.ColorRole.ButtonText: c.text, QPalette.ColorRole.Highlight: c.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: c.base,
        QPalette.ColorRole.ToolTipText: c.text, QPalette.ColorRole.PlaceholderText: c.muted,
        QPalette.ColorRole.Link: c.accent, QPalette.ColorRole.Mid: c.border,
    }
    for role, value in roles.items():
        p.setColor(role, QColor(value))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(c.muted))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(c.muted))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(c.muted))
    return p


def stylesheet(c: Colours) -> str:
    return f"""
QFrame#bubble-user {{ background: {c.user_bubble}; border-radius: 14px; }}
QFrame#bubble-user QLabel {{ color: {c.user_text}; }}
QFrame#bubble-assistant {{ background: {c.model_bubble}; border: 1px solid {c.border}; border-radius: 14px; }}
QFrame#bubble-error {{ background: {c.error_bubble}; border: 1px solid {c.negative}; border-radius: 14px; }}
QLabel#bubble-meta {{ color: {c.muted}; font-size: 11px; }}
QFrame#bubble-user QLabel#bubble-meta {{ color: #dce6fb; }}
QLabel#sentiment-label {{ font-size: 16px; font-weight: 600; }}
QLabel#translation-text {{ font-size: 15px; }}
QToolButton#bubble-action {{ border: none; color: {c.muted}; padding: 2px 6px; border-radius: 6px; }}
QToolButton#bubble-action:hover {{ background: {c.window}; color: {c.accent}; }}
QToolButton#bubble-action:checked {{ color: {c.accent}; }}
QFrame#bubble-user QToolButton#bubble-action {{ color: #dce6fb; }}
QFrame#bubble-user QToolButton#bubble-action:hover {{ background: rgba(255, 255, 255, 40); color: #ffffff; }}
QScrollArea#chat-view, QWidget#chat-canvas {{ background: {c.window}; border: none; }}
QPlainTextEdit#chat-input {{ border: 1px solid {c.border}; border-radius: 10px; padding: 6px; background: {c.base}; }}
QPushButton#send-button {{ background: {c.accent}; color: white; border-radius: 10px; padding: 8px 18px; font-weight: 600; }}
QPushButton#send-button:disabled {{ background: {c.border}; color: {c.muted}; }}
QPushButton#send-button[stop="true"] {{ background: {c.negative}; }}
QLabel#tab-notice {{ color: {c.muted}; padding: 4px 8px; }}
QLabel#tab-notice[error="true"] {{ color: {c.negative}; }}
"""


def apply_theme(app: QApplication, mode: str) -> Colours:
    """Apply ``"light"``, ``"dark"`` or ``"auto"`` (follow the system) to the whole application."""
    global _current
    dark = system_is_dark() if mode == "auto" else mode == "dark"
    _current = DARK if dark else LIGHT
    app.setStyle("Fusion")
    app.setPalette(_palette(_current))
    app.setStyleSheet(stylesheet(_current))
    return _current


def apply_font(app: QApplication) -> None:
    """A font with Hangul glyphs first, so Korean text never falls back to boxes."""
    font = QFont(app.font())
    font.setFamilies(FONT_FAMILIES + [app.font().family()])
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
