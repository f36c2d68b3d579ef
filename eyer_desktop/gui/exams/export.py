"""File > Export to folder: the selected exams as DICOM files, on a worker.

The dialog takes the folder and whether to write a DICOMDIR, the index that
viewers on CDs, DVDs and USB sticks read. The export runs on a worker with
progress and can be stopped between exams. An exam that fails is listed with
its reason while the others are written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.dicom.options import ConversionOptions
from eyer_desktop.core.errors import EyerError
from eyer_desktop.core.export import ExportReport, export_exams
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.exams.labels import plural
from eyer_desktop.gui.form_fields import ErrorLabel
from eyer_desktop.gui.workers import (
    Worker,
    WorkerCancelledError,
    WorkerControl,
    WorkerPool,
)

logger = logging.getLogger(__name__)


def run_export(
    library: ExamLibrary,
    exam_ids: Sequence[str],
    options: ConversionOptions,
    target: Path,
    dicomdir: bool,
    *,
    control: WorkerControl,
) -> ExportReport:
    """Export on a worker, reporting (done, total) and stopping when cancelled."""
    return export_exams(
        library,
        exam_ids,
        options,
        target,
        dicomdir=dicomdir,
        progress=lambda done, total: control.report_progress((done, total)),
        should_stop=lambda: control.cancelled,
    )


def export_summary(report: ExportReport) -> str:
    """Return the outcome of an export in words: one line, then each failure."""
    text = plural(
        len(report.exported),
        QCoreApplication.translate(
            "ExportDialog", "Wrote 1 exam, %2 DICOM files, to %3."
        ),
        QCoreApplication.translate(
            "ExportDialog", "Wrote %n exams, %2 DICOM files, to %3."
        ),
    )
    text = text.replace("%2", str(report.file_count)).replace("%3", str(report.folder))
    if report.dicomdir is not None:
        text += (
            " "
            + QCoreApplication.translate("ExportDialog", "The DICOMDIR is %s.")
            % report.dicomdir
        )
    if report.stopped:
        text += " " + QCoreApplication.translate(
            "ExportDialog", "The export was stopped before the end."
        )
    for failure in report.failures:
        text += (
            "\n"
            + QCoreApplication.translate("ExportDialog", "Not exported: %s")
            % failure.error
        )
    return text


class ExportDialog(QDialog):
    """Exports exams to a folder chosen by the user.

    Signals:
        exported: The export ended; carries the ExportReport.
    """

    exported = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        pool: WorkerPool,
        exam_ids: Sequence[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Export to Folder"))
        self._workspace = workspace
        self._pool = pool
        self.exam_ids = list(exam_ids)
        self._worker: Worker | None = None
        self.report: ExportReport | None = None
        self._build()
        self.resize(620, 0)

    def _build(self) -> None:
        summary = QLabel(
            plural(
                len(self.exam_ids),
                self.tr("1 exam will be written as DICOM files."),
                self.tr("%n exams will be written as DICOM files."),
            ),
            self,
        )

        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText(self.tr("Folder or drive to write to"))
        browse = QPushButton(self.tr("Browse..."), self)
        browse.clicked.connect(self.browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)

        self.dicomdir_check = QCheckBox(
            self.tr("Write a DICOMDIR for a CD, DVD or USB stick"), self
        )
        self.dicomdir_check.setToolTip(
            self.tr(
                "Viewers on removable media read the DICOMDIR index. The files "
                "then get short names such as PT000000/ST000000/SE000000/IM000000."
            )
        )
        explanation = QLabel(
            self.tr(
                "Without a DICOMDIR, each exam gets its own folder named by its "
                "capture date, time and number, such as 20250314092653_7. File "
                "and folder names contain no patient data."
            ),
            self,
        )
        explanation.setWordWrap(True)
        explanation.setEnabled(False)

        self.error_label = ErrorLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.result_label = QLabel(self)
        self.result_label.setWordWrap(True)

        self.buttons = QDialogButtonBox(self)
        self.export_button = self.buttons.addButton(
            self.tr("Export"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.export_button.setDefault(True)
        self.close_button = self.buttons.addButton(
            QDialogButtonBox.StandardButton.Close
        )
        self.buttons.accepted.connect(self.start_export)
        self.buttons.rejected.connect(self.stop_or_close)

        form = QFormLayout()
        form.addRow(self.tr("Folder"), folder_row)
        form.addRow("", self.dicomdir_check)

        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addLayout(form)
        layout.addWidget(explanation)
        layout.addWidget(self.error_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)

    def browse(self) -> None:
        """Let the user choose the target folder."""
        folder = QFileDialog.getExistingDirectory(
            self, self.tr("Export to Folder"), self.folder_edit.text()
        )
        if folder:
            self.folder_edit.setText(folder)

    def start_export(self) -> None:
        """Start the export on a worker, unless the folder is missing."""
        text = self.folder_edit.text().strip()
        if not text:
            self.error_label.show_error(
                self.tr("Choose the folder to write the DICOM files to.")
            )
            return
        self.error_label.show_error(None)
        try:
            options = conversion_options(self._workspace.settings)
        except EyerError as err:
            self.error_label.show_error(str(err))
            return

        worker = Worker(
            run_export,
            self._workspace.library,
            self.exam_ids,
            options,
            Path(text).expanduser(),
            self.dicomdir_check.isChecked(),
            takes_control=True,
            name="export to folder",
        )
        worker.signals.progress.connect(self._progress)
        on_ending(worker, self, self._finished, self._failed)
        self._worker = worker
        self._set_running(True)
        self._pool.start(worker)

    def is_running(self) -> bool:
        return self._worker is not None

    def stop_or_close(self) -> None:
        """Stop a running export after the current exam, or close the dialog."""
        if self._worker is not None:
            self._worker.cancel()
            self.result_label.setText(self.tr("Stopping after the current exam..."))
            return
        self.reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._worker is not None:
            self.stop_or_close()
            event.ignore()
            return
        super().closeEvent(event)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.progress.setRange(0, len(self.exam_ids))
        self.progress.setValue(0)
        self.export_button.setEnabled(not running)
        self.folder_edit.setEnabled(not running)
        self.dicomdir_check.setEnabled(not running)
        self.close_button.setText(self.tr("Stop") if running else self.tr("Close"))
        if running:
            self.result_label.setText(self.tr("Exporting..."))

    def _progress(self, value: tuple[int, int]) -> None:
        done, total = value
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _finished(self, report: ExportReport) -> None:
        self._worker = None
        self.report = report
        self._set_running(False)
        self.result_label.setText(export_summary(report))
        self.exported.emit(report)

    def _failed(self, error: BaseException) -> None:
        self._worker = None
        self._set_running(False)
        if isinstance(error, WorkerCancelledError):
            self.result_label.setText(self.tr("The export was stopped."))
            return
        if not isinstance(error, EyerError):
            raise error
        self.result_label.setText("")
        self.error_label.show_error(str(error))
