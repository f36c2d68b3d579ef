"""Painting of the State column of the Activity table as a coloured chip."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.gui.activity.labels import STATE_COLORS
from eyer_desktop.gui.activity.model import Role

AnyIndex = QModelIndex | QPersistentModelIndex

CHIP_PADDING = 6
CHIP_MARGIN = 3


class StateChipDelegate(QStyledItemDelegate):
    """Paints a delivery's state as text on a rounded chip of its colour."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        # Qt hands a str enum back as a plain str, so the value is converted.
        value = index.data(Role.STATE)
        if value not in STATE_COLORS:
            super().paint(painter, option, index)
            return
        state = DeliveryState(value)

        # The selection background first, so selected rows stay visible. It
        # is filled directly: initStyleOption would ask the model for every
        # role once more.
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())

        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        background, foreground = STATE_COLORS[state]
        metrics = option.fontMetrics
        width = metrics.horizontalAdvance(text) + 2 * CHIP_PADDING
        rect = QRectF(option.rect).adjusted(CHIP_MARGIN, CHIP_MARGIN, 0, -CHIP_MARGIN)
        rect.setWidth(min(width, rect.width() - CHIP_MARGIN))

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(background)
        radius = rect.height() / 2
        painter.drawRoundedRect(rect, radius, radius)
        painter.setPen(foreground)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def sizeHint(  # noqa: N802
        self, option: QStyleOptionViewItem, index: AnyIndex
    ) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + 2 * (CHIP_PADDING + CHIP_MARGIN), size.height() + 4)
