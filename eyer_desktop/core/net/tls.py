"""DICOM TLS settings of one endpoint and the SSL context built from them."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from eyer_desktop.core.errors import ValidationError


@dataclass(frozen=True)
class TlsSettings:
    """Files and checks of a TLS connection to one server.

    Attributes:
        ca_file: PEM file of the certificate authorities trusted to sign the
            server's certificate; None trusts the operating system's store.
        cert_file: PEM certificate this application presents to the server,
            for servers that require client certificates.
        key_file: PEM private key of ``cert_file``; None when the key is in
            ``cert_file`` itself.
        verify: Whether the server's certificate and host name are checked.
            Turning it off keeps the traffic encrypted but accepts any server.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True


def create_ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """Build the client-side SSL context of a TLS connection.

    With ``verify`` the context requires a certificate signed by a trusted
    authority and whose names include the host name or IP address the
    endpoint connects to.

    Raises:
        ValidationError: A file is missing or is not a valid PEM certificate or key.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    if settings.verify:
        _load_trusted_authorities(context, settings.ca_file)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    if settings.cert_file is not None:
        _load_client_certificate(context, settings.cert_file, settings.key_file)
    elif settings.key_file is not None:
        raise ValidationError(
            "TLS key file",
            str(settings.key_file),
            "a private key was given without a certificate",
            "Choose the client certificate file too, or clear the key file.",
        )
    return context


def _load_trusted_authorities(context: ssl.SSLContext, ca_file: Path | None) -> None:
    if ca_file is None:
        return

    _require_file("TLS CA file", ca_file)
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except ssl.SSLError as err:
        raise ValidationError(
            "TLS CA file",
            str(ca_file),
            f"not a PEM certificate file ({err.reason or err})",
            "Choose the PEM file of the authority that signed the server's "
            "certificate.",
        ) from err


def _load_client_certificate(
    context: ssl.SSLContext, cert_file: Path, key_file: Path | None
) -> None:
    _require_file("TLS certificate file", cert_file)
    if key_file is not None:
        _require_file("TLS key file", key_file)

    try:
        context.load_cert_chain(
            certfile=str(cert_file),
            keyfile=None if key_file is None else str(key_file),
            # An empty password makes an encrypted key fail with SSLError,
            # where no password at all would make OpenSSL prompt on the terminal.
            password=b"",
        )
    except ssl.SSLError as err:
        raise ValidationError(
            "TLS certificate file",
            str(cert_file),
            f"the certificate and key cannot be loaded ({err.reason or err})",
            "Choose a PEM certificate and the unencrypted PEM key that belongs to it.",
        ) from err


def _require_file(field: str, path: Path) -> None:
    if not path.is_file():
        raise ValidationError(
            field, str(path), "file not found", "Choose an existing PEM file."
        )
