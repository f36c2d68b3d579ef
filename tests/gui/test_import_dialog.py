"""Dropping files imports them: the dialog checks the form and creates the exam."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QComboBox, QMainWindow, QWidget
from pytestqt.qtbot import QtBot

from eyer_desktop.core.exams import Exam, ExamType, Laterality, PatientName, Sex
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.net.worklist import WorklistItem
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.drag import classify_drop
from eyer_desktop.gui.exams.import_dialog import ImportDialog, guess_laterality
from eyer_desktop.gui.exams.page import ExamsPage
from eyer_desktop.gui.workers import Pools
from tests.helpers.gui_exams import WAIT_MS, write_jpeg


@pytest.fixture
def page(qtbot: QtBot, workspace: Workspace, pools: Pools) -> Iterator[ExamsPage]:
    created = ExamsPage(workspace, pools)
    qtbot.addWidget(created)
    created.resize(1200, 700)
    created.show()
    qtbot.waitUntil(lambda: created.loaded_once, timeout=WAIT_MS)
    yield created
    if created.import_dialog is not None:
        created.import_dialog.close()
    created.shutdown()
    created.hide()


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return [
        write_jpeg(tmp_path / "drop" / "retina_OD.jpg", (190, 70, 30)),
        write_jpeg(tmp_path / "drop" / "retina_OS.jpg", (180, 60, 40)),
    ]


def url_mime(paths: list[Path]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    return mime


def drag_enter_event(position: QPoint, mime: QMimeData) -> QDragEnterEvent:
    """Return a drag enter event, built as the installed PySide6 expects.

    PySide6 6.12 deprecates the QPoint constructor for a QPointF one, which
    6.11 does not have.
    """
    actions = Qt.DropAction.CopyAction
    buttons = Qt.MouseButton.LeftButton
    modifiers = Qt.KeyboardModifier.NoModifier
    try:
        return QDragEnterEvent(QPointF(position), actions, mime, buttons, modifiers)
    except TypeError:
        return QDragEnterEvent(position, actions, mime, buttons, modifiers)


def drop_files(target: QWidget, paths: list[Path]) -> bool:
    """Send a drag enter and a drop carrying file URLs; return the drop's result."""
    mime = url_mime(paths)
    center = target.rect().center()
    enter = drag_enter_event(center, mime)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(center),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


def open_dialog(qtbot: QtBot, page: ExamsPage, paths: list[Path]) -> ImportDialog:
    assert drop_files(page, paths)
    dialog = page.import_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    return dialog


def fill_valid_patient(qtbot: QtBot, dialog: ImportDialog) -> None:
    # QTest types ASCII only, so the accented name is set directly.
    dialog.family_edit.setText("Gonçalves")
    qtbot.keyClicks(dialog.given_edit, "Maria")
    dialog.document_type_combo.setCurrentText("CPF")
    qtbot.keyClicks(dialog.document_number_edit, "529.982.247-25")
    dialog.sex_combo.setCurrentIndex(dialog.sex_combo.findData(Sex.FEMALE))
    qtbot.keyClicks(dialog.birth_date_edit, "1958-11-02")


def import_and_wait(qtbot: QtBot, dialog: ImportDialog) -> Exam:
    with qtbot.waitSignal(dialog.exam_imported, timeout=WAIT_MS) as imported:
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    exam = imported.args[0]
    assert isinstance(exam, Exam)
    return exam


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("retina_OD.jpg", Laterality.RIGHT),
        ("retina_OS.jpg", Laterality.LEFT),
        ("exam-L-02.jpg", Laterality.LEFT),
        ("R-01.png", Laterality.RIGHT),
        ("left eye.jpg", Laterality.LEFT),
        ("olho OE.jpg", Laterality.LEFT),
        ("IMG_0042.jpg", None),
        ("OD_OS_both.jpg", None),
        ("florida.jpg", None),
    ],
)
def test_guess_laterality_from_name(name: str, expected: Laterality | None) -> None:
    assert guess_laterality(Path(name)) is expected


def test_classify_drop_sorts_paths(tmp_path: Path, images: list[Path]) -> None:
    library = ExamLibrary(tmp_path / "other")
    exam = write_sample_exams(library, size=64)[0]
    assert exam.folder is not None
    text = write_jpeg(tmp_path / "notes.txt", (0, 0, 0))
    plain = images[0].parent

    contents = classify_drop(
        [
            QUrl.fromLocalFile(str(images[0])),
            QUrl.fromLocalFile(str(exam.folder)),
            QUrl.fromLocalFile(str(text)),
            QUrl("https://example.invalid/image.jpg"),
            QUrl.fromLocalFile(str(plain)),
        ]
    )

    assert contents.exam_folders == (exam.folder,)
    assert contents.images == (images[0], *sorted(images))
    assert str(text) in contents.ignored
    assert "https://example.invalid/image.jpg" in contents.ignored


