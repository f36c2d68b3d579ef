"""The Settings dialog: inline messages from the core, Save state, saving."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from eyer_desktop.core.settings import AppSettings, CharacterSet
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.settings_dialog import SettingsDialog


@pytest.fixture
def dialog(qtbot: QtBot, workspace: Workspace) -> SettingsDialog:
    created = SettingsDialog(workspace)
    qtbot.addWidget(created)
    created.show()
    return created


def type_into(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def error_text(dialog: SettingsDialog, name: str) -> str:
    for rows in dialog.rows:
        for field, label in rows.errors.items():
            if field.endswith(f"({name})"):
                return label.text() if label.isVisible() else ""
    raise KeyError(name)


def test_settings_dialog_shows_current_values(
    qtbot: QtBot, workspace: Workspace
) -> None:
    workspace.save_settings(
        AppSettings(institution_name="Clínica Sol", specific_character_set="ISO_IR 100")
    )
    dialog = SettingsDialog(workspace)
    qtbot.addWidget(dialog)

    assert dialog.edits["institution_name"].text() == "Clínica Sol"
    assert dialog.edits["default_ae_title"].text() == "EYERDESKTOP"
    assert dialog.charset() is CharacterSet.LATIN1
    assert dialog.ok_button.isEnabled()


def test_settings_backslash_prefix_rejected(
    qtbot: QtBot, dialog: SettingsDialog
) -> None:
    type_into(qtbot, dialog.edits["dicom_prefix"], "clinic\\")

    message = error_text(dialog, "dicom_prefix")
    assert message == "Contains a backslash. Remove the backslash"
    assert not dialog.ok_button.isEnabled()

    type_into(qtbot, dialog.edits["dicom_prefix"], "clinic_")
    assert error_text(dialog, "dicom_prefix") == ""
    assert dialog.ok_button.isEnabled()


def test_settings_every_invalid_field_shown(
    qtbot: QtBot, dialog: SettingsDialog
) -> None:
    type_into(qtbot, dialog.edits["default_ae_title"], "A" * 17)
    type_into(qtbot, dialog.edits["software_version"], "1.0\\2")

    assert "more than 16" in error_text(dialog, "default_ae_title")
    assert "Contains a backslash" in error_text(dialog, "software_version")
    assert not dialog.ok_button.isEnabled()


def test_settings_latin1_checks_characters(
    qtbot: QtBot, dialog: SettingsDialog
) -> None:
    # QTest aborts on keys outside ASCII, so the text is set as a paste would.
    dialog.edits["institution_name"].setText("Clínica 眼科")
    assert dialog.ok_button.isEnabled()

    dialog.charset_combo.setCurrentIndex(dialog.charset_combo.findData("ISO_IR 100"))

    message = error_text(dialog, "institution_name")
    assert "which ISO_IR 100 cannot encode" in message
    assert not dialog.ok_button.isEnabled()


def test_settings_saved_through_workspace(
    qtbot: QtBot, dialog: SettingsDialog, workspace: Workspace
) -> None:
    type_into(qtbot, dialog.edits["dicom_prefix"], "phelcom_")
    dialog.edits["institution_name"].setText("Clínica Sol")
    type_into(qtbot, dialog.edits["device_serial_number"], "EYR-000123")

    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    saved = AppSettings.load(workspace.paths.settings_file)
    assert saved.dicom_prefix == "phelcom_"
    assert saved.institution_name == "Clínica Sol"
    assert saved.device_serial_number == "EYR-000123"
    assert workspace.settings == saved
    assert dialog.saved == saved


def test_settings_save_failure_stays_open(
    qtbot: QtBot, dialog: SettingsDialog, workspace: Workspace
) -> None:
    # A folder in place of the settings file makes the write fail.
    workspace.paths.settings_file.mkdir(parents=True)
    type_into(qtbot, dialog.edits["dicom_prefix"], "phelcom_")

    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.isVisible()
    assert str(workspace.paths.settings_file) in dialog.general_error.text()
    assert workspace.settings.dicom_prefix == ""
