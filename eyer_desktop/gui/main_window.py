"""The main window: a side list of pages, menus, a toolbar and a status bar.

Pages come from :func:`create_pages`, one entry each, so a feature adds its
page with one line there. A page widget may declare a ``status_message``
signal carrying ``(text, timeout_ms)``: the window shows it in the status bar.
A page entry may also bring actions for the File menu.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication, QSettings, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop import __version__
from eyer_desktop.core.net.worklist import WorklistItem
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.page import ActivityPage
from eyer_desktop.gui.delivery.send_now import SendNowMenu, send_now_button
from eyer_desktop.gui.delivery.service import SendingService
from eyer_desktop.gui.exams.page import ExamsPage
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.servers.page import ServersPage
from eyer_desktop.gui.settings_dialog import SettingsDialog
from eyer_desktop.gui.workers import Pools
from eyer_desktop.gui.worklist.dialog import WorklistDialog

logger = logging.getLogger(__name__)

WINDOW_STATE_FILE = "window.ini"
STATUS_TIMEOUT_MS = 6000


def _tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


@dataclass(frozen=True)
class Page:
    """One page of the main window.

    Attributes:
        title: Text of its entry in the side list, already translated.
        icon: Name of its icon in the icons folder.
        widget: The page itself.
        file_actions: Actions the page adds to the File menu.
    """

    title: str
    icon: str
    widget: QWidget
    file_actions: Sequence[QAction] = field(default=())


def create_pages(
    workspace: Workspace, pools: Pools, sending: SendingService
) -> list[Page]:
    """Create the pages of the main window, in side-list order."""
    exams = ExamsPage(workspace, pools)
    return [
        Page(_tr("Exams"), "exams", exams, exams.file_actions()),
        Page(_tr("Servers"), "servers", ServersPage(workspace, pools, SecretStore())),
        Page(_tr("Activity"), "activity", ActivityPage(workspace, sending)),
    ]


class MainWindow(QMainWindow):
    """The application window over one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        pools: Pools,
        *,
        demo: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """Build the window.

        Args:
            workspace: The profile the window shows and edits.
            pools: The worker pools shared by the pages.
            demo: Text of a banner saying the profile is a demonstration, or
                None for a normal profile.
            parent: The parent widget, normally None.
        """
        super().__init__(parent)
        self.workspace = workspace
        self.pools = pools
        self._closing_when_idle = False
        self.settings_dialog: SettingsDialog | None = None

        title = self.tr("Eyer Desktop")
        self.setWindowTitle(title if demo is None else self.tr("%s (demo)") % title)
        self.setWindowIcon(icon("app"))

        self.sending = SendingService(workspace, pools, parent=self)
        self.pages = create_pages(workspace, pools, self.sending)
        self._build_central(demo)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._connect_pages()
        self._connect_sending()
        self.statusBar().showMessage(self.tr("Ready"), STATUS_TIMEOUT_MS)
        self._restore_state()

    # Layout

    def _build_central(self, demo: str | None) -> None:
        self.page_list = QListWidget(self)
        self.page_list.setObjectName("pageList")
        self.page_list.setIconSize(QSize(24, 24))
        self.page_list.setSpacing(2)
        self.page_list.setFixedWidth(170)
        self.stack = QStackedWidget(self)
        for page in self.pages:
            QListWidgetItem(icon(page.icon), page.title, self.page_list)
            self.stack.addWidget(page.widget)
        self.page_list.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.page_list.setCurrentRow(0)

        body = QHBoxLayout()
        body.addWidget(self.page_list)
        body.addWidget(self.stack, 1)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        if demo is not None:
            banner = QLabel(demo, central)
            banner.setObjectName("demoBanner")
            banner.setWordWrap(True)
            banner.setStyleSheet(
                "QLabel#demoBanner { background: #fff3cd; color: #5c4400;"
                " padding: 6px; border-radius: 3px; }"
            )
            layout.addWidget(banner)
        layout.addLayout(body, 1)
        self.setCentralWidget(central)

    def _build_actions(self) -> None:
        self.settings_action = QAction(icon("settings"), self.tr("&Settings..."), self)
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.setStatusTip(
            self.tr("DICOM prefix, clinic name, device data and character set")
        )
        self.settings_action.triggered.connect(self.open_settings)

        self.quit_action = QAction(self.tr("&Quit"), self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)

        self.log_folder_action = QAction(
            icon("folder"), self.tr("Open &Log Folder"), self
        )
        self.log_folder_action.setStatusTip(
            self.tr("Show the folder of the log files in the file manager")
        )
        self.log_folder_action.triggered.connect(self.open_log_folder)

        self.worklist_action = QAction(
            icon("worklist"), self.tr("Import from &Worklist..."), self
        )
        self.worklist_action.setShortcut(QKeySequence("Ctrl+W"))
        self.worklist_action.setStatusTip(
            self.tr("Find a scheduled patient on a worklist server and import images")
        )
        self.worklist_action.triggered.connect(self.open_worklist)
        self.send_now_menu = SendNowMenu(
            self.workspace, self.sending, self.selected_exam_ids, self
        )

        self.about_action = QAction(icon("help"), self.tr("&About Eyer Desktop"), self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)

        self.page_actions: list[QAction] = []
        for row, page in enumerate(self.pages):
            action = QAction(icon(page.icon), page.title, self)
            if row < 9:
                action.setShortcut(QKeySequence(f"Ctrl+{row + 1}"))
            action.triggered.connect(
                lambda _checked=False, row=row: self.page_list.setCurrentRow(row)
            )
            self.page_actions.append(action)

    def _build_menus(self) -> None:
        menu_bar = self.menuBar()
        self.file_menu = menu_bar.addMenu(self.tr("&File"))
        for page in self.pages:
            for action in page.file_actions:
                self.file_menu.addAction(action)
        self.file_menu.addAction(self.worklist_action)
        self.file_menu.addMenu(self.send_now_menu)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.settings_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)

        self.view_menu = menu_bar.addMenu(self.tr("&View"))
        self.view_menu.addActions(self.page_actions)

        self.help_menu = menu_bar.addMenu(self.tr("&Help"))
        self.help_menu.addAction(self.log_folder_action)
        self.help_menu.addSeparator()
        self.help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        self.toolbar = self.addToolBar(self.tr("Main"))
        self.toolbar.setObjectName("mainToolbar")
        self.toolbar.setIconSize(QSize(20, 20))
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toolbar.setMovable(False)
        self.toolbar.addAction(self.worklist_action)
        self.toolbar.addWidget(send_now_button(self.send_now_menu, self.toolbar))
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.settings_action)
        self.toolbar.addAction(self.log_folder_action)

    def _connect_pages(self) -> None:
        for page in self.pages:
            signal = getattr(page.widget, "status_message", None)
            if signal is not None:
                signal.connect(self.show_status)

    def _connect_sending(self) -> None:
        self.sending.action_done.connect(self.show_status)
        self.sending.action_failed.connect(lambda error: self.show_status(str(error)))
        # Imported exams go to the servers that receive new exams.
        self.exams_page.exams_added.connect(self.sending.queue_exams)
        # Deleting exams cancels their unfinished deliveries.
        self.exams_page.exams_deleted.connect(self.sending.deliveries_changed)
        # Their rows on the Activity page stop showing the patient.
        self.exams_page.exams_deleted.connect(self.activity_page.reload_exams)
        self.exams_page.context_menus.append(self.send_now_menu)
        # Sending starts once the window is up, from the event loop.
        QTimer.singleShot(0, self.sending.start)

    @property
    def exams_page(self) -> ExamsPage:
        """The Exams page, first in the side list."""
        page = self.pages[0].widget
        assert isinstance(page, ExamsPage)
        return page

    @property
    def activity_page(self) -> ActivityPage:
        """The Activity page."""
        return next(
            page.widget for page in self.pages if isinstance(page.widget, ActivityPage)
        )

    # Commands

    def selected_exam_ids(self) -> list[str]:
        """Return the ids of the exams selected on the Exams page."""
        return self.exams_page.selected_exam_ids()

    def open_worklist(self) -> WorklistDialog:
        """Open the worklist dialog; choosing an entry starts an import."""
        dialog = WorklistDialog(self.workspace, self.pools, self)
        dialog.item_chosen.connect(self.import_from_worklist)
        dialog.finished.connect(dialog.deleteLater)
        self.worklist_dialog = dialog
        dialog.open()
        if dialog.query_button.isEnabled():
            dialog.run_query()
        return dialog

    def import_from_worklist(self, item: WorklistItem) -> None:
        """Open the import dialog with the patient data of a worklist entry."""
        dialog = self.exams_page.open_import_dialog()
        dialog.fill_from_worklist(item)

    def show_status(self, text: str, timeout_ms: int = STATUS_TIMEOUT_MS) -> None:
        """Show a passing outcome in the status bar."""
        self.statusBar().showMessage(text, timeout_ms)

    def show_page(self, title: str) -> QWidget:
        """Select the page whose title is ``title`` and return its widget.

        Raises:
            KeyError: No page has that title.
        """
        for row, page in enumerate(self.pages):
            if page.title == title:
                self.page_list.setCurrentRow(row)
                return page.widget
        raise KeyError(title)

    def open_settings(self) -> SettingsDialog:
        """Open the Settings dialog; it saves through the workspace."""
        dialog = SettingsDialog(self.workspace, self)
        dialog.accepted.connect(self._settings_saved)
        dialog.finished.connect(dialog.deleteLater)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def _settings_saved(self) -> None:
        self.show_status(self.tr("Settings saved"))

    def open_log_folder(self) -> None:
        """Open the profile's log folder in the file manager."""
        log_dir = self.workspace.paths.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir))):
            self.show_status(self.tr("Could not open the log folder %s") % log_dir)

    def show_about(self) -> None:
        paths = self.workspace.paths
        text = self.tr(
            "<p><b>Eyer Desktop %1</b></p>"
            "<p>Converts Eyer retinal exams to DICOM Ophthalmic Photography and "
            "delivers them to the clinic's servers.</p>"
            "<p>Configuration: %2<br>Exams: %3<br>Logs: %4</p>"
        )
        for position, value in enumerate(
            (__version__, paths.config_dir, paths.data_dir, paths.log_dir), 1
        ):
            text = text.replace(f"%{position}", str(value))
        QMessageBox.about(self, self.tr("About Eyer Desktop"), text)

    # Window state

    def _state_settings(self) -> QSettings:
        path = self.workspace.paths.config_dir / WINDOW_STATE_FILE
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_state(self) -> None:
        settings = self._state_settings()
        geometry = settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 700)
        state = settings.value("state")
        if state is not None:
            self.restoreState(state)
        row = settings.value("page", 0, type=int)
        if isinstance(row, int) and 0 <= row < len(self.pages):
            self.page_list.setCurrentRow(row)

    def _save_state(self) -> None:
        self.workspace.paths.config_dir.mkdir(parents=True, exist_ok=True)
        settings = self._state_settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState())
        settings.setValue("page", self.page_list.currentRow())
        settings.sync()

    # Closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        # Sending lanes stop after their current batch from here on.
        self.sending.prepare_to_close()
        active = self.pools.active_count()
        if active == 0:
            self._save_state()
            event.accept()
            return

        event.ignore()
        if self._closing_when_idle:
            return
        choice = self._ask_how_to_close(active)
        if choice is None:
            self.sending.cancel_close()
            return

        if choice == "stop":
            self.pools.cancel_all()
        self._closing_when_idle = True
        self.setEnabled(False)
        self.show_status(self.tr("Closing when the running tasks end..."), 0)
        self.pools.idle.connect(self._close_now)
        # The pools may have become idle while the question was open.
        if self.pools.active_count() == 0:
            QTimer.singleShot(0, self._close_now)

    def _ask_how_to_close(self, active: int) -> str | None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Tasks are running"))
        box.setText(self.tr("%n task(s) are still running.", "", active))
        box.setInformativeText(
            self.tr(
                "Wait for them to finish, or stop them now. Exams not sent yet "
                "stay in the queue and are sent the next time Eyer Desktop starts."
            )
        )
        wait = box.addButton(
            self.tr("Wait and Close"), QMessageBox.ButtonRole.AcceptRole
        )
        stop = box.addButton(
            self.tr("Stop and Close"), QMessageBox.ButtonRole.DestructiveRole
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(wait)
        box.exec()

        clicked = box.clickedButton()
        if clicked is wait:
            return "wait"
        if clicked is stop:
            return "stop"
        return None

    def _close_now(self) -> None:
        if not self._closing_when_idle or self.pools.active_count() > 0:
            return
        self.pools.idle.disconnect(self._close_now)
        self._closing_when_idle = False
        self.close()
