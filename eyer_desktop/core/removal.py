"""Deleting exams and removing servers that still have deliveries to make.

An exam's folder is the only copy of its images until every server has them,
and a removed server's deliveries can no longer go anywhere. Both actions are
rejected while such deliveries are unfinished, unless the caller forces them,
which cancels the deliveries first. The command line and the GUI share these
rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import UNFINISHED_STATES, Delivery, Outbox
from eyer_desktop.core.servers import Server, ServerList

logger = logging.getLogger(__name__)


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


def delete_exam(
    library: ExamLibrary, outbox: Outbox, exam_id: str, *, force: bool = False
) -> int:
    """Delete an exam from the library and return how many deliveries were cancelled.

    Raises:
        UnfinishedDeliveriesError: The exam has unfinished deliveries and
            ``force`` is False. Nothing is deleted.
        ExamError: The exam is not found or its folder cannot be removed.
            No delivery is cancelled.
    """
    pending = unfinished_deliveries(outbox, exam_id=exam_id)
    if pending and not force:
        raise UnfinishedDeliveriesError("Exam", exam_id, pending)

    # The folder is removed first, so that a folder that cannot be removed
    # leaves the exam and its deliveries as they were. A delivery whose exam
    # is gone fails with a message that names the deleted exam.
    library.delete(exam_id)
    cancelled = outbox.cancel(delivery.delivery_id for delivery in pending)
    if cancelled:
        logger.info("Cancelled %d deliveries of deleted exam %s", cancelled, exam_id)
    return cancelled


def remove_server(
    servers: ServerList, outbox: Outbox, key: str, *, force: bool = False
) -> tuple[Server, int]:
    """Remove a server from the list and cancel its deliveries when forced.

    The caller saves the list and deletes the server's keyring secret.

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
