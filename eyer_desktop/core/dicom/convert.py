"""Public entry points: an exam to DICOM datasets or files.

Every image of the exam becomes one Ophthalmic Photography 8 Bit Image
instance; a stereo exam adds one Stereometric Relationship instance per eye.
UIDs come from the exam, so converting the same exam twice gives the same
UIDs and the same bytes, except Instance Creation Date and Time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset

from eyer_desktop.core.dicom.context import (
    MONTAGE_SERIES_DESCRIPTION,
    SERIES_DESCRIPTIONS,
    ExamContext,
    build_context,
    check_uid,
)
from eyer_desktop.core.dicom.filenames import instance_filename
from eyer_desktop.core.dicom.modules import SeriesInfo
from eyer_desktop.core.dicom.op import (
    OP_8BIT_SOP_CLASS_UID,
    ImageAttributes,
    ImageReferences,
    build_op_dataset,
    build_series_template,
    image_elements,
    nominal_pixel_spacing,
    op_file_meta,
)
from eyer_desktop.core.dicom.options import ConversionOptions
from eyer_desktop.core.dicom.pixels import (
    EncodedImage,
    ImageInputError,
    encode_image,
    image_size,
)
from eyer_desktop.core.dicom.stereo import (
    build_stereo_dataset,
    stereo_groups,
    stereo_partners,
)
from eyer_desktop.core.dicom.writer import (
    Buffer,
    EncodedTemplate,
    encode_dataset,
    encode_file,
    write_files,
)
from eyer_desktop.core.errors import ConversionError
from eyer_desktop.core.exams import Exam, ExamImage, ImageRole

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertedInstance:
    """One converted instance, in memory.

    Attributes:
        filename: Safe file name for the instance, without patient data.
        dataset: The dataset, file meta information included.
        image_id: Id of the exam image it was made from; None for a
            Stereometric Relationship instance.
        reencoded: True when the pixels were decoded and re-encoded instead
            of being embedded unchanged.
    """

    filename: str
    dataset: Dataset
    image_id: str | None
    reencoded: bool = False


@dataclass(frozen=True)
class ConvertedFile:
    """One file written by :func:`convert_exam`."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    image_id: str | None
    reencoded: bool


@dataclass(frozen=True)
class EncodedFile:
    """The bytes of one DICOM file, and what they contain.

    Attributes:
        buffers: The file's bytes, as buffers to be written one after the
            other. The pixel data is one of them, not copied into a larger
            buffer.
    """

    filename: str
    buffers: tuple[Buffer, ...]
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    image_id: str | None
    reencoded: bool

    @property
    def data(self) -> bytes:
        """The file's bytes in one piece."""
        return b"".join(self.buffers)

    def converted_file(self, folder: Path) -> ConvertedFile:
        """Describe the file once written into ``folder``."""
        return ConvertedFile(
            path=folder / self.filename,
            sop_class_uid=self.sop_class_uid,
            sop_instance_uid=self.sop_instance_uid,
            series_instance_uid=self.series_instance_uid,
            image_id=self.image_id,
            reencoded=self.reencoded,
        )


@dataclass(frozen=True)
class _SeriesTemplate:
    """The shared attributes of one series, as a dataset and encoded."""

    series: SeriesInfo
    dataset: Dataset
    file_meta: FileMetaDataset

    @functools.cached_property
    def encoded(self) -> EncodedTemplate:
        return EncodedTemplate(self.dataset, self.file_meta)


