"""Painting of the exam list: thumbnails with eye badges, and status chips."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from eyer_desktop.core.exams import Laterality
from eyer_desktop.gui.exams.labels import EYE_COLORS, eye_badge
from eyer_desktop.gui.exams.model import LIST_THUMBNAIL_BOX, Role, Thumbnail
from eyer_desktop.gui.exams.status import (
    CHIP_COLORS,
    ChipState,
    ServerStatus,
    chip_label,
)

AnyIndex = QModelIndex | QPersistentModelIndex

THUMBNAIL_BOX = LIST_THUMBNAIL_BOX
THUMBNAIL_GAP = 6
ROW_PADDING = 6
CHIP_HEIGHT = 20
CHIP_GAP = 4
CHIP_LINE = CHIP_HEIGHT + CHIP_GAP
CHIP_ORDER = tuple(ChipState)
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


def eye_badge_pixmap(laterality: Laterality, font: QFont, ratio: float) -> QPixmap:
    """Return the OD or OS badge as a pixmap for a screen scale factor."""
    badge_font = QFont(font)
    badge_font.setBold(True)
    badge_font.setPointSizeF(max(font.pointSizeF() * 0.75, 6.0))
    metrics = QFontMetrics(badge_font)
    text = eye_badge(laterality)
    size = QSize(metrics.horizontalAdvance(text) + 6, metrics.height())
    pixmap = QPixmap(size * ratio)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)

    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(EYE_COLORS[laterality])
    painter.drawRoundedRect(QRectF(0, 0, size.width(), size.height()), 3, 3)
    painter.setFont(badge_font)
    painter.setPen(QColor("white"))
    painter.drawText(QRect(QPoint(0, 0), size), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


class _CellDelegate(QStyledItemDelegate):
    """Paints a cell's background and selection, then its own content."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        painter.save()
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(
                QStyle.ControlElement.CE_ItemViewItem, background, painter, widget
            )
        self.paint_content(painter, option, index)
        painter.restore()

    def paint_content(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        raise NotImplementedError


class ThumbnailDelegate(_CellDelegate):
    """Paints the first image of each eye with its OD or OS badge."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Badge pixmaps by eye, font and scale factor, painted once.
        self._badges: dict[tuple[Laterality, str, float], QPixmap] = {}

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:  # noqa: N802
        width = 2 * THUMBNAIL_BOX + THUMBNAIL_GAP + 2 * ROW_PADDING
        return QSize(width, THUMBNAIL_BOX + 2 * ROW_PADDING)

    def paint_content(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        thumbnails: tuple[Thumbnail, ...] = index.data(Role.THUMBNAILS) or ()
        rect = option.rect
        left = rect.left() + ROW_PADDING
        top = rect.top() + (rect.height() - THUMBNAIL_BOX) // 2
        ratio = painter.device().devicePixelRatioF()
        for thumbnail in thumbnails:
            box = QRect(left, top, THUMBNAIL_BOX, THUMBNAIL_BOX)
            if thumbnail.image is None:
                painter.fillRect(box, PLACEHOLDER_COLOR)
            else:
                painter.drawImage(
                    _fit(thumbnail.image.size() / ratio, box), thumbnail.image
                )
            badge = self._badge(thumbnail.laterality, option.font, ratio)
            badge_height = round(badge.height() / ratio)
            painter.drawPixmap(box.left() + 2, box.bottom() - badge_height - 1, badge)
            left += THUMBNAIL_BOX + THUMBNAIL_GAP

    def _badge(self, laterality: Laterality, font: QFont, ratio: float) -> QPixmap:
        key = (laterality, font.key(), ratio)
        badge = self._badges.get(key)
        if badge is None:
            badge = eye_badge_pixmap(laterality, font, ratio)
            self._badges[key] = badge
        return badge


class DeliveryChipDelegate(_CellDelegate):
    """Paints one chip per server, its name and the delivery state, one per line.

    Chips needing attention come first (failed, sending, queued, paused, then
    warnings and sent), so a server that has not taken the exam is never hidden
    behind one that has. When the row has no room for every chip, the last line
    says how many more there are.
    """

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:  # noqa: N802
        statuses = index.data(Role.DELIVERY) or ()
        metrics = QFontMetrics(option.font)
        width = max((chip_width(metrics, status) for status in statuses), default=0)
        return QSize(width + 2 * ROW_PADDING, THUMBNAIL_BOX + 2 * ROW_PADDING)

    def paint_content(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        statuses: tuple[ServerStatus, ...] = index.data(Role.DELIVERY) or ()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(option.font)
        metrics = QFontMetrics(option.font)
        rect = option.rect
        if not statuses:
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                rect.adjusted(ROW_PADDING, 0, 0, 0),
                Qt.AlignmentFlag.AlignVCenter,
                self.tr("not sent yet"),
            )
            return

        shown, hidden = layout_chips(statuses, rect.height())
        used = len(shown) + (hidden > 0)
        top = rect.top() + (rect.height() - used * CHIP_LINE + CHIP_GAP) // 2
        left = rect.left() + ROW_PADDING
        room = rect.right() - ROW_PADDING - left
        for status in shown:
            width = min(chip_width(metrics, status), room)
            chip = QRect(left, top, width, CHIP_HEIGHT)
            background, foreground = CHIP_COLORS[status.state]
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(background)
            painter.drawRoundedRect(QRectF(chip), CHIP_HEIGHT / 2, CHIP_HEIGHT / 2)
            painter.setPen(foreground)
            painter.drawText(
                chip,
                Qt.AlignmentFlag.AlignCenter,
                fitted_chip_text(metrics, status, width),
            )
            top += CHIP_LINE
        if hidden:
            painter.setPen(option.palette.color(QPalette.ColorRole.Text))
            painter.drawText(
                QRect(left, top, room, CHIP_HEIGHT),
                Qt.AlignmentFlag.AlignVCenter,
                self.tr("+%n more server(s)", "", hidden),
            )


def layout_chips(
    statuses: Sequence[ServerStatus], height: int
) -> tuple[list[ServerStatus], int]:
    """Return the chips that fit a cell of ``height``, most urgent first, and
    the number left out (the last line then counts them).
    """
    ordered = sorted(statuses, key=lambda status: CHIP_ORDER.index(status.state))
    lines = max(1, (height - 2 * ROW_PADDING + CHIP_GAP) // CHIP_LINE)
    if len(ordered) <= lines:
        return ordered, 0
    return ordered[: lines - 1], len(ordered) - (lines - 1)


def chip_width(metrics: QFontMetrics, status: ServerStatus) -> int:
    """Return the width of a status chip in logical pixels."""
    return metrics.horizontalAdvance(chip_text(status)) + CHIP_HEIGHT


def fitted_chip_text(metrics: QFontMetrics, status: ServerStatus, width: int) -> str:
    """Return the chip text for a chip ``width`` wide, shortening the server
    name, never the state, when the whole text does not fit.
    """
    state = f" \u00b7 {chip_label(status.state)}"
    room = width - CHIP_HEIGHT - metrics.horizontalAdvance(state)
    name = metrics.elidedText(status.server_name, Qt.TextElideMode.ElideRight, room)
    return name + state


def chip_text(status: ServerStatus) -> str:
    """Return the text of a status chip: server name and state."""
    return f"{status.server_name} \u00b7 {chip_label(status.state)}"


def _fit(size: QSize, box: QRect) -> QRect:
    """Return a rectangle of ``size`` centred in ``box``, shrunk to fit it."""
    if size.isEmpty():
        return box
    scaled = size
    if size.width() > box.width() or size.height() > box.height():
        scaled = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    left = box.left() + (box.width() - scaled.width()) // 2
    top = box.top() + (box.height() - scaled.height()) // 2
    return QRect(left, top, scaled.width(), scaled.height())
