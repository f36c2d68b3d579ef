"""Export of exams as DICOM files: to a folder, to removable media, for dragging.

A plain export writes each exam into its own subfolder of the target, named
after the exam's Study ID and series number (``20250314092653_7``), so folder
and file names carry no patient data. An export for removable media writes a
DICOMDIR and the files in the layout pydicom's ``FileSet`` gives them
(``PT000000/ST000000/SE000000/IM000000``), whose names are the upper-case,
at most 8 character components that a DICOMDIR requires.

One exam that cannot be read or converted does not stop the others: it is
reported in :attr:`ExportReport.failures` with its error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import DIRECTORY_RECORDERS, FileInstance, FileSet, RecordNode
from pydicom.uid import StereometricRelationshipStorage

from eyer_desktop.core.caches import drag_entry_name, make_drag_staging_folder
from eyer_desktop.core.dicom.convert import (
    ExamConverter,
    convert_exam,
    write_exam_output,
)
from eyer_desktop.core.dicom.dates import format_study_id
from eyer_desktop.core.dicom.options import ConversionOptions
from eyer_desktop.core.errors import ConversionError, EyerError, ValidationError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import MANIFEST_NAME

logger = logging.getLogger(__name__)

DICOMDIR_NAME = "DICOMDIR"
FILE_SET_ID = "EYER_EXPORT"

# Top-level folders that pydicom's FileSet writes, one per patient.
_FILE_SET_FOLDER = re.compile(r"PT[0-9A-Z]{6}")
_STAGING_PREFIX = ".eyer-export-"

ProgressCallback = Callable[[int, int], None]
"""Called with the number of exams done and the total."""

StopCheck = Callable[[], bool]
"""Returns True when the export should stop before the next exam."""


@dataclass(frozen=True)
class ExportedExam:
    """The files written for one exam."""

    exam_id: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class ExportFailure:
    """An exam that could not be exported, and why."""

    exam_id: str
    error: EyerError


@dataclass(frozen=True)
class ExportReport:
    """The outcome of one export.

    Attributes:
        folder: The target folder.
        exported: The exams written, in the order given.
        failures: The exams that could not be read or converted.
        dicomdir: The DICOMDIR file, when one was written.
        stopped: True when the export stopped early on request. A DICOMDIR
            export that stops writes nothing.
    """

    folder: Path
    exported: tuple[ExportedExam, ...]
    failures: tuple[ExportFailure, ...]
    dicomdir: Path | None = None
    stopped: bool = False

    @property
    def file_count(self) -> int:
        """The number of DICOM files written, the DICOMDIR not included."""
        return sum(len(exam.files) for exam in self.exported)


def exam_folder_name(exam: Exam) -> str:
    """Return the export folder name of an exam: Study ID and series number."""
    return f"{format_study_id(exam.captured_at)}_{exam.sequence_number}"


def write_exam_files(
    exam: Exam,
    options: ConversionOptions | None,
    folder: Path,
    *,
    image_ids: Collection[str] | None = None,
) -> list[Path]:
    """Write the DICOM files of an exam, or of some of its images, into a folder.

    With ``image_ids`` only those images are written, and no Stereometric
    Relationship instance. Files appear under their final names only once all
    of them are written, replacing files of an earlier export.

    Raises:
        ConversionError: An image or exam value cannot be converted, an image
            id is not in the exam, or a file cannot be written.
    """
    if image_ids is None:
        return [converted.path for converted in convert_exam(exam, options, folder)]

    converter = ExamConverter(exam, options)
    files = (
        (encoded.filename, encoded.buffers)
        for encoded in map(converter.encode_image_file, image_ids)
    )
    return write_exam_output(files, folder, exam.exam_id)


def export_exams(
    library: ExamLibrary,
    exam_ids: Sequence[str],
    options: ConversionOptions | None,
    target: Path,
    *,
    dicomdir: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> ExportReport:
    """Export exams of the library as DICOM files into ``target``.

    Raises:
        ValidationError: For a DICOMDIR export, ``target`` already contains a
            DICOMDIR or a patient folder of one.
        ConversionError: The target folder cannot be created, or the file-set
            cannot be written.
    """
    # The file-set's paths are absolute, so the target is made absolute too.
    job = _ExportJob(
        library, exam_ids, options, target.absolute(), progress, should_stop
    )
    return _export_file_set(job) if dicomdir else _export_folders(job)


@dataclass(frozen=True)
class _ExportJob:
    library: ExamLibrary
    exam_ids: Sequence[str]
    options: ConversionOptions | None
    target: Path
    progress: ProgressCallback | None
    should_stop: StopCheck | None

    def stop_requested(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def report_progress(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, len(self.exam_ids))


def _export_folders(job: _ExportJob) -> ExportReport:
    exported: list[ExportedExam] = []
    failures: list[ExportFailure] = []
    used_names: set[str] = set()
    for done, exam_id in enumerate(job.exam_ids, start=1):
        if job.stop_requested():
            return ExportReport(
                job.target, tuple(exported), tuple(failures), stopped=True
            )
        try:
            exam = job.library.load(exam_id)
            name = _unique_name(exam_folder_name(exam), exam_id, used_names)
            files = write_exam_files(exam, job.options, job.target / name)
        except EyerError as err:
            logger.warning("Exporting exam %s failed: %s", exam_id, err)
            failures.append(ExportFailure(exam_id, err))
        else:
            exported.append(ExportedExam(exam_id, tuple(files)))
        job.report_progress(done)

    logger.info(
        "Exported %d exams to %s, %d failed", len(exported), job.target, len(failures)
    )
    return ExportReport(job.target, tuple(exported), tuple(failures))


def _unique_name(name: str, exam_id: str, used: set[str]) -> str:
    """Add the start of the exam id when two exams of an export share a name."""
    if name in used:
        name = f"{name}_{exam_id[:8]}"
    used.add(name)
    return name


def _export_file_set(job: _ExportJob) -> ExportReport:
    """Convert every exam, then write the DICOMDIR and its files into the target.

    The file-set is first written into a hidden folder inside the target and
    then moved into place, the DICOMDIR last, so a failure never leaves a
    DICOMDIR that lists missing files.
    """
    _check_file_set_target(job.target)
    file_set = FileSet()
    try:
        return _fill_file_set(file_set, job)
    finally:
        discard_file_set_stage(file_set)


def _fill_file_set(file_set: FileSet, job: _ExportJob) -> ExportReport:
    file_set.ID = FILE_SET_ID
    added: dict[str, list[str]] = {}
    failures: list[ExportFailure] = []

    with tempfile.TemporaryDirectory(prefix="eyer-export-") as converted_root:
        for done, exam_id in enumerate(job.exam_ids, start=1):
            if job.stop_requested():
                return ExportReport(job.target, (), tuple(failures), stopped=True)
            try:
                exam = job.library.load(exam_id)
                folder = Path(converted_root) / exam_id
                files = write_exam_files(exam, job.options, folder)
                added[exam_id] = [
                    str(_add_instance(file_set, path, number).SOPInstanceUID)
                    for number, path in enumerate(files, start=1)
                ]
            except EyerError as err:
                logger.warning("Exporting exam %s failed: %s", exam_id, err)
                failures.append(ExportFailure(exam_id, err))
            job.report_progress(done)

        if not added:
            return ExportReport(job.target, (), tuple(failures))
        final_paths = _write_file_set(file_set, job.target)

    exported = tuple(
        ExportedExam(exam_id, tuple(final_paths[uid] for uid in uids))
        for exam_id, uids in added.items()
    )
    logger.info(
        "Exported %d exams with a DICOMDIR to %s, %d failed",
        len(exported),
        job.target,
        len(failures),
    )
    dicomdir = job.target / DICOMDIR_NAME
    return ExportReport(job.target, exported, tuple(failures), dicomdir)


def _add_instance(file_set: FileSet, path: Path, number: int) -> FileInstance:
    """Stage one file in the file-set, with a STEREOMETRIC record for an SMR.

    ``number`` is the file's position among the exam's files. It becomes the
    Instance Number of a STEREOMETRIC record, whose keys include the Content
    Identification Macro (checked by dciodvfy) that pydicom 3.0 leaves empty.
    """
    dataset = dcmread(path)
    if dataset.SOPClassUID != StereometricRelationshipStorage:
        return file_set.add(dataset)

    leaf = Dataset()
    leaf.InstanceNumber = number
    leaf.ContentLabel = "STEREO"
    leaf.ContentDescription = "Stereo pairs of one eye"
    leaf.ReferencedSOPClassUIDInFile = dataset.SOPClassUID
    leaf.ReferencedSOPInstanceUIDInFile = dataset.SOPInstanceUID
    leaf.ReferencedTransferSyntaxUIDInFile = dataset.file_meta.TransferSyntaxUID
    records = [
        DIRECTORY_RECORDERS[kind](dataset) for kind in ("PATIENT", "STUDY", "SERIES")
    ]
    node: RecordNode | None = None
    for kind, record in zip(
        ("PATIENT", "STUDY", "SERIES", "STEREOMETRIC"), [*records, leaf], strict=True
    ):
        record.DirectoryRecordType = kind
        if "SpecificCharacterSet" in dataset:
            record.SpecificCharacterSet = dataset.SpecificCharacterSet
        child = RecordNode(record)
        if node is not None:
            child.parent = node
        node = child
    assert node is not None
    return file_set.add_custom(dataset, node)


def discard_file_set_stage(file_set: FileSet) -> None:
    """Delete the copies of the instances that a pydicom FileSet keeps.

    pydicom 3.0 stages every added instance in a temporary folder that only
    garbage collection removes, with a ResourceWarning. The copies contain
    patient data, so they are removed as soon as the file-set is written.
    """
    stage = getattr(file_set, "_stage", {}).get("t")
    if isinstance(stage, tempfile.TemporaryDirectory):
        stage.cleanup()


def _check_file_set_target(target: Path) -> None:
    """Reject a target that already contains a file-set, which would be mixed up."""
    if (target / DICOMDIR_NAME).exists():
        raise ValidationError(
            "Export folder",
            str(target),
            "already contains a DICOMDIR",
            "Choose an empty folder, or create a new folder on the drive",
        )
    try:
        clashes = [
            entry.name
            for entry in os.scandir(target)
            if _FILE_SET_FOLDER.fullmatch(entry.name)
        ]
    except FileNotFoundError:
        return
    except OSError as err:
        raise ValidationError(
            "Export folder",
            str(target),
            f"cannot be read ({err.strerror or err})",
            "Check that the drive is connected and writable",
        ) from err
    if clashes:
        raise ValidationError(
            "Export folder",
            str(target),
            f"already contains the DICOM folder {clashes[0]}",
            "Choose an empty folder, or create a new folder on the drive",
        )


def _write_file_set(file_set: FileSet, target: Path) -> dict[str, Path]:
    """Write the file-set into ``target`` and return each instance's final path."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=target))
    except OSError as err:
        raise ConversionError(
            f"Creating the export folder {target} failed: {err.strerror or err}. "
            "Check that the drive is connected and writable."
        ) from err

    try:
        file_set.write(staging)
        paths = {
            str(instance.SOPInstanceUID): target
            / Path(instance.path).relative_to(staging)
            for instance in file_set
        }
        entries = sorted(staging.iterdir(), key=lambda path: path.name == DICOMDIR_NAME)
        for entry in entries:
            os.rename(entry, target / entry.name)
    except (OSError, ValueError) as err:
        raise ConversionError(
            f"Writing the DICOMDIR file-set to {target} failed: {err}. "
            "Check the free space on the drive, then export again into an "
            "empty folder."
        ) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


