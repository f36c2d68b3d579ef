"""The worklist results table: one row per scheduled procedure step.

:class:`WorklistModel` shows the items of one query; :class:`WorklistFilterProxy`
narrows them by the words typed in the name field, ignoring case and
accents, as the user types.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from eyer_desktop.core.exams import Sex
from eyer_desktop.core.library import patient_display_name
from eyer_desktop.core.net.worklist import WorklistItem
from eyer_desktop.gui.table_model import FlatTableModel

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    SCHEDULED = 0
    PATIENT = 1
    PATIENT_ID = 2
    BIRTH_DATE = 3
    SEX = 4
    ACCESSION = 5
    PROCEDURE = 6


class Role(IntEnum):
    """Custom data roles: raw values for the proxy, the dialog and tests."""

    ITEM = Qt.ItemDataRole.UserRole + 1
    """The WorklistItem of the row."""
    SORT_KEY = Qt.ItemDataRole.UserRole + 2
    SEARCH_TEXT = Qt.ItemDataRole.UserRole + 3
    """Patient name and ID, folded for searching."""


def fold(text: str) -> str:
    """Return text in lower case without accents, for searching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _scheduled_text(item: WorklistItem) -> str:
    date = item.scheduled_date.isoformat() if item.scheduled_date else ""
    time = item.scheduled_time.strftime("%H:%M") if item.scheduled_time else ""
    return f"{date} {time}".strip()


def _scheduled_sort_key(item: WorklistItem) -> str:
    date = item.scheduled_date or dt.date.min
    time = item.scheduled_time or dt.time.min
    return f"{date.isoformat()}T{time.isoformat()}"


class WorklistModel(FlatTableModel):
    """The items a worklist query returned."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[WorklistItem] = []

    COLUMN_COUNT = len(Column)

    def row_count(self) -> int:
        return len(self._items)

    def column_titles(self) -> list[str]:
        return [
            self.tr("Scheduled"),
            self.tr("Patient"),
            self.tr("Patient ID"),
            self.tr("Birth date"),
            self.tr("Sex"),
            self.tr("Accession"),
            self.tr("Procedure"),
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(item, column)
        if role == Qt.ItemDataRole.ToolTipRole and column is Column.PROCEDURE:
            return item.scheduled_procedure_step_description or None
        if role == Role.ITEM:
            return item
        if role == Role.SORT_KEY:
            if column is Column.SCHEDULED:
                return _scheduled_sort_key(item)
            return fold(self._display_text(item, column))
        if role == Role.SEARCH_TEXT:
            name = patient_display_name(item.patient_name)
            return fold(f"{name} {item.patient_dicom_name} {item.patient_id}")
        return None

    def _display_text(self, item: WorklistItem, column: Column) -> str:
        if column is Column.SCHEDULED:
            return _scheduled_text(item)
        if column is Column.PATIENT:
            return patient_display_name(item.patient_name)
        if column is Column.PATIENT_ID:
            return item.patient_id
        if column is Column.BIRTH_DATE:
            return item.birth_date.isoformat() if item.birth_date else ""
        if column is Column.SEX:
            return self._sex_text(item.sex)
        if column is Column.ACCESSION:
            return item.accession_number
        return item.requested_procedure_description

    def _sex_text(self, sex: Sex | None) -> str:
        if sex is None:
            return ""
        labels = {
            Sex.MALE: self.tr("Male"),
            Sex.FEMALE: self.tr("Female"),
            Sex.OTHER: self.tr("Other"),
        }
        return labels.get(sex, sex.value)

    def item_at(self, row: int) -> WorklistItem:
        return self._items[row]

    def set_items(self, items: Sequence[WorklistItem]) -> None:
        """Show the items of a new query, replacing the previous ones."""
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()


class WorklistFilterProxy(QSortFilterProxyModel):
    """Shows the items whose patient name or ID contains every typed word."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.setSortRole(Role.SORT_KEY)

    def set_search_text(self, text: str) -> None:
        self.beginFilterChange()
        self._words = fold(text.replace("*", " ").replace("?", " ")).split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(  # noqa: N802
        self, source_row: int, source_parent: AnyIndex
    ) -> bool:
        if not self._words:
            return True
        model = self.sourceModel()
        text = str(
            model.data(model.index(source_row, 0, source_parent), Role.SEARCH_TEXT)
        )
        return all(word in text for word in self._words)
