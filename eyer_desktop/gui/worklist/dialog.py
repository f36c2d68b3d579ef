"""The worklist dialog: query a worklist server and import for a chosen entry.

The query (C-FIND) runs on the server's lane, so the window stays responsive
while a slow server responds, and a result that arrives after a newer query
started is dropped. The name field narrows the results as the user types,
ignoring case and accents, because servers match names differently: dcmtk's
wlmscpfs, for one, is case-sensitive and compares bytes.
"""

from __future__ import annotations

import datetime as dt
import logging

from PySide6.QtCore import QDate, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.net.worklist import WorklistItem, WorklistQuery, query_worklist
from eyer_desktop.core.sending import dicom_endpoint
from eyer_desktop.core.server_settings import DicomWorklistSettings
from eyer_desktop.core.servers import Server, ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.workers import Pools, Worker, WorkerCancelledError
from eyer_desktop.gui.worklist.model import (
    Column,
    Role,
    WorklistFilterProxy,
    WorklistModel,
)

logger = logging.getLogger(__name__)

ERROR_STYLE = "color: #a4262c;"


def worklist_servers(workspace: Workspace) -> list[Server]:
    """Return the worklist servers, active ones first, in list order."""
    servers = [
        server
        for server in workspace.servers
        if isinstance(server.settings, DicomWorklistSettings)
    ]
    return sorted(servers, key=lambda s: s.action is ServerAction.DEACTIVATED)


