"""Deleting exams and removing servers that still have deliveries to make.

An exam's folder is the only copy of its images until every server has them,
and a removed server's deliveries can no longer go anywhere. Both actions are
rejected while such deliveries are unfinished, unless the caller forces them,
which cancels the deliveries first. The command line and the GUI share these
rules.

Deleting an exam also removes its cached copies: the DICOM files converted for
dragging and the thumbnails (see :mod:`eyer_desktop.core.caches`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eyer_desktop.core.caches import (
    DRAG_CACHE_FOLDER,
    THUMBNAIL_CACHE_FOLDER,
    CachePurge,
    DiskThumbnailCache,
    RemovalFailure,
    remove_exam_drag_files,
)
from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import UNFINISHED_STATES, Delivery, Outbox
from eyer_desktop.core.servers import Server, ServerList

logger = logging.getLogger(__name__)

# Removing a folder that another program locks can fail for every file in it.
# The log names this many failures and counts the rest.
_LOGGED_FAILURES_MAX = 5


class UnfinishedDeliveriesError(ValidationError):
    """An exam or server still has queued, sending, paused or failed deliveries.

    Attributes:
        deliveries: The unfinished deliveries, oldest first.
    """

    def __init__(self, field: str, value: str, deliveries: Sequence[Delivery]) -> None:
        self.deliveries = tuple(deliveries)
        count = len(self.deliveries)
        noun = "delivery" if count == 1 else "deliveries"
        super().__init__(
            field,
            value,
            f"has {count} unfinished {noun} (queued, sending, paused or failed)",
            "Wait until they are sent, or cancel them, or force the removal, "
            "which cancels them",
        )


def unfinished_deliveries(
    outbox: Outbox, *, exam_id: str | None = None, server_key: str | None = None
) -> list[Delivery]:
    """Return the queued, sending, paused and failed deliveries matching the filters."""
    return outbox.deliveries(
        exam_id=exam_id, server_key=server_key, states=UNFINISHED_STATES
    )


def orphaned_deliveries(outbox: Outbox, servers: ServerList) -> list[Delivery]:
    """Return the unfinished deliveries to servers that are no longer in the list."""
    return [
        delivery
        for delivery in unfinished_deliveries(outbox)
        if delivery.server_key not in servers
    ]


@dataclass(frozen=True)
class ExamDeletion:
    """The outcome of deleting one exam.

    Attributes:
        exam_id: The id of the deleted exam.
        cancelled: The number of the exam's deliveries that were cancelled.
        cache_failures: Cached copies of the exam that could not be removed.
            The exam is deleted all the same.
    """

    exam_id: str
    cancelled: int
    cache_failures: tuple[RemovalFailure, ...] = ()


def delete_exam(
    library: ExamLibrary,
    outbox: Outbox,
    exam_id: str,
    *,
    cache_dir: Path | None,
    force: bool = False,
) -> ExamDeletion:
    """Delete an exam from the library, with its cached copies.

    Args:
        library: The library that contains the exam.
        outbox: The deliveries, of which the exam's unfinished ones are
            cancelled when ``force`` is True.
        exam_id: The exam id or an unambiguous prefix of it.
        cache_dir: The profile's cache folder, whose copies of the exam are
            removed after the exam. None removes no cached copy.
        force: Delete the exam even with unfinished deliveries.

    Raises:
        UnfinishedDeliveriesError: The exam has unfinished deliveries and
            ``force`` is False. Nothing is deleted.
        ExamError: The exam is not found or its folder cannot be removed.
            No delivery is cancelled.
    """
    exam_id = library.resolve_id(exam_id)
    pending = unfinished_deliveries(outbox, exam_id=exam_id)
    if pending and not force:
        raise UnfinishedDeliveriesError("Exam", exam_id, pending)

    # The folder is removed first, so that a folder that cannot be removed
    # leaves the exam and its deliveries as they were. Deliveries being sent
    # are cancelled too, as are those whose send failed in between because
    # the folder was gone, and an outcome reported later leaves them cancelled.
    library.delete(exam_id)
    cancelled = outbox.cancel(delivery.delivery_id for delivery in pending)
    if cancelled:
        logger.info("Cancelled %d deliveries of deleted exam %s", cancelled, exam_id)

    # A drag conversion or thumbnail of the exam that is written after this
    # purge finds the exam's files gone and removes what it wrote.
    if cache_dir is None:
        return ExamDeletion(exam_id, cancelled)
    purge = purge_exam_caches(cache_dir, exam_id)
    return ExamDeletion(exam_id, cancelled, purge.failures)


def purge_exam_caches(cache_dir: Path, exam_id: str) -> CachePurge:
    """Remove an exam's drag conversions and thumbnails from the cache folder.

    A file that cannot be removed is logged and reported in the result, not
    raised, because the exam itself is already deleted.

    Raises:
        ValueError: ``exam_id`` is not a folder name (see
            :func:`~eyer_desktop.core.caches.check_exam_id`). Ids returned by
            the library always are.
    """
    drag = remove_exam_drag_files(cache_dir / DRAG_CACHE_FOLDER, exam_id)
    thumbnails = DiskThumbnailCache(cache_dir / THUMBNAIL_CACHE_FOLDER)
    purge = drag + thumbnails.remove_exam(exam_id)

    for failure in purge.failures[:_LOGGED_FAILURES_MAX]:
        logger.warning(
            "Removing a cached copy of deleted exam %s failed: %s", exam_id, failure
        )
    unlogged = len(purge.failures) - _LOGGED_FAILURES_MAX
    if unlogged > 0:
        logger.warning(
            "Removing %d more cached copies of deleted exam %s failed",
            unlogged,
            exam_id,
        )
    if purge.removed:
        logger.info(
            "Removed %d cache folders of deleted exam %s", len(purge.removed), exam_id
        )
    return purge


def remove_server(
    servers: ServerList, outbox: Outbox, key: str, *, force: bool = False
) -> tuple[Server, int]:
    """Remove a server from the list and cancel its deliveries when forced.

    Deliveries being sent to the server are cancelled too, and stay cancelled
    whatever outcome their sender reports afterwards. The caller saves the
    list and deletes the server's keyring secret.

    Returns:
        The removed server and the number of deliveries cancelled.

    Raises:
        UnfinishedDeliveriesError: The server has unfinished deliveries and
            ``force`` is False. The list is unchanged.
        ValidationError: The key is unknown or is the primary cloud's.
    """
    server = servers.get(key)
    pending = unfinished_deliveries(outbox, server_key=server.key)
    if pending and not force:
        raise UnfinishedDeliveriesError("Server", server.key, pending)

    servers.remove(server.key)
    cancelled = outbox.cancel(delivery.delivery_id for delivery in pending)
    if cancelled:
        logger.info("Cancelled %d deliveries of removed server %s", cancelled, key)
    return server, cancelled
