"""Export of exams to folders, to a DICOMDIR file-set, and for dragging."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from eyer_desktop.core.caches import drag_entry_exam_id, remove_stale_drag_files
from eyer_desktop.core.dicom import ConversionOptions
from eyer_desktop.core.errors import ConversionError, ExamError, ValidationError
from eyer_desktop.core.exams import Exam, ExamType
from eyer_desktop.core.export import (
    DICOMDIR_NAME,
    discard_file_set_stage,
    exam_folder_name,
    export_exams,
    prepare_drag_files,
    write_exam_files,
)
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import MANIFEST_NAME
from eyer_desktop.core.samples import write_sample_exams
from tests.helpers.dicom3tools import (
    SMR_REFERENCED_SERIES_FALSE_POSITIVE,
    dciodvfy,
    requires_dicom3tools,
)

SMR_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.3"
OPTIONS = ConversionOptions(dicom_prefix="eyer_", institution_name="Clínica")
DCMDUMP = shutil.which("dcmdump")


@pytest.fixture(scope="module")
def sample_library(tmp_path_factory: pytest.TempPathFactory) -> ExamLibrary:
    library = ExamLibrary(tmp_path_factory.mktemp("library") / "exams")
    write_sample_exams(library, size=96, seed=3)
    return library


@pytest.fixture(scope="module")
def exams(sample_library: ExamLibrary) -> dict[ExamType, Exam]:
    listing = sample_library.list_exams()
    loaded = [sample_library.load(summary.exam_id) for summary in listing.exams]
    return {exam.exam_type: exam for exam in loaded}


def exam_ids(library: ExamLibrary) -> list[str]:
    return [summary.exam_id for summary in library.list_exams().exams]


@contextmanager
def read_file_set(dicomdir: Path) -> Iterator[FileSet]:
    file_set = FileSet(dcmread(dicomdir))
    try:
        yield file_set
    finally:
        discard_file_set_stage(file_set)


# Folder export


def test_folder_export_one_folder_per_exam(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    ids = exam_ids(sample_library)
    progress: list[tuple[int, int]] = []

    report = export_exams(
        sample_library,
        ids,
        OPTIONS,
        tmp_path / "out",
        progress=lambda done, total: progress.append((done, total)),
    )

    assert report.failures == ()
    assert [exam.exam_id for exam in report.exported] == ids
    assert report.dicomdir is None
    assert progress == [(n, len(ids)) for n in range(1, len(ids) + 1)]
    folders = sorted(path.name for path in (tmp_path / "out").iterdir())
    expected = sorted(exam_folder_name(sample_library.load(exam_id)) for exam_id in ids)
    assert folders == expected
    for exported in report.exported:
        for file in exported.files:
            assert file.is_file()
            assert dcmread(file).StudyID


@requires_dicom3tools
def test_folder_export_files_are_valid(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    report = export_exams(sample_library, exam_ids(sample_library), None, tmp_path)

    assert report.file_count > 0
    for exported in report.exported:
        for file in exported.files:
            validation = dciodvfy(file)
            is_smr = dcmread(file, stop_before_pixels=True).SOPClassUID == SMR_CLASS
            expected = [SMR_REFERENCED_SERIES_FALSE_POSITIVE] if is_smr else []
            assert validation.errors == expected, validation.output


def test_folder_export_reports_broken_exam(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    ids = exam_ids(sample_library)

    report = export_exams(sample_library, [ids[0], "0000dead", ids[1]], None, tmp_path)

    assert [exam.exam_id for exam in report.exported] == [ids[0], ids[1]]
    assert len(report.failures) == 1
    assert report.failures[0].exam_id == "0000dead"
    assert isinstance(report.failures[0].error, ExamError)


def test_folder_export_stops_on_request(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    ids = exam_ids(sample_library)
    calls: list[int] = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    report = export_exams(
        sample_library, ids, None, tmp_path, should_stop=stop_after_two
    )

    assert report.stopped
    assert len(report.exported) == 2


def test_selected_images_only(exams: dict[ExamType, Exam], tmp_path: Path) -> None:
    exam = exams[ExamType.STEREO]
    chosen = [exam.images[1].image_id]

    files = write_exam_files(exam, OPTIONS, tmp_path, image_ids=chosen)

    assert len(files) == 1
    dataset = dcmread(files[0])
    assert dataset.SOPInstanceUID == exam.images[1].sop_instance_uid
    assert sorted(tmp_path.iterdir()) == files


def test_selected_unknown_image_writes_nothing(
    exams: dict[ExamType, Exam], tmp_path: Path
) -> None:
    exam = exams[ExamType.COLOR]
    chosen = [exam.images[0].image_id, "no-such-image"]

    with pytest.raises(ConversionError, match="no-such-image"):
        write_exam_files(exam, OPTIONS, tmp_path / "new" / "folder", image_ids=chosen)

    assert list(tmp_path.iterdir()) == []


# DICOMDIR export


def test_dicomdir_export_reads_back(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    ids = exam_ids(sample_library)

    report = export_exams(sample_library, ids, OPTIONS, tmp_path, dicomdir=True)

    assert report.failures == ()
    assert report.dicomdir == tmp_path / DICOMDIR_NAME
    with read_file_set(report.dicomdir) as file_set:
        assert len(file_set) == report.file_count
        assert file_set.ID == "EYER_EXPORT"
        patient_ids = file_set.find_values("PatientID")
        assert patient_ids
        assert all(str(value).startswith("eyer_") for value in patient_ids)
        studies = file_set.find_values("StudyInstanceUID")
        assert len(studies) == len(ids)
        for instance in file_set:
            dataset = instance.load()
            assert dataset.SOPInstanceUID == instance.SOPInstanceUID


@pytest.mark.parametrize("dicomdir", [True, False], ids=["dicomdir", "folders"])
def test_export_to_relative_folder(
    sample_library: ExamLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dicomdir: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    ids = exam_ids(sample_library)

    report = export_exams(
        sample_library, ids, OPTIONS, Path("export"), dicomdir=dicomdir
    )

    assert report.failures == ()
    assert len(report.exported) == len(ids)
    for exported in report.exported:
        for path in exported.files:
            assert path.is_file()
            assert path.is_relative_to(tmp_path / "export")


def test_dicomdir_file_ids_are_8_3(sample_library: ExamLibrary, tmp_path: Path) -> None:
    report = export_exams(
        sample_library, exam_ids(sample_library), None, tmp_path, dicomdir=True
    )

    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) == report.file_count + 1
    for path in written:
        for part in path.relative_to(tmp_path).parts:
            assert len(part) <= 8, part
            assert part == part.upper(), part
            assert "." not in part, part
    for exported in report.exported:
        assert all(file.is_file() for file in exported.files)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


@pytest.mark.skipif(DCMDUMP is None, reason="dcmtk's dcmdump is not installed")
def test_dicomdir_parsed_by_dcmdump(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    report = export_exams(
        sample_library, exam_ids(sample_library), OPTIONS, tmp_path, dicomdir=True
    )
    assert DCMDUMP is not None
    assert report.dicomdir is not None

    completed = subprocess.run(
        [DCMDUMP, str(report.dicomdir)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert "DirectoryRecordSequence" in completed.stdout
    assert completed.stdout.count("[PATIENT]") == 5
    assert completed.stdout.count("[IMAGE]") == report.file_count - 2
    assert completed.stdout.count("[STEREOMETRIC]") == 2
    assert "E:" not in completed.stderr


@requires_dicom3tools
def test_dicomdir_valid_for_dciodvfy(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    report = export_exams(
        sample_library, exam_ids(sample_library), OPTIONS, tmp_path, dicomdir=True
    )
    assert report.dicomdir is not None

    validation = dciodvfy(report.dicomdir)

    assert validation.errors == [], validation.output
    assert validation.warnings == [], validation.output


def test_dicomdir_rejects_existing_file_set(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    (tmp_path / DICOMDIR_NAME).write_bytes(b"old")

    with pytest.raises(ValidationError, match="already contains a DICOMDIR"):
        export_exams(
            sample_library, exam_ids(sample_library), None, tmp_path, dicomdir=True
        )

    assert sorted(path.name for path in tmp_path.iterdir()) == [DICOMDIR_NAME]


def test_dicomdir_rejects_patient_folder(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    (tmp_path / "PT000000").mkdir()

    with pytest.raises(ValidationError, match="PT000000"):
        export_exams(
            sample_library, exam_ids(sample_library), None, tmp_path, dicomdir=True
        )


def test_dicomdir_skips_broken_exam(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    first = exam_ids(sample_library)[0]

    report = export_exams(
        sample_library, ["0000dead", first], None, tmp_path, dicomdir=True
    )

    assert [exam.exam_id for exam in report.exported] == [first]
    assert [failure.exam_id for failure in report.failures] == ["0000dead"]
    with read_file_set(tmp_path / DICOMDIR_NAME) as file_set:
        assert len(file_set) == report.file_count


def test_dicomdir_all_broken_writes_nothing(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    report = export_exams(sample_library, ["0000dead"], None, tmp_path, dicomdir=True)

    assert report.dicomdir is None
    assert len(report.failures) == 1
    assert list(tmp_path.iterdir()) == []


# Files for dragging


def test_drag_files_whole_exam(exams: dict[ExamType, Exam], tmp_path: Path) -> None:
    exam = exams[ExamType.COLOR]

    paths = prepare_drag_files(exam, OPTIONS, tmp_path)

    assert len(paths) == 1
    folder = paths[0]
    assert folder.name == exam_folder_name(exam)
    files = sorted(folder.iterdir())
    assert len(files) == len(exam.images)
    assert {dcmread(file).SOPInstanceUID for file in files} == {
        image.sop_instance_uid for image in exam.images
    }
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_drag_files_reused(exams: dict[ExamType, Exam], tmp_path: Path) -> None:
    exam = exams[ExamType.COLOR]
    first = prepare_drag_files(exam, OPTIONS, tmp_path)
    written = {path: path.stat().st_mtime_ns for path in first[0].iterdir()}

    second = prepare_drag_files(exam, OPTIONS, tmp_path)

    assert second == first
    assert {path: path.stat().st_mtime_ns for path in second[0].iterdir()} == written


def test_drag_files_change_with_options(
    exams: dict[ExamType, Exam], tmp_path: Path
) -> None:
    exam = exams[ExamType.COLOR]

    first = prepare_drag_files(exam, OPTIONS, tmp_path)
    second = prepare_drag_files(exam, ConversionOptions(dicom_prefix="x_"), tmp_path)

    assert first != second
    file = next(second[0].iterdir())
    assert dcmread(file).PatientID.startswith("x_")


def test_drag_files_selected_images(
    exams: dict[ExamType, Exam], tmp_path: Path
) -> None:
    exam = exams[ExamType.PANORAMIC]
    chosen = [image.image_id for image in exam.images[:2]]

    paths = prepare_drag_files(exam, OPTIONS, tmp_path, image_ids=chosen)

    assert len(paths) == 2
    assert {dcmread(path).SOPInstanceUID for path in paths} == {
        image.sop_instance_uid for image in exam.images[:2]
    }


def test_drag_entry_named_by_exam(exams: dict[ExamType, Exam], tmp_path: Path) -> None:
    exam = exams[ExamType.COLOR]
    chosen = [exam.images[0].image_id]

    whole = prepare_drag_files(exam, OPTIONS, tmp_path)[0].parent
    selected = prepare_drag_files(exam, OPTIONS, tmp_path, image_ids=chosen)[0]

    assert whole.parent == tmp_path
    assert whole.name.startswith(f"{exam.exam_id}_")
    assert drag_entry_exam_id(whole.name) == exam.exam_id
    assert drag_entry_exam_id(selected.parent.parent.name) == exam.exam_id
    assert selected.parent.parent != whole


def test_remove_stale_drag_files(exams: dict[ExamType, Exam], tmp_path: Path) -> None:
    old = prepare_drag_files(exams[ExamType.COLOR], OPTIONS, tmp_path)[0].parent
    fresh = prepare_drag_files(exams[ExamType.TEXTURE], OPTIONS, tmp_path)[0].parent
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    removed = remove_stale_drag_files(tmp_path, dt.timedelta(days=1))

    assert removed == 1
    assert not old.exists()
    assert fresh.exists()


def test_drag_files_of_deleted_exam_discarded(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "exams")
    exam = write_sample_exams(library, size=64, seed=5)[0]
    cache = tmp_path / "drag"
    # The images are still there, so the conversion succeeds, but the exam
    # is no longer in the library when the entry is renamed into place.
    assert exam.folder is not None
    (exam.folder / MANIFEST_NAME).unlink()

    with pytest.raises(ConversionError) as caught:
        prepare_drag_files(exam, OPTIONS, cache)

    assert f"Exam {exam.exam_id} was deleted" in str(caught.value)
    assert list(cache.iterdir()) == []


def test_dicomdir_stop_writes_nothing(
    sample_library: ExamLibrary, tmp_path: Path
) -> None:
    report = export_exams(
        sample_library,
        exam_ids(sample_library),
        None,
        tmp_path,
        dicomdir=True,
        should_stop=lambda: True,
    )

    assert report.stopped
    assert report.exported == ()
    assert list(tmp_path.iterdir()) == []
