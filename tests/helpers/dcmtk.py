"""Real dcmtk peers on loopback: storescp and wlmscpfs, started per test.

Each server listens on a free port of 127.0.0.1, is awaited until it listens,
and is stopped by its PID when the test ends. Use the context managers
directly, or import the fixtures into a test module::

    from tests.helpers.dcmtk import storescp_jpeg_fixture  # noqa: F401

Worklist files are written with dcmtk's dump2dcm from a dump text encoded in
the file's own character set, the way a RIS would write them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
START_ATTEMPTS = 3

# Python codec of each SpecificCharacterSet value the worklist files use.
DUMP_CODECS = {"": "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


@dataclass
class DcmtkServer:
    """A running dcmtk server process.

    Attributes:
        process: The server process, stopped by its PID at the end.
        port: The loopback port it listens on.
        ae_title: Its own AE title (storescp accepts any called AE title,
            wlmscpfs only the names of the folders under its data path).
        folder: Where storescp writes received files, or wlmscpfs reads
            worklist files.
        log: File holding the server's standard output and error.
    """

    process: subprocess.Popen[bytes]
    port: int
    ae_title: str
    folder: Path
    log: Path

    def received_files(self) -> list[Path]:
        """Return the files storescp has written, sorted by name."""
        return sorted(path for path in self.folder.iterdir() if path.is_file())

    def log_text(self) -> str:
        """Return what the server has printed so far."""
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_tool(name: str) -> str:
    """Return the path of a dcmtk tool, or skip the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package dcmtk)")
    return path