class WorklistDialog(QDialog):
    """Finds a scheduled patient on a worklist server.

    Signals:
        item_chosen: The user chose an entry to import images for; carries
            the WorklistItem.
    """

    item_chosen = Signal(object)

    def __init__(
        self, workspace: Workspace, pools: Pools, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Worklist"))
        self.setWindowIcon(icon("worklist"))
        self.workspace = workspace
        self.pools = pools
        self.model = WorklistModel(self)
        self.proxy = WorklistFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._query_number = 0
        self._running: Worker | None = None

        self._build()
        self._connect()
        self._fill_servers()
        self._update_buttons()
        self.resize(900, 520)

    # Building

    def _build(self) -> None:
        self.server_combo = QComboBox(self)
        self.server_combo.setObjectName("worklistServer")
        self.date_edit = QDateEdit(QDate.currentDate(), self)
        self.date_edit.setObjectName("worklistDate")
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.any_date_check = QCheckBox(self.tr("Any date"), self)
        self.query_button = QPushButton(icon("worklist"), self.tr("&Search"), self)
        self.query_button.setObjectName("worklistSearch")
        self.query_button.setDefault(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("worklistName")
        self.name_edit.setPlaceholderText(self.tr("Filter by patient name or ID"))
        self.name_edit.setClearButtonEnabled(True)

        self.status_label = QLabel(self)
        self.status_label.setObjectName("worklistStatus")
        self.status_label.setWordWrap(True)

        self.view = QTableView(self)
        self.view.setObjectName("worklistView")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(Column.SCHEDULED, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        self.import_button = QPushButton(
            icon("file-open"), self.tr("&Import Images for This Patient..."), self
        )
        self.import_button.setObjectName("worklistImport")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.addButton(
            self.import_button, QDialogButtonBox.ButtonRole.ActionRole
        )

        query_row = QHBoxLayout()
        query_row.addWidget(QLabel(self.tr("Server:"), self))
        query_row.addWidget(self.server_combo, 1)
        query_row.addWidget(QLabel(self.tr("Date:"), self))
        query_row.addWidget(self.date_edit)
        query_row.addWidget(self.any_date_check)
        query_row.addWidget(self.query_button)

        filter_row = QHBoxLayout()
        filter_row.addWidget(QLabel(self.tr("Patient:"), self))
        filter_row.addWidget(self.name_edit, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(query_row)
        layout.addLayout(filter_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.buttons)

    def _connect(self) -> None:
        self.query_button.clicked.connect(self.run_query)
        self.any_date_check.toggled.connect(self.date_edit.setDisabled)
        self.name_edit.textChanged.connect(self._filter)
        self.view.doubleClicked.connect(self._choose_index)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.import_button.clicked.connect(self.choose_selected)
        self.buttons.rejected.connect(self.reject)

    def _fill_servers(self) -> None:
        for server in worklist_servers(self.workspace):
            text = f"{server.name} ({server.key})"
            if server.action is ServerAction.DEACTIVATED:
                text += self.tr(" - deactivated")
            self.server_combo.addItem(text, server.key)
        if self.server_combo.count() == 0:
            self.query_button.setEnabled(False)
            self._show_status(
                self.tr(
                    "No worklist server is set up. Add one on the Servers page "
                    "(kind: DICOM worklist)."
                ),
                error=True,
            )

    # Querying

    def selected_server(self) -> Server | None:
        key = self.server_combo.currentData()
        return self.workspace.servers.find(key) if isinstance(key, str) else None

    def query_dates(self) -> tuple[dt.date, dt.date] | None:
        """Return the date range to query, None for any date."""
        if self.any_date_check.isChecked():
            return None
        day = self.date_edit.date().toPython()
        assert isinstance(day, dt.date)
        return day, day

    def run_query(self) -> None:
        """Query the chosen server on its lane; show the results when they come."""
        server = self.selected_server()
        if server is None:
            return
        assert isinstance(server.settings, DicomWorklistSettings)
        try:
            query = WorklistQuery(
                modality=server.settings.modality, dates=self.query_dates()
            )
            endpoint = dicom_endpoint(server)
        except ValueError as error:
            self._show_status(str(error), error=True)
            return

        self._query_number += 1
        number = self._query_number
        if self._running is not None:
            self._running.cancel()
        worker = Worker(query_worklist, endpoint, query, name="worklist query")
        worker.signals.finished.connect(
            lambda items, number=number: self._on_items(number, items)
        )
        worker.signals.failed.connect(
            lambda error, number=number: self._on_failed(number, error)
        )
        self._running = worker
        self.query_button.setEnabled(False)
        self._show_status(self.tr("Asking %1...").replace("%1", server.name))
        self.pools.lane(server.key).start(worker)

    def _on_items(self, number: int, items: list[WorklistItem]) -> None:
        if number != self._query_number:
            return
        self._running = None
        self.query_button.setEnabled(True)
        self.model.set_items(items)
        self._filter(self.name_edit.text())
        self._update_buttons()

    def _on_failed(self, number: int, error: Exception) -> None:
        if number != self._query_number or isinstance(error, WorkerCancelledError):
            return
        self._running = None
        self.query_button.setEnabled(True)
        logger.info("Worklist query failed: %s", type(error).__name__)
        self._show_status(str(error), error=True)

    def _filter(self, text: str) -> None:
        self.proxy.set_search_text(text)
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0:
            message = self.tr("No scheduled patient found.")
        elif shown == total:
            message = self.tr("Scheduled patients: %1").replace("%1", str(total))
        else:
            message = self.tr("%1 of %2 scheduled patients match the filter.")
            message = message.replace("%1", str(shown)).replace("%2", str(total))
        self._show_status(message)

    def _show_status(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE if error else "")

    # Choosing

    def selected_item(self) -> WorklistItem | None:
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        item = rows[0].data(Role.ITEM)
        return item if isinstance(item, WorklistItem) else None

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(self.selected_item() is not None)

    def _choose_index(self, index: QModelIndex) -> None:
        item = index.data(Role.ITEM)
        if isinstance(item, WorklistItem):
            self.choose(item)

    def choose_selected(self) -> None:
        item = self.selected_item()
        if item is not None:
            self.choose(item)

    def choose(self, item: WorklistItem) -> None:
        """Close the dialog and hand the entry on for an import."""
        self.item_chosen.emit(item)
        self.accept()

    def done(self, result: int) -> None:
        # A query still running ends unseen: its result no longer matches.
        self._query_number += 1
        if self._running is not None:
            self._running.cancel()
            self._running = None
        super().done(result)
