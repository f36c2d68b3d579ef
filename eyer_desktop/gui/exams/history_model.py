"""Models of one exam's deliveries: a summary per server and the event history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush

from eyer_desktop.core.exams import Exam, Laterality
from eyer_desktop.core.outbox import (
    STEREO_ITEM_PREFIX,
    Delivery,
    DeliveryState,
    EventKind,
    HistoryEvent,
)
from eyer_desktop.gui.exams.labels import eye_badge
from eyer_desktop.gui.exams.status import (
    CHIP_COLORS,
    ChipState,
    ServerStatus,
    chip_label,
    server_status,
)
from eyer_desktop.gui.table_model import FlatTableModel

AnyIndex = QModelIndex | QPersistentModelIndex

_FAILED_EVENTS = frozenset({EventKind.FAILED, EventKind.RETRY_SCHEDULED})


class HistoryRole(IntEnum):
    """Custom roles of both models."""

    RAW = Qt.ItemDataRole.UserRole + 1
    """The ServerDelivery or HistoryEvent of the row."""
    SORT_KEY = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class ServerDelivery:
    """The deliveries of one exam to one server, summarised.

    Attributes:
        last_error: The most recent error or warning text, with its status
            code, or an empty string.
    """

    status: ServerStatus
    last_error: str
    updated_at: float


def summarize_deliveries(
    deliveries: Iterable[Delivery], server_name: Callable[[str], str]
) -> list[ServerDelivery]:
    """Group an exam's deliveries by server, in server key order."""
    by_server: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_server.setdefault(delivery.server_key, []).append(delivery)

    summaries = []
    for key in sorted(by_server):
        group = by_server[key]
        counts = dict.fromkeys(DeliveryState, 0)
        for delivery in group:
            counts[delivery.state] += 1
        status = server_status(key, server_name(key), counts)
        if status is None:
            continue
        latest = max(group, key=lambda delivery: delivery.updated_at)
        summaries.append(ServerDelivery(status, _last_error(group), latest.updated_at))
    return summaries


def _last_error(group: Sequence[Delivery]) -> str:
    with_error = [delivery for delivery in group if delivery.last_error]
    if not with_error:
        return ""
    latest = max(with_error, key=lambda delivery: delivery.updated_at)
    text = latest.last_error or ""
    if latest.status_code is not None:
        text = f"{text} (status 0x{latest.status_code:04X})"
    return text


def time_text(timestamp: float) -> str:
    """Return a Unix time as local date and time, to the second."""
    return (
        dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    )


class ServerColumn(IntEnum):
    SERVER = 0
    STATUS = 1
    DELIVERED = 2
    LAST_ERROR = 3


