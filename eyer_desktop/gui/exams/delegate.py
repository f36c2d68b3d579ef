"""Painting of the exam list: thumbnails with eye badges, and status chips."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from eyer_desktop.core.exams import Laterality
from eyer_desktop.gui.exams.labels import EYE_COLORS, eye_badge
from eyer_desktop.gui.exams.model import LIST_THUMBNAIL_SIZE, Column, Role, Thumbnail
from eyer_desktop.gui.exams.status import CHIP_COLORS, ServerStatus, chip_label

AnyIndex = QModelIndex | QPersistentModelIndex

THUMBNAIL_BOX = LIST_THUMBNAIL_SIZE // 2
"""Logical pixels of a list thumbnail. Images are decoded at twice this size
so they stay sharp on screens scaled to 200 %."""
THUMBNAIL_GAP = 6
ROW_PADDING = 6
CHIP_HEIGHT = 20
CHIP_GAP = 4
PLACEHOLDER_COLOR = QColor("#d7dce0")


def paint_eye_badge(
    painter: QPainter, rect: QRect, laterality: Laterality, font: QFont
) -> None:
    """Paint the OD or OS badge in the lower left corner of ``rect``."""
    badge_font = QFont(font)
    badge_font.setBold(True)
    badge_font.setPointSizeF(max(font.pointSizeF() * 0.75, 6.0))
    metrics = QFontMetrics(badge_font)
    text = eye_badge(laterality)
    width = metrics.horizontalAdvance(text) + 6
    height = metrics.height()
    badge = QRect(rect.left() + 2, rect.bottom() - height - 1, width, height)

    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(EYE_COLORS[laterality])
    painter.drawRoundedRect(QRectF(badge), 3, 3)
    painter.setFont(badge_font)
    painter.setPen(QColor("white"))
    painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


class ExamListDelegate(QStyledItemDelegate):
    """Paints the thumbnails and the delivery chips of the exam list."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        column = index.column()
        if column not in (Column.IMAGES, Column.DELIVERY):
            super().paint(painter, option, index)
            return

        painter.save()
        self._paint_background(painter, option, index)
        if column == Column.IMAGES:
            self._paint_thumbnails(painter, option, index.data(Role.THUMBNAILS))
        else:
            self._paint_chips(painter, option, index.data(Role.DELIVERY))
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:  # noqa: N802
        hint = super().sizeHint(option, index)
        height = THUMBNAIL_BOX + 2 * ROW_PADDING
        if index.column() == Column.IMAGES:
            width = 2 * THUMBNAIL_BOX + THUMBNAIL_GAP + 2 * ROW_PADDING
            return QSize(width, height)
        if index.column() == Column.DELIVERY:
            statuses = index.data(Role.DELIVERY) or ()
            metrics = QFontMetrics(option.font)
            width = sum(
                self._chip_width(metrics, status) + CHIP_GAP for status in statuses
            )
            return QSize(max(width + 2 * ROW_PADDING, hint.width()), height)
        return QSize(hint.width(), max(hint.height(), height))

    def _paint_background(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        style = option.widget.style() if option.widget is not None else None
        if style is not None:
            style.drawControl(
                QStyle.ControlElement.CE_ItemViewItem,
                background,
                painter,
                option.widget,
            )

    def _paint_thumbnails(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        thumbnails: tuple[Thumbnail, ...] | None,
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = option.rect
        left = rect.left() + ROW_PADDING
        top = rect.top() + (rect.height() - THUMBNAIL_BOX) // 2
        for thumbnail in thumbnails or ():
            box = QRect(left, top, THUMBNAIL_BOX, THUMBNAIL_BOX)
            if thumbnail.image is None:
                painter.fillRect(box, PLACEHOLDER_COLOR)
            else:
                target = _fit(thumbnail.image.size(), box)
                painter.drawImage(target, thumbnail.image)
            paint_eye_badge(painter, box, thumbnail.laterality, option.font)
            left += THUMBNAIL_BOX + THUMBNAIL_GAP

    def _paint_chips(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        statuses: tuple[ServerStatus, ...] | None,
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(option.font)
        metrics = QFontMetrics(option.font)
        rect = option.rect
        left = rect.left() + ROW_PADDING
        top = rect.top() + (rect.height() - CHIP_HEIGHT) // 2
        if not statuses:
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                rect.adjusted(ROW_PADDING, 0, 0, 0),
                Qt.AlignmentFlag.AlignVCenter,
                self.tr("not queued"),
            )
            return
        for status in statuses:
            width = self._chip_width(metrics, status)
            if left + width > rect.right() and left > rect.left() + ROW_PADDING:
                painter.setPen(option.palette.color(QPalette.ColorRole.Text))
                painter.drawText(
                    QRect(left, top, rect.right() - left, CHIP_HEIGHT),
                    Qt.AlignmentFlag.AlignVCenter,
                    "\u2026",
                )
                break
            chip = QRect(left, top, width, CHIP_HEIGHT)
            background, foreground = CHIP_COLORS[status.state]
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(background)
            painter.drawRoundedRect(QRectF(chip), CHIP_HEIGHT / 2, CHIP_HEIGHT / 2)
            painter.setPen(foreground)
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, _chip_text(status))
            left += width + CHIP_GAP

    @staticmethod
    def _chip_width(metrics: QFontMetrics, status: ServerStatus) -> int:
        return metrics.horizontalAdvance(_chip_text(status)) + CHIP_HEIGHT


def _chip_text(status: ServerStatus) -> str:
    return f"{status.server_name} \u00b7 {chip_label(status.state)}"


def _fit(size: QSize, box: QRect) -> QRect:
    """Return the largest rectangle of ``size``'s shape centred in ``box``."""
    if size.isEmpty():
        return box
    scaled = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    left = box.left() + (box.width() - scaled.width()) // 2
    top = box.top() + (box.height() - scaled.height()) // 2
    return QRect(left, top, scaled.width(), scaled.height())
