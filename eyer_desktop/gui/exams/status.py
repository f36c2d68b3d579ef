"""The delivery status of an exam on one server, as one chip state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QColor

from eyer_desktop.core.outbox import DeliveryState

StateCounts = Mapping[DeliveryState, int]


class ChipState(StrEnum):
    """The summary of one exam's deliveries to one server."""

    FAILED = "failed"
    SENDING = "sending"
    QUEUED = "queued"
    PAUSED = "paused"
    WARNING = "warning"
    SENT = "sent"
    CANCELLED = "cancelled"


# The first state in this list with a delivery decides the chip: a failure
# needs attention before anything else, and "sent" only shows when every
# delivery is finished.
_CHIP_PRECEDENCE = (
    (DeliveryState.FAILED, ChipState.FAILED),
    (DeliveryState.SENDING, ChipState.SENDING),
    (DeliveryState.QUEUED, ChipState.QUEUED),
    (DeliveryState.PAUSED, ChipState.PAUSED),
    (DeliveryState.WARNING, ChipState.WARNING),
    (DeliveryState.SENT, ChipState.SENT),
    (DeliveryState.CANCELLED, ChipState.CANCELLED),
)

# Background and text colours of each chip. Each pair has a WCAG 2 contrast
# ratio of at least 4.5:1, the level that body text needs.
CHIP_COLORS: dict[ChipState, tuple[QColor, QColor]] = {
    ChipState.FAILED: (QColor("#fde7e9"), QColor("#a4262c")),
    ChipState.SENDING: (QColor("#e5f1fb"), QColor("#0b5394")),
    ChipState.QUEUED: (QColor("#eceff1"), QColor("#37474f")),
    ChipState.PAUSED: (QColor("#fff4ce"), QColor("#6b4e00")),
    ChipState.WARNING: (QColor("#fff4ce"), QColor("#6b4e00")),
    ChipState.SENT: (QColor("#dff6dd"), QColor("#1e5e20")),
    ChipState.CANCELLED: (QColor("#eceff1"), QColor("#5f6b73")),
}


@dataclass(frozen=True)
class ServerStatus:
    """The delivery status of one exam on one server.

    Attributes:
        done: Images the server confirmed (sent, or sent with a warning).
        total: Images queued for the server, cancelled ones not counted.
    """

    server_key: str
    server_name: str
    state: ChipState
    done: int
    total: int


def chip_state(counts: StateCounts) -> ChipState | None:
    """Return the chip state of one exam and server, None without deliveries."""
    for delivery_state, state in _CHIP_PRECEDENCE:
        if counts.get(delivery_state, 0) > 0:
            return state
    return None


def server_status(key: str, name: str, counts: StateCounts) -> ServerStatus | None:
    """Return the status of one exam on one server, None without deliveries."""
    state = chip_state(counts)
    if state is None:
        return None
    done = counts.get(DeliveryState.SENT, 0) + counts.get(DeliveryState.WARNING, 0)
    total = sum(counts.values()) - counts.get(DeliveryState.CANCELLED, 0)
    return ServerStatus(key, name, state, done, total)


def chip_label(state: ChipState) -> str:
    """Return the translated word shown on a chip."""
    labels = {
        ChipState.FAILED: QCoreApplication.translate("ChipState", "failed"),
        ChipState.SENDING: QCoreApplication.translate("ChipState", "sending"),
        ChipState.QUEUED: QCoreApplication.translate("ChipState", "queued"),
        ChipState.PAUSED: QCoreApplication.translate("ChipState", "paused"),
        ChipState.WARNING: QCoreApplication.translate("ChipState", "warning"),
        ChipState.SENT: QCoreApplication.translate("ChipState", "sent"),
        ChipState.CANCELLED: QCoreApplication.translate("ChipState", "cancelled"),
    }
    return labels[state]
