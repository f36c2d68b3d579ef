"""The import dialog: loose JPEG or PNG files and a patient form become an exam.

The form is checked with the core's own rules (:func:`make_patient`) before
anything is written, and each problem is shown under its field with the
core's message. The import itself decodes every image once and copies the
files into the library, so it runs on a worker. Its problems are mapped to
the fields and images the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.caches import DiskThumbnailCache
from eyer_desktop.core.errors import EyerError, ValidationError
from eyer_desktop.core.exams import (
    DeviceInfo,
    Diopters,
    Exam,
    ExamType,
    Laterality,
    Patient,
    Sex,
    WorklistLink,
)
from eyer_desktop.core.importer import ImageInput, import_images, make_patient
from eyer_desktop.core.manifest import ExamValidationError
from eyer_desktop.core.net.worklist import WorklistItem
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.delegate import paint_eye_badge
from eyer_desktop.gui.exams.drag import IMAGE_SUFFIXES
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.exams.labels import exam_type_label, eye_label
from eyer_desktop.gui.exams.thumbnails import ThumbnailCache, ThumbnailLoader
from eyer_desktop.gui.form_fields import ErrorLabel
from eyer_desktop.gui.workers import Worker, WorkerPool

logger = logging.getLogger(__name__)

IMPORT_THUMBNAIL_SIZE = 112
IMPORT_ICON_SIZE = QSize(56, 56)
DOCUMENT_TYPES = ("", "CPF", "CNS", "RG", "MRN")

# A file name part that names the eye: L, OS or OE (olho esquerdo) and LEFT
# for the left eye, R, OD and RIGHT for the right one.
_LEFT_NAME = re.compile(r"(?:^|[^a-z])(?:l|os|oe|left)(?:[^a-z]|$)", re.IGNORECASE)
_RIGHT_NAME = re.compile(r"(?:^|[^a-z])(?:r|od|right)(?:[^a-z]|$)", re.IGNORECASE)

# Field paths of the core's problems -> the form field that shows them.
_FIELD_OF_PROBLEM = {
    "patient.name": "family",
    "patient.name.family": "family",
    "patient.name.given": "given",
    "patient.name.middle": "middle",
    "patient.document": "document_number",
    "patient.document.number": "document_number",
    "patient.document.type": "document_type",
    "patient.sex": "sex",
    "patient.birth_date": "birth_date",
    "diopters.R": "diopter_right",
    "diopters.L": "diopter_left",
    "anamnesis": "notes",
    "pupil_dilated": "pupil_dilated",
    "exam_type": "exam_type",
    "images": "images",
    "image file": "images",
}


def guess_laterality(path: Path) -> Laterality | None:
    """Return the eye a file name names, or None when it names neither or both."""
    stem = path.stem
    left = _LEFT_NAME.search(stem) is not None
    right = _RIGHT_NAME.search(stem) is not None
    if left == right:
        return None
    return Laterality.LEFT if left else Laterality.RIGHT


def field_of_problem(problem: ValidationError) -> str:
    """Return the form field that shows a problem, or "general"."""
    return _FIELD_OF_PROBLEM.get(problem.field, "general")


def problem_text(problem: ValidationError) -> str:
    """Return a problem as shown under its field: what is wrong, then the fix."""
    return f"{problem.problem[:1].upper()}{problem.problem[1:]}. {problem.fix}"


class ImportDialog(QDialog):
    """Creates an exam from image files and the patient data typed in.

    Signals:
        exam_imported: The exam was written to the library; carries the Exam.
    """

    exam_imported = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        pool: WorkerPool,
        thumbnail_cache: ThumbnailCache,
        disk_cache: DiskThumbnailCache | None,
        *,
        thumbnail_pool: WorkerPool | None = None,
        paths: Iterable[Path] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Import Images as an Exam"))
        self._workspace = workspace
        self._pool = pool
        self._worklist: WorklistLink | None = None
        self._worker: Worker | None = None
        self._errors: dict[str, ErrorLabel] = {}
        self._thumbnails = ThumbnailLoader(
            thumbnail_pool or pool, thumbnail_cache, disk_cache, self
        )
        self._thumbnails.thumbnail_ready.connect(self._thumbnail_ready)
        self._build()
        self.add_images(paths)
        self.resize(980, 640)

    # Layout

    def _build(self) -> None:
        self.worklist_banner = QLabel(self)
        self.worklist_banner.setWordWrap(True)
        self.worklist_banner.setStyleSheet(
            "background: #e5f1fb; color: #0b5394; padding: 6px; border-radius: 3px;"
        )
        self.worklist_banner.setVisible(False)

        columns = QHBoxLayout()
        columns.addWidget(self._build_patient_box(), 1)
        columns.addWidget(self._build_images_box(), 1)

        self.general_error = ErrorLabel(self)
        self._errors["general"] = self.general_error
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)

        self.buttons = QDialogButtonBox(self)
        self.import_button = self.buttons.addButton(
            self.tr("Import"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.import_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.worklist_banner)
        layout.addLayout(columns, 1)
        layout.addWidget(self.general_error)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)

    def _build_patient_box(self) -> QGroupBox:
        box = QGroupBox(self.tr("Patient and exam"), self)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        self.family_edit = QLineEdit(box)
        self.given_edit = QLineEdit(box)
        self.middle_edit = QLineEdit(box)
        self.document_type_combo = QComboBox(box)
        self.document_type_combo.setEditable(True)
        self.document_type_combo.addItems(DOCUMENT_TYPES)
        self.document_type_combo.setMinimumContentsLength(12)
        line_edit = self.document_type_combo.lineEdit()
        if line_edit is not None:
            line_edit.setPlaceholderText(self.tr("e.g. CPF"))
        self.document_type_combo.setToolTip(
            self.tr("The kind of document the clinic registers patients by")
        )
        self.document_number_edit = QLineEdit(box)
        self.sex_combo = self._choice_combo(
            box,
            [
                (self.tr("Not recorded"), None),
                (self.tr("Female"), Sex.FEMALE),
                (self.tr("Male"), Sex.MALE),
                (self.tr("Other"), Sex.OTHER),
            ],
        )
        self.birth_date_edit = QLineEdit(box)
        self.birth_date_edit.setPlaceholderText(self.tr("YYYY-MM-DD, empty if unknown"))
        self.exam_type_combo = self._choice_combo(
            box, [(exam_type_label(kind), kind) for kind in ExamType]
        )
        self.diabetes_combo = self._answer_combo(box)
        self.hypertension_combo = self._answer_combo(box)
        self.notes_edit = QPlainTextEdit(box)
        self.notes_edit.setPlaceholderText(self.tr("Complaints and other answers"))
        self.notes_edit.setFixedHeight(56)
        self.notes_edit.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed
        )
        self.diopter_right_edit = QLineEdit(box)
        self.diopter_left_edit = QLineEdit(box)
        for edit in (self.diopter_right_edit, self.diopter_left_edit):
            edit.setPlaceholderText(self.tr("e.g. -1.25, empty if not recorded"))
        self.pupil_combo = self._answer_combo(box)

        rows: list[tuple[str, str, QWidget]] = [
            ("family", self.tr("Family name *"), self.family_edit),
            ("given", self.tr("Given name"), self.given_edit),
            ("middle", self.tr("Middle name"), self.middle_edit),
            ("document_type", self.tr("Document type"), self.document_type_combo),
            (
                "document_number",
                self.tr("Document number *"),
                self.document_number_edit,
            ),
            ("sex", self.tr("Sex"), self.sex_combo),
            ("birth_date", self.tr("Birth date"), self.birth_date_edit),
            ("exam_type", self.tr("Exam type"), self.exam_type_combo),
            ("diabetes", self.tr("Diabetes"), self.diabetes_combo),
            ("hypertension", self.tr("Hypertension"), self.hypertension_combo),
            ("notes", self.tr("Anamnesis notes"), self.notes_edit),
            ("diopter_right", self.tr("Diopters OD (right)"), self.diopter_right_edit),
            ("diopter_left", self.tr("Diopters OS (left)"), self.diopter_left_edit),
            ("pupil_dilated", self.tr("Pupil dilated"), self.pupil_combo),
        ]
        for key, label, field in rows:
            form.addRow(label, self._with_error(key, field))
        required = QLabel(self.tr("* required"), box)
        required.setEnabled(False)
        form.addRow("", required)
        return box

    def _with_error(self, key: str, field: QWidget) -> QWidget:
        container = QWidget(field.parentWidget())
        layout = QVBoxLayout(container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(field)
        error = ErrorLabel(container)
        error.setObjectName(f"{key}_error")
        layout.addWidget(error)
        self._errors[key] = error
        return container

    @staticmethod
    def _choice_combo(parent: QWidget, choices: Sequence[tuple[str, Any]]) -> QComboBox:
        combo = QComboBox(parent)
        for text, value in choices:
            combo.addItem(text, value)
        return combo

    def _answer_combo(self, parent: QWidget) -> QComboBox:
        return self._choice_combo(
            parent,
            [
                (self.tr("Unknown"), "unknown"),
                (self.tr("Yes"), "yes"),
                (self.tr("No"), "no"),
            ],
        )

    def _build_images_box(self) -> QGroupBox:
        box = QGroupBox(self.tr("Images"), self)
        self.images_table = QTableWidget(0, 2, box)
        self.images_table.setHorizontalHeaderLabels([self.tr("File"), self.tr("Eye")])
        self.images_table.setIconSize(IMPORT_ICON_SIZE)
        self.images_table.verticalHeader().setVisible(False)
        self.images_table.verticalHeader().setDefaultSectionSize(
            IMPORT_ICON_SIZE.height() + 8
        )
        self.images_table.setSelectionBehavior(
            QAbstractItemView.SelectionBehavior.SelectRows
        )
        self.images_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.images_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # ResizeToContents measures items, not the eye combo boxes set as cell
        # widgets, so the column is sized for the widest combo instead.
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        probe = QComboBox(self.images_table)
        for eye in (Laterality.RIGHT, Laterality.LEFT):
            probe.addItem(eye_label(eye), eye)
        self.images_table.setColumnWidth(1, probe.sizeHint().width() + 8)
        probe.deleteLater()

        add_button = QPushButton(self.tr("Add Images..."), box)
        add_button.clicked.connect(self.browse_images)
        self.remove_button = QPushButton(self.tr("Remove"), box)
        self.remove_button.clicked.connect(self.remove_selected_images)
        buttons = QHBoxLayout()
        buttons.addWidget(add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)

        hint = QLabel(
            self.tr(
                "Set the eye of each image. The files are copied into the "
                "library; the originals stay where they are."
            ),
            box,
        )
        hint.setWordWrap(True)

        layout = QVBoxLayout(box)
        layout.addWidget(hint)
        layout.addWidget(self.images_table, 1)
        self._errors["images"] = ErrorLabel(box)
        self._errors["images"].setObjectName("images_error")
        layout.addWidget(self._errors["images"])
        layout.addLayout(buttons)
        return box

    # Images

    def image_paths(self) -> list[Path]:
        """Return the image files to import, in table order."""
        return [
            Path(self._file_item(row).data(Qt.ItemDataRole.UserRole))
            for row in range(self.images_table.rowCount())
        ]

    def _file_item(self, row: int) -> QTableWidgetItem:
        item = self.images_table.item(row, 0)
        assert item is not None
        return item

    def image_inputs(self) -> list[ImageInput]:
        """Return the image files with the eye chosen for each."""
        inputs = []
        for row, path in enumerate(self.image_paths()):
            combo = self.images_table.cellWidget(row, 1)
            assert isinstance(combo, QComboBox)
            inputs.append(ImageInput(path, laterality=Laterality(combo.currentData())))
        return inputs

    def add_images(self, paths: Iterable[Path]) -> None:
        """Add image files to the table, skipping files already in it."""
        present = set(self.image_paths())
        for path in paths:
            if path in present:
                continue
            present.add(path)
            self._add_row(path)

    def _add_row(self, path: Path) -> None:
        row = self.images_table.rowCount()
        self.images_table.insertRow(row)
        item = QTableWidgetItem(path.name)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.images_table.setItem(row, 0, item)

        combo = QComboBox(self.images_table)
        for eye in (Laterality.RIGHT, Laterality.LEFT):
            combo.addItem(eye_label(eye), eye)
        guessed = guess_laterality(path)
        if guessed is not None:
            combo.setCurrentIndex(combo.findData(guessed))
        combo.currentIndexChanged.connect(
            lambda _index, path=path: self._refresh_icon(path)
        )
        self.images_table.setCellWidget(row, 1, combo)
        self._refresh_icon(path)

    def browse_images(self) -> None:
        """Let the user add image files with a file dialog."""
        patterns = " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES))
        names, _filter = QFileDialog.getOpenFileNames(
            self,
            self.tr("Add Images"),
            "",
            self.tr("JPEG and PNG images (%s)") % patterns,
        )
        self.add_images(Path(name) for name in names)

    def remove_selected_images(self) -> None:
        rows = sorted({index.row() for index in self.images_table.selectedIndexes()})
        for row in reversed(rows):
            self.images_table.removeRow(row)

    def _row_of(self, path: Path) -> int | None:
        for row, listed in enumerate(self.image_paths()):
            if listed == path:
                return row
        return None

    def _refresh_icon(self, path: Path) -> None:
        row = self._row_of(path)
        if row is None:
            return
        combo = self.images_table.cellWidget(row, 1)
        assert isinstance(combo, QComboBox)
        image = self._thumbnails.request(path, IMPORT_THUMBNAIL_SIZE)
        pixmap = QPixmap(IMPORT_ICON_SIZE)
        pixmap.fill(QColor("#d7dce0"))
        if image is not None:
            pixmap = QPixmap.fromImage(image).scaled(
                IMPORT_ICON_SIZE,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        painter = QPainter(pixmap)
        eye = Laterality(combo.currentData())
        paint_eye_badge(painter, pixmap.rect(), eye, self.font())
        painter.end()
        self._file_item(row).setIcon(QIcon(pixmap))

    def _thumbnail_ready(self, path: Path, size: int) -> None:
        if size == IMPORT_THUMBNAIL_SIZE:
            self._refresh_icon(path)

    # Worklist

    def fill_from_worklist(self, item: WorklistItem) -> None:
        """Fill the patient fields from a worklist entry and link the exam to it.

        The exam then carries the entry's accession number, Study Instance UID
        and procedure step, and the converter writes them into its files.
        """
        self.family_edit.setText(item.patient_name.family)
        self.given_edit.setText(item.patient_name.given)
        self.middle_edit.setText(item.patient_name.middle)
        self.document_number_edit.setText(item.patient_id)
        self.document_type_combo.setCurrentText(item.issuer_of_patient_id)
        self.sex_combo.setCurrentIndex(max(self.sex_combo.findData(item.sex), 0))
        birth = item.birth_date.isoformat() if item.birth_date is not None else ""
        self.birth_date_edit.setText(birth)
        self._worklist = WorklistLink(
            accession_number=item.accession_number,
            study_instance_uid=item.study_instance_uid,
            requested_procedure_id=item.requested_procedure_id,
            requested_procedure_description=item.requested_procedure_description,
            scheduled_procedure_step_id=item.scheduled_procedure_step_id,
            referring_physician_name=item.referring_physician_name,
            patient_id=item.patient_id,
            issuer_of_patient_id=item.issuer_of_patient_id,
        )
        procedure = (
            item.requested_procedure_description
            or item.scheduled_procedure_step_description
            or self.tr("scheduled exam")
        )
        text = self.tr("Filled from the worklist: %1. Accession number: %2.")
        text = text.replace("%1", procedure).replace(
            "%2", item.accession_number or "\u2014"
        )
        self.worklist_banner.setText(text)
        self.worklist_banner.setVisible(True)

    @property
    def worklist_link(self) -> WorklistLink | None:
        """The worklist entry the exam will be linked to, if any."""
        return self._worklist

    # Validation

    def show_problems(self, problems: Iterable[ValidationError]) -> None:
        """Show each problem under its field and mark the images at fault."""
        messages: dict[str, list[str]] = {}
        bad_images: dict[str, str] = {}
        for problem in problems:
            field = field_of_problem(problem)
            messages.setdefault(field, []).append(problem_text(problem))
            if problem.field == "image file" and problem.value is not None:
                bad_images[str(problem.value)] = problem_text(problem)
        for key, label in self._errors.items():
            texts = messages.get(key)
            label.show_error("\n".join(texts) if texts else None)
        self._mark_images(bad_images)

    def _mark_images(self, bad_images: dict[str, str]) -> None:
        for row, path in enumerate(self.image_paths()):
            item = self._file_item(row)
            problem = bad_images.get(str(path))
            item.setForeground(QBrush(QColor("#b3261e")) if problem else QBrush())
            item.setToolTip(f"{path}\n{problem}" if problem else str(path))

    def clear_problems(self) -> None:
        self.show_problems(())

    def build_patient(self) -> Patient:
        """Return the patient typed in.

        Raises:
            ExamValidationError: Every invalid field, with its value and fix.
        """
        # Qt stores a StrEnum item data as its plain string value.
        sex = self.sex_combo.currentData()
        return make_patient(
            family=self.family_edit.text(),
            given=self.given_edit.text(),
            middle=self.middle_edit.text(),
            document_type=self.document_type_combo.currentText(),
            document_number=self.document_number_edit.text(),
            sex=str(sex) if sex is not None else None,
            birth_date=self.birth_date_edit.text(),
        )

    def _diopters(self, problems: list[ValidationError]) -> Diopters:
        values: list[float | None] = []
        for name, edit in (
            ("diopters.R", self.diopter_right_edit),
            ("diopters.L", self.diopter_left_edit),
        ):
            text = edit.text().strip().replace(",", ".").replace("\u2212", "-")
            try:
                values.append(float(text) if text else None)
            except ValueError:
                values.append(None)
                problems.append(
                    ValidationError(
                        name,
                        edit.text(),
                        "is not a number",
                        "Enter the diopters as a number such as -1.25, or leave "
                        "the field empty",
                    )
                )
        return Diopters(right=values[0], left=values[1])

    def anamnesis(self) -> dict[str, Any]:
        """Return the anamnesis answers as the exam stores them."""
        answers: dict[str, Any] = {
            "diabetes": self.diabetes_combo.currentData(),
            "hypertension": self.hypertension_combo.currentData(),
        }
        notes = self.notes_edit.toPlainText().strip()
        if notes:
            answers["notes"] = notes
        return answers

    def pupil_dilated(self) -> bool | None:
        answer = self.pupil_combo.currentData()
        return None if answer == "unknown" else answer == "yes"

    # Import

    def start_import(self) -> None:
        """Check the form and, when it is valid, import on a worker."""
        problems: list[ValidationError] = []
        patient = None
        try:
            patient = self.build_patient()
        except ExamValidationError as err:
            problems.extend(err.problems)
        diopters = self._diopters(problems)
        inputs = self.image_inputs()
        if not inputs:
            problems.append(
                ValidationError(
                    "images", None, "none added", "Add at least one JPEG or PNG file"
                )
            )
        self.show_problems(problems)
        if problems or patient is None:
            return

        settings = self._workspace.settings
        worker = Worker(
            import_images,
            self._workspace.library,
            inputs,
            patient,
            exam_type=ExamType(self.exam_type_combo.currentData()),
            device=DeviceInfo(
                serial_number=settings.device_serial_number,
                software_version=settings.software_version,
                clinic_name=settings.institution_name,
            ),
            anamnesis=self.anamnesis(),
            diopters=diopters,
            pupil_dilated=self.pupil_dilated(),
            worklist=self._worklist,
            name="import images",
        )
        on_ending(worker, self, self._import_finished, self._import_failed)
        self._set_busy(True)
        self._worker = worker
        self._pool.start(worker)

    def is_busy(self) -> bool:
        return self._worker is not None

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        for child in self.findChildren(QGroupBox):
            child.setEnabled(not busy)
        self.import_button.setEnabled(not busy)

    def _import_finished(self, exam: Exam) -> None:
        self._worker = None
        self._set_busy(False)
        self.exam_imported.emit(exam)
        self.accept()

    def _import_failed(self, error: BaseException) -> None:
        self._worker = None
        self._set_busy(False)
        if isinstance(error, ExamValidationError):
            self.show_problems(error.problems)
        elif isinstance(error, EyerError):
            self.general_error.show_error(str(error))
        else:
            raise error

    def reject(self) -> None:
        # The import cannot be stopped halfway. It writes the exam atomically.
        if self._worker is not None:
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._worker is not None:
            event.ignore()
            return
        super().closeEvent(event)
