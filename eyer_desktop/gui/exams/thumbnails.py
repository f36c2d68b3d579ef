"""Thumbnails of exam images, decoded off the GUI thread and cached twice.

:class:`ThumbnailLoader` decodes each requested image on a worker pool with
Pillow (``draft`` lets the JPEG decoder scale down while decoding, then
``thumbnail`` resizes) into a QImage, never a QPixmap, which only the GUI
thread may create. Results are kept in memory in a :class:`ThumbnailCache`,
which drops the least recently used beyond a byte budget. They are also kept
as small JPEG files in a :class:`DiskThumbnailCache`, keyed by the image's
path, modification time and size, so a restart does not decode every image
again.

Views request only the thumbnails they paint, and tell the loader which ones
they still show (:meth:`ThumbnailLoader.retain`). A queued request that is no
longer wanted is cancelled before it starts, and a result that arrives after
its row scrolled away goes into the cache without a repaint.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

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

    def put(self, key: ThumbnailKey, image: QImage) -> None:
        """Store a thumbnail, dropping the least recently used beyond the budget."""
        previous = self._images.pop(key, None)
        if previous is not None:
            self.bytes_used -= previous.sizeInBytes()
        self._images[key] = image
        self.bytes_used += image.sizeInBytes()
        while self.bytes_used > self.max_bytes and len(self._images) > 1:
            _, dropped = self._images.popitem(last=False)
            self.bytes_used -= dropped.sizeInBytes()


class DiskThumbnailCache:
    """Thumbnails as JPEG files under one folder, safe to use from any thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, source: Path, size: int) -> Path:
        """Return the cache file of a source image's thumbnail at a box size.

        Raises:
            OSError: The source image cannot be examined.
        """
        info = source.stat()
        text = f"{source.resolve()}|{info.st_mtime_ns}|{info.st_size}|{size}"
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        return self.folder / digest[:2] / f"{digest}.jpg"

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


def decode_thumbnail(
    source: Path, size: int, disk: DiskThumbnailCache | None = None
) -> QImage:
    """Return the thumbnail of an image file, fitting a ``size`` pixel square.

    The disk cache is read first and written after decoding. Runs on any
    thread.

    Raises:
        ThumbnailError: The image cannot be read or decoded.
    """
    cached = None
    if disk is not None:
        try:
            cached = disk.path_for(source, size)
        except OSError as err:
            raise ThumbnailError(
                f"Reading the image {source} failed: {err.strerror or err}"
            ) from err
        if cached.is_file():
            try:
                return to_qimage(_open_rgb(cached, size))
            except ThumbnailError:
                logger.warning("Thumbnail cache file %s is damaged", cached)

    image = _open_rgb(source, size)
    if cached is not None:
        _store(disk, cached, image)
    return to_qimage(image)


def _open_rgb(path: Path, size: int) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (size, size))
            upright = ImageOps.exif_transpose(opened)
            upright.thumbnail((size, size), Image.Resampling.BILINEAR)
            return upright.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ThumbnailError(f"Decoding the image {path} failed: {err}") from err


def _store(disk: DiskThumbnailCache | None, path: Path, image: Image.Image) -> None:
    if disk is None:
        return
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

    def request(self, path: Path, size: int) -> QImage | None:
        """Return the thumbnail from memory, or None and start loading it."""
        key = (path, size)
        image = self._cache.get(key)
        if image is not None:
            return image
        if key in self._failed or self._stopped:
            return None
        self._wanted.add(key)
        pending = self._pending.get(key)
        if pending is None or pending.cancelled:
            self._start(key)
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

    def _start(self, key: ThumbnailKey) -> None:
        path, size = key
        worker = Worker(decode_thumbnail, path, size, self._disk, name="thumbnail")
        # The callbacks hold the worker's id, not the worker, so that only the
        # pool keeps the worker alive.
        token = id(worker)
        on_ending(
            worker,
            self,
            lambda image: self._finished(key, token, image),
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

    def _finished(self, key: ThumbnailKey, token: int, image: QImage) -> None:
        self._release(key, token)
        self.decoded_count += 1
        self._cache.put(key, image)
        if key in self._wanted:
            self.thumbnail_ready.emit(*key)

    def _failed_with(self, key: ThumbnailKey, token: int, error: BaseException) -> None:
        self._release(key, token)
        if isinstance(error, WorkerCancelledError):
            return
        self._failed[key] = str(error)
        logger.warning("Thumbnail of %s failed: %s", key[0], error)
        self.thumbnail_failed.emit(key[0], key[1], error)
