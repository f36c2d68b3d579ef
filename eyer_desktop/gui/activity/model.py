"""The Activity table model: one row per delivery of the outbox.

The model does no I/O. The page loads snapshots in a worker
(:class:`~eyer_desktop.gui.activity.loader.ActivityLoader`) and hands them to
:meth:`ActivityModel.apply`. Both kinds of snapshot update changed rows in
place and insert new ones, and a full one also removes the rows it lacks. The
selection and the scroll position thus survive a refresh. Rows are kept in
delivery id order.
"""

from __future__ import annotations

import bisect
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from eyer_desktop.core.outbox import Delivery, DeliveryState
from eyer_desktop.gui.activity.labels import (
    delivery_state_label,
    exam_label,
    image_label,
    time_label,
)
from eyer_desktop.gui.activity.loader import ActivitySnapshot, ExamInfo
from eyer_desktop.gui.table_model import FlatTableModel

AnyIndex = QModelIndex | QPersistentModelIndex

_WAITING_STATES = (DeliveryState.QUEUED, DeliveryState.PAUSED)

# A full snapshot that lacks more rows than this resets the model, because
# removing rows one by one costs a signal each.
MAX_ROWS_REMOVED_IN_PLACE = 200


class Column(IntEnum):
    EXAM = 0
    IMAGE = 1
    SERVER = 2
    STATE = 3
    ATTEMPTS = 4
    NEXT_ATTEMPT = 5
    LAST_ERROR = 6


FIRST_CHANGING_COLUMN = Column.STATE
"""The columns from this one on can change for a delivery; those before it
cannot."""


class Role(IntEnum):
    """Custom data roles: raw values for the proxy, the delegate and tests."""

    DELIVERY = Qt.ItemDataRole.UserRole + 1
    """The core Delivery of the row."""
    DELIVERY_ID = Qt.ItemDataRole.UserRole + 2
    STATE = Qt.ItemDataRole.UserRole + 3
    """The DeliveryState."""
    SERVER_KEY = Qt.ItemDataRole.UserRole + 4
    EXAM_ID = Qt.ItemDataRole.UserRole + 5
    SORT_KEY = Qt.ItemDataRole.UserRole + 6
    SEARCH_TEXT = Qt.ItemDataRole.UserRole + 7
    """Patient name, server name and error text, folded for searching."""


_ANSWERED_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.TextAlignmentRole,
        *Role,
    }
)


