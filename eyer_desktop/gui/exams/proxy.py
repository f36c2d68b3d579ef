"""Search and sort of the exam list.

The search matches every word typed, in any order, against the patient name,
the clinic document and the exam type, ignoring case and accents, so
"goncalves cpf" finds "Gonçalves" with a CPF document. Sorting compares the
raw values of :attr:`Role.SORT_KEY` in Qt's own comparison, so dates sort by
time and counts by number, not by their text. Each column's keys share one
type, which that comparison requires.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
)

from eyer_desktop.gui.exams.model import Role, fold

AnyIndex = QModelIndex | QPersistentModelIndex


class ExamFilterProxy(QSortFilterProxyModel):
    """Filters the exam list by search words and sorts it by raw values."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: tuple[str, ...] = ()
        self.setSortRole(Role.SORT_KEY)
        self.setDynamicSortFilter(True)

    @property
    def search_words(self) -> tuple[str, ...]:
        return self._words

    def set_search_text(self, text: str) -> None:
        """Show only exams that match every word of ``text``."""
        words = tuple(fold(text).split())
        if words == self._words:
            return
        self.beginFilterChange()
        self._words = words
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:  # noqa: N802
        if not self._words:
            return True
        model = self.sourceModel()
        text = model.index(source_row, 0, source_parent).data(Role.SEARCH_TEXT) or ""
        return all(word in text for word in self._words)