@contextmanager
def run_dcmtk_server(
    tool: str,
    arguments: Sequence[str],
    *,
    ae_title: str,
    folder: Path,
    log: Path,
) -> Iterator[DcmtkServer]:
    """Start ``tool arguments... PORT`` on a free port; stop it on exit.

    The port is the last argument, as storescp and wlmscpfs take it. A port
    taken by another process between the choice and the start makes the
    server exit at once, so the start is tried again on another port.
    """
    executable = require_tool(tool)
    server = None
    for _ in range(START_ATTEMPTS):
        port = free_port()
        with log.open("ab") as output:
            process = subprocess.Popen(
                [executable, *arguments, str(port)],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if _wait_until_listening(process, port):
            server = DcmtkServer(process, port, ae_title, folder, log)
            break
        _stop(process)
    if server is None:
        raise RuntimeError(
            f"{tool} did not start listening: {log.read_text(errors='replace')}"
        )

    try:
        yield server
    finally:
        _stop(server.process)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _port_is_listening(port):
            return True
        time.sleep(0.05)
    return False


def _port_is_listening(port: int) -> bool:
    # /proc/net/tcp lists the listening socket without connecting to it: a
    # probe connection would reach storescp as a broken association.
    wanted = f"0100007F:{port:04X}"
    any_address = f"00000000:{port:04X}"
    listening_state = "0A"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return _port_accepts_connection(port)
    for line in lines:
        fields = line.split()
        if fields[1] in (wanted, any_address) and fields[3] == listening_state:
            return True
    return False


def _port_accepts_connection(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def run_storescp(
    folder: Path,
    *,
    accept_jpeg: bool,
    ae_title: str = "STORESCP",
    extra_arguments: Sequence[str] = (),
) -> Iterator[DcmtkServer]:
    """Run storescp writing received files into ``folder``.

    With ``accept_jpeg`` it accepts every transfer syntax it supports (``+xa``);
    without, only the uncompressed ones (its default). ``extra_arguments``
    adds options such as ``--abort-after`` or a TLS setup.
    """
    folder.mkdir(parents=True, exist_ok=True)
    arguments = ["--aetitle", ae_title, "--output-directory", str(folder)]
    if accept_jpeg:
        arguments.append("+xa")
    arguments.extend(extra_arguments)
    log = folder.parent / f"{folder.name}-storescp.log"
    with run_dcmtk_server(
        "storescp", arguments, ae_title=ae_title, folder=folder, log=log
    ) as server:
        yield server


def write_storescp_profile(
    path: Path, sop_classes: Mapping[str, Sequence[str]]
) -> list[str]:
    """Write a storescp negotiation profile accepting only ``sop_classes``.

    ``sop_classes`` maps dcmtk names of SOP classes (for example
    ``VLPhotographicImageStorage``) to dcmtk names of transfer syntaxes
    (``JPEGBaseline``, ``LocalEndianExplicit``, ``LittleEndianImplicit``).
    Returns the storescp options that select the profile.
    """
    lines = ["[[TransferSyntaxes]]"]
    for index, syntaxes in enumerate(sop_classes.values(), start=1):
        lines.append(f"[Syntaxes{index}]")
        lines.extend(
            f"TransferSyntax{number} = {syntax}"
            for number, syntax in enumerate(syntaxes, start=1)
        )
    lines.append("[[PresentationContexts]]")
    lines.append("[Contexts]")
    for index, sop_class in enumerate(sop_classes, start=1):
        lines.append(f"PresentationContext{index} = {sop_class}\\Syntaxes{index}")
    lines.append("[[Profiles]]")
    lines.append("[Restricted]")
    lines.append("PresentationContexts = Contexts")
    path.write_text("\n".join(lines) + "\n")
    return ["--config-file", str(path), "Restricted"]


@dataclass
class WorklistEntry:
    """One scheduled procedure step, written as a wlmscpfs worklist file.

    Attributes:
        patient_name: PatientName in DICOM form (``FAMILY^GIVEN``).
        character_set: SpecificCharacterSet of the file; its values are
            encoded with the matching codec.
    """

    patient_name: str
    patient_id: str = "PID001"
    accession_number: str = "ACC0001"
    scheduled_date: str = "20260101"
    scheduled_time: str = "093000"
    modality: str = "OP"
    station_ae_title: str = "EYERDESKTOP"
    character_set: str = "ISO_IR 100"
    issuer_of_patient_id: str = "CLINIC"
    birth_date: str = "19580302"
    sex: str = "F"
    study_instance_uid: str = "1.2.826.0.1.3680043.10.1.1"
    requested_procedure_id: str = "RP001"
    requested_procedure_description: str = "Retinografia"
    step_id: str = "SPS001"
    step_description: str = "Fundus photography"
    referring_physician: str = "HOUSE^GREGORY"
    extra_lines: list[str] = field(default_factory=list)

    def dump(self) -> str:
        """Return the entry as dcmdump text, as dump2dcm reads it."""
        charset_line = (
            f"(0008,0005) CS [{self.character_set}]" if self.character_set else ""
        )
        lines = [
            charset_line,
            f"(0008,0050) SH [{self.accession_number}]",
            f"(0008,0090) PN [{self.referring_physician}]",
            f"(0010,0010) PN [{self.patient_name}]",
            f"(0010,0020) LO [{self.patient_id}]",
            f"(0010,0021) LO [{self.issuer_of_patient_id}]",
            f"(0010,0030) DA [{self.birth_date}]",
            f"(0010,0040) CS [{self.sex}]",
            f"(0020,000d) UI [{self.study_instance_uid}]",
            f"(0032,1060) LO [{self.requested_procedure_description}]",
            "(0040,0100) SQ (Sequence with undefined length)",
            "(fffe,e000) na (Item with undefined length)",
            f"(0008,0060) CS [{self.modality}]",
            f"(0040,0001) AE [{self.station_ae_title}]",
            f"(0040,0002) DA [{self.scheduled_date}]",
            f"(0040,0003) TM [{self.scheduled_time}]",
            "(0040,0006) PN []",
            f"(0040,0007) LO [{self.step_description}]",
            f"(0040,0009) SH [{self.step_id}]",
            "(0040,0010) SH [EYER]",
            "(0040,0011) SH [ROOM1]",
            "(fffe,e00d) na (ItemDelimitationItem)",
            "(fffe,e0dd) na (SequenceDelimitationItem)",
            f"(0040,1001) SH [{self.requested_procedure_id}]",
            "(0040,1003) SH [ROUTINE]",
            *self.extra_lines,
        ]
        return "\n".join(line for line in lines if line) + "\n"


def write_worklist_file(folder: Path, name: str, entry: WorklistEntry) -> Path:
    """Write ``entry`` as ``folder/name.wl`` with dump2dcm and return the path."""
    dump2dcm = require_tool("dump2dcm")
    folder.mkdir(parents=True, exist_ok=True)
    dump_path = folder / f"{name}.dump"
    dump_path.write_bytes(entry.dump().encode(DUMP_CODECS[entry.character_set]))
    target = folder / f"{name}.wl"
    result = subprocess.run(
        [dump2dcm, "--write-xfer-little", str(dump_path), str(target)],
        capture_output=True,
        check=False,
    )
    dump_path.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"dump2dcm failed: {result.stderr.decode(errors='replace')}")
    return target


@contextmanager
def run_wlmscpfs(
    data_root: Path, ae_title: str = "WLMSCP", *, keep_character_set: bool = True
) -> Iterator[DcmtkServer]:
    """Run wlmscpfs serving the worklist files in ``data_root/ae_title``.

    wlmscpfs rejects an association whose called AE title has no folder
    under ``data_root``, and needs a ``lockfile`` in the folder it reads.
    With ``keep_character_set`` it returns each file's own
    SpecificCharacterSet; without, it returns none (its default), though the
    text keeps the file's encoding.
    """
    folder = data_root / ae_title
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").touch()
    character_set_option = (
        "--keep-char-set" if keep_character_set else "--return-no-char-set"
    )
    arguments = [
        "--single-process",
        character_set_option,
        "--data-files-path",
        str(data_root),
    ]
    log = data_root.parent / f"{data_root.name}-wlmscpfs.log"
    with run_dcmtk_server(
        "wlmscpfs", arguments, ae_title=ae_title, folder=folder, log=log
    ) as server:
        yield server


@pytest.fixture(name="storescp_jpeg")
def storescp_jpeg_fixture(tmp_path: Path) -> Iterator[DcmtkServer]:
    """storescp accepting JPEG Baseline (``+xa``)."""
    with run_storescp(tmp_path / "received-jpeg", accept_jpeg=True) as server:
        yield server


@pytest.fixture(name="storescp_uncompressed")
def storescp_uncompressed_fixture(tmp_path: Path) -> Iterator[DcmtkServer]:
    """storescp in its default mode: uncompressed transfer syntaxes only."""
    with run_storescp(tmp_path / "received-native", accept_jpeg=False) as server:
        yield server


@pytest.fixture(name="wlmscpfs_server")
def wlmscpfs_server_fixture(tmp_path: Path) -> Iterator[DcmtkServer]:
    """wlmscpfs with an empty worklist folder for AE title WLMSCP."""
    with run_wlmscpfs(tmp_path / "worklists") as server:
        yield server
