"""Deleting an exam through core.removal: its deliveries and its cached copies."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core import removal
from eyer_desktop.core.caches import (
    DRAG_CACHE_AGE,
    DRAG_CACHE_FOLDER,
    THUMBNAIL_CACHE_AGE,
    THUMBNAIL_CACHE_FOLDER,
    DiskThumbnailCache,
    drag_entry_exam_id,
    remove_stale_drag_files,
)
from eyer_desktop.core.dicom import ConversionOptions
from eyer_desktop.core.errors import ExamError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.export import prepare_drag_files
from eyer_desktop.core.outbox import DeliveryState, Route, items_of_exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.workspace import Workspace
from tests.helpers.read_only import read_only_folder

ARCHIVE = "PAC001"
OPTIONS = ConversionOptions(dicom_prefix="eyer_")
OLD_DRAG_ENTRY = "00112233445566778899aabb"
OLD_THUMBNAIL = "ab/ab" + "0" * 62 + ".jpg"


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    """The workspace of the test's own profile."""
    opened = Workspace.open()
    yield opened
    opened.close()


@pytest.fixture
def samples(workspace: Workspace) -> list[Exam]:
    return write_sample_exams(workspace.library, size=64)


@pytest.fixture
def exam(workspace: Workspace, samples: list[Exam]) -> Exam:
    """A sample exam with two deliveries queued for the archive."""
    exam = samples[0]
    workspace.outbox.enqueue(items_of_exam(exam), {ARCHIVE: Route.MIRROR})
    return exam


def states(workspace: Workspace, exam: Exam) -> list[DeliveryState]:
    return [d.state for d in workspace.outbox.deliveries(exam_id=exam.exam_id)]


def delete(workspace: Workspace, exam_id: str, force: bool) -> removal.ExamDeletion:
    return removal.delete_exam(
        workspace.library,
        workspace.outbox,
        exam_id,
        cache_dir=workspace.paths.cache_dir,
        force=force,
    )


def test_forced_delete_cancels_deliveries(workspace: Workspace, exam: Exam) -> None:
    deletion = delete(workspace, exam.exam_id, force=True)

    assert deletion.exam_id == exam.exam_id
    assert deletion.cancelled == 2
    assert deletion.cache_failures == ()
    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    assert exam.exam_id not in workspace.library.exam_ids()


def test_delete_by_prefix_cancels_deliveries(workspace: Workspace, exam: Exam) -> None:
    deletion = delete(workspace, exam.exam_id[:8], force=True)

    assert deletion.exam_id == exam.exam_id
    assert deletion.cancelled == 2
    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2


def test_unforced_delete_rejected(workspace: Workspace, exam: Exam) -> None:
    with pytest.raises(removal.UnfinishedDeliveriesError) as caught:
        delete(workspace, exam.exam_id, force=False)

    assert len(caught.value.deliveries) == 2
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2
    assert exam.exam_id in workspace.library.exam_ids()


def test_failed_delete_cancels_nothing(workspace: Workspace, exam: Exam) -> None:
    with (
        read_only_folder(workspace.library.root),
        pytest.raises(ExamError) as caught,
    ):
        delete(workspace, exam.exam_id, force=True)

    assert f"Deleting exam {exam.exam_id} failed" in str(caught.value)
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2
    assert exam.exam_id in workspace.library.exam_ids()


# Cached copies


def drag_root(workspace: Workspace) -> Path:
    return workspace.paths.cache_dir / DRAG_CACHE_FOLDER


def thumbnail_cache(workspace: Workspace) -> DiskThumbnailCache:
    return DiskThumbnailCache(workspace.paths.cache_dir / THUMBNAIL_CACHE_FOLDER)


def fill_caches(workspace: Workspace, exam: Exam) -> list[Path]:
    """Convert an exam for dragging and cache two thumbnails of each image.

    The thumbnails contain placeholder bytes, because only their place matters.
    """
    whole = prepare_drag_files(exam, OPTIONS, drag_root(workspace))
    chosen = [exam.images[0].image_id]
    some = prepare_drag_files(exam, OPTIONS, drag_root(workspace), image_ids=chosen)
    disk = thumbnail_cache(workspace)
    thumbnails = [
        disk.path_for(exam.image_path(image), size, exam.exam_id)
        for image in exam.images
        for size in (64, 192)
    ]
    for path in thumbnails:
        disk.write(path, b"placeholder JPEG")
    return [*whole, *some, *thumbnails]


