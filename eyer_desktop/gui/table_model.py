"""The parts every flat table model of the application shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

AnyIndex = QModelIndex | QPersistentModelIndex

_ROOT = QModelIndex()


class FlatTableModel(QAbstractTableModel):
    """A table model with no tree below its rows and a title per column.

    Subclasses set ``COLUMN_COUNT`` and implement ``row_count``,
    ``column_titles`` and ``data``. Cells are enabled and selectable.
    """

    COLUMN_COUNT: ClassVar[int]

    def row_count(self) -> int:
        """Return the number of rows."""
        raise NotImplementedError

    def column_titles(self) -> Sequence[str]:
        """Return the translated header titles, one per column, in order."""
        raise NotImplementedError

    def rowCount(self, parent: AnyIndex = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.row_count()

    def columnCount(self, parent: AnyIndex = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.COLUMN_COUNT

    def headerData(  # noqa: N802
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if (
            orientation is not Qt.Orientation.Horizontal
            or role != Qt.ItemDataRole.DisplayRole
            or not 0 <= section < self.COLUMN_COUNT
        ):
            return None
        return self.column_titles()[section]

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
