"""User-visible names of server actions and kinds, shared by the servers views."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QColor

from eyer_desktop.core.server_settings import ServerKind
from eyer_desktop.core.servers import Server, ServerAction

_CONTEXT = "servers"

ACTION_COLORS: dict[ServerAction, QColor] = {
    ServerAction.PRIMARY: QColor("#00796b"),
    ServerAction.MIRROR: QColor("#1565c0"),
    ServerAction.CONTINGENCY: QColor("#ef6c00"),
    ServerAction.MANUAL: QColor("#6a1b9a"),
    ServerAction.DEACTIVATED: QColor("#9e9e9e"),
}


def action_label(action: ServerAction) -> str:
    labels = {
        ServerAction.PRIMARY: QCoreApplication.translate(_CONTEXT, "Primary"),
        ServerAction.MIRROR: QCoreApplication.translate(_CONTEXT, "Mirror"),
        ServerAction.CONTINGENCY: QCoreApplication.translate(_CONTEXT, "Contingency"),
        ServerAction.MANUAL: QCoreApplication.translate(_CONTEXT, "Manual"),
        ServerAction.DEACTIVATED: QCoreApplication.translate(_CONTEXT, "Deactivated"),
    }
    return labels[action]


def action_description(action: ServerAction) -> str:
    descriptions = {
        ServerAction.PRIMARY: QCoreApplication.translate(
            _CONTEXT, "Receives every exam (the primary cloud only)"
        ),
        ServerAction.MIRROR: QCoreApplication.translate(
            _CONTEXT, "Receives every exam, in addition to the primary cloud"
        ),
        ServerAction.CONTINGENCY: QCoreApplication.translate(
            _CONTEXT, "Receives an exam only when the primary cloud could not take it"
        ),
        ServerAction.MANUAL: QCoreApplication.translate(
            _CONTEXT, "Receives an exam only when you send it there"
        ),
        ServerAction.DEACTIVATED: QCoreApplication.translate(
            _CONTEXT, "Receives nothing; deliveries already queued wait"
        ),
    }
    return descriptions[action]


def kind_label(kind: ServerKind) -> str:
    labels = {
        ServerKind.DICOM_STORAGE: QCoreApplication.translate(_CONTEXT, "DICOM storage"),
        ServerKind.DICOM_WORKLIST: QCoreApplication.translate(
            _CONTEXT, "DICOM worklist"
        ),
        ServerKind.DICOMWEB: QCoreApplication.translate(_CONTEXT, "DICOMweb"),
    }
    return labels[kind]


def allowed_actions(server: Server | None) -> list[ServerAction]:
    """Return the actions a server may take: the primary cloud has only two."""
    if server is not None and server.is_primary_cloud:
        return [ServerAction.PRIMARY, ServerAction.DEACTIVATED]
    return [action for action in ServerAction if action is not ServerAction.PRIMARY]
