"""A fake DICOMweb server on loopback that returns scripted replies.

Tests against Orthanc cover what a real server does. Orthanc 1.10.1 with the
DICOMweb 1.7 plugin cannot be made to return HTTP 5xx, 202, 409, 413 or 415,
to send warning or failure reasons or a malformed body, to stall, or to drop
a connection, and it crashes when it serves HTTPS. The tests of those cases
use this fake, which records every request it receives so tests can check
what the client sent.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class FakeReply:
    """One scripted reply.

    Attributes:
        status: HTTP status code.
        body: Response body.
        headers: Extra response headers.
        read_body: Read the request body before replying. False replies as
            soon as the headers arrived and then closes the connection.
        delay_s: Seconds to wait before replying.
        drop_connection: Close the connection without any reply.
        announced_length: Content-Length to announce instead of the body's
            length; a larger one makes a reply cut short.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    read_body: bool = True
    delay_s: float = 0.0
    drop_connection: bool = False
    announced_length: int | None = None


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the fake received it."""

    method: str
    path: str
    headers: Message
    body: bytes


def dicom_json_reply(status: int, document: dict[str, Any]) -> FakeReply:
    """Return a reply whose body is ``document`` as DICOM JSON."""
    return FakeReply(
        status=status,
        body=json.dumps(document).encode(),
        headers={"Content-Type": "application/dicom+json"},
    )


def malformed_reply(status: int, body: bytes) -> FakeReply:
    """Return a reply whose body is labelled DICOM JSON, whatever it contains."""
    return FakeReply(
        status=status, body=body, headers={"Content-Type": "application/dicom+json"}
    )


def nested_json(depth: int) -> bytes:
    """Return valid JSON: an array nested ``depth`` levels deep.

    Python's json parser raises RecursionError from about 1,000 levels on,
    with the default recursion limit.
    """
    return b"[" * depth + b"]" * depth


def store_response(
    stored: Sequence[tuple[str, int | None]] = (),
    failed: Sequence[tuple[str, int | None]] = (),
) -> dict[str, Any]:
    """Build a Store Instances Response in DICOM JSON.

    Args:
        stored: (SOP Instance UID, WarningReason or None) of each stored instance.
        failed: (SOP Instance UID, FailureReason or None) of each failed instance.
    """

    def item(uid: str, reason_key: str, reason: int | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.77.1.5.1"]},
            "00081155": {"vr": "UI", "Value": [uid]},
        }
        if reason is not None:
            entry[reason_key] = {"vr": "US", "Value": [reason]}
        return entry

    document: dict[str, Any] = {}
    if stored:
        document["00081199"] = {
            "vr": "SQ",
            "Value": [item(uid, "00081196", code) for uid, code in stored],
        }
    if failed:
        document["00081198"] = {
            "vr": "SQ",
            "Value": [item(uid, "00081197", code) for uid, code in failed],
        }
    return document


def write_self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a throwaway certificate and key for 127.0.0.1 with openssl.

    Returns:
        The certificate, which clients trust as their CA file, and its key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    certificate = folder / "certificate.pem"
    key = folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(certificate), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


def server_ssl_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """Return the server-side TLS context of the fake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context


class FakeDicomWebServer:
    """Replies from a queue of FakeReply, then with ``default_reply``.

    Attributes:
        replies: Replies still to send, first one first.
        default_reply: Reply once the queue is empty.
        requests: Every request received, in order.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.replies: deque[FakeReply] = deque()
        self.default_reply = FakeReply(status=200, body=b"[]")
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._ssl_context = ssl_context
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(
                self._httpd.socket, server_side=True
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-dicomweb",
            daemon=True,
        )

    @property
    def port(self) -> int:
        """TCP port the fake listens on."""
        port: int = self._httpd.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        """DICOMweb service root of the fake."""
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}/dicom-web"

    def queue(self, *replies: FakeReply) -> None:
        """Append replies to the queue."""
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> FakeReply:
        """Take the next reply from the queue, or the default one."""
        with self._lock:
            return self.replies.popleft() if self.replies else self.default_reply

    def record(self, request: ReceivedRequest) -> None:
        """Store a received request."""
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeDicomWebServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its end before a delayed reply,
        # so that reply fails to send. Other errors are bugs of the fake.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the fake's access log out of the test output."""

    def _serve(self) -> None:
        fake: FakeDicomWebServer = self.server.fake  # type: ignore[attr-defined]
        reply = fake.next_reply()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if reply.read_body else b""
        fake.record(ReceivedRequest(self.command, self.path, self.headers, body))

        time.sleep(reply.delay_s)
        if reply.drop_connection:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        announced = reply.announced_length
        self.send_header("Content-Length", str(announced or len(reply.body)))
        if not reply.read_body or (announced or 0) > len(reply.body):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()


@pytest.fixture(name="fake_dicomweb")
def fake_dicomweb_fixture() -> Iterator[FakeDicomWebServer]:
    """Return a running fake DICOMweb server over plain HTTP."""
    with FakeDicomWebServer() as server:
        yield server