def test_drop_opens_dialog_with_images(
    qtbot: QtBot, page: ExamsPage, images: list[Path]
) -> None:
    dialog = open_dialog(qtbot, page, images)

    assert dialog.image_paths() == images
    eyes = [item.laterality for item in dialog.image_inputs()]
    assert eyes == [Laterality.RIGHT, Laterality.LEFT]


def test_eye_column_shows_whole_combo(
    qtbot: QtBot, page: ExamsPage, images: list[Path]
) -> None:
    dialog = open_dialog(qtbot, page, images)
    table = dialog.images_table

    for row in range(table.rowCount()):
        combo = table.cellWidget(row, 1)
        assert isinstance(combo, QComboBox)
        assert table.columnWidth(1) >= combo.sizeHint().width()


def test_second_drop_adds_to_open_dialog(
    qtbot: QtBot, page: ExamsPage, images: list[Path], tmp_path: Path
) -> None:
    dialog = open_dialog(qtbot, page, images[:1])
    extra = write_jpeg(tmp_path / "more" / "third.jpg", (100, 50, 20))

    assert drop_files(page, [images[0], extra])

    assert page.import_dialog is dialog
    assert dialog.image_paths() == [images[0], extra]


def test_form_problems_shown_next_to_fields(
    qtbot: QtBot, page: ExamsPage, images: list[Path], workspace: Workspace
) -> None:
    dialog = open_dialog(qtbot, page, images)
    qtbot.keyClicks(dialog.birth_date_edit, "1990-13-45")
    qtbot.keyClicks(dialog.diopter_right_edit, "abc")

    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)

    errors = dialog._errors
    assert errors["family"].isVisible()
    assert "family name" in errors["family"].text()
    assert errors["document_number"].isVisible()
    assert "document" in errors["document_number"].text()
    assert errors["birth_date"].isVisible()
    assert "not a valid date" in errors["birth_date"].text()
    assert errors["diopter_right"].isVisible()
    assert "not a number" in errors["diopter_right"].text()
    assert not errors["given"].isVisible()
    assert not dialog.is_busy()
    assert workspace.library.exam_ids() == []


def test_dialog_creates_exam(
    qtbot: QtBot, page: ExamsPage, images: list[Path], workspace: Workspace
) -> None:
    dialog = open_dialog(qtbot, page, images)
    fill_valid_patient(qtbot, dialog)
    dialog.exam_type_combo.setCurrentIndex(
        dialog.exam_type_combo.findData(ExamType.RED_FREE)
    )
    dialog.diabetes_combo.setCurrentIndex(dialog.diabetes_combo.findData("yes"))
    dialog.hypertension_combo.setCurrentIndex(dialog.hypertension_combo.findData("no"))
    dialog.notes_edit.setPlainText("Visão turva há 2 anos")
    qtbot.keyClicks(dialog.diopter_right_edit, "-1,25")
    qtbot.keyClicks(dialog.diopter_left_edit, "0.5")
    dialog.pupil_combo.setCurrentIndex(dialog.pupil_combo.findData("yes"))

    exam = import_and_wait(qtbot, dialog)

    stored = workspace.library.load(exam.exam_id)
    assert stored.patient.name.family == "Gonçalves"
    assert stored.patient.document.type == "CPF"
    assert stored.patient.sex is Sex.FEMALE
    assert stored.patient.birth_date == dt.date(1958, 11, 2)
    assert stored.exam_type is ExamType.RED_FREE
    assert [image.laterality for image in stored.images] == [
        Laterality.RIGHT,
        Laterality.LEFT,
    ]
    assert stored.anamnesis == {
        "diabetes": "yes",
        "hypertension": "no",
        "notes": "Visão turva há 2 anos",
    }
    assert stored.diopters.right == -1.25
    assert stored.diopters.left == 0.5
    assert stored.pupil_dilated is True
    assert all(path.exists() for path in images)
    qtbot.waitUntil(
        lambda: page.model.row_of(exam.exam_id) is not None, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: page.detail.exam_id == exam.exam_id, timeout=WAIT_MS)


def test_eye_can_be_changed_per_image(
    qtbot: QtBot, page: ExamsPage, images: list[Path], workspace: Workspace
) -> None:
    dialog = open_dialog(qtbot, page, images)
    fill_valid_patient(qtbot, dialog)
    combo = dialog.images_table.cellWidget(1, 1)
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(combo.findData(Laterality.RIGHT))

    exam = import_and_wait(qtbot, dialog)

    assert [image.laterality for image in exam.images] == [
        Laterality.RIGHT,
        Laterality.RIGHT,
    ]


