"""Tests of importing loose JPEG and PNG files as a new exam."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image

from eyer_desktop.core import library as library_module
from eyer_desktop.core.dicom.convert import convert_exam
from eyer_desktop.core.errors import ExamError, ValidationError
from eyer_desktop.core.exams import (
    ClinicDocument,
    DeviceInfo,
    ExamType,
    ImageRole,
    Laterality,
    Patient,
    PatientName,
    Sex,
)
from eyer_desktop.core.importer import (
    ImageInput,
    detect_image_format,
    import_images,
    make_patient,
    validate_patient,
)
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import ExamValidationError, load_exam
from tests.helpers.exif_files import NOT_TIFF, jpeg_with_exif

TODAY = dt.date(2025, 6, 1)
BRASILIA = dt.timezone(dt.timedelta(hours=-3))


JPEG_DIR = Path(__file__).parents[1] / "data" / "jpeg"
TWELVE_BIT_JPEG = JPEG_DIR / "libjpegturbo_monkey12_12bit.jpg"


def write_image(path: Path, image_format: str = "JPEG", **save_options: object) -> Path:
    image = Image.new("RGB", (64, 48), (200, 80, 40))
    image.save(path, image_format, **save_options)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patient() -> Patient:
    return Patient(
        PatientName("Gonçalves", "João", "Antônio"),
        ClinicDocument("CPF", "529.982.247-25"),
        Sex.MALE,
        dt.date(1971, 4, 19),
    )


@pytest.fixture
def library(tmp_path: Path) -> ExamLibrary:
    return ExamLibrary(tmp_path / "library")


def library_entries(library: ExamLibrary) -> list[str]:
    return sorted(os.listdir(library.root)) if library.root.exists() else []


# Importing files


def test_import_copies_originals(tmp_path: Path, library: ExamLibrary) -> None:
    right = write_image(tmp_path / "olho direito.jpg")
    left = write_image(tmp_path / "olho esquerdo.jpg", quality=50)
    hashes = {path: digest(path) for path in (right, left)}

    exam = import_images(
        library,
        [right, ImageInput(left, Laterality.LEFT)],
        patient(),
        captured_at=dt.datetime(2025, 3, 14, 9, 26, tzinfo=BRASILIA),
    )

    assert {path: digest(path) for path in (right, left)} == hashes
    assert exam.folder == library.root / exam.exam_id
    copies = [exam.image_path(image) for image in exam.images]
    assert [digest(path) for path in copies] == [hashes[right], hashes[left]]
    assert [image.laterality for image in exam.images] == [
        Laterality.RIGHT,
        Laterality.LEFT,
    ]
    assert [image.file for image in exam.images] == [
        "images/R-01.jpg",
        "images/L-02.jpg",
    ]
    assert load_exam(exam.folder) == exam


def test_import_png_detected_by_content(tmp_path: Path, library: ExamLibrary) -> None:
    png = write_image(tmp_path / "retina.jpg", "PNG")

    exam = import_images(library, [png], patient())

    assert exam.images[0].file == "images/R-01.png"
    assert exam.image_path(exam.images[0]).read_bytes() == png.read_bytes()


def test_non_image_rejected_and_nothing_written(
    tmp_path: Path, library: ExamLibrary
) -> None:
    good = write_image(tmp_path / "good.jpg")
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture", encoding="utf-8")

    with pytest.raises(ExamValidationError) as caught:
        import_images(library, [good, notes], patient())

    assert str(caught.value) == (
        f"import: image file {str(notes)!r}: is not a JPEG or PNG image. "
        "Choose JPEG or PNG files exported by the camera"
    )
    assert library_entries(library) == []


def test_every_bad_file_reported(tmp_path: Path, library: ExamLibrary) -> None:
    text = tmp_path / "a.txt"
    text.write_text("x", encoding="utf-8")
    gif = tmp_path / "b.gif"
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    missing = tmp_path / "c.jpg"

    with pytest.raises(ExamValidationError) as caught:
        import_images(library, [text, gif, missing], patient())

    values = [problem.value for problem in caught.value.problems]
    assert values == [str(text), str(gif), str(missing)]
    assert "cannot be read" in caught.value.problems[2].problem


def test_truncated_jpeg_rejected(tmp_path: Path, library: ExamLibrary) -> None:
    whole = write_image(tmp_path / "whole.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(ExamValidationError, match="truncated"):
        import_images(library, [cut], patient())

    assert library_entries(library) == []


def test_damaged_marker_rejected(tmp_path: Path, library: ExamLibrary) -> None:
    source = bytearray((JPEG_DIR / "hopper_420.jpg").read_bytes())
    scan = source.index(b"\xff\xda")
    stuffed = source.index(b"\xff\x00", scan)
    source[stuffed + 1] = 0x12
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(bytes(source))

    with pytest.raises(ExamValidationError, match="reserved marker 0xFF12"):
        import_images(library, [damaged], patient())

    assert library_entries(library) == []


def test_twelve_bit_jpeg_imported(tmp_path: Path, library: ExamLibrary) -> None:
    source = TWELVE_BIT_JPEG.read_bytes()
    path = tmp_path / "twelve.jpg"
    path.write_bytes(source)

    exam = import_images(library, [path], patient())

    assert len(exam.images) == 1
    assert exam.image_path(exam.images[0]).read_bytes() == source


def test_unconvertible_jpeg_gets_one_fix(tmp_path: Path, library: ExamLibrary) -> None:
    source = (
        Path(__file__).parents[1] / "data" / "jpeg12" / "libjpegtools_progressive.jpg"
    )
    path = tmp_path / "progressive12.jpg"
    path.write_bytes(source.read_bytes())

    with pytest.raises(ExamValidationError) as caught:
        import_images(library, [path], patient())

    [problem] = caught.value.problems
    assert "12-bit progressive" in problem.problem
    assert ";" not in problem.problem
    assert problem.fix == "Export the image as an 8-bit JPEG or as a PNG"
    assert library_entries(library) == []


def test_damaged_jpeg_fix_is_copying_again(
    tmp_path: Path, library: ExamLibrary
) -> None:
    whole = write_image(tmp_path / "whole.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(ExamValidationError) as caught:
        import_images(library, [cut], patient())

    [problem] = caught.value.problems
    assert problem.fix == "Copy the file from the camera again"


def test_full_disk_blames_the_library(
    tmp_path: Path, library: ExamLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake for a full disk, which a test cannot fill safely: every write
    # into the library fails with ENOSPC.
    class FullDiskFile(io.FileIO):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_on_full_disk(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "xb":
            return FullDiskFile(path, "xb")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(library_module, "open", open_on_full_disk, raising=False)
    image = write_image(tmp_path / "r.jpg")

    with pytest.raises(ExamError) as caught:
        import_images(library, [image], patient())

    message = str(caught.value)
    assert message.startswith("Writing exam ")
    assert "No space left on device" in message
    assert "Check free disk space" in message
    assert str(image) not in message
    assert library_entries(library) == []


def test_invalid_patient_rejected_before_copying(
    tmp_path: Path, library: ExamLibrary
) -> None:
    image = write_image(tmp_path / "r.jpg")
    bad = patient()
    bad.document = ClinicDocument("CPF", "")

    with pytest.raises(ExamValidationError, match=r"patient\.document\.number"):
        import_images(library, [image], bad)

    assert library_entries(library) == []


def test_patient_and_file_problems_together(
    tmp_path: Path, library: ExamLibrary
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x", encoding="utf-8")
    bad = patient()
    bad.name = PatientName("")

    with pytest.raises(ExamValidationError) as caught:
        import_images(library, [notes], bad)

    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["patient.name", "image file"]


def test_no_images_rejected(library: ExamLibrary) -> None:
    with pytest.raises(ExamValidationError, match="images: none given"):
        import_images(library, [], patient())


def test_values_from_arguments(tmp_path: Path, library: ExamLibrary) -> None:
    device = DeviceInfo("EYER-0042", "2.1.0", "Clínica São Lucas")

    exam = import_images(
        library,
        [write_image(tmp_path / "r.jpg")],
        patient(),
        exam_type=ExamType.RED_FREE,
        laterality=Laterality.LEFT,
        device=device,
        anamnesis={"diabetes": "yes"},
        pupil_dilated=True,
        sequence_number=41,
    )

    again = load_exam(exam.folder or tmp_path)
    assert again.device == device
    assert again.exam_type is ExamType.RED_FREE
    assert again.images[0].laterality is Laterality.LEFT
    assert again.anamnesis == {"diabetes": "yes"}
    assert again.pupil_dilated is True
    assert again.sequence_number == 41


def test_sequence_number_defaults_to_next(tmp_path: Path, library: ExamLibrary) -> None:
    image = write_image(tmp_path / "r.jpg")

    first = import_images(library, [image], patient(), sequence_number=9)
    second = import_images(library, [image], patient())

    assert first.sequence_number == 9
    assert second.sequence_number == 10


# Capture time


def test_capture_time_from_exif(tmp_path: Path, library: ExamLibrary) -> None:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2024:11:05 14:03:27"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "-03:00"
    later = Image.Exif()
    later_ifd = later.get_ifd(ExifTags.IFD.Exif)
    later_ifd[ExifTags.Base.DateTimeOriginal] = "2024:11:05 14:05:00"
    later_ifd[ExifTags.Base.OffsetTimeOriginal] = "-03:00"
    first = write_image(tmp_path / "a.jpg", exif=exif)
    second = write_image(tmp_path / "b.jpg", exif=later)

    exam = import_images(library, [second, first], patient())

    assert exam.captured_at == dt.datetime(2024, 11, 5, 14, 3, 27, tzinfo=BRASILIA)


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Return the JPEG with an APP1 segment of ``payload`` after SOI."""
    length = (len(payload) + 2).to_bytes(2, "big")
    return jpeg[:2] + b"\xff\xe1" + length + payload + jpeg[2:]


