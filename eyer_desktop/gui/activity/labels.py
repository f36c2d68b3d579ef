"""User-visible words and colours of deliveries, translated, for the Activity page."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QColor

from eyer_desktop.core.exams import ImageRole, Laterality
from eyer_desktop.core.outbox import Delivery, DeliveryState, ErrorClass
from eyer_desktop.gui.activity.loader import ExamInfo

_CONTEXT = "Activity"

# Background and text colour of each state chip. Each pair has a WCAG 2
# contrast ratio of at least 4.5:1, the level body text needs.
STATE_COLORS: dict[DeliveryState, tuple[QColor, QColor]] = {
    DeliveryState.FAILED: (QColor("#fde7e9"), QColor("#a4262c")),
    DeliveryState.SENDING: (QColor("#e5f1fb"), QColor("#0b5394")),
    DeliveryState.QUEUED: (QColor("#eceff1"), QColor("#37474f")),
    DeliveryState.PAUSED: (QColor("#fff4ce"), QColor("#6b4e00")),
    DeliveryState.WARNING: (QColor("#fff4ce"), QColor("#6b4e00")),
    DeliveryState.SENT: (QColor("#dff6dd"), QColor("#1e5e20")),
    DeliveryState.CANCELLED: (QColor("#eceff1"), QColor("#5f6b73")),
}


def _tr(text: str) -> str:
    return QCoreApplication.translate(_CONTEXT, text)


def state_label(state: DeliveryState) -> str:
    """Return the name of a delivery state."""
    labels = {
        DeliveryState.QUEUED: _tr("Queued"),
        DeliveryState.SENDING: _tr("Sending"),
        DeliveryState.SENT: _tr("Sent"),
        DeliveryState.WARNING: _tr("Sent, warning"),
        DeliveryState.FAILED: _tr("Failed"),
        DeliveryState.PAUSED: _tr("Paused"),
        DeliveryState.CANCELLED: _tr("Cancelled"),
    }
    return labels[state]


def delivery_state_label(delivery: Delivery) -> str:
    """Return the state of a delivery, telling a retry apart from a first try."""
    if (
        delivery.state is DeliveryState.QUEUED
        and delivery.error_class is ErrorClass.TRANSIENT
    ):
        return _tr("Waiting to retry")
    return state_label(delivery.state)


def eye_badge(laterality: Laterality | None) -> str:
    """Return OD for the right eye and OS for the left, as clinics write them."""
    if laterality is None:
        return ""
    return "OD" if laterality is Laterality.RIGHT else "OS"


def image_label(info: ExamInfo, image_id: str) -> str:
    """Return a short name of one delivered instance of an exam."""
    image = info.images.get(image_id)
    if image is None:
        return _tr("Image %1").replace("%1", image_id[:8])
    eye = eye_badge(image.laterality)
    if image.role is None:
        return _tr("%1 stereo relationship").replace("%1", eye)
    if image.role is ImageRole.MONTAGE:
        return _tr("%1 montage").replace("%1", eye)
    return _tr("%1 image %2").replace("%1", eye).replace("%2", str(image.number))


def exam_label(info: ExamInfo | None, exam_id: str) -> str:
    """Return the patient and capture time of an exam, or note that it is gone."""
    if info is None or not info.found:
        return _tr("Exam %1 (not in the library)").replace("%1", exam_id[:8])
    when = info.captured_at.strftime("%Y-%m-%d %H:%M") if info.captured_at else ""
    return f"{info.patient_name}, {when}" if when else info.patient_name


def time_label(timestamp: float | None, now: float) -> str:
    """Return a due time: "now" when past, the time today, else date and time."""
    if timestamp is None:
        return ""
    if timestamp <= now:
        return _tr("now")
    moment = dt.datetime.fromtimestamp(timestamp)
    if moment.date() == dt.datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")
