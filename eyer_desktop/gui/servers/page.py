"""The Servers page: the server list with add, edit, remove and test buttons.

It follows the camera's Synchronization > Servers screen: the action of each
server is chosen in the list itself, the key is filled in automatically, and
the primary cloud can be deactivated but not removed.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.errors import EyerError, SecretStoreError, ValidationError
from eyer_desktop.core.removal import unfinished_deliveries
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.server_settings import ServerKind
from eyer_desktop.core.server_test import ServerTestReport, test_server
from eyer_desktop.core.servers import Server, ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.servers.delegate import ActionDelegate
from eyer_desktop.gui.servers.editor import ServerEditor
from eyer_desktop.gui.servers.labels import (
    ACTION_COLORS,
    action_description,
    action_label,
    kind_label,
)
from eyer_desktop.gui.servers.model import Column, ServersModel
from eyer_desktop.gui.workers import Pools, Worker

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_MS = 8000


class ServersPage(QWidget):
    """The server list and its commands.

    Signals:
        status_message: A passing outcome for the status bar: text and timeout
            in milliseconds.
    """

    status_message = Signal(str, int)

    def __init__(
        self,
        workspace: Workspace,
        pools: Pools,
        secrets: SecretStore,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.pools = pools
        self.secrets = secrets
        self.editor: ServerEditor | None = None
        self.remove_box: QMessageBox | None = None

        self.model = ServersModel(workspace, self)
        self.model.change_failed.connect(self._show_error)
        self._build()
        self._update_buttons()

    # Layout

    def _build(self) -> None:
        title = QLabel(self.tr("<h2>Servers</h2>"), self)
        intro = QLabel(
            self.tr(
                "Where exams are sent and where the worklist is read. "
                "Click an action to change what a server receives."
            ),
            self,
        )
        intro.setWordWrap(True)

        self.view = QTableView(self)
        self.view.setObjectName("serversView")
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(Column.ACTION, ActionDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # One click on an action opens its list (see _clicked); opening on
        # CurrentChanged would pop the list up whenever the table takes focus.
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.view.clicked.connect(self._clicked)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in (
            (Column.ACTION, 150),
            (Column.NAME, 180),
            (Column.KEY, 80),
            (Column.KIND, 130),
            (Column.ADDRESS, 260),
        ):
            self.view.setColumnWidth(column, width)
        self.view.doubleClicked.connect(self._edit_at)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._update_buttons)
        self.model.rowsRemoved.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(self._build_buttons())
        layout.addWidget(self.view, 1)
        layout.addWidget(self._build_legend())

    def _build_legend(self) -> QLabel:
        """Return a label that explains each action, with its colour."""
        lines = [
            f"<span style='color:{ACTION_COLORS[action].name()}'>&#9679;</span> "
            f"<b>{html.escape(action_label(action))}</b>: "
            f"{html.escape(action_description(action))}"
            for action in ServerAction
        ]
        lines.append(
            html.escape(
                self.tr(
                    "Worklist servers receive no exams: they are queried for "
                    "scheduled patients unless they are Deactivated."
                )
            )
        )
        legend = QLabel("<br>".join(lines), self)
        legend.setObjectName("actionLegend")
        legend.setTextFormat(Qt.TextFormat.RichText)
        legend.setWordWrap(True)
        return legend

    def _build_buttons(self) -> QHBoxLayout:
        self.add_button = QPushButton(icon("add"), self.tr("Add Server"), self)
        self.add_button.setObjectName("addServerButton")
        self.add_button.setToolTip(self.tr("Choose the kind of server to add"))
        self.add_menu = QMenu(self.add_button)
        self.add_actions: dict[ServerKind, QAction] = {}
        for kind in ServerKind:
            action = self.add_menu.addAction(kind_label(kind) + "...")
            action.setData(kind.value)
            action.triggered.connect(lambda _checked=False, kind=kind: self.add(kind))
            self.add_actions[kind] = action
        self.add_button.setMenu(self.add_menu)

        self.edit_button = QPushButton(icon("edit"), self.tr("Edit..."), self)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button = QPushButton(icon("remove"), self.tr("Remove..."), self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.test_button = QPushButton(
            icon("connection-test"), self.tr("Test Connection"), self
        )
        self.test_button.clicked.connect(self.test_selected)

        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.edit_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(self.test_button)
        return row

    # Selection

    def selected_server(self) -> Server | None:
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.server_at(rows[0].row())

    def select_key(self, key: str) -> None:
        row = self.model.row_of(key)
        if row is not None:
            self.view.selectRow(row)

    def _update_buttons(self) -> None:
        server = self.selected_server()
        self.edit_button.setEnabled(server is not None)
        self.test_button.setEnabled(server is not None and server.is_configured)

        if server is not None and server.is_primary_cloud:
            self.remove_button.setEnabled(False)
            self.remove_button.setToolTip(
                self.tr(
                    "%s is the primary cloud: it cannot be removed. Set its "
                    "action to Deactivated to stop sending to it."
                )
                % server.name
            )
        else:
            self.remove_button.setEnabled(server is not None)
            self.remove_button.setToolTip(
                self.tr("Remove the selected server") if server else ""
            )
        if server is not None and not server.is_configured:
            self.test_button.setToolTip(self.tr("Set the base URL first"))
        else:
            self.test_button.setToolTip(
                self.tr("Check that the selected server answers")
            )

    # Commands

    def add(self, kind: ServerKind) -> ServerEditor:
        """Open the editor for a new server of ``kind``."""
        editor = ServerEditor(
            self.model,
            self.secrets,
            self.pools,
            kind=kind,
            default_ae_title=self.workspace.settings.default_ae_title,
            parent=self,
        )
        return self._open_editor(editor)

    def edit_selected(self) -> ServerEditor | None:
        server = self.selected_server()
        if server is None:
            return None
        editor = ServerEditor(
            self.model, self.secrets, self.pools, server=server, parent=self
        )
        return self._open_editor(editor)

    def _clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() == Column.ACTION:
            self.view.edit(index)

    def _edit_at(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() != Column.ACTION:
            self.edit_selected()

    def _open_editor(self, editor: ServerEditor) -> ServerEditor:
        self.editor = editor
        editor.accepted.connect(lambda: self._editor_saved(editor))
        editor.finished.connect(lambda _result: self._forget_editor(editor))
        editor.open()
        return editor

    def _forget_editor(self, editor: ServerEditor) -> None:
        if self.editor is editor:
            self.editor = None
        editor.deleteLater()

    def _editor_saved(self, editor: ServerEditor) -> None:
        values = editor.result_values
        key = editor.server_key()
        self.select_key(key)
        if values is not None:
            self._show_status(self.tr("Saved server %s (%s)") % (values.name, key))

    def remove_selected(self) -> QMessageBox | None:
        """Ask to confirm the removal of the selected server."""
        server = self.selected_server()
        if server is None or server.is_primary_cloud:
            return None

        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Remove server"))
        box.setText(self.tr("Remove the server %s (%s)?") % (server.name, server.key))
        details = self.tr(
            "It will receive nothing more. Its key is never given to another "
            "server, and its password or token is deleted from the keyring."
        )
        pending = len(
            unfinished_deliveries(self.workspace.outbox, server_key=server.key)
        )
        if pending:
            details += " " + (
                self.tr("Deliveries still waiting for it, which will be cancelled: %s")
                % pending
            )
        box.setInformativeText(details)
        remove = box.addButton(
            self.tr("Remove"), QMessageBox.ButtonRole.DestructiveRole
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda button: (
                self._remove_confirmed(server.key) if button is remove else None
            )
        )
        self.remove_box = box
        box.open()
        return box

    def _remove_confirmed(self, key: str) -> None:
        server = self.model.remove_server(key)
        if server is None:
            return
        if server.kind is ServerKind.DICOMWEB:
            try:
                self.secrets.delete(server.key)
            except (SecretStoreError, ValidationError) as error:
                self._show_error(
                    self.tr("Removed %s, but its secret was not deleted: %s")
                    % (server.key, error)
                )
                return
        self._show_status(self.tr("Removed server %s (%s)") % (server.name, server.key))

    def test_selected(self) -> Worker | None:
        """Run the connection test of the selected server in a worker."""
        server = self.selected_server()
        if server is None:
            return None
        worker = Worker(test_server, server, self.secrets, name=f"test {server.key}")
        worker.signals.finished.connect(self._test_finished)
        worker.signals.failed.connect(lambda error: self._test_failed(server, error))
        self.model.set_testing(server.key, True)
        self._show_status(self.tr("Testing %s...") % server.key)
        self.pools.general.start(worker)
        return worker

    def _test_finished(self, report: object) -> None:
        if not isinstance(report, ServerTestReport):
            return
        self.model.set_test_report(report)
        if report.ok:
            self._show_status(self.tr("%s: all checks passed") % report.server_key)
        else:
            self._show_error(f"{report.server_key}: {report.summary()}")

    def _test_failed(self, server: Server, error: object) -> None:
        self.model.set_testing(server.key, False)
        if not isinstance(error, EyerError):
            logger.error("Connection test of %s failed: %r", server.key, error)
        self._show_error(f"{server.key}: {error}")

    # Messages

    def _show_status(self, text: str) -> None:
        self.status_message.emit(text, STATUS_TIMEOUT_MS)

    def _show_error(self, text: str) -> None:
        self.status_message.emit(text, 2 * STATUS_TIMEOUT_MS)
