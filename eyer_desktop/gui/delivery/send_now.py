"""The "Send now" menu: one click sends the selected exams to a chosen server.

The menu is rebuilt each time it opens, from the current server list. Manual
servers come first, because they receive exams only this way; the other
storage servers follow. A server that cannot receive (deactivated, or not
configured) is listed disabled, with the reason as its tooltip, so the user
sees why it is missing rather than wondering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from eyer_desktop.core.servers import Server, ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.delivery.service import SendingService
from eyer_desktop.gui.icons import icon

SelectedExams = Callable[[], Sequence[str]]


class SendNowMenu(QMenu):
    """Lists the storage servers; choosing one sends the selected exams there.

    Args:
        selected_exams: Returns the ids of the exams to send, read when a
            server is chosen.
    """

    def __init__(
        self,
        workspace: Workspace,
        sending: SendingService,
        selected_exams: SelectedExams,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Send Now"))
        self.setObjectName("sendNowMenu")
        self.setToolTipsVisible(True)
        self.setIcon(icon("send"))
        self.workspace = workspace
        self.sending = sending
        self.selected_exams = selected_exams
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        """List the current servers, manual ones first."""
        self.clear()
        selected = len(self.selected_exams())
        if selected == 0:
            hint = self.addAction(self.tr("Select one or more exams first"))
            hint.setEnabled(False)

        storage = [server for server in self.workspace.servers if server.is_storage]
        manual = [s for s in storage if s.action is ServerAction.MANUAL]
        others = [s for s in storage if s.action is not ServerAction.MANUAL]
        if manual:
            self.addSection(self.tr("Manual servers"))
            for server in manual:
                self._add_server(server, selected)
        if others:
            self.addSection(self.tr("Other servers"))
            for server in others:
                self._add_server(server, selected)
        if not storage:
            empty = self.addAction(self.tr("No storage server is set up"))
            empty.setEnabled(False)

    def server_actions(self) -> list[QAction]:
        """Return the actions that send to a server, in menu order."""
        return [action for action in self.actions() if action.data()]

    def _add_server(self, server: Server, selected: int) -> None:
        action = self.addAction(f"{server.name} ({server.key})")
        action.setData(server.key)
        reason = self._unavailable_reason(server)
        if reason:
            action.setText(f"{server.name} ({server.key}): {reason}")
            action.setEnabled(False)
            action.setToolTip(self._unavailable_fix(server))
            return
        action.setEnabled(selected > 0)
        action.setToolTip(
            self.tr("Send the selected exams to %1 now, sent images included").replace(
                "%1", server.name
            )
        )
        action.triggered.connect(
            lambda _checked=False, key=server.key: self.send_to(key)
        )

    def _unavailable_reason(self, server: Server) -> str:
        if server.action is ServerAction.DEACTIVATED:
            return self.tr("deactivated")
        if not server.is_configured:
            return self.tr("not configured")
        return ""

    def _unavailable_fix(self, server: Server) -> str:
        if server.action is ServerAction.DEACTIVATED:
            return self.tr("Set its action to Manual on the Servers page to send to it")
        return self.tr("Enter its address on the Servers page first")

    def send_to(self, server_key: str) -> None:
        """Send the selected exams to one server."""
        self.sending.send_now(list(self.selected_exams()), server_key)


def send_now_button(menu: SendNowMenu, parent: QWidget | None = None) -> QToolButton:
    """Return a toolbar button that opens ``menu`` at one click."""
    button = QToolButton(parent)
    button.setObjectName("sendNowButton")
    button.setMenu(menu)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    button.setIcon(icon("send"))
    button.setText(menu.title())
    button.setToolTip(menu.tr("Send the selected exams to a server now"))
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return button
