"""DICOM associations with one endpoint: connection, tuning, errors, C-ECHO.

Every association goes through :func:`open_association`, which turns each way
of failing into a :class:`~eyer_desktop.core.errors.DeliveryError` marked
transient (retry later) or permanent (the settings or the server must change).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pynetdicom import _config as pynetdicom_config
from pynetdicom import evt
from pynetdicom.ae import ApplicationEntity
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.transport import T_CONNECT, AddressInformation, AssociationSocket

from eyer_desktop.core.errors import DeliveryError, ValidationError
from eyer_desktop.core.net.deadline import (
    MIN_TRANSFER_RATE_TEXT,
    Deadline,
    transfer_seconds,
)
from eyer_desktop.core.net.tls import TlsSettings, create_ssl_context
from eyer_desktop.core.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

logger = logging.getLogger(__name__)

# pynetdicom logs C-FIND identifiers (patient names and IDs) and, through its
# standard event handlers, a line or more per PDU and DIMSE message. Patient
# data must never reach a log, and this module logs associations itself.
pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
pynetdicom_config.LOG_HANDLER_LEVEL = "none"

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
MAX_AE_TITLE_LENGTH = 16
MAX_PDU_SIZE = 65536
# Seconds between two checks of the response deadline while waiting.
_RESPONSE_POLL_S = 1.0
# pynetdicom 3.0.4 reads a PDU in pieces of this size.
_RECV_CHUNK_SIZE = 4096


@dataclass(frozen=True)
class DicomEndpoint:
    """Connection settings of one DICOM server, as an association uses them.

    Attributes:
        host: Host name or IP address of the server.
        port: TCP port of the server.
        calling_ae: This application's AE title.
        called_ae: The server's AE title.
        connect_timeout: Seconds allowed for the TCP connection and, with TLS,
            the handshake.
        acse_timeout: Seconds to wait for the server to accept, reject or
            release an association.
        dimse_timeout: Seconds to wait for the response to a request.
        network_timeout: Seconds a read may wait for more data of a message
            already arriving. A whole PDU may take this time plus 1 s per
            16 kB of its size.
        tls: TLS settings; None for a plain TCP connection.
    """

    host: str
    port: int
    calling_ae: str
    called_ae: str
    connect_timeout: float = 10.0
    acse_timeout: float = 30.0
    dimse_timeout: float = 120.0
    network_timeout: float = 60.0
    tls: TlsSettings | None = None

    def __post_init__(self) -> None:
        if not self.host or any(char.isspace() for char in self.host):
            raise ValidationError(
                "IP",
                self.host,
                "not a host name or IP address",
                "Enter for example 192.168.0.10 or pacs.clinic.local.",
            )
        if not 1 <= self.port <= 65535:
            raise ValidationError(
                "Port", self.port, "out of range", "Enter a port from 1 to 65535."
            )
        validate_ae_title("AE Title", self.calling_ae)
        validate_ae_title("AET", self.called_ae)
        for name in (
            "connect_timeout",
            "acse_timeout",
            "dimse_timeout",
            "network_timeout",
        ):
            _validate_timeout(name, getattr(self, name))

    def __str__(self) -> str:
        return f"{self.called_ae}@{host_and_port(self.host, self.port)}"


def host_and_port(host: str, port: int) -> str:
    """Return ``host:port``, with an IPv6 address in brackets as in URLs."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def validate_ae_title(field: str, value: str) -> None:
    """Raise ValidationError unless ``value`` is a valid AE title for ``field``."""
    problem = ""
    if not value.strip():
        problem = "empty"
    elif len(value) > MAX_AE_TITLE_LENGTH:
        problem = f"longer than {MAX_AE_TITLE_LENGTH} characters"
    elif not value.isascii() or "\\" in value or not value.isprintable():
        problem = "contains a backslash, a control character or a non-ASCII letter"
    if problem:
        raise ValidationError(
            field,
            value,
            problem,
            "Use 1 to 16 characters among A-Z, 0-9, space, '-' and '_'.",
        )