class ExamConverter:
    """Converts the images of one exam, one at a time or all together.

    The exam-level values are validated once, when the converter is made, so
    a sender can convert images one by one without repeating that work.

    Raises:
        ConversionError: From the constructor when an exam-level value, a
            UID, a montage source or a stereo pair is invalid.
    """

    def __init__(
        self,
        exam: Exam,
        options: ConversionOptions | None = None,
        *,
        created_at: dt.datetime | None = None,
    ) -> None:
        self.exam = exam
        self.options = options or ConversionOptions()
        self.context: ExamContext = build_context(exam, self.options, created_at)
        self._check_images()
        self._partners = stereo_partners(exam)
        self._instance_numbers = _instance_numbers(exam)
        self._sizes: dict[str, tuple[int, int, tuple[int, int] | None]] = {}
        self._templates: dict[ImageRole, _SeriesTemplate] = {}

    def image_instance(self, image: ExamImage | str) -> ConvertedInstance:
        """Convert one image of the exam, given as an image or its id.

        Raises:
            ConversionError: The image file is missing, damaged or invalid.
        """
        image = self._resolve(image)
        attributes = self._image_attributes(image)
        template = self._template(image.role).dataset
        return ConvertedInstance(
            filename=self.image_filename(image),
            dataset=build_op_dataset(self.context, template, attributes),
            image_id=image.image_id,
            reencoded=attributes.encoded.reencoded_from is not None,
        )

    def encode_image_file(self, image: ExamImage | str) -> EncodedFile:
        """Convert one image of the exam straight to the bytes of its file.

        This is the fast path of :func:`convert_exam`: the attributes the
        image shares with its series are encoded once per series.

        Raises:
            ConversionError: The image file is missing, damaged or invalid.
        """
        image = self._resolve(image)
        attributes = self._image_attributes(image)
        template = self._template(image.role)
        buffers = encode_file(
            template.encoded,
            image_elements(self.context, attributes),
            attributes.encoded.pieces,
        )
        return EncodedFile(
            filename=self.image_filename(image),
            buffers=tuple(buffers),
            sop_class_uid=OP_8BIT_SOP_CLASS_UID,
            sop_instance_uid=image.sop_instance_uid,
            series_instance_uid=template.series.instance_uid,
            image_id=image.image_id,
            reencoded=attributes.encoded.reencoded_from is not None,
        )

    def image_filename(self, image: ExamImage) -> str:
        """Return the file name of an image's instance."""
        return instance_filename(
            self.context.study_id,
            self.context.series_number,
            "MT" if image.role is ImageRole.MONTAGE else "OP",
            self._instance_numbers[image.image_id],
            image.laterality.value,
        )

    def stereo_instances(self) -> list[ConvertedInstance]:
        """Return the Stereometric Relationship instances (none unless the exam
        has stereo pairs).
        """
        instances = []
        for number, group in enumerate(stereo_groups(self.exam), start=1):
            dataset = build_stereo_dataset(
                self.context, group, self.exam.uids.series_instance_uid
            )
            name = instance_filename(
                self.context.study_id,
                self.context.series_number,
                "SMR",
                number,
                group.laterality,
            )
            instances.append(ConvertedInstance(name, dataset, image_id=None))
        return instances

    def instances(self) -> Iterator[ConvertedInstance]:
        """Yield every instance of the exam: captured images, then montages,
        then the stereo relationships. Only one image is in memory at a time.
        """
        for image in self._ordered_images():
            yield self.image_instance(image)
        yield from self.stereo_instances()

    def encoded_files(self) -> Iterator[EncodedFile]:
        """Yield the file of every instance, in the order of :meth:`instances`."""
        for image in self._ordered_images():
            yield self.encode_image_file(image)
        for instance in self.stereo_instances():
            dataset = instance.dataset
            yield EncodedFile(
                filename=instance.filename,
                buffers=(encode_dataset(dataset),),
                sop_class_uid=str(dataset.SOPClassUID),
                sop_instance_uid=str(dataset.SOPInstanceUID),
                series_instance_uid=str(dataset.SeriesInstanceUID),
                image_id=None,
                reencoded=False,
            )

    def _ordered_images(self) -> list[ExamImage]:
        images = self.exam.images
        captures = [image for image in images if image.role is ImageRole.CAPTURE]
        montages = [image for image in images if image.role is ImageRole.MONTAGE]
        return captures + montages

    def _resolve(self, image: ExamImage | str) -> ExamImage:
        return self._image(image) if isinstance(image, str) else image

    def _image_attributes(self, image: ExamImage) -> ImageAttributes:
        encoded = self._encode(image)
        return ImageAttributes(
            role=image.role,
            laterality=image.laterality.value,
            sop_instance_uid=image.sop_instance_uid,
            instance_number=self._instance_numbers[image.image_id],
            encoded=encoded,
            pixel_spacing=self._pixel_spacing(image, encoded),
            references=self._references(image),
        )

    def _template(self, role: ImageRole) -> _SeriesTemplate:
        if role not in self._templates:
            series = self._series(role is ImageRole.MONTAGE)
            self._templates[role] = _SeriesTemplate(
                series,
                build_series_template(self.context, series),
                op_file_meta(self.context),
            )
        return self._templates[role]

    def _image(self, image_id: str) -> ExamImage:
        try:
            return self.exam.image(image_id)
        except KeyError as err:
            raise ConversionError(
                f"Exam {self.exam.exam_id} has no image {image_id}."
            ) from err

    def _check_images(self) -> None:
        exam = self.exam
        for name, uid in vars(exam.uids).items():
            check_uid(name.replace("_", " "), uid)
        seen: set[str] = set()
        for image in exam.images:
            check_uid(
                f"SOP Instance UID of image {image.image_id}", image.sop_instance_uid
            )
            if image.sop_instance_uid in seen:
                raise ConversionError(
                    f"Exam {exam.exam_id}: two images share the SOP Instance UID "
                    f"{image.sop_instance_uid}. Give every image its own UID."
                )
            seen.add(image.sop_instance_uid)
            if image.role is ImageRole.MONTAGE:
                self._check_montage_sources(image)

    def _check_montage_sources(self, montage: ExamImage) -> None:
        if not montage.sources:
            raise ConversionError(
                f"Exam {self.exam.exam_id}: montage {montage.image_id} lists no "
                f"source fields. Add the ids of the fields it was stitched from."
            )
        for source_id in montage.sources:
            source = self._image(source_id)
            if source.role is not ImageRole.CAPTURE:
                raise ConversionError(
                    f"Exam {self.exam.exam_id}: montage {montage.image_id} lists "
                    f"{source_id}, which is not a captured field."
                )

    def _read(self, image: ExamImage) -> bytes:
        try:
            return self.exam.image_path(image).read_bytes()
        except (OSError, ValueError) as err:
            raise ConversionError(
                f"Image {image.file} of exam {self.exam.exam_id} cannot be read: "
                f"{getattr(err, 'strerror', None) or err}. Check that the exam "
                f"folder is complete."
            ) from err

    def _encode(self, image: ExamImage) -> EncodedImage:
        data = self._read(image)
        try:
            encoded = encode_image(data, self.options.max_pixels)
        except ImageInputError as err:
            raise self._image_error(image, err) from err
        self._sizes[image.image_id] = (
            encoded.rows,
            encoded.columns,
            encoded.pixel_aspect_ratio,
        )
        return encoded

    def _image_error(self, image: ExamImage, err: ImageInputError) -> ConversionError:
        fix = err.fix or ("import the exam again from the camera's files")
        return ConversionError(
            f"Image {image.file} of exam {self.exam.exam_id} {err.problem}. "
            f"{fix[0].upper()}{fix[1:]}."
        )

    def _series(self, montage: bool) -> SeriesInfo:
        uids = self.exam.uids
        if montage:
            return SeriesInfo(
                uids.montage_series_instance_uid, "OP", MONTAGE_SERIES_DESCRIPTION
            )
        return SeriesInfo(
            uids.series_instance_uid, "OP", SERIES_DESCRIPTIONS[self.exam.exam_type]
        )

    def _pixel_spacing(
        self, image: ExamImage, encoded: EncodedImage
    ) -> tuple[float, float]:
        if image.role is not ImageRole.MONTAGE:
            return nominal_pixel_spacing(
                encoded.rows, encoded.columns, encoded.pixel_aspect_ratio
            )
        # NOTE: a montage is taken to keep the scale of its fields, so it gets
        # the nominal spacing of its first field; this is approximate.
        rows, columns, aspect = self._source_size(self._image(image.sources[0]))
        return nominal_pixel_spacing(rows, columns, aspect)

    def _source_size(
        self, source: ExamImage
    ) -> tuple[int, int, tuple[int, int] | None]:
        if source.image_id not in self._sizes:
            data = self._read(source)
            try:
                columns, rows = image_size(data)
            except ImageInputError as err:
                raise self._image_error(source, err) from err
            self._sizes[source.image_id] = (rows, columns, None)
        return self._sizes[source.image_id]

    def _references(self, image: ExamImage) -> ImageReferences:
        partner_id = self._partners.get(image.image_id)
        partner_uid = (
            self.exam.image(partner_id).sop_instance_uid if partner_id else None
        )
        sources = tuple(
            self.exam.image(source_id).sop_instance_uid for source_id in image.sources
        )
        montage = image.role is ImageRole.MONTAGE
        return ImageReferences(
            stereo_partner_uid=partner_uid,
            montage_source_uids=sources if montage else (),
        )


