"""Converted files checked by dicom3tools' dciodvfy and dcentvfy."""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.dicom import (
    CharacterSet,
    ConversionOptions,
    ConvertedFile,
    convert_exam,
)
from eyer_desktop.core.exams import WorklistLink
from tests.core.dicom.conftest import (
    CREATED_AT,
    DATA_DIR,
    EXAM_SPECS,
    JPEG_DIR,
    color_spec,
    make_exam,
    single_image_exam,
)
from tests.helpers.dicom3tools import (
    SMR_REFERENCED_SERIES_FALSE_POSITIVE,
    dcentvfy,
    dciodvfy,
    requires_dicom3tools,
)

pytestmark = requires_dicom3tools

SMR_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.3"
CHARACTER_SETS = list(CharacterSet)

# Corpus inputs that convert, by passthrough or re-encoding.
CONVERTIBLE_CORPUS = [
    "flower2_444_icc_restart.jpg",
    "hopper_16bit_qtables_sof1.jpg",
    "hopper_420.jpg",
    "hopper_exif_orientation_6.jpg",
    "hopper_exif_orientation_8.jpg",
    "hopper_gray.jpg",
    "icc_profile_big_progressive.jpg",
    "iptc_422.jpg",
    "libjpegturbo_monkey12_12bit.jpg",
    "libjpegturbo_testimgari_arithmetic.jpg",
    "mozilla_jpg-cmyk-2_adobe0.jpg",
    "mozilla_jpg-size-6x6_is_png.jpg",
    "pil_sample_cmyk_ycck_adobe.jpg",
]


def assert_valid(file: ConvertedFile) -> None:
    report = dciodvfy(file.path)
    expected = (
        [SMR_REFERENCED_SERIES_FALSE_POSITIVE]
        if file.sop_class_uid == SMR_CLASS
        else []
    )
    assert report.errors == expected, report.output
    assert report.warnings == [], report.output


@pytest.mark.parametrize("charset", CHARACTER_SETS)
@pytest.mark.parametrize("name", sorted(EXAM_SPECS))
def test_every_exam_type_is_valid(
    name: str, charset: CharacterSet, tmp_path: Path
) -> None:
    exam = make_exam(tmp_path / "exam", EXAM_SPECS[name]())
    options = ConversionOptions(dicom_prefix="eyer_", specific_character_set=charset)

    files = convert_exam(exam, options, tmp_path / "out", created_at=CREATED_AT)

    assert files
    for file in files:
        assert_valid(file)
    study = dcentvfy(file.path for file in files)
    assert study.errors == [], study.output
    assert study.warnings == [], study.output


def test_stereo_false_positive_is_the_only_error(tmp_path: Path) -> None:
    exam = make_exam(tmp_path / "exam", EXAM_SPECS["stereo"]())

    files = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    smr_files = [file for file in files if file.sop_class_uid == SMR_CLASS]
    assert len(smr_files) == 2
    for file in smr_files:
        assert dciodvfy(file.path).errors == [SMR_REFERENCED_SERIES_FALSE_POSITIVE]


@pytest.mark.parametrize("charset", CHARACTER_SETS)
def test_worklist_exam_is_valid(charset: CharacterSet, tmp_path: Path) -> None:
    exam = make_exam(tmp_path / "exam", color_spec())
    exam.worklist = WorklistLink(
        accession_number="ACC123",
        requested_procedure_id="RP1",
        requested_procedure_description="Retinografia – “ambos” os olhos",
        scheduled_procedure_step_id="SPS1",
        referring_physician_name="Souza^João",
        patient_id="PID-99",
        issuer_of_patient_id="HOSP",
    )
    options = ConversionOptions(
        specific_character_set=charset,
        station_name="EYER-PC",
        source_ae_title="EYERDESK",
    )

    files = convert_exam(exam, options, tmp_path / "out", created_at=CREATED_AT)

    for file in files:
        assert_valid(file)
    assert dcentvfy(file.path for file in files).errors == []


@pytest.mark.parametrize("name", CONVERTIBLE_CORPUS)
def test_corpus_conversions_are_valid(name: str, tmp_path: Path) -> None:
    exam = single_image_exam(
        tmp_path / "exam", (JPEG_DIR / name).read_bytes(), name=name
    )

    (file,) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    assert_valid(file)


def test_real_fundus_photograph_is_valid(tmp_path: Path) -> None:
    source = DATA_DIR / "fundus" / "wikimedia_fundus_normal_right_eye_600px.jpg"
    exam = single_image_exam(tmp_path / "exam", source.read_bytes())

    (file,) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    assert not file.reencoded
    assert_valid(file)


def test_validator_reports_a_broken_file(tmp_path: Path) -> None:
    exam = make_exam(tmp_path / "exam", color_spec())
    (file, _) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)
    data = file.path.read_bytes()
    # Change Modality OP to an enumerated value the OP IOD does not allow.
    broken = data.replace(
        b"\x08\x00\x60\x00CS\x02\x00OP", b"\x08\x00\x60\x00CS\x02\x00XA"
    )
    assert broken != data
    file.path.write_bytes(broken)

    report = dciodvfy(file.path)

    assert any("Modality" in error for error in report.errors)
