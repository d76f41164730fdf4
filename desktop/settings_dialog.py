"""Settings (Ctrl+,): theme, UI language and the options each tab starts with."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .i18n import LANGUAGE_NAMES, tr
from .settings import THEMES, Settings
from .widgets.bound import bind, widget_value


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("settings-dialog")
        self.settings = settings
        self.setWindowTitle(tr("action.preferences"))
        self.fields: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)

        general = QGroupBox(tr("settings.general"))
        form = QFormLayout(general)
        self.theme_box = QComboBox()
        for name in THEMES:
            self.theme_box.addItem(tr("theme." + name), name)
        self._field(form, "settings.theme", "ui/theme", self.theme_box)
        self.language_box = QComboBox()
        for code, name in LANGUAGE_NAMES.items():
            self.language_box.addItem(name, code)
        self._field(form, "settings.language", "ui/language", self.language_box)
        if self.language_box.findData(settings.value("ui/language")) < 0:
            self.language_box.setCurrentIndex(self.language_box.findData(settings.language))
        layout.addWidget(general)

        defaults = QGroupBox(tr("settings.defaults"))
        form = QFormLayout(defaults)
        model = QComboBox()
        for name in ("auto", "sentiment-ko", "sentiment-en"):
            model.addItem(tr(f"sentiment.model.{name}"), name)
        self._field(form, "sentiment.model", "sentiment/model", model)
        self._field(form, "translate.beam", "translate/beam_size", self._spin(1, 16))
        self._field(form, "translate.nbest", "translate/n_best", self._spin(1, 16))
        self._field(form, "generate.temperature", "generate/temperature", self._double(0.05, 3.0, 0.05))
        self._field(form, "generate.top_k", "generate/top_k", self._spin(0, 1000))
        self._field(form, "generate.top_p", "generate/top_p", self._double(0.01, 1.0, 0.05))
        self._field(form, "generate.penalty", "generate/repetition_penalty", self._double(0.5, 3.0, 0.05))
        self._field(form, "generate.max_tokens", "generate/max_new_tokens", self._spin(1, 4000))
        layout.addWidget(defaults)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _spin(self, low: int, high: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        return box

    def _double(self, low: float, high: float, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        return box

    def _field(self, form: QFormLayout, label: str, key: str, widget: QWidget) -> None:
        bind(widget, self.settings, key, live=False)
        self.fields[key] = widget
        form.addRow(tr(label), widget)

    def accept(self) -> None:
        """Store every field; language and theme apply at once."""
        for key, widget in self.fields.items():
            self.settings.set_value(key, widget_value(widget))
        self.settings.sync()
        super().accept()
