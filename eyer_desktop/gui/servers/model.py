"""Table model over the workspace's server list.

Each change goes through the core's :class:`ServerList` rules and is saved to
the servers file before the table shows it. The change is first applied to a
copy of the list, and the copy is saved. So a rejected value or a failed write
leaves both the file and the workspace's list as they were.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from eyer_desktop.core import servers as core_servers
from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.removal import unfinished_deliveries
from eyer_desktop.core.server_settings import (
    DicomSettings,
    DicomWebSettings,
    ServerSettings,
)
from eyer_desktop.core.server_test import ServerTestReport
from eyer_desktop.core.servers import Server, ServerAction, ServerList
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.servers.labels import (
    action_description,
    action_label,
    kind_label,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    ACTION = 0
    NAME = 1
    KEY = 2
    KIND = 3
    ADDRESS = 4
    LAST_TEST = 5


class ServerRole(IntEnum):
    """Custom roles of :class:`ServersModel`, the same for every column."""

    SERVER = Qt.ItemDataRole.UserRole + 1
    """The raw :class:`Server`."""
    ACTION = Qt.ItemDataRole.UserRole + 2
    """The server's :class:`ServerAction`; Qt hands it back as a plain str."""
    KEY = Qt.ItemDataRole.UserRole + 3
    """The server key, e.g. PAC001."""
    TEST_REPORT = Qt.ItemDataRole.UserRole + 4
    """The last :class:`ServerTestReport` of this session, or None."""
    TESTING = Qt.ItemDataRole.UserRole + 5
    """True while a connection test of the server runs."""


