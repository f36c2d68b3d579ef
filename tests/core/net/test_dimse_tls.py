"""SSL contexts built from TlsSettings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.net import TlsSettings, create_ssl_context
from tests.helpers.tls_certs import TestPki, make_test_pki


@pytest.fixture(name="pki", scope="module")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_context_verifies_by_default(pki: TestPki) -> None:
    context = create_ssl_context(TlsSettings(ca_file=pki.ca.cert))

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_context_without_verification(pki: TestPki) -> None:
    context = create_ssl_context(TlsSettings(verify=False))

    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


def test_context_loads_client_certificate(pki: TestPki) -> None:
    settings = TlsSettings(pki.ca.cert, pki.client.cert, pki.client.key)

    context = create_ssl_context(settings)

    assert context.verify_mode == ssl.CERT_REQUIRED


def test_missing_ca_file_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        create_ssl_context(TlsSettings(ca_file=tmp_path / "none.pem"))

    assert caught.value.field == "TLS CA file"
    assert "none.pem" in str(caught.value)


def test_invalid_ca_file_named(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")

    with pytest.raises(ValidationError) as caught:
        create_ssl_context(TlsSettings(ca_file=bogus))

    assert caught.value.field == "TLS CA file"


def test_mismatched_key_named(pki: TestPki) -> None:
    settings = TlsSettings(pki.ca.cert, pki.client.cert, pki.server.key)

    with pytest.raises(ValidationError) as caught:
        create_ssl_context(settings)

    assert caught.value.field == "TLS certificate file"


def test_key_without_certificate_rejected(pki: TestPki) -> None:
    with pytest.raises(ValidationError) as caught:
        create_ssl_context(TlsSettings(pki.ca.cert, key_file=pki.client.key))

    assert caught.value.field == "TLS key file"
