"""Throwaway certificate authorities and certificates made with openssl.

Every file is written into the test's own temporary folder. Keys are
unencrypted EC P-256 keys, and certificates are valid for two days.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

VALID_DAYS = "2"


@dataclass(frozen=True)
class CertificateFiles:
    """A PEM certificate and its PEM key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TestPki:
    """Certificates for TLS tests.

    Attributes:
        ca: The authority that signed ``server``, ``client`` and
            ``server_wrong_host``.
        other_ca: An unrelated authority, which signed nothing used here.
        server: Server certificate for 127.0.0.1 and localhost.
        server_wrong_host: Server certificate naming only another host.
        client: Client certificate for this application.
    """

    __test__ = False

    ca: CertificateFiles
    other_ca: CertificateFiles
    server: CertificateFiles
    server_wrong_host: CertificateFiles
    client: CertificateFiles


def make_test_pki(folder: Path) -> TestPki:
    """Create two authorities and the leaf certificates in ``folder``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    ca = _make_authority(folder, "ca", "Eyer Test CA")
    other_ca = _make_authority(folder, "other-ca", "Unrelated Test CA")
    server = _make_leaf(
        folder, ca, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost"
    )
    wrong_host = _make_leaf(
        folder, ca, "server-wrong-host", "pacs", "subjectAltName=DNS:pacs.example.test"
    )
    client = _make_leaf(folder, ca, "client", "EYERDESKTOP", "")
    return TestPki(ca, other_ca, server, wrong_host, client)


def _make_authority(folder: Path, name: str, common_name: str) -> CertificateFiles:
    files = CertificateFiles(folder / f"{name}.crt", folder / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(files.key), "-out", str(files.cert),
        "-days", VALID_DAYS, "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return files


def _make_leaf(
    folder: Path, ca: CertificateFiles, name: str, common_name: str, extension: str
) -> CertificateFiles:
    files = CertificateFiles(folder / f"{name}.crt", folder / f"{name}.key")
    request = folder / f"{name}.csr"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(files.key), "-out", str(request),
        "-subj", f"/CN={common_name}",
    )  # fmt: skip
    extensions = folder / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature"]
    if extension:
        lines.append(extension)
    extensions.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert),
        "-CAkey", str(ca.key), "-CAcreateserial", "-out", str(files.cert),
        "-days", VALID_DAYS, "-extfile", str(extensions),
    )  # fmt: skip
    return files


def _openssl(*arguments: str) -> None:
    result = subprocess.run(["openssl", *arguments], capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"openssl {arguments[0]} failed: {result.stderr.decode(errors='replace')}"
        )
