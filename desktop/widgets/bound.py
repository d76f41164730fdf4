"""Option controls bound to a settings key: they start from the stored value,
write every change back, and follow changes made elsewhere (the Settings dialog)."""

from __future__ import annotations

from typing import Any

from shiboken6 import isValid
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget

from ..settings import Settings


def widget_value(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    raise TypeError(type(widget))


def set_widget_value(widget: QWidget, value: Any) -> None:
    blocked = widget.blockSignals(True)
    try:
        if isinstance(widget, QComboBox):
            index = widget.findData(value)
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(value)
    finally:
        widget.blockSignals(blocked)


def _changed_signal(widget: QWidget):
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    if isinstance(widget, QCheckBox):
        return widget.toggled
    return widget.valueChanged


def bind(widget: QWidget, settings: Settings, key: str, live: bool = True) -> QWidget:
    """Show ``settings.value(key)`` in ``widget``; with ``live``, keep the two in step."""
    set_widget_value(widget, settings.value(key))
    if live:
        _changed_signal(widget).connect(lambda *_: settings.set_value(key, widget_value(widget)))

        def follow(changed: str) -> None:
            if changed == key and isValid(widget) and widget_value(widget) != settings.value(key):
                set_widget_value(widget, settings.value(key))

        settings.changed.connect(follow)
    return widget