class ServerDeliveryModel(FlatTableModel):
    """One row per server that an exam was queued for."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ServerDelivery] = []

    def set_rows(self, rows: Sequence[ServerDelivery]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    COLUMN_COUNT = len(ServerColumn)

    def row_count(self) -> int:
        return len(self._rows)

    def column_titles(self) -> list[str]:
        return [
            self.tr("Server"),
            self.tr("Status"),
            self.tr("Delivered"),
            self.tr("Last error"),
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = ServerColumn(index.column())
        status = row.status
        if role == HistoryRole.RAW:
            return row
        if role in (Qt.ItemDataRole.DisplayRole, HistoryRole.SORT_KEY):
            values = {
                ServerColumn.SERVER: _server_text(status),
                ServerColumn.STATUS: chip_label(status.state),
                ServerColumn.DELIVERED: self.tr("%1 of %2")
                .replace("%1", str(status.done))
                .replace("%2", str(status.total)),
                ServerColumn.LAST_ERROR: row.last_error,
            }
            return values[column]
        if role == Qt.ItemDataRole.ToolTipRole and column is ServerColumn.LAST_ERROR:
            return row.last_error or None
        if role == Qt.ItemDataRole.ForegroundRole and column is ServerColumn.STATUS:
            return QBrush(CHIP_COLORS[status.state][1])
        return None


class EventColumn(IntEnum):
    TIME = 0
    SERVER = 1
    IMAGE = 2
    EVENT = 3
    DETAIL = 4


def event_label(kind: EventKind) -> str:
    """Return the translated name of a history event."""

    def tr(text: str) -> str:
        return QCoreApplication.translate("HistoryEvent", text)

    labels = {
        EventKind.QUEUED: tr("queued"),
        EventKind.RESEND: tr("queued again to resend"),
        EventKind.SENDING: tr("sending"),
        EventKind.SENT: tr("sent"),
        EventKind.WARNING: tr("sent with a warning"),
        EventKind.RETRY_SCHEDULED: tr("failed, will retry"),
        EventKind.FAILED: tr("failed"),
        EventKind.RETRY_REQUESTED: tr("retry requested"),
        EventKind.CANCELLED: tr("cancelled"),
        EventKind.RECOVERED: tr("queued again after an interruption"),
    }
    return labels[kind]


class DeliveryHistoryModel(FlatTableModel):
    """The delivery events of one exam, newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._events: list[HistoryEvent] = []
        self._image_names: dict[str, str] = {}
        self._server_name: Callable[[str], str] = lambda key: key

    def set_events(
        self,
        events: Sequence[HistoryEvent],
        exam: Exam | None,
        server_name: Callable[[str], str],
    ) -> None:
        """Show the events of an exam, naming images by eye and position."""
        self.beginResetModel()
        self._events = sorted(events, key=lambda event: event.event_id, reverse=True)
        self._image_names = _image_names(exam)
        self._server_name = server_name
        self.endResetModel()

    COLUMN_COUNT = len(EventColumn)

    def row_count(self) -> int:
        return len(self._events)

    def column_titles(self) -> list[str]:
        return [
            self.tr("Time"),
            self.tr("Server"),
            self.tr("Image"),
            self.tr("Event"),
            self.tr("Detail"),
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._events):
            return None
        event = self._events[index.row()]
        column = EventColumn(index.column())
        if role == HistoryRole.RAW:
            return event
        if role == HistoryRole.SORT_KEY:
            return (
                event.event_id
                if column is EventColumn.TIME
                else self._text(event, column)
            )
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(event, column)
        if role == Qt.ItemDataRole.ToolTipRole and column is EventColumn.DETAIL:
            return event.detail or None
        if role == Qt.ItemDataRole.ForegroundRole and event.kind in _FAILED_EVENTS:
            return QBrush(CHIP_COLORS[ChipState.FAILED][1])
        return None

    def _text(self, event: HistoryEvent, column: EventColumn) -> str:
        if column is EventColumn.TIME:
            return time_text(event.at)
        if column is EventColumn.SERVER:
            return self._server_name(event.server_key)
        if column is EventColumn.IMAGE:
            return self._image_names.get(event.image_id, event.image_id[:8])
        if column is EventColumn.EVENT:
            return event_label(event.kind)
        detail = event.detail
        if event.status_code is not None:
            detail = f"{detail} (status 0x{event.status_code:04X})".strip()
        return detail


def _server_text(status: ServerStatus) -> str:
    if status.server_name.casefold() == status.server_key.casefold():
        return status.server_key
    return f"{status.server_name} ({status.server_key})"


def _image_names(exam: Exam | None) -> dict[str, str]:
    """Name each image by its eye and position, such as ``OD 1``.

    The Stereometric Relationship instance of each eye is named too, such
    as ``OD stereo pairs``.
    """
    names = {
        f"{STEREO_ITEM_PREFIX}{eye.value}": QCoreApplication.translate(
            "HistoryEvent", "%s stereo pairs"
        )
        % eye_badge(eye)
        for eye in Laterality
    }
    if exam is None:
        return names
    for number, image in enumerate(exam.images, start=1):
        names[image.image_id] = f"{eye_badge(image.laterality)} {number}"
    return names
