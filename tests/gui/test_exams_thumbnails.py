"""Thumbnails: decoded on the pool, cached in memory and on disk, stale ones dropped."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from eyer_desktop.core.caches import DiskThumbnailCache
from eyer_desktop.gui.exams.preview import decode_preview
from eyer_desktop.gui.exams.thumbnails import (
    ThumbnailCache,
    ThumbnailError,
    ThumbnailLoader,
    decode_thumbnail,
)
from eyer_desktop.gui.workers import Pools
from tests.helpers.deleting_thumbnail_cache import SourceDeletingDiskCache
from tests.helpers.exif_files import NOT_TIFF, jpeg_with_exif
from tests.helpers.gui_exams import WAIT_MS, write_jpeg

SIZE = 32
EXAM = "3f2b8c1e-5d4a-4c7b-9e1f-0a2b3c4d5e6f"
OTHER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


@pytest.fixture
def disk(tmp_path: Path) -> DiskThumbnailCache:
    return DiskThumbnailCache(tmp_path / "cache" / "thumbnails")


@pytest.fixture
def loader(pools: Pools, disk: DiskThumbnailCache) -> ThumbnailLoader:
    return ThumbnailLoader(pools.general, ThumbnailCache(), disk)


def test_decode_fits_box_and_keeps_shape(tmp_path: Path) -> None:
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (400, 200), (200, 60, 20)).save(path, "JPEG")

    image = decode_thumbnail(path, SIZE)

    assert (image.width(), image.height()) == (SIZE, SIZE // 2)
    assert image.format() == QImage.Format.Format_RGB32


def test_decode_follows_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view.
    Image.new("RGB", (400, 200), (0, 90, 200)).save(path, "JPEG", exif=exif)

    image = decode_thumbnail(path, SIZE)

    assert (image.width(), image.height()) == (SIZE // 2, SIZE)


def test_decode_ignores_damaged_exif(tmp_path: Path) -> None:
    path = tmp_path / "damaged_exif.jpg"
    path.write_bytes(jpeg_with_exif(NOT_TIFF))

    thumbnail = decode_thumbnail(path, SIZE)
    preview = decode_preview(path)

    assert (thumbnail.width(), thumbnail.height()) == (SIZE, SIZE // 2)
    assert (preview.width(), preview.height()) == (40, 20)


def test_decode_rejects_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "damaged.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    with pytest.raises(ThumbnailError, match=r"damaged\.jpg"):
        decode_thumbnail(path, SIZE)


def test_thumbnail_arrives_and_is_cached(
    qtbot: QtBot, loader: ThumbnailLoader, disk: DiskThumbnailCache, tmp_path: Path
) -> None:
    path = write_jpeg(tmp_path / "eye.jpg", (180, 40, 20))

    assert loader.request(path, SIZE) is None
    assert loader.is_pending(path, SIZE)
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=WAIT_MS) as ready:
        pass

    assert ready.args == [path, SIZE]
    assert loader.decoded_count == 1
    cached = loader.request(path, SIZE)
    assert cached is not None
    assert not loader.is_pending(path, SIZE)
    assert loader.decoded_count == 1
    assert QColor(cached.pixel(4, 4)).red() > 150
    assert disk.path_for(path, SIZE).is_file()


def test_disk_cache_serves_decoding(disk: DiskThumbnailCache, tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "eye.jpg", (180, 40, 20))
    decode_thumbnail(path, SIZE, disk)
    cache_file = disk.path_for(path, SIZE)
    # A green cache file proves that decoding reads the cache, not the red source.
    Image.new("RGB", (SIZE, SIZE), (0, 200, 0)).save(cache_file, "JPEG")

    image = decode_thumbnail(path, SIZE, disk)

    assert QColor(image.pixel(4, 4)).green() > 150
    assert QColor(image.pixel(4, 4)).red() < 60


def test_exam_thumbnail_in_exam_folder(
    qtbot: QtBot, loader: ThumbnailLoader, disk: DiskThumbnailCache, tmp_path: Path
) -> None:
    path = write_jpeg(tmp_path / "eye.jpg", (180, 40, 20))

    with qtbot.waitSignal(loader.thumbnail_ready, timeout=WAIT_MS):
        loader.request(path, SIZE, EXAM)

    cache_file = disk.path_for(path, SIZE, EXAM)
    assert cache_file.is_file()
    assert list(disk.exam_folder(EXAM).iterdir()) == [cache_file]
    assert not disk.path_for(path, SIZE).exists()


def test_disk_cache_hit_marks_used(disk: DiskThumbnailCache, tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "eye.jpg", (180, 40, 20))
    decode_thumbnail(path, SIZE, disk, EXAM)
    cache_file = disk.path_for(path, SIZE, EXAM)
    long_ago = time.time() - 40 * 86400
    os.utime(cache_file, (long_ago, long_ago))

    decode_thumbnail(path, SIZE, disk, EXAM)

    assert cache_file.stat().st_mtime > time.time() - 60


def test_decode_of_deleted_image_stores_nothing(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "exams" / EXAM / "eye.jpg", (180, 40, 20))
    disk = SourceDeletingDiskCache(tmp_path / "thumbnails", path)

    with pytest.raises(ThumbnailError, match="was deleted"):
        decode_thumbnail(path, SIZE, disk, EXAM)

    assert disk.written is not None
    assert not disk.written.exists()
    assert not disk.exam_folder(EXAM).exists()


def test_disk_cache_key_changes_with_file(
    disk: DiskThumbnailCache, tmp_path: Path
) -> None:
    path = write_jpeg(tmp_path / "eye.jpg", (180, 40, 20))
    before = disk.path_for(path, SIZE)

    write_jpeg(path, (10, 10, 200), size=64)

    assert disk.path_for(path, SIZE) != before
    assert disk.path_for(path, SIZE * 2) != disk.path_for(path, SIZE)


def test_stale_requests_are_dropped(
    qtbot: QtBot, pools: Pools, disk: DiskThumbnailCache, tmp_path: Path
) -> None:
    loader = ThumbnailLoader(pools.general, ThumbnailCache(), disk)
    paths = [write_jpeg(tmp_path / f"eye{n}.jpg", (n, 80, 80)) for n in range(60)]
    ready: list[Path] = []
    loader.thumbnail_ready.connect(lambda path, _size: ready.append(path))

    for path in paths:
        loader.request(path, SIZE)
    loader.retain([(paths[-1], SIZE)])
    qtbot.waitUntil(lambda: loader.pending_count() == 0, timeout=WAIT_MS)

    assert paths[-1] in ready
    assert set(ready) <= {paths[-1], *paths[: pools.general.max_threads]}
    assert loader.decoded_count < len(paths)


def test_cancelled_request_can_start_again(
    qtbot: QtBot, loader: ThumbnailLoader, tmp_path: Path
) -> None:
    paths = [write_jpeg(tmp_path / f"eye{n}.jpg", (n, 80, 80)) for n in range(20)]
    for path in paths:
        loader.request(path, SIZE)
    loader.retain([])

    loader.request(paths[-1], SIZE)

    qtbot.waitUntil(
        lambda: loader.request(paths[-1], SIZE) is not None, timeout=WAIT_MS
    )


def test_failed_thumbnail_is_reported_once(
    qtbot: QtBot, loader: ThumbnailLoader, tmp_path: Path
) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not an image")

    with qtbot.waitSignal(loader.thumbnail_failed, timeout=WAIT_MS) as failed:
        loader.request(path, SIZE)

    assert failed.args[0] == path
    assert isinstance(failed.args[2], ThumbnailError)
    assert loader.error(path, SIZE) is not None
    assert loader.request(path, SIZE) is None
    assert not loader.is_pending(path, SIZE)


def test_memory_cache_drops_least_recently_used() -> None:
    first = QImage(10, 10, QImage.Format.Format_RGB888)
    size = first.sizeInBytes()
    cache = ThumbnailCache(max_bytes=2 * size)
    keys = [(Path(f"/images/{n}.jpg"), SIZE) for n in range(3)]
    cache.put(keys[0], first)
    cache.put(keys[1], QImage(first))
    assert cache.get(keys[0]) is not None

    cache.put(keys[2], QImage(first))

    assert keys[0] in cache
    assert keys[1] not in cache
    assert keys[2] in cache
    assert cache.bytes_used == 2 * size


def test_memory_cache_rejects_zero_budget() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ThumbnailCache(max_bytes=0)


def test_memory_cache_forgets_exam() -> None:
    image = QImage(10, 10, QImage.Format.Format_RGB888)
    cache = ThumbnailCache()
    own = [(Path(f"/exams/{EXAM}/{n}.jpg"), SIZE) for n in range(2)]
    other = (Path(f"/exams/{OTHER}/0.jpg"), SIZE)
    loose = (Path("/import/0.jpg"), SIZE)
    for key in own:
        cache.put(key, QImage(image), EXAM)
    cache.put(other, QImage(image), OTHER)
    cache.put(loose, QImage(image))

    forgotten = cache.forget_exam(EXAM)

    assert forgotten == 2
    assert all(key not in cache for key in own)
    assert other in cache
    assert loose in cache
    assert cache.bytes_used == 2 * image.sizeInBytes()
    assert cache.forget_exam(EXAM) == 0


def test_memory_cache_forgets_after_eviction() -> None:
    image = QImage(10, 10, QImage.Format.Format_RGB888)
    cache = ThumbnailCache(max_bytes=2 * image.sizeInBytes())
    keys = [(Path(f"/exams/{EXAM}/{n}.jpg"), SIZE) for n in range(3)]
    for key in keys:
        cache.put(key, QImage(image), EXAM)

    assert keys[0] not in cache
    assert cache.forget_exam(EXAM) == 2
    assert len(cache) == 0
    assert cache.bytes_used == 0
