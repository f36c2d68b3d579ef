"""The per-server status table at the top of the Activity page.

One row per storage server of the server list, in list order, then one per
server key that left the list but still has deliveries. Each row states in one
sentence what is happening on that server (sending n of m, waiting to retry
at a time and why, failed and why, paused, all sent) and counts its
deliveries. Live progress comes from the sending service; the counts come
from the loader's snapshots.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor

from eyer_desktop.core.delivery import ServerPhase, ServerProgress
from eyer_desktop.core.outbox import DeliveryState, PauseReason
from eyer_desktop.core.servers import Server, ServerAction
from eyer_desktop.gui.activity.loader import ServerSummary
from eyer_desktop.gui.table_model import FlatTableModel

AnyIndex = QModelIndex | QPersistentModelIndex

_WAITING = (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.PAUSED)
_DELIVERED = (DeliveryState.SENT, DeliveryState.WARNING)


class StatusKind(StrEnum):
    """How much attention a server's status needs, for its colour."""

    IDLE = "idle"
    OK = "ok"
    SENDING = "sending"
    QUEUED = "queued"
    WAITING = "waiting"
    """Waiting to retry after a failure that may pass (server down)."""
    FAILED = "failed"
    PAUSED = "paused"
    INACTIVE = "inactive"


STATUS_COLORS: dict[StatusKind, QColor] = {
    StatusKind.IDLE: QColor("#5f6b73"),
    StatusKind.OK: QColor("#1e5e20"),
    StatusKind.SENDING: QColor("#0b5394"),
    StatusKind.QUEUED: QColor("#37474f"),
    StatusKind.WAITING: QColor("#6b4e00"),
    StatusKind.FAILED: QColor("#a4262c"),
    StatusKind.PAUSED: QColor("#6b4e00"),
    StatusKind.INACTIVE: QColor("#5f6b73"),
}


class Column(IntEnum):
    SERVER = 0
    ACTION = 1
    STATUS = 2
    WAITING = 3
    SENT = 4
    FAILED = 5


class Role(IntEnum):
    """Custom data roles: raw values for the page and tests."""

    SERVER_KEY = Qt.ItemDataRole.UserRole + 1
    KIND = Qt.ItemDataRole.UserRole + 2
    """The StatusKind of the row."""
    USER_PAUSED = Qt.ItemDataRole.UserRole + 3
    """True when the user paused the server."""
    SUMMARY = Qt.ItemDataRole.UserRole + 4
    """The ServerSummary, or None before the first load."""
    PROGRESS = Qt.ItemDataRole.UserRole + 5
    """The live ServerProgress while the server is being sent to, else None."""


@dataclass(frozen=True)
class ServerStatus:
    """The status sentence of a server and its kind."""

    kind: StatusKind
    text: str


def _tr(text: str) -> str:
    return QCoreApplication.translate("ServerStatus", text)


def _clock_text(timestamp: float, now: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp)
    if moment.date() == dt.datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def describe_server(
    server: Server | None,
    summary: ServerSummary | None,
    progress: ServerProgress | None,
    now: float,
) -> ServerStatus:
    """Return the status sentence of one server, most urgent news first."""
    if progress is not None and progress.phase is not ServerPhase.FINISHED:
        return _live_status(progress)
    paused = summary.paused if summary else frozenset()
    waiting = summary.count(*_WAITING) if summary else 0
    if server is None:
        return ServerStatus(
            StatusKind.INACTIVE,
            _tr("Removed from the server list; deliveries waiting: %1").replace(
                "%1", str(waiting)
            ),
        )
    if PauseReason.USER in paused:
        return ServerStatus(
            StatusKind.PAUSED,
            _tr("Paused by you; deliveries waiting: %1").replace("%1", str(waiting)),
        )
    if server.action is ServerAction.DEACTIVATED:
        return ServerStatus(StatusKind.INACTIVE, _tr("Deactivated: receives nothing"))
    if not server.is_configured:
        return ServerStatus(
            StatusKind.INACTIVE, _tr("Not configured: enter its address to use it")
        )
    if summary is not None:
        status = _queue_status(summary, now)
        if status is not None:
            return status
    if server.action is ServerAction.MANUAL:
        return ServerStatus(
            StatusKind.IDLE, _tr("Receives only the exams you send with Send now")
        )
    return ServerStatus(StatusKind.IDLE, _tr("Nothing sent yet"))


def _live_status(progress: ServerProgress) -> ServerStatus:
    if progress.phase is ServerPhase.CONVERTING:
        text = _tr("Preparing %1 of %2")
    else:
        text = _tr("Sending %1 of %2")
    done = min(progress.done, progress.total)
    return ServerStatus(
        StatusKind.SENDING,
        text.replace("%1", str(done)).replace("%2", str(progress.total)),
    )


def _queue_status(summary: ServerSummary, now: float) -> ServerStatus | None:
    failed = summary.count(DeliveryState.FAILED)
    queued = summary.count(DeliveryState.QUEUED, DeliveryState.SENDING)
    error = summary.last_error or ""
    if failed:
        text = _tr("%1 failed: ").replace("%1", str(failed)) + error
        return ServerStatus(StatusKind.FAILED, text)
    if queued and summary.next_retry_at is not None and summary.next_retry_at > now:
        when = _clock_text(summary.next_retry_at, now)
        text = _tr("Retry at %1: ").replace("%1", when) + error
        return ServerStatus(StatusKind.WAITING, text)
    if queued:
        return ServerStatus(
            StatusKind.QUEUED, _tr("%1 queued").replace("%1", str(queued))
        )
    warnings = summary.count(DeliveryState.WARNING)
    if warnings:
        return ServerStatus(
            StatusKind.OK,
            _tr("All sent; with a warning: %1").replace("%1", str(warnings)),
        )
    if summary.count(DeliveryState.SENT):
        return ServerStatus(StatusKind.OK, _tr("All sent"))
    return None


