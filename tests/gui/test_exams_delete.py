"""Deleting exams from the Exams page: the confirmation, the outcome, a failure.

The confirmation is a window-modal message box opened with ``open()``, so
the tests click its buttons, as a user would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QToolButton
from pytestqt.qtbot import QtBot

from eyer_desktop.core.caches import drag_entry_exam_id
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.library import patient_display_name
from eyer_desktop.core.outbox import DeliveryState, Outcome, Route, items_of_exam
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.model import ActivityModel, Column
from eyer_desktop.gui.exams.labels import capture_time_text
from eyer_desktop.gui.exams.page import ExamsPage
from eyer_desktop.gui.exams.thumbnails import ThumbnailLoader
from eyer_desktop.gui.main_window import MainWindow
from eyer_desktop.gui.workers import Pools
from tests.helpers.gui_exams import (
    BROKEN_FOLDER,
    SAMPLE_COUNT,
    WAIT_MS,
    wait_for_rows,
    write_broken_exam,
    write_samples,
)
from tests.helpers.read_only import read_only_folder

ARCHIVE = "PAC001"


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_samples(workspace)


@pytest.fixture
def messages() -> list[str]:
    return []


@pytest.fixture
def page(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    messages: list[str],
) -> Iterator[ExamsPage]:
    write_broken_exam(workspace)
    created = ExamsPage(workspace, pools)
    created.status_message.connect(lambda text, _ms: messages.append(text))
    qtbot.addWidget(created)
    created.resize(1300, 800)
    created.show()
    wait_for_rows(qtbot, created, SAMPLE_COUNT + 1)
    yield created
    if created.deleter.confirm_box is not None:
        created.deleter.confirm_box.reject()
    created.shutdown()
    created.hide()


def select(page: ExamsPage, *exam_ids: str) -> None:
    selection = page.view.selectionModel()
    selection.clearSelection()
    for exam_id in exam_ids:
        row = page.model.row_of(exam_id)
        assert row is not None
        index = page.proxy.mapFromSource(page.model.index(row, 0))
        selection.select(
            index,
            QItemSelectionModel.SelectionFlag.Select
            | QItemSelectionModel.SelectionFlag.Rows,
        )


def queue_for_archive(workspace: Workspace, exam: Exam) -> int:
    return workspace.outbox.enqueue(items_of_exam(exam), {ARCHIVE: Route.MIRROR})


def states(workspace: Workspace, exam: Exam) -> list[DeliveryState]:
    return [d.state for d in workspace.outbox.deliveries(exam_id=exam.exam_id)]


def confirmation(qtbot: QtBot, page: ExamsPage) -> QMessageBox:
    qtbot.waitUntil(lambda: page.deleter.confirm_box is not None, timeout=WAIT_MS)
    box = page.deleter.confirm_box
    assert box is not None
    assert box.isVisible()
    return box


def delete_button(box: QMessageBox) -> QAbstractButton:
    return next(
        button
        for button in box.buttons()
        if box.buttonRole(button) is QMessageBox.ButtonRole.DestructiveRole
    )


def wait_until_idle(qtbot: QtBot, page: ExamsPage) -> None:
    qtbot.waitUntil(
        lambda: not page.deleter.is_busy() and not page.is_refreshing(),
        timeout=WAIT_MS,
    )


def test_delete_key_deletes_one_exam(
    qtbot: QtBot,
    page: ExamsPage,
    workspace: Workspace,
    exams: list[Exam],
    messages: list[str],
) -> None:
    exam = exams[0]
    assert page.select_exam(exam.exam_id)
    qtbot.waitUntil(lambda: page.detail.exam is not None, timeout=WAIT_MS)
    page.view.setFocus()

    qtbot.keyClick(page.view, Qt.Key.Key_Delete)
    box = confirmation(qtbot, page)

    description = (
        f"{patient_display_name(exam.patient.name)}, "
        f"{capture_time_text(exam.captured_at)}"
    )
    assert box.text() == f"Delete 1 exam with {len(exam.images)} images?"
    assert description in box.informativeText()
    assert "cannot be undone" in box.informativeText()
    assert "not finished" not in box.informativeText()

    qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
    wait_for_rows(qtbot, page, SAMPLE_COUNT)

    assert page.model.row_of(exam.exam_id) is None
    assert exam.exam_id not in workspace.library.exam_ids()
    assert page.detail.exam_id is None
    assert not page.delete_action.isEnabled()
    assert messages[-1] == "Deleted 1 exam."


def test_delete_cancels_unfinished_deliveries(
    qtbot: QtBot,
    page: ExamsPage,
    workspace: Workspace,
    exams: list[Exam],
    messages: list[str],
) -> None:
    exam = exams[0]
    queued = queue_for_archive(workspace, exam)
    select(page, exam.exam_id)

    button = next(
        button
        for button in page.findChildren(QToolButton)
        if button.defaultAction() is page.delete_action
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    box = confirmation(qtbot, page)

    assert queued == 2
    assert (
        "2 deliveries to servers are not finished. They will be cancelled"
        in box.informativeText()
    )

    qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
    wait_for_rows(qtbot, page, SAMPLE_COUNT)

    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    assert exam.exam_id not in workspace.library.exam_ids()
    assert messages[-1] == "Deleted 1 exam and cancelled 2 deliveries."


def test_cancelled_dialog_deletes_nothing(
    qtbot: QtBot, page: ExamsPage, workspace: Workspace, exams: list[Exam]
) -> None:
    exam = exams[0]
    queue_for_archive(workspace, exam)
    select(page, exam.exam_id)

    page.delete_action.trigger()
    box = confirmation(qtbot, page)
    qtbot.mouseClick(
        box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton
    )

    qtbot.waitUntil(lambda: not page.deleter.is_busy(), timeout=WAIT_MS)
    assert page.deleter.confirm_box is None
    assert page.model.row_of(exam.exam_id) is not None
    assert exam.exam_id in workspace.library.exam_ids()
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2


def test_read_only_library_failure_shown(
    qtbot: QtBot,
    page: ExamsPage,
    workspace: Workspace,
    exams: list[Exam],
    messages: list[str],
) -> None:
    exam = exams[0]
    queue_for_archive(workspace, exam)
    select(page, exam.exam_id)

    with read_only_folder(workspace.library.root):
        page.delete_action.trigger()
        box = confirmation(qtbot, page)
        qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
        wait_until_idle(qtbot, page)

    assert messages[-1].startswith(f"Deleting exam {exam.exam_id} failed: ")
    assert "cannot be changed" in messages[-1]
    assert "Errno" not in messages[-1]
    assert "Traceback" not in messages[-1]
    failure = page.deleter.failure_box
    assert failure is not None
    assert failure.isVisible()
    assert failure.text() == messages[-1]
    failure.accept()
    assert page.deleter.failure_box is None
    assert page.model.row_of(exam.exam_id) is not None
    assert exam.exam_id in workspace.library.exam_ids()
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2


def test_delete_several_with_unreadable(
    qtbot: QtBot,
    page: ExamsPage,
    workspace: Workspace,
    exams: list[Exam],
    messages: list[str],
) -> None:
    first, second = exams[:2]
    select(page, first.exam_id, second.exam_id, BROKEN_FOLDER)

    page.delete_action.trigger()
    box = confirmation(qtbot, page)

    images = len(first.images) + len(second.images)
    assert box.text() == f"Delete 3 exams with {images} images?"
    assert "1 exam cannot be read" in box.informativeText()
    assert patient_display_name(first.patient.name) not in box.informativeText()

    qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
    wait_for_rows(qtbot, page, SAMPLE_COUNT - 2)

    assert workspace.library.exam_ids() == sorted(exam.exam_id for exam in exams[2:])
    assert messages[-1] == "Deleted 3 exams."


def test_delete_unreadable_exam_alone(
    qtbot: QtBot, page: ExamsPage, workspace: Workspace, messages: list[str]
) -> None:
    select(page, BROKEN_FOLDER)

    page.delete_action.trigger()
    box = confirmation(qtbot, page)

    assert box.text() == "Delete 1 exam?"
    assert "1 exam cannot be read" in box.informativeText()

    qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
    wait_for_rows(qtbot, page, SAMPLE_COUNT)

    assert BROKEN_FOLDER not in workspace.library.exam_ids()
    assert messages[-1] == "Deleted 1 exam."


def test_delete_needs_a_selection(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    select(page, exams[0].exam_id)
    assert page.delete_action.isEnabled()

    page.view.selectionModel().clearSelection()

    assert not page.delete_action.isEnabled()


def test_delete_key_only_in_exam_list(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    family_name = exams[0].patient.name.family
    assert page.select_exam(exams[0].exam_id)
    qtbot.waitUntil(lambda: page.detail.strip.count() > 0, timeout=WAIT_MS)
    page.detail.strip.setFocus()
    qtbot.keyClick(page.detail.strip, Qt.Key.Key_Delete)
    page.search_edit.setFocus()
    page.search_edit.setText(family_name + " ")
    page.search_edit.setCursorPosition(len(family_name))

    qtbot.keyClick(page.search_edit, Qt.Key.Key_Delete)

    assert page.search_edit.text() == family_name
    assert page.delete_action.isEnabled()
    assert not page.deleter.is_busy()
    assert page.deleter.confirm_box is None


def test_window_refreshes_activity_after_delete(
    qtbot: QtBot, workspace: Workspace, pools: Pools, exams: list[Exam]
) -> None:
    exam = exams[0]
    queue_for_archive(workspace, exam)
    window = MainWindow(workspace, pools)
    qtbot.addWidget(window)
    window.show()
    page = window.exams_page
    wait_for_rows(qtbot, page, SAMPLE_COUNT)
    select(page, exam.exam_id)

    page.delete_action.trigger()
    box = confirmation(qtbot, page)
    with qtbot.waitSignal(window.sending.deliveries_changed, timeout=WAIT_MS):
        qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)

    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    wait_until_idle(qtbot, page)
    window.sending.prepare_to_close()
    qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=WAIT_MS)
    window.close()


def test_activity_rows_drop_deleted_patient(
    qtbot: QtBot, workspace: Workspace, pools: Pools, exams: list[Exam]
) -> None:
    exam = exams[0]
    queue_for_archive(workspace, exam)
    claimed = workspace.outbox.claim_due(ARCHIVE, 10)
    workspace.outbox.record_outcomes({d.delivery_id: Outcome.sent() for d in claimed})
    window = MainWindow(workspace, pools)
    qtbot.addWidget(window)
    window.show()
    activity = window.activity_page
    window.show_page("Activity")
    name = patient_display_name(exam.patient.name)
    patient_label = f"{name}, {exam.captured_at.strftime('%Y-%m-%d %H:%M')}"
    qtbot.waitUntil(
        lambda: exam_labels(activity.model) == {patient_label}, timeout=WAIT_MS
    )

    window.show_page("Exams")
    page = window.exams_page
    wait_for_rows(qtbot, page, SAMPLE_COUNT)
    select(page, exam.exam_id)
    page.delete_action.trigger()
    box = confirmation(qtbot, page)
    # Sent deliveries stay as they are, so only a full load of the outbox
    # reads their exam's label again.
    with qtbot.waitSignal(
        activity.refresher.loaded,
        check_params_cb=lambda snapshot: snapshot.full,
        timeout=WAIT_MS,
    ):
        qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
        wait_until_idle(qtbot, page)
        window.show_page("Activity")

    missing_label = f"Exam {exam.exam_id[:8]} (not in the library)"
    qtbot.waitUntil(
        lambda: exam_labels(activity.model) == {missing_label}, timeout=WAIT_MS
    )
    window.sending.prepare_to_close()
    qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=WAIT_MS)
    window.close()


def exam_labels(model: ActivityModel) -> set[str]:
    return {model.index(row, Column.EXAM).data() for row in range(model.rowCount())}


def test_detail_reports_thumbnail_of_shown_exam(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam], messages: list[str]
) -> None:
    shown_exam, other = exams[:2]
    for image in shown_exam.images:
        shown_exam.image_path(image).write_bytes(b"not a JPEG")
    assert page.select_exam(shown_exam.exam_id)
    qtbot.waitUntil(
        lambda: any(m.startswith("A thumbnail cannot be shown") for m in messages),
        timeout=WAIT_MS,
    )
    messages.clear()
    loader = page.detail.findChild(ThumbnailLoader)
    assert loader is not None

    # A late failure of an exam no longer shown, such as a deleted one.
    loader.thumbnail_failed.emit(
        other.image_path(other.images[0]), 96, OSError("No such file")
    )

    assert messages == []


def cache_paths_naming(workspace: Workspace, exam_id: str) -> list[Path]:
    cache_dir = workspace.paths.cache_dir
    return [
        path
        for path in cache_dir.rglob("*")
        if exam_id in path.relative_to(cache_dir).as_posix()
    ]


def memory_keys_of(page: ExamsPage, exam: Exam) -> list[Path]:
    """Return the images of an exam whose list thumbnails are in memory."""
    size = page.model.thumbnail_size
    paths = [exam.image_path(image) for image in exam.images]
    return [path for path in paths if (path, size) in page.thumbnail_cache]


def test_delete_removes_cached_copies(
    qtbot: QtBot, page: ExamsPage, workspace: Workspace, exams: list[Exam]
) -> None:
    deleted, kept = exams[:2]
    disk = page.disk_cache
    for exam in (deleted, kept):
        assert page.select_exam(exam.exam_id)
        qtbot.waitUntil(lambda: page.detail.exam is not None, timeout=WAIT_MS)
        page.drag_exporter.paths_for([exam.exam_id])
    qtbot.waitUntil(
        lambda: (
            disk.exam_folder(deleted.exam_id).is_dir()
            and disk.exam_folder(kept.exam_id).is_dir()
            and memory_keys_of(page, deleted) != []
            and memory_keys_of(page, kept) != []
            and page.thumbnails.pending_count() == 0
        ),
        timeout=WAIT_MS,
    )
    drag_exams = {
        drag_entry_exam_id(path.name)
        for path in page.drag_exporter.cache_root.iterdir()
    }
    assert drag_exams == {deleted.exam_id, kept.exam_id}
    kept_files = cache_paths_naming(workspace, kept.exam_id)

    select(page, deleted.exam_id)
    page.delete_action.trigger()
    qtbot.mouseClick(
        delete_button(confirmation(qtbot, page)), Qt.MouseButton.LeftButton
    )
    wait_for_rows(qtbot, page, SAMPLE_COUNT)
    wait_until_idle(qtbot, page)
    qtbot.waitUntil(lambda: page.thumbnails.pending_count() == 0, timeout=WAIT_MS)

    assert deleted.exam_id not in workspace.library.exam_ids()
    assert cache_paths_naming(workspace, deleted.exam_id) == []
    assert memory_keys_of(page, deleted) == []
    assert memory_keys_of(page, kept) != []
    assert [path for path in kept_files if not path.exists()] == []


def test_cache_failure_shown_after_delete(
    qtbot: QtBot,
    page: ExamsPage,
    workspace: Workspace,
    exams: list[Exam],
    messages: list[str],
) -> None:
    exam = exams[0]
    folder = page.disk_cache.exam_folder(exam.exam_id)
    assert page.select_exam(exam.exam_id)
    qtbot.waitUntil(
        lambda: (
            len(list(folder.glob("*.jpg"))) >= 2
            and page.thumbnails.pending_count() == 0
        ),
        timeout=WAIT_MS,
    )

    with read_only_folder(folder):
        page.delete_action.trigger()
        box = confirmation(qtbot, page)
        qtbot.mouseClick(delete_button(box), Qt.MouseButton.LeftButton)
        wait_for_rows(qtbot, page, SAMPLE_COUNT)
        wait_until_idle(qtbot, page)

    assert exam.exam_id not in workspace.library.exam_ids()
    assert messages[-1].startswith(
        f"Deleted 1 exam. Removing the cached copy {folder}/"
    )
    assert ". Delete it by hand. " in messages[-1]
    assert messages[-1].endswith(" more failed too.")
