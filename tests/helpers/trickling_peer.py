"""Fake peers that send slowly, or read slowly, for the transfer time limits.

No real server sends a reply slowly on purpose, but a failing network link,
a broken proxy or a hung server process can do it. A socket timeout does not
end such a transfer, because every byte arrives before the timeout.
``run_trickling_peer`` accepts connections on 127.0.0.1, reads whatever the
client sends, and writes ``reply`` followed by ``filler`` bytes, one byte
every ``interval_s`` seconds, until the client goes away or the fake stops.
With an SSL context it does the same over TLS, each byte in its own record.

``run_trickling_dicom_proxy`` puts the same fault behind a real DICOM peer:
it passes the first PDUs of the peer through whole and then trickles a PDU
that never ends, so the association is real up to the fault.

``run_slow_reading_http_server`` is the opposite case, a slow but working
link: it reads a request body at a fixed rate and then sends its response.
``run_slow_reading_dicom_proxy`` does the same in front of a real DICOM peer.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

DEFAULT_INTERVAL_S = 0.5

# A P-DATA-TF PDU header that announces 1 MiB of data: at two bytes a second
# the client would wait about six days for the rest.
ENDLESS_PDU_HEADER = struct.pack(">BBL", 0x04, 0, 1024 * 1024)

# An HTTP response head announcing a 1 MiB JSON body.
ENDLESS_HTTP_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/dicom+json\r\n"
    b"Content-Length: 1048576\r\n"
    b"\r\n"
)

# Receive buffer of the slow-reading server, in bytes. A small one keeps the
# kernel from taking a body faster than the server reads it.
SLOW_READER_BUFFER = 16 * 1024


@dataclass
class TricklingPeer:
    """A running fake peer.

    Attributes:
        port: Loopback port it listens on.
        connections: Number of connections accepted so far.
        bytes_sent: Bytes trickled to clients, over every connection; for
            the slow-reading server, request body bytes read.
    """

    port: int
    connections: int = 0
    bytes_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def count_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count


Handler = Callable[[TricklingPeer, socket.socket, threading.Event], None]


@contextmanager
def _serve(handler: Handler, receive_buffer: int = 0) -> Iterator[TricklingPeer]:
    """Accept connections on a free loopback port, one handler thread each."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        # Set before listen(), so that accepted sockets inherit it.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    peer = TricklingPeer(listener.getsockname()[1])
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            peer.count_connection()
            worker = threading.Thread(
                target=_run_handler, args=(handler, peer, client, stop), daemon=True
            )
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept_loop, name="trickling-peer", daemon=True)
    acceptor.start()
    try:
        yield peer
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
        for worker in workers:
            worker.join(timeout=5)


def _run_handler(
    handler: Handler, peer: TricklingPeer, client: socket.socket, stop: threading.Event
) -> None:
    with client, suppress(OSError):
        handler(peer, client, stop)


def _read_for(sock: socket.socket, seconds: float) -> bool:
    """Read and drop what the client sends for ``seconds``.

    Returns:
        False when the client closed the connection.
    """
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return False
        except TimeoutError:
            return True
    return True


def _trickle(
    peer: TricklingPeer,
    sock: socket.socket,
    stop: threading.Event,
    stream: Iterator[bytes],
    interval_s: float,
    *,
    read: bool,
) -> None:
    """Send one byte of ``stream`` per interval until the client or fake stops.

    With ``read``, the client's bytes are read and dropped in between, so its
    writes never block. Without, another thread reads them.
    """
    while not stop.is_set():
        if read:
            if not _read_for(sock, interval_s):
                return
        elif stop.wait(interval_s):
            return
        sock.sendall(next(stream))
        peer.count_bytes(1)


def _bytes_then(start: bytes, filler: bytes) -> Iterator[bytes]:
    for byte in start:
        yield bytes([byte])
    while True:
        yield filler


