"""The editor of one server: every setting of its kind, checked as it is typed.

On every edit the dialog validates each field with the core's validators and
then builds the settings object and the server, so the message under a field
is the core's own ValidationError message. OK stays disabled while a value is
invalid. Passwords and tokens go to the keyring through the SecretStore,
never to the servers file. "Test connection" runs the core's server test on
the values in the form, in a worker, and lists each step's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop.core.errors import EyerError, SecretStoreError, ValidationError
from eyer_desktop.core.fields import (
    check_file_exists,
    validate_ae_title,
    validate_base_url,
    validate_host,
    validate_modality,
    validate_optional_path,
    validate_port,
    validate_server_name,
)
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomTimeouts,
    DicomWebSettings,
    DicomWorklistSettings,
    PatientNameOrder,
    ServerKind,
    ServerSettings,
    SopClassFallback,
    TlsSettings,
    WebAuth,
)
from eyer_desktop.core.server_test import ServerTestReport, test_server
from eyer_desktop.core.servers import Server, ServerAction, generate_key
from eyer_desktop.gui.form_fields import (
    HINT_STYLE,
    ErrorLabel,
    FormRows,
    PathField,
    align_labels,
    field_message,
    widen_fields,
)
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.servers.labels import (
    action_description,
    action_label,
    allowed_actions,
    kind_label,
)
from eyer_desktop.gui.servers.model import ServersModel
from eyer_desktop.gui.workers import Pools, Worker, WorkerSignals

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors of the form by the field name the core's ValidationError gives.
Errors = dict[str, ValidationError]

# The field name of the secret in error messages, as the core's SecretStore uses.
SECRET_FIELD = "Password or token"
PEM_FILTER = "PEM files (*.pem *.crt *.cer *.key);;All files (*)"
PLACEHOLDER_KEY = "NEW000"
FIELD_MIN_WIDTH = 340


@dataclass(frozen=True)
class FormResult:
    """The values of a valid form."""

    name: str
    action: ServerAction
    settings: ServerSettings
    secret: str | None
    """The password or token typed in the form, or None to keep the stored one."""


class TypedSecretStore(SecretStore):
    """A SecretStore that returns the secret typed in the form for one server.

    The connection test uses it, so a password can be tried before it is saved.
    """

    def __init__(self, stored: SecretStore, server_key: str, typed: str) -> None:
        super().__init__()
        self._stored = stored
        self._key = server_key.upper()
        self._typed = typed

    def get(self, server_key: str) -> str | None:
        if server_key.upper() == self._key:
            return self._typed
        return self._stored.get(server_key)


class ServerEditor(QDialog):
    """Add a server of one kind, or edit an existing server."""

    def __init__(
        self,
        model: ServersModel,
        secrets: SecretStore,
        pools: Pools,
        *,
        kind: ServerKind | None = None,
        server: Server | None = None,
        default_ae_title: str = "EYERDESKTOP",
        parent: QWidget | None = None,
    ) -> None:
        """Build the editor.

        Args:
            model: The servers model; the dialog saves through it.
            secrets: Where passwords and tokens are kept.
            pools: The worker pools; the connection test runs on the general one.
            kind: The kind of a new server; ignored when ``server`` is given.
            server: The server to edit, or None to add one.
            default_ae_title: The AE Title proposed for a new DICOM server.
            parent: The parent widget.
        """
        super().__init__(parent)
        if server is not None:
            self.kind = server.kind
        elif kind is not None:
            self.kind = kind
        else:
            raise ValueError("ServerEditor needs a kind for a new server")
        self._model = model
        self._secrets = secrets
        self._pools = pools
        self._server = server
        self._touched: set[str] = set()
        self._has_stored_secret = False
        self._keyring_problem: str | None = None
        self._test_signals: WorkerSignals | None = None
        self._test_worker: Worker | None = None
        self.result_values: FormResult | None = None

        self._build()
        self._load(server, default_ae_title)
        self._connect_edits()
        self.revalidate()

    # Building

    def _build(self) -> None:
        self.setObjectName("serverEditor")
        kind_text = kind_label(self.kind)
        if self._server is None:
            self.setWindowTitle(self.tr("Add %s server") % kind_text)
        else:
            self.setWindowTitle(self.tr("Edit server %s") % self._server.key)
        self.general_error = ErrorLabel(self)
        self.general_error.setObjectName("generalError")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(self.tr("Save"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        # The dialog grows when a message appears under a field, and shrinks
        # when the advanced settings are hidden.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addWidget(self._build_general())
        if self.kind is ServerKind.DICOMWEB:
            layout.addWidget(self._build_web())
        else:
            layout.addWidget(self._build_dicom())
            layout.addWidget(self._build_advanced())
        layout.addWidget(self._build_test())
        layout.addWidget(self.general_error)
        layout.addWidget(self.buttons)

        align_labels(self._all_rows())
        widen_fields(self._all_rows(), FIELD_MIN_WIDTH)

    def _build_advanced(self) -> QWidget:
        """Return TLS and timeouts, shown by a toggle because most clinics keep
        the defaults."""
        self.advanced_button = QToolButton(self)
        self.advanced_button.setObjectName("advancedToggle")
        self.advanced_button.setText(self.tr("TLS and timeouts"))
        self.advanced_button.setCheckable(True)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolButtonStyle(
            Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.toggled.connect(self.show_advanced)

        self.advanced = QWidget(self)
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        advanced_layout.addWidget(self._build_tls())
        advanced_layout.addWidget(self._build_timeouts())
        self.advanced.setVisible(False)

        section = QWidget(self)
        section_layout = QVBoxLayout(section)
        section_layout.setContentsMargins(0, 0, 0, 0)
        section_layout.addWidget(self.advanced_button, 0, Qt.AlignmentFlag.AlignLeft)
        section_layout.addWidget(self.advanced)
        return section

    def show_advanced(self, shown: bool) -> None:
        """Show or hide the TLS and timeout settings."""
        if self.advanced_button.isChecked() != shown:
            self.advanced_button.setChecked(shown)
            return
        self.advanced.setVisible(shown)
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.advanced_button.setArrowType(arrow)
        self.adjustSize()

    def _group(self, title: str) -> tuple[QGroupBox, FormRows]:
        group = QGroupBox(title, self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        return group, FormRows(form)

    def _build_general(self) -> QGroupBox:
        group, self.general_rows = self._group(self.tr("Server"))
        rows = self.general_rows

        self.name_edit = QLineEdit(group)
        self.name_edit.setPlaceholderText(self.tr("e.g. Clinic PACS"))
        rows.add("Name", self.tr("Name:"), self.name_edit)

        self.action_combo = QComboBox(group)
        for action in allowed_actions(self._server):
            self.action_combo.addItem(action_label(action), action.value)
            self.action_combo.setItemData(
                self.action_combo.count() - 1,
                action_description(action),
                Qt.ItemDataRole.ToolTipRole,
            )
        rows.add("Action", self.tr("Action:"), self.action_combo)
        self.action_hint = QLabel(group)
        self.action_hint.setWordWrap(True)
        self.action_hint.setAlignment(
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        )
        self.action_hint.setStyleSheet(HINT_STYLE)
        self.action_hint.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        rows.form.addRow("", self.action_hint)

        # A label, not an edit box: the key is generated and never typed.
        self.key_label = QLabel(group)
        self.key_label.setObjectName("serverKey")
        self.key_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        rows.add(
            "Key",
            self.tr("Key:"),
            self.key_label,
            self.tr(
                "Generated from the name when the server is added; it identifies "
                "the server in the queue, the logs and the command line and does "
                "not change when the server is renamed."
            ),
        )
        kind = QLabel(kind_label(self.kind), group)
        rows.form.addRow(self.tr("Kind:"), kind)
        return group

    def _build_dicom(self) -> QGroupBox:
        group, self.dicom_rows = self._group(self.tr("DICOM connection"))
        rows = self.dicom_rows

        self.calling_ae_edit = QLineEdit(group)
        rows.add(
            "AE Title",
            self.tr("AE Title:"),
            self.calling_ae_edit,
            self.tr("This application's AE title, sent as the calling AE"),
        )
        self.called_ae_edit = QLineEdit(group)
        self.called_ae_edit.setPlaceholderText(self.tr("e.g. PACS"))
        rows.add(
            "AET",
            self.tr("AET:"),
            self.called_ae_edit,
            self.tr("The server's AE title, sent as the called AE"),
        )
        self.host_edit = QLineEdit(group)
        self.host_edit.setPlaceholderText(self.tr("e.g. 192.168.0.10 or pacs.clinic"))
        rows.add("Host", self.tr("IP or host name:"), self.host_edit)
        self.port_edit = QLineEdit(group)
        self.port_edit.setPlaceholderText(self.tr("e.g. 104 or 11112"))
        self.port_edit.setMaxLength(5)
        rows.add("Port", self.tr("Port:"), self.port_edit)

        self.modality_edit = QLineEdit(group)
        rows.add(
            "Modality",
            self.tr("Modality:"),
            self.modality_edit,
            self.tr("Modality filter of the worklist query, e.g. OP; empty for all"),
        )
        rows.set_visible("Modality", self.kind is ServerKind.DICOM_WORKLIST)

        self.name_order_combo = QComboBox(group)
        self.name_order_combo.addItem(
            self.tr("Family name first (Family^Given)"),
            PatientNameOrder.FAMILY_GIVEN.value,
        )
        self.name_order_combo.addItem(
            self.tr("Given name first (Given^Family)"),
            PatientNameOrder.GIVEN_FAMILY.value,
        )
        rows.add(
            "Patient name order",
            self.tr("Patient name order:"),
            self.name_order_combo,
            self.tr("The order of the name parts this server expects"),
        )

        self.fallback_combo = QComboBox(group)
        self.fallback_combo.addItem(
            self.tr("None: send Ophthalmic Photography only"),
            SopClassFallback.NONE.value,
        )
        self.fallback_combo.addItem(
            self.tr("VL Photographic Image"), SopClassFallback.VL_PHOTOGRAPHIC.value
        )
        self.fallback_combo.addItem(
            self.tr("Secondary Capture Image"),
            SopClassFallback.SECONDARY_CAPTURE.value,
        )
        rows.add(
            "SOP class fallback",
            self.tr("If OP is rejected, send as:"),
            self.fallback_combo,
            self.tr(
                "The SOP class used when the archive does not accept "
                "Ophthalmic Photography"
            ),
        )
        rows.set_visible("SOP class fallback", self.kind is ServerKind.DICOM_STORAGE)
        return group

    def _build_tls(self) -> QGroupBox:
        group, self.tls_rows = self._group(self.tr("DICOM TLS"))
        group.setCheckable(True)
        group.setChecked(False)
        self.tls_group = group
        rows = self.tls_rows

        self.tls_ca_field = PathField(self.tr("CA certificates"), PEM_FILTER, group)
        self.tls_ca_field.setPlaceholderText(self.tr("The system's certificates"))
        rows.add("CA file", self.tr("CA file:"), self.tls_ca_field)
        self.tls_cert_field = PathField(
            self.tr("Client certificate"), PEM_FILTER, group
        )
        self.tls_cert_field.setPlaceholderText(self.tr("None"))
        rows.add(
            "Client certificate", self.tr("Client certificate:"), self.tls_cert_field
        )
        self.tls_key_field = PathField(self.tr("Client key"), PEM_FILTER, group)
        self.tls_key_field.setPlaceholderText(self.tr("In the certificate file"))
        rows.add("Client key", self.tr("Client key:"), self.tls_key_field)
        self.tls_verify_check = QCheckBox(
            self.tr("Check the server's certificate and host name"), group
        )
        rows.add("TLS verification", self.tr("Verification:"), self.tls_verify_check)
        return group

    def _build_timeouts(self) -> QGroupBox:
        group, self.timeout_rows = self._group(self.tr("Timeouts (seconds)"))
        self.timeout_spins: dict[str, QDoubleSpinBox] = {}
        labels = {
            "connect": self.tr("Connection:"),
            "acse": self.tr("Association (ACSE):"),
            "dimse": self.tr("Response (DIMSE):"),
            "network": self.tr("Idle connection:"),
        }
        for name, (field, low, high) in DicomTimeouts.LIMITS.items():
            spin = QDoubleSpinBox(group)
            spin.setRange(low, high)
            spin.setDecimals(1)
            spin.setSuffix(" s")
            self.timeout_rows.add(field, labels[name], spin)
            self.timeout_spins[name] = spin
        return group

    def _build_web(self) -> QGroupBox:
        group, self.web_rows = self._group(self.tr("DICOMweb connection"))
        rows = self.web_rows

        self.url_edit = QLineEdit(group)
        self.url_edit.setPlaceholderText("https://pacs.example.com/dicom-web")
        rows.add(
            "Base URL",
            self.tr("Base URL:"),
            self.url_edit,
            self.tr("The DICOMweb service root; STOW-RS requests go to /studies"),
        )
        self.auth_combo = QComboBox(group)
        self.auth_combo.addItem(self.tr("None"), WebAuth.NONE.value)
        self.auth_combo.addItem(
            self.tr("User name and password (Basic)"), WebAuth.BASIC.value
        )
        self.auth_combo.addItem(self.tr("Access token (Bearer)"), WebAuth.BEARER.value)
        rows.add("Authentication", self.tr("Authentication:"), self.auth_combo)
        self.username_edit = QLineEdit(group)
        rows.add("Username", self.tr("User name:"), self.username_edit)
        self.secret_edit = QLineEdit(group)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        rows.add(
            SECRET_FIELD,
            self.tr("Password:"),
            self.secret_edit,
            self.tr("Kept in the operating system's keyring, never in a file"),
        )
        self.verify_check = QCheckBox(
            self.tr("Check the server's certificate and host name"), group
        )
        rows.add(
            "HTTPS verification", self.tr("HTTPS verification:"), self.verify_check
        )
        self.web_ca_field = PathField(self.tr("CA certificates"), PEM_FILTER, group)
        self.web_ca_field.setPlaceholderText(self.tr("The system's certificates"))
        rows.add("CA file", self.tr("CA file:"), self.web_ca_field)
        self.web_timeout_spin = QDoubleSpinBox(group)
        low, high = DicomWebSettings.TIMEOUT_LIMITS
        self.web_timeout_spin.setRange(low, high)
        self.web_timeout_spin.setDecimals(1)
        self.web_timeout_spin.setSuffix(" s")
        rows.add("Timeout", self.tr("Timeout:"), self.web_timeout_spin)
        return group

    def _build_test(self) -> QGroupBox:
        group = QGroupBox(self.tr("Connection test"), self)
        self.test_button = QPushButton(
            icon("connection-test"), self.tr("Test Connection"), group
        )
        self.test_button.setToolTip(
            self.tr("Try the values in this form; nothing is saved")
        )
        self.test_button.clicked.connect(self.start_test)
        self.test_status = QLabel(
            self.tr("Checks that the server answers and accepts this application."),
            group,
        )
        self.test_status.setWordWrap(True)
        self.test_steps = QListWidget(group)
        self.test_steps.setObjectName("testSteps")
        self.test_steps.setWordWrap(True)
        self.test_steps.setVisible(False)

        layout = QVBoxLayout(group)
        layout.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.test_status)
        layout.addWidget(self.test_steps)
        return group

    # Loading values

    def _load(self, server: Server | None, default_ae_title: str) -> None:
        action = server.action if server is not None else default_action(self.kind)
        self.action_combo.setCurrentIndex(self.action_combo.findData(action.value))
        self._update_action_hint()
        if server is not None:
            self.name_edit.setText(server.name)
            self.key_label.setText(server.key)

        settings = server.settings if server is not None else None
        if self.kind is ServerKind.DICOMWEB:
            web = settings if isinstance(settings, DicomWebSettings) else None
            self._load_web(web or DicomWebSettings(), server)
        else:
            self._load_dicom(settings, default_ae_title)

    def _load_dicom(self, settings: ServerSettings | None, default_ae: str) -> None:
        if isinstance(settings, DicomStorageSettings | DicomWorklistSettings):
            self.calling_ae_edit.setText(settings.calling_ae)
            self.called_ae_edit.setText(settings.called_ae)
            self.host_edit.setText(settings.host)
            self.port_edit.setText(str(settings.port))
            _select(self.name_order_combo, settings.patient_name_order.value)
            timeouts, tls = settings.timeouts, settings.tls
        else:
            self.calling_ae_edit.setText(default_ae)
            timeouts, tls = DicomTimeouts(), TlsSettings()

        if isinstance(settings, DicomWorklistSettings):
            self.modality_edit.setText(settings.modality)
        else:
            self.modality_edit.setText("OP")
        if isinstance(settings, DicomStorageSettings):
            _select(self.fallback_combo, settings.sop_class_fallback.value)

        for name, spin in self.timeout_spins.items():
            spin.setValue(getattr(timeouts, name))
        self.show_advanced(tls.enabled or timeouts != DicomTimeouts())
        self.tls_group.setChecked(tls.enabled)
        self.tls_ca_field.setText(_path_text(tls.ca_file))
        self.tls_cert_field.setText(_path_text(tls.cert_file))
        self.tls_key_field.setText(_path_text(tls.key_file))
        self.tls_verify_check.setChecked(tls.verify)

    def _load_web(self, settings: DicomWebSettings, server: Server | None) -> None:
        self.url_edit.setText(settings.base_url or "")
        _select(self.auth_combo, settings.auth.value)
        self.username_edit.setText(settings.username)
        self.verify_check.setChecked(settings.verify_tls)
        self.web_ca_field.setText(_path_text(settings.ca_file))
        self.web_timeout_spin.setValue(settings.timeout)
        if server is not None and settings.auth is not WebAuth.NONE:
            self._load_secret_state(server.key)
        self._update_auth_fields()

    def _load_secret_state(self, key: str) -> None:
        try:
            self._has_stored_secret = self._secrets.get(key) is not None
        except (SecretStoreError, ValidationError) as error:
            logger.warning("Cannot read the secret of server %s: %s", key, error)
            self._keyring_problem = str(error)

    def _connect_edits(self) -> None:
        for rows in self._all_rows():
            for field, widget in rows.fields.items():
                signal = _change_signal(widget)
                if signal is not None:
                    signal.connect(lambda *_args, field=field: self._edited(field))
        if self.kind is not ServerKind.DICOMWEB:
            self.tls_group.toggled.connect(lambda _on: self._edited("TLS"))
        else:
            self.auth_combo.currentIndexChanged.connect(self._update_auth_fields)
        self.action_combo.currentIndexChanged.connect(self._update_action_hint)

    def _all_rows(self) -> list[FormRows]:
        if self.kind is ServerKind.DICOMWEB:
            return [self.general_rows, self.web_rows]
        return [self.general_rows, self.dicom_rows, self.tls_rows, self.timeout_rows]

    def _edited(self, field: str) -> None:
        self._touched.add(field)
        self.revalidate()

    def _update_action_hint(self) -> None:
        action = self.selected_action()
        if self.kind is ServerKind.DICOM_WORKLIST:
            text = (
                self.tr("Not queried for scheduled patients")
                if action is ServerAction.DEACTIVATED
                else self.tr("Queried for scheduled patients; receives no exams")
            )
        else:
            text = action_description(action)
        self.action_hint.setText(text)

    def _update_auth_fields(self) -> None:
        auth = WebAuth(self.auth_combo.currentData())
        self.web_rows.set_visible("Username", auth is WebAuth.BASIC)
        self.web_rows.set_visible(SECRET_FIELD, auth is not WebAuth.NONE)
        label = self.tr("Password:") if auth is WebAuth.BASIC else self.tr("Token:")
        self.web_rows.labels[SECRET_FIELD].setText(label)
        if self._has_stored_secret:
            self.secret_edit.setPlaceholderText(
                self.tr("Stored in the keyring; type to replace it")
            )
        self.revalidate()

    # Validation

    def selected_action(self) -> ServerAction:
        return ServerAction(self.action_combo.currentData())

    def revalidate(self) -> FormResult | None:
        """Check every field, show the messages, and enable OK when all are valid.

        Returns:
            The form's values, or None while one is invalid.
        """
        errors: Errors = {}
        result = self._check_form(errors)
        self._update_key_preview()

        shown = {f: error for f, error in errors.items() if self._should_show(f)}
        placed = {f: field_message(e) for f, e in shown.items() if self._has_row(f)}
        for rows in self._all_rows():
            rows.show_errors(placed)
        hidden = [f for f in errors if f not in shown]
        if self.kind is not ServerKind.DICOMWEB and any(
            f in self.tls_rows.errors or f in self.timeout_rows.errors for f in placed
        ):
            self.show_advanced(True)
        unplaced = [str(e) for f, e in shown.items() if f not in placed]
        if self._keyring_problem is not None:
            unplaced.insert(0, self._keyring_problem)
        if unplaced:
            self.general_error.show_error("\n".join(unplaced))
        elif hidden:
            fields = ", ".join(self._field_label(field) for field in hidden)
            self.general_error.show_hint(self.tr("To save, fill in: %s") % fields)
        else:
            self.general_error.show_error(None)

        self.ok_button.setEnabled(result is not None)
        return result

    def _should_show(self, field: str) -> bool:
        # A new server's empty fields are not errors until the user edits them;
        # the line above the buttons lists them instead.
        return self._server is not None or field in self._touched

    def _has_row(self, field: str) -> bool:
        return any(field in rows.errors for rows in self._all_rows())

    def _field_label(self, field: str) -> str:
        for rows in self._all_rows():
            if field in rows.labels:
                return rows.labels[field].text().rstrip(":")
        return field

    def _check_form(self, errors: Errors) -> FormResult | None:
        name = _check(errors, lambda: validate_server_name(self.name_edit.text()))
        settings: ServerSettings | None
        if self.kind is ServerKind.DICOMWEB:
            settings = self._check_web(errors)
        else:
            settings = self._check_dicom(errors)
        secret = self._check_secret(errors)
        if errors or name is None or settings is None:
            return None

        action = self.selected_action()
        trial = _check(errors, lambda: self._trial_server(name, action, settings))
        if trial is None:
            return None
        return FormResult(name, action, settings, secret)

    def _trial_server(
        self, name: str, action: ServerAction, settings: ServerSettings
    ) -> Server:
        """Build the server as it would be saved, to apply the core's server rules."""
        return Server(
            key=self.server_key(),
            name=name,
            action=action,
            settings=settings,
            is_primary_cloud=self._server is not None and self._server.is_primary_cloud,
        )

    def _check_dicom(self, errors: Errors) -> ServerSettings | None:
        values: dict[str, Any] = {
            "calling_ae": _check(
                errors,
                lambda: validate_ae_title(self.calling_ae_edit.text(), "AE Title"),
            ),
            "called_ae": _check(
                errors, lambda: validate_ae_title(self.called_ae_edit.text(), "AET")
            ),
            "host": _check(errors, lambda: validate_host(self.host_edit.text())),
            "port": _check(errors, lambda: validate_port(self.port_edit.text())),
            "patient_name_order": PatientNameOrder(self.name_order_combo.currentData()),
        }
        if self.kind is ServerKind.DICOM_WORKLIST:
            values["modality"] = _check(
                errors, lambda: validate_modality(self.modality_edit.text())
            )
        else:
            fallback = SopClassFallback(self.fallback_combo.currentData())
            values["sop_class_fallback"] = fallback
        timeouts = DicomTimeouts(
            **{name: spin.value() for name, spin in self.timeout_spins.items()}
        )
        tls = self._check_tls(errors)
        if errors or tls is None:
            return None

        settings_class = (
            DicomWorklistSettings
            if self.kind is ServerKind.DICOM_WORKLIST
            else DicomStorageSettings
        )
        return _check(
            errors, lambda: settings_class(**values, timeouts=timeouts, tls=tls)
        )

    def _check_tls(self, errors: Errors) -> TlsSettings | None:
        paths = {
            "ca_file": ("CA file", self.tls_ca_field),
            "cert_file": ("Client certificate", self.tls_cert_field),
            "key_file": ("Client key", self.tls_key_field),
        }
        values: dict[str, Any] = {
            name: _check_path(errors, widget, field)
            for name, (field, widget) in paths.items()
        }
        return _check(
            errors,
            lambda: TlsSettings(
                enabled=self.tls_group.isChecked(),
                verify=self.tls_verify_check.isChecked(),
                **values,
            ),
        )

    def _check_web(self, errors: Errors) -> DicomWebSettings | None:
        url_text = self.url_edit.text().strip()
        is_primary = self._server is not None and self._server.is_primary_cloud
        base_url: str | None = None
        if url_text or not is_primary:
            # Only the primary cloud may stay without a base URL (not configured).
            base_url = _check(errors, lambda: validate_base_url(url_text))
        ca_file = _check_path(errors, self.web_ca_field, "CA file")
        if errors:
            return None
        return _check(
            errors,
            lambda: DicomWebSettings(
                base_url=base_url,
                auth=WebAuth(self.auth_combo.currentData()),
                username=self.username_edit.text(),
                verify_tls=self.verify_check.isChecked(),
                ca_file=ca_file,
                timeout=self.web_timeout_spin.value(),
            ),
        )

    def _check_secret(self, errors: Errors) -> str | None:
        if self.kind is not ServerKind.DICOMWEB:
            return None
        auth = WebAuth(self.auth_combo.currentData())
        typed = self.secret_edit.text()
        if auth is WebAuth.NONE or typed:
            return typed or None
        # When the keyring cannot be read, whether a secret is stored is
        # unknown; the message above the buttons gives the reason.
        if not self._has_stored_secret and self._keyring_problem is None:
            errors[SECRET_FIELD] = ValidationError(
                SECRET_FIELD,
                None,
                "is missing",
                "Type it here; it is stored in the operating system's keyring",
            )
        return None

    def server_key(self) -> str:
        """Return the server's key, or the key it will get when it is added."""
        if self._server is not None:
            return self._server.key
        servers = self._model.servers
        in_use = [server.key for server in servers] + list(servers.retired_keys)
        try:
            return generate_key(validate_server_name(self.name_edit.text()), in_use)
        except EyerError:
            return PLACEHOLDER_KEY

    def _update_key_preview(self) -> None:
        if self._server is not None:
            return
        key = self.server_key()
        if key == PLACEHOLDER_KEY:
            self.key_label.setText(self.tr("Generated from the name"))
            self.key_label.setStyleSheet(HINT_STYLE)
        else:
            self.key_label.setText(key)
            self.key_label.setStyleSheet("")

    # Saving

    def accept(self) -> None:
        """Save the server and its secret, or stay open and show why saving failed."""
        result = self.revalidate()
        if result is None:
            return
        self.general_error.show_error(None)
        self._model.change_failed.connect(self.general_error.show_error)
        try:
            saved = (
                self._save_new(result)
                if self._server is None
                else self._save_edit(result)
            )
        finally:
            self._model.change_failed.disconnect(self.general_error.show_error)
        if saved:
            self.result_values = result
            super().accept()

    def _save_new(self, result: FormResult) -> bool:
        key = self.server_key()
        # The secret is stored first, so a DICOMweb server never exists in the
        # list without the credentials it needs.
        if result.secret is not None and not self._store_secret(key, result.secret):
            return False
        server = self._model.add_server(result.name, result.action, result.settings)
        if server is None:
            if result.secret is not None:
                self._delete_secret(key)
            return False
        if server.key != key and result.secret is not None:
            logger.error("Server %s got key %s, not the expected one", key, server.key)
            self._store_secret(server.key, result.secret)
            self._delete_secret(key)
        self._server = server
        return True

    def _save_edit(self, result: FormResult) -> bool:
        assert self._server is not None
        server = self._model.update_server(
            self._server.key,
            name=result.name,
            action=result.action,
            settings=result.settings,
        )
        if server is None:
            return False
        self._server = server

        settings = result.settings
        if isinstance(settings, DicomWebSettings) and settings.auth is WebAuth.NONE:
            return self._delete_secret(server.key)
        if result.secret is not None:
            return self._store_secret(server.key, result.secret)
        return True

    def _store_secret(self, key: str, secret: str) -> bool:
        try:
            self._secrets.set(key, secret)
        except (SecretStoreError, ValidationError) as error:
            self.general_error.show_error(str(error))
            return False
        return True

    def _delete_secret(self, key: str) -> bool:
        try:
            self._secrets.delete(key)
        except (SecretStoreError, ValidationError) as error:
            self.general_error.show_error(str(error))
            return False
        return True

    # Connection test

    def start_test(self) -> None:
        """Test the values in the form in a worker; the window stays responsive."""
        result = self.revalidate()
        if result is None:
            self._touched.update(self._error_fields())
            self.revalidate()
            self.test_status.setText(self.tr("Correct the values marked in red first."))
            return

        server = self._trial_server(result.name, result.action, result.settings)
        secrets: SecretStore = self._secrets
        if result.secret is not None:
            secrets = TypedSecretStore(self._secrets, server.key, result.secret)

        worker = Worker(test_server, server, secrets, name=f"test {server.key}")
        self._test_worker = worker
        self._test_signals = worker.signals
        worker.signals.finished.connect(self._show_test_report)
        worker.signals.failed.connect(self._show_test_error)
        self.test_button.setEnabled(False)
        self.test_status.setText(self.tr("Testing %s...") % self._describe(server))
        self.test_steps.clear()
        self.test_steps.setVisible(False)
        self._pools.general.start(worker)

    def is_testing(self) -> bool:
        return self._test_worker is not None

    def _error_fields(self) -> list[str]:
        errors: Errors = {}
        self._check_form(errors)
        return list(errors)

    def _describe(self, server: Server) -> str:
        settings = server.settings
        if isinstance(settings, DicomWebSettings):
            return settings.base_url or server.name
        return f"{settings.called_ae} @ {settings.host}:{settings.port}"

    def _show_test_report(self, report: object) -> None:
        if not self._is_current_test() or not isinstance(report, ServerTestReport):
            return
        self._end_test()
        if report.ok:
            self.test_status.setText(self.tr("All checks passed."))
        else:
            self.test_status.setText(self.tr("The test failed at the step marked red."))
        for step in report.steps:
            item = QListWidgetItem(
                icon("ok" if step.ok else "failed"), f"{step.name}: {step.detail}"
            )
            self.test_steps.addItem(item)
        self.test_steps.setVisible(True)
        self.test_steps.setFixedHeight(
            self.test_steps.sizeHintForRow(0) * (len(report.steps) + 1)
        )

    def _show_test_error(self, error: object) -> None:
        if not self._is_current_test():
            return
        self._end_test()
        message = str(error) if isinstance(error, EyerError) else repr(error)
        if not isinstance(error, EyerError):
            logger.error("Connection test failed unexpectedly: %r", error)
        self.test_status.setText(self.tr("The test could not run: %s") % message)

    def _is_current_test(self) -> bool:
        return self._test_signals is not None and self.sender() is self._test_signals

    def _end_test(self) -> None:
        self._test_worker = None
        self._test_signals = None
        self.test_button.setEnabled(True)

    def done(self, result: int) -> None:
        # A test still running ends unseen: its result must not reach a closed
        # dialog.
        if self._test_worker is not None:
            self._test_worker.cancel()
            self._test_worker = None
            self._test_signals = None
        super().done(result)