def _missing_folders(folder: Path) -> list[Path]:
    """Return ``folder`` and its ancestors that do not exist, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _instance_numbers(exam: Exam) -> dict[str, int]:
    """Number the images 1..n within each series, in the exam's order."""
    numbers: dict[str, int] = {}
    counters = {ImageRole.CAPTURE: 0, ImageRole.MONTAGE: 0}
    for image in exam.images:
        counters[image.role] += 1
        numbers[image.image_id] = counters[image.role]
    return numbers


def build_image_dataset(
    exam: Exam,
    image: ExamImage | str,
    options: ConversionOptions | None = None,
    *,
    created_at: dt.datetime | None = None,
) -> Dataset:
    """Return the OP dataset of one image of the exam.

    To convert several images of one exam, make one :class:`ExamConverter`
    and call its ``image_instance`` instead.
    """
    converter = ExamConverter(exam, options, created_at=created_at)
    return converter.image_instance(image).dataset


def iter_exam_datasets(
    exam: Exam,
    options: ConversionOptions | None = None,
    *,
    created_at: dt.datetime | None = None,
) -> Iterator[tuple[str, Dataset]]:
    """Yield (file name, dataset) for every instance of the exam, one at a time."""
    converter = ExamConverter(exam, options, created_at=created_at)
    for instance in converter.instances():
        yield instance.filename, instance.dataset


