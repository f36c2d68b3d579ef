"""Deleting exams from the library, after a confirmation that names what goes.

:class:`ExamDeleter` reads the exams' unfinished deliveries on a worker, shows
a confirmation box that names how many exams, images and unfinished
deliveries are concerned, and then deletes on a worker through
:func:`~eyer_desktop.core.removal.delete_exam`, the function behind the
command line's ``exams delete``, which also removes the exams' cached copies.
The deliveries the box named are cancelled, as ``--force`` cancels them. An
exam that gained unfinished deliveries while the box was open is kept and
reported, as the command line without ``--force`` keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from eyer_desktop.core import removal
from eyer_desktop.core.caches import RemovalFailure
from eyer_desktop.core.errors import EyerError, ValidationError
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import UNFINISHED_STATES, Outbox
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.exams.labels import plural
from eyer_desktop.gui.workers import Worker, WorkerCancelledError, WorkerPool

logger = logging.getLogger(__name__)

STATUS_MS = 6000
FAILURE_STATUS_MS = 15_000


@dataclass(frozen=True)
class ExamToDelete:
    """One selected exam, as the confirmation describes it.

    Attributes:
        image_count: Images of the exam, or None when its manifest cannot be
            read.
        description: Patient name and capture time, empty for an exam that
            cannot be read.
    """

    exam_id: str
    image_count: int | None
    description: str = ""


@dataclass(frozen=True)
class DeletionRequest:
    """Exams to delete, with the unfinished deliveries the confirmation named.

    Attributes:
        unfinished: Unfinished deliveries per exam id when the confirmation
            was prepared. An exam with some is deleted with them cancelled.
    """

    exams: tuple[ExamToDelete, ...]
    unfinished: Mapping[str, int]

    @property
    def exam_ids(self) -> list[str]:
        return [exam.exam_id for exam in self.exams]

    @property
    def image_count(self) -> int:
        """Images of the exams that can be read."""
        return sum(exam.image_count or 0 for exam in self.exams)

    @property
    def unreadable_count(self) -> int:
        return sum(exam.image_count is None for exam in self.exams)

    @property
    def unfinished_count(self) -> int:
        return sum(self.unfinished.values())


@dataclass(frozen=True)
class DeletionReport:
    """Outcome of a deletion.

    Attributes:
        deleted: Ids of the exams deleted.
        cancelled: Deliveries cancelled with them.
        failures: Each exam not deleted, with the reason.
        cache_failures: Cached copies of deleted exams that could not be
            removed.
    """

    deleted: tuple[str, ...]
    cancelled: int
    failures: tuple[tuple[str, EyerError], ...]
    cache_failures: tuple[RemovalFailure, ...] = ()


def count_unfinished(outbox: Outbox, exam_ids: Collection[str]) -> dict[str, int]:
    """Return the number of unfinished deliveries of each exam, zero included."""
    counts = outbox.exam_counts(exam_ids)
    return {
        exam_id: sum(
            count
            for per_state in counts.get(exam_id, {}).values()
            for state, count in per_state.items()
            if state in UNFINISHED_STATES
        )
        for exam_id in exam_ids
    }


def delete_exams(
    library: ExamLibrary,
    outbox: Outbox,
    request: DeletionRequest,
    cache_dir: Path | None,
) -> DeletionReport:
    """Delete each exam of the request with its cached copies in ``cache_dir``.

    A failure does not stop the others.
    """
    deleted: list[str] = []
    cancelled = 0
    failures: list[tuple[str, EyerError]] = []
    cache_failures: list[RemovalFailure] = []
    for exam_id in request.exam_ids:
        force = request.unfinished.get(exam_id, 0) > 0
        try:
            deletion = removal.delete_exam(
                library, outbox, exam_id, cache_dir=cache_dir, force=force
            )
        except removal.UnfinishedDeliveriesError as err:
            failures.append((exam_id, _new_deliveries_error(err)))
        except EyerError as err:
            logger.warning("Deleting exam %s failed: %s", exam_id, err)
            failures.append((exam_id, err))
        else:
            deleted.append(exam_id)
            cancelled += deletion.cancelled
            cache_failures.extend(deletion.cache_failures)
    return DeletionReport(
        tuple(deleted), cancelled, tuple(failures), tuple(cache_failures)
    )


def _new_deliveries_error(
    error: removal.UnfinishedDeliveriesError,
) -> ValidationError:
    """Return the error of an exam queued for sending after the confirmation."""
    logger.info(
        "Exam %s not deleted: it was queued for sending after the confirmation",
        error.value,
    )
    return ValidationError(
        error.field,
        error.value,
        f"{error.problem}, queued after you confirmed",
        "Delete it again to cancel them, or wait until they are sent",
    )


class ExamDeleter(QObject):
    """Deletion of exams: a confirmation, then a worker that deletes them.

    One deletion runs at a time. A request made meanwhile is ignored.

    Signals:
        deleted: A deletion ended; carries the DeletionReport, failures
            included.
        status_message: The outcome for the status bar: (text, ms).
    """

    deleted = Signal(object)
    status_message = Signal(str, int)

    def __init__(
        self,
        workspace: Workspace,
        pool: WorkerPool,
        background: WorkerPool,
        parent: QWidget,
    ) -> None:
        """Create the deleter.

        Args:
            workspace: The library and outbox to delete from.
            pool: Runs the deletion. Closing the window waits for this pool.
            background: Reads the delivery counts.
            parent: The widget the confirmation opens over.
        """
        super().__init__(parent)
        self._workspace = workspace
        self._pool = pool
        self._background = background
        self._dialog_parent = parent
        self._busy = False
        self.confirm_box: QMessageBox | None = None
        """The confirmation while it is open, else None."""
        self.failure_box: QMessageBox | None = None
        """The box reporting a failed deletion while it is open, else None."""

    def is_busy(self) -> bool:
        """Return whether a request is being confirmed or carried out."""
        return self._busy

    def request(self, exams: Sequence[ExamToDelete]) -> None:
        """Ask to confirm the deletion of exams, once their deliveries are read."""
        if not exams:
            self.status_message.emit(
                self.tr("Select the exams to delete first."), STATUS_MS
            )
            return
        if self._busy:
            return

        self._busy = True
        chosen = tuple(exams)
        worker = Worker(
            count_unfinished,
            self._workspace.outbox,
            [exam.exam_id for exam in chosen],
            name="count unfinished deliveries",
        )
        on_ending(
            worker,
            self,
            lambda counts: self._confirm(DeletionRequest(chosen, counts)),
            self._failed,
        )
        self._background.start(worker)

    # Confirmation

    def _confirm(self, request: DeletionRequest) -> None:
        box = QMessageBox(self._dialog_parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Delete Exams"))
        box.setText(self._question(request))
        box.setInformativeText(self._details(request))
        delete = box.addButton(
            self.tr("Delete"), QMessageBox.ButtonRole.DestructiveRole
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(
            lambda _result: self._answered(request, box.clickedButton() is delete)
        )
        self.confirm_box = box
        box.open()

    def _question(self, request: DeletionRequest) -> str:
        count = len(request.exams)
        if request.unreadable_count == count:
            return plural(count, self.tr("Delete 1 exam?"), self.tr("Delete %n exams?"))
        images = plural(request.image_count, self.tr("1 image"), self.tr("%n images"))
        if count == 1:
            return self.tr("Delete 1 exam with %1?").replace("%1", images)
        return (
            self.tr("Delete %1 exams with %2?")
            .replace("%1", str(count))
            .replace("%2", images)
        )

    def _details(self, request: DeletionRequest) -> str:
        lines = []
        if len(request.exams) == 1 and request.exams[0].description:
            lines.append(request.exams[0].description)
        if request.unreadable_count:
            lines.append(
                plural(
                    request.unreadable_count,
                    self.tr("1 exam cannot be read, so its images are not counted."),
                    self.tr(
                        "%n exams cannot be read, so their images are not counted."
                    ),
                )
            )
        lines.append(
            self.tr(
                "The exam folders are removed from this computer. "
                "This cannot be undone."
            )
        )
        if request.unfinished_count:
            lines.append(
                plural(
                    request.unfinished_count,
                    self.tr(
                        "1 delivery to a server is not finished. It will be "
                        "cancelled, so that server may never receive the image."
                    ),
                    self.tr(
                        "%n deliveries to servers are not finished. They will be "
                        "cancelled, so those servers may never receive the images."
                    ),
                )
            )
        return "\n\n".join(lines)

    def _answered(self, request: DeletionRequest, confirmed: bool) -> None:
        if self.confirm_box is not None:
            self.confirm_box.deleteLater()
            self.confirm_box = None
        if not confirmed:
            self._busy = False
            return

        worker = Worker(
            delete_exams,
            self._workspace.library,
            self._workspace.outbox,
            request,
            self._workspace.paths.cache_dir,
            name="delete exams",
        )
        on_ending(worker, self, self._done, self._failed)
        self._pool.start(worker)

    # Outcome

    def _done(self, report: DeletionReport) -> None:
        self._busy = False
        self.deleted.emit(report)
        failed = report.failures or report.cache_failures
        timeout = FAILURE_STATUS_MS if failed else STATUS_MS
        self.status_message.emit(self.summary(report), timeout)
        if failed:
            self._show_failure(self.summary(report))

    def summary(self, report: DeletionReport) -> str:
        """Return the outcome in one line, naming the first failure."""
        parts = []
        if report.deleted:
            text = plural(
                len(report.deleted),
                self.tr("Deleted 1 exam"),
                self.tr("Deleted %n exams"),
            )
            if report.cancelled:
                text += plural(
                    report.cancelled,
                    self.tr(" and cancelled 1 delivery"),
                    self.tr(" and cancelled %n deliveries"),
                )
            parts.append(text + ".")
        if len(report.failures) == 1:
            parts.append(str(report.failures[0][1]))
        elif report.failures:
            parts.append(
                self.tr("%1 exams not deleted. The first: %2")
                .replace("%1", str(len(report.failures)))
                .replace("%2", str(report.failures[0][1]))
            )
        if report.cache_failures:
            parts.append(self._cache_failure_text(report.cache_failures))
        return " ".join(parts)

    def _cache_failure_text(self, failures: Sequence[RemovalFailure]) -> str:
        first = failures[0]
        text = (
            self.tr("Removing the cached copy %1 failed: %2. Delete it by hand.")
            .replace("%1", str(first.path))
            .replace("%2", first.reason)
        )
        if len(failures) > 1:
            text += plural(
                len(failures) - 1,
                self.tr(" 1 more failed too."),
                self.tr(" %n more failed too."),
            )
        return text

    def _failed(self, error: BaseException) -> None:
        self._busy = False
        if isinstance(error, WorkerCancelledError):
            return
        if not isinstance(error, EyerError):
            raise error
        logger.warning("Deleting exams failed: %s", error)
        text = self.tr("No exam deleted: %1").replace("%1", str(error))
        self.status_message.emit(text, FAILURE_STATUS_MS)
        self._show_failure(text)

    def _show_failure(self, text: str) -> None:
        """Show a failure in a box as well: a long reason does not fit the
        status bar, and the user must act on it.
        """
        box = QMessageBox(self._dialog_parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Delete exams"))
        box.setText(text)
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: self._forget_failure_box(box))
        self.failure_box = box
        box.open()

    def _forget_failure_box(self, box: QMessageBox) -> None:
        if self.failure_box is box:
            self.failure_box = None
