"""The detail pane of one exam: patient data, large previews and deliveries.

Everything shown is read on a worker: the manifest, the outbox rows and the
decoded images. Each load carries a generation number, and a result is
applied only when it belongs to the exam and image still selected, so fast
clicking never shows an older exam's data.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.caches import DiskThumbnailCache
from eyer_desktop.core.exams import Exam, ExamImage, ImageRole, Laterality
from eyer_desktop.core.library import ExamLibrary, patient_display_name
from eyer_desktop.core.outbox import Delivery, HistoryEvent, Outbox
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.delegate import paint_eye_badge
from eyer_desktop.gui.exams.drag import DragExporter
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.exams.history_model import (
    DeliveryHistoryModel,
    EventColumn,
    ServerColumn,
    ServerDeliveryModel,
    summarize_deliveries,
)
from eyer_desktop.gui.exams.labels import (
    answer_label,
    capture_time_text,
    exam_type_label,
    eye_label,
    sex_label,
)
from eyer_desktop.gui.exams.preview import ImagePreview, decode_preview
from eyer_desktop.gui.exams.status import ChipState
from eyer_desktop.gui.exams.thumbnails import ThumbnailCache, ThumbnailLoader
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.workers import Worker, WorkerCancelledError, WorkerPool

logger = logging.getLogger(__name__)

STRIP_THUMBNAIL_SIZE = 192
STRIP_ICON_SIZE = QSize(96, 96)
ImageIdRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class ExamDetail:
    """The data of one exam that the pane shows, read on a worker."""

    exam: Exam
    deliveries: list[Delivery]
    events: list[HistoryEvent]


def load_detail(library: ExamLibrary, outbox: Outbox, exam_id: str) -> ExamDetail:
    """Read an exam's manifest, deliveries and delivery history."""
    exam = library.load(exam_id)
    return ExamDetail(exam, outbox.deliveries(exam_id=exam_id), outbox.history(exam_id))


def load_deliveries(
    outbox: Outbox, exam_id: str
) -> tuple[list[Delivery], list[HistoryEvent]]:
    """Read an exam's deliveries and delivery history."""
    return outbox.deliveries(exam_id=exam_id), outbox.history(exam_id)


def age_at(birth_date: dt.date, day: dt.date) -> int:
    """Return a person's age in whole years on a day."""
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)


def _diopter_text(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:+.2f}".replace("-", "\u2212")


class ImageStrip(QListWidget):
    """The images of an exam as thumbnails; selected ones can be dragged out.

    Signals:
        drag_requested: The user started dragging the selected images.
    """

    drag_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(STRIP_ICON_SIZE)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(STRIP_ICON_SIZE.height() + 48)

    def selected_image_ids(self) -> list[str]:
        """Return the ids of the selected images, in strip order."""
        items = sorted(self.selectedItems(), key=self.row)
        return [str(item.data(ImageIdRole)) for item in items]

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: N802, N803
        self.drag_requested.emit()


