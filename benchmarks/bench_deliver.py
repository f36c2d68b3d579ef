"""Time delivery through the whole product against dcmtk storescu.

Draws ``--count`` sample fundus photographs with ``write_sample_images``
(1600x1600, JPEG quality 92, about 410 kB each) and imports them into the
exam library of a temporary profile as ``--exams`` exams. It then times, in
one run and each against a fresh dcmtk storescp on loopback:

- ``eyer-desktop send`` of every exam to storescp ``+xa`` (JPEG accepted), as
  one process with start-up included. It queues the images in the outbox,
  and the delivery engine converts each image from the library and sends it
  with the workspace's sender, in batches of 100 per association;
- the same delivery in-process (routing, outbox, ``create_engine`` and
  ``run_once``), without start-up;
- dcmtk ``storescu -xy`` of the same images, converted to files beforehand,
  so its time includes no conversion;
- ``eyer-desktop send`` to storescp in its default mode, which accepts only
  uncompressed transfer syntaxes, so every image is decoded and sent native.

``bench_send.py`` times the C-STORE of ready files alone; this script adds
the queue and the conversion. Each figure is the median of ``--runs`` runs.
A run in which not every image arrived is printed as incomplete and left out
of the median. Absolute times vary between machines and runs, so compare
ratios taken in one run.

Usage: ``.venv/bin/python benchmarks/bench_deliver.py [--count 200] [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from _common import timed_process  # noqa: E402

from eyer_desktop.core import routing  # noqa: E402
from eyer_desktop.core.conversion import conversion_options  # noqa: E402
from eyer_desktop.core.dicom.convert import convert_exam  # noqa: E402
from eyer_desktop.core.exams import Exam, ExamType  # noqa: E402
from eyer_desktop.core.importer import import_images, make_patient  # noqa: E402
from eyer_desktop.core.paths import AppPaths  # noqa: E402
from eyer_desktop.core.samples import write_sample_images  # noqa: E402
from eyer_desktop.core.sending import create_engine  # noqa: E402
from eyer_desktop.core.server_settings import DicomStorageSettings  # noqa: E402
from eyer_desktop.core.workspace import Workspace  # noqa: E402
from tests.helpers.dcmtk import run_storescp  # noqa: E402

IMAGE_SIZE = 1600
CALLING_AE = "EYERBENCH"
CALLED_AE = "STORESCP"


class Profile:
    """The temporary profile with the exams and the storescp server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = AppPaths.for_profile(folder)
        self.exams: list[Exam] = []
        self.server_key = ""

    def import_exams(self, images: Sequence[Path], exam_count: int) -> None:
        """Import the images as ``exam_count`` colour exams of equal size."""
        workspace = Workspace(self.paths)
        patient = make_patient(
            family="Benchmark", given="Paciente", document_number="1"
        )
        size = -(-len(images) // exam_count)
        for start in range(0, len(images), size):
            exam = import_images(
                workspace.library,
                images[start : start + size],
                patient,
                exam_type=ExamType.COLOR,
            )
            self.exams.append(exam)

        settings = DicomStorageSettings(
            calling_ae=CALLING_AE, called_ae=CALLED_AE, host="127.0.0.1", port=104
        )
        self.server_key = workspace.servers.add("Benchmark", "mirror", settings).key
        workspace.save_servers()

    def point_server_at(self, port: int) -> None:
        """Set the server's port and empty the outbox, ready for a new run."""
        workspace = Workspace(self.paths)
        server = workspace.servers.get(self.server_key)
        assert isinstance(server.settings, DicomStorageSettings)
        settings = replace(server.settings, port=port)
        workspace.servers.edit(self.server_key, settings=settings)
        workspace.save_servers()
        for path in self.paths.data_dir.glob(self.paths.outbox_file.name + "*"):
            path.unlink()

    def convert_files(self, folder: Path) -> list[str]:
        """Write every exam as DICOM files, as the server would receive them."""
        workspace = Workspace(self.paths)
        server = workspace.servers.get(self.server_key)
        options = conversion_options(workspace.settings, server)
        files = []
        for exam in self.exams:
            converted = convert_exam(exam, options, folder / exam.exam_id)
            files.extend(str(item.path) for item in converted)
        return files

    def send_command(self) -> list[str]:
        exam_ids = [exam.exam_id for exam in self.exams]
        profile = ["--profile", str(self.folder)]
        return [sys.executable, "-m", "eyer_desktop", *profile, "send", *exam_ids]

    def deliver_in_process(self) -> None:
        """Queue every exam and run the delivery engine once, in this process."""
        workspace = Workspace(self.paths)
        try:
            servers = list(workspace.servers)
            for exam in self.exams:
                routing.enqueue_exam(workspace.outbox, servers, exam)
            summary = create_engine(workspace).run_once()
        finally:
            workspace.close()
        if summary.failed or summary.retries:
            raise RuntimeError(f"in-process delivery did not finish: {summary}")


def time_case(
    work: Path,
    profile: Profile,
    *,
    name: str,
    accept_jpeg: bool,
    sender: Callable[[int], float],
    expected: int,
) -> float | None:
    """Start a fresh storescp and time one sender against it.

    Returns:
        The time, or None when not every image arrived or the sender failed.
        The reason is printed, so an incomplete run is seen, not averaged in.
    """
    received = work / f"received-{name}"
    problem = ""
    elapsed = None
    with run_storescp(received, accept_jpeg=accept_jpeg) as server:
        profile.point_server_at(server.port)
        try:
            elapsed = sender(server.port)
        except RuntimeError as err:
            problem = str(err).splitlines()[0]
        arrived = len(server.received_files())
    shutil.rmtree(received)
    if arrived != expected:
        problem = f"{arrived} of {expected} images arrived. {problem}"
    if problem:
        print(f"  incomplete run {name}: {problem}", flush=True)
        return None
    return elapsed


def benchmark(count: int, exam_count: int, runs: int) -> None:
    """Prepare the profile and the files, time every case and print the results."""
    with tempfile.TemporaryDirectory(prefix="eyer-bench-") as folder:
        work = Path(folder)
        started = time.perf_counter()
        images = write_sample_images(work / "jpeg", count, size=IMAGE_SIZE)
        profile = Profile(work / "profile")
        profile.import_exams(images, exam_count)
        files = profile.convert_files(work / "files")
        megabytes = sum(path.stat().st_size for path in images) / 1e6
        print(
            f"{count} images in {len(profile.exams)} exams, {megabytes:.1f} MB of "
            f"JPEG, prepared in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        def send_process(_port: int) -> float:
            return timed_process(profile.send_command())

        def deliver_in_process(_port: int) -> float:
            started = time.perf_counter()
            profile.deliver_in_process()
            return time.perf_counter() - started

        def storescu(port: int) -> float:
            address = ["127.0.0.1", str(port)]
            titles = ["-aet", CALLING_AE, "-aec", CALLED_AE]
            return timed_process(["storescu", "-xy", *titles, *address, *files])

        cases = {
            "eyer-desktop send, JPEG Baseline": (send_process, True),
            "delivery engine in-process, JPEG": (deliver_in_process, True),
            "dcmtk storescu -xy, ready files": (storescu, True),
            "eyer-desktop send, decoded to native": (send_process, False),
        }
        timings: dict[str, list[float | None]] = {name: [] for name in cases}
        for run in range(runs):
            for number, (name, (sender, accept_jpeg)) in enumerate(cases.items()):
                elapsed = time_case(
                    work,
                    profile,
                    name=f"{run + 1}.{number + 1} ({name})",
                    accept_jpeg=accept_jpeg,
                    sender=sender,
                    expected=count,
                )
                timings[name].append(elapsed)
            print(f"run {run + 1} of {runs} done", flush=True)

    print_results(timings, count, runs)


def print_results(
    timings: dict[str, list[float | None]], count: int, runs: int
) -> None:
    """Print the median of the complete runs of each case, and the ratio."""
    medians: dict[str, float | None] = {}
    for name, times in timings.items():
        complete = [elapsed for elapsed in times if elapsed is not None]
        medians[name] = statistics.median(complete) if complete else None
    print(
        f"\nmedian of {runs} runs, {os.cpu_count()} CPUs, sender and storescp "
        "on loopback:"
    )
    print(f"  {'what':<40}{'seconds':>8}{'images/s':>10}{'incomplete':>12}")
    for name, seconds in medians.items():
        incomplete = timings[name].count(None)
        if seconds is None:
            print(f"  {name:<40}{'-':>8}{'-':>10}{incomplete:12d}")
        else:
            print(f"  {name:<40}{seconds:8.2f}{count / seconds:10.1f}{incomplete:12d}")
    ours = medians["eyer-desktop send, JPEG Baseline"]
    storescu = medians["dcmtk storescu -xy, ready files"]
    if ours is not None and storescu is not None:
        print(f"  {'ratio eyer-desktop send / storescu':<40}{ours / storescu:8.2f}")


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of images")
    parser.add_argument("--exams", type=int, default=4, help="number of exams")
    parser.add_argument("--runs", type=int, default=3, help="runs of each case")
    options = parser.parse_args(arguments)
    if not 1 <= options.exams <= options.count:
        parser.error("--exams must be between 1 and --count")
    benchmark(options.count, options.exams, options.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
