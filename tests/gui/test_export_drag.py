"""Exams and images dragged out as DICOM files, and File > Export to folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from eyer_desktop.core.errors import ExamError
from eyer_desktop.core.exams import Exam, ExamType
from eyer_desktop.core.export import DICOMDIR_NAME, discard_file_set_stage
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.drag import DragExporter, mime_data_for
from eyer_desktop.gui.exams.export import ExportDialog
from eyer_desktop.gui.exams.page import ExamsPage
from eyer_desktop.gui.workers import Pools
from tests.helpers.dicom3tools import (
    SMR_REFERENCED_SERIES_FALSE_POSITIVE,
    dciodvfy,
    requires_dicom3tools,
)
from tests.helpers.gui_exams import SAMPLE_COUNT, WAIT_MS, write_samples

SMR_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.3"
DCMDUMP = shutil.which("dcmdump")


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_samples(workspace)


@pytest.fixture
def page(
    qtbot: QtBot, workspace: Workspace, pools: Pools, exams: list[Exam]
) -> Iterator[ExamsPage]:
    created = ExamsPage(workspace, pools)
    qtbot.addWidget(created)
    created.resize(1200, 700)
    created.show()
    qtbot.waitUntil(lambda: created.model.rowCount() == SAMPLE_COUNT, timeout=WAIT_MS)
    yield created
    if created.export_dialog is not None:
        created.export_dialog.close()
    created.shutdown()
    created.hide()


def exam_of(exams: list[Exam], exam_type: ExamType) -> Exam:
    return next(exam for exam in exams if exam.exam_type is exam_type)


def assert_valid_dicom(path: Path) -> None:
    dataset = dcmread(path)
    expected = (
        [SMR_REFERENCED_SERIES_FALSE_POSITIVE]
        if dataset.SOPClassUID == SMR_CLASS
        else []
    )
    report = dciodvfy(path)
    assert report.errors == expected, report.output


# Dragging out


@requires_dicom3tools
def test_drag_writes_valid_exam_folder(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    exam = exam_of(exams, ExamType.STEREO)
    assert page.select_exam(exam.exam_id)

    paths = page.drag_exporter.paths_for(page.selected_exam_ids())

    assert len(paths) == 1
    folder = paths[0]
    assert folder.is_dir()
    assert page.drag_exporter.cache_root in folder.parents
    files = sorted(folder.iterdir())
    assert len(files) == len(exam.images) + 2
    uids = {str(dcmread(file).SOPInstanceUID) for file in files}
    assert {image.sop_instance_uid for image in exam.images} <= uids
    for file in files:
        assert_valid_dicom(file)
    mime = mime_data_for(paths)
    assert [url.toLocalFile() for url in mime.urls()] == [str(folder)]


def test_selection_prefetches_conversion(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam]
) -> None:
    exam = exams[0]
    exporter = page.drag_exporter

    assert page.select_exam(exam.exam_id)

    key = (exam.exam_id, None, exporter.options())
    qtbot.waitUntil(lambda: key in exporter._ready, timeout=WAIT_MS)
    assert exporter._ready[key][0].is_dir()


def test_drag_waits_without_blocking(
    qtbot: QtBot, workspace: Workspace, pools: Pools, exams: list[Exam]
) -> None:
    exporter = DragExporter(workspace, pools.general)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(1)

    paths = exporter.paths_for([exam.exam_id for exam in exams])

    timer.stop()
    assert len(paths) == len(exams)
    assert all(path.is_dir() for path in paths)
    assert ticks, "the event loop did not run while the conversions ran"


@requires_dicom3tools
def test_drag_selected_images(qtbot: QtBot, page: ExamsPage, exams: list[Exam]) -> None:
    exam = exam_of(exams, ExamType.PANORAMIC)
    assert page.select_exam(exam.exam_id)
    qtbot.waitUntil(lambda: page.detail.strip.count() > 2, timeout=WAIT_MS)
    strip = page.detail.strip
    strip.item(0).setSelected(True)
    strip.item(2).setSelected(True)
    selected = page.detail.selected_image_ids()
    assert len(selected) == 2

    paths = page.drag_exporter.paths_for([exam.exam_id], selected)

    assert len(paths) == 2
    wanted = {exam.image(image_id).sop_instance_uid for image_id in selected}
    assert {str(dcmread(path).SOPInstanceUID) for path in paths} == wanted
    for path in paths:
        assert path.suffix == ".dcm"
        assert_valid_dicom(path)


def test_drag_of_missing_exam_reports_error(
    workspace: Workspace, pools: Pools, exams: list[Exam]
) -> None:
    exporter = DragExporter(workspace, pools.general)

    with pytest.raises(ExamError):
        exporter.paths_for(["0000dead"])


def test_drag_cache_reused_after_restart(
    workspace: Workspace, pools: Pools, exams: list[Exam]
) -> None:
    first = DragExporter(workspace, pools.general).paths_for([exams[0].exam_id])
    stamp = next(first[0].iterdir()).stat().st_mtime_ns

    again = DragExporter(workspace, pools.general).paths_for([exams[0].exam_id])

    assert again == first
    assert next(again[0].iterdir()).stat().st_mtime_ns == stamp


# Export to folder


def run_export(
    qtbot: QtBot, page: ExamsPage, target: Path, *, dicomdir: bool
) -> ExportDialog:
    page.view.selectAll()
    dialog = page.export_selected()
    assert dialog is not None
    dialog.folder_edit.setText(str(target))
    dialog.dicomdir_check.setChecked(dicomdir)
    with qtbot.waitSignal(dialog.exported, timeout=30_000):
        dialog.export_button.click()
    return dialog


def test_export_needs_selection(page: ExamsPage) -> None:
    messages: list[str] = []
    page.status_message.connect(lambda text, _ms: messages.append(text))

    assert page.export_selected() is None

    assert messages == ["Select the exams to export first."]


def test_export_needs_folder(qtbot: QtBot, page: ExamsPage) -> None:
    page.view.selectAll()
    dialog = page.export_selected()
    assert dialog is not None

    dialog.export_button.click()

    assert dialog.error_label.isVisible()
    assert not dialog.is_running()


def test_export_to_folder(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam], tmp_path: Path
) -> None:
    target = tmp_path / "usb"

    dialog = run_export(qtbot, page, target, dicomdir=False)

    report = dialog.report
    assert report is not None
    assert len(report.exported) == len(exams)
    assert report.failures == ()
    assert len(list(target.iterdir())) == len(exams)
    assert f"Wrote {len(exams)} exams" in dialog.result_label.text()
    for exported in report.exported:
        for file in exported.files:
            assert dcmread(file).Modality in {"OP", "SMR"}


@pytest.mark.skipif(DCMDUMP is None, reason="dcmtk's dcmdump is not installed")
def test_export_with_dicomdir(
    qtbot: QtBot, page: ExamsPage, exams: list[Exam], tmp_path: Path
) -> None:
    target = tmp_path / "stick"
    assert DCMDUMP is not None

    dialog = run_export(qtbot, page, target, dicomdir=True)

    report = dialog.report
    assert report is not None
    dicomdir = target / DICOMDIR_NAME
    assert report.dicomdir == dicomdir
    file_set = FileSet(dcmread(dicomdir))
    try:
        assert len(file_set) == report.file_count
        studies = file_set.find_values("StudyInstanceUID")
        assert len(studies) == len(exams)
    finally:
        discard_file_set_stage(file_set)
    dumped = subprocess.run(
        [DCMDUMP, str(dicomdir)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=60,
    )
    assert dumped.returncode == 0, dumped.stderr
    assert dumped.stdout.count("[IMAGE]") == sum(len(exam.images) for exam in exams)
    assert "The DICOMDIR is" in dialog.result_label.text()


def test_export_dicomdir_into_used_folder_fails(
    qtbot: QtBot, page: ExamsPage, tmp_path: Path
) -> None:
    target = tmp_path / "stick"
    target.mkdir()
    (target / DICOMDIR_NAME).write_bytes(b"old")
    page.view.selectAll()
    dialog = page.export_selected()
    assert dialog is not None
    dialog.folder_edit.setText(str(target))
    dialog.dicomdir_check.setChecked(True)

    dialog.export_button.click()

    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT_MS)
    assert dialog.error_label.isVisible()
    assert "already contains a DICOMDIR" in dialog.error_label.text()
    assert dialog.report is None