class ServersModel(QAbstractTableModel):
    """The servers of a workspace, primary cloud first.

    Signals:
        change_failed: A change was rejected or could not be saved; carries
            the core's message, which names the value and the fix.
    """

    change_failed = Signal(str)

    def __init__(self, workspace: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._rows: list[Server] = list(workspace.servers)
        self._reports: dict[str, ServerTestReport] = {}
        self._testing: set[str] = set()

    # Queries

    @property
    def servers(self) -> ServerList:
        return self._workspace.servers

    def server_at(self, row: int) -> Server:
        return self._rows[row]

    def row_of(self, key: str) -> int | None:
        """Return the row of the server whose key is ``key``, ignoring case."""
        wanted = key.upper()
        for row, server in enumerate(self._rows):
            if server.key.upper() == wanted:
                return row
        return None

    # Qt model interface

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(Column)

    def headerData(  # noqa: N802 (Qt override)
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation is not Qt.Orientation.Horizontal or not 0 <= section < len(
            Column
        ):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._header_text(Column(section))
        if role == Qt.ItemDataRole.ToolTipRole and section == Column.KEY:
            return self.tr("Generated from the name; identifies the server in logs")
        return None

    def _header_text(self, column: Column) -> str:
        texts = {
            Column.ACTION: self.tr("Action"),
            Column.NAME: self.tr("Name"),
            Column.KEY: self.tr("Key"),
            Column.KIND: self.tr("Kind"),
            Column.ADDRESS: self.tr("Address"),
            Column.LAST_TEST: self.tr("Last test"),
        }
        return texts[column]

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == Column.ACTION:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, _VALID_CHECK):
            return None
        server = self._rows[index.row()]
        column = Column(index.column())

        if role == ServerRole.SERVER:
            return server
        if role == ServerRole.ACTION:
            return server.action
        if role == ServerRole.KEY:
            return server.key
        if role == ServerRole.TEST_REPORT:
            return self._reports.get(server.key.upper())
        if role == ServerRole.TESTING:
            return server.key.upper() in self._testing
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._display(server, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(server, column)
        if role == Qt.ItemDataRole.DecorationRole and column == Column.LAST_TEST:
            return self._test_icon(server)
        return None

    def setData(  # noqa: N802 (Qt override)
        self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        if not self.checkIndex(index, _VALID_CHECK):
            return False
        if index.column() != Column.ACTION or role not in (
            Qt.ItemDataRole.EditRole,
            ServerRole.ACTION,
        ):
            return False
        server = self._rows[index.row()]
        if value == server.action:
            return True
        return self.set_action(server.key, value) is not None

    # Display

    def _display(self, server: Server, column: Column) -> str:
        if column == Column.ACTION:
            return action_label(server.action)
        if column == Column.NAME:
            return server.name
        if column == Column.KEY:
            return server.key
        if column == Column.KIND:
            return kind_label(server.kind)
        if column == Column.ADDRESS:
            return self._address(server)
        return self._test_text(server)

    def _address(self, server: Server) -> str:
        settings = server.settings
        if isinstance(settings, DicomWebSettings):
            if settings.base_url is None:
                return self.tr("Not configured: set the base URL")
            return settings.base_url
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        tls = self.tr(", TLS") if settings.tls.enabled else ""
        return f"{settings.called_ae} @ {host}:{settings.port}{tls}"

    def _test_text(self, server: Server) -> str:
        if server.key.upper() in self._testing:
            return self.tr("Testing...")
        report = self._reports.get(server.key.upper())
        if report is None:
            return ""
        if report.ok:
            return self.tr("Passed")
        return report.summary()

    def _test_icon(self, server: Server) -> Any:
        if server.key.upper() in self._testing:
            return icon("pending")
        report = self._reports.get(server.key.upper())
        if report is None:
            return None
        return icon("ok" if report.ok else "failed")

    def _tooltip(self, server: Server, column: Column) -> str | None:
        if column == Column.ACTION:
            return action_description(server.action)
        if column == Column.NAME and server.is_primary_cloud:
            return self.tr(
                "The primary cloud: always listed first. It can be deactivated "
                "but not removed."
            )
        if column == Column.KEY:
            return self.tr("Generated from the name when the server was added")
        if column == Column.LAST_TEST:
            report = self._reports.get(server.key.upper())
            if report is None:
                return None
            return "\n".join(
                f"{'OK' if step.ok else 'FAILED'}  {step.name}: {step.detail}"
                for step in report.steps
            )
        if column == Column.ADDRESS and isinstance(server.settings, DicomSettings):
            return self.tr("Server AET @ IP or host name : port")
        return None

    # Changes

    def add_server(
        self, name: str, action: ServerAction | str, settings: ServerSettings
    ) -> Server | None:
        """Add and save a server; return it, or None when it was rejected."""
        server = self._apply(lambda servers: servers.add(name, action, settings))
        if server is None:
            return None
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(server)
        self.endInsertRows()
        return server

    def update_server(
        self,
        key: str,
        *,
        name: str | None = None,
        action: ServerAction | str | None = None,
        settings: ServerSettings | None = None,
    ) -> Server | None:
        """Change and save a server; return it, or None when it was rejected."""

        def edit(servers: ServerList) -> Server:
            return servers.edit(key, name=name, action=action, settings=settings)

        server = self._apply(edit)
        if server is not None:
            self._replace_row(server)
        return server

    def set_action(self, key: str, action: ServerAction | str) -> Server | None:
        """Change and save a server's action; return it, or None when rejected."""
        server = self._apply(lambda servers: servers.set_action(key, action))
        if server is not None:
            self._replace_row(server)
        return server

    def remove_server(self, key: str) -> Server | None:
        """Remove a server and save; return it, or None when it was rejected.

        Its unfinished deliveries are cancelled, since no server will take them
        (the confirmation the user answered says how many). The caller deletes
        the server's keyring secret.
        """
        server = self._apply(lambda servers: servers.remove(key))
        if server is None:
            return None
        outbox = self._workspace.outbox
        pending = unfinished_deliveries(outbox, server_key=server.key)
        outbox.cancel(delivery.delivery_id for delivery in pending)
        row = self.row_of(server.key)
        if row is not None:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
        self._reports.pop(server.key.upper(), None)
        self._testing.discard(server.key.upper())
        return server

    def reload(self) -> None:
        """Show the workspace's server list again, e.g. after it changed elsewhere."""
        self.beginResetModel()
        self._rows = list(self._workspace.servers)
        self.endResetModel()

    def set_testing(self, key: str, testing: bool) -> None:
        """Mark a server's connection test as running or not."""
        if testing:
            self._testing.add(key.upper())
        else:
            self._testing.discard(key.upper())
        self._emit_test_changed(key)

    def set_test_report(self, report: ServerTestReport) -> None:
        """Show the result of a server's connection test."""
        self._testing.discard(report.server_key.upper())
        self._reports[report.server_key.upper()] = report
        self._emit_test_changed(report.server_key)

    def _emit_test_changed(self, key: str) -> None:
        row = self.row_of(key)
        if row is not None:
            cell = self.index(row, Column.LAST_TEST)
            self.dataChanged.emit(cell, cell)

    def _replace_row(self, server: Server) -> None:
        row = self.row_of(server.key)
        if row is None:
            return
        self._rows[row] = server
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def _apply(self, change: Callable[[ServerList], T]) -> T | None:
        """Apply ``change`` to a copy, save the copy, then apply it to the list.

        Returns:
            What ``change`` returned on the workspace's list, or None when the
            copy rejected the change or could not be saved; then
            ``change_failed`` carries the reason.
        """
        servers = self._workspace.servers
        trial = ServerList.from_json(servers.to_json())
        try:
            with _quiet_servers_log():
                change(trial)
            trial.save(self._workspace.paths.servers_file)
        except (ValidationError, ConfigError) as error:
            logger.warning("Server list change rejected: %s", error)
            self.change_failed.emit(str(error))
            return None
        # The copy accepted the change, and ServerList's rules and key
        # generation depend only on the servers, so the workspace's list gets
        # the same result and matches the file just written.
        return change(servers)


_VALID_CHECK = QAbstractTableModel.CheckIndexOption.IndexIsValid


class _DropCurrentThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self._thread


@contextlib.contextmanager
def _quiet_servers_log() -> Iterator[None]:
    """Drop this thread's server list log records, so a change is logged once."""
    quiet = _DropCurrentThread()
    core_logger = logging.getLogger(core_servers.__name__)
    core_logger.addFilter(quiet)
    try:
        yield
    finally:
        core_logger.removeFilter(quiet)
