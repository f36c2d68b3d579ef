"""Drag and drop: exams dragged out as DICOM files, files dropped in to import.

A file manager copies a drag's files when they are dropped, so the files must
exist by then. :class:`DragExporter` converts exams into the cache on a
worker as soon as they are selected (:meth:`DragExporter.prefetch`). When a
drag starts before its conversion is done, it waits in a local event loop
that repaints the window but holds back mouse and key events, then starts
the drag. A button released meanwhile is delivered to the drag, which drops
the files where the mouse was released.

:func:`classify_drop` sorts dropped URLs into image files to import and
exam folders to add to the library.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEventLoop, QMimeData, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDrag, QGuiApplication, QPixmap
from PySide6.QtWidgets import QWidget

from eyer_desktop.core.caches import DRAG_CACHE_FOLDER
from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.dicom.options import ConversionOptions
from eyer_desktop.core.errors import EyerError
from eyer_desktop.core.export import prepare_drag_files
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import MANIFEST_NAME
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.workers import Worker, WorkerCancelledError, WorkerPool

logger = logging.getLogger(__name__)

DRAG_WAIT_MS = 60_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})

DragKey = tuple[str, tuple[str, ...] | None, ConversionOptions]
"""An exam id, the selected image ids or None for all, and the options."""


@dataclass(frozen=True)
class DropContents:
    """Dropped paths sorted by what the application does with them.

    Attributes:
        images: JPEG and PNG files, and those directly inside plain folders.
        exam_folders: Folders that contain an exam manifest.
        ignored: Other files and folders, and URLs that are not local files.
    """

    images: tuple[Path, ...] = ()
    exam_folders: tuple[Path, ...] = ()
    ignored: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not self.images and not self.exam_folders


def classify_drop(urls: Iterable[QUrl]) -> DropContents:
    """Sort dropped URLs into images to import and exam folders to add."""
    images: list[Path] = []
    folders: list[Path] = []
    ignored: list[str] = []
    for url in urls:
        if not url.isLocalFile():
            ignored.append(url.toString())
            continue
        path = Path(url.toLocalFile())
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            folders.append(path)
        elif path.is_dir():
            inside = sorted(
                child
                for child in path.iterdir()
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
            images.extend(inside)
            if not inside:
                ignored.append(str(path))
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            ignored.append(str(path))
    return DropContents(tuple(images), tuple(folders), tuple(ignored))


def _convert_for_drag(
    library: ExamLibrary,
    exam_id: str,
    image_ids: tuple[str, ...] | None,
    options: ConversionOptions,
    cache_root: Path,
) -> list[Path]:
    exam = library.load(exam_id)
    return prepare_drag_files(exam, options, cache_root, image_ids=image_ids)


@dataclass
class _Wait:
    """The conversions one drag waits for."""

    keys: set[DragKey]
    loop: QEventLoop


class DragExporter(QObject):
    """Converts exams into the cache for dragging, ahead of time when it can.

    Signals:
        status_message: A passing outcome for the status bar: (text, ms).
    """

    status_message = Signal(str, int)

    def __init__(
        self, workspace: Workspace, pool: WorkerPool, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._library = workspace.library
        self._pool = pool
        self.cache_root = workspace.paths.cache_dir / DRAG_CACHE_FOLDER
        self._ready: dict[DragKey, list[Path]] = {}
        self._pending: dict[DragKey, Worker] = {}
        self._errors: dict[DragKey, BaseException] = {}
        self._waits: list[_Wait] = []
        self._stopped = False

    def stop(self) -> None:
        """Start no new conversions and cancel queued ones, before shutdown."""
        self._stopped = True
        for worker in self._pending.values():
            worker.cancel()

    def forget_exams(self, exam_ids: Collection[str]) -> None:
        """Drop the finished conversions and errors of deleted exams.

        The conversions' files are removed with the exams by
        :func:`~eyer_desktop.core.removal.delete_exam`. A conversion still
        running fails once it finds its exam gone.
        """
        for known in (self._ready, self._errors):
            for key in [key for key in known if key[0] in exam_ids]:
                del known[key]

    def options(self) -> ConversionOptions:
        """Return the conversion options of the current settings."""
        return conversion_options(self._workspace.settings)

    def prefetch(
        self, exam_ids: Sequence[str], image_ids: Sequence[str] | None = None
    ) -> list[DragKey]:
        """Start converting exams, or images of one exam, unless already done."""
        options = self.options()
        selected = tuple(image_ids) if image_ids is not None else None
        keys = [(exam_id, selected, options) for exam_id in exam_ids]
        for key in keys:
            self._start(key)
        return keys

    def paths_for(
        self,
        exam_ids: Sequence[str],
        image_ids: Sequence[str] | None = None,
        *,
        timeout_ms: int = DRAG_WAIT_MS,
    ) -> list[Path]:
        """Return the files to drag, waiting for conversions still running.

        Waiting runs a local event loop, so the window keeps repainting and
        other workers deliver their results meanwhile.

        Raises:
            EyerError: A conversion failed. The first failure is raised.
            TimeoutError: The conversions took longer than ``timeout_ms``.
        """
        keys = self.prefetch(exam_ids, image_ids)
        waiting = {key for key in keys if key in self._pending}
        if waiting:
            self._wait_for(waiting, timeout_ms)

        paths: list[Path] = []
        for key in keys:
            if key in self._errors:
                raise self._errors.pop(key)
            paths.extend(self._ready[key])
        return paths

    def start_drag(
        self,
        source: QWidget,
        exam_ids: Sequence[str],
        image_ids: Sequence[str] | None = None,
        pixmap: QPixmap | None = None,
    ) -> Qt.DropAction:
        """Drag the DICOM files of exams or images out of ``source``."""
        try:
            paths = self.paths_for(exam_ids, image_ids)
        except (EyerError, TimeoutError) as err:
            self.status_message.emit(
                self.tr("Preparing the DICOM files failed: %s") % err, 10_000
            )
            return Qt.DropAction.IgnoreAction
        if not QGuiApplication.mouseButtons() & Qt.MouseButton.LeftButton:
            self.status_message.emit(
                self.tr("The DICOM files are ready. Drag the exam again."), 6000
            )
            return Qt.DropAction.IgnoreAction

        drag = QDrag(source)
        drag.setMimeData(mime_data_for(paths))
        if pixmap is not None and not pixmap.isNull():
            drag.setPixmap(pixmap)
        return drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    # Workers

    def _start(self, key: DragKey) -> None:
        cached = self._ready.get(key)
        if cached is not None and all(path.exists() for path in cached):
            return
        self._ready.pop(key, None)
        self._errors.pop(key, None)
        if key in self._pending or self._stopped:
            return
        exam_id, image_ids, options = key
        worker = Worker(
            _convert_for_drag,
            self._library,
            exam_id,
            image_ids,
            options,
            self.cache_root,
            name="drag conversion",
        )
        # The callbacks hold the worker's id, not the worker, so that only the
        # pool keeps the worker alive.
        token = id(worker)
        on_ending(
            worker,
            self,
            lambda paths: self._finished(key, token, paths),
            lambda error: self._failed(key, token, error),
        )
        self._pending[key] = worker
        self._pool.start(worker)

    def _release(self, key: DragKey, token: int) -> None:
        # A cancelled worker may end after another one started for the same
        # key. The newer one stays pending.
        pending = self._pending.get(key)
        if pending is not None and id(pending) == token:
            del self._pending[key]

    def _finished(self, key: DragKey, token: int, paths: list[Path]) -> None:
        self._release(key, token)
        self._ready[key] = paths
        self._end_waits(key)

    def _failed(self, key: DragKey, token: int, error: BaseException) -> None:
        self._release(key, token)
        if not isinstance(error, WorkerCancelledError):
            logger.warning("Preparing exam %s for dragging failed: %s", key[0], error)
            self._errors[key] = error
        self._end_waits(key)

    def _wait_for(self, keys: set[DragKey], timeout_ms: int) -> None:
        # The loop and timer have no parent: they are deleted when this call
        # returns, never later with the exporter while a loop might run.
        wait = _Wait(set(keys), QEventLoop())
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(wait.loop.quit)
        self._waits.append(wait)
        timer.start(timeout_ms)
        try:
            wait.loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        finally:
            timer.stop()
            self._waits.remove(wait)
        if wait.keys:
            raise TimeoutError(
                self.tr("Converting the exams took more than %d seconds")
                % (timeout_ms // 1000)
            )

    def _end_waits(self, key: DragKey) -> None:
        for wait in self._waits:
            wait.keys.discard(key)
            if not wait.keys:
                wait.loop.quit()


def mime_data_for(paths: Sequence[Path]) -> QMimeData:
    """Return drag data that file managers copy: the files' URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    mime.setText("\n".join(str(path) for path in paths))
    return mime