def action_label(action: ServerAction | None) -> str:
    """Return the name of a server action, as the camera shows it."""
    if action is None:
        return ""
    labels = {
        ServerAction.PRIMARY: _tr("Primary"),
        ServerAction.MIRROR: _tr("Mirror"),
        ServerAction.CONTINGENCY: _tr("Contingency"),
        ServerAction.MANUAL: _tr("Manual"),
        ServerAction.DEACTIVATED: _tr("Deactivated"),
    }
    return labels[action]


@dataclass
class _Row:
    key: str
    server: Server | None
    summary: ServerSummary | None = None
    progress: ServerProgress | None = None


class ServerStatusModel(FlatTableModel):
    """The status of every storage server."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._rows: list[_Row] = []
        self._summaries: Mapping[str, ServerSummary] = {}
        self._servers: list[Server] = []
        self._changed_rows: set[int] = set()

    # Qt model interface

    COLUMN_COUNT = len(Column)

    def row_count(self) -> int:
        return len(self._rows)

    def column_titles(self) -> list[str]:
        return [
            self.tr("Server"),
            self.tr("Action"),
            self.tr("Status"),
            self.tr("Waiting"),
            self.tr("Sent"),
            self.tr("Failed"),
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = Column(index.column())
        status = describe_server(row.server, row.summary, row.progress, self._clock())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(row, column, status)
        if role == Qt.ItemDataRole.ToolTipRole and column is Column.STATUS:
            return status.text
        if role == Qt.ItemDataRole.ToolTipRole and column is Column.SERVER:
            return self.tr("Server key %1").replace("%1", row.key)
        if role == Qt.ItemDataRole.ForegroundRole and column is Column.STATUS:
            return STATUS_COLORS[status.kind]
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= Column.WAITING:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return self._role_data(row, role, status)

    def _role_data(self, row: _Row, role: int, status: ServerStatus) -> Any:
        if role == Role.SERVER_KEY:
            return row.key
        if role == Role.KIND:
            return status.kind
        if role == Role.USER_PAUSED:
            return row.summary is not None and PauseReason.USER in row.summary.paused
        if role == Role.SUMMARY:
            return row.summary
        if role == Role.PROGRESS:
            return row.progress
        return None

    def _display_text(self, row: _Row, column: Column, status: ServerStatus) -> str:
        summary = row.summary
        if column is Column.SERVER:
            name = row.server.name if row.server else self.tr("Removed server")
            return f"{name} ({row.key})"
        if column is Column.ACTION:
            return action_label(row.server.action if row.server else None)
        if column is Column.STATUS:
            return status.text.split("\n", 1)[0]
        if summary is None:
            return "0"
        if column is Column.WAITING:
            return str(summary.count(*_WAITING))
        if column is Column.SENT:
            return str(summary.count(*_DELIVERED))
        return str(summary.count(DeliveryState.FAILED))

    # Reading

    def keys(self) -> list[str]:
        """Return the server keys of the rows, in row order."""
        return [row.key for row in self._rows]

    def row_of(self, key: str) -> int | None:
        folded = key.upper()
        for number, row in enumerate(self._rows):
            if row.key.upper() == folded:
                return number
        return None

    # Changing

    def set_servers(self, servers: Iterable[Server]) -> None:
        """Show the storage servers of a server list, in its order."""
        self._servers = [server for server in servers if server.is_storage]
        self._rebuild()

    def set_summaries(self, summaries: Mapping[str, ServerSummary]) -> None:
        """Show the counts and errors of the latest snapshot."""
        self._summaries = summaries
        self._rebuild()

    def set_progress(self, progress: ServerProgress) -> None:
        """Keep a server's live progress; a finished run clears it.

        The row is repainted by :meth:`flush_progress`, so that a burst of
        reports, one per image, costs one repaint.
        """
        row = self.row_of(progress.server_key)
        if row is None:
            return
        live = None if progress.phase is ServerPhase.FINISHED else progress
        self._rows[row].progress = live
        self._changed_rows.add(row)

    def flush_progress(self) -> None:
        """Repaint the rows whose progress changed since the last flush."""
        for row in sorted(self._changed_rows):
            if row < len(self._rows):
                self._emit_row_changed(row)
        self._changed_rows.clear()

    def refresh_times(self) -> None:
        """Repaint the rows, whose retry times compare with the clock."""
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(Column) - 1)
            )

    def _rebuild(self) -> None:
        wanted = [server.key for server in self._servers]
        listed = {key.upper() for key in wanted}
        extra = [key for key in self._summaries if key.upper() not in listed]
        if wanted + extra != self.keys():
            progress = {row.key: row.progress for row in self._rows}
            self.beginResetModel()
            self._rows = [
                _Row(server.key, server, progress=progress.get(server.key))
                for server in self._servers
            ]
            self._rows.extend(_Row(key, None) for key in extra)
            self._fill_summaries()
            self._changed_rows.clear()
            self.endResetModel()
            return

        for row, server in zip(self._rows, self._servers, strict=False):
            row.server = server
        self._fill_summaries()
        self.refresh_times()

    def _fill_summaries(self) -> None:
        by_key = {key.upper(): summary for key, summary in self._summaries.items()}
        for row in self._rows:
            row.summary = by_key.get(row.key.upper())

    def _emit_row_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))