def _validate_timeout(name: str, value: float) -> None:
    if not value > 0:
        raise ValidationError(
            name, value, "not a positive number of seconds", "Enter for example 30."
        )


class _TunedAssociationSocket(AssociationSocket):
    """pynetdicom's socket with low-latency TCP options and a kept error.

    dcmtk's storescp (3.6.7 as Debian ships it) delays each C-STORE response
    until the sender's delayed acknowledgement arrives. Nagle's algorithm on
    one side meets delayed ACK on the other, so each file waits about 40 ms
    and a batch is capped near 22 files a second. TCP_NODELAY on this socket,
    and re-arming TCP_QUICKACK before every read on Linux (the kernel clears
    it by itself), remove the stall. Archives built the same way behave the
    same.

    The connection is made here rather than in pynetdicom so that the reason
    of a failed connection (refused, timed out, TLS certificate rejected) is
    kept in :attr:`connect_error`; pynetdicom 3.0.4 only logs it. Likewise
    :attr:`slow_transfer` says why a PDU that arrived too slowly was given up,
    and :attr:`slow_send` why the peer took a message too slowly.
    """

    def __init__(
        self,
        assoc: Association,
        address: AddressInformation,
        endpoint: DicomEndpoint,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(assoc, address=address)
        self.connect_error: OSError | None = None
        self.slow_transfer = ""
        self.slow_send = ""
        self._endpoint = endpoint
        self._ssl_context = ssl_context
        # The PDUs written since the last PDU read: (time.monotonic() of the
        # first write, bytes written), or None after a read.
        self._burst: tuple[float, int] | None = None
        self._writing = False
        self._last_write_end: float | None = None

    def connect(self, primitive: T_CONNECT) -> None:
        """Connect to the peer and report the outcome to the state machine.

        The two outcomes are the events pynetdicom's own ``connect`` reports:
        Evt2 (connection confirmed) or Evt17 (connection closed).
        """
        try:
            self.socket = self._open_connection(primitive.address_info.as_tuple)
        except OSError as err:
            self.connect_error = err
            self._close_failed_socket()
            primitive.result = "Evt17"
        else:
            self._is_connected = True
            local_address = self.socket.getsockname()
            self.assoc.requestor.address_info = AddressInformation.from_tuple(
                local_address
            )
            evt.trigger(
                self.assoc,
                evt.EVT_CONN_OPEN,
                {"address": primitive.address_info.as_tuple},
            )
            primitive.result = "Evt2"
        finally:
            self.provider_queue.put(primitive)
            self._ready.set()

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes`` bytes, acknowledging each segment at once.

        pynetdicom reads each PDU with this call in its reactor thread. A
        read that waits longer than the network timeout fails. So does a PDU
        that takes longer than the network timeout plus 1 s per 16 kB,
        because a peer that sends one byte just before each timeout would
        otherwise hold the reactor, and every wait for it, for ever.
        pynetdicom treats the TimeoutError as a closed connection and ends
        the association.

        Returns:
            The bytes read, fewer than ``nr_bytes`` when the peer closed the
            connection.

        Raises:
            TimeoutError: The peer sent nothing for the network timeout, or
                sent the PDU too slowly.
        """
        sock = self.socket
        if sock is None:
            raise ConnectionError("the association socket was already closed")
        # The peer is sending, so it has taken what was written before.
        self._burst = None
        deadline = Deadline(self._pdu_time_limit(nr_bytes))
        data = bytearray()
        try:
            while len(data) < nr_bytes:
                sock.settimeout(deadline.call_timeout(self._endpoint.network_timeout))
                self._rearm_quickack()
                chunk = sock.recv(min(nr_bytes - len(data), _RECV_CHUNK_SIZE))
                if not chunk:
                    break
                data.extend(chunk)
        except TimeoutError:
            if deadline.expired:
                self._note_slow_transfer(nr_bytes, deadline)
            raise
        finally:
            sock.settimeout(self._endpoint.network_timeout)
        return data

    def send(self, bytestream: bytes) -> None:
        """Write one PDU, or report the connection closed (Evt17).

        pynetdicom writes each PDU with this call in its reactor thread, and
        a DIMSE message of several PDUs as consecutive calls. Each write call
        waits at most the network timeout. The PDUs written since the peer
        last sent a PDU must also all be taken within the network timeout
        plus 1 s per 16 kB of them, counted from the first. Without that
        limit, a peer that reads a little before each timeout would hold a
        C-STORE for ever.
        """
        sock = self.socket
        if sock is None:
            self.event_queue.put("Evt17")
            return
        started_at, written = self._burst or (time.monotonic(), 0)
        written += len(bytestream)
        self._burst = (started_at, written)
        deadline = Deadline(self._send_time_limit(written), started_at)
        view = memoryview(bytestream)
        self._writing = True
        try:
            while view:
                sock.settimeout(deadline.call_timeout(self._endpoint.network_timeout))
                view = view[sock.send(view) :]
        except Exception as err:
            if isinstance(err, TimeoutError) and deadline.expired:
                self._note_slow_send(written, deadline)
            self.event_queue.put("Evt17")
            return
        finally:
            self._writing = False
            self._last_write_end = time.monotonic()
            with contextlib.suppress(OSError):
                sock.settimeout(self._endpoint.network_timeout)
        evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": bytestream})

    def response_deadline(
        self, requested_at: float, dimse_timeout: float
    ) -> float | None:
        """Return when the wait for the response to a request ends, on the
        time.monotonic() clock; None while the request is still being written.

        The DIMSE timeout counts from the end of the last write, not from
        ``requested_at``: on a slow link an image takes longer to upload than
        a server takes to respond. The bytes still in the send buffer after
        that write get 1 s per 16 kB more.
        """
        if self._writing:
            return None
        start = requested_at
        if self._last_write_end is not None:
            start = max(start, self._last_write_end)
        buffered = 0
        if self._burst is not None and self.socket is not None:
            with contextlib.suppress(OSError):
                size = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                buffered = min(self._burst[1], size)
        return start + transfer_seconds(buffered) + dimse_timeout

    def _send_time_limit(self, written: int) -> float:
        return self._endpoint.network_timeout + transfer_seconds(written)

    def _note_slow_send(self, written: int, deadline: Deadline) -> None:
        self.slow_send = (
            f"its first {written:,} bytes were not all taken within "
            f"{deadline.seconds:.0f} s, the network timeout of "
            f"{self._endpoint.network_timeout:g} s plus {MIN_TRANSFER_RATE_TEXT}; "
            "check the network link to the server, or raise its network timeout"
        )
        logger.info("Gave up writing to %s: %s", self._endpoint, self.slow_send)

    def _pdu_time_limit(self, nr_bytes: int) -> float:
        # A PDU larger than this application's maximum breaks the negotiated
        # limit, so its excess earns no extra time.
        counted = min(nr_bytes, MAX_PDU_SIZE)
        return self._endpoint.network_timeout + transfer_seconds(counted)

    def _note_slow_transfer(self, nr_bytes: int, deadline: Deadline) -> None:
        counted = ""
        if nr_bytes > MAX_PDU_SIZE:
            counted = (
                f" of the first {MAX_PDU_SIZE:,} bytes, this application's PDU size"
            )
        self.slow_transfer = (
            f"{nr_bytes:,} bytes of a PDU did not arrive within "
            f"{deadline.seconds:.0f} s, the network timeout of "
            f"{self._endpoint.network_timeout:g} s plus "
            f"{MIN_TRANSFER_RATE_TEXT}{counted}"
        )
        logger.info("Gave up reading from %s: %s", self._endpoint, self.slow_transfer)

    def _open_connection(
        self, address: tuple[str, int] | tuple[str, int, int, int]
    ) -> socket.socket:
        sock = self.socket
        if sock is None:
            raise ConnectionError("the association socket was already closed")

        sock.settimeout(self._endpoint.connect_timeout)
        sock.connect(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl_context is not None:
            # The handshake runs inside wrap_socket, under the connect timeout.
            sock = self._ssl_context.wrap_socket(
                sock, server_hostname=self._endpoint.host
            )

        # pynetdicom reads a PDU with blocking recv() calls once select() saw
        # its first bytes: this timeout ends a read from a peer that stalls.
        sock.settimeout(self._endpoint.network_timeout)
        return sock

    def _close_failed_socket(self) -> None:
        self._shutdown_socket()
        self.socket = None

    def _shutdown_socket(self) -> None:
        """Shut the connection down and close the socket.

        pynetdicom's own version skips close() when shutdown() fails, as it
        does after the peer closed the connection, which leaks the socket.
        """
        sock = self.socket
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            logger.debug("Socket shutdown failed; closing it anyway")
        sock.close()

    def _rearm_quickack(self) -> None:
        quickack = getattr(socket, "TCP_QUICKACK", None)
        if quickack is None or self.socket is None:
            return
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            # A closed socket: the read that follows reports it.
            return


class _EndpointApplicationEntity(ApplicationEntity):
    """An application entity whose associations use the tuned socket.

    ``ApplicationEntity._create_socket`` is the one place where pynetdicom
    3.0.4 builds the requestor's socket, so overriding it is how the tuned
    socket gets in.
    """

    def __init__(
        self, endpoint: DicomEndpoint, ssl_context: ssl.SSLContext | None
    ) -> None:
        super().__init__(ae_title=endpoint.calling_ae)
        self._endpoint = endpoint
        self._ssl_context = ssl_context
        self.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        self.connection_timeout = endpoint.connect_timeout
        self.acse_timeout = endpoint.acse_timeout
        self.dimse_timeout = endpoint.dimse_timeout
        self.network_timeout = endpoint.network_timeout
        self.maximum_pdu_size = MAX_PDU_SIZE

    def _create_socket(
        self,
        assoc: Association,
        address: AddressInformation,
        tls_args: tuple[ssl.SSLContext, str] | None,
    ) -> AssociationSocket:
        return _TunedAssociationSocket(
            assoc, address, self._endpoint, self._ssl_context
        )


@contextmanager
def open_association(
    endpoint: DicomEndpoint, contexts: Sequence[PresentationContext]
) -> Iterator[Association]:
    """Open an association proposing ``contexts``, and release it on exit.

    On exit the association is released if it is still established; an
    exception inside the block aborts it instead.

    Raises:
        DeliveryError: The connection failed, timed out, or the server
            rejected or aborted the association.
    """
    ssl_context = _create_ssl_context(endpoint)
    ae = _EndpointApplicationEntity(endpoint, ssl_context)
    logger.info("Requesting association with %s", endpoint)

    started = time.monotonic()
    try:
        assoc = ae.associate(
            endpoint.host,
            endpoint.port,
            contexts=list(contexts),
            ae_title=endpoint.called_ae,
            max_pdu=MAX_PDU_SIZE,
        )
    except socket.gaierror as err:
        raise DeliveryError(
            f"Host {endpoint.host!r} of {endpoint} was not found ({err}). Check "
            "the server's IP or host name and the network.",
            transient=True,
        ) from err

    if not assoc.is_established:
        raise _association_failure(endpoint, assoc, time.monotonic() - started)
    _keep_responses_for_sender(assoc)
    logger.info(
        "Association with %s accepted: %d of %d presentation contexts",
        endpoint,
        len(assoc.accepted_contexts),
        len(contexts),
    )

    try:
        yield assoc
    except BaseException:
        if assoc.is_established:
            assoc.abort()
            logger.warning("Association with %s aborted after an error", endpoint)
        raise
    if assoc.is_established:
        assoc.release()
        logger.info("Association with %s released", endpoint)


def no_response_reason(endpoint: DicomEndpoint, assoc: Association) -> str:
    """Return why a request on ``assoc`` got no response, for error messages."""
    slow_send = getattr(assoc.dul.socket, "slow_send", "")
    if isinstance(slow_send, str) and slow_send:
        return f"the server read the request too slowly: {slow_send}"
    slow = _slow_transfer(assoc)
    if slow:
        return f"the server sent its response too slowly: {slow}"
    return (
        "the association was aborted, or the server did not respond within "
        f"{endpoint.dimse_timeout:g} s after the request was sent"
    )


def _slow_transfer(assoc: Association) -> str:
    slow = getattr(assoc.dul.socket, "slow_transfer", "")
    return slow if isinstance(slow, str) else ""


def _keep_responses_for_sender(assoc: Association) -> None:
    """Give DIMSE responses to the waiting sender, and time the wait from the
    end of the upload.

    pynetdicom 3.0.4 runs a reactor thread that polls the message queue with
    ``get_msg(block=False)`` to serve requests from the peer, and pauses it
    while a ``send_c_*`` call waits with ``get_msg(block=True)``. The pause can
    come too late: the reactor then takes the response, logs "Received
    unexpected C-STORE service message", and the sender waits until the DIMSE
    timeout. The associations opened here never serve requests, so the
    reactor's polls get no message and every response goes to the waiting
    sender.

    pynetdicom's wait starts when the request is queued for the reactor to
    write. The wait here ends at the socket's response deadline instead.
    """
    dimse = assoc.dimse
    get_message = dimse.get_msg
    sock = assoc.dul.socket

    def get_message_when_blocking(block: bool = False) -> Any:
        if not block:
            return None, None
        timeout = dimse.dimse_timeout
        if timeout is None or not isinstance(sock, _TunedAssociationSocket):
            return get_message(block=True)
        requested_at = time.monotonic()
        while True:
            deadline = sock.response_deadline(requested_at, timeout)
            left = _RESPONSE_POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None, None
            try:
                return dimse.msg_queue.get(
                    block=True, timeout=min(left, _RESPONSE_POLL_S)
                )
            except queue.Empty:
                continue

    dimse.get_msg = get_message_when_blocking  # type: ignore[method-assign]


def _create_ssl_context(endpoint: DicomEndpoint) -> ssl.SSLContext | None:
    if endpoint.tls is None:
        return None
    try:
        return create_ssl_context(endpoint.tls)
    except ValidationError as err:
        raise DeliveryError(
            f"TLS settings of {endpoint} are invalid: {err}", transient=False
        ) from err


def _association_failure(
    endpoint: DicomEndpoint, assoc: Association, elapsed: float
) -> DeliveryError:
    """Build the error that explains why ``assoc`` was not established."""
    response = assoc.acceptor.primitive
    if assoc.is_rejected and response is not None:
        return _rejection_error(endpoint, response)

    sock = assoc.dul.socket
    connect_error = getattr(sock, "connect_error", None)
    if isinstance(connect_error, OSError):
        return _connection_error(endpoint, connect_error)

    if response is not None and response.result == 0:
        logger.info("%s accepted no presentation context", endpoint)
        return DeliveryError(
            f"{endpoint} rejected every SOP class proposed: "
            f"{describe_contexts(assoc.requestor.requested_contexts)}. Ask the "
            "server's administrator to accept them, or, for OP images, choose a "
            "fallback SOP class for this server.",
            transient=False,
        )

    slow = _slow_transfer(assoc)
    if slow:
        return DeliveryError(
            f"{endpoint} sent its response to the association request too "
            f"slowly: {slow}. "
            "Check the network and that the server is working.",
            transient=True,
        )
    if elapsed >= endpoint.acse_timeout:
        logger.info("Association request to %s timed out", endpoint)
        return DeliveryError(
            f"{endpoint} did not respond to the association request within "
            f"{endpoint.acse_timeout:g} s. Check that the port belongs to a "
            "DICOM server and that TLS is set the way the server expects.",
            transient=True,
        )
    logger.info("Association request to %s aborted", endpoint)
    advice = "Try again later; if it persists, check the server's log."
    if endpoint.tls is not None:
        advice = (
            "With TLS this usually means the server did not accept this "
            "application's certificate: check the certificate and key files."
        )
    return DeliveryError(
        f"{endpoint} aborted the association request or closed the connection. "
        f"{advice}",
        transient=True,
    )


def _rejection_error(endpoint: DicomEndpoint, response: object) -> DeliveryError:
    result = getattr(response, "result", None)
    reason = getattr(response, "reason_str", "unknown reason")
    source = getattr(response, "source_str", "unknown source")
    diagnostic = getattr(response, "diagnostic", None)
    source_id = getattr(response, "result_source", None)
    logger.info(
        "Association with %s rejected: %s (source: %s)", endpoint, reason, source
    )

    advice = "Check the server settings."
    if source_id == 1 and diagnostic == 7:
        advice = (
            f"The server does not know the called AE title {endpoint.called_ae!r}: "
            "correct the AET."
        )
    elif source_id == 1 and diagnostic == 3:
        advice = (
            f"The server does not know the calling AE title {endpoint.calling_ae!r}: "
            "correct the AE Title or register it on the server."
        )
    transient = result == 2
    if transient:
        advice = "The server rejected it for now; it will be retried."
    return DeliveryError(
        f"{endpoint} rejected the association: {reason} (source: {source}). {advice}",
        transient=transient,
    )


def _connection_error(endpoint: DicomEndpoint, err: OSError) -> DeliveryError:
    logger.info("Connection to %s failed: %s", endpoint, err)
    if isinstance(err, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"TLS certificate of {endpoint} was rejected: "
            f"{str(err.verify_message).rstrip('.')}. "
            "Check the CA file and that the certificate names this host.",
            transient=False,
        )
    if isinstance(err, ssl.SSLError):
        return DeliveryError(
            f"TLS handshake with {endpoint} failed ({err.reason or err}). Check "
            "that the server uses TLS on this port and accepts this "
            "application's certificate.",
            transient=False,
        )
    if isinstance(err, TimeoutError):
        return DeliveryError(
            f"Connection to {endpoint} timed out after "
            f"{endpoint.connect_timeout:g} s. Check the IP, the port and that "
            "the server is on.",
            transient=True,
        )
    if isinstance(err, ConnectionRefusedError):
        return DeliveryError(
            f"Connection to {endpoint} was refused. Check the port and that the "
            "DICOM server is running.",
            transient=True,
        )
    return DeliveryError(
        f"Connection to {endpoint} failed ({err.strerror or err}). Check the IP, "
        "the port and the network.",
        transient=True,
    )


def describe_contexts(contexts: Sequence[PresentationContext]) -> str:
    """Return the SOP classes of ``contexts`` with their transfer syntaxes."""
    syntaxes_by_class: dict[str, list[str]] = {}
    for context in contexts:
        abstract_syntax = context.abstract_syntax
        name = "?" if abstract_syntax is None else abstract_syntax.name
        syntaxes = syntaxes_by_class.setdefault(name, [])
        syntaxes.extend(ts.name for ts in context.transfer_syntax)
    return "; ".join(
        f"{name} with {', '.join(syntaxes)}"
        for name, syntaxes in syntaxes_by_class.items()
    )


def echo(endpoint: DicomEndpoint) -> float:
    """Send a C-ECHO to ``endpoint`` and return its round trip in seconds.

    The time covers the C-ECHO request and its response only, not the
    association set-up.

    Raises:
        DeliveryError: The association failed, or the server returned a
            status other than success.
    """
    contexts = [build_context(VERIFICATION_SOP_CLASS)]
    with open_association(endpoint, contexts) as assoc:
        started = time.monotonic()
        status = assoc.send_c_echo()
        round_trip = time.monotonic() - started

        code = status.get("Status") if status is not None else None
        if code is None:
            raise DeliveryError(
                f"C-ECHO to {endpoint} failed because "
                f"{no_response_reason(endpoint, assoc)}.",
                transient=True,
            )
        if code != 0x0000:
            raise DeliveryError(
                f"{endpoint} returned status 0x{code:04X} to the C-ECHO.",
                transient=False,
                code=code,
            )

    logger.info("C-ECHO to %s: round trip %.1f ms", endpoint, round_trip * 1000)
    return round_trip