def fold(text: str) -> str:
    """Return text in lower case without accents, for searching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


class ActivityModel(FlatTableModel):
    """The deliveries of the outbox.

    Args:
        server_name: Returns the name of a server key, for the Server column.
        clock: Current Unix time, for the Next attempt column.
    """

    def __init__(
        self,
        server_name: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._server_name = server_name or (lambda key: key)
        self._clock = clock
        self._rows: list[Delivery] = []
        self._ids: list[int] = []
        self._exams: Mapping[str, ExamInfo] = {}

    # Qt model interface

    COLUMN_COUNT = len(Column)

    def row_count(self) -> int:
        return len(self._rows)

    def column_titles(self) -> list[str]:
        return [
            self.tr("Exam"),
            self.tr("Image"),
            self.tr("Server"),
            self.tr("State"),
            self.tr("Attempts"),
            self.tr("Next attempt"),
            self.tr("Last error"),
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # A view requests many roles per cell and each call costs the GUI
        # thread the interpreter lock, so unused roles return at once.
        if role not in _ANSWERED_ROLES or not index.isValid():
            return None
        row = index.row()
        if not 0 <= row < len(self._rows):
            return None
        delivery = self._rows[row]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(delivery, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(delivery, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column is Column.ATTEMPTS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return self._role_data(delivery, column, role)

    def _role_data(self, delivery: Delivery, column: Column, role: int) -> Any:
        if role == Role.DELIVERY:
            return delivery
        if role == Role.DELIVERY_ID:
            return delivery.delivery_id
        if role == Role.STATE:
            return delivery.state
        if role == Role.SERVER_KEY:
            return delivery.server_key
        if role == Role.EXAM_ID:
            return delivery.exam_id
        if role == Role.SORT_KEY:
            return self._sort_key(delivery, column)
        if role == Role.SEARCH_TEXT:
            return self._search_text(delivery)
        return None

    def _display_text(self, delivery: Delivery, column: Column) -> str:
        info = self._exams.get(delivery.exam_id)
        if column is Column.EXAM:
            return exam_label(info, delivery.exam_id)
        if column is Column.IMAGE:
            if info is None or not info.found:
                return delivery.image_id[:8]
            return image_label(info, delivery.image_id)
        if column is Column.SERVER:
            return self._server_name(delivery.server_key)
        if column is Column.STATE:
            return delivery_state_label(delivery)
        if column is Column.ATTEMPTS:
            return str(delivery.attempts)
        if column is Column.NEXT_ATTEMPT:
            if delivery.state not in _WAITING_STATES:
                return ""
            return time_label(delivery.next_attempt_at, self._clock())
        return _first_line(delivery.last_error or "")

    def _tooltip(self, delivery: Delivery, column: Column) -> str | None:
        if column is Column.SERVER:
            return self.tr("Server key %1").replace("%1", delivery.server_key)
        if column is Column.EXAM:
            return self.tr("Exam id %1").replace("%1", delivery.exam_id)
        if column in (Column.LAST_ERROR, Column.STATE) and delivery.last_error:
            code = delivery.status_code
            prefix = "" if code is None else f"0x{code:04X}: "
            return prefix + delivery.last_error
        return None

    def _sort_key(self, delivery: Delivery, column: Column) -> Any:
        if column is Column.ATTEMPTS:
            return delivery.attempts
        if column is Column.NEXT_ATTEMPT:
            return delivery.next_attempt_at or 0.0
        if column is Column.EXAM:
            info = self._exams.get(delivery.exam_id)
            captured = info.captured_at.timestamp() if info and info.captured_at else 0
            return f"{captured:015.0f}{delivery.delivery_id:012d}"
        return self._display_text(delivery, column).casefold()

    def _search_text(self, delivery: Delivery) -> str:
        info = self._exams.get(delivery.exam_id)
        parts = [
            exam_label(info, delivery.exam_id),
            delivery.exam_id,
            self._server_name(delivery.server_key),
            delivery.server_key,
            delivery.last_error or "",
        ]
        return fold(" ".join(parts))

    # Reading

    def delivery_at(self, row: int) -> Delivery:
        return self._rows[row]

    def row_of(self, delivery_id: int) -> int | None:
        """Return the row of a delivery id, or None when it has no row."""
        position = bisect.bisect_left(self._ids, delivery_id)
        if position < len(self._ids) and self._ids[position] == delivery_id:
            return position
        return None

    def deliveries(self) -> list[Delivery]:
        """Return every delivery shown, in id order."""
        return list(self._rows)

    def counts(self) -> dict[str, dict[DeliveryState, int]]:
        """Return the number of rows in each state, per server key."""
        counts: dict[str, dict[DeliveryState, int]] = {}
        for delivery in self._rows:
            per_state = counts.setdefault(
                delivery.server_key, dict.fromkeys(DeliveryState, 0)
            )
            per_state[delivery.state] += 1
        return counts

    # Changing

    def apply(self, snapshot: ActivitySnapshot) -> None:
        """Show a snapshot: merge its changes, and drop rows a full one lacks.

        A full snapshot that removes many rows resets the model instead, which
        loses the selection; that happens only after old deliveries were
        purged.
        """
        relabelled = {
            exam_id
            for exam_id, info in snapshot.exams.items()
            if exam_id in self._exams and self._exams[exam_id] != info
        }
        self._exams = snapshot.exams
        self._relabel(relabelled)
        if not snapshot.full:
            self._merge(snapshot.deliveries)
            return

        incoming = {delivery.delivery_id for delivery in snapshot.deliveries}
        missing = [
            delivery_id for delivery_id in self._ids if delivery_id not in incoming
        ]
        if not self._rows or len(missing) > MAX_ROWS_REMOVED_IN_PLACE:
            self.beginResetModel()
            self._rows = sorted(snapshot.deliveries, key=lambda d: d.delivery_id)
            self._ids = [delivery.delivery_id for delivery in self._rows]
            self.endResetModel()
            return
        self.remove(missing)
        self._merge(snapshot.deliveries)

    def _relabel(self, exam_ids: set[str]) -> None:
        """Emit dataChanged for the rows of exams whose labels changed."""
        rows = [
            row
            for row, delivery in enumerate(self._rows)
            if delivery.exam_id in exam_ids
        ]
        if rows:
            self.dataChanged.emit(
                self.index(min(rows), 0), self.index(max(rows), len(Column) - 1)
            )

    def _merge(self, deliveries: Iterable[Delivery]) -> None:
        changed: list[int] = []
        new: list[Delivery] = []
        for delivery in deliveries:
            row = self.row_of(delivery.delivery_id)
            if row is None:
                new.append(delivery)
            elif self._rows[row] != delivery:
                self._rows[row] = delivery
                changed.append(row)
        if changed:
            # Exam, image and server never change for a delivery id. Leaving
            # them out of the signal spares the proxy a re-sort when the view
            # is sorted by one of them.
            self.dataChanged.emit(
                self.index(min(changed), FIRST_CHANGING_COLUMN),
                self.index(max(changed), len(Column) - 1),
            )
        self._insert(sorted(new, key=lambda d: d.delivery_id))

    def _insert(self, new: list[Delivery]) -> None:
        """Insert rows, as one block when they all come after the last row."""
        if not new:
            return
        if not self._ids or new[0].delivery_id > self._ids[-1]:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
            self._ids.extend(delivery.delivery_id for delivery in new)
            self.endInsertRows()
            return
        for delivery in new:
            row = bisect.bisect_left(self._ids, delivery.delivery_id)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.insert(row, delivery)
            self._ids.insert(row, delivery.delivery_id)
            self.endInsertRows()

    def remove(self, delivery_ids: Iterable[int]) -> None:
        """Remove the rows of deliveries that left the outbox."""
        for delivery_id in sorted(set(delivery_ids), reverse=True):
            row = self.row_of(delivery_id)
            if row is None:
                continue
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            del self._ids[row]
            self.endRemoveRows()

    def refresh_times(self) -> None:
        """Repaint the Next attempt column, whose "now" depends on the clock."""
        if self._rows:
            column = Column.NEXT_ATTEMPT
            self.dataChanged.emit(
                self.index(0, column),
                self.index(len(self._rows) - 1, column),
                [Qt.ItemDataRole.DisplayRole],
            )

    def refresh_server_names(self) -> None:
        """Repaint the Server column after servers were renamed."""
        if self._rows:
            column = Column.SERVER
            self.dataChanged.emit(
                self.index(0, column), self.index(len(self._rows) - 1, column)
            )


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]
