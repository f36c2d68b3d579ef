"""Thumbnails of exam images, decoded off the GUI thread and cached twice.

:class:`ThumbnailLoader` decodes each requested image on a worker pool with
Pillow (``draft`` lets the JPEG decoder scale down while decoding, then
``thumbnail`` resizes) into a QImage, never a QPixmap, which only the GUI
thread may create. Results are kept in memory in a :class:`ThumbnailCache`,
which drops the least recently used beyond a byte budget. They are also kept
as small JPEG files in the core's :class:`DiskThumbnailCache`, keyed by the
image's path, modification time and size, so a restart does not decode every
image again. A request names the exam of a library image, so that both caches
can drop the thumbnails of a deleted exam.

Views request only the thumbnails they paint, and tell the loader which ones
they still show (:meth:`ThumbnailLoader.retain`). A queued request that is no
longer wanted is cancelled before it starts, and a result that arrives after
its row scrolled away goes into the cache without a repaint.
"""

from __future__ import annotations

import io
import logging
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from eyer_desktop.core.caches import DiskThumbnailCache
from eyer_desktop.core.exif import upright as exif_upright
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.workers import Worker, WorkerCancelledError, WorkerPool

logger = logging.getLogger(__name__)

ThumbnailKey = tuple[Path, int]
"""An image file and the size of the square box its thumbnail fits in."""

DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
DISK_JPEG_QUALITY = 85


class ThumbnailError(Exception):
    """An image file cannot be read or decoded as a thumbnail."""


class ThumbnailCache:
    """Decoded thumbnails in memory, at most ``max_bytes`` of pixel data.

    Used from the GUI thread only.
    """

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self._images: OrderedDict[ThumbnailKey, QImage] = OrderedDict()
        self._exam_of: dict[ThumbnailKey, str] = {}
        self._exam_keys: dict[str, set[ThumbnailKey]] = {}

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, key: object) -> bool:
        return key in self._images

    def get(self, key: ThumbnailKey) -> QImage | None:
        """Return a cached thumbnail and mark it as recently used."""
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def put(self, key: ThumbnailKey, image: QImage, exam_id: str | None = None) -> None:
        """Store a thumbnail, dropping the least recently used beyond the budget.

        ``exam_id`` names the exam of a library image, for :meth:`forget_exam`.
        """
        self._drop(key)
        self._images[key] = image
        self.bytes_used += image.sizeInBytes()
        if exam_id is not None:
            self._exam_of[key] = exam_id
            self._exam_keys.setdefault(exam_id, set()).add(key)
        while self.bytes_used > self.max_bytes and len(self._images) > 1:
            self._drop(next(iter(self._images)))

    def forget_exam(self, exam_id: str) -> int:
        """Drop the thumbnails of a deleted exam's images and return how many."""
        keys = list(self._exam_keys.get(exam_id, ()))
        for key in keys:
            self._drop(key)
        return len(keys)

    def _drop(self, key: ThumbnailKey) -> None:
        image = self._images.pop(key, None)
        if image is None:
            return
        self.bytes_used -= image.sizeInBytes()
        exam_id = self._exam_of.pop(key, None)
        if exam_id is None:
            return
        keys = self._exam_keys[exam_id]
        keys.discard(key)
        if not keys:
            del self._exam_keys[exam_id]


def decode_thumbnail(
    source: Path,
    size: int,
    disk: DiskThumbnailCache | None = None,
    exam_id: str | None = None,
) -> QImage:
    """Return the thumbnail of an image file, fitting a ``size`` pixel square.

    The disk cache is read first and written after decoding, in the folder of
    ``exam_id`` for an image of a library exam. Runs on any thread.

    Raises:
        ThumbnailError: The image cannot be read or decoded, or was deleted
            while it was decoded.
    """
    if disk is None:
        return to_qimage(_open_rgb(source, size))

    try:
        cached = disk.path_for(source, size, exam_id)
    except OSError as err:
        raise ThumbnailError(
            f"Reading the image {source} failed: {err.strerror or err}"
        ) from err
    if cached.is_file():
        try:
            image = _open_rgb(cached, size)
        except ThumbnailError:
            logger.warning("Thumbnail cache file %s is damaged", cached)
        else:
            disk.mark_used(cached)
            return to_qimage(image)

    image = _open_rgb(source, size)
    _store(disk, cached, image)
    # Deleting an exam removes its image files before its thumbnails, so a
    # thumbnail stored after that removal is found here.
    if not source.exists():
        disk.discard(cached)
        raise ThumbnailError(f"The image {source} was deleted")
    return to_qimage(image)


