"""DICOMweb client: STOW-RS stores instances, QIDO-RS tests the connection.

The primary cloud and any other DICOMweb server are reached through
:class:`DicomWebClient`. It uses the standard library's ``http.client``
rather than ``urllib.request`` or a third-party package, for three reasons.
``http.client`` streams the multipart body from the files with a known
Content-Length. It never follows a redirect, whereas ``urllib.request`` turns
a redirected POST into a GET without a body. And it adds nothing to the
installer.

Every failure raises :class:`~eyer_desktop.core.errors.DeliveryError`.
``transient`` is True when a later retry may succeed unchanged: connection
errors, timeouts, HTTP 408, 429 and 5xx, and a STOW-RS response of HTTP 200
or 202 whose body is not a Store Instances Response in DICOM JSON. Any other
HTTP error status is permanent and its message names the cause and the fix.
Passwords and tokens never appear in messages or logs.
"""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import json
import logging
import socket
import ssl
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydicom import dcmread
from pydicom.datadict import keyword_for_tag
from pydicom.errors import InvalidDicomError

from eyer_desktop import __version__
from eyer_desktop.core.errors import DeliveryError, ValidationError
from eyer_desktop.core.net.deadline import (
    MIN_TRANSFER_RATE_TEXT,
    Deadline,
    DeadlineSocket,
    DeadlineSSLSocket,
    open_connection,
    transfer_seconds,
    wait_for_send_buffer,
)

logger = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = f"eyer-desktop/{__version__}"

# Files are read and sent in chunks of this size, one chunk at a time.
CHUNK_SIZE = 64 * 1024
# A STOW-RS or QIDO-RS response with limit=1 is a few kilobytes. A larger body
# is cut at this size, which leaves it unparsed rather than filling memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# The response size that the time limit of a request allows for.
EXPECTED_RESPONSE_BYTES = 64 * 1024


def request_time_limit(timeout: float, request_bytes: int) -> float:
    """Return the seconds a request may take from connecting to the last byte.

    A request may take the server's timeout to connect, the TLS handshake
    included, and the timeout again for the server to start its response.
    It may also take 1 s per 16 kB of its body and of a 64 KiB response,
    which is the speed of a 128 kbit/s link. So a large upload on a slow link
    still finishes. A server or link that trickles bytes fails the request
    in bounded time, although each byte arrives within the timeout.
    """
    return 2 * timeout + transfer_seconds(request_bytes + EXPECTED_RESPONSE_BYTES)


# Attributes of the Store Instances Response, as DICOM JSON keys.
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"

# Meanings of the FailureReason and WarningReason values of STOW-RS, which
# reuse the C-STORE status codes. Ranges are checked after exact codes.
REASON_MEANINGS: dict[int, str] = {
    0x0110: "processing failure",
    0x0111: "duplicate SOP instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0xB000: "coercion of data elements",
    0xB006: "elements discarded",
    0xB007: "data set does not match its SOP class",
    0xC122: "transfer syntax not supported",
}
REASON_RANGES: tuple[tuple[int, int, str], ...] = (
    (0xA700, 0xA7FF, "out of resources"),
    (0xA900, 0xA9FF, "data set does not match its SOP class"),
    (0xC000, 0xCFFF, "cannot understand the data set"),
)
OUT_OF_RESOURCES = range(0xA700, 0xA800)


def describe_reason(code: int) -> str:
    """Return the meaning of a STOW-RS FailureReason or WarningReason code."""
    if code in REASON_MEANINGS:
        return REASON_MEANINGS[code]
    for low, high, meaning in REASON_RANGES:
        if low <= code <= high:
            return meaning
    return "unknown reason"


# Authentication


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic authentication with a user name and password."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or ":" in self.username:
            raise ValidationError(
                "Username",
                self.username,
                "is empty or contains a colon",
                "Basic authentication needs a user name without a colon",
            )

    def header(self) -> str:
        """Return the value of the Authorization header."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class BearerAuth:
    """HTTP bearer authentication with an access token."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.token or any(char.isspace() for char in self.token):
            raise ValidationError(
                "Access token",
                None,
                "is empty or contains spaces or line breaks",
                "Paste the token again as one line",
            )

    def header(self) -> str:
        """Return the value of the Authorization header."""
        return f"Bearer {self.token}"


