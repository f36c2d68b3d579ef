"""Time a C-STORE batch of JPEG OP files: this application against dcmtk storescu.

Writes sample files (Pillow-drawn 1600x1600 fundus images with grain, JPEG
quality 92, about 370 kB each) wrapped as OP instances, then sends them over
loopback to a fresh dcmtk storescp for each run:

- this application (``store``), storescp with ``+xa`` (JPEG accepted);
- dcmtk ``storescu -xy`` on the same files and the same kind of storescp;
- this application to storescp in its default mode (uncompressed only), so
  every image is decoded and sent as native RGB.

Each sender runs as its own process and is timed from process start to exit,
Python start-up and imports included. The script prints the median of
``--runs`` runs and the ratio of this application's time to storescu's.
Absolute times vary between machines and runs; compare ratios from one run.

Usage: ``.venv/bin/python benchmarks/bench_send.py [--count 200] [--runs 3]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from _common import timed_process  # noqa: E402

from eyer_desktop.core.net import DicomEndpoint, store  # noqa: E402
from tests.helpers.dcmtk import run_storescp  # noqa: E402
from tests.helpers.op_samples import write_op_files  # noqa: E402

IMAGE_SIZE = 1600
JPEG_QUALITY = 92
# Noise blend that brings the drawn 1600x1600 image to about 370 kB at
# quality 92, the size of a real fundus photograph of that size.
GRAIN = 0.03
CALLING_AE = "EYERBENCH"


def send_with_this_application(port: int, files: Sequence[str]) -> int:
    """Send ``files`` with this application's store(); return an exit status."""
    endpoint = DicomEndpoint("127.0.0.1", port, CALLING_AE, "STORESCP")
    report = store(endpoint, [Path(file) for file in files])
    if not report.all_stored:
        print(report.summary(), file=sys.stderr)
        return 1
    return 0


def time_sender(
    work: Path, files: list[str], *, accept_jpeg: bool, sender: str, run: int
) -> float:
    """Start a fresh storescp, time one sender against it, and check arrivals."""
    received = work / f"received-{sender}-{run}"
    with run_storescp(received, accept_jpeg=accept_jpeg) as server:
        if sender == "storescu":
            command = [
                "storescu", "-xy", "-aet", CALLING_AE, "-aec", "STORESCP",
                "127.0.0.1", str(server.port), *files,
            ]  # fmt: skip
        else:
            command = [sys.executable, __file__, "send", str(server.port), *files]
        elapsed = timed_process(command)
        arrived = len(server.received_files())
    shutil.rmtree(received)
    if arrived != len(files):
        raise RuntimeError(f"{sender}: {arrived} of {len(files)} files arrived")
    return elapsed


def benchmark(count: int, runs: int) -> None:
    """Write the sample files, time every sender and print the results."""
    with tempfile.TemporaryDirectory(prefix="eyer-bench-") as folder:
        work = Path(folder)
        started = time.perf_counter()
        paths = write_op_files(
            work / "sources",
            count,
            width=IMAGE_SIZE,
            height=IMAGE_SIZE,
            quality=JPEG_QUALITY,
            grain=GRAIN,
        )
        written = time.perf_counter() - started
        files = [str(path) for path in paths]
        size = sum(path.stat().st_size for path in paths)
        print(
            f"{count} files, {size / count / 1000:.0f} kB each on average, "
            f"written in {written:.1f} s"
        )

        timings: dict[str, list[float]] = {"ours": [], "storescu": [], "decoded": []}
        for run in range(runs):
            for sender, accept_jpeg in (
                ("ours", True),
                ("storescu", True),
                ("decoded", False),
            ):
                elapsed = time_sender(
                    work, files, accept_jpeg=accept_jpeg, sender=sender, run=run
                )
                timings[sender].append(elapsed)

    medians = {sender: statistics.median(times) for sender, times in timings.items()}
    print(f"median of {runs} runs, whole process, sender and storescp on loopback:")
    print(f"  this application, JPEG Baseline       {medians['ours']:6.2f} s")
    print(f"  dcmtk storescu -xy, JPEG Baseline     {medians['storescu']:6.2f} s")
    print(f"  this application, decoded to native   {medians['decoded']:6.2f} s")
    ratio = medians["ours"] / medians["storescu"]
    print(f"  ratio this application / storescu     {ratio:6.2f}")


def main(arguments: Sequence[str] | None = None) -> int:
    """Run the benchmark, or, with ``send``, one timed sender process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command")
    send = subparsers.add_parser("send", help="send files once (used internally)")
    send.add_argument("port", type=int)
    send.add_argument("files", nargs="+")
    parser.add_argument("--count", type=int, default=200, help="number of files")
    parser.add_argument("--runs", type=int, default=3, help="runs per sender")
    options = parser.parse_args(arguments)

    if options.command == "send":
        return send_with_this_application(options.port, options.files)
    benchmark(options.count, options.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