class ExamDetailPane(QWidget):
    """Shows one exam: patient and exam data, images, and deliveries.

    Signals:
        status_message: A passing outcome for the status bar: (text, ms).
    """

    status_message = Signal(str, int)

    def __init__(
        self,
        workspace: Workspace,
        pool: WorkerPool,
        *,
        thumbnail_cache: ThumbnailCache,
        disk_cache: DiskThumbnailCache | None,
        drag_exporter: DragExporter,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._library = workspace.library
        self._outbox = workspace.outbox
        self._pool = pool
        self._drag = drag_exporter
        self._thumbnails = ThumbnailLoader(pool, thumbnail_cache, disk_cache, self)
        self._thumbnails.thumbnail_ready.connect(self._thumbnail_ready)
        self._thumbnails.thumbnail_failed.connect(self._thumbnail_failed)
        self._exam_id: str | None = None
        self._exam: Exam | None = None
        self._generation = 0
        self._preview_generation = 0
        self._preview_worker: Worker | None = None
        self._stopped = False
        self._build()
        self.show_exam(None)

    # Layout

    def _build(self) -> None:
        self.placeholder = QLabel(
            self.tr("Select an exam to see its images, patient data and deliveries."),
            self,
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)

        self.header = QLabel(self)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._build_images_tab(), self.tr("Images"))
        self.tabs.addTab(self._build_delivery_tab(), self.tr("Delivery"))

        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.tabs, 1)

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(self.stack)

    def _build_images_tab(self) -> QWidget:
        tab = QWidget(self)
        self.preview = ImagePreview(tab)
        self.preview.zoom_changed.connect(self._show_zoom)

        self.zoom_label = QLabel(tab)
        self.zoom_out_button = self._tool_button(tab, "\u2212", self.tr("Zoom out (-)"))
        self.zoom_out_button.clicked.connect(self.preview.zoom_out)
        self.zoom_in_button = self._tool_button(tab, "+", self.tr("Zoom in (+)"))
        self.zoom_in_button.clicked.connect(self.preview.zoom_in)
        self.fit_button = self._tool_button(
            tab, self.tr("Fit"), self.tr("Fit the image in the view (0)")
        )
        self.fit_button.clicked.connect(self.preview.fit)
        self.actual_button = self._tool_button(
            tab, "1:1", self.tr("One image pixel per screen pixel (1)")
        )
        self.actual_button.clicked.connect(self.preview.actual_size)
        hint = QLabel(self.tr("Wheel to zoom, drag to pan"), tab)
        hint.setEnabled(False)

        bar = QHBoxLayout()
        for button in (
            self.zoom_out_button,
            self.zoom_in_button,
            self.fit_button,
            self.actual_button,
        ):
            bar.addWidget(button)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        bar.addWidget(hint)

        self.strip = ImageStrip(tab)
        self.strip.currentItemChanged.connect(self._current_image_changed)
        self.strip.itemSelectionChanged.connect(self._prefetch_selected_images)
        self.strip.drag_requested.connect(self._drag_images)
        self.strip.setToolTip(
            self.tr("Drag images to a folder to save them as DICOM files")
        )

        layout = QVBoxLayout(tab)
        layout.addWidget(self.preview, 1)
        layout.addLayout(bar)
        layout.addWidget(self.strip)
        return tab

    @staticmethod
    def _tool_button(parent: QWidget, text: str, tip: str) -> QToolButton:
        button = QToolButton(parent)
        button.setText(text)
        button.setToolTip(tip)
        button.setMinimumWidth(36)
        return button

    def _build_delivery_tab(self) -> QWidget:
        tab = QWidget(self)
        self.server_model = ServerDeliveryModel(self)
        self.server_view = QTableView(tab)
        self.server_view.setModel(self.server_model)
        self._configure_table(self.server_view, ServerColumn.LAST_ERROR)

        self.history_model = DeliveryHistoryModel(self)
        self.history_view = QTableView(tab)
        self.history_view.setModel(self.history_model)
        self._configure_table(self.history_view, EventColumn.DETAIL)

        self.no_delivery_label = QLabel(
            self.tr(
                "This exam has not been queued for any server. Exams are queued "
                "when they are sent, by the routing rules or with Send now."
            ),
            tab,
        )
        self.no_delivery_label.setWordWrap(True)

        splitter = QSplitter(Qt.Orientation.Vertical, tab)
        splitter.addWidget(self.server_view)
        splitter.addWidget(self.history_view)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([120, 400])
        layout = QVBoxLayout(tab)
        layout.addWidget(self.no_delivery_label)
        layout.addWidget(QLabel(self.tr("Per server, then every event:"), tab))
        layout.addWidget(splitter, 1)
        return tab

    @staticmethod
    def _configure_table(view: QTableView, stretch_column: int) -> None:
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setWordWrap(False)
        view.verticalHeader().setVisible(False)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)

    # Showing an exam

    @property
    def exam_id(self) -> str | None:
        return self._exam_id

    @property
    def exam(self) -> Exam | None:
        """The exam shown, once its manifest has been read."""
        return self._exam

    def show_exam(self, exam_id: str | None) -> None:
        """Show an exam, loading it on a worker, or the placeholder for None."""
        self._generation += 1
        self._exam_id = exam_id
        self._exam = None
        self.strip.clear()
        self._thumbnails.retain(())
        if exam_id is None:
            self.stack.setCurrentWidget(self.placeholder)
            self.preview.set_image(None, None)
            return
        if self._stopped:
            return
        self.stack.setCurrentIndex(1)
        self.header.setText(html.escape(self.tr("Loading the exam...")))
        self.preview.set_message(self.tr("Loading..."))
        worker = Worker(
            load_detail, self._library, self._outbox, exam_id, name="exam detail"
        )
        generation = self._generation
        on_ending(
            worker,
            self,
            lambda detail: self._detail_loaded(generation, detail),
            lambda error: self._detail_failed(generation, error),
        )
        self._pool.start(worker)

    def stop(self) -> None:
        """Start no new work and cancel queued thumbnails, before shutdown."""
        self._stopped = True
        self._generation += 1
        self._thumbnails.stop()
        if self._preview_worker is not None:
            self._preview_worker.cancel()

    def refresh_deliveries(self) -> None:
        """Read the shown exam's deliveries again, on a worker."""
        if self._exam is None or self._stopped:
            return
        generation = self._generation
        worker = Worker(
            load_deliveries, self._outbox, self._exam.exam_id, name="exam deliveries"
        )
        on_ending(
            worker,
            self,
            lambda result: self._deliveries_loaded(generation, *result),
            lambda error: logger.warning("Reading the deliveries failed: %s", error),
        )
        self._pool.start(worker)

    def _detail_loaded(self, generation: int, detail: ExamDetail) -> None:
        if generation != self._generation:
            return
        self._exam = detail.exam
        self.header.setText(self._header_html(detail.exam))
        self._fill_strip(detail.exam)
        self._deliveries_loaded(generation, detail.deliveries, detail.events)

    def _detail_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation or isinstance(error, WorkerCancelledError):
            return
        logger.warning("Reading exam %s failed: %s", self._exam_id, error)
        message = html.escape(str(error))
        self.header.setText(f"<p style='color:#b3261e'>{message}</p>")
        self.preview.set_message(self.tr("This exam cannot be read."))

    def _deliveries_loaded(
        self,
        generation: int,
        deliveries: Sequence[Delivery],
        events: Sequence[HistoryEvent],
    ) -> None:
        if generation != self._generation:
            return
        name = self._server_name
        summaries = summarize_deliveries(deliveries, name)
        self.server_model.set_rows(summaries)
        self.history_model.set_events(events, self._exam, name)
        self.no_delivery_label.setVisible(not summaries)
        failed = sum(
            1 for summary in summaries if summary.status.state is ChipState.FAILED
        )
        title = self.tr("Delivery")
        if failed:
            title = self.tr("Delivery (%1 failed)").replace("%1", str(failed))
        self.tabs.setTabText(1, title)
        self.tabs.setTabIcon(1, icon("failed") if failed else QIcon())

    def _server_name(self, key: str) -> str:
        server = self._workspace.servers.find(key)
        return server.name if server is not None else key

    # Header

    def _header_html(self, exam: Exam) -> str:
        patient = exam.patient
        name = patient_display_name(patient.name) or self.tr("(no name)")
        document = " ".join(
            part for part in (patient.document.type, patient.document.number) if part
        )
        born = "\u2014"
        if patient.birth_date is not None:
            years = age_at(patient.birth_date, exam.captured_at.date())
            born = (
                self.tr("%1 (%2 years at the exam)")
                .replace("%1", patient.birth_date.isoformat())
                .replace("%2", str(years))
            )
        lines = [
            f"<span style='font-size:14pt; font-weight:600'>{html.escape(name)}</span>",
            self._fields(
                (self.tr("Document"), document),
                (self.tr("Sex"), sex_label(patient.sex)),
                (self.tr("Born"), born),
            ),
            self._fields(
                (self.tr("Exam"), exam_type_label(exam.exam_type)),
                (self.tr("Captured"), capture_time_text(exam.captured_at)),
                (self.tr("Images"), str(len(exam.images))),
                (self.tr("Pupil dilated"), _optional_answer(exam.pupil_dilated)),
            ),
            self._fields(
                (self.tr("Diopters OD"), _diopter_text(exam.diopters.right)),
                (self.tr("Diopters OS"), _diopter_text(exam.diopters.left)),
            ),
        ]
        if exam.anamnesis:
            lines.append(self._anamnesis_html(exam))
        return "<br>".join(lines)

    @staticmethod
    def _fields(*pairs: tuple[str, str]) -> str:
        # Non-breaking spaces keep each label with its value when the line wraps.
        return " &nbsp;\u00b7&nbsp; ".join(
            f"<span style='color:#5f6b73'>{_unbroken(label)}:</span>&nbsp;"
            f"{_unbroken(value)}"
            for label, value in pairs
        )

    def _anamnesis_html(self, exam: Exam) -> str:
        answers = [
            (key.replace("_", " ").capitalize(), answer_label(value))
            for key, value in exam.anamnesis.items()
        ]
        return (
            f"<span style='color:#5f6b73'>{html.escape(self.tr('Anamnesis'))}:</span> "
            + "; ".join(
                f"{html.escape(label)}: {html.escape(value)}"
                for label, value in answers
            )
        )

    # Images

    def _fill_strip(self, exam: Exam) -> None:
        self.strip.clear()
        wanted = []
        for number, image in enumerate(exam.images, start=1):
            item = QListWidgetItem(self._item_text(image, number), self.strip)
            item.setData(ImageIdRole, image.image_id)
            item.setToolTip(eye_label(image.laterality))
            path = exam.image_path(image)
            wanted.append((path, STRIP_THUMBNAIL_SIZE))
            loaded = self._thumbnails.request(path, STRIP_THUMBNAIL_SIZE, exam.exam_id)
            item.setIcon(self._strip_icon(loaded, image.laterality))
        self._thumbnails.retain(wanted)
        if self.strip.count():
            self.strip.setCurrentRow(0)
        else:
            self.preview.set_message(self.tr("This exam has no images."))

    def _item_text(self, image: ExamImage, number: int) -> str:
        text = self.tr("Image %d") % number
        if image.role is ImageRole.MONTAGE:
            text = self.tr("Montage %d") % number
        return text

    def _strip_icon(self, image: QImage | None, laterality: Laterality) -> QIcon:
        size = STRIP_ICON_SIZE
        pixmap = QPixmap(size * self.devicePixelRatioF())
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        pixmap.fill(QColor("#d7dce0"))
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        box = pixmap.rect()
        box.setSize(size)
        if image is not None:
            scaled = image.size().scaled(size, Qt.AspectRatioMode.KeepAspectRatio)
            left = (size.width() - scaled.width()) // 2
            top = (size.height() - scaled.height()) // 2
            painter.fillRect(box, QColor("black"))
            painter.drawImage(box.adjusted(left, top, -left, -top), image)
        paint_eye_badge(painter, box, laterality, self.font())
        painter.end()
        return QIcon(pixmap)

    def _thumbnail_ready(self, path: Path, size: int) -> None:
        exam = self._exam
        if exam is None or size != STRIP_THUMBNAIL_SIZE:
            return
        for row in range(self.strip.count()):
            item = self.strip.item(row)
            image = exam.image(str(item.data(ImageIdRole)))
            if exam.image_path(image) == path:
                loaded = self._thumbnails.request(path, size, exam.exam_id)
                item.setIcon(self._strip_icon(loaded, image.laterality))

    def _thumbnail_failed(self, path: Path, size: int, error: object) -> None:
        # A thumbnail of an exam no longer shown, for example one just
        # deleted, fails unseen.
        exam = self._exam
        if exam is None or exam.folder is None or exam.folder not in path.parents:
            return
        self.status_message.emit(
            self.tr("A thumbnail cannot be shown: %s") % error, 8000
        )

    def selected_image_ids(self) -> list[str]:
        return self.strip.selected_image_ids()

    def _current_image_changed(self, current: QListWidgetItem | None) -> None:
        exam = self._exam
        if self._preview_worker is not None:
            self._preview_worker.cancel()
            self._preview_worker = None
        self._preview_generation += 1
        if exam is None or current is None or self._stopped:
            return
        image = exam.image(str(current.data(ImageIdRole)))
        self.preview.set_message(self.tr("Loading..."))
        generation = self._preview_generation
        worker = Worker(decode_preview, exam.image_path(image), name="preview")
        on_ending(
            worker,
            self,
            lambda decoded: self._preview_loaded(generation, decoded, image),
            lambda error: self._preview_failed(generation, error),
        )
        self._preview_worker = worker
        self._pool.start(worker)

    def _preview_loaded(
        self, generation: int, decoded: QImage, image: ExamImage
    ) -> None:
        if generation != self._preview_generation:
            return
        self._preview_worker = None
        self.preview.set_image(decoded, image.laterality)

    def _preview_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._preview_generation or isinstance(
            error, WorkerCancelledError
        ):
            return
        self._preview_worker = None
        logger.warning("Preview failed: %s", error)
        self.preview.set_message(str(error))

    def _show_zoom(self, scale: float) -> None:
        self.zoom_label.setText(f"{scale * 100:.0f} %")

    # Dragging images out

    def _prefetch_selected_images(self) -> None:
        selected = self.strip.selected_image_ids()
        if self._exam is not None and selected:
            self._drag.prefetch([self._exam.exam_id], selected)

    def _drag_images(self) -> None:
        selected = self.strip.selected_image_ids()
        if self._exam is None or not selected:
            return
        current = self.strip.currentItem()
        pixmap = current.icon().pixmap(STRIP_ICON_SIZE) if current else None
        self._drag.start_drag(self.strip, [self._exam.exam_id], selected, pixmap)


def _unbroken(text: str) -> str:
    return html.escape(text).replace(" ", "&nbsp;")


def _optional_answer(value: bool | None) -> str:
    return answer_label("unknown") if value is None else answer_label(value)
