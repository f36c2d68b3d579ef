"""Routing of exams to servers by each server's action.

The rules follow the camera's server actions:

- The primary and every mirror receive every new exam.
- A contingency server receives an exam when the primary cannot take it. That is
  the case when the primary is deactivated or not configured, and then contingency
  servers receive new exams at once. It is also the case as soon as one attempt of
  the primary's delivery of the exam fails, transiently or permanently. The primary
  keeps retrying meanwhile, so the exam may reach both.
- A manual server receives an exam only when the user sends it there.
- A deactivated server receives no new exam. Deliveries already queued for it are
  paused, not dropped, and go out when it is active again.
- Worklist servers are never sent to.

A server that is not configured (the cloud before its address is set) is treated as
deactivated. A server that left the server list keeps its deliveries paused too.

The pure functions take the server list and return a mapping of server keys to the
:class:`~eyer_desktop.core.outbox.Route` that reaches them. The functions that take
an :class:`~eyer_desktop.core.outbox.Outbox` apply them to the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Protocol

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import Outbox, PauseReason, Route, items_of_exam

logger = logging.getLogger(__name__)


class ServerAction(StrEnum):
    PRIMARY = "primary"
    MIRROR = "mirror"
    CONTINGENCY = "contingency"
    MANUAL = "manual"
    DEACTIVATED = "deactivated"


class ServerView(Protocol):
    """The properties of a server that routing reads.

    ``action`` is one of the :class:`ServerAction` values. ``is_storage`` is true for
    DICOM storage and DICOMweb servers and false for worklist servers.
    """

    @property
    def key(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def is_storage(self) -> bool: ...

    @property
    def is_configured(self) -> bool: ...


def server_action(server: ServerView) -> ServerAction:
    """Return a server's action, or raise ValueError naming the server if unknown."""
    try:
        return ServerAction(server.action)
    except ValueError as err:
        expected = ", ".join(ServerAction)
        raise ValueError(
            f"server {server.key} has invalid action {server.action!r}. "
            f"Expected one of {expected}"
        ) from err


def can_receive(server: ServerView) -> bool:
    """Return whether a server may be sent anything at all."""
    return (
        server.is_storage
        and server.is_configured
        and server_action(server) is not ServerAction.DEACTIVATED
    )


def primary_available(servers: Iterable[ServerView]) -> bool:
    """Return whether an active, configured primary exists."""
    return any(
        server_action(server) is ServerAction.PRIMARY and can_receive(server)
        for server in servers
    )


def _targets(servers: Iterable[ServerView], action: ServerAction) -> dict[str, Route]:
    route = Route(action)
    return {
        server.key: route
        for server in servers
        if server_action(server) is action and can_receive(server)
    }


def contingency_targets(servers: Sequence[ServerView]) -> dict[str, Route]:
    """Return the contingency servers that can receive exams."""
    return _targets(servers, ServerAction.CONTINGENCY)


def route_new_exam(servers: Sequence[ServerView]) -> dict[str, Route]:
    """Return the servers that receive a new exam, with the route for each.

    Every image of an exam goes to the same servers, so only the server list
    matters.
    """
    targets = _targets(servers, ServerAction.PRIMARY)
    targets.update(_targets(servers, ServerAction.MIRROR))
    if not primary_available(servers):
        targets.update(contingency_targets(servers))
    return targets


def route_send_now(servers: Sequence[ServerView], server_key: str) -> dict[str, Route]:
    """Return the target of a user's "Send now" to one server.

    Any storage server that is configured and not deactivated accepts a "Send now",
    whatever its action.

    Raises:
        ValidationError: The key names no server, a worklist server, a deactivated
            one or one that is not configured.
    """
    server = next((server for server in servers if server.key == server_key), None)
    if server is None:
        raise ValidationError(
            "Server", server_key, "no server has this key", "Choose a listed server"
        )
    if not server.is_storage:
        raise ValidationError(
            "Server",
            server_key,
            "is a worklist server and cannot receive exams",
            "Choose a storage or DICOMweb server",
        )
    if server_action(server) is ServerAction.DEACTIVATED:
        raise ValidationError(
            "Server",
            server_key,
            "is deactivated",
            "Set its action to Manual, Mirror or Contingency first",
        )
    if not server.is_configured:
        raise ValidationError(
            "Server",
            server_key,
            "is not configured",
            "Enter its address and credentials in the server settings first",
        )
    return {server_key: Route.MANUAL}


def enqueue_exam(outbox: Outbox, servers: Sequence[ServerView], exam: Exam) -> int:
    """Queue a new exam's images for the servers that receive new exams.

    Enqueueing the same exam again creates no second delivery.

    Returns:
        The number of deliveries created.
    """
    targets = route_new_exam(servers)
    created = outbox.enqueue(items_of_exam(exam), targets)
    logger.info(
        "Exam %s: %d deliveries queued for %s",
        exam.exam_id,
        created,
        ", ".join(targets) or "no server",
    )
    return created


def send_now(
    outbox: Outbox, servers: Sequence[ServerView], exam: Exam, server_key: str
) -> int:
    """Queue an exam for one server at the user's request, resending sent images.

    Raises:
        ValidationError: The server cannot receive exams; see route_send_now.
    """
    targets = route_send_now(servers, server_key)
    queued = outbox.enqueue(items_of_exam(exam), targets, resend=True)
    logger.info(
        "Exam %s: %d deliveries queued for %s", exam.exam_id, queued, server_key
    )
    return queued


def enqueue_contingency(
    outbox: Outbox, servers: Sequence[ServerView], exam_ids: Iterable[str]
) -> int:
    """Queue for the contingency servers the exams whose primary delivery failed.

    Each exam goes to each contingency server once: an exam that already has
    deliveries to a contingency server, in any state, gets none added.

    Returns:
        The number of deliveries created.
    """
    exam_ids = list(exam_ids)
    targets = contingency_targets(servers)
    if not targets or not exam_ids:
        return 0
    created = outbox.enqueue_exams_from(Route.PRIMARY, targets, exam_ids)
    if created:
        logger.info(
            "Primary delivery failed for exams %s: %d deliveries queued for %s",
            ", ".join(sorted(set(exam_ids))),
            created,
            ", ".join(targets),
        )
    return created


def sync_server_actions(outbox: Outbox, servers: Sequence[ServerView]) -> None:
    """Bring the outbox in line with the servers' current actions.

    Pauses the deliveries of servers that cannot receive (deactivated, not
    configured, worklist, or gone from the list) and resumes those of servers that
    can again. A pause the user set stays. When no primary is available, the exams
    still waiting for the primary are queued for the contingency servers.
    """
    active = {server.key for server in servers if can_receive(server)}
    paused = outbox.paused_servers()
    for key in outbox.server_keys():
        inactive_pause = PauseReason.INACTIVE in paused.get(key, frozenset())
        if key in active and inactive_pause:
            outbox.resume(key, PauseReason.INACTIVE)
        elif key not in active and not inactive_pause:
            outbox.pause(key, PauseReason.INACTIVE)

    if primary_available(servers):
        return
    targets = contingency_targets(servers)
    if targets:
        created = outbox.enqueue_exams_from(Route.PRIMARY, targets)
        if created:
            logger.info(
                "Primary unavailable: %d waiting deliveries queued for %s",
                created,
                ", ".join(targets),
            )