HttpAuth = BasicAuth | BearerAuth


# Results


class InstanceStatus(StrEnum):
    """Outcome of one instance on the server."""

    STORED = "stored"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class InstanceOutcome:
    """The server's outcome for one instance of a STOW-RS request.

    Attributes:
        sop_instance_uid: SOP Instance UID of the instance.
        status: STORED, WARNING (stored, but the server changed or dropped
            some data) or FAILED.
        reason_code: WarningReason (0008,1196) or FailureReason (0008,1197),
            or None when the server sent none.
        reason: Meaning of ``reason_code``, or why the instance counts as
            failed without one. Empty for a plain STORED.
    """

    sop_instance_uid: str
    status: InstanceStatus
    reason_code: int | None = None
    reason: str = ""

    def describe(self) -> str:
        """Return the outcome as one line, e.g. ``failed: 0xA900 (...)``."""
        if self.reason_code is None:
            return f"{self.status}: {self.reason}" if self.reason else self.status
        return f"{self.status}: 0x{self.reason_code:04X} ({self.reason})"


@dataclass(frozen=True)
class StowResult:
    """Outcome of a STOW-RS request the server accepted (HTTP 200 or 202).

    Attributes:
        http_status: 200 when every instance was stored, 202 when some failed
            or were stored with warnings.
        outcomes: One outcome per instance sent, in the order sent.
    """

    http_status: int
    outcomes: tuple[InstanceOutcome, ...]

    @property
    def stored(self) -> tuple[InstanceOutcome, ...]:
        """Instances the server stored, with or without a warning."""
        return tuple(o for o in self.outcomes if o.status is not InstanceStatus.FAILED)

    @property
    def warnings(self) -> tuple[InstanceOutcome, ...]:
        """Instances the server stored with a warning."""
        return tuple(o for o in self.outcomes if o.status is InstanceStatus.WARNING)

    @property
    def failed(self) -> tuple[InstanceOutcome, ...]:
        """Instances the server did not store."""
        return tuple(o for o in self.outcomes if o.status is InstanceStatus.FAILED)


class StowError(DeliveryError):
    """A STOW-RS request failed as a whole.

    Attributes:
        outcomes: One outcome per instance sent. An instance the response
            does not list as stored counts as failed.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        code: int | None = None,
        outcomes: tuple[InstanceOutcome, ...] = (),
    ) -> None:
        super().__init__(message, transient=transient, code=code)
        self.outcomes = outcomes


# Client


@dataclass(frozen=True)
class _ServiceRoot:
    url: str
    https: bool
    host: str
    port: int
    path: str


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class _TimeLimit:
    """The per-call timeout and the overall deadline of one request."""

    timeout: float
    request_bytes: int
    deadline: Deadline = field(init=False)

    def __post_init__(self) -> None:
        seconds = request_time_limit(self.timeout, self.request_bytes)
        object.__setattr__(self, "deadline", Deadline(seconds))


@dataclass(frozen=True)
class _Part:
    source: Path | bytes
    sop_instance_uid: str
    size: int


class _SourceReadError(Exception):
    """A file could not be read while its part of the body was being sent."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(path, error)
        self.path = path
        self.error = error


