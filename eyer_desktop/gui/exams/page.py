"""The Exams page: the searchable exam list beside the detail of one exam.

The library and the outbox are read on workers: the list when the page opens,
when the library folder changes and after an import, and the delivery counts
every few seconds while the page is visible. Dropping image files or exam
folders anywhere on the window imports them; dragging exams or images out
writes their DICOM files where they are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QFileSystemWatcher,
    QItemSelection,
    QMimeData,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.caches import (
    DRAG_CACHE_AGE,
    THUMBNAIL_CACHE_AGE,
    THUMBNAIL_CACHE_FOLDER,
    DiskThumbnailCache,
    remove_stale_drag_files,
)
from eyer_desktop.core.errors import EyerError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.export import ExportReport
from eyer_desktop.core.library import ExamLibrary, LibraryListing
from eyer_desktop.core.outbox import DeliveryState, Outbox
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.delegate import (
    ROW_PADDING,
    THUMBNAIL_BOX,
    THUMBNAIL_GAP,
    DeliveryChipDelegate,
    ThumbnailDelegate,
)
from eyer_desktop.gui.exams.delete import DeletionReport, ExamDeleter, ExamToDelete
from eyer_desktop.gui.exams.detail import ExamDetailPane
from eyer_desktop.gui.exams.drag import DragExporter, DropContents, classify_drop
from eyer_desktop.gui.exams.endings import on_ending
from eyer_desktop.gui.exams.export import ExportDialog, export_summary
from eyer_desktop.gui.exams.import_dialog import ImportDialog
from eyer_desktop.gui.exams.labels import capture_time_text, plural
from eyer_desktop.gui.exams.model import (
    LIST_THUMBNAIL_BOX,
    Column,
    ExamListModel,
    Role,
)
from eyer_desktop.gui.exams.proxy import ExamFilterProxy
from eyer_desktop.gui.exams.thumbnails import ThumbnailCache, ThumbnailLoader
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.workers import Pools, Worker, WorkerPool

logger = logging.getLogger(__name__)

ROW_HEIGHT = THUMBNAIL_BOX + 2 * ROW_PADDING
COUNTS_INTERVAL_MS = 3000
WATCH_DELAY_MS = 500
STATUS_MS = 6000
BACKGROUND_THREADS = 2
SHUTDOWN_WAIT_MS = 10_000

DeliveryCounts = Mapping[str, Mapping[str, Mapping[DeliveryState, int]]]


def read_library(
    library: ExamLibrary, outbox: Outbox
) -> tuple[LibraryListing, DeliveryCounts]:
    """Read every exam summary and the delivery counts of the valid exams."""
    listing = library.list_exams()
    counts = outbox.exam_counts([summary.exam_id for summary in listing.exams])
    return listing, counts


def add_exam_folders(
    library: ExamLibrary, folders: Sequence[Path]
) -> list[tuple[Path, Exam | EyerError]]:
    """Copy exam folders into the library; return each folder's exam or error."""
    results: list[tuple[Path, Exam | EyerError]] = []
    for folder in folders:
        try:
            results.append((folder, library.add_folder(folder)))
        except EyerError as err:
            logger.warning("Adding the exam folder %s failed: %s", folder, err)
            results.append((folder, err))
    return results


class ExamTableView(QTableView):
    """The exam list, where a drag of the selected rows requests their DICOM files.

    Signals:
        drag_requested: The user started dragging the selected exams.
    """

    drag_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSortingEnabled(True)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

        # Fixed row heights let the view skip measuring every row, which keeps
        # scrolling through thousands of exams smooth.
        rows = self.verticalHeader()
        rows.setVisible(False)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(ROW_HEIGHT)

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: N802, N803
        self.drag_requested.emit()


