"""The side list of a tab's conversations with New / Rename / Delete / Clear."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..i18n import tr


class ConversationList(QWidget):
    """Emits ``selected(id)``; the buttons emit requests the tab carries out."""

    selected = Signal(int)
    newRequested = Signal()
    renameRequested = Signal()
    deleteRequested = Signal()
    clearRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton()
        self.new_button.clicked.connect(self.newRequested)
        layout.addWidget(self.new_button)
        self.list = QListWidget()
        self.list.setObjectName("conversation-list")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.renameRequested.emit())
        layout.addWidget(self.list, 1)
        buttons = QGridLayout()
        self.rename_button = QPushButton()
        self.delete_button = QPushButton()
        self.clear_button = QPushButton()
        self.rename_button.clicked.connect(self.renameRequested)
        self.delete_button.clicked.connect(self.deleteRequested)
        self.clear_button.clicked.connect(self.clearRequested)
        buttons.addWidget(self.rename_button, 0, 0)
        buttons.addWidget(self.delete_button, 0, 1)
        buttons.addWidget(self.clear_button, 1, 0, 1, 2)
        layout.addLayout(buttons)
        self.setMinimumWidth(170)
        self.setMaximumWidth(280)
        self.retranslate()

    def retranslate(self) -> None:
        self.new_button.setText("+ " + tr("conv.new"))  # an ASCII plus: every font has it
        self.rename_button.setText(tr("conv.rename"))
        self.delete_button.setText(tr("conv.delete"))
        self.clear_button.setText(tr("conv.clear"))

    def set_conversations(self, items: list[tuple[int, str]], current: int | None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for cid, title in items:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, cid)
            item.setToolTip(title)
            self.list.addItem(item)
            if cid == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        has = current is not None
        for b in (self.rename_button, self.delete_button, self.clear_button):
            b.setEnabled(has)

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _current_changed(self, item: QListWidgetItem | None, _previous) -> None:
        if item is not None:
            self.selected.emit(int(item.data(Qt.ItemDataRole.UserRole)))
