"""The exam list model, its chip states, and the search and sort proxy."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester

from eyer_desktop.core.exams import ExamType, Laterality
from eyer_desktop.core.outbox import DeliveryState, Route, items_of_exam
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.delegate import (
    ROW_PADDING,
    THUMBNAIL_BOX,
    fitted_chip_text,
    layout_chips,
)
from eyer_desktop.gui.exams.model import Column, ExamListModel, Role, fold
from eyer_desktop.gui.exams.proxy import ExamFilterProxy
from eyer_desktop.gui.exams.status import ChipState, ServerStatus, chip_state
from tests.helpers.gui_exams import (
    BROKEN_FOLDER,
    SAMPLE_COUNT,
    write_broken_exam,
    write_samples,
)


def counts(**states: int) -> dict[DeliveryState, int]:
    result = dict.fromkeys(DeliveryState, 0)
    for name, value in states.items():
        result[DeliveryState(name)] = value
    return result


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({}, None),
        ({"sent": 3}, ChipState.SENT),
        ({"sent": 2, "warning": 1}, ChipState.WARNING),
        ({"sent": 2, "queued": 1}, ChipState.QUEUED),
        ({"queued": 1, "sending": 1}, ChipState.SENDING),
        ({"sent": 5, "failed": 1, "sending": 1}, ChipState.FAILED),
        ({"paused": 2, "sent": 1}, ChipState.PAUSED),
        ({"cancelled": 2}, ChipState.CANCELLED),
        ({"cancelled": 1, "sent": 1}, ChipState.SENT),
    ],
)
def test_chip_state_precedence(
    states: dict[str, int], expected: ChipState | None
) -> None:
    assert chip_state(counts(**states)) is expected


def test_fold_ignores_case_and_accents() -> None:
    assert fold("Gonçalves BRANDÃO") == "goncalves brandao"


def test_model_passes_tester(qtmodeltester: ModelTester, workspace: Workspace) -> None:
    model = ExamListModel()
    qtmodeltester.check(model)

    write_samples(workspace)
    write_broken_exam(workspace)
    model.set_listing(workspace.library.list_exams())
    qtmodeltester.check(model)

    assert model.rowCount() == SAMPLE_COUNT + 1
    assert model.columnCount() == len(Column)


def test_model_adds_and_removes_rows(
    qtmodeltester: ModelTester, workspace: Workspace
) -> None:
    exams = write_samples(workspace)
    model = ExamListModel()
    qtmodeltester.check(model)
    model.set_listing(workspace.library.list_exams())

    removed = exams[1].exam_id
    workspace.library.delete(removed)
    model.set_listing(workspace.library.list_exams())
    qtmodeltester.check(model)
    assert model.row_of(removed) is None
    assert model.rowCount() == SAMPLE_COUNT - 1

    added = write_samples(workspace, seed=7)
    model.set_listing(workspace.library.list_exams())
    qtmodeltester.check(model)
    assert model.rowCount() == 2 * SAMPLE_COUNT - 1
    for exam in added:
        assert model.row_of(exam.exam_id) is not None


def test_model_keeps_rows_on_same_listing(workspace: Workspace) -> None:
    write_samples(workspace)
    model = ExamListModel()
    model.set_listing(workspace.library.list_exams())
    changes: list[int] = []
    model.dataChanged.connect(lambda *_args: changes.append(1))
    model.rowsInserted.connect(lambda *_args: changes.append(2))
    model.rowsRemoved.connect(lambda *_args: changes.append(3))

    model.set_listing(workspace.library.list_exams())

    assert changes == []


def test_model_row_values(workspace: Workspace) -> None:
    exams = write_samples(workspace)
    model = ExamListModel()
    model.set_listing(workspace.library.list_exams())
    exam = exams[0]
    row = model.row_of(exam.exam_id)
    assert row is not None

    def value(column: Column, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return model.index(row, column).data(role)

    assert value(Column.PATIENT) == value(Column.PATIENT, Role.PATIENT_NAME)
    assert exam.patient.name.family in str(value(Column.PATIENT))
    assert exam.patient.document.number in str(value(Column.DOCUMENT))
    assert value(Column.TYPE) == "Color"
    assert value(Column.TYPE, Role.EXAM_TYPE) == ExamType.COLOR
    assert value(Column.IMAGE_COUNT) == str(len(exam.images))
    assert value(Column.CAPTURED, Role.CAPTURED_AT) == exam.captured_at
    assert value(Column.PATIENT, Role.ERROR) is None
    thumbnails = value(Column.IMAGES, Role.THUMBNAILS)
    assert isinstance(thumbnails, tuple)
    assert [thumb.laterality for thumb in thumbnails] == [
        Laterality.RIGHT,
        Laterality.LEFT,
    ]


def test_broken_exam_is_an_error_row(workspace: Workspace) -> None:
    write_samples(workspace)
    write_broken_exam(workspace)
    model = ExamListModel()

    model.set_listing(workspace.library.list_exams())

    row = model.row_of(BROKEN_FOLDER)
    assert row is not None
    index = model.index(row, Column.PATIENT)
    assert BROKEN_FOLDER in index.data()
    assert "exam.json" in index.data(Role.ERROR)
    assert index.data(Qt.ItemDataRole.ToolTipRole) == index.data(Role.ERROR)
    assert index.data(Role.SUMMARY) is None
    assert model.broken_count() == 1
    assert not model.flags(index) & Qt.ItemFlag.ItemIsDragEnabled


def test_delivery_counts_become_chips(
    qtmodeltester: ModelTester, workspace: Workspace
) -> None:
    exams = write_samples(workspace)
    outbox = workspace.outbox
    outbox.enqueue(items_of_exam(exams[0]), {"EYE001": Route.PRIMARY})
    outbox.enqueue(items_of_exam(exams[0]), {"PAC001": Route.MIRROR})
    claimed = outbox.claim_due("PAC001", 1)
    assert claimed
    names = {"EYE001": "EyerCloud", "PAC001": "PACS"}
    model = ExamListModel(server_name=lambda key: names.get(key, key))
    model.set_listing(workspace.library.list_exams())
    changed: list[int] = []
    model.dataChanged.connect(lambda first, *_args: changed.append(first.row()))

    model.set_delivery_counts(outbox.exam_counts(model.exam_ids()))

    qtmodeltester.check(model)
    row = model.row_of(exams[0].exam_id)
    assert changed == [row]
    statuses = model.index(row, Column.DELIVERY).data(Role.DELIVERY)
    assert [(s.server_name, s.state) for s in statuses] == [
        ("EyerCloud", ChipState.QUEUED),
        ("PACS", ChipState.SENDING),
    ]
    assert statuses[0].total == len(exams[0].images)
    text = model.index(row, Column.DELIVERY).data()
    assert text == "EyerCloud: queued, PACS: sending"
    other = model.row_of(exams[1].exam_id)
    assert model.index(other, Column.DELIVERY).data(Role.DELIVERY) == ()


# Search and sort


@pytest.fixture
def proxy(workspace: Workspace, qtmodeltester: ModelTester) -> ExamFilterProxy:
    write_samples(workspace)
    write_broken_exam(workspace)
    model = ExamListModel()
    model.set_listing(workspace.library.list_exams())
    created = ExamFilterProxy()
    created.setSourceModel(model)
    qtmodeltester.check(created)
    return created


def shown_names(proxy: ExamFilterProxy) -> list[str]:
    return [
        proxy.index(row, Column.PATIENT).data(Role.PATIENT_NAME) or ""
        for row in range(proxy.rowCount())
    ]


def test_search_by_name_without_accents(proxy: ExamFilterProxy) -> None:
    model = proxy.sourceModel()
    assert isinstance(model, ExamListModel)
    accented = [
        str(model.index(row, Column.PATIENT).data(Role.PATIENT_NAME))
        for row in range(model.rowCount())
        if any(char in "ãâáçéêíóôú" for char in str(model.index(row, 1).data()))
    ]
    target = accented[0]
    words = fold(target).split()

    proxy.set_search_text(words[-1].upper())

    assert target in shown_names(proxy)
    assert all(words[-1] in fold(name) for name in shown_names(proxy))


def test_search_by_document_and_type(proxy: ExamFilterProxy) -> None:
    model = proxy.sourceModel()
    assert isinstance(model, ExamListModel)
    row = next(
        row
        for row in range(model.rowCount())
        if model.index(row, 0).data(Role.EXAM_TYPE) == ExamType.STEREO
    )
    document = str(model.index(row, 0).data(Role.DOCUMENT)).split()[-1]

    proxy.set_search_text(document)
    assert proxy.rowCount() == 1
    proxy.set_search_text("stereo")
    assert proxy.rowCount() == 1
    assert proxy.index(0, 0).data(Role.EXAM_TYPE) == ExamType.STEREO
    proxy.set_search_text("red-free")
    assert proxy.rowCount() == 1
    proxy.set_search_text("no such patient")
    assert proxy.rowCount() == 0
    proxy.set_search_text("")
    assert proxy.rowCount() == SAMPLE_COUNT + 1


def test_sort_by_capture_time(proxy: ExamFilterProxy) -> None:
    proxy.sort(Column.CAPTURED, Qt.SortOrder.DescendingOrder)

    times = [
        proxy.index(row, 0).data(Role.CAPTURED_AT) for row in range(proxy.rowCount())
    ]

    valid = [time for time in times if time is not None]
    assert valid == sorted(valid, reverse=True)
    assert times[-1] is None


def test_sort_by_patient_name(proxy: ExamFilterProxy) -> None:
    proxy.sort(Column.PATIENT, Qt.SortOrder.AscendingOrder)

    names = shown_names(proxy)

    assert names[0] == ""
    assert [fold(name) for name in names[1:]] == sorted(
        fold(name) for name in names[1:]
    )


def test_sort_by_image_count(proxy: ExamFilterProxy) -> None:
    proxy.sort(Column.IMAGE_COUNT, Qt.SortOrder.DescendingOrder)

    counts = [
        proxy.index(row, 0).data(Role.IMAGE_COUNT) for row in range(proxy.rowCount())
    ]

    assert counts[0] == max(count for count in counts if count is not None)
    assert counts[-1] is None
    assert proxy.index(0, 0).data(Role.EXAM_TYPE) == ExamType.PANORAMIC


ROW_HEIGHT = THUMBNAIL_BOX + 2 * ROW_PADDING


def _status(key: str, state: ChipState) -> ServerStatus:
    return ServerStatus(key, key, state, 0, 1)


def test_chips_put_unfinished_servers_first() -> None:
    sent = _status("ARC000", ChipState.SENT)
    waiting = _status("OLD000", ChipState.QUEUED)

    shown, hidden = layout_chips([sent, waiting], ROW_HEIGHT)

    assert shown == [waiting, sent]
    assert hidden == 0


def test_chips_that_do_not_fit_are_counted() -> None:
    statuses = [_status(f"S{n:02d}000", ChipState.SENT) for n in range(4)]
    failed = _status("BAD000", ChipState.FAILED)

    shown, hidden = layout_chips([*statuses, failed], ROW_HEIGHT)

    assert shown[0] == failed
    assert len(shown) + hidden == 5
    assert hidden >= 1


def test_narrow_chip_keeps_state_and_shortens_name(qapp: QApplication) -> None:
    metrics = QFontMetrics(qapp.font())
    status = ServerStatus(
        "ARC000", "Archive of the clinic (demo)", ChipState.SENT, 1, 1
    )

    text = fitted_chip_text(metrics, status, 120)

    assert text.endswith(" \u00b7 sent")
    assert text.startswith("Arch")
    assert "\u2026" in text
