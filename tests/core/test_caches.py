"""The cache folder's layout by exam, and removal by exam and by age."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from eyer_desktop.core.caches import (
    DiskThumbnailCache,
    check_exam_id,
    drag_entry_exam_id,
    drag_entry_name,
    make_drag_staging_folder,
    remove_exam_drag_files,
    remove_stale_drag_files,
)
from tests.helpers.read_only import read_only_folder

EXAM = "3f2b8c1e-5d4a-4c7b-9e1f-0a2b3c4d5e6f"
OTHER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
DIGEST = "0123456789abcdef" * 4
OLD_DRAG_ENTRY = "00112233445566778899aabb"
DAY = dt.timedelta(days=1)


def make_old(path: Path, days: float = 2) -> None:
    """Set a file's or folder's modification time ``days`` back."""
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def drag_entry(root: Path, name: str) -> Path:
    entry = root / name
    (entry / "20250314092653_7").mkdir(parents=True)
    (entry / "20250314092653_7" / "IM1.dcm").write_bytes(b"DICM")
    return entry


@pytest.fixture
def image(tmp_path: Path) -> Path:
    source = tmp_path / "exams" / EXAM / "images" / "r1.jpg"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"not decoded here")
    return source


@pytest.fixture
def disk(tmp_path: Path) -> DiskThumbnailCache:
    return DiskThumbnailCache(tmp_path / "cache" / "thumbnails")


# Exam ids as folder names


@pytest.mark.parametrize("exam_id", ["", ".", "..", ".hidden", "a/b", "../x"])
def test_check_exam_id_rejects(exam_id: str) -> None:
    with pytest.raises(ValueError, match="exam_id must be a folder name"):
        check_exam_id(exam_id)


def test_check_exam_id_accepts_uuid() -> None:
    assert check_exam_id(EXAM) == EXAM


# Drag cache


def test_drag_entry_name_round_trip() -> None:
    name = drag_entry_name(EXAM, DIGEST)

    assert name == f"{EXAM}_{DIGEST[:24]}"
    assert drag_entry_exam_id(name) == EXAM


def test_drag_entry_name_rejects_short_digest() -> None:
    with pytest.raises(ValueError, match="24 or more hex digits"):
        drag_entry_name(EXAM, "abc")


def test_drag_staging_folder_names_exam(tmp_path: Path) -> None:
    staging = make_drag_staging_folder(tmp_path / "drag", EXAM)

    assert staging.is_dir()
    assert staging.name.startswith(f".partial-{EXAM}_")
    assert drag_entry_exam_id(staging.name) == EXAM


@pytest.mark.parametrize(
    "name", [OLD_DRAG_ENTRY, ".partial-abc_x1y2", "notes.txt", f"{EXAM}_xyz"]
)
def test_drag_entry_without_exam(name: str) -> None:
    assert drag_entry_exam_id(name) is None


def test_remove_exam_drag_files(tmp_path: Path) -> None:
    root = tmp_path / "drag"
    own = drag_entry(root, drag_entry_name(EXAM, DIGEST))
    own_selection = drag_entry(root, drag_entry_name(EXAM, "f" * 24))
    staging = make_drag_staging_folder(root, EXAM)
    other = drag_entry(root, drag_entry_name(OTHER, DIGEST))
    old_layout = drag_entry(root, OLD_DRAG_ENTRY)

    purge = remove_exam_drag_files(root, EXAM)

    assert sorted(purge.removed) == sorted([own, own_selection, staging])
    assert purge.failures == ()
    assert sorted(root.iterdir()) == sorted([other, old_layout])


def test_remove_exam_drag_files_missing_cache(tmp_path: Path) -> None:
    purge = remove_exam_drag_files(tmp_path / "none", EXAM)

    assert purge.removed == ()
    assert purge.failures == ()


def test_remove_exam_drag_files_reports_failure(tmp_path: Path) -> None:
    root = tmp_path / "drag"
    entry = drag_entry(root, drag_entry_name(EXAM, DIGEST))
    locked = entry / "20250314092653_7"

    with read_only_folder(locked):
        purge = remove_exam_drag_files(root, EXAM)

    assert purge.removed == ()
    assert purge.failures[0].path == locked / "IM1.dcm"
    assert purge.failures[0].reason
    assert str(locked / "IM1.dcm") in str(purge.failures[0])
    assert all(entry in [f.path, *f.path.parents] for f in purge.failures)


def test_remove_stale_drag_files_every_layout(tmp_path: Path) -> None:
    root = tmp_path / "drag"
    old_layout = drag_entry(root, OLD_DRAG_ENTRY)
    old_entry = drag_entry(root, drag_entry_name(EXAM, DIGEST))
    old_staging = make_drag_staging_folder(root, EXAM)
    fresh = drag_entry(root, drag_entry_name(OTHER, DIGEST))
    for folder in (old_layout, old_entry, old_staging):
        make_old(folder)

    removed = remove_stale_drag_files(root, DAY)

    assert removed == 3
    assert list(root.iterdir()) == [fresh]


def test_remove_stale_missing_cache(tmp_path: Path) -> None:
    assert remove_stale_drag_files(tmp_path / "none", DAY) == 0


# Thumbnail cache


def test_thumbnail_path_in_exam_folder(disk: DiskThumbnailCache, image: Path) -> None:
    path = disk.path_for(image, 64, EXAM)

    assert path.parent == disk.folder / "exams" / EXAM
    assert path.parent == disk.exam_folder(EXAM)
    assert path.suffix == ".jpg"


def test_thumbnail_path_of_other_file(disk: DiskThumbnailCache, image: Path) -> None:
    path = disk.path_for(image, 64)

    assert path.parent.parent == disk.folder / "files"
    assert path.name.startswith(path.parent.name)


def test_thumbnail_path_changes_with_size(
    disk: DiskThumbnailCache, image: Path
) -> None:
    assert disk.path_for(image, 64, EXAM) != disk.path_for(image, 128, EXAM)


def test_thumbnail_write_replaces(disk: DiskThumbnailCache, image: Path) -> None:
    path = disk.path_for(image, 64, EXAM)

    disk.write(path, b"first")
    disk.write(path, b"second")

    assert path.read_bytes() == b"second"
    assert list(path.parent.iterdir()) == [path]


def test_mark_used_refreshes_time(disk: DiskThumbnailCache, image: Path) -> None:
    path = disk.path_for(image, 64, EXAM)
    disk.write(path, b"jpeg")
    make_old(path, days=40)

    disk.mark_used(path)

    assert path.stat().st_mtime > time.time() - 60


def test_discard_removes_empty_folder(disk: DiskThumbnailCache, image: Path) -> None:
    path = disk.path_for(image, 64, EXAM)
    disk.write(path, b"jpeg")

    disk.discard(path)

    assert not path.exists()
    assert not disk.exam_folder(EXAM).exists()


def test_remove_exam_thumbnails(disk: DiskThumbnailCache, image: Path) -> None:
    own = [disk.path_for(image, size, EXAM) for size in (64, 192)]
    other = disk.path_for(image, 64, OTHER)
    shared = disk.path_for(image, 64)
    for path in [*own, other, shared]:
        disk.write(path, b"jpeg")

    purge = disk.remove_exam(EXAM)

    assert purge.removed == (disk.exam_folder(EXAM),)
    assert purge.failures == ()
    assert not disk.exam_folder(EXAM).exists()
    assert other.is_file()
    assert shared.is_file()


def test_remove_exam_without_thumbnails(disk: DiskThumbnailCache) -> None:
    purge = disk.remove_exam(EXAM)

    assert purge.removed == ()
    assert purge.failures == ()


def test_remove_stale_thumbnails_every_layout(
    disk: DiskThumbnailCache, image: Path
) -> None:
    old_layout = disk.folder / "ab" / ("ab" + "0" * 62 + ".jpg")
    old_exam = disk.path_for(image, 64, EXAM)
    old_file = disk.path_for(image, 64)
    leftover = disk.exam_folder(OTHER) / "tmp1234.part"
    fresh = disk.path_for(image, 64, OTHER)
    for path in (old_layout, old_exam, old_file, leftover, fresh):
        disk.write(path, b"jpeg")
    for path in (old_layout, old_exam, old_file, leftover):
        make_old(path, days=40)

    removed = disk.remove_stale(dt.timedelta(days=30))

    assert removed == 4
    assert fresh.is_file()
    assert not old_layout.parent.exists()
    assert not disk.exam_folder(EXAM).exists()
    assert not old_file.parent.exists()
    assert sorted(disk.folder.rglob("*")) == sorted(
        [disk.folder / "exams", fresh.parent, fresh]
    )


def test_remove_stale_keeps_new_empty_folder(disk: DiskThumbnailCache) -> None:
    folder = disk.exam_folder(EXAM)
    folder.mkdir(parents=True)

    assert disk.remove_stale(dt.timedelta(days=30)) == 0
    assert folder.is_dir()


def test_remove_stale_missing_thumbnails(tmp_path: Path) -> None:
    disk = DiskThumbnailCache(tmp_path / "none")

    assert disk.remove_stale(dt.timedelta(days=30)) == 0
