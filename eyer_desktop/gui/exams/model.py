"""The exam list model: one row per exam folder of the library.

Valid exams show their summary; a folder whose manifest cannot be read is a
row in an error state with the reason, never hidden. Each row also carries
the delivery status of the exam per server, summarised as one chip state.

The model does no I/O. The page reads the library and the outbox in a worker
and hands the results to :meth:`ExamListModel.set_listing` and
:meth:`ExamListModel.set_delivery_counts`, which insert, remove and update
rows in place, so the selection and the scroll position survive a refresh.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QImage

from eyer_desktop.core.exams import ExamImage, ImageRole, Laterality
from eyer_desktop.core.library import BrokenExam, ExamSummary, LibraryListing
from eyer_desktop.gui.exams.labels import capture_time_text, exam_type_label
from eyer_desktop.gui.exams.status import (
    ServerStatus,
    StateCounts,
    chip_label,
    server_status,
)
from eyer_desktop.gui.exams.thumbnails import ThumbnailLoader
from eyer_desktop.gui.icons import icon

AnyIndex = QModelIndex | QPersistentModelIndex

LIST_THUMBNAIL_BOX = 64
_DISPLAY = Qt.ItemDataRole.DisplayRole.value
_USER = Qt.ItemDataRole.UserRole.value
"""Logical pixels of the square a list thumbnail fits in."""
ERROR_COLOR = QColor("#b3261e")


class Column(IntEnum):
    IMAGES = 0
    PATIENT = 1
    DOCUMENT = 2
    CAPTURED = 3
    TYPE = 4
    IMAGE_COUNT = 5
    DELIVERY = 6


class Role(IntEnum):
    """Custom data roles: raw values for the proxy, the delegate and tests."""

    EXAM_ID = Qt.ItemDataRole.UserRole + 1
    SUMMARY = Qt.ItemDataRole.UserRole + 2
    """The ExamSummary, or None for a broken exam."""
    ERROR = Qt.ItemDataRole.UserRole + 3
    """The reason a broken exam cannot be read, or None."""
    PATIENT_NAME = Qt.ItemDataRole.UserRole + 4
    DOCUMENT = Qt.ItemDataRole.UserRole + 5
    CAPTURED_AT = Qt.ItemDataRole.UserRole + 6
    EXAM_TYPE = Qt.ItemDataRole.UserRole + 7
    IMAGE_COUNT = Qt.ItemDataRole.UserRole + 8
    DELIVERY = Qt.ItemDataRole.UserRole + 9
    """A tuple of ServerStatus, one per server the exam has deliveries to."""
    THUMBNAILS = Qt.ItemDataRole.UserRole + 10
    """A tuple of Thumbnail: the first captured image of each eye."""
    SORT_KEY = Qt.ItemDataRole.UserRole + 11
    SEARCH_TEXT = Qt.ItemDataRole.UserRole + 12
    """Patient name, document and exam type, folded for searching."""
    FOLDER = Qt.ItemDataRole.UserRole + 13


@dataclass(frozen=True)
class Thumbnail:
    """One thumbnail shown in an exam's row."""

    laterality: Laterality
    path: Path
    image: QImage | None
    """The decoded thumbnail, or None while it loads."""


@dataclass
class _Row:
    exam_id: str
    summary: ExamSummary | None
    broken: BrokenExam | None
    folder: Path
    statuses: tuple[ServerStatus, ...] = ()
    search_text: str = ""
    texts: tuple[str, ...] = ()
    sort_keys: tuple[Any, ...] = ()


