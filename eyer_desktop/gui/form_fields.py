"""Form rows with an inline validation message, shared by the settings dialogs.

Each row shows the core's ValidationError message under its field, in red,
and hides the message while the field is valid.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.errors import ValidationError

ERROR_STYLE = "color: #c62828;"
HINT_STYLE = "color: palette(placeholder-text);"


def field_message(error: ValidationError) -> str:
    """Return the core's message for display under the field it names.

    The field's label and the typed value are already in view next to it, so
    only the problem and the fix are shown, e.g. "Contains a backslash.
    Remove the backslash".
    """
    text = f"{error.problem}. {error.fix}"
    return text[:1].upper() + text[1:]


def align_labels(rows: Iterable[FormRows]) -> None:
    """Give the labels of several forms one width, so their fields line up."""
    labels = [label for form_rows in rows for label in form_rows.labels.values()]
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)


def widen_fields(rows: Iterable[FormRows], width: int) -> None:
    """Give the text fields of several forms a minimum width in pixels."""
    for form_rows in rows:
        for widget in form_rows.fields.values():
            if isinstance(widget, QLineEdit | PathField):
                widget.setMinimumWidth(width)


class ErrorLabel(QLabel):
    """The message shown under a field while its value is invalid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setStyleSheet(ERROR_STYLE)
        self.setVisible(False)

    def show_error(self, message: str | None) -> None:
        """Show ``message`` in red, or hide the label when it is None."""
        self.setStyleSheet(ERROR_STYLE)
        self.setText(message or "")
        self.setVisible(bool(message))
        self._fit_height()

    def show_hint(self, message: str) -> None:
        """Show ``message`` in the muted colour of a hint, not as an error."""
        self.setStyleSheet(HINT_STYLE)
        self.setText(message)
        self.setVisible(bool(message))
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        # A dialog's size constraint follows minimum sizes, which ignore the
        # extra lines of wrapped text, so the height for the current width is
        # made the minimum. Otherwise a long message is clipped.
        # Before the label is first laid out its width is a placeholder.
        if self.isVisible() and self.width() > 0:
            self.setMinimumHeight(self.heightForWidth(self.width()))


class PathField(QWidget):
    """A file path line edit with a Browse button.

    Signals:
        textChanged: The path text changed, by typing or browsing.
    """

    textChanged = Signal(str)  # noqa: N815 (the name QLineEdit uses)

    def __init__(
        self, caption: str, file_filter: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._caption = caption
        self._filter = file_filter
        self.line_edit = QLineEdit(self)
        self.line_edit.setClearButtonEnabled(True)
        self.line_edit.textChanged.connect(self.textChanged)
        self.browse_button = QPushButton(self.tr("Browse..."), self)
        self.browse_button.clicked.connect(self.browse)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line_edit, 1)
        layout.addWidget(self.browse_button)

    def text(self) -> str:
        return self.line_edit.text()

    def setText(self, text: str) -> None:  # noqa: N802 (the name QLineEdit uses)
        self.line_edit.setText(text)

    def setPlaceholderText(self, text: str) -> None:  # noqa: N802
        self.line_edit.setPlaceholderText(text)

    def browse(self) -> None:
        """Let the user pick the file in a file dialog."""
        path, _filter = QFileDialog.getOpenFileName(
            self, self._caption, self.line_edit.text(), self._filter
        )
        if path:
            self.line_edit.setText(path)


class FormRows:
    """Rows of a QFormLayout, each with an error label under its field.

    Errors are keyed by the field name the core's ValidationError carries,
    e.g. ``"AE Title"``.
    """

    def __init__(self, form: QFormLayout) -> None:
        self.form = form
        self.errors: dict[str, ErrorLabel] = {}
        self.labels: dict[str, QLabel] = {}
        self.fields: dict[str, QWidget] = {}
        self._cells: dict[str, QWidget] = {}

    def add(
        self, field: str, label: str, widget: QWidget, tooltip: str | None = None
    ) -> QWidget:
        """Add ``widget`` with its ``label``, and an error label under it."""
        parent = self.form.parentWidget()
        label_widget = QLabel(label, parent)
        label_widget.setBuddy(widget)
        if tooltip:
            label_widget.setToolTip(tooltip)
            widget.setToolTip(tooltip)

        cell = QWidget(parent)
        error = ErrorLabel(cell)
        error.setObjectName(f"error:{field}")
        layout = QVBoxLayout(cell)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(widget)
        layout.addWidget(error)
        self.form.addRow(label_widget, cell)

        self.errors[field] = error
        self.labels[field] = label_widget
        self.fields[field] = widget
        self._cells[field] = cell
        return widget

    def set_visible(self, field: str, visible: bool) -> None:
        """Show or hide a row: its label, its field and its error."""
        self.form.setRowVisible(self._cells[field], visible)

    def is_visible(self, field: str) -> bool:
        return self.form.isRowVisible(self._cells[field])

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show the message of each field in ``errors``; clear the others."""
        for field, label in self.errors.items():
            label.show_error(errors.get(field))
