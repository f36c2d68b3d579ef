"""Time JPEG to DICOM OP conversion: this application against cp and dcmtk img2dcm.

Draws ``--count`` sample fundus photographs (1600x1600, JPEG quality 92,
4:2:0, about 370 kB each), imports them as one exam, then times in one run:

- ``cp`` of the same JPEG files into an empty folder: the floor;
- ``eyer-desktop convert`` of the exam: one process, start-up included;
- the same conversion in-process (``convert_exam``), without start-up;
- dcmtk ``img2dcm -oph`` on each file, one process per file, as a script
  would run it, with the keys it needs to write a valid OP file.

Each run times every action once, one after the other, so a change in the
machine's load affects all of them alike. Each figure is the median of
``--runs`` runs, with the fastest run beside it. The script prints images/s,
MB/s (of JPEG input), the median of each run's ratio to that run's cp, and
the CPU time (user and system, child processes included). Absolute times
vary between machines and runs; compare ratios taken in one run.

Usage: ``.venv/bin/python benchmarks/bench_convert.py [--count 200] [--runs 5]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.dicom.convert import convert_exam
from eyer_desktop.core.exams import ExamType
from eyer_desktop.core.importer import import_images, make_patient
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.samples import write_sample_images
from eyer_desktop.core.settings import AppSettings

IMG2DCM_KEYS = [
    "ImageLaterality=R",
    "AcquisitionDeviceTypeCodeSequence[0].CodeValue=409898007",
    "AcquisitionDeviceTypeCodeSequence[0].CodingSchemeDesignator=SCT",
    "AcquisitionDeviceTypeCodeSequence[0].CodeMeaning=Fundus Camera",
    "AnatomicRegionSequence[0].CodeValue=81745001",
    "AnatomicRegionSequence[0].CodingSchemeDesignator=SCT",
    "AnatomicRegionSequence[0].CodeMeaning=Eye",
    "PatientOrientation=L\\F",
]


@dataclass
class Timings:
    """Wall-clock and CPU seconds of each run of one action."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def cpu_seconds() -> float:
    """User and system time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved_times(
    actions: Sequence[tuple[str, Callable[[], None]]],
    runs: int,
    reset: Callable[[], None],
) -> dict[str, Timings]:
    """Run every action once per run, in turn, and return each one's times.

    Before each action the output folder is emptied and every dirty page is
    written to disk, so that no action pays for writing out the files of the
    one before it.
    """
    times = {name: Timings() for name, _ in actions}
    for _ in range(runs):
        for name, action in actions:
            reset()
            os.sync()
            cpu_started = cpu_seconds()
            started = time.perf_counter()
            action()
            times[name].wall.append(time.perf_counter() - started)
            times[name].cpu.append(cpu_seconds() - cpu_started)
    return times


def fresh_folder(folder: Path) -> Callable[[], None]:
    def reset() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    return reset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of images")
    parser.add_argument("--runs", type=int, default=5, help="runs of each figure")
    parser.add_argument("--size", type=int, default=1600, help="image size in pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="eyer-bench-") as temp:
        work = Path(temp)
        print(f"Drawing {args.count} sample images of {args.size} px ...", flush=True)
        images = write_sample_images(work / "jpeg", args.count, size=args.size)
        input_bytes = sum(path.stat().st_size for path in images)

        library = ExamLibrary(work / "library")
        patient = make_patient(
            family="Benchmark", given="Paciente", document_number="1"
        )
        exam = import_images(library, images, patient, exam_type=ExamType.COLOR)
        out = work / "out"
        reset = fresh_folder(out)
        options = conversion_options(AppSettings())
        eyer = [
            sys.executable,
            "-m",
            "eyer_desktop",
            "--profile",
            str(work / "profile"),
        ]
        env = os.environ | {"EYER_DESKTOP_PROFILE": str(work / "profile")}

        def copy() -> None:
            subprocess.run(["cp", *map(str, images), str(out)], check=True)

        def convert_command() -> None:
            subprocess.run(
                [*eyer, "convert", str(exam.folder), "--out", str(out)],
                check=True,
                capture_output=True,
                env=env,
            )

        def convert_in_process() -> None:
            convert_exam(exam, options, out)

        def img2dcm() -> None:
            keys = [arg for key in IMG2DCM_KEYS for arg in ("-k", key)]
            for index, path in enumerate(images):
                subprocess.run(
                    ["img2dcm", "-oph", str(path), str(out / f"{index}.dcm"), *keys],
                    check=True,
                    capture_output=True,
                )

        actions: list[tuple[str, Callable[[], None]]] = [
            ("cp (floor)", copy),
            ("eyer-desktop convert", convert_command),
            ("convert_exam in-process", convert_in_process),
        ]
        if shutil.which("img2dcm"):
            actions.append(("dcmtk img2dcm per file", img2dcm))
        times = interleaved_times(actions, args.runs, reset)

    floor = times["cp (floor)"]
    megabytes = input_bytes / 1e6
    print(
        f"\n{args.count} images, {megabytes:.1f} MB of JPEG, "
        f"median of {args.runs} runs, {os.cpu_count()} CPUs"
    )
    header = f"{'what':<26}{'median s':>9}{'best s':>8}{'images/s':>10}{'MB/s':>8}"
    print(f"{header}{'x cp':>7}{'CPU s':>8}")
    for name, measured in times.items():
        seconds = statistics.median(measured.wall)
        # Each run's ratio to that run's cp, so that a slower moment of the
        # machine affects both sides of a ratio alike.
        ratio = statistics.median(
            wall / cp for wall, cp in zip(measured.wall, floor.wall, strict=True)
        )
        print(
            f"{name:<26}{seconds:9.3f}{min(measured.wall):8.3f}"
            f"{args.count / seconds:10.1f}{megabytes / seconds:8.1f}"
            f"{ratio:7.1f}{statistics.median(measured.cpu):8.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
