"""Overall time limits on transfers, which a peer that trickles bytes cannot stretch.

A socket timeout limits each read or write on its own. A peer that sends one
byte just before each timeout, as a failing link, a broken proxy or a hung
server can, keeps a transfer going for ever within it. Every transfer
therefore also gets a deadline: its configured timeouts plus the time its data
takes at :data:`MIN_TRANSFER_RATE`. A deadline is kept by giving each socket
call at most the time left, so no thread is needed to interrupt a call.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

MIN_TRANSFER_RATE = 16_000
"""Bytes per second that every transfer is granted: 128 kbit/s, the upload
speed of a slow ADSL or mobile link. A transfer slower than this on average
counts as stalled."""

MIN_TRANSFER_RATE_TEXT = f"1 s per {MIN_TRANSFER_RATE // 1000} kB"
"""The rate of :data:`MIN_TRANSFER_RATE` as error messages state it."""


def transfer_seconds(size: int) -> float:
    """Return the seconds that ``size`` bytes take at the minimum transfer rate."""
    return size / MIN_TRANSFER_RATE


class DeadlineExceededError(TimeoutError):
    """A transfer did not finish before its deadline."""


class Deadline:
    """A point in time, on the monotonic clock, by which a transfer must end.

    Attributes:
        seconds: The time allowed, counted from the creation of the deadline.
    """

    def __init__(self, seconds: float, started_at: float | None = None) -> None:
        """Allow ``seconds`` from ``started_at`` (time.monotonic(); now when None)."""
        self.seconds = seconds
        start = time.monotonic() if started_at is None else started_at
        self._expires_at = start + seconds

    @property
    def expired(self) -> bool:
        """Whether the time allowed has run out."""
        return time.monotonic() >= self._expires_at

    def call_timeout(self, per_call: float | None) -> float:
        """Return the timeout of the next socket call: the time left, at most
        ``per_call`` seconds.

        Raises:
            DeadlineExceededError: No time is left.
        """
        remaining = self._expires_at - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError(f"the {self.seconds:.0f} s allowed ran out")
        return remaining if per_call is None else min(per_call, remaining)


# Sockets


class DeadlineSocket(socket.socket):
    """A TCP socket whose reads and writes end by a deadline.

    Each call waits at most ``per_call_timeout`` seconds, and never past
    ``deadline``. Without a deadline the socket behaves as a plain one.
    """

    deadline: Deadline | None = None
    per_call_timeout: float | None = None

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        self._arm()
        return super().recv(bufsize, flags)

    def recv_into(
        self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0
    ) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def send(self, data: ReadableBuffer, flags: int = 0, /) -> int:
        self._arm()
        return super().send(data, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        # The timeout of sendall() limits the whole call, since Python 3.5.
        self._arm()
        super().sendall(data, flags)

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.call_timeout(self.per_call_timeout))


class DeadlineSSLSocket(ssl.SSLSocket):
    """A TLS socket whose handshake, reads and writes end by a deadline.

    An SSL context creates it when its ``sslsocket_class`` is this class.
    CPython's ``_ssl`` module (3.11) limits each call to the socket's
    timeout, however many records the call reads, so giving each call the
    time left is enough. ``recv``, ``recv_into`` and ``sendall`` go through ``read`` and
    ``send``.
    """

    deadline: Deadline | None = None
    per_call_timeout: float | None = None

    def read(self, size: int = 1024, buffer: WriteableBuffer | None = None) -> bytes:
        self._arm()
        return super().read(size, buffer)

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        self._arm()
        return super().send(data, flags)

    def do_handshake(self, block: bool = False) -> None:
        self._arm()
        super().do_handshake(block)

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.call_timeout(self.per_call_timeout))


def wait_for_send_buffer(
    sock: DeadlineSocket | DeadlineSSLSocket, per_call_timeout: float, sent: int
) -> None:
    """Let each later call wait longer, for sent bytes still queued to leave.

    A write returns once its bytes are in the operating system's send buffer.
    On a slow link they take a while to leave, and the peer sends its
    response only after the last one arrived. So each later call may wait
    ``per_call_timeout`` plus the time that a full send buffer, or all
    ``sent`` bytes when fewer, takes at the minimum rate.
    """
    # Linux reports twice the size set, to allow for its bookkeeping
    # (socket(7)), which overestimates the wait rather than cutting it short.
    buffer_size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    queued = min(sent, buffer_size)
    sock.per_call_timeout = per_call_timeout + transfer_seconds(queued)


def open_connection(
    address: tuple[str, int],
    deadline: Deadline,
    per_call_timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> DeadlineSocket | DeadlineSSLSocket:
    """Connect to ``address``, with a TLS handshake when a context is given.

    The connection, the handshake and every later read and write share the
    deadline. TCP_NODELAY is set, as ``http.client`` sets it.

    Args:
        address: Host name or IP address, and port.
        deadline: When the whole exchange must be over.
        per_call_timeout: Seconds each connect, read or write may wait.
        ssl_context: A context whose ``sslsocket_class`` is
            :class:`DeadlineSSLSocket`, or None for plain TCP.

    Raises:
        OSError: The connection or handshake failed or timed out; TimeoutError
            when the deadline passed, ssl.SSLError when the handshake failed.
        TypeError: The SSL context creates sockets of another class.
    """
    timeout = deadline.call_timeout(per_call_timeout)
    raw = socket.create_connection(address, timeout=timeout)
    sock = DeadlineSocket(raw.family, raw.type, raw.proto, fileno=raw.detach())
    sock.deadline = deadline
    sock.per_call_timeout = per_call_timeout
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is None:
            return sock
        return _start_tls(sock, address[0], ssl_context)
    except BaseException:
        sock.close()
        raise


def _start_tls(
    sock: DeadlineSocket, host: str, ssl_context: ssl.SSLContext
) -> DeadlineSSLSocket:
    tls = ssl_context.wrap_socket(
        sock, server_hostname=host, do_handshake_on_connect=False
    )
    if not isinstance(tls, DeadlineSSLSocket):
        tls.close()
        raise TypeError(
            f"ssl_context.sslsocket_class must be DeadlineSSLSocket, not "
            f"{type(tls).__name__}"
        )
    tls.deadline = sock.deadline
    tls.per_call_timeout = sock.per_call_timeout
    try:
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls
