"""The Settings dialog: DICOM prefix, clinic and device data, character set.

Each field is checked on every edit by building :class:`AppSettings` with that
field and the chosen character set, so the message under a field is the
core's own, and the byte limits are counted in the chosen encoding. OK stays
disabled while a value is invalid; saving goes through the workspace.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.settings import (
    DESCRIPTIONS,
    LABELS,
    AppSettings,
    CharacterSet,
)
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.form_fields import (
    ErrorLabel,
    FormRows,
    align_labels,
    field_message,
    widen_fields,
)
from eyer_desktop.gui.icons import icon

logger = logging.getLogger(__name__)

TEXT_SETTINGS = (
    "dicom_prefix",
    "institution_name",
    "device_serial_number",
    "software_version",
    "default_ae_title",
)
CHARSET = "specific_character_set"
FIELD_MIN_WIDTH = 340


def _field(name: str) -> str:
    """Return the field name the core's ValidationError gives setting ``name``."""
    return f"{LABELS[name]} ({name})"


class SettingsDialog(QDialog):
    """Edit and save the application settings of a workspace."""

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.setObjectName("settingsDialog")
        self.setWindowTitle(self.tr("Settings"))
        self.setWindowIcon(icon("settings"))
        self.edits: dict[str, QLineEdit] = {}
        self.saved: AppSettings | None = None

        self._build()
        self._load(workspace.settings)
        for edit in self.edits.values():
            edit.textChanged.connect(self.revalidate)
        self.charset_combo.currentIndexChanged.connect(self.revalidate)
        self.revalidate()

    def _build(self) -> None:
        dicom, dicom_rows = self._group(self.tr("DICOM files"))
        clinic, clinic_rows = self._group(self.tr("Clinic and camera"))
        network, network_rows = self._group(self.tr("New DICOM servers"))
        self.rows = [dicom_rows, clinic_rows, network_rows]

        placeholders = {
            "dicom_prefix": self.tr("e.g. phelcom_"),
            "institution_name": self.tr("e.g. Clínica Olhos Claros"),
            "device_serial_number": self.tr("e.g. EYR-000123"),
            "software_version": self.tr("e.g. 2.4.1"),
            "default_ae_title": self.tr("e.g. EYERDESKTOP"),
        }
        where = {
            "dicom_prefix": dicom_rows,
            "institution_name": clinic_rows,
            "device_serial_number": clinic_rows,
            "software_version": clinic_rows,
            "default_ae_title": network_rows,
        }
        self.charset_combo = QComboBox(dicom)
        self.charset_combo.addItem(
            self.tr("Unicode UTF-8 (ISO_IR 192), recommended"), CharacterSet.UTF8.value
        )
        self.charset_combo.addItem(
            self.tr("Latin-1 (ISO_IR 100), for older archives"),
            CharacterSet.LATIN1.value,
        )
        dicom_rows.add(
            _field(CHARSET),
            self.tr("Character set:"),
            self.charset_combo,
            DESCRIPTIONS[CHARSET],
        )
        for name in TEXT_SETTINGS:
            edit = QLineEdit(self)
            edit.setObjectName(name)
            edit.setPlaceholderText(placeholders[name])
            self.edits[name] = edit
            label = self.tr("%s:") % LABELS[name]
            where[name].add(_field(name), label, edit, DESCRIPTIONS[name])

        self.general_error = ErrorLabel(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(self.tr("Save"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        note = QLabel(
            self.tr(
                "These values are written into every DICOM file converted from "
                "now on. Files already sent are not changed."
            ),
            self,
        )
        note.setWordWrap(True)

        layout = QVBoxLayout(self)
        # The dialog grows when a message appears under a field.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        for group in (dicom, clinic, network):
            layout.addWidget(group)
        layout.addWidget(note)
        layout.addWidget(self.general_error)
        layout.addWidget(self.buttons)
        align_labels(self.rows)
        widen_fields(self.rows, FIELD_MIN_WIDTH)

    def _group(self, title: str) -> tuple[QGroupBox, FormRows]:
        group = QGroupBox(title, self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        return group, FormRows(form)

    def _load(self, settings: AppSettings) -> None:
        for name, edit in self.edits.items():
            edit.setText(settings.get(name))
        row = self.charset_combo.findData(settings.specific_character_set.value)
        self.charset_combo.setCurrentIndex(max(row, 0))

    def charset(self) -> CharacterSet:
        return CharacterSet(self.charset_combo.currentData())

    def revalidate(self) -> AppSettings | None:
        """Check every field, show the messages, and enable OK when all are valid.

        Returns:
            The settings in the form, or None while one is invalid.
        """
        errors: dict[str, ValidationError] = {}
        charset = self.charset()
        for name, edit in self.edits.items():
            # One field at a time, with the chosen character set, so every
            # invalid field shows its own message at once.
            try:
                one_field: dict[str, Any] = {name: edit.text(), CHARSET: charset}
                AppSettings(**one_field)
            except ValidationError as error:
                errors[error.field] = error

        settings: AppSettings | None = None
        if not errors:
            values: dict[str, Any] = {
                name: edit.text() for name, edit in self.edits.items()
            }
            try:
                settings = AppSettings(**values, specific_character_set=charset)
            except ValidationError as error:
                errors[error.field] = error

        placed = {field for rows in self.rows for field in rows.errors}
        for rows in self.rows:
            rows.show_errors({f: field_message(e) for f, e in errors.items()})
        unplaced = [
            str(error) for field, error in errors.items() if field not in placed
        ]
        self.general_error.show_error("\n".join(unplaced) or None)
        self.ok_button.setEnabled(settings is not None)
        return settings

    def accept(self) -> None:
        """Save the settings through the workspace; stay open when that fails."""
        settings = self.revalidate()
        if settings is None:
            return
        if settings == self.workspace.settings:
            super().accept()
            return
        try:
            self.workspace.save_settings(settings)
        except ConfigError as error:
            logger.error("Cannot save the settings: %s", error)
            self.general_error.show_error(str(error))
            return
        self.saved = settings
        super().accept()
