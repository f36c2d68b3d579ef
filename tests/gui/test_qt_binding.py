"""The Qt binding keeps Python's reference counts right across model calls.

PySide6 6.12.0 released one reference to None each time a Python model's
data() returned None to Qt. Every model returns None for the roles it does not
serve, so after some thousands of calls the interpreter aborted with
"deallocating None". pyproject.toml keeps that release out; this test fails
on any binding with the same fault.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QApplication

CALLS = 2000
_ROOT = QModelIndex()


class _EmptyModel(QAbstractTableModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 1

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        return None


def test_model_returning_none_keeps_none_alive(qapp: QApplication) -> None:
    model = _EmptyModel()
    index = model.index(0, 0)
    before = sys.getrefcount(None)

    for _ in range(CALLS):
        index.data(Qt.ItemDataRole.UserRole)

    assert sys.getrefcount(None) >= before - CALLS // 10