def default_action(kind: ServerKind) -> ServerAction:
    """Return the action proposed for a new server of ``kind``.

    A worklist server is read when the user looks up a patient, so Manual
    fits it; an archive usually receives every exam, as a Mirror.
    """
    if kind is ServerKind.DICOM_WORKLIST:
        return ServerAction.MANUAL
    return ServerAction.MIRROR


def _check(errors: Errors, build: Callable[[], T]) -> T | None:
    """Return ``build()``, or None after recording its ValidationError by field."""
    try:
        return build()
    except ValidationError as error:
        errors.setdefault(error.field, error)
        return None


def _check_path(errors: Errors, widget: PathField, field: str) -> Any:
    """Return the path typed in ``widget``, or None after recording why it is
    invalid: malformed, or not an existing file.
    """

    def build() -> Path | None:
        path = validate_optional_path(widget.text(), field)
        check_file_exists(path, field)
        return path

    return _check(errors, build)


def _select(combo: QComboBox, value: str) -> None:
    row = combo.findData(value)
    if row >= 0:
        combo.setCurrentIndex(row)


def _path_text(path: object) -> str:
    return "" if path is None else str(path)


def _change_signal(widget: QWidget) -> Any:
    if isinstance(widget, QLineEdit | PathField):
        return widget.textChanged
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, QDoubleSpinBox):
        return widget.valueChanged
    return None
