"""Copies of exam data kept under the profile's cache folder, and their removal.

Two caches contain patient data. Both are laid out so that the entries of an
exam can be found from its exam id alone, after the exam itself is deleted:

- ``drag/`` contains the DICOM files converted for dragging exams out of the
  window, one entry folder per conversion named ``<exam id>_<24 hex digits>``.
  A conversion writes into ``.partial-<exam id>_<12 hex digits>`` first and
  renames that folder to its entry when it is complete.
- ``thumbnails/`` contains JPEG thumbnails: those of a library exam's images in
  ``exams/<exam id>/``, those of other images, such as files about to be
  imported, in ``files/<2 hex digits>/``.

Entries of the earlier layout, ``drag/<24 hex digits>/`` and
``thumbnails/<2 hex digits>/``, name no exam. Like every entry, they are removed
once unused for the cache's maximum age (:func:`remove_stale_drag_files` and
:meth:`DiskThumbnailCache.remove_stale`).

This module imports only the standard library, so that the command line's
``exams delete`` loads no image or DICOM code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DRAG_CACHE_FOLDER = "drag"
THUMBNAIL_CACHE_FOLDER = "thumbnails"

# Drag conversions stay in the cache this long after their last use, so a
# file manager that copies late still finds them.
DRAG_CACHE_AGE = dt.timedelta(days=1)
# Thumbnails stay this long after their last use, so a restart shows the
# exams browsed in the last weeks without decoding their images again.
THUMBNAIL_CACHE_AGE = dt.timedelta(days=30)

_EXAM_THUMBNAILS = "exams"
_FILE_THUMBNAILS = "files"
_DRAG_DIGEST_LENGTH = 24
_DRAG_ENTRY = re.compile(r"(?P<exam_id>.+)_[0-9a-f]{24}")
_DRAG_STAGING_PREFIX = ".partial-"
_DRAG_STAGING = re.compile(r"\.partial-(?P<exam_id>.+)_[0-9a-f]{12}")


@dataclass(frozen=True)
class RemovalFailure:
    """A cache file or folder that could not be removed, and the error."""

    path: Path
    error: OSError

    @property
    def reason(self) -> str:
        """The operating system's description of the error."""
        return self.error.strerror or str(self.error)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class CachePurge:
    """The outcome of removing the cached copies of one exam.

    Attributes:
        removed: The drag entry folders and the thumbnail folder removed.
        failures: The files and folders that could not be removed.
    """

    removed: tuple[Path, ...] = ()
    failures: tuple[RemovalFailure, ...] = ()

    def __add__(self, other: CachePurge) -> CachePurge:
        return CachePurge(self.removed + other.removed, self.failures + other.failures)


def check_exam_id(exam_id: str) -> str:
    """Check that ``exam_id`` can name a cache folder, and return it.

    An exam id names folders in the library and in the caches, so it must be
    one folder name. Names with a leading dot are hidden working folders.
    """
    if not exam_id or exam_id.startswith(".") or Path(exam_id).name != exam_id:
        raise ValueError(
            f"exam_id must be a folder name without a leading dot, not {exam_id!r}"
        )
    return exam_id


def remove_tree(folder: Path) -> list[RemovalFailure]:
    """Remove a folder with everything in it and return what could not be removed."""
    failures: list[RemovalFailure] = []

    def record(path: str, error: BaseException) -> None:
        # shutil.rmtree passes only OSError here. FileNotFoundError means that
        # the file is already gone, so it is no failure.
        if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
            failures.append(RemovalFailure(Path(path), error))

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=lambda _function, path, error: record(path, error))
    else:
        shutil.rmtree(
            folder, onerror=lambda _function, path, info: record(path, info[1])
        )
    return failures


# Drag conversions


def drag_entry_name(exam_id: str, digest: str) -> str:
    """Return the name of a drag conversion's folder in the drag cache.

    ``digest`` is a hex digest of what the conversion depends on. Its first
    24 digits are used.
    """
    short = digest[:_DRAG_DIGEST_LENGTH]
    if len(short) != _DRAG_DIGEST_LENGTH or not re.fullmatch("[0-9a-f]+", short):
        raise ValueError(f"digest must have 24 or more hex digits, not {digest!r}")
    return f"{check_exam_id(exam_id)}_{short}"


def make_drag_staging_folder(drag_root: Path, exam_id: str) -> Path:
    """Create and return an empty folder in the drag cache for a conversion.

    Raises:
        OSError: The folder cannot be created.
    """
    drag_root.mkdir(parents=True, exist_ok=True)
    name = f"{_DRAG_STAGING_PREFIX}{check_exam_id(exam_id)}_{uuid.uuid4().hex[:12]}"
    folder = drag_root / name
    folder.mkdir()
    return folder


def drag_entry_exam_id(name: str) -> str | None:
    """Return the exam id that a drag cache folder name starts with.

    Returns None for a folder of the earlier layout, which names no exam.
    """
    match = _DRAG_STAGING.fullmatch(name) or _DRAG_ENTRY.fullmatch(name)
    return match["exam_id"] if match is not None else None


