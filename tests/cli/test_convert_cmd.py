"""``eyer-desktop convert``: DICOM files of exams written to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from eyer_desktop.core.exams import ClinicDocument, Exam, ExamType
from eyer_desktop.core.manifest import save_exam
from eyer_desktop.core.outbox import items_of_exam
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_exams
from tests.cli.conftest import RunCli
from tests.helpers.delivery_profile import (  # noqa: F401
    SAMPLE_SIZE,
    copy_samples,
    sample_library_fixture,
)
from tests.helpers.dicom3tools import (
    SMR_REFERENCED_SERIES_FALSE_POSITIVE,
    dcentvfy,
    dciodvfy,
    requires_dicom3tools,
)


@pytest.fixture(name="samples")
def samples_fixture(isolated_profile: AppPaths, sample_library: Path) -> list[Exam]:
    return copy_samples(isolated_profile, sample_library)


def dicom_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


@requires_dicom3tools
def test_convert_files_pass_dciodvfy(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    out = tmp_path / "out"

    result = run_cli("convert", "--out", str(out), *(e.exam_id for e in samples))

    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == len(samples)
    for exam in samples:
        files = dicom_files(out / exam.exam_id)
        assert f"{exam.exam_id}: {len(files)} files in {out / exam.exam_id}" in (
            result.out
        )
        assert {str(dcmread(path).SOPInstanceUID) for path in files} == {
            item.sop_instance_uid for item in items_of_exam(exam)
        }
        for path in files:
            report = dciodvfy(path)
            errors = [
                error
                for error in report.errors
                if error != SMR_REFERENCED_SERIES_FALSE_POSITIVE
            ]
            assert errors == [], f"{path.name}: {report.output}"
        assert dcentvfy(files).errors == []


def test_convert_exam_folder_outside_library(run_cli: RunCli, tmp_path: Path) -> None:
    [color] = write_sample_exams(tmp_path / "elsewhere", size=SAMPLE_SIZE)[:1]
    assert color.folder is not None

    result = run_cli("convert", "--out", str(tmp_path / "out"), str(color.folder))

    files = dicom_files(tmp_path / "out" / color.exam_id)
    assert result.code == 0, result.err
    assert len(files) == len(color.images)


def test_convert_again_replaces_files(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    stereo = next(exam for exam in samples if exam.exam_type is ExamType.STEREO)
    folder = tmp_path / "out" / stereo.exam_id

    first = run_cli("convert", "--out", str(tmp_path / "out"), stereo.exam_id[:8])
    names = [path.name for path in dicom_files(folder)]
    uids = [dcmread(path).SOPInstanceUID for path in dicom_files(folder)]
    second = run_cli("convert", "--out", str(tmp_path / "out"), stereo.exam_id)

    assert first.code == 0, first.err
    assert second.code == 0, second.err
    assert len(names) == len(stereo.images) + 2
    assert [path.name for path in dicom_files(folder)] == names
    assert [dcmread(path).SOPInstanceUID for path in dicom_files(folder)] == uids


def test_folder_in_the_way_keeps_earlier_files(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    stereo = next(exam for exam in samples if exam.exam_type is ExamType.STEREO)
    out = tmp_path / "out"
    assert run_cli("convert", "--out", str(out), stereo.exam_id).code == 0
    folder = out / stereo.exam_id
    files = dicom_files(folder)
    earlier = {path.name: path.read_bytes() for path in files}
    blocked = files[len(files) // 2]
    blocked.unlink()
    blocked.mkdir()
    del earlier[blocked.name]

    result = run_cli("convert", "--out", str(out), stereo.exam_id)

    assert result.code == 1
    error = result.err.splitlines()[0]
    assert f"A folder has the name of a file to write ({blocked})" in error
    assert "Move or rename that folder" in error
    assert {path.name: path.read_bytes() for path in dicom_files(folder)} == earlier
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [*earlier, blocked.name]
    )


def test_damaged_image_error_has_a_fix(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    exam = samples[0]
    image = exam.image_path(exam.images[0])
    image.write_bytes(image.read_bytes()[:2000])

    result = run_cli("convert", "--out", str(tmp_path / "out"), exam.exam_id)

    assert result.code == 1
    error = result.err.splitlines()[0]
    assert "is not a valid JPEG" in error
    assert error.endswith("Import the exam again from the camera's files.")


def test_convert_uses_dicom_prefix_setting(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    color = samples[0]
    assert run_cli("settings", "set", "dicom_prefix", "phelcom_").code == 0

    result = run_cli("convert", "--out", str(tmp_path), color.exam_id)

    assert result.code == 0, result.err
    for path in dicom_files(tmp_path / color.exam_id):
        dataset = dcmread(path)
        assert dataset.PatientID == "phelcom_" + color.patient.document.number


def test_convert_unknown_exam_exits_2(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    result = run_cli("convert", "--out", str(tmp_path / "out"), "ffff0000")

    assert result.code == 2
    assert result.err.startswith("error: Exam 'ffff0000'")
    assert result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_convert_needs_out(run_cli: RunCli, samples: list[Exam]) -> None:
    result = run_cli("convert", samples[0].exam_id)

    assert result.code == 2
    assert "--out" in result.err


def test_convert_continues_after_failure(
    run_cli: RunCli, samples: list[Exam], tmp_path: Path
) -> None:
    first, broken, last = samples[:3]
    assert broken.folder is not None
    broken.patient.document = ClinicDocument("CPF", "😀")
    save_exam(broken, broken.folder)
    assert run_cli("settings", "set", "specific_character_set", "ISO_IR 100").code == 0
    out = tmp_path / "out"

    result = run_cli(
        "convert", "--out", str(out), first.exam_id, broken.exam_id, last.exam_id
    )

    assert result.code == 1
    assert dicom_files(out / first.exam_id)
    assert dicom_files(out / last.exam_id)
    assert not (out / broken.exam_id).exists()
    error, summary = result.err.splitlines()
    assert error.startswith(f"error: {broken.exam_id}: Patient ID")
    assert "ISO_IR 192" in error
    assert "😀" not in error
    assert summary == "1 of 3 exams were not converted"


@pytest.mark.parametrize(
    "command",
    [
        ("convert", "--out", "", "EXAM"),
        ("convert", "--out", " ", "EXAM"),
        ("samples", ""),
        ("--profile", "", "servers", "list"),
    ],
)
def test_empty_path_option_exits_2(
    run_cli: RunCli, samples: list[Exam], command: tuple[str, ...]
) -> None:
    exam_id = samples[0].exam_id
    result = run_cli(*(exam_id if part == "EXAM" else part for part in command))

    assert result.code == 2
    assert "the path is empty" in result.err
