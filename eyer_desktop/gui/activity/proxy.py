"""Filtering and sorting of the Activity table by server, state and text."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
)

from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.gui.activity.model import Role, fold

AnyIndex = QModelIndex | QPersistentModelIndex


class StateFilter(StrEnum):
    """The choices of the Activity page's state filter."""

    ALL = "all"
    UNFINISHED = "unfinished"
    FAILED = "failed"
    WAITING = "waiting"
    SENT = "sent"
    CANCELLED = "cancelled"

    @property
    def states(self) -> frozenset[DeliveryState] | None:
        """The delivery states shown, or None for all of them."""
        return _FILTER_STATES[self]


_FILTER_STATES: dict[StateFilter, frozenset[DeliveryState] | None] = {
    StateFilter.ALL: None,
    StateFilter.UNFINISHED: frozenset(
        {
            DeliveryState.QUEUED,
            DeliveryState.SENDING,
            DeliveryState.PAUSED,
            DeliveryState.FAILED,
        }
    ),
    StateFilter.FAILED: frozenset({DeliveryState.FAILED}),
    StateFilter.WAITING: frozenset(
        {DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.PAUSED}
    ),
    StateFilter.SENT: frozenset({DeliveryState.SENT, DeliveryState.WARNING}),
    StateFilter.CANCELLED: frozenset({DeliveryState.CANCELLED}),
}


class ActivityFilterProxy(QSortFilterProxyModel):
    """Shows the deliveries of one server, in some states, matching a text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server_key: str | None = None
        self._states: Collection[DeliveryState] | None = None
        self._words: list[str] = []
        self.setSortRole(Role.SORT_KEY)
        self.setDynamicSortFilter(True)

    def set_server(self, server_key: str | None) -> None:
        """Show one server's deliveries, or every server's with None."""
        self.beginFilterChange()
        self._server_key = server_key.upper() if server_key else None
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_states(self, states: Collection[DeliveryState] | None) -> None:
        """Show deliveries in these states, or in any state with None."""
        self.beginFilterChange()
        self._states = None if states is None else frozenset(states)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_search_text(self, text: str) -> None:
        """Show deliveries whose exam, server or error contains every word."""
        self.beginFilterChange()
        self._words = fold(text).split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(  # noqa: N802
        self, source_row: int, source_parent: AnyIndex
    ) -> bool:
        model = self.sourceModel()
        index = model.index(source_row, 0, source_parent)
        if self._server_key is not None:
            key = str(model.data(index, Role.SERVER_KEY)).upper()
            if key != self._server_key:
                return False
        if (
            self._states is not None
            and model.data(index, Role.STATE) not in self._states
        ):
            return False
        if self._words:
            text = str(model.data(index, Role.SEARCH_TEXT))
            return all(word in text for word in self._words)
        return True