class DicomWebClient:
    """Client of one DICOMweb service root.

    Each call opens its own connection, so one client can serve several
    threads at once.
    """

    def __init__(
        self,
        base_url: str,
        auth: HttpAuth | None = None,
        *,
        verify_tls: bool = True,
        ca_file: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Check the settings and build the TLS context.

        Args:
            base_url: Service root, e.g. ``https://cloud.example.com/dicom-web``.
            auth: Credentials, or None for a server without authentication.
            verify_tls: Check the server's certificate and host name (HTTPS).
            ca_file: PEM file of certificate authorities trusted in addition to
                the operating system's.
            timeout: Seconds allowed for connecting and for each read or write.
                After an upload, reads also get the time that the bytes still
                queued take to leave. The whole request has a limit too (see
                :func:`request_time_limit`).

        Raises:
            ValidationError: A setting is invalid.
        """
        self._root = _parse_base_url(base_url)
        self._auth = auth
        if not timeout > 0:
            raise ValidationError(
                "Timeout", timeout, "is not a positive number", "Give seconds, e.g. 30"
            )
        self._timeout = timeout
        self._ssl_context: ssl.SSLContext | None = None
        if self._root.https:
            self._ssl_context = _create_ssl_context(verify_tls, ca_file)
        if self._root.https and not verify_tls:
            logger.warning("HTTPS certificate checks are off for %s", self.base_url)
        if not self._root.https and auth is not None and not _is_loopback(self._root):
            logger.warning("credentials are sent unencrypted to %s", self.base_url)

    @property
    def base_url(self) -> str:
        """Service root, without a trailing slash."""
        return self._root.url

    def store(self, instances: Sequence[Path | bytes]) -> StowResult:
        """Send Part 10 files or bytes to the server in one STOW-RS request.

        Returns:
            The per-instance outcomes when the server returned 200 or 202.

        Raises:
            ValidationError: An instance is not a readable DICOM Part 10 file.
            DeliveryError: The server could not be reached or did not return a
                response. A response with a status other than 200 and 202
                raises its subclass StowError, which carries the outcomes.
        """
        if not instances:
            raise ValidationError(
                "Instances", None, "none given", "Give at least one DICOM file"
            )
        parts = [_read_part(source, index) for index, source in enumerate(instances)]
        boundary = f"eyer-{uuid.uuid4().hex}"
        length = _multipart_length(parts, boundary)
        content_type = (
            f'multipart/related; type="application/dicom"; boundary={boundary}'
        )
        headers = self._headers(
            {"Content-Type": content_type, "Content-Length": str(length)}
        )
        operation = f"Sending {len(parts)} DICOM instance(s) to {self.base_url}"
        logger.info(
            "STOW-RS of %d instance(s), %d bytes, to %s",
            len(parts),
            length,
            self.base_url,
        )

        try:
            response = self._exchange(
                operation,
                "POST",
                "/studies",
                headers,
                _multipart(parts, boundary),
                body_size=length,
            )
        except _SourceReadError as err:
            raise ValidationError(
                "DICOM file",
                str(err.path),
                f"cannot be read ({err.error.strerror or err.error})",
                "Check that the file still exists, or convert the exam again",
            ) from err

        uids = [part.sop_instance_uid for part in parts]
        try:
            outcomes = _parse_outcomes(uids, response)
        except _MalformedBodyError as err:
            if response.status in (200, 202):
                raise _malformed_store_response(operation, response, uids, err) from err
            # The error status alone explains why the request failed.
            outcomes = _unreported_outcomes(uids, f"the response body {err}")
        if response.status in (200, 202):
            return _accepted(response.status, outcomes)
        raise _stow_error(operation, response, outcomes, self._auth, length)

    def check(self) -> None:
        """Test reachability and credentials with QIDO-RS ``studies?limit=1``.

        Raises:
            DeliveryError: The server cannot be reached, rejected the request
                or did not return DICOM JSON.
        """
        operation = f"Connection test of {self.base_url}"
        headers = self._headers({})
        response = self._exchange(operation, "GET", "/studies?limit=1", headers, None)

        if response.status == 204:
            return
        if response.status != 200:
            raise _http_error(operation, response, self._auth, "query studies")
        try:
            _check_query_result(response.body)
        except _MalformedBodyError as err:
            # Permanent, because a query response that is not a DICOM JSON
            # list comes from a URL that is not a DICOMweb service root, and
            # a retry does not change the URL.
            raise DeliveryError(
                f"{operation} failed: the server did not return DICOM JSON "
                f"(the response body {err}). Check that the base URL is the "
                "DICOMweb service root, e.g. https://cloud.example.com/dicom-web",
                transient=False,
                code=response.status,
            ) from err
        logger.info("connection test of %s passed", self.base_url)

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"Accept": DICOM_JSON, "User-Agent": USER_AGENT, **extra}
        if self._auth is not None:
            headers["Authorization"] = self._auth.header()
        return headers

    def _exchange(
        self,
        operation: str,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterator[bytes] | None,
        *,
        body_size: int = 0,
    ) -> _Response:
        limit = _TimeLimit(self._timeout, body_size)
        connection = self._connect(operation, limit)
        try:
            return _send_and_receive(
                connection,
                method,
                self._root.path + target,
                headers,
                body,
                limit=limit,
            )
        except (OSError, http.client.HTTPException) as err:
            raise _transfer_error(operation, err, limit) from err
        finally:
            connection.close()

    def _connect(self, operation: str, limit: _TimeLimit) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._ssl_context is not None:
            connection = http.client.HTTPSConnection(
                self._root.host, self._root.port, context=self._ssl_context
            )
        else:
            connection = http.client.HTTPConnection(self._root.host, self._root.port)

        # Connecting separately distinguishes a TLS handshake failure, which is
        # a configuration problem, from a failure in the middle of a transfer.
        # The socket is made here, not by http.client, so that every read and
        # write of the request ends by its deadline.
        address = (self._root.host, self._root.port)
        try:
            connection.sock = open_connection(
                address, limit.deadline, self._timeout, self._ssl_context
            )
        except ssl.SSLError as err:
            raise _tls_error(operation, err) from err
        except OSError as err:
            raise _transfer_error(operation, err, limit) from err
        return connection


# Request helpers


def _parse_base_url(base_url: str) -> _ServiceRoot:
    fix = "Give the service root, e.g. https://cloud.example.com/dicom-web"
    text = base_url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()

    if scheme not in ("http", "https"):
        raise ValidationError(
            "Base URL", base_url, "does not start with http:// or https://", fix
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Base URL",
            None,
            "contains a user name or password",
            "Remove them from the URL and enter the credentials separately",
        )
    if parts.query or parts.fragment:
        raise ValidationError("Base URL", base_url, "has a query or fragment", fix)
    if not parts.hostname:
        raise ValidationError("Base URL", base_url, "has no host", fix)
    try:
        port = parts.port
    except ValueError as err:
        raise ValidationError("Base URL", base_url, "has an invalid port", fix) from err

    path = parts.path.rstrip("/")
    default_port = 443 if scheme == "https" else 80
    return _ServiceRoot(
        url=f"{scheme}://{parts.netloc}{path}",
        https=scheme == "https",
        host=parts.hostname,
        port=port or default_port,
        path=path,
    )


def _is_loopback(root: _ServiceRoot) -> bool:
    if root.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(root.host).is_loopback
    except ValueError:
        return False


def _create_ssl_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The handshake and every read and write of a request end by its deadline.
    context.sslsocket_class = DeadlineSSLSocket
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file is None:
        return context

    try:
        context.load_verify_locations(cafile=str(ca_file))
    except FileNotFoundError as err:
        raise ValidationError(
            "CA file", str(ca_file), "file not found", "Choose an existing PEM file"
        ) from err
    except (ssl.SSLError, OSError) as err:
        raise ValidationError(
            "CA file",
            str(ca_file),
            f"is not a readable PEM certificate file ({err})",
            "Choose the PEM file of the authority that signed the server's certificate",
        ) from err
    return context


def _read_part(source: Path | bytes, index: int) -> _Part:
    label = str(source) if isinstance(source, Path) else f"instance {index + 1}"
    fix = "Send DICOM Part 10 files, as the exam conversion writes them"
    try:
        if isinstance(source, Path):
            size = source.stat().st_size
            dataset = dcmread(source, stop_before_pixels=True)
        else:
            size = len(source)
            dataset = dcmread(io.BytesIO(source), stop_before_pixels=True)
    except InvalidDicomError as err:
        raise ValidationError(
            "DICOM file", label, f"is not a DICOM Part 10 file ({err})", fix
        ) from err
    except OSError as err:
        raise ValidationError(
            "DICOM file", label, f"cannot be read ({err.strerror or err})", fix
        ) from err

    uid = dataset.get("SOPInstanceUID")
    if not uid:
        raise ValidationError("DICOM file", label, "has no SOP Instance UID", fix)
    return _Part(source=source, sop_instance_uid=str(uid), size=size)


def _part_header(boundary: str) -> bytes:
    return f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")


def _multipart_length(parts: Sequence[_Part], boundary: str) -> int:
    per_part = len(_part_header(boundary)) + len(b"\r\n")
    closing = len(f"--{boundary}--\r\n")
    return sum(part.size + per_part for part in parts) + closing


def _multipart(parts: Sequence[_Part], boundary: str) -> Iterator[bytes]:
    """Yield the multipart/related body, reading each file in chunks."""
    for part in parts:
        yield _part_header(boundary)
        if isinstance(part.source, Path):
            yield from _file_chunks(part.source, part.size)
        else:
            yield part.source
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def _file_chunks(path: Path, size: int) -> Iterator[bytes]:
    sent = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                sent += len(chunk)
                yield chunk
    except OSError as err:
        raise _SourceReadError(path, err) from err

    # Content-Length was computed from the sizes, so a file that changed size
    # would corrupt the body.
    if sent != size:
        changed = OSError(f"its size changed from {size} to {sent} bytes")
        raise _SourceReadError(path, changed)


def _send_and_receive(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: dict[str, str],
    body: Iterator[bytes] | None,
    *,
    limit: _TimeLimit,
) -> _Response:
    try:
        connection.request(method, target, body=body, headers=headers)
        sock = connection.sock
        if isinstance(sock, DeadlineSocket | DeadlineSSLSocket):
            wait_for_send_buffer(sock, limit.timeout, limit.request_bytes)
    except (BrokenPipeError, ConnectionResetError) as err:
        # A server may return an error such as 401 or 413 and close the
        # connection before it reads the whole body. Its response is then
        # still waiting in the socket and is more useful than the broken pipe.
        try:
            return _receive(connection)
        except (OSError, http.client.HTTPException):
            raise err from None
    return _receive(connection)


def _receive(connection: http.client.HTTPConnection) -> _Response:
    response = connection.getresponse()
    # Closing the response releases its hold on the socket, which a cut or
    # oversized body would otherwise keep open after the connection closes.
    with response:
        body = response.read(MAX_RESPONSE_BYTES)
        if response.length and len(body) < MAX_RESPONSE_BYTES:
            # http.client returns what arrived when the server closes the
            # connection before the Content-Length it announced. A cut body
            # must not be read as a short, complete one.
            raise http.client.IncompleteRead(body, response.length)
    return _Response(response.status, response.reason, response.msg, body)


# Response parsing


class _MalformedBodyError(Exception):
    """A response body is not the DICOM JSON that the request expects.

    The message completes the sentence "The response body ...".
    """


def _parse_outcomes(
    uids: Sequence[str], response: _Response
) -> tuple[InstanceOutcome, ...]:
    """Return one outcome per sent UID from a Store Instances Response.

    HTTP 200 promises that every instance was stored, so an instance the body
    does not list counts as stored. After any other status it counts as failed.

    Raises:
        _MalformedBodyError: The body is neither empty nor a Store Instances
            Response in DICOM JSON.
    """
    reported = _reported_outcomes(_store_response_document(response.body))
    outcomes = []
    for uid in uids:
        outcome = reported.get(uid)
        if outcome is None and response.status == 200:
            outcome = InstanceOutcome(uid, InstanceStatus.STORED)
        elif outcome is None:
            outcome = InstanceOutcome(
                uid, InstanceStatus.FAILED, None, "not reported as stored"
            )
        outcomes.append(outcome)
    return tuple(outcomes)


def _unreported_outcomes(
    uids: Sequence[str], reason: str
) -> tuple[InstanceOutcome, ...]:
    return tuple(
        InstanceOutcome(uid, InstanceStatus.FAILED, None, reason) for uid in uids
    )


def _decode_json(body: bytes) -> object:
    """Parse a response body as JSON.

    Raises:
        _MalformedBodyError: The body is not JSON, or nests arrays or objects
            deeper than the parser's recursion limit.
    """
    try:
        return json.loads(body)
    except RecursionError as err:
        raise _MalformedBodyError("nests arrays or objects too deeply") from err
    except ValueError as err:
        # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8.
        if len(body) >= MAX_RESPONSE_BYTES:
            limit = MAX_RESPONSE_BYTES // (1024 * 1024)
            raise _MalformedBodyError(
                f"is larger than {limit} MiB, the maximum that is read"
            ) from err
        raise _MalformedBodyError(f"is not valid JSON ({err})") from err


def _store_response_document(body: bytes) -> dict[str, Any]:
    """Return the data set of a Store Instances Response body.

    An empty body is an empty data set. DICOM JSON puts the data sets of a
    query result in an array, so an empty array is read as an empty data set
    too, and an array of one object as that object.

    Raises:
        _MalformedBodyError: The body is not a DICOM JSON data set, or its
            Referenced or Failed SOP Sequence is not in DICOM JSON form.
    """
    # The Content-Type is not checked because some servers (Orthanc 1.10.1
    # with DICOMweb 1.7 on HTTP 400) send DICOM JSON without one.
    if not body.strip():
        return {}
    document = _decode_json(body)
    if isinstance(document, list) and len(document) <= 1:
        document = document[0] if document else {}
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise _MalformedBodyError(f"is a JSON {kind}, not a DICOM JSON object")
    return document


def _check_query_result(body: bytes) -> None:
    """Check that a QIDO-RS response body is a DICOM JSON list of data sets.

    Raises:
        _MalformedBodyError: It is not.
    """
    document = _decode_json(body)
    if not isinstance(document, list):
        kind = type(document).__name__
        raise _MalformedBodyError(f"is a JSON {kind}, not a list")
    if not all(isinstance(item, dict) for item in document):
        raise _MalformedBodyError("is a JSON list of values that are not objects")


def _reported_outcomes(document: dict[str, Any]) -> dict[str, InstanceOutcome]:
    reported: dict[str, InstanceOutcome] = {}
    for item in _sequence_items(document, REFERENCED_SOP_SEQUENCE):
        uid = _referenced_uid(item, REFERENCED_SOP_SEQUENCE)
        code = _reason_code(item, WARNING_REASON)
        if code is None:
            reported[uid] = InstanceOutcome(uid, InstanceStatus.STORED)
        else:
            reported[uid] = InstanceOutcome(
                uid, InstanceStatus.WARNING, code, describe_reason(code)
            )

    # A failure overrides a reference to the same instance.
    for item in _sequence_items(document, FAILED_SOP_SEQUENCE):
        uid = _referenced_uid(item, FAILED_SOP_SEQUENCE)
        code = _reason_code(item, FAILURE_REASON)
        reason = "no failure reason given" if code is None else describe_reason(code)
        reported[uid] = InstanceOutcome(uid, InstanceStatus.FAILED, code, reason)
    return reported


def _tag_name(key: str) -> str:
    """Return a DICOM JSON key with its keyword, e.g. ``FailureReason (00081197)``."""
    return f"{keyword_for_tag(int(key, 16))} ({key})"


def _sequence_items(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    element = document.get(key)
    if element is None:
        return []
    values = element.get("Value", []) if isinstance(element, dict) else None
    if not isinstance(values, list) or not all(
        isinstance(item, dict) for item in values
    ):
        raise _MalformedBodyError(
            f"has a {_tag_name(key)} that is not a DICOM JSON sequence of objects"
        )
    return values


def _first_value(item: dict[str, Any], key: str) -> object:
    """Return the first value of an element, or None when it has none."""
    element = item.get(key)
    if element is None:
        return None
    values = element.get("Value", []) if isinstance(element, dict) else None
    if not isinstance(values, list):
        raise _MalformedBodyError(
            f"has a {_tag_name(key)} that is not a DICOM JSON element"
        )
    return values[0] if values else None


def _referenced_uid(item: dict[str, Any], sequence_key: str) -> str:
    uid = _first_value(item, REFERENCED_SOP_INSTANCE_UID)
    if not isinstance(uid, str) or not uid:
        raise _MalformedBodyError(
            f"has an item of {_tag_name(sequence_key)} without a "
            f"{_tag_name(REFERENCED_SOP_INSTANCE_UID)}"
        )
    return uid


def _reason_code(item: dict[str, Any], key: str) -> int | None:
    """Return a US reason code, which some servers send as a decimal string."""
    value = _first_value(item, key)
    if value is None:
        return None
    code: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 5:
            code = int(text)
    if code is None or not 0 <= code <= 0xFFFF:
        raise _MalformedBodyError(
            f"has a {_tag_name(key)} that is not a number from 0 to 65535"
        )
    return code


def _accepted(status: int, outcomes: tuple[InstanceOutcome, ...]) -> StowResult:
    result = StowResult(status, outcomes)
    logger.info(
        "STOW-RS HTTP %d: %d stored, %d with warnings, %d failed",
        status,
        len(result.stored),
        len(result.warnings),
        len(result.failed),
    )
    for outcome in result.warnings + result.failed:
        logger.warning(
            "STOW-RS instance %s %s", outcome.sop_instance_uid, outcome.describe()
        )
    return result


# Errors


def _stow_error(
    operation: str,
    response: _Response,
    outcomes: tuple[InstanceOutcome, ...],
    auth: HttpAuth | None,
    length: int,
) -> StowError:
    if response.status == 409:
        return _conflict_error(operation, outcomes)
    if response.status == 413:
        cause = f"the request of {length} bytes is too large for the server (HTTP 413)"
        fix = "Raise the server's upload size limit"
        return StowError(
            f"{operation} failed: {cause}. {fix}",
            transient=False,
            code=413,
            outcomes=outcomes,
        )

    error = _http_error(operation, response, auth, "store instances")
    return StowError(
        str(error), transient=error.transient, code=error.code, outcomes=outcomes
    )


def _malformed_store_response(
    operation: str,
    response: _Response,
    uids: Sequence[str],
    problem: _MalformedBodyError,
) -> StowError:
    # Transient, because the server accepted the request and a resend is
    # harmless: each instance keeps its SOP Instance UID, so the archive
    # updates a copy it already stores. Such a body comes, for example, from
    # a proxy's or captive portal's page, or from a connection closed in the
    # middle of the body, and those pass.
    message = (
        f"{operation} failed: the server returned HTTP {response.status} "
        f"{response.reason}, but the response body {problem}, so it is unknown "
        "which instances it stored. They are sent again later. If this repeats, "
        "check that the base URL is the DICOMweb service root, "
        "e.g. https://cloud.example.com/dicom-web"
    )
    outcomes = _unreported_outcomes(uids, "the response body is not readable")
    return StowError(message, transient=True, code=response.status, outcomes=outcomes)


def _conflict_error(operation: str, outcomes: tuple[InstanceOutcome, ...]) -> StowError:
    failed = [o for o in outcomes if o.status is InstanceStatus.FAILED]
    reasons = sorted({o.describe() for o in failed})
    # Only a server out of resources may store the same instances later.
    transient = bool(failed) and all(
        o.reason_code is not None and o.reason_code in OUT_OF_RESOURCES for o in failed
    )
    cause = (
        f"the server stored none of the {len(outcomes)} instance(s) (HTTP 409): "
        + "; ".join(reasons)
    )
    fix = (
        "Try again later"
        if transient
        else "Check that the server accepts Ophthalmic Photography images"
    )
    return StowError(
        f"{operation} failed: {cause}. {fix}",
        transient=transient,
        code=409,
        outcomes=outcomes,
    )


def _http_error(
    operation: str, response: _Response, auth: HttpAuth | None, action: str
) -> DeliveryError:
    status = response.status
    transient = status in (408, 429) or status >= 500
    cause, fix = _status_cause(response, auth, action)
    message = f"{operation} failed: {cause} (HTTP {status} {response.reason}). {fix}"
    return DeliveryError(message, transient=transient, code=status)


def _status_cause(
    response: _Response, auth: HttpAuth | None, action: str
) -> tuple[str, str]:
    status = response.status
    url_fix = (
        "Check the base URL. It is the DICOMweb service root, "
        "e.g. https://cloud.example.com/dicom-web"
    )
    if status == 401:
        return _unauthorized_cause(auth)
    if status == 403:
        return (
            f"{_describe_client(auth)} may not {action} on this server",
            "Ask the server's administrator for access",
        )
    if status == 404:
        return "the server has no DICOMweb service at this URL", url_fix
    if status == 415:
        return (
            "the server does not accept application/dicom",
            url_fix,
        )
    if status == 400:
        return "the server rejected the request as invalid", (
            "Check the base URL and that the exam's DICOM files are valid"
        )
    if 300 <= status < 400:
        location = response.headers.get("Location", "another address")
        return f"the server redirected the request to {location}", (
            "Set the base URL to the new address"
        )
    if status in (408, 429) or status >= 500:
        return "the server is unavailable or busy", "Try again later"
    return "the server returned an unexpected status", url_fix


def _unauthorized_cause(auth: HttpAuth | None) -> tuple[str, str]:
    if isinstance(auth, BasicAuth):
        return (
            f"the server rejected the user name or password of user {auth.username!r}",
            "Check the user name and password of this server",
        )
    if isinstance(auth, BearerAuth):
        return (
            "the server rejected the access token",
            "Enter a valid access token for this server",
        )
    return (
        "the server requires authentication",
        "Choose basic or bearer authentication and enter the credentials",
    )


def _describe_client(auth: HttpAuth | None) -> str:
    if isinstance(auth, BasicAuth):
        return f"user {auth.username!r}"
    if isinstance(auth, BearerAuth):
        return "this access token"
    return "anonymous users"


def _transfer_error(
    operation: str, err: OSError | http.client.HTTPException, limit: _TimeLimit
) -> DeliveryError:
    if limit.deadline.expired:
        return _deadline_error(operation, limit)
    if isinstance(err, TimeoutError):
        cause = f"no response within {limit.timeout:g} s"
    elif isinstance(err, socket.gaierror):
        cause = f"the host name cannot be resolved ({err.strerror or err})"
    elif isinstance(err, ConnectionRefusedError):
        cause = "the connection was refused"
    elif isinstance(err, OSError):
        cause = f"the connection failed ({err.strerror or err})"
    else:
        cause = (
            f"the server closed the connection or sent an invalid response ({err!r})"
        )
    return DeliveryError(
        f"{operation} failed: {cause}. Check the network and that the server is "
        "running, then try again",
        transient=True,
    )


def _deadline_error(operation: str, limit: _TimeLimit) -> DeliveryError:
    response_kib = EXPECTED_RESPONSE_BYTES // 1024
    return DeliveryError(
        f"{operation} failed: the request did not finish within "
        f"{limit.deadline.seconds:.0f} s. A request of {limit.request_bytes:,} "
        f"bytes may take twice the server's timeout of {limit.timeout:g} s, plus "
        f"{MIN_TRANSFER_RATE_TEXT} (a 128 kbit/s link) for the request and a "
        f"response of up to {response_kib} KiB. The network or the server is "
        "slower than that. Check the network's upload speed and that the server "
        "is working, then try again",
        transient=True,
    )


def _tls_error(operation: str, err: ssl.SSLError) -> DeliveryError:
    if isinstance(err, ssl.SSLCertVerificationError):
        cause = f"the server's certificate is not trusted ({err.verify_message})"
        fix = (
            "Choose the CA file of the authority that signed it, "
            "or check the host name in the base URL"
        )
    else:
        cause = f"the TLS handshake failed ({err.reason or err})"
        fix = "Check that the server speaks HTTPS on this port"
    return DeliveryError(f"{operation} failed: {cause}. {fix}", transient=False)