def fold(text: str) -> str:
    """Return text in lower case without accents, for searching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def row_images(summary: ExamSummary) -> list[ExamImage]:
    """Return the images a row shows: the first captured image of each eye."""
    chosen: dict[Laterality, ExamImage] = {}
    for image in summary.images:
        if image.role is ImageRole.CAPTURE:
            chosen.setdefault(image.laterality, image)
    return [chosen[eye] for eye in (Laterality.RIGHT, Laterality.LEFT) if eye in chosen]


def document_text(summary: ExamSummary) -> str:
    """Return the clinic document as shown: type and number."""
    return " ".join(
        part for part in (summary.document_type, summary.document_number) if part
    )


class ExamListModel(QAbstractTableModel):
    """The exams of the library, with thumbnails and delivery status."""

    def __init__(
        self,
        thumbnails: ThumbnailLoader | None = None,
        server_name: Callable[[str], str] | None = None,
        parent: QObject | None = None,
        *,
        thumbnail_size: int = LIST_THUMBNAIL_BOX,
    ) -> None:
        """Create an empty model.

        Args:
            thumbnails: Loader of the row thumbnails; None shows no thumbnails.
            server_name: Returns the name shown for a server key.
            parent: The owning QObject.
            thumbnail_size: Device pixels of the square thumbnails are decoded
                to fit: the logical box times the screen's scale factor, so
                painting never resamples them.
        """
        super().__init__(parent)
        self.thumbnail_size = thumbnail_size
        self._rows: list[_Row] = []
        self._positions: dict[str, int] = {}
        self._thumbnails = thumbnails
        self._server_name = server_name or (lambda key: key)
        self._counts: Mapping[str, Mapping[str, StateCounts]] = {}
        # Image file -> exam id of the row that shows its thumbnail.
        self._thumbnail_owners: dict[Path, str] = {}
        if thumbnails is not None:
            thumbnails.thumbnail_ready.connect(self._thumbnail_ready)

    # Qt model interface

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(Column)

    def headerData(  # noqa: N802
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._header_titles()[Column(section)]
        return None

    def _header_titles(self) -> dict[Column, str]:
        return {
            Column.IMAGES: self.tr("Preview"),
            Column.PATIENT: self.tr("Patient"),
            Column.DOCUMENT: self.tr("Document"),
            Column.CAPTURED: self.tr("Captured"),
            Column.TYPE: self.tr("Type"),
            Column.IMAGE_COUNT: self.tr("Images"),
            Column.DELIVERY: self.tr("Delivery"),
        }

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self._rows[index.row()].summary is not None:
            flags |= Qt.ItemFlag.ItemIsDragEnabled
        return flags

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Views call this for every role of every painted cell, so the common
        # cases come first and no enum is built on the way.
        position = index.row()
        if not 0 <= position < len(self._rows) or not index.isValid():
            return None
        row = self._rows[position]
        column = index.column()
        if role == _DISPLAY and row.summary is not None:
            return row.texts[column]
        if role >= _USER:
            return self._role_data(row, Column(column), role)
        if row.summary is None:
            return self._broken_data(row, Column(column), role)
        return self._exam_data(row, column, role)

    # Row data

    def _role_data(self, row: _Row, column: Column, role: int) -> Any:
        summary = row.summary
        if role == Role.SORT_KEY:
            return row.sort_keys[column]
        if role == Role.THUMBNAILS:
            return self._row_thumbnails(row)
        if role == Role.DELIVERY:
            return row.statuses
        if role == Role.EXAM_ID:
            return row.exam_id
        if role == Role.SUMMARY:
            return summary
        if role == Role.SEARCH_TEXT:
            return row.search_text
        if role == Role.ERROR:
            return str(row.broken.error) if row.broken is not None else None
        if role == Role.FOLDER:
            return str(summary.folder if summary is not None else row.folder)
        return self._summary_value(summary, role)

    @staticmethod
    def _summary_value(summary: ExamSummary | None, role: int) -> Any:
        if summary is None:
            return None
        values: dict[int, Any] = {
            Role.PATIENT_NAME: summary.patient_name,
            Role.DOCUMENT: document_text(summary),
            Role.CAPTURED_AT: summary.captured_at,
            Role.EXAM_TYPE: summary.exam_type,
            Role.IMAGE_COUNT: summary.image_count,
        }
        return values.get(role)

    def _exam_data(self, row: _Row, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.DELIVERY:
            return self._delivery_tooltip(row) or None
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.PATIENT:
            return "\n".join(filter(None, row.texts[Column.PATIENT : Column.CAPTURED]))
        if role == Qt.ItemDataRole.TextAlignmentRole and column == Column.IMAGE_COUNT:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def _broken_data(self, row: _Row, column: Column, role: int) -> Any:
        assert row.broken is not None
        if role == Qt.ItemDataRole.DisplayRole:
            if column is Column.PATIENT:
                return self.tr("Unreadable exam folder %s") % row.broken.folder.name
            if column is Column.DOCUMENT:
                return _first_line(str(row.broken.error))
            return ""
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(row.broken.error)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(ERROR_COLOR)
        if role == Qt.ItemDataRole.DecorationRole and column is Column.PATIENT:
            return icon("warning")
        return None

    def _delivery_text(self, row: _Row) -> str:
        return ", ".join(
            f"{status.server_name}: {chip_label(status.state)}"
            for status in row.statuses
        )

    def _delivery_tooltip(self, row: _Row) -> str:
        lines = [
            self.tr("%1: %2 (%3 of %4 images delivered)")
            .replace("%1", status.server_name)
            .replace("%2", chip_label(status.state))
            .replace("%3", str(status.done))
            .replace("%4", str(status.total))
            for status in row.statuses
        ]
        return "\n".join(lines)

    def _prepare(self, row: _Row) -> None:
        """Compute the row's texts and keys once, so painting and sorting are fast."""
        row.statuses = self._statuses(row.exam_id)
        delivery = self._delivery_text(row)
        summary = row.summary
        if summary is None:
            assert row.broken is not None
            row.search_text = fold(row.exam_id)
            row.texts = ("",) * len(Column)
            # Unreadable exams sort before every valid exam in ascending order.
            row.sort_keys = (-1, "", "", 0.0, "", -1, delivery)
            return
        row.search_text = _search_text(summary)
        row.texts = (
            "",
            summary.patient_name,
            document_text(summary),
            capture_time_text(summary.captured_at),
            exam_type_label(summary.exam_type),
            str(summary.image_count),
            delivery,
        )
        row.sort_keys = (
            summary.image_count,
            fold(summary.patient_name),
            fold(document_text(summary)),
            summary.captured_at.timestamp(),
            fold(exam_type_label(summary.exam_type)),
            summary.image_count,
            delivery,
        )

    def _row_thumbnails(self, row: _Row) -> tuple[Thumbnail, ...]:
        if row.summary is None:
            return ()
        thumbnails = []
        for image in row_images(row.summary):
            path = row.summary.folder / image.file
            loaded = None
            if self._thumbnails is not None:
                self._thumbnail_owners[path] = row.exam_id
                loaded = self._thumbnails.request(
                    path, self.thumbnail_size, row.exam_id
                )
            thumbnails.append(Thumbnail(image.laterality, path, loaded))
        return tuple(thumbnails)

    # Access by exam id

    def exam_ids(self) -> list[str]:
        """Return the exam ids of the rows, in row order."""
        return [row.exam_id for row in self._rows]

    def row_of(self, exam_id: str) -> int | None:
        """Return the row of an exam id, or None when it is not listed."""
        return self._positions.get(exam_id)

    def summary(self, exam_id: str) -> ExamSummary | None:
        """Return the summary of a listed exam, None for a broken or unknown one."""
        position = self._positions.get(exam_id)
        return None if position is None else self._rows[position].summary

    def broken_count(self) -> int:
        """Return the number of rows in an error state."""
        return sum(1 for row in self._rows if row.summary is None)

    def thumbnail_paths(self, rows: Iterable[int]) -> list[Path]:
        """Return the image files whose thumbnails the given rows show."""
        paths: list[Path] = []
        for position in rows:
            summary = self._rows[position].summary
            if summary is not None:
                paths.extend(
                    summary.folder / image.file for image in row_images(summary)
                )
        return paths

    # Updates

    def set_listing(self, listing: LibraryListing) -> None:
        """Show a new reading of the library, changing only rows that differ."""
        incoming: dict[str, _Row] = {}
        for summary in listing.exams:
            incoming[summary.exam_id] = _Row(
                summary.exam_id, summary, None, summary.folder
            )
        for broken in listing.broken:
            incoming[broken.folder.name] = _Row(
                broken.folder.name, None, broken, broken.folder
            )

        self._remove_missing(set(incoming))
        self._update_existing(incoming)
        self._append_new(incoming)

    def _remove_missing(self, keep: set[str]) -> None:
        for position in reversed(range(len(self._rows))):
            if self._rows[position].exam_id not in keep:
                self.beginRemoveRows(QModelIndex(), position, position)
                del self._rows[position]
                self.endRemoveRows()
        self._reindex()

    def _update_existing(self, incoming: Mapping[str, _Row]) -> None:
        last_column = len(Column) - 1
        for position, row in enumerate(self._rows):
            new = incoming[row.exam_id]
            if new.summary == row.summary and _same_broken(new.broken, row.broken):
                continue
            row.summary = new.summary
            row.broken = new.broken
            row.folder = new.folder
            self._prepare(row)
            self.dataChanged.emit(
                self.index(position, 0), self.index(position, last_column)
            )

    def _append_new(self, incoming: Mapping[str, _Row]) -> None:
        new_rows = [row for key, row in incoming.items() if key not in self._positions]
        if not new_rows:
            return
        for row in new_rows:
            self._prepare(row)
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new_rows) - 1)
        self._rows.extend(new_rows)
        self._reindex()
        self.endInsertRows()

    def _reindex(self) -> None:
        self._positions = {row.exam_id: n for n, row in enumerate(self._rows)}

    def set_delivery_counts(
        self, counts: Mapping[str, Mapping[str, StateCounts]]
    ) -> None:
        """Show new delivery counts: exam id, then server key, then state."""
        self._counts = counts
        for position, row in enumerate(self._rows):
            if self._statuses(row.exam_id) != row.statuses:
                self._prepare(row)
                index = self.index(position, Column.DELIVERY)
                self.dataChanged.emit(index, index)

    def _statuses(self, exam_id: str) -> tuple[ServerStatus, ...]:
        per_server = self._counts.get(exam_id, {})
        statuses = (
            server_status(key, self._server_name(key), per_server[key])
            for key in sorted(per_server)
        )
        return tuple(status for status in statuses if status is not None)

    def refresh_server_names(self) -> None:
        """Show the current server names after the server list changed."""
        self.set_delivery_counts(self._counts)

    def _thumbnail_ready(self, path: Path, size: int) -> None:
        exam_id = self._thumbnail_owners.get(path)
        position = self._positions.get(exam_id) if exam_id is not None else None
        if size != self.thumbnail_size or position is None:
            return
        index = self.index(position, Column.IMAGES)
        self.dataChanged.emit(index, index, [Role.THUMBNAILS])


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _same_broken(first: BrokenExam | None, second: BrokenExam | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.folder == second.folder and str(first.error) == str(second.error)


def _search_text(summary: ExamSummary) -> str:
    type_names = {exam_type_label(summary.exam_type), summary.exam_type.value}
    parts = [summary.patient_name, summary.document_number, summary.document_type]
    parts.extend(sorted(type_names))
    return fold(" ".join(parts))
