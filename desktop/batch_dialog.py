"""File ▸ Batch process: sentiment or translation of every line of a TXT/CSV file, with progress."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nlpcore.services import TranslateOptions

from .batch import default_output, sentiment_job, translate_job
from .host import ModelHost
from .i18n import tr
from .records import describe_error
from .settings import Settings
from .workers import Worker


class BatchDialog(QDialog):
    def __init__(self, host: ModelHost, settings: Settings, task: str = "sentiment", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("batch-dialog")
        self.host = host
        self.settings = settings
        self.worker: Worker | None = None
        self.progress: QProgressDialog | None = None
        self.setWindowTitle(tr("action.batch"))
        self.resize(560, 0)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.task_box = QComboBox()
        self.task_box.addItem(tr("tab.sentiment"), "sentiment")
        self.task_box.addItem(tr("tab.translate"), "translate")
        self.task_box.setCurrentIndex(max(self.task_box.findData(task), 0))
        form.addRow(tr("batch.task"), self.task_box)
        self.direction_box = QComboBox()
        directions = host.state("translate").info.get("directions") or [
            (settings.value("translate/src"), settings.value("translate/tgt"))]
        for src, tgt in directions:
            self.direction_box.addItem(f"{tr('lang.' + src)} → {tr('lang.' + tgt)}", (src, tgt))
        current = self.direction_box.findData((settings.value("translate/src"), settings.value("translate/tgt")))
        self.direction_box.setCurrentIndex(max(current, 0))
        form.addRow(tr("translate.languages"), self.direction_box)
        self.input_edit = QLineEdit()
        self.output_edit = QLineEdit()
        form.addRow(tr("batch.input"), self._with_browse(self.input_edit, self._browse_input))
        form.addRow(tr("batch.output"), self._with_browse(self.output_edit, self._browse_output))
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("batch.run"))
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.task_box.currentIndexChanged.connect(self._task_changed)
        self._task_changed()

    def _with_browse(self, edit: QLineEdit, slot) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QPushButton(tr("batch.browse"))
        button.clicked.connect(slot)
        row.addWidget(button)
        return box

    def _task_changed(self) -> None:
        self.direction_box.setEnabled(self.task_box.currentData() == "translate")
        if self.input_edit.text():
            self.output_edit.setText(str(default_output(self.input_edit.text(), self.task_box.currentData())))

    def _browse_input(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("batch.input"), "", tr("batch.filter"))
        if path:
            self.input_edit.setText(path)
            self.output_edit.setText(str(default_output(path, self.task_box.currentData())))

    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("batch.output"), self.output_edit.text(), "CSV (*.csv)")
        if path:
            self.output_edit.setText(path)

    def start(self) -> Worker | None:
        task = self.task_box.currentData()
        source, output = self.input_edit.text().strip(), self.output_edit.text().strip()
        if not source or not Path(source).is_file():
            QMessageBox.warning(self, tr("action.batch"), tr("batch.no_input"))
            return None
        if not self.host.is_ready(task):
            QMessageBox.warning(self, tr("action.batch"), tr("batch.not_ready", task=tr("tab." + task)))
            return None
        output = output or str(default_output(source, task))
        if task == "sentiment":
            job = sentiment_job(source, output, self.settings.value("sentiment/model"))
        else:
            src, tgt = self.direction_box.currentData()
            beam = self.settings.value("translate/beam_size")
            job = translate_job(source, output, src, tgt, TranslateOptions(beam_size=beam, n_best=1))
        self.output = output
        self.progress = QProgressDialog(tr("batch.running", path=Path(source).name), tr("batch.cancel"), 0, 0, self)
        self.progress.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress.setMinimumDuration(0)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        def setup(worker: Worker) -> None:
            self.worker = worker
            worker.signals.yielded.connect(self._progress)
            worker.signals.returned.connect(self._done)
            worker.signals.errored.connect(self._failed)

        self.host.run(task, job, key="batch", name="batch", setup=setup)
        self.progress.canceled.connect(self.worker.cancel.set)
        self.progress.show()
        return self.worker

    def _progress(self, step) -> None:
        done, total = step
        if self.progress is not None:
            self.progress.setMaximum(max(total, 1))
            self.progress.setValue(done)
            self.progress.setLabelText(tr("batch.progress", done=done, total=total))

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def _done(self, _result) -> None:
        cancelled = self.worker is not None and self.worker.cancel.is_set()
        self._close_progress()
        self.result_text = tr("batch.cancelled" if cancelled else "batch.done", path=self.output)
        self.accept()
        QMessageBox.information(self.parentWidget(), tr("action.batch"), self.result_text)

    def _failed(self, exc: BaseException) -> None:
        self._close_progress()
        self.result_text = describe_error(exc)
        QMessageBox.warning(self, tr("action.batch"), self.result_text)