def test_twelve_bit_capture_time_from_exif(
    tmp_path: Path, library: ExamLibrary
) -> None:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2024:11:05 14:03:27"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "-03:00"
    path = tmp_path / "twelve.jpg"
    path.write_bytes(with_app1(TWELVE_BIT_JPEG.read_bytes(), exif.tobytes()))

    exam = import_images(library, [path], patient())

    assert exam.captured_at == dt.datetime(2024, 11, 5, 14, 3, 27, tzinfo=BRASILIA)


def test_twelve_bit_damaged_exif_ignored(tmp_path: Path, library: ExamLibrary) -> None:
    path = tmp_path / "twelve.jpg"
    damaged = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x87\x69"
    path.write_bytes(with_app1(TWELVE_BIT_JPEG.read_bytes(), damaged))
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)

    exam = import_images(library, [path], patient())

    assert before <= exam.captured_at <= dt.datetime.now(dt.UTC)


def test_damaged_exif_ignored_at_import(
    tmp_path: Path, library: ExamLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "damaged_exif.jpg"
    path.write_bytes(jpeg_with_exif(NOT_TIFF))

    exam = import_images(library, [path], patient())

    assert exam.image_path(exam.images[0]).read_bytes() == path.read_bytes()
    assert f"Ignoring the EXIF data of {path}" in caplog.text


def test_png_with_damaged_exif_converts(
    tmp_path: Path, library: ExamLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "damaged_exif.png"
    Image.new("RGB", (64, 48), (200, 80, 40)).save(
        path, "PNG", exif=b"Exif\x00\x00" + NOT_TIFF
    )

    exam = import_images(library, [path], patient())
    files = convert_exam(exam, None, tmp_path / "out")

    assert len(files) == 1
    assert "Ignoring the EXIF data" in caplog.text


@pytest.mark.parametrize(
    "unset_clock", ["1970:01:01 00:00:05", "1980:01:01 00:00:00", "2099:12:31 23:59:59"]
)
def test_implausible_exif_time_ignored(
    tmp_path: Path,
    library: ExamLibrary,
    caplog: pytest.LogCaptureFixture,
    unset_clock: str,
) -> None:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2024:11:05 14:03:27"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "-03:00"
    wrong = Image.Exif()
    wrong_ifd = wrong.get_ifd(ExifTags.IFD.Exif)
    wrong_ifd[ExifTags.Base.DateTimeOriginal] = unset_clock
    wrong_ifd[ExifTags.Base.OffsetTimeOriginal] = "-03:00"
    good = write_image(tmp_path / "a.jpg", exif=exif)
    reset = write_image(tmp_path / "b.jpg", exif=wrong)

    exam = import_images(library, [reset, good], patient())

    assert exam.captured_at == dt.datetime(2024, 11, 5, 14, 3, 27, tzinfo=BRASILIA)
    assert f"Ignoring the EXIF capture time {unset_clock[:4]}" in caplog.text
    assert str(reset) in caplog.text


def test_capture_time_without_offset_uses_local(
    tmp_path: Path, library: ExamLibrary
) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = (
        "2024:11:05 14:03:27"
    )

    exam = import_images(
        library, [write_image(tmp_path / "a.jpg", exif=exif)], patient()
    )

    expected = dt.datetime(2024, 11, 5, 14, 3, 27).astimezone()
    assert exam.captured_at == expected
    assert exam.captured_at.utcoffset() == expected.utcoffset()


def test_capture_time_defaults_to_now(tmp_path: Path, library: ExamLibrary) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)

    exam = import_images(library, [write_image(tmp_path / "a.jpg")], patient())

    after = dt.datetime.now(dt.UTC)
    assert exam.captured_at.tzinfo is not None
    assert before <= exam.captured_at <= after


def test_naive_capture_time_rejected(tmp_path: Path, library: ExamLibrary) -> None:
    with pytest.raises(ExamValidationError, match=r"capture time .* has no UTC offset"):
        import_images(
            library,
            [write_image(tmp_path / "a.jpg")],
            patient(),
            captured_at=dt.datetime(2025, 3, 14, 9, 0),
        )


# Stereo and panoramic imports


def test_stereo_images_paired_in_order(tmp_path: Path, library: ExamLibrary) -> None:
    paths = [write_image(tmp_path / f"{n}.jpg") for n in range(4)]
    inputs = [
        ImageInput(paths[0], Laterality.RIGHT),
        ImageInput(paths[1], Laterality.LEFT),
        ImageInput(paths[2], Laterality.RIGHT),
        ImageInput(paths[3], Laterality.LEFT),
    ]

    exam = import_images(library, inputs, patient(), exam_type=ExamType.STEREO)

    ids = [image.image_id for image in exam.images]
    pairs = [(pair.left_image_id, pair.right_image_id) for pair in exam.stereo_pairs]
    assert pairs == [(ids[0], ids[2]), (ids[1], ids[3])]


def test_stereo_odd_image_count_rejected(tmp_path: Path, library: ExamLibrary) -> None:
    paths = [write_image(tmp_path / f"{n}.jpg") for n in range(3)]

    with pytest.raises(ExamValidationError, match="3 images of eye R cannot form"):
        import_images(library, paths, patient(), exam_type=ExamType.STEREO)

    assert library_entries(library) == []


def test_panoramic_montage_sources(tmp_path: Path, library: ExamLibrary) -> None:
    fields = [write_image(tmp_path / f"{n}.jpg") for n in range(3)]
    montage = write_image(tmp_path / "montage.png", "PNG")
    inputs: list[Path | ImageInput] = [
        *fields,
        ImageInput(montage, role=ImageRole.MONTAGE),
    ]

    exam = import_images(library, inputs, patient(), exam_type=ExamType.PANORAMIC)

    field_ids = tuple(image.image_id for image in exam.images[:3])
    assert exam.images[3].role is ImageRole.MONTAGE
    assert exam.images[3].sources == field_ids


def test_montage_in_color_exam_rejected(tmp_path: Path, library: ExamLibrary) -> None:
    fields = [write_image(tmp_path / f"{n}.jpg") for n in range(2)]
    montage = ImageInput(write_image(tmp_path / "m.jpg"), role=ImageRole.MONTAGE)

    with pytest.raises(ExamValidationError, match="is not allowed in a color exam"):
        import_images(library, [*fields, montage], patient())

    assert library_entries(library) == []


# Patient data


def test_make_patient_from_text() -> None:
    made = make_patient(
        family=" Gonçalves ",
        given="João",
        middle="Antônio",
        document_type="CPF",
        document_number="529.982.247-25",
        sex="m",
        birth_date="1971-04-19",
        today=TODAY,
    )

    assert made == patient()


def test_make_patient_blank_optional_values() -> None:
    made = make_patient(
        family="Silva", document_number="123", sex=" ", birth_date="", today=TODAY
    )

    assert made.sex is None
    assert made.birth_date is None


PATIENT_CASES = [
    ({"sex": "X"}, 'patient.sex \'X\': is not allowed. Use one of "M", "F", "O"'),
    ({"birth_date": "19/04/1971"}, "patient.birth_date '19/04/1971': is not a valid"),
    ({"birth_date": "2025-06-02"}, "patient.birth_date '2025-06-02': is in the future"),
    ({"family": "", "given": ""}, "patient.name: is empty"),
    ({"document_number": "  "}, "patient.document.number '  ': is empty"),
    ({"document_number": "12\\3"}, "contains a backslash"),
    ({"document_number": "12\t3"}, "contains a control character"),
    ({"given": "Jo\x00ão"}, "patient.name.given"),
]


@pytest.mark.parametrize(("changes", "expected"), PATIENT_CASES)
def test_make_patient_rejects(changes: dict[str, str], expected: str) -> None:
    values = {"family": "Silva", "document_number": "123", **changes}

    with pytest.raises(ExamValidationError) as caught:
        make_patient(today=TODAY, **values)

    assert expected in str(caught.value)


def test_make_patient_reports_all_problems() -> None:
    with pytest.raises(ExamValidationError) as caught:
        make_patient(
            family="",
            document_number="",
            sex="male",
            birth_date="tomorrow",
            today=TODAY,
        )

    fields = [problem.field for problem in caught.value.problems]
    assert fields == [
        "patient.name",
        "patient.document.number",
        "patient.sex",
        "patient.birth_date",
    ]


def test_birth_date_today_allowed() -> None:
    newborn = patient()
    newborn.birth_date = TODAY

    validate_patient(newborn, today=TODAY)


def test_detect_image_format(tmp_path: Path) -> None:
    assert detect_image_format(write_image(tmp_path / "a.jpg")) == "JPEG"
    assert detect_image_format(write_image(tmp_path / "b", "PNG")) == "PNG"
    assert detect_image_format(write_image(tmp_path / "c.png", "JPEG")) == "JPEG"
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValidationError, match="is empty"):
        detect_image_format(tmp_path / "empty.jpg")
    (tmp_path / "notes.jpg").write_bytes(b"shopping list")
    with pytest.raises(ValidationError, match="is not a JPEG or PNG image"):
        detect_image_format(tmp_path / "notes.jpg")
