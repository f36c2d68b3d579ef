"""The exam library: a folder with one subfolder per exam, named by the exam id.

Folder names carry no patient data. Exams are written into a temporary folder
inside the library (its name starts with a dot, so listings skip it) and then
renamed into place, so an exam folder either is complete or does not exist.
Deleting renames the folder away first for the same reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eyer_desktop.core.errors import ExamError, ValidationError
from eyer_desktop.core.exams import Exam, ExamImage, ExamType, PatientName
from eyer_desktop.core.manifest import (
    ExamValidationError,
    exam_from_json,
    exam_to_json,
    fsync_folder,
    load_exam,
    save_exam,
)
from eyer_desktop.core.paths import AppPaths

logger = logging.getLogger(__name__)

# Shortest exam id prefix that lookups accept, as in git.
MIN_PREFIX_LENGTH = 4

_TEMP_PREFIX = ".new-"
_DELETED_PREFIX = ".deleted-"
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ExamSummary:
    """The values an exam list shows of one exam, read from its manifest alone.

    Attributes:
        document_type: Type of the patient's clinic document, such as CPF.
        document_number: Number of the patient's clinic document.
        images: The exam's images in manifest order, for thumbnails.
    """

    exam_id: str
    folder: Path
    patient_name: str
    captured_at: dt.datetime
    exam_type: ExamType
    image_count: int
    sequence_number: int
    document_type: str = ""
    document_number: str = ""
    images: tuple[ExamImage, ...] = ()


@dataclass(frozen=True)
class BrokenExam:
    """An exam folder whose manifest is missing, unreadable or invalid."""

    folder: Path
    error: ExamError

    @property
    def problems(self) -> tuple[ValidationError, ...]:
        """Each invalid field with its value and fix, when the error lists them."""
        if isinstance(self.error, ExamValidationError):
            return self.error.problems
        return ()


@dataclass(frozen=True)
class LibraryListing:
    """The valid exams of a library, and the folders that could not be read."""

    exams: list[ExamSummary]
    broken: list[BrokenExam]


def patient_display_name(name: PatientName) -> str:
    """Return the name in reading order: given, middle, then family name."""
    return " ".join(part for part in (name.given, name.middle, name.family) if part)


def summarize(exam: Exam, folder: Path) -> ExamSummary:
    """Return the list entry of a loaded exam."""
    return ExamSummary(
        exam_id=exam.exam_id,
        folder=folder,
        patient_name=patient_display_name(exam.patient.name),
        captured_at=exam.captured_at,
        exam_type=exam.exam_type,
        image_count=len(exam.images),
        sequence_number=exam.sequence_number,
        document_type=exam.patient.document.type,
        document_number=exam.patient.document.number,
        images=tuple(exam.images),
    )


class ExamLibrary:
    """The exams stored under one folder.

    Attributes:
        root: The library folder. It is created on the first write.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = AppPaths.resolve().library_dir if root is None else root

    # Reading

    def exam_ids(self) -> list[str]:
        """Return the names of the exam folders, without reading them."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise ExamError(
                f"Reading the exam library {self.root} failed: {err}. "
                "Check that the folder exists and can be read."
            ) from err
        return sorted(
            entry.name
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(".")
        )

    def list_exams(self, *, newest_first: bool = True) -> LibraryListing:
        """Read every manifest and return the valid exams sorted by capture time.

        A broken exam folder is reported in ``broken`` with all its problems and
        never hides the others. No image is decoded.
        """
        exams: list[ExamSummary] = []
        broken: list[BrokenExam] = []
        for name in self.exam_ids():
            folder = self.root / name
            try:
                exams.append(summarize(self._load_folder(folder), folder))
            except ExamError as err:
                broken.append(BrokenExam(folder, err))

        exams.sort(key=lambda item: (item.captured_at, item.exam_id))
        if newest_first:
            exams.reverse()
        if broken:
            logger.warning(
                "Exam library %s: %d exam folders are invalid", self.root, len(broken)
            )
        return LibraryListing(exams, broken)

    def resolve_id(self, id_or_prefix: str) -> str:
        """Return the exam id that is ``id_or_prefix`` or the only one starting so.

        Raises:
            ExamError: No exam matches, several do, or the prefix is too short.
        """
        prefix = id_or_prefix.strip().lower()
        names = self.exam_ids()
        if prefix in names:
            return prefix
        if len(prefix) < MIN_PREFIX_LENGTH:
            raise ExamError(
                f"Exam id prefix {id_or_prefix!r} is too short. "
                f"Give at least {MIN_PREFIX_LENGTH} characters of the exam id."
            )

        matches = [name for name in names if name.startswith(prefix)]
        if not matches:
            raise ExamError(
                f"No exam id starts with {id_or_prefix!r} in {self.root}. "
                "List the exams to see their ids."
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise ExamError(
                f"Exam id prefix {id_or_prefix!r} matches {len(matches)} exams "
                f"({shown}). Give more characters of the exam id."
            )
        return matches[0]

    def folder_of(self, id_or_prefix: str) -> Path:
        """Return the folder of the exam with this id or unambiguous id prefix."""
        return self.root / self.resolve_id(id_or_prefix)

    def load(self, id_or_prefix: str) -> Exam:
        """Read and validate the exam with this id or unambiguous id prefix.

        Raises:
            ExamError: No single exam matches, or its manifest is invalid.
        """
        return self._load_folder(self.folder_of(id_or_prefix))

    def next_sequence_number(self) -> int:
        """Return one more than the highest sequential number of a valid exam."""
        numbers = [summary.sequence_number for summary in self.list_exams().exams]
        return max(numbers, default=0) + 1

    def _load_folder(self, folder: Path) -> Exam:
        exam = load_exam(folder)
        if exam.exam_id != folder.name:
            problem = ValidationError(
                "exam_id",
                exam.exam_id,
                "differs from the name of the exam's folder",
                "Rename the folder to the exam id, or add the folder to the "
                "library again",
            )
            raise ExamValidationError(f"exam {folder}", [problem])
        return exam

    # Writing

    def create_exam(self, exam: Exam, sources: Mapping[str, Path | bytes]) -> Exam:
        """Write a new exam folder with its image files and manifest.

        ``sources`` gives, for each image id of the exam, the file to copy or the
        bytes to write to the image's ``file`` path. Source files are copied,
        never moved. The exam folder appears complete or not at all. On success
        ``exam.folder`` is set and the exam is returned.

        Raises:
            ExamValidationError: The exam is invalid.
            ExamError: The exam already exists, a source is missing, or writing
                failed.
        """
        # Validate before writing anything, so that no image file goes to a path
        # outside the exam folder. Saving the manifest checks the files again.
        exam_from_json(exam_to_json(exam), source=f"exam {exam.exam_id}")
        self._check_sources(exam, sources)
        final = self.root / exam.exam_id
        if final.exists():
            raise ExamError(
                f"Exam {exam.exam_id} is already in the library {self.root}. "
                "Delete it first to replace it."
            )

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temp = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=self.root))
        except OSError as err:
            raise ExamError(
                f"Creating a folder in the exam library {self.root} failed: "
                f"{err.strerror or err}. "
                "Check free disk space and the folder's permissions."
            ) from err

        previous_folder = exam.folder
        try:
            self._fill_folder(temp, exam, sources)
            os.rename(temp, final)
            fsync_folder(self.root)
        except BaseException as err:
            exam.folder = previous_folder
            shutil.rmtree(temp, ignore_errors=True)
            if isinstance(err, OSError):
                raise ExamError(
                    f"Writing exam {exam.exam_id} to {self.root} failed: "
                    f"{err.strerror or err}. "
                    "Check free disk space and the folder's permissions."
                ) from err
            raise

        exam.folder = final
        logger.info("Exam %s added with %d images", exam.exam_id, len(exam.images))
        return exam

    def add_folder(self, folder: Path) -> Exam:
        """Copy an exam folder from elsewhere, such as a USB stick, into the library.

        Only the manifest and the images it lists are copied. The source folder
        is left as it was.

        Raises:
            ExamValidationError: The folder's manifest is invalid.
            ExamError: The exam is already in the library, or copying failed.
        """
        exam = load_exam(folder)
        sources: dict[str, Path | bytes] = {
            image.image_id: folder / image.file for image in exam.images
        }
        return self.create_exam(exam, sources)

    def delete(self, id_or_prefix: str) -> str:
        """Delete an exam folder and return the exam id.

        The folder is first renamed to a hidden name, so that a failure while
        removing its files never leaves a half-deleted exam in the listing.

        Raises:
            ExamError: No single exam matches, or the folder cannot be removed.
        """
        exam_id = self.resolve_id(id_or_prefix)
        hidden = self.root / f"{_DELETED_PREFIX}{exam_id}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.root / exam_id, hidden)
        except PermissionError as err:
            raise ExamError(
                f"Deleting exam {exam_id} failed: the library folder {self.root} "
                f"cannot be changed ({err.strerror}). Ask the computer's "
                "administrator for permission to change it, or close programs "
                "that use the exam's files, and try again."
            ) from err
        except OSError as err:
            raise ExamError(
                f"Deleting exam {exam_id} failed: {err.strerror or err}. "
                "Close programs that use its files and try again."
            ) from err
        shutil.rmtree(hidden, ignore_errors=True)
        if hidden.exists():
            logger.warning(
                "Exam %s deleted, but some files remain in %s", exam_id, hidden
            )
        else:
            logger.info("Exam %s deleted", exam_id)
        return exam_id

    def remove_stale_temp_folders(self, older_than: dt.timedelta) -> int:
        """Remove leftovers of interrupted writes and deletes; return how many.

        Only hidden folders older than ``older_than`` are removed, so that an
        exam another process is writing right now stays untouched.
        """
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0
        limit = time.time() - older_than.total_seconds()
        removed = 0
        for entry in entries:
            is_leftover = entry.name.startswith((_TEMP_PREFIX, _DELETED_PREFIX))
            if is_leftover and entry.is_dir() and entry.stat().st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        if removed:
            logger.info("Removed %d unfinished folders from %s", removed, self.root)
        return removed

    @staticmethod
    def _check_sources(exam: Exam, sources: Mapping[str, Path | bytes]) -> None:
        image_ids = {image.image_id for image in exam.images}
        missing = [image_id for image_id in image_ids if image_id not in sources]
        unknown = [image_id for image_id in sources if image_id not in image_ids]
        if missing or unknown:
            raise ExamError(
                f"Exam {exam.exam_id}: the image sources do not match its images "
                f"(missing for {sorted(missing)}, unknown {sorted(unknown)}). "
                "Give one source for each image id."
            )

    @staticmethod
    def _fill_folder(
        folder: Path, exam: Exam, sources: Mapping[str, Path | bytes]
    ) -> None:
        for image in exam.images:
            target = folder / image.file
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_image(sources[image.image_id], target)

        save_exam(exam, folder)
        for subfolder in {(folder / image.file).parent for image in exam.images}:
            fsync_folder(subfolder)
        fsync_folder(folder)


def _write_image(source: Path | bytes, target: Path) -> None:
    """Write one image file and flush it to disk.

    Raises:
        ExamError: The source file cannot be read.
        OSError: The target cannot be written (full disk, permissions).
    """
    with open(target, "xb") as output:
        if isinstance(source, bytes):
            output.write(source)
        else:
            # Only errors of the source are read errors. Those of the target
            # go to the caller, whose message points at the library's disk.
            try:
                original = open(source, "rb")  # noqa: SIM115 (closed below)
            except OSError as err:
                raise _read_error(source, err) from err
            with original:
                while True:
                    try:
                        chunk = original.read(_COPY_CHUNK)
                    except OSError as err:
                        raise _read_error(source, err) from err
                    if not chunk:
                        break
                    output.write(chunk)
        output.flush()
        os.fsync(output.fileno())


def _read_error(source: Path, err: OSError) -> ExamError:
    return ExamError(
        f"Reading the image {source} failed: {err.strerror or err}. "
        "Check that the file exists and can be read."
    )