# Files for dragging out of the application


def prepare_drag_files(
    exam: Exam,
    options: ConversionOptions | None,
    cache_root: Path,
    *,
    image_ids: Sequence[str] | None = None,
) -> list[Path]:
    """Convert an exam, or some of its images, into the drag cache.

    Returns the exam's export folder when ``image_ids`` is None, otherwise the
    files of those images. The files of a complete earlier conversion with the
    same manifest, images and options are reused. A conversion is written into
    a hidden folder and renamed into place when complete, so a returned path
    always contains every file. The entry folder's name starts with the exam
    id (see :mod:`eyer_desktop.core.caches`).

    Raises:
        ConversionError: The exam cannot be converted, the cache cannot be
            written, or the exam was deleted during the conversion.
    """
    entry = cache_root / _drag_key(exam, options, image_ids)
    folder = entry / exam_folder_name(exam)
    if not folder.is_dir():
        _convert_into_cache(exam, options, entry, folder.name, image_ids)
    else:
        os.utime(entry)
    if image_ids is None:
        return [folder]
    return sorted(folder.glob("*.dcm"))


def _drag_key(
    exam: Exam, options: ConversionOptions | None, image_ids: Sequence[str] | None
) -> str:
    """Return the entry's folder name, which changes with the manifest and options."""
    manifest = exam.folder / MANIFEST_NAME if exam.folder is not None else None
    try:
        modified = manifest.stat().st_mtime_ns if manifest is not None else 0
    except OSError:
        modified = 0
    selection = ",".join(sorted(image_ids)) if image_ids is not None else "all"
    text = f"{exam.exam_id}|{modified}|{selection}|{options!r}"
    return drag_entry_name(exam.exam_id, hashlib.sha256(text.encode()).hexdigest())


