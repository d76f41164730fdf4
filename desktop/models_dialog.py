"""Models: the installed packages with their cards, and installing one from disk."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from nlpcore.packages import ModelCard, PackageError, iter_packages

from .host import ModelHost
from .i18n import tr
from .install import TASK_TAB, install_from
from .records import describe_error
from .workers import Worker


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def card_html(card: ModelCard, path: Path) -> str:
    """A package card as rich text: what it is, its data, license, metrics and size."""
    e = html.escape
    parts = [f"<h3>{e(card.name)} <small>v{e(card.version)}</small></h3>"]
    if card.description:
        parts.append(f"<p>{e(card.description)}</p>")
    parts.append("<table cellspacing=4>")
    rows = [
        (tr("card.task"), card.task), (tr("card.languages"), ", ".join(card.languages)),
        (tr("card.license"), card.license or "—"), (tr("card.size"), human_size(card.size_bytes)),
        (tr("card.created"), card.created or "—"), (tr("card.backend"), f"{card.backend} (Keras {card.keras_version})"),
        (tr("card.path"), str(path)),
    ]
    parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table>")
    if card.data:
        parts.append(f"<h4>{tr('card.data')}</h4><ul>")
        for source in card.data:
            extra = ", ".join(x for x in (f"{source.rows:,} rows" if source.rows else "", source.license, source.notes) if x)
            parts.append(f"<li>{e(source.name)}{' — ' + e(extra) if extra else ''}</li>")
        parts.append("</ul>")
    if card.metrics:
        parts.append(f"<h4>{tr('card.metrics')}</h4>")
        for split, values in card.metrics.items():
            if isinstance(values, dict):
                shown = ", ".join(f"{e(str(k))} = {v:.4g}" if isinstance(v, (int, float)) else f"{e(str(k))}"
                                  for k, v in values.items() if not isinstance(v, (dict, list)))
                parts.append(f"<p><i>{e(str(split))}</i>: {shown}</p>")
            else:
                parts.append(f"<p><i>{e(str(split))}</i>: {e(str(values))}</p>")
    return "".join(parts)


class ModelsDialog(QDialog):
    def __init__(self, host: ModelHost, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("models-dialog")
        self.host = host
        self.setWindowTitle(tr("action.models"))
        self.resize(860, 520)
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels([tr("card.name"), tr("card.task"), tr("card.languages"),
                                              tr("card.size"), tr("card.license")])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.currentCellChanged.connect(lambda row, *_: self._show(row))
        splitter.addWidget(self.table)
        self.details = QTextBrowser()
        self.details.setObjectName("card-view")
        splitter.addWidget(self.details)
        splitter.setSizes([420, 440])
        layout.addWidget(splitter, 1)
        row = QHBoxLayout()
        self.install_folder_button = QPushButton(tr("models.install_folder"))
        self.install_folder_button.clicked.connect(lambda: self.install(folder=True))
        self.install_zip_button = QPushButton(tr("models.install_zip"))
        self.install_zip_button.clicked.connect(lambda: self.install(folder=False))
        row.addWidget(self.install_folder_button)
        row.addWidget(self.install_zip_button)
        row.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row.addWidget(buttons)
        layout.addLayout(row)
        self._worker: Worker | None = None
        self.refresh()

    def refresh(self) -> None:
        self.entries = list(iter_packages())
        self.table.setRowCount(len(self.entries))
        for r, (path, card) in enumerate(self.entries):
            if isinstance(card, PackageError):
                values = [path.name, tr("card.unreadable"), "", "", ""]
            else:
                values = [card.name, card.task, ", ".join(card.languages), human_size(card.size_bytes), card.license]
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(value))
        if self.entries:
            self.table.selectRow(0)
            self._show(0)
        else:
            self.details.setHtml(f"<p>{tr('models.none')}</p>")

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.entries):
            return
        path, card = self.entries[row]
        if isinstance(card, PackageError):
            self.details.setHtml(f"<h3>{html.escape(path.name)}</h3><p style='color:#d64545'>{html.escape(str(card))}</p>")
        else:
            self.details.setHtml(card_html(card, path))

    def install(self, folder: bool = True, path: str | None = None) -> Worker | None:
        """Verify and install a package folder or zip (chosen in a file dialog when ``path`` is None)."""
        if path is None:
            if folder:
                path = QFileDialog.getExistingDirectory(self, tr("models.install_folder"))
            else:
                path, _ = QFileDialog.getOpenFileName(self, tr("models.install_zip"), "", "Zip (*.zip)")
        if not path:
            return None
        self.install_folder_button.setEnabled(False)
        self.install_zip_button.setEnabled(False)
        self.details.setHtml(f"<p>{tr('models.verifying', path=html.escape(str(path)))}</p>")
        worker = Worker(lambda cancel: install_from(path), name="install")
        worker.signals.returned.connect(self._installed)
        worker.signals.errored.connect(self._install_failed)
        self._worker = worker
        QThreadPool.globalInstance().start(worker)
        return worker

    def _done(self) -> None:
        self.install_folder_button.setEnabled(True)
        self.install_zip_button.setEnabled(True)

    def _installed(self, result) -> None:
        target, card = result
        self._done()
        self.refresh()
        task = TASK_TAB.get(card.task)
        if task is not None:
            self.host.load(task)
        QMessageBox.information(self, tr("action.install"), tr("models.installed", name=card.name, path=str(target)))

    def _install_failed(self, exc: BaseException) -> None:
        self._done()
        self.refresh()
        QMessageBox.warning(self, tr("action.install"), tr("models.install_failed", error=describe_error(exc)))
