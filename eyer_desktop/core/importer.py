"""Import loose JPEG and PNG files, with patient data, as a new exam.

The image files are copied into the library, never moved or changed. Their
format is detected from their content, not from the file name extension.
Everything is checked before anything is written, and the library writes the
exam folder atomically, so a failed import leaves nothing behind.

The capture time is the ``captured_at`` argument when given. Otherwise it is
the earliest EXIF DateTimeOriginal among the images, with the EXIF
OffsetTimeOriginal when present and else the computer's UTC offset at that
time. Without EXIF times it is the current time with the computer's offset.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from eyer_desktop.core.dicom.jpeg import parse_jpeg
from eyer_desktop.core.dicom.pixels import ImageInputError, encode_image
from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.exams import (
    DeviceInfo,
    Diopters,
    Exam,
    ExamImage,
    ExamType,
    ExamUids,
    ImageRole,
    Laterality,
    Patient,
    StereoPair,
    WorklistLink,
    image_sop_instance_uid,
    new_id,
)
from eyer_desktop.core.exif import exif_from_tiff, exif_ifd, read_exif
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import (
    CAPTURE_CLOCK_TOLERANCE,
    EARLIEST_CAPTURE_DATE,
    ExamValidationError,
    patient_from_json,
    patient_to_json,
)

logger = logging.getLogger(__name__)

# File signatures (magic numbers) of the accepted formats, with the extension
# the copy in the exam folder gets.
_SIGNATURES = {
    b"\xff\xd8\xff": ("JPEG", "jpg"),
    b"\x89PNG\r\n\x1a\n": ("PNG", "png"),
}
_EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"


@dataclass(frozen=True)
class ImageInput:
    """A loose image file to import.

    Attributes:
        path: The file to copy.
        laterality: The eye in the picture, or None for the import's default.
        role: ``montage`` for a panoramic mosaic. Its sources are all captured
            images of the same eye in the import.
    """

    path: Path
    laterality: Laterality | None = None
    role: ImageRole = ImageRole.CAPTURE


@dataclass(frozen=True)
class _CheckedImage:
    source: ImageInput
    extension: str
    exif_time: dt.datetime | None


def make_patient(
    *,
    family: str,
    document_number: str,
    given: str = "",
    middle: str = "",
    document_type: str = "",
    sex: str | None = None,
    birth_date: str | None = None,
    today: dt.date | None = None,
) -> Patient:
    """Build a patient from text, as typed on the command line or in a form.

    Sex is M, F or O in either case, or None. The birth date is YYYY-MM-DD, not
    after ``today`` (the computer's date when None), or None when unknown.

    Raises:
        ExamValidationError: Every invalid field, with its value and fix.
    """
    sex_code = sex.strip().upper() if sex is not None and sex.strip() else None
    birth = (
        birth_date.strip() if birth_date is not None and birth_date.strip() else None
    )
    data = {
        "name": {"family": family, "given": given, "middle": middle},
        "document": {"type": document_type, "number": document_number},
        "sex": sex_code,
        "birth_date": birth,
    }
    return patient_from_json(data, today=today or dt.date.today())


def validate_patient(patient: Patient, *, today: dt.date | None = None) -> None:
    """Check a patient's name, document, sex and birth date.

    Raises:
        ExamValidationError: Every invalid field, with its value and fix.
    """
    patient_from_json(patient_to_json(patient), today=today or dt.date.today())


def detect_image_format(path: Path) -> str:
    """Return ``"JPEG"`` or ``"PNG"`` from the file's first bytes.

    Raises:
        ValidationError: The file cannot be read or is neither JPEG nor PNG.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError as err:
        raise ValidationError(
            "image file",
            str(path),
            f"cannot be read ({err.strerror or err})",
            "Check that the file exists and can be read",
        ) from err
    for signature, (name, _extension) in _SIGNATURES.items():
        if head.startswith(signature):
            return name
    if not head:
        raise ValidationError(
            "image file",
            str(path),
            "is empty",
            "Copy the file from the camera again",
        )
    raise ValidationError(
        "image file",
        str(path),
        "is not a JPEG or PNG image",
        "Choose JPEG or PNG files exported by the camera",
    )


def import_images(
    library: ExamLibrary,
    images: Sequence[Path | ImageInput],
    patient: Patient,
    *,
    exam_type: ExamType = ExamType.COLOR,
    laterality: Laterality = Laterality.RIGHT,
    captured_at: dt.datetime | None = None,
    device: DeviceInfo | None = None,
    anamnesis: Mapping[str, Any] | None = None,
    diopters: Diopters | None = None,
    pupil_dilated: bool | None = None,
    sequence_number: int | None = None,
    worklist: WorklistLink | None = None,
) -> Exam:
    """Copy loose image files into a new exam of the library and return it.

    ``laterality`` applies to every image that does not give its own. In a
    stereo exam the captured images of each eye pair up in the order given:
    first and second, third and fourth. In a panoramic exam a montage's sources
    are the captured images of its eye. The sequence number defaults to one
    more than the library's highest.

    Raises:
        ExamValidationError: The patient data, the files or the exam are
            invalid. Nothing is written.
        ExamError: Writing the exam failed. Nothing is left behind.
    """
    inputs = [
        item if isinstance(item, ImageInput) else ImageInput(item) for item in images
    ]
    if not inputs:
        problem = ValidationError(
            "images", None, "none given", "Choose at least one JPEG or PNG file"
        )
        raise ExamValidationError("import", [problem])
    checked = _check_patient_and_images(patient, inputs)
    when = _capture_time(captured_at, checked)

    exam_id = new_id()
    exam = Exam(
        exam_id=exam_id,
        exam_type=exam_type,
        captured_at=when,
        patient=patient,
        images=[],
        uids=ExamUids.derive(exam_id),
        sequence_number=(
            library.next_sequence_number()
            if sequence_number is None
            else sequence_number
        ),
        anamnesis=dict(anamnesis or {}),
        diopters=diopters or Diopters(),
        pupil_dilated=pupil_dilated,
        device=device or DeviceInfo(),
        worklist=worklist,
    )
    sources: dict[str, Path | bytes] = {}
    for number, item in enumerate(checked, start=1):
        image = _exam_image(exam_id, item, number, laterality)
        exam.images.append(image)
        sources[image.image_id] = item.source.path
    _link_montages(exam)
    if exam_type is ExamType.STEREO:
        exam.stereo_pairs = _pair_in_order(exam.images)

    library.create_exam(exam, sources)
    logger.info(
        "Imported %d images as %s exam %s", len(exam.images), exam_type, exam_id
    )
    return exam


def _check_patient_and_images(
    patient: Patient, inputs: list[ImageInput]
) -> list[_CheckedImage]:
    """Check the patient data and every file, and report all problems at once."""
    checked: list[_CheckedImage] = []
    problems: list[ValidationError] = []
    try:
        validate_patient(patient)
    except ExamValidationError as err:
        problems.extend(err.problems)
    for item in inputs:
        try:
            checked.append(_check_image(item))
        except ValidationError as err:
            problems.append(err)
    if problems:
        raise ExamValidationError("import", problems)
    return checked


def _check_image(item: ImageInput) -> _CheckedImage:
    """Check the image as the conversion will, decode it whole where Pillow
    can, and read its EXIF time.
    """
    format_name = detect_image_format(item.path)
    extension = next(ext for name, ext in _SIGNATURES.values() if name == format_name)
    try:
        data = item.path.read_bytes()
    except OSError as err:
        raise ValidationError(
            "image file",
            str(item.path),
            f"cannot be read ({err.strerror or err})",
            "Check that the file exists and can be read",
        ) from err
    # The conversion's own check accepts exactly what can become an OP
    # image, 12-bit JPEG included, and finds damaged markers.
    try:
        encode_image(data)
    except ImageInputError as err:
        fix = err.fix or "copy the file from the camera again"
        raise ValidationError(
            "image file", str(item.path), err.problem, fix[0].upper() + fix[1:]
        ) from err
    if format_name == "JPEG":
        structure = parse_jpeg(data)
        if structure.precision != 8:
            # Pillow decodes 8-bit JPEG only; the transcoding above has
            # already decoded every coefficient of this one.
            exif = Image.Exif()
            if structure.exif is not None:
                exif = exif_from_tiff(structure.exif, item.path)
            exif_time = _plausible(_exif_capture_time(exif), item.path)
            return _CheckedImage(item, extension, exif_time)
    try:
        with Image.open(io.BytesIO(data), formats=[format_name]) as image:
            image.load()
            exif_time = _exif_capture_time(read_exif(image, item.path))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ValidationError(
            "image file",
            str(item.path),
            f"is a damaged or truncated {format_name} image ({err})",
            "Copy the file from the camera again",
        ) from err
    return _CheckedImage(item, extension, _plausible(exif_time, item.path))


def _plausible(exif_time: dt.datetime | None, path: Path) -> dt.datetime | None:
    """Return an EXIF capture time, or None when it cannot be a real capture.

    A camera whose clock was never set, or lost its battery, writes times
    such as 1970 or 1980. Such a time is ignored like a missing one, so that
    one image does not stop the import.
    """
    if exif_time is None:
        return None
    latest = dt.datetime.now(dt.UTC) + CAPTURE_CLOCK_TOLERANCE
    if exif_time.date() < EARLIEST_CAPTURE_DATE or exif_time > latest:
        logger.warning(
            "Ignoring the EXIF capture time %s of %s: it is before %s or in the "
            "future, so the camera's clock was probably not set",
            exif_time.isoformat(),
            path,
            EARLIEST_CAPTURE_DATE.isoformat(),
        )
        return None
    return exif_time


def _exif_capture_time(exif_root: Image.Exif) -> dt.datetime | None:
    """Return the EXIF DateTimeOriginal as an aware time, or None without one."""
    exif = exif_ifd(exif_root, ExifTags.IFD.Exif)
    original = exif.get(ExifTags.Base.DateTimeOriginal)
    if not isinstance(original, str):
        return None
    try:
        naive = dt.datetime.strptime(original.strip("\x00 "), _EXIF_TIME_FORMAT)
    except ValueError:
        logger.warning("Ignoring an EXIF DateTimeOriginal that is not a valid time")
        return None

    offset = exif.get(ExifTags.Base.OffsetTimeOriginal)
    if isinstance(offset, str):
        try:
            return dt.datetime.fromisoformat(naive.isoformat() + offset.strip("\x00 "))
        except ValueError:
            logger.warning("Ignoring an EXIF OffsetTimeOriginal that is not valid")
    return naive.astimezone()


def _capture_time(
    given: dt.datetime | None, checked: list[_CheckedImage]
) -> dt.datetime:
    if given is not None:
        if given.tzinfo is None:
            raise ExamValidationError(
                "import",
                [
                    ValidationError(
                        "capture time",
                        given.isoformat(),
                        "has no UTC offset",
                        "Give the time with its UTC offset, such as "
                        "2025-03-14T09:26:53-03:00",
                    )
                ],
            )
        return given
    exif_times = [item.exif_time for item in checked if item.exif_time is not None]
    if exif_times:
        return min(exif_times)
    return dt.datetime.now().astimezone().replace(microsecond=0)


def _exam_image(
    exam_id: str, item: _CheckedImage, number: int, default: Laterality
) -> ExamImage:
    image_id = new_id()
    laterality = item.source.laterality or default
    return ExamImage(
        image_id=image_id,
        file=f"images/{laterality}-{number:02d}.{item.extension}",
        laterality=laterality,
        sop_instance_uid=image_sop_instance_uid(exam_id, image_id),
        role=item.source.role,
    )


def _link_montages(exam: Exam) -> None:
    """Set each montage's sources to the captured images of its eye."""
    for image in exam.images:
        if image.role is ImageRole.MONTAGE:
            image.sources = tuple(
                other.image_id
                for other in exam.images
                if other.role is ImageRole.CAPTURE
                and other.laterality is image.laterality
            )


def _pair_in_order(images: list[ExamImage]) -> list[StereoPair]:
    """Pair the captured images of each eye in order: 1 with 2, 3 with 4.

    Raises:
        ExamValidationError: An eye has an odd number of captured images.
    """
    pairs: list[StereoPair] = []
    problems: list[ValidationError] = []
    for eye in Laterality:
        views = [
            image
            for image in images
            if image.laterality is eye and image.role is ImageRole.CAPTURE
        ]
        if len(views) % 2:
            problems.append(
                ValidationError(
                    "images",
                    None,
                    f"{len(views)} images of eye {eye} cannot form stereo pairs",
                    "Give two images, left and right view, for each stereo pair",
                )
            )
        pairs.extend(
            StereoPair(left.image_id, right.image_id)
            for left, right in zip(views[::2], views[1::2], strict=False)
        )
    if problems:
        raise ExamValidationError("import", problems)
    return pairs
