"""A large image preview that zooms (wheel, + and -, fit) and pans (drag).

The view shows the eye of the image as a badge in its top left corner,
outside the zoomed scene, so the badge stays readable at every zoom.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from eyer_desktop.core.exams import Laterality
from eyer_desktop.core.exif import upright as exif_upright
from eyer_desktop.gui.exams.labels import EYE_COLORS, eye_label
from eyer_desktop.gui.exams.thumbnails import to_qimage

ZOOM_STEP = 1.25
MAX_ZOOM = 8.0
# The preview decodes at most this many pixels per side, enough to show a
# 4000 pixel fundus image at one image pixel per screen pixel.
MAX_PREVIEW_SIDE = 4096


class PreviewError(Exception):
    """An image file cannot be decoded for the preview."""


def decode_preview(path: Path, max_side: int = MAX_PREVIEW_SIDE) -> QImage:
    """Decode an image file upright into a QImage. Runs on any thread.

    Raises:
        PreviewError: The file cannot be read or decoded.
    """
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (max_side, max_side))
            upright = exif_upright(opened)
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb = upright.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise PreviewError(f"Decoding the image {path.name} failed: {err}") from err
    return to_qimage(rgb)


class ImagePreview(QGraphicsView):
    """Shows one image, zoomable and pannable.

    Signals:
        zoom_changed: The scale changed. Carries the new scale, where 1.0 is
            one image pixel per screen pixel.
    """

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.setScene(self._scene)
        self._laterality: Laterality | None = None
        self._message = ""
        self._fitted = True

        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor("#1e1e1e"))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)

    # Content

    def set_image(self, image: QImage | None, laterality: Laterality | None) -> None:
        """Show an image at fit size, or nothing when ``image`` is None."""
        self._message = ""
        self._laterality = laterality
        pixmap = QPixmap.fromImage(image) if image is not None else QPixmap()
        self._item.setPixmap(pixmap)
        self._scene.setSceneRect(QRectF(pixmap.rect()))
        self.fit()

    def set_message(self, text: str) -> None:
        """Show a text instead of an image, such as "Loading..."."""
        self._message = text
        self._laterality = None
        self._item.setPixmap(QPixmap())
        self.viewport().update()

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    @property
    def laterality(self) -> Laterality | None:
        return self._laterality

    # Zoom

    @property
    def zoom(self) -> float:
        """The current scale: 1.0 shows one image pixel per screen pixel."""
        return self.transform().m11()

    @property
    def is_fitted(self) -> bool:
        """True while the image is scaled to fit the view."""
        return self._fitted

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        """Show one image pixel per screen pixel."""
        self.set_zoom(1.0)

    def set_zoom(self, scale: float) -> None:
        """Scale the image, from a quarter of fit size to 8 times actual size.

        An image smaller than the view may also be shown at fit size.
        """
        if not self.has_image():
            return
        fit_scale = self._fit_scale()
        scale = min(max(scale, fit_scale / 4), max(MAX_ZOOM, fit_scale))
        self._fitted = False
        self.setTransform(QTransform.fromScale(scale, scale))
        self.zoom_changed.emit(scale)

    def fit(self) -> None:
        """Scale the image to fit the view and keep it fitted on resize."""
        self._fitted = True
        if not self.has_image():
            self.resetTransform()
            return
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom)

    def _fit_scale(self) -> float:
        bounds = self._item.boundingRect()
        view = self.viewport().rect()
        if bounds.isEmpty() or view.isEmpty():
            return 1.0
        return min(view.width() / bounds.width(), view.height() / bounds.height())

    # Events

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        steps = event.angleDelta().y() / 120
        if steps == 0 or not self.has_image():
            super().wheelEvent(event)
            return
        self.set_zoom(self.zoom * ZOOM_STEP**steps)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_out()
        elif key in (Qt.Key.Key_0, Qt.Key.Key_F):
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:  # noqa: N802
        painter.save()
        painter.resetTransform()
        if self._message:
            painter.setPen(QColor("#e0e0e0"))
            painter.drawText(
                self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self._message
            )
        elif self._laterality is not None and self.has_image():
            self._draw_badge(painter, self._laterality)
        painter.restore()

    def _draw_badge(self, painter: QPainter, laterality: Laterality) -> None:
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        metrics = QFontMetrics(font)
        text = eye_label(laterality)
        badge = QRect(
            10, 10, metrics.horizontalAdvance(text) + 16, metrics.height() + 8
        )
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(EYE_COLORS[laterality])
        painter.drawRoundedRect(QRectF(badge), 4, 4)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