def test_bad_image_marked_in_table(
    qtbot: QtBot, page: ExamsPage, images: list[Path], workspace: Workspace
) -> None:
    fake = images[0].parent / "fake.jpg"
    fake.write_bytes(b"this is text, not a JPEG")
    dialog = open_dialog(qtbot, page, [images[0], fake])
    fill_valid_patient(qtbot, dialog)

    with qtbot.waitSignal(dialog.images_table.model().dataChanged, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=WAIT_MS)

    error = dialog._errors["images"]
    assert error.isVisible()
    assert "not a JPEG or PNG image" in error.text()
    item = dialog.images_table.item(1, 0)
    assert item is not None
    assert "not a JPEG or PNG image" in item.toolTip()
    assert dialog.isVisible()
    assert workspace.library.exam_ids() == []


def test_no_images_is_a_problem(qtbot: QtBot, page: ExamsPage) -> None:
    dialog = page.open_import_dialog([])
    fill_valid_patient(qtbot, dialog)

    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)

    assert dialog._errors["images"].isVisible()
    assert not dialog.is_busy()


def test_fill_from_worklist_links_exam(
    qtbot: QtBot, page: ExamsPage, images: list[Path], workspace: Workspace
) -> None:
    item = WorklistItem(
        patient_name=PatientName("Souza", "João", "Carlos"),
        patient_dicom_name="Souza^João^Carlos",
        patient_id="PID-0042",
        issuer_of_patient_id="HOSP",
        birth_date=dt.date(1961, 7, 14),
        sex=Sex.MALE,
        accession_number="ACC123",
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        requested_procedure_id="RP1",
        requested_procedure_description="Retinografia",
        scheduled_procedure_step_id="SPS1",
        scheduled_procedure_step_description="Fundus photo",
        scheduled_date=dt.date.today(),
        scheduled_time=None,
        modality="OP",
        station_ae_title="EYERDESK",
        referring_physician_name="Lima^Ana",
    )
    dialog = open_dialog(qtbot, page, images)

    dialog.fill_from_worklist(item)

    assert dialog.family_edit.text() == "Souza"
    assert dialog.given_edit.text() == "João"
    assert dialog.middle_edit.text() == "Carlos"
    assert dialog.document_number_edit.text() == "PID-0042"
    assert dialog.document_type_combo.currentText() == "HOSP"
    assert dialog.sex_combo.currentData() == Sex.MALE
    assert dialog.birth_date_edit.text() == "1961-07-14"
    assert dialog.worklist_banner.isVisible()
    assert "ACC123" in dialog.worklist_banner.text()
    exam = import_and_wait(qtbot, dialog)
    stored = workspace.library.load(exam.exam_id)
    assert stored.worklist is not None
    assert stored.worklist.accession_number == "ACC123"
    assert stored.worklist.study_instance_uid == "1.2.826.0.1.3680043.8.498.1"
    assert stored.worklist.scheduled_procedure_step_id == "SPS1"


def test_drop_exam_folder_adds_it(
    qtbot: QtBot, page: ExamsPage, workspace: Workspace, tmp_path: Path
) -> None:
    other = ExamLibrary(tmp_path / "usb")
    exam = write_sample_exams(other, size=64)[0]
    assert exam.folder is not None
    copy = shutil.copytree(exam.folder, tmp_path / "stick" / "exam")
    messages: list[str] = []
    page.status_message.connect(lambda text, _ms: messages.append(text))

    assert drop_files(page, [copy])

    qtbot.waitUntil(
        lambda: page.model.row_of(exam.exam_id) is not None, timeout=WAIT_MS
    )
    assert workspace.library.exam_ids() == [exam.exam_id]
    assert page.import_dialog is None
    assert "Added 1 exam" in messages
    assert drop_files(page, [copy])
    qtbot.waitUntil(
        lambda: any("not added" in text for text in messages), timeout=WAIT_MS
    )
    assert any("already in the library" in text for text in messages)


def test_drop_of_other_files_only_reports(
    qtbot: QtBot, page: ExamsPage, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    messages: list[str] = []
    page.status_message.connect(lambda message, _ms: messages.append(message))

    assert drop_files(page, [text])

    assert page.import_dialog is None
    assert any("Nothing to import" in message for message in messages)


def test_drop_on_main_window(
    qtbot: QtBot, workspace: Workspace, pools: Pools, images: list[Path]
) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    holder = QWidget(window)
    page = ExamsPage(workspace, pools, holder)
    window.setCentralWidget(holder)
    window.resize(900, 600)
    window.show()
    qtbot.waitUntil(lambda: page.loaded_once, timeout=WAIT_MS)

    assert window.acceptDrops()
    assert drop_files(window, images)
    assert page.import_dialog is not None
    assert page.import_dialog.image_paths() == images
    page.import_dialog.close()
    page.shutdown()
    window.hide()