def _convert_into_cache(
    exam: Exam,
    options: ConversionOptions | None,
    entry: Path,
    name: str,
    image_ids: Sequence[str] | None,
) -> None:
    try:
        staging = make_drag_staging_folder(entry.parent, exam.exam_id)
    except OSError as err:
        raise ConversionError(
            f"Creating a folder in the cache {entry.parent} failed: "
            f"{err.strerror or err}. Check the free disk space."
        ) from err

    try:
        write_exam_files(exam, options, staging / name, image_ids=image_ids)
        os.rename(staging, entry)
    except OSError as err:
        # Another drag of the same selection may have finished first.
        if not (entry / name).is_dir():
            raise ConversionError(
                f"Writing the DICOM files of exam {exam.exam_id} to the cache "
                f"{entry.parent} failed: {err.strerror or err}. Check the free "
                "disk space."
            ) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _discard_if_exam_deleted(exam, entry)


def _discard_if_exam_deleted(exam: Exam, entry: Path) -> None:
    """Remove a conversion whose exam was deleted while it was written.

    Deleting an exam removes its folder before its cache entries, so an entry
    renamed into place after that removal is found here.
    """
    if exam.folder is None or (exam.folder / MANIFEST_NAME).is_file():
        return
    shutil.rmtree(entry, ignore_errors=True)
    raise ConversionError(
        f"Exam {exam.exam_id} was deleted while its DICOM files were prepared "
        "for dragging."
    )
