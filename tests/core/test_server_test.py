"""The connection test's "Reachable" step and its certificate file checks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWebSettings,
    TlsSettings,
    check_settings_files,
)
from eyer_desktop.core.server_test import test_server as run_server_test
from eyer_desktop.core.servers import Server, ServerAction
from tests.helpers.dcmtk import free_port


@pytest.fixture(name="listener")
def listener_fixture() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def storage_server(port: int, tls: TlsSettings | None = None) -> Server:
    settings = DicomStorageSettings(
        calling_ae="EYERDESKTOP",
        called_ae="STORESCP",
        host="127.0.0.1",
        port=port,
        tls=tls or TlsSettings(),
    )
    return Server(
        key="ARQ001", name="Arquivo", action=ServerAction.MIRROR, settings=settings
    )


def test_closed_port_not_reachable() -> None:
    missing_ca = TlsSettings(enabled=True, ca_file=Path("/nonexistent.pem"))

    report = run_server_test(storage_server(free_port(), missing_ca))

    [step] = report.steps
    assert step.name == "Reachable"
    assert not step.ok
    assert "was refused" in step.detail


def test_tls_failure_after_reachable(listener: int) -> None:
    missing_ca = TlsSettings(enabled=True, ca_file=Path("/nonexistent.pem"))

    report = run_server_test(storage_server(listener, missing_ca))

    names = [step.name for step in report.steps]
    assert names == ["Reachable", "Association accepted"]
    assert report.steps[0].ok
    assert report.steps[0].detail == f"127.0.0.1:{listener}"
    assert not report.steps[1].ok


def test_dicomweb_closed_port_not_reachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    settings = DicomWebSettings(base_url=url, timeout=2.0)
    server = Server(
        key="WEB001", name="Nuvem", action=ServerAction.MIRROR, settings=settings
    )

    report = run_server_test(server)

    [step] = report.steps
    assert step.name == "Reachable"
    assert not step.ok
    assert f"Connection to {url} was refused" in step.detail


@pytest.mark.parametrize("name", ["ca_file", "cert_file"])
def test_missing_tls_file_rejected(tmp_path: Path, name: str) -> None:
    tls = TlsSettings(enabled=True, **{name: tmp_path / "missing.pem"})

    with pytest.raises(ValidationError) as caught:
        check_settings_files(storage_server(104, tls).settings)

    assert caught.value.problem == "does not exist"
    assert caught.value.value == str(tmp_path / "missing.pem")


def test_folder_as_ca_file_rejected(tmp_path: Path) -> None:
    settings = DicomWebSettings(base_url="https://127.0.0.1/x", ca_file=tmp_path)

    with pytest.raises(ValidationError) as caught:
        check_settings_files(settings)

    assert caught.value.field == "CA file"
    assert caught.value.problem == "is not a file"


def test_existing_files_accepted(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not checked here")
    tls = TlsSettings(enabled=True, ca_file=pem, cert_file=pem, key_file=pem)

    check_settings_files(storage_server(104, tls).settings)
    check_settings_files(DicomWebSettings(base_url="https://127.0.0.1/x", ca_file=pem))