def _open_rgb(path: Path, size: int) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (size, size))
            upright = exif_upright(opened)
            upright.thumbnail((size, size), Image.Resampling.BILINEAR)
            return upright.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ThumbnailError(f"Decoding the image {path} failed: {err}") from err


def _store(disk: DiskThumbnailCache, path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=DISK_JPEG_QUALITY)
    try:
        disk.write(path, buffer.getvalue())
    except OSError as err:
        logger.warning("Writing the thumbnail cache file %s failed: %s", path, err)


def to_qimage(image: Image.Image) -> QImage:
    """Return an RGB Pillow image as a QImage in the format painted fastest.

    QImage does not own the bytes it is built on; the conversion makes a copy
    that does. Format_RGB32 is what the raster paint engine draws without
    converting, so the conversion is done here, off the GUI thread.
    """
    width, height = image.size
    data = image.tobytes("raw", "RGB")
    packed = QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return packed.convertToFormat(QImage.Format.Format_RGB32)


class ThumbnailLoader(QObject):
    """Loads thumbnails on a worker pool for one view.

    Several loaders may share one memory cache and one disk cache. Each has
    its own set of wanted thumbnails, so one view scrolling does not cancel
    another view's requests.

    Signals:
        thumbnail_ready: A wanted thumbnail is in the cache: (path, size).
        thumbnail_failed: An image cannot be decoded: (path, size, error).
    """

    thumbnail_ready = Signal(object, int)
    thumbnail_failed = Signal(object, int, object)

    def __init__(
        self,
        pool: WorkerPool,
        cache: ThumbnailCache,
        disk: DiskThumbnailCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._cache = cache
        self._disk = disk
        self._wanted: set[ThumbnailKey] = set()
        self._pending: dict[ThumbnailKey, Worker] = {}
        self._failed: dict[ThumbnailKey, str] = {}
        self._stopped = False
        self.decoded_count = 0
        """Thumbnails that arrived from a worker, for tests and measurements."""

    def request(
        self, path: Path, size: int, exam_id: str | None = None
    ) -> QImage | None:
        """Return the thumbnail from memory, or None and start loading it.

        Pass the exam id of an image of the library, so that its thumbnails
        are removed with the exam.
        """
        key = (path, size)
        image = self._cache.get(key)
        if image is not None:
            return image
        if key in self._failed or self._stopped:
            return None
        self._wanted.add(key)
        pending = self._pending.get(key)
        if pending is None or pending.cancelled:
            self._start(key, exam_id)
        return None

    def error(self, path: Path, size: int) -> str | None:
        """Return why a thumbnail could not be decoded, or None."""
        return self._failed.get((path, size))

    def is_pending(self, path: Path, size: int) -> bool:
        return (path, size) in self._pending

    def pending_count(self) -> int:
        return len(self._pending)

    def retain(self, keys: Iterable[ThumbnailKey]) -> None:
        """Keep only these thumbnails wanted and cancel queued requests of others."""
        self._wanted = set(keys)
        for key, worker in list(self._pending.items()):
            if key not in self._wanted:
                worker.cancel()

    def stop(self) -> None:
        """Cancel queued requests and start no new ones, before shutdown."""
        self._stopped = True
        self.retain(())

    def forget_failures(self) -> None:
        """Try images that failed again on their next request."""
        self._failed.clear()

    def _start(self, key: ThumbnailKey, exam_id: str | None) -> None:
        path, size = key
        worker = Worker(
            decode_thumbnail, path, size, self._disk, exam_id, name="thumbnail"
        )
        # The callbacks hold the worker's id, not the worker, so that only the
        # pool keeps the worker alive.
        token = id(worker)
        on_ending(
            worker,
            self,
            lambda image: self._finished(key, token, image, exam_id),
            lambda error: self._failed_with(key, token, error),
        )
        self._pending[key] = worker
        self._pool.start(worker)

    def _release(self, key: ThumbnailKey, token: int) -> None:
        # A cancelled worker may end after a new request for the same key
        # started another one, which must stay pending.
        pending = self._pending.get(key)
        if pending is not None and id(pending) == token:
            del self._pending[key]

    def _finished(
        self, key: ThumbnailKey, token: int, image: QImage, exam_id: str | None
    ) -> None:
        self._release(key, token)
        self.decoded_count += 1
        self._cache.put(key, image, exam_id)
        if key in self._wanted:
            self.thumbnail_ready.emit(*key)

    def _failed_with(self, key: ThumbnailKey, token: int, error: BaseException) -> None:
        self._release(key, token)
        if isinstance(error, WorkerCancelledError):
            return
        self._failed[key] = str(error)
        logger.warning("Thumbnail of %s failed: %s", key[0], error)
        self.thumbnail_failed.emit(key[0], key[1], error)