@contextmanager
def run_trickling_peer(
    reply: bytes,
    *,
    filler: bytes = b" ",
    interval_s: float = DEFAULT_INTERVAL_S,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[TricklingPeer]:
    """Run a fake that trickles ``reply`` and then ``filler`` to every client.

    With ``ssl_context`` the fake completes a TLS handshake first, at full
    speed, and trickles inside the TLS connection.
    """

    def handle(
        peer: TricklingPeer, client: socket.socket, stop: threading.Event
    ) -> None:
        sock = client
        if ssl_context is not None:
            client.settimeout(5)
            sock = ssl_context.wrap_socket(client, server_side=True)
        with sock:
            stream = _bytes_then(reply, filler)
            _trickle(peer, sock, stop, stream, interval_s, read=True)

    with _serve(handle) as peer:
        yield peer


@contextmanager
def run_trickling_dicom_proxy(
    upstream_port: int, *, whole_pdus: int, interval_s: float = DEFAULT_INTERVAL_S
) -> Iterator[TricklingPeer]:
    """Run a proxy to a DICOM peer that trickles after ``whole_pdus`` PDUs.

    The client's bytes go to the peer unchanged. The peer's first
    ``whole_pdus`` PDUs come back unchanged too, for example 1 for the
    A-ASSOCIATE-AC. Instead of the next one, the client gets a P-DATA-TF
    PDU that announces 1 MiB and arrives one byte per interval.
    """

    def handle(
        peer: TricklingPeer, client: socket.socket, stop: threading.Event
    ) -> None:
        with socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
            forward = threading.Thread(
                target=_forward, args=(client, upstream, stop), daemon=True
            )
            forward.start()
            for _ in range(whole_pdus):
                client.sendall(_read_pdu(upstream))
            stream = _bytes_then(ENDLESS_PDU_HEADER, b"\x00")
            _trickle(peer, client, stop, stream, interval_s, read=False)

    with _serve(handle) as peer:
        yield peer


@contextmanager
def run_slow_reading_dicom_proxy(
    upstream_port: int, *, rate: int
) -> Iterator[TricklingPeer]:
    """Run a proxy to a DICOM peer that reads the client's data slowly.

    The client's first PDU (the A-ASSOCIATE-RQ) goes to the peer whole.
    After it, the proxy reads the client's bytes at ``rate`` bytes a second,
    in steps of a tenth of a second, and passes them on. The peer's bytes
    come back unchanged. Each step frees room in the client's send buffer,
    so every write of the client goes on well within its timeout.
    """

    def handle(
        peer: TricklingPeer, client: socket.socket, stop: threading.Event
    ) -> None:
        with socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
            backward = threading.Thread(
                target=_forward, args=(upstream, client, stop), daemon=True
            )
            backward.start()
            upstream.sendall(_read_pdu(client))
            step = max(rate // 10, 1)
            client.settimeout(10)
            while not stop.wait(0.1):
                try:
                    chunk = client.recv(step)
                except OSError:
                    return
                if not chunk:
                    return
                peer.count_bytes(len(chunk))
                upstream.sendall(chunk)

    with _serve(handle, receive_buffer=SLOW_READER_BUFFER) as peer:
        yield peer


def _forward(
    source: socket.socket, target: socket.socket, stop: threading.Event
) -> None:
    source.settimeout(0.1)
    while not stop.is_set():
        try:
            data = source.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return
        if not data:
            return
        try:
            target.sendall(data)
        except OSError:
            return


def _read_pdu(sock: socket.socket) -> bytes:
    header = _read_exactly(sock, 6)
    _, _, length = struct.unpack(">BBL", header)
    return header + _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    sock.settimeout(10)
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the DICOM peer closed the connection")
        data.extend(chunk)
    return bytes(data)


@contextmanager
def run_slow_reading_http_server(rate: int) -> Iterator[TricklingPeer]:
    """Run an HTTP server that reads request bodies at ``rate`` bytes a second.

    After the whole body it returns HTTP 200 with an empty body, which a
    STOW-RS client takes as every instance stored.
    """

    def handle(
        peer: TricklingPeer, client: socket.socket, stop: threading.Event
    ) -> None:
        client.settimeout(10)
        length = _content_length(_read_head(client))
        step = max(rate // 10, 1)
        received = 0
        while received < length and not stop.wait(0.1):
            chunk = client.recv(min(step, length - received))
            if not chunk:
                return
            received += len(chunk)
            peer.count_bytes(len(chunk))
        client.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    with _serve(handle, receive_buffer=SLOW_READER_BUFFER) as peer:
        yield peer


def _read_head(sock: socket.socket) -> bytes:
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("the client closed the connection")
        head.extend(byte)
    return bytes(head)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@dataclass
class Finished:
    """How a call run by :func:`run_within` ended.

    Attributes:
        value: What it returned, or None when it raised.
        error: What it raised, or None.
        elapsed: Seconds it took.
    """

    value: object
    error: BaseException | None
    elapsed: float


def run_within(seconds: float, call: Callable[[], object]) -> Finished:
    """Run ``call`` on a thread and return how it ended.

    A call that hangs fails the test after ``seconds`` instead of stalling
    the run. Its daemon thread is left behind.

    Raises:
        AssertionError: The call was still running after ``seconds``.
    """
    ending: list[Finished] = []
    started = time.monotonic()

    def run() -> None:
        try:
            value = call()
        except BaseException as err:
            ending.append(Finished(None, err, time.monotonic() - started))
        else:
            ending.append(Finished(value, None, time.monotonic() - started))

    worker = threading.Thread(target=run, name="run-within", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise AssertionError(f"still running after {seconds:g} s")
    return ending[0]