def build_exam_datasets(
    exam: Exam,
    options: ConversionOptions | None = None,
    *,
    created_at: dt.datetime | None = None,
) -> list[Dataset]:
    """Return the datasets of every instance of the exam."""
    return [
        dataset
        for _, dataset in iter_exam_datasets(exam, options, created_at=created_at)
    ]


def write_exam_output(
    files: Iterable[tuple[str, Sequence[Buffer]]], out_dir: Path, exam_id: str
) -> list[Path]:
    """Create ``out_dir`` when missing and write an exam's files into it.

    The files appear all or none (see :func:`write_files`). On failure the
    folders created here are removed too, so that nothing is left behind.

    Raises:
        ConversionError: The folder or a file cannot be written, or ``files``
            raised it.
    """
    created = _missing_folders(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConversionError(
            f"Cannot create the output folder {out_dir}: {err.strerror or err}. "
            "Check the folder's permissions and free space."
        ) from err
    try:
        return write_files(files, out_dir)
    except BaseException as err:
        # rmdir keeps a folder that is not empty.
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(err, OSError):
            raise ConversionError(
                f"Cannot write the DICOM files of exam {exam_id} to {out_dir}: "
                f"{_write_problem(err)}"
            ) from err
        raise


def _write_problem(err: OSError) -> str:
    """Return what went wrong in a failed write, with the file and the fix."""
    where = f" ({err.filename})" if err.filename else ""
    if isinstance(err, IsADirectoryError):
        fix = "Move or rename that folder, then try again."
    else:
        fix = "Check the folder's permissions and free space."
    return f"{err.strerror or err}{where}. {fix}"


def convert_exam(
    exam: Exam,
    options: ConversionOptions | None,
    out_dir: Path,
    *,
    created_at: dt.datetime | None = None,
) -> list[ConvertedFile]:
    """Write every instance of the exam as a DICOM file into ``out_dir``.

    Each file is first written under a temporary name in ``out_dir``. Only
    when every instance has been written are the files renamed to their final
    names, replacing the files of an earlier conversion. On any error the
    temporary files are removed, and no final file is created or changed.

    Raises:
        ConversionError: An image or exam value cannot be converted, or a file
            cannot be written.
    """
    converter = ExamConverter(exam, options, created_at=created_at)
    converted: list[ConvertedFile] = []

    def files() -> Iterator[tuple[str, tuple[Buffer, ...]]]:
        for encoded in converter.encoded_files():
            converted.append(encoded.converted_file(out_dir))
            yield encoded.filename, encoded.buffers

    write_exam_output(files(), out_dir, exam.exam_id)
    logger.info("Converted exam %s to %d DICOM files", exam.exam_id, len(converted))
    return converted
