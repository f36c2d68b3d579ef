"""The Activity page: each server's status, and every delivery with filters.

The top table shows per server what is happening now (sending n of m, waiting
to retry and why, failed and why, paused). Below it, the deliveries table
lists every image's delivery to every server, filtered by server, state and
text. The buttons act on the selection through the sending service: retry,
cancel, retry every failed delivery, and pause or resume a server.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.delivery import ServerProgress
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.delegate import StateChipDelegate
from eyer_desktop.gui.activity.model import ActivityModel, Column, Role
from eyer_desktop.gui.activity.proxy import ActivityFilterProxy, StateFilter
from eyer_desktop.gui.activity.refresher import ActivityRefresher
from eyer_desktop.gui.activity.servers_model import Column as ServerColumn
from eyer_desktop.gui.activity.servers_model import Role as ServerRole
from eyer_desktop.gui.activity.servers_model import ServerStatusModel
from eyer_desktop.gui.delivery.service import SendingService
from eyer_desktop.gui.icons import icon

logger = logging.getLogger(__name__)

CLOCK_REFRESH_MS = 5_000
PROGRESS_REPAINT_MS = 200
MAX_SERVER_ROWS_SHOWN = 6
STATUS_TIMEOUT_MS = 6_000

_RETRYABLE = frozenset({DeliveryState.FAILED, DeliveryState.CANCELLED})
_CANCELLABLE = frozenset(
    {
        DeliveryState.QUEUED,
        DeliveryState.PAUSED,
        DeliveryState.FAILED,
        DeliveryState.SENDING,
    }
)


class ActivityPage(QWidget):
    """Deliveries and server status, with retry, cancel and pause.

    Signals:
        status_message: A passing outcome for the status bar: (text, timeout).
    """

    status_message = Signal(str, int)

    def __init__(
        self,
        workspace: Workspace,
        sending: SendingService,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.sending = sending

        self.model = ActivityModel(sending.server_name, parent=self)
        self.proxy = ActivityFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.servers_model = ServerStatusModel(parent=self)
        self.servers_model.set_servers(workspace.servers)
        self.refresher = ActivityRefresher(
            workspace, self.model, self.servers_model, self
        )

        self._build_servers_table()
        self._build_filters()
        self._build_deliveries_table()
        self._build_hints()
        self._build_layout()
        self._fill_server_filter()
        self._connect()
        self._update_buttons()
        self._fit_servers_view()

        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_REFRESH_MS)
        self._clock.timeout.connect(self._refresh_times)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_REPAINT_MS)
        self._progress_timer.timeout.connect(self.servers_model.flush_progress)

    # Building

    def _build_servers_table(self) -> None:
        self.servers_view = QTableView(self)
        self.servers_view.setObjectName("serverStatusView")
        self.servers_view.setModel(self.servers_model)
        self.servers_view.setSelectionBehavior(
            QAbstractItemView.SelectionBehavior.SelectRows
        )
        self.servers_view.setSelectionMode(
            QAbstractItemView.SelectionMode.SingleSelection
        )
        self.servers_view.verticalHeader().hide()
        self.servers_view.setWordWrap(False)
        self.servers_view.setAlternatingRowColors(True)
        # Columns are sized to their contents when the rows change, not on
        # every progress report: ResizeToContents would measure every cell on
        # each repaint.
        header = self.servers_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(ServerColumn.STATUS, QHeaderView.ResizeMode.Stretch)

        self.pause_button = QPushButton(icon("pause"), self.tr("Pause"), self)
        self.pause_button.setToolTip(
            self.tr("Hold this server's deliveries until you resume it")
        )
        self.resume_button = QPushButton(icon("resume"), self.tr("Resume"), self)
        self.resume_button.setToolTip(self.tr("Send this server's held deliveries"))
        self.retry_server_button = QPushButton(
            icon("retry"), self.tr("Retry Now"), self
        )
        self.retry_server_button.setToolTip(
            self.tr(
                "Send this server's failed deliveries, and those waiting to retry, now"
            )
        )

    def _build_filters(self) -> None:
        self.server_filter = QComboBox(self)
        self.server_filter.setObjectName("serverFilter")
        self.state_filter = QComboBox(self)
        self.state_filter.setObjectName("stateFilter")
        for choice, text in (
            (StateFilter.ALL, self.tr("All states")),
            (StateFilter.UNFINISHED, self.tr("Not finished")),
            (StateFilter.FAILED, self.tr("Failed")),
            (StateFilter.WAITING, self.tr("Waiting or sending")),
            (StateFilter.SENT, self.tr("Sent")),
            (StateFilter.CANCELLED, self.tr("Cancelled")),
        ):
            self.state_filter.addItem(text, choice)
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("activitySearch")
        self.search_edit.setPlaceholderText(self.tr("Search patient, server or error"))
        self.search_edit.setClearButtonEnabled(True)

    def _build_deliveries_table(self) -> None:
        self.view = QTableView(self)
        self.view.setObjectName("activityView")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(Column.EXAM, Qt.SortOrder.DescendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.setItemDelegateForColumn(Column.STATE, StateChipDelegate(self.view))
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in (
            (Column.EXAM, 320),
            (Column.IMAGE, 130),
            (Column.SERVER, 150),
            (Column.STATE, 130),
            (Column.ATTEMPTS, 70),
            (Column.NEXT_ATTEMPT, 110),
        ):
            self.view.setColumnWidth(column, width)

        self.empty_label = QLabel(self)
        self.empty_label.setObjectName("activityEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.retry_button = QPushButton(icon("retry"), self.tr("Retry"), self)
        self.retry_button.setToolTip(
            self.tr("Queue the selected failed or cancelled deliveries again")
        )
        self.cancel_button = QPushButton(icon("cancel"), self.tr("Cancel"), self)
        self.cancel_button.setToolTip(
            self.tr("Stop sending the selected deliveries; Retry undoes it")
        )
        self.retry_all_button = QPushButton(
            icon("retry"), self.tr("Retry All Failed"), self
        )
        self.retry_all_button.setToolTip(
            self.tr("Queue again every failed delivery to every server")
        )

    def _build_hints(self) -> None:
        self.server_hint = QLabel(
            self.tr("Select a server above to pause, resume or retry it."), self
        )
        self.delivery_hint = QLabel(
            self.tr("Select deliveries to retry or cancel them."), self
        )
        for hint in (self.server_hint, self.delivery_hint):
            hint.setEnabled(False)

    def _build_layout(self) -> None:
        servers_title = QLabel(self.tr("<b>Servers</b>"), self)
        server_buttons = QHBoxLayout()
        server_buttons.addWidget(self.pause_button)
        server_buttons.addWidget(self.resume_button)
        server_buttons.addWidget(self.retry_server_button)
        server_buttons.addWidget(self.server_hint)
        server_buttons.addStretch(1)

        deliveries_title = QLabel(self.tr("<b>Deliveries</b>"), self)
        filters = QHBoxLayout()
        filters.addWidget(QLabel(self.tr("Server:"), self))
        filters.addWidget(self.server_filter)
        filters.addWidget(QLabel(self.tr("Show:"), self))
        filters.addWidget(self.state_filter)
        filters.addWidget(self.search_edit, 1)

        actions = QHBoxLayout()
        actions.addWidget(self.retry_button)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.delivery_hint)
        actions.addStretch(1)
        actions.addWidget(self.retry_all_button)

        layout = QVBoxLayout(self)
        layout.addWidget(servers_title)
        layout.addWidget(self.servers_view)
        layout.addLayout(server_buttons)
        layout.addSpacing(8)
        layout.addWidget(deliveries_title)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(actions)

    def _connect(self) -> None:
        self.sending.deliveries_changed.connect(self.refresher.request)
        self.sending.progress.connect(self._on_progress)
        self.refresher.loaded.connect(self._on_loaded)
        self.servers_model.modelReset.connect(self._fit_servers_view)
        self.refresher.failed.connect(
            lambda error: self.status_message.emit(str(error), STATUS_TIMEOUT_MS)
        )

        self.server_filter.currentIndexChanged.connect(self._apply_server_filter)
        self.state_filter.currentIndexChanged.connect(self._apply_state_filter)
        self.search_edit.textChanged.connect(self.proxy.set_search_text)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.servers_view.selectionModel().selectionChanged.connect(self._on_selection)
        self.proxy.modelReset.connect(self._update_empty_label)
        self.proxy.rowsInserted.connect(self._update_empty_label)
        self.proxy.rowsRemoved.connect(self._update_empty_label)
        self.proxy.layoutChanged.connect(self._update_empty_label)

        self.retry_button.clicked.connect(self.retry_selected)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_all_button.clicked.connect(self.retry_all_failed)
        self.pause_button.clicked.connect(self.pause_selected_server)
        self.resume_button.clicked.connect(self.resume_selected_server)
        self.retry_server_button.clicked.connect(self.retry_selected_server)

    # Showing

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.refresh_servers()
        self.refresher.set_active(True)
        self._clock.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt override)
        super().hideEvent(event)
        self.refresher.set_active(False)
        self._clock.stop()

    def reload_exams(self, exam_ids: object = None) -> None:
        """Read every delivery and exam label again, after exams were deleted
        or changed: the rows of a deleted exam no longer show its patient.
        """
        del exam_ids  # A full load checks every exam.
        self.refresher.reload_all()

    def refresh_servers(self) -> None:
        """Show the current server list: names, actions and new servers."""
        self.servers_model.set_servers(self.workspace.servers)
        self.model.refresh_server_names()
        self._fill_server_filter()

    def _fill_server_filter(self) -> None:
        current = self.server_filter.currentData()
        self.server_filter.blockSignals(True)
        self.server_filter.clear()
        self.server_filter.addItem(self.tr("All servers"), None)
        for server in self.workspace.servers:
            if server.is_storage:
                self.server_filter.addItem(f"{server.name} ({server.key})", server.key)
        found = self.server_filter.findData(current)
        self.server_filter.setCurrentIndex(max(found, 0))
        self.server_filter.blockSignals(False)
        self._apply_server_filter()

    def _fit_servers_view(self) -> None:
        """Size the server table to its rows, up to MAX_SERVER_ROWS_SHOWN."""
        for column in ServerColumn:
            if column is not ServerColumn.STATUS:
                self.servers_view.resizeColumnToContents(column)
        rows = min(max(self.servers_model.rowCount(), 1), MAX_SERVER_ROWS_SHOWN)
        view = self.servers_view
        height = view.horizontalHeader().sizeHint().height() + 2 * view.frameWidth()
        height += sum(view.verticalHeader().sectionSize(row) for row in range(rows))
        if self.servers_model.rowCount() == 0:
            height += view.verticalHeader().defaultSectionSize()
        view.setFixedHeight(height)

    def _on_progress(self, progress: ServerProgress) -> None:
        self.servers_model.set_progress(progress)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _on_loaded(self) -> None:
        self._update_empty_label()
        self._update_buttons()

    def _refresh_times(self) -> None:
        self.model.refresh_times()
        self.servers_model.refresh_times()
        self.refresher.request()

    def _update_empty_label(self) -> None:
        if self.model.rowCount() == 0:
            text = self.tr(
                "Nothing has been queued yet. New exams are queued for the "
                "Primary and Mirror servers; use Send now for a Manual server."
            )
        elif self.proxy.rowCount() == 0:
            text = self.tr("No delivery matches the filters above.")
        else:
            text = ""
        self.empty_label.setText(text)
        self.empty_label.setVisible(bool(text))

    # Filters

    def _apply_server_filter(self) -> None:
        key = self.server_filter.currentData()
        self.proxy.set_server(key if isinstance(key, str) else None)
        self._update_empty_label()

    def _apply_state_filter(self) -> None:
        # Qt hands a str enum back as a plain str, so the value is converted.
        choice = StateFilter(self.state_filter.currentData())
        self.proxy.set_states(choice.states)
        self._update_empty_label()

    # Selection and actions

    def selected_deliveries(self) -> list[int]:
        """Return the delivery ids of the selected rows."""
        rows = self.view.selectionModel().selectedRows()
        return [int(index.data(Role.DELIVERY_ID)) for index in rows]

    def _selected_states(self) -> set[DeliveryState]:
        rows = self.view.selectionModel().selectedRows()
        return {DeliveryState(index.data(Role.STATE)) for index in rows}

    def selected_server(self) -> str | None:
        """Return the key of the server selected in the status table."""
        rows = self.servers_view.selectionModel().selectedRows()
        if not rows:
            return None
        key = rows[0].data(ServerRole.SERVER_KEY)
        return key if isinstance(key, str) else None

    def _on_selection(
        self, _selected: QItemSelection, _deselected: QItemSelection
    ) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        states = self._selected_states()
        self.retry_button.setEnabled(bool(states & _RETRYABLE))
        self.cancel_button.setEnabled(bool(states & _CANCELLABLE))

        key = self.selected_server()
        row = None if key is None else self.servers_model.row_of(key)
        paused = False
        if row is not None:
            index = self.servers_model.index(row, 0)
            paused = bool(index.data(ServerRole.USER_PAUSED))
        self.server_hint.setVisible(key is None)
        self.delivery_hint.setVisible(not states)
        self.pause_button.setEnabled(key is not None and not paused)
        self.resume_button.setEnabled(key is not None and paused)
        self.retry_server_button.setEnabled(key is not None)

    def retry_selected(self) -> None:
        """Queue the selected failed or cancelled deliveries again."""
        self.sending.retry(self.selected_deliveries())

    def cancel_selected(self) -> None:
        """Cancel the selected queued, paused, failed or sending deliveries."""
        self.sending.cancel(self.selected_deliveries())

    def retry_all_failed(self) -> None:
        """Queue again every failed delivery to every server."""
        self.sending.retry_failed(None)

    def pause_selected_server(self) -> None:
        key = self.selected_server()
        if key is not None:
            self.sending.pause(key)

    def resume_selected_server(self) -> None:
        key = self.selected_server()
        if key is not None:
            self.sending.resume(key)

    def retry_selected_server(self) -> None:
        key = self.selected_server()
        if key is not None:
            self.sending.retry_server_now(key)