def write_old_layout(workspace: Workspace) -> tuple[Path, Path]:
    """Write a drag entry and a thumbnail in the layout that names no exam."""
    entry = drag_root(workspace) / OLD_DRAG_ENTRY
    (entry / "20250314092653_7").mkdir(parents=True)
    (entry / "20250314092653_7" / "IM1.dcm").write_bytes(b"DICM")
    thumbnail = thumbnail_cache(workspace).folder / OLD_THUMBNAIL
    thumbnail.parent.mkdir(parents=True)
    thumbnail.write_bytes(b"placeholder JPEG")
    return entry, thumbnail


def cached_exam_ids(workspace: Workspace) -> set[str | None]:
    drag = {drag_entry_exam_id(path.name) for path in drag_root(workspace).iterdir()}
    exams = thumbnail_cache(workspace).folder / "exams"
    return drag | {path.name for path in exams.iterdir()}


def test_delete_removes_cached_copies(
    workspace: Workspace, samples: list[Exam]
) -> None:
    deleted, kept = samples[:2]
    deleted_files = fill_caches(workspace, deleted)
    kept_files = fill_caches(workspace, kept)
    old_entry, old_thumbnail = write_old_layout(workspace)

    deletion = delete(workspace, deleted.exam_id, force=False)

    assert deletion.cache_failures == ()
    assert [path for path in deleted_files if path.exists()] == []
    assert [path for path in kept_files if not path.exists()] == []
    assert cached_exam_ids(workspace) == {kept.exam_id, None}
    assert old_entry.is_dir()
    assert old_thumbnail.is_file()


def test_old_layout_aged_out_after_delete(
    workspace: Workspace, samples: list[Exam]
) -> None:
    kept = samples[1]
    kept_files = fill_caches(workspace, kept)
    old_entry, old_thumbnail = write_old_layout(workspace)
    delete(workspace, samples[0].exam_id, force=False)
    long_ago = time.time() - 2 * THUMBNAIL_CACHE_AGE.total_seconds()
    for path in (old_entry, old_thumbnail):
        os.utime(path, (long_ago, long_ago))

    drag_removed = remove_stale_drag_files(drag_root(workspace), DRAG_CACHE_AGE)
    thumbnails_removed = thumbnail_cache(workspace).remove_stale(THUMBNAIL_CACHE_AGE)

    assert drag_removed == 1
    assert thumbnails_removed == 1
    assert not old_entry.exists()
    assert not old_thumbnail.parent.exists()
    assert [path for path in kept_files if not path.exists()] == []


def test_delete_reports_cache_failure(
    workspace: Workspace, samples: list[Exam], caplog: pytest.LogCaptureFixture
) -> None:
    exam = samples[0]
    fill_caches(workspace, exam)
    locked = thumbnail_cache(workspace).exam_folder(exam.exam_id)

    with read_only_folder(locked):
        deletion = delete(workspace, exam.exam_id, force=False)

    assert exam.exam_id not in workspace.library.exam_ids()
    assert deletion.cache_failures
    assert all(
        locked in [failure.path, *failure.path.parents]
        for failure in deletion.cache_failures
    )
    assert [drag_entry_exam_id(p.name) for p in drag_root(workspace).iterdir()] == []
    assert f"Removing a cached copy of deleted exam {exam.exam_id} failed" in (
        caplog.text
    )
    removal.purge_exam_caches(workspace.paths.cache_dir, exam.exam_id)
    assert not locked.exists()


def test_delete_without_cache_dir_keeps_caches(
    workspace: Workspace, samples: list[Exam]
) -> None:
    exam = samples[0]
    files = fill_caches(workspace, exam)

    removal.delete_exam(
        workspace.library, workspace.outbox, exam.exam_id, cache_dir=None
    )

    assert [path for path in files if not path.exists()] == []


def test_purge_after_delete_is_harmless(
    workspace: Workspace, samples: list[Exam]
) -> None:
    exam = samples[0]
    delete(workspace, exam.exam_id, force=False)

    purge = removal.purge_exam_caches(workspace.paths.cache_dir, exam.exam_id)

    assert purge.removed == ()
    assert purge.failures == ()