def remove_exam_drag_files(drag_root: Path, exam_id: str) -> CachePurge:
    """Remove the drag conversions of an exam, complete or in progress."""
    check_exam_id(exam_id)
    try:
        entries = list(os.scandir(drag_root))
    except FileNotFoundError:
        return CachePurge()
    except OSError as err:
        return CachePurge(failures=(RemovalFailure(drag_root, err),))

    removed: list[Path] = []
    failures: list[RemovalFailure] = []
    for entry in entries:
        if drag_entry_exam_id(entry.name) != exam_id:
            continue
        folder = Path(entry.path)
        errors = remove_tree(folder)
        failures.extend(errors)
        if not errors:
            removed.append(folder)
    return CachePurge(tuple(removed), tuple(failures))


def remove_stale_drag_files(drag_root: Path, older_than: dt.timedelta) -> int:
    """Remove the drag conversions unused for ``older_than`` and return how many.

    Every folder of the drag cache counts, those of the earlier layout and
    those of interrupted conversions included.
    """
    try:
        entries = list(os.scandir(drag_root))
    except FileNotFoundError:
        return 0
    limit = time.time() - older_than.total_seconds()
    removed = 0
    for entry in entries:
        try:
            is_stale = entry.is_dir() and entry.stat().st_mtime < limit
        except FileNotFoundError:
            continue
        if is_stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("Removed %d old drag conversions from %s", removed, drag_root)
    return removed


# Thumbnails


class DiskThumbnailCache:
    """Thumbnails as JPEG files under one folder, safe to use from any thread.

    A thumbnail's file name is a hash of the source image's path, modification
    time and size and of the box size, so a changed image gets a new file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def exam_folder(self, exam_id: str) -> Path:
        """Return the folder of the thumbnails of one exam's images."""
        return self.folder / _EXAM_THUMBNAILS / check_exam_id(exam_id)

    def path_for(self, source: Path, size: int, exam_id: str | None = None) -> Path:
        """Return the cache file of a source image's thumbnail at a box size.

        Pass the exam id of an image of the library, so that the thumbnail is
        removed with the exam. Other images go to a shared folder.

        Raises:
            OSError: The source image cannot be examined.
        """
        info = source.stat()
        text = f"{source.resolve()}|{info.st_mtime_ns}|{info.st_size}|{size}"
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        if exam_id is None:
            return self.folder / _FILE_THUMBNAILS / digest[:2] / f"{digest}.jpg"
        return self.exam_folder(exam_id) / f"{digest}.jpg"

    def write(self, path: Path, data: bytes) -> None:
        """Write a cache file atomically, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def mark_used(self, path: Path) -> None:
        """Set a cache file's modification time to now, so it is kept longer."""
        try:
            os.utime(path)
        except OSError as err:
            logger.debug("Marking thumbnail %s as used failed: %s", path, err)

    def discard(self, path: Path) -> None:
        """Remove a cache file, and its folder when that is left empty."""
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            logger.warning("Removing the thumbnail %s failed: %s", path, err)
            return
        # The folder stays while other thumbnails are in it.
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    def remove_exam(self, exam_id: str) -> CachePurge:
        """Remove the thumbnails of one exam's images."""
        folder = self.exam_folder(exam_id)
        existed = os.path.lexists(folder)
        errors = remove_tree(folder)
        removed = (folder,) if existed and not errors else ()
        return CachePurge(removed, tuple(errors))

    def remove_stale(self, older_than: dt.timedelta) -> int:
        """Remove the thumbnails unused for ``older_than`` and return how many.

        Files of every layout count, and so do leftovers of interrupted
        writes. Folders left empty are removed too.
        """
        limit = time.time() - older_than.total_seconds()
        removed = 0
        # Folders that this cleanup removed something from.
        emptied: set[Path] = set()
        for parent, _folders, files in os.walk(self.folder, topdown=False):
            folder = Path(parent)
            removed_here = sum(_remove_if_older(folder / name, limit) for name in files)
            removed += removed_here
            if removed_here:
                emptied.add(folder)
            if folder == self.folder:
                continue
            if _remove_empty_folder(folder, limit, force=folder in emptied):
                emptied.add(folder.parent)
        if removed:
            logger.info("Removed %d old thumbnails from %s", removed, self.folder)
        return removed


def _remove_if_older(path: Path, limit: float) -> bool:
    """Remove a file last modified before ``limit`` and return whether it was."""
    try:
        if path.stat().st_mtime >= limit:
            return False
        path.unlink()
    except OSError:
        return False
    return True


def _remove_empty_folder(folder: Path, limit: float, *, force: bool) -> bool:
    """Remove a folder that is empty and old, or that this cleanup emptied.

    A new empty folder is kept, because a thumbnail may be about to be
    written there.
    Returns whether the folder was removed.
    """
    try:
        if force or folder.stat().st_mtime < limit:
            folder.rmdir()
            return True
    except OSError:
        pass  # The folder is not empty, or another cleanup removed it.
    return False
