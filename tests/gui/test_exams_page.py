"""The Exams page: listing, search, sort, detail, previews and delivery history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from eyer_desktop.core.exams import Exam, ExamType, Laterality
from eyer_desktop.core.outbox import Outcome, Route, items_of_exam
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.history_model import (
    EventColumn,
    HistoryRole,
    ServerColumn,
)
from eyer_desktop.gui.exams.model import Column, Role
from eyer_desktop.gui.exams.page import ExamsPage
from eyer_desktop.gui.exams.status import ChipState
from eyer_desktop.gui.workers import Pools
from tests.helpers.gui_exams import (
    BROKEN_FOLDER,
    SAMPLE_COUNT,
    WAIT_MS,
    write_broken_exam,
    write_samples,
)


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_samples(workspace)


@pytest.fixture
def page(
    qtbot: QtBot, workspace: Workspace, pools: Pools, exams: list[Exam]
) -> Iterator[ExamsPage]:
    write_broken_exam(workspace)
    created = ExamsPage(workspace, pools)
    qtbot.addWidget(created)
    created.resize(1300, 800)
    created.show()
    qtbot.waitUntil(
        lambda: created.model.rowCount() == SAMPLE_COUNT + 1, timeout=WAIT_MS
    )
    yield created
    created.shutdown()
    created.hide()


def select(qtbot: QtBot, page: ExamsPage, exam_id: str) -> None:
    assert page.select_exam(exam_id)
    qtbot.waitUntil(lambda: page.detail.exam is not None, timeout=WAIT_MS)


def test_page_lists_exams_and_broken_folder(page: ExamsPage, exams: list[Exam]) -> None:
    assert page.model.row_of(BROKEN_FOLDER) is not None
    for exam in exams:
        assert page.model.row_of(exam.exam_id) is not None
    assert page.count_label.text() == "6 exams (1 unreadable)"
    assert page.model.broken_count() == 1
    assert page.list_stack.currentWidget() is page.view


def test_page_newest_first(page: ExamsPage, exams: list[Exam]) -> None:
    first = page.proxy.index(0, 0).data(Role.EXAM_ID)

    newest = max(exams, key=lambda exam: exam.captured_at)

    assert first == newest.exam_id


def test_page_search_field_filters(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    stereo = next(exam for exam in exams if exam.exam_type is ExamType.STEREO)

    qtbot.keyClicks(page.search_edit, "Stereo")

    assert page.proxy.rowCount() == 1
    assert page.proxy.index(0, 0).data(Role.EXAM_ID) == stereo.exam_id
    assert page.count_label.text() == "1 of 6 exams (1 unreadable)"

    page.search_edit.clear()
    qtbot.keyClicks(page.search_edit, "zzzz")
    assert page.list_stack.currentWidget() is page.empty_label
    assert "zzzz" in page.empty_label.text()


def test_page_header_click_sorts(qtbot: QtBot, page: ExamsPage) -> None:
    header = page.view.horizontalHeader()
    position = QPoint(header.sectionViewportPosition(Column.TYPE) + 5, 5)

    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=position)

    types = [
        page.proxy.index(row, Column.TYPE).data()
        for row in range(page.proxy.rowCount())
    ]
    named = [text for text in types if text]
    assert header.sortIndicatorSection() == Column.TYPE
    assert named == sorted(named) or named == sorted(named, reverse=True)


def test_empty_library_invites_drop(
    qtbot: QtBot, tmp_path: object, pools: Pools
) -> None:
    empty = Workspace.open(f"{tmp_path}/empty-profile")
    created = ExamsPage(empty, pools)
    qtbot.addWidget(created)
    created.show()
    qtbot.waitUntil(lambda: created.loaded_once, timeout=WAIT_MS)

    assert created.list_stack.currentWidget() is created.empty_label
    assert "Drop JPEG or PNG" in created.empty_label.text()
    created.shutdown()
    created.hide()
    empty.close()


def test_page_refreshes_when_exams_added(
    qtbot: QtBot, page: ExamsPage, workspace: Workspace
) -> None:
    added = write_samples(workspace, seed=9)

    qtbot.waitUntil(
        lambda: page.model.rowCount() == 2 * SAMPLE_COUNT + 1, timeout=WAIT_MS
    )

    for exam in added:
        assert page.model.row_of(exam.exam_id) is not None


def test_visible_rows_limit_thumbnails(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    qtbot.waitUntil(lambda: page.thumbnails.decoded_count >= 2, timeout=WAIT_MS)
    page.view.resize(page.view.width(), 120)
    page.retain_visible_thumbnails()

    rows = page.visible_source_rows()

    assert 0 < len(rows) < SAMPLE_COUNT + 1


# Detail pane


def test_selection_shows_detail(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    exam = exams[0]

    select(qtbot, page, exam.exam_id)

    header = page.detail.header.text()
    assert exam.patient.name.family in header
    assert exam.patient.document.number in header
    assert page.detail.strip.count() == len(exam.images)
    qtbot.waitUntil(page.detail.preview.has_image, timeout=WAIT_MS)
    assert page.detail.preview.laterality is exam.images[0].laterality


def test_strip_choice_changes_preview(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    exam = exams[0]
    select(qtbot, page, exam.exam_id)
    left = next(
        n for n, image in enumerate(exam.images) if image.laterality is Laterality.LEFT
    )

    page.detail.strip.setCurrentRow(left)

    qtbot.waitUntil(
        lambda: page.detail.preview.laterality is Laterality.LEFT, timeout=WAIT_MS
    )
    assert page.detail.preview.has_image()


def test_preview_zoom_and_fit(qtbot: QtBot, page: ExamsPage, exams: list[Exam]) -> None:
    select(qtbot, page, exams[0].exam_id)
    preview = page.detail.preview
    qtbot.waitUntil(preview.has_image, timeout=WAIT_MS)
    fitted = preview.zoom
    assert preview.is_fitted

    qtbot.mouseClick(page.detail.zoom_in_button, Qt.MouseButton.LeftButton)
    assert preview.zoom == pytest.approx(fitted * 1.25)
    assert not preview.is_fitted
    qtbot.keyClick(preview, Qt.Key.Key_Plus)
    assert preview.zoom == pytest.approx(fitted * 1.25**2)
    qtbot.keyClick(preview, Qt.Key.Key_Minus)
    assert preview.zoom == pytest.approx(fitted * 1.25)

    center = preview.viewport().rect().center()
    wheel = QWheelEvent(
        center.toPointF(),
        preview.viewport().mapToGlobal(center).toPointF(),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(preview.viewport(), wheel)
    assert preview.zoom == pytest.approx(fitted * 1.25**3)

    qtbot.mouseClick(page.detail.actual_button, Qt.MouseButton.LeftButton)
    assert preview.zoom == pytest.approx(1.0)
    qtbot.mouseClick(page.detail.fit_button, Qt.MouseButton.LeftButton)
    assert preview.zoom == pytest.approx(fitted)
    assert preview.is_fitted
    assert page.detail.zoom_label.text() == f"{fitted * 100:.0f} %"


def test_preview_zoom_is_bounded(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    select(qtbot, page, exams[0].exam_id)
    preview = page.detail.preview
    qtbot.waitUntil(preview.has_image, timeout=WAIT_MS)

    preview.set_zoom(1000.0)
    assert preview.zoom == pytest.approx(8.0)
    preview.set_zoom(0.0001)
    assert preview.zoom > 0


def test_preview_pans_by_dragging(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    select(qtbot, page, exams[0].exam_id)
    preview = page.detail.preview
    qtbot.waitUntil(preview.has_image, timeout=WAIT_MS)
    preview.set_zoom(6.0)
    scroll = preview.horizontalScrollBar()
    before = scroll.value()
    viewport = preview.viewport()
    start = viewport.rect().center()

    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(-40, 0))
    qtbot.mouseMove(viewport, start + QPoint(-80, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(-80, 0))

    assert scroll.value() > before


def test_delivery_history_shown(
    qtbot: QtBot,
    page: ExamsPage,
    exams: list[Exam],
    workspace: Workspace,
    qtmodeltester: ModelTester,
) -> None:
    exam = exams[0]
    outbox = workspace.outbox
    outbox.enqueue(items_of_exam(exam), {"PAC001": Route.MIRROR})
    claimed = outbox.claim_due("PAC001", 10)
    outcomes = {claimed[0].delivery_id: Outcome.sent(0)}
    for delivery in claimed[1:]:
        outcomes[delivery.delivery_id] = Outcome.failed(
            "Archive rejected the image", transient=False, code=0xA700
        )
    outbox.record_outcomes(outcomes)

    select(qtbot, page, exam.exam_id)

    servers = page.detail.server_model
    qtmodeltester.check(servers)
    qtmodeltester.check(page.detail.history_model)
    assert servers.rowCount() == 1
    row = servers.index(0, 0).data(HistoryRole.RAW)
    assert row.status.state is ChipState.FAILED
    assert row.status.done == 1
    assert (
        "Archive rejected the image" in servers.index(0, ServerColumn.LAST_ERROR).data()
    )
    assert "0xA700" in servers.index(0, ServerColumn.LAST_ERROR).data()
    history = page.detail.history_model
    events = [
        history.index(n, EventColumn.EVENT).data() for n in range(history.rowCount())
    ]
    assert "failed" in events
    assert "sent" in events
    assert page.detail.tabs.tabText(1) == "Delivery (1 failed)"
    assert not page.detail.no_delivery_label.isVisible()


def test_delivery_chips_follow_outbox(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam], workspace: Workspace
) -> None:
    exam = exams[0]
    row = page.model.row_of(exam.exam_id)
    assert row is not None
    workspace.outbox.enqueue(items_of_exam(exam), {"PAC001": Route.MIRROR})

    page.counts_timer.setInterval(50)

    def chips() -> tuple[object, ...]:
        return tuple(page.model.index(row, Column.DELIVERY).data(Role.DELIVERY))

    qtbot.waitUntil(lambda: len(chips()) == 1, timeout=WAIT_MS)
    assert chips()[0].state is ChipState.QUEUED  # type: ignore[attr-defined]


def test_unreadable_exam_detail(qtbot: QtBot, page: ExamsPage) -> None:
    row = page.model.row_of(BROKEN_FOLDER)
    assert row is not None
    index = page.proxy.mapFromSource(page.model.index(row, 0))

    page.view.selectRow(index.row())

    qtbot.waitUntil(lambda: "exam.json" in page.detail.header.text(), timeout=WAIT_MS)