class ExamsPage(QWidget):
    """The list of exams with search, import, export and the exam detail.

    Signals:
        status_message: A passing outcome for the status bar: (text, ms).
        exams_changed: Exams were added to the library by this page.
        exams_added: The same, with the list of the new exams' ids, so that
            the sending service can queue them.
        exams_deleted: Exams were deleted by this page, and their unfinished
            deliveries cancelled. Carries the list of their ids.
    """

    status_message = Signal(str, int)
    exams_changed = Signal()
    exams_added = Signal(object)
    exams_deleted = Signal(object)

    def __init__(
        self, workspace: Workspace, pools: Pools, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.context_menus: list[QMenu] = []
        """Menus the window adds at the top of an exam's context menu."""
        # Conversions, imports and exports run on the general pool, so closing
        # the window waits for them. Reads of the library and the outbox,
        # thumbnails and previews run on this pool of the page instead: they
        # are short, can be dropped at any time, and closing does not ask
        # about them.
        self.pool: WorkerPool = pools.general
        self.background = WorkerPool("exams-background", BACKGROUND_THREADS, self)
        # Opened here, on the GUI thread, before workers share the outbox.
        self._outbox = workspace.outbox
        self._library = workspace.library
        self._listing_worker: Worker | None = None
        self._counts_worker: Worker | None = None
        self._refresh_again = False
        self._drop_targets: list[QWidget] = []
        self.import_dialog: ImportDialog | None = None
        self.export_dialog: ExportDialog | None = None
        self.loaded_once = False
        self._stopped = False
        self._select_after_refresh: str | None = None

        self.thumbnail_cache = ThumbnailCache()
        self.disk_cache = DiskThumbnailCache(
            workspace.paths.cache_dir / THUMBNAIL_CACHE_FOLDER
        )
        self.thumbnails = ThumbnailLoader(
            self.background, self.thumbnail_cache, self.disk_cache, self
        )
        self.model = ExamListModel(
            self.thumbnails,
            self._server_name,
            self,
            thumbnail_size=round(LIST_THUMBNAIL_BOX * self.devicePixelRatioF()),
        )
        self.proxy = ExamFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.drag_exporter = DragExporter(workspace, self.pool, self)
        self.drag_exporter.status_message.connect(self.status_message)
        self.deleter = ExamDeleter(workspace, self.pool, self.background, self)
        self.deleter.status_message.connect(self.status_message)
        self.deleter.deleted.connect(self._exams_deleted)

        self._build_actions()
        self._build()
        self._connect()
        self._start_watching()
        # The first reads start from the event loop, once the window exists,
        # so that building the window starts no worker.
        QTimer.singleShot(0, self._start_reading)
        application = QCoreApplication.instance()
        if application is not None:
            application.aboutToQuit.connect(self.shutdown)

    def _start_reading(self) -> None:
        drag_cleanup = Worker(
            remove_stale_drag_files,
            self.drag_exporter.cache_root,
            DRAG_CACHE_AGE,
            name="remove stale drag files",
        )
        self.background.start(drag_cleanup)
        thumbnail_cleanup = Worker(
            self.disk_cache.remove_stale,
            THUMBNAIL_CACHE_AGE,
            name="remove stale thumbnails",
        )
        self.background.start(thumbnail_cleanup)
        self.refresh()

    # Layout

    def _build_actions(self) -> None:
        self.import_action = QAction(icon("file-open"), self.tr("&Import..."), self)
        self.import_action.setShortcut(QKeySequence.StandardKey.Open)
        self.import_action.setStatusTip(
            self.tr("Create an exam from JPEG or PNG files and patient data")
        )
        self.import_action.triggered.connect(self.browse_images)

        self.add_folder_action = QAction(
            icon("folder"), self.tr("Add Exam &Folder..."), self
        )
        self.add_folder_action.setStatusTip(
            self.tr(
                "Copy an exam folder, for example from a USB stick, into the library"
            )
        )
        self.add_folder_action.triggered.connect(self.browse_exam_folder)

        self.export_action = QAction(
            icon("copy"), self.tr("&Export to Folder..."), self
        )
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setStatusTip(
            self.tr("Write the selected exams as DICOM files to a folder or drive")
        )
        self.export_action.triggered.connect(self.export_selected)

        self.delete_action = QAction(icon("remove"), self.tr("&Delete..."), self)
        self.delete_action.setShortcut(QKeySequence.StandardKey.Delete)
        # The Delete key deletes exams only while the exam list has the focus,
        # never while the detail pane's image strip has it.
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.delete_action.setStatusTip(
            self.tr("Delete the selected exams and their images from this computer")
        )
        self.delete_action.setEnabled(False)
        self.delete_action.triggered.connect(self.delete_selected)

        self.refresh_action = QAction(self.tr("&Refresh"), self)
        self.refresh_action.setShortcut(QKeySequence.StandardKey.Refresh)
        self.refresh_action.triggered.connect(self.refresh)
        self.addAction(self.refresh_action)

    def file_actions(self) -> list[QAction]:
        """Return the actions the page adds to the File menu."""
        return [self.import_action, self.add_folder_action, self.export_action]

    def _build(self) -> None:
        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText(
            self.tr("Search by patient name, document or exam type")
        )
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel(self)

        bar = QHBoxLayout()
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.count_label)
        for action in (self.import_action, self.export_action, self.delete_action):
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(button)

        self.view = ExamTableView(self)
        self.view.setModel(self.proxy)
        self.view.addAction(self.delete_action)
        self.view.setItemDelegateForColumn(Column.IMAGES, ThumbnailDelegate(self.view))
        self.view.setItemDelegateForColumn(
            Column.DELIVERY, DeliveryChipDelegate(self.view)
        )
        self._size_columns()
        self.view.sortByColumn(Column.CAPTURED, Qt.SortOrder.DescendingOrder)

        self.empty_label = QLabel(self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.list_stack = QStackedWidget(self)
        self.list_stack.addWidget(self.view)
        self.list_stack.addWidget(self.empty_label)

        self.detail = ExamDetailPane(
            self.workspace,
            self.background,
            thumbnail_cache=self.thumbnail_cache,
            disk_cache=self.disk_cache,
            drag_exporter=self.drag_exporter,
            parent=self,
        )
        self.detail.status_message.connect(self.status_message)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.list_stack)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        list_width = sum(
            self.view.columnWidth(column)
            for column in Column
            if not self.view.isColumnHidden(column)
        )
        # The list starts wide enough for every column with a patient name of
        # about 180 pixels; the detail pane takes the rest.
        self.splitter.setSizes([list_width + 200, 520])

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)
        self.setAcceptDrops(True)

    def _size_columns(self) -> None:
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(Column.PATIENT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(Column.IMAGES, QHeaderView.ResizeMode.Fixed)
        header.setMinimumSectionSize(40)
        metrics = self.view.fontMetrics()
        widths = {
            Column.IMAGES: 2 * THUMBNAIL_BOX + THUMBNAIL_GAP + 2 * ROW_PADDING,
            Column.DOCUMENT: metrics.horizontalAdvance("CPF 000.000.000-00") + 16,
            Column.CAPTURED: metrics.horizontalAdvance("0000-00-00 00:00") + 16,
            Column.TYPE: metrics.horizontalAdvance("Panoramic") + 16,
            Column.IMAGE_COUNT: metrics.horizontalAdvance("Images") + 16,
            Column.DELIVERY: metrics.horizontalAdvance("EyerCloud \u00b7 sending") + 40,
        }
        for column, width in widths.items():
            self.view.setColumnWidth(column, width)
        # The document is shown in the detail pane and the patient's tooltip,
        # and is searchable; its column leaves the list room for the chips.
        self.view.setColumnHidden(Column.DOCUMENT, True)

    def _connect(self) -> None:
        self.search_edit.textChanged.connect(self._search_changed)
        selection = self.view.selectionModel()
        selection.selectionChanged.connect(self._selection_changed)
        self.view.drag_requested.connect(self._drag_exams)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.verticalScrollBar().valueChanged.connect(self._schedule_retain)
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.layoutChanged,
            self.proxy.modelReset,
        ):
            signal.connect(self._schedule_retain)
            signal.connect(self._update_count)

        self._retain_timer = QTimer(self)
        self._retain_timer.setSingleShot(True)
        self._retain_timer.setInterval(0)
        self._retain_timer.timeout.connect(self.retain_visible_thumbnails)

        self.counts_timer = QTimer(self)
        self.counts_timer.setInterval(COUNTS_INTERVAL_MS)
        self.counts_timer.timeout.connect(self._poll_counts)
        self.counts_timer.start()

    def _start_watching(self) -> None:
        root = self._library.root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            logger.warning("Creating the exam library %s failed: %s", root, err)
        self._watch_timer = QTimer(self)
        self._watch_timer.setSingleShot(True)
        self._watch_timer.setInterval(WATCH_DELAY_MS)
        self._watch_timer.timeout.connect(self.refresh)
        self.watcher = QFileSystemWatcher([str(root)], self)
        self.watcher.directoryChanged.connect(lambda _path: self._watch_timer.start())

    # Reading the library

    def is_refreshing(self) -> bool:
        return self._listing_worker is not None

    def shutdown(self, msecs: int = SHUTDOWN_WAIT_MS) -> bool:
        """Stop timers, start no new work and wait for the page's own pool.

        Returns:
            False when background work was still running after ``msecs``.
        """
        self._stopped = True
        self.counts_timer.stop()
        self._watch_timer.stop()
        self._retain_timer.stop()
        self.thumbnails.stop()
        self.detail.stop()
        self.drag_exporter.stop()
        self.background.cancel_all()
        return self.background.wait_for_done(msecs)

    def refresh(self) -> None:
        """Read the library and the delivery counts again, on a worker."""
        if self._stopped:
            return
        if self._listing_worker is not None:
            self._refresh_again = True
            return
        worker = Worker(read_library, self._library, self._outbox, name="read library")
        on_ending(worker, self, self._listing_read, self._listing_failed)
        self._listing_worker = worker
        self.background.start(worker)

    def _listing_read(self, result: tuple[LibraryListing, DeliveryCounts]) -> None:
        if self._stopped:
            return
        self._listing_worker = None
        listing, counts = result
        self.model.set_delivery_counts(counts)
        self.model.set_listing(listing)
        self.loaded_once = True
        self._update_count()
        self._schedule_retain()
        self._refresh_detail_if_gone()
        if self._select_after_refresh is not None:
            self.select_exam(self._select_after_refresh)
            self._select_after_refresh = None
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def _listing_failed(self, error: BaseException) -> None:
        self._listing_worker = None
        logger.warning("Reading the exam library failed: %s", error)
        self.status_message.emit(str(error), 15_000)
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def _poll_counts(self) -> None:
        if self._stopped or not self.isVisible() or self._counts_worker is not None:
            return
        ids = [
            exam_id
            for exam_id in self.model.exam_ids()
            if self.model.summary(exam_id) is not None
        ]
        worker = Worker(self._outbox.exam_counts, ids, name="delivery counts")
        on_ending(worker, self, self._counts_read, self._counts_failed)
        self._counts_worker = worker
        self.background.start(worker)
        self.detail.refresh_deliveries()

    def _counts_read(self, counts: DeliveryCounts) -> None:
        if self._stopped:
            return
        self._counts_worker = None
        self.model.set_delivery_counts(counts)

    def _counts_failed(self, error: BaseException) -> None:
        self._counts_worker = None
        logger.warning("Reading the delivery counts failed: %s", error)

    def _server_name(self, key: str) -> str:
        server = self.workspace.servers.find(key)
        return server.name if server is not None else key

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        broken = self.model.broken_count()
        if shown == total:
            text = plural(total, self.tr("1 exam"), self.tr("%n exams"))
        else:
            text = (
                self.tr("%1 of %2 exams")
                .replace("%1", str(shown))
                .replace("%2", str(total))
            )
        if broken:
            text += " " + self.tr("(%1 unreadable)").replace("%1", str(broken))
        self.count_label.setText(text)
        self._update_empty_state(total, shown)

    def _update_empty_state(self, total: int, shown: int) -> None:
        if shown:
            self.list_stack.setCurrentWidget(self.view)
            return
        if not self.loaded_once:
            text = self.tr("Reading the exam library...")
        elif total:
            text = self.tr("No exam matches \u201c%s\u201d.") % self.search_edit.text()
        else:
            text = self.tr(
                "No exams yet.\n\nDrop JPEG or PNG images or exam folders here, "
                "or choose File > Import."
            )
        self.empty_label.setText(text)
        self.list_stack.setCurrentWidget(self.empty_label)

    # Thumbnails of the visible rows

    def _schedule_retain(self) -> None:
        self._retain_timer.start()

    def visible_source_rows(self) -> list[int]:
        """Return the source rows of the exams the list shows on screen now."""
        viewport = self.view.viewport()
        first = self.view.rowAt(0)
        if first < 0:
            return []
        last = self.view.rowAt(viewport.height() - 1)
        if last < 0:
            last = self.proxy.rowCount() - 1
        rows = []
        for row in range(first, last + 1):
            source = self.proxy.mapToSource(self.proxy.index(row, 0))
            if source.isValid():
                rows.append(source.row())
        return rows

    def retain_visible_thumbnails(self) -> None:
        """Cancel queued thumbnails of rows that scrolled out of view."""
        paths = self.model.thumbnail_paths(self.visible_source_rows())
        size = self.model.thumbnail_size
        self.thumbnails.retain((path, size) for path in paths)

    # Selection

    def selected_exam_ids(self) -> list[str]:
        """Return the selected exams that can be read, in list order."""
        rows = sorted(
            index.row() for index in self.view.selectionModel().selectedRows()
        )
        ids = []
        for row in rows:
            index = self.proxy.index(row, 0)
            if index.data(Role.SUMMARY) is not None:
                ids.append(str(index.data(Role.EXAM_ID)))
        return ids

    def current_exam_id(self) -> str | None:
        """Return the exam shown in the detail pane."""
        return self.detail.exam_id

    def select_exam(self, exam_id: str) -> bool:
        """Select an exam in the list; return False when it is not shown."""
        row = self.model.row_of(exam_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.view.selectRow(index.row())
        self.view.scrollTo(index)
        return True

    def _selection_changed(
        self, _selected: QItemSelection, _deselected: QItemSelection
    ) -> None:
        current = self.view.selectionModel().currentIndex()
        selected_rows = self.view.selectionModel().selectedRows()
        exam_id = None
        if current.isValid() and self.view.selectionModel().isRowSelected(
            current.row(), QModelIndex()
        ):
            exam_id = str(current.data(Role.EXAM_ID))
        elif selected_rows:
            exam_id = str(selected_rows[0].data(Role.EXAM_ID))
        if exam_id != self.detail.exam_id:
            self.detail.show_exam(exam_id)
        self.delete_action.setEnabled(bool(selected_rows))
        ids = self.selected_exam_ids()
        if ids:
            self.drag_exporter.prefetch(ids)

    def _refresh_detail_if_gone(self) -> None:
        exam_id = self.detail.exam_id
        if exam_id is not None and self.model.row_of(exam_id) is None:
            self.detail.show_exam(None)

    def _search_changed(self, text: str) -> None:
        self.proxy.set_search_text(text)
        self._update_count()

    # Import

    def browse_images(self) -> None:
        """Choose image files with a file dialog and open the import dialog."""
        names, _filter = QFileDialog.getOpenFileNames(
            self,
            self.tr("Import Images"),
            "",
            self.tr("JPEG and PNG images (*.jpg *.jpeg *.png)"),
        )
        if names:
            self.open_import_dialog([Path(name) for name in names])

    def browse_exam_folder(self) -> None:
        """Choose an exam folder with a folder dialog and add it to the library."""
        folder = QFileDialog.getExistingDirectory(self, self.tr("Add Exam Folder"))
        if folder:
            self.add_folders([Path(folder)])

    def open_import_dialog(self, paths: Sequence[Path] = ()) -> ImportDialog:
        """Open the import dialog with these images, or add them to an open one."""
        if self.import_dialog is not None and self.import_dialog.isVisible():
            self.import_dialog.add_images(paths)
            self.import_dialog.raise_()
            self.import_dialog.activateWindow()
            return self.import_dialog
        dialog = ImportDialog(
            self.workspace,
            self.pool,
            self.thumbnail_cache,
            self.disk_cache,
            thumbnail_pool=self.background,
            paths=paths,
            parent=self,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exam_imported.connect(self._exam_imported)
        dialog.destroyed.connect(lambda: setattr(self, "import_dialog", None))
        self.import_dialog = dialog
        dialog.open()
        return dialog

    def _exam_imported(self, exam: Exam) -> None:
        self.status_message.emit(
            plural(
                len(exam.images),
                self.tr("Imported an exam with 1 image"),
                self.tr("Imported an exam with %n images"),
            ),
            STATUS_MS,
        )
        self.exams_changed.emit()
        self.exams_added.emit([exam.exam_id])
        self._select_after_refresh = exam.exam_id
        self.refresh()

    def add_folders(self, folders: Sequence[Path]) -> None:
        """Copy exam folders into the library on a worker."""
        if self._stopped:
            return
        worker = Worker(
            add_exam_folders, self._library, list(folders), name="add folders"
        )
        on_ending(worker, self, self._folders_added, self._folders_failed)
        self.pool.start(worker)

    def _folders_added(self, results: list[tuple[Path, Exam | EyerError]]) -> None:
        if self._stopped:
            return
        added = [result for _folder, result in results if isinstance(result, Exam)]
        errors = [
            result for _folder, result in results if isinstance(result, EyerError)
        ]
        text = plural(len(added), self.tr("Added 1 exam"), self.tr("Added %n exams"))
        if errors:
            text += ". " + plural(
                len(errors),
                self.tr("1 folder not added: "),
                self.tr("%n folders not added, the first: "),
            )
            text += str(errors[0])
        self.status_message.emit(text, 15_000 if errors else STATUS_MS)
        if added:
            self.exams_changed.emit()
            self.exams_added.emit([exam.exam_id for exam in added])
            self.refresh()

    def _folders_failed(self, error: BaseException) -> None:
        logger.warning("Adding exam folders failed: %s", error)
        self.status_message.emit(str(error), 15_000)

    # Deleting

    def delete_selected(self) -> None:
        """Ask to confirm the deletion of the selected exams, unreadable ones too."""
        if self._stopped:
            return
        rows = sorted(
            index.row() for index in self.view.selectionModel().selectedRows()
        )
        exams = [self._exam_to_delete(self.proxy.index(row, 0)) for row in rows]
        self.deleter.request(exams)

    @staticmethod
    def _exam_to_delete(index: QModelIndex) -> ExamToDelete:
        exam_id = str(index.data(Role.EXAM_ID))
        summary = index.data(Role.SUMMARY)
        if summary is None:
            return ExamToDelete(exam_id, None)
        description = (
            f"{summary.patient_name}, {capture_time_text(summary.captured_at)}"
        )
        return ExamToDelete(exam_id, summary.image_count, description)

    def _exams_deleted(self, report: DeletionReport) -> None:
        if not report.deleted:
            return
        if self.detail.exam_id in report.deleted:
            self.detail.show_exam(None)
        for exam_id in report.deleted:
            self.thumbnail_cache.forget_exam(exam_id)
        self.drag_exporter.forget_exams(report.deleted)
        self.exams_deleted.emit(list(report.deleted))
        self.refresh()

    # Dropping files onto the window

    def accepts_mime(self, mime: QMimeData) -> bool:
        """Return whether a drag carries local files this page can import."""
        return mime.hasUrls() and any(url.isLocalFile() for url in mime.urls())

    def handle_drop(self, mime: QMimeData) -> DropContents:
        """Import dropped images with the dialog and add dropped exam folders."""
        contents = classify_drop(mime.urls())
        if contents.exam_folders:
            self.add_folders(contents.exam_folders)
        if contents.images:
            self.open_import_dialog(contents.images)
        if contents.is_empty():
            self.status_message.emit(
                self.tr(
                    "Nothing to import: drop JPEG or PNG images, or folders that "
                    "contain exam.json."
                ),
                STATUS_MS,
            )
        return contents

    def install_drop_target(self, widget: QWidget) -> None:
        """Accept drops of files anywhere on ``widget``, such as the main window."""
        if widget in self._drop_targets:
            return
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)
        self._drop_targets.append(widget)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        window = self.window()
        if window is not self:
            self.install_drop_target(window)
        self._schedule_retain()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched in self._drop_targets and isinstance(
            event, QDragEnterEvent | QDragMoveEvent | QDropEvent
        ):
            self._drop_event(event)
            return True
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        self._drop_event(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        self._drop_event(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._drop_event(event)

    def _drop_event(self, event: QDropEvent) -> None:
        # A drag that started in this application, such as an exam dragged
        # out of the list, is never imported back.
        if event.source() is not None or not self.accepts_mime(event.mimeData()):
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        if event.type() == QEvent.Type.Drop:
            self.handle_drop(event.mimeData())

    # Export and drag out

    def export_selected(self) -> ExportDialog | None:
        """Open the export dialog for the selected exams."""
        ids = self.selected_exam_ids()
        if not ids:
            self.status_message.emit(
                self.tr("Select the exams to export first."), STATUS_MS
            )
            return None
        dialog = ExportDialog(self.workspace, self.pool, ids, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exported.connect(self._exported)
        self.export_dialog = dialog
        dialog.destroyed.connect(lambda: setattr(self, "export_dialog", None))
        dialog.open()
        return dialog

    def _exported(self, report: ExportReport) -> None:
        timeout = 15_000 if report.failures else STATUS_MS
        self.status_message.emit(export_summary(report).splitlines()[0], timeout)

    def _drag_exams(self) -> None:
        ids = self.selected_exam_ids()
        if ids:
            self.drag_exporter.start_drag(self.view, ids)

    def _context_menu(self, position: QPoint) -> None:
        index = self.view.indexAt(position)
        if not index.isValid():
            return
        menu = QMenu(self)
        for extra in self.context_menus:
            menu.addMenu(extra)
        menu.addAction(self.export_action)
        menu.addAction(self.delete_action)
        folder = index.data(Role.FOLDER)
        show = menu.addAction(self.tr("Show Exam Folder"))
        show.triggered.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        )
        menu.popup(self.view.viewport().mapToGlobal(position))
