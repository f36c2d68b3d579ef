"""Write the 12-bit JPEG files of this folder with two real encoders.

The pictures are the project's drawn fundus photographs with 12-bit samples
(tests.helpers.jpeg12). The encoders are PVRG-JPEG 1.2.1 (Debian package
pvrg-jpeg) and Thomas Richter's libjpeg (Debian package libjpeg-tools,
0.0~git20220805). They write what dcmtk's dcmcjpeg cannot: restart
intervals, non-interleaved scans, 4:2:0 and unusual sampling factors, RGB
without colour transform, and the 12-bit processes that stay rejected.
PVRG-JPEG also writes 0 as the end of spectral selection of its scans.
Neither tool is needed to run the tests. Run from the repository root:

    .venv/bin/python -m tests.data.jpeg12.make_files
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.jpeg12 import Samples, draw_twelve_bit_fundus

FOLDER = Path(__file__).parent

# Sampling factors (horizontal, vertical) of Y, Cb and Cr.
Sampling = Sequence[tuple[int, int]]


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        _pvrg_files(work)
        _libjpeg_tools_files(work)


def _pvrg_files(work: Path) -> None:
    colour = draw_twelve_bit_fundus(100, 75, seed=41)
    _pvrg(
        work,
        colour,
        [(2, 2), (1, 1), (1, 1)],
        ["-n", "-r", "4"],
        "pvrg_ycbcr420_separate_scans_restart.jpg",
    )
    mixed = draw_twelve_bit_fundus(90, 70, seed=42)
    _pvrg(
        work,
        mixed,
        [(2, 2), (1, 2), (2, 1)],
        ["-n", "-r", "2"],
        "pvrg_ycbcr_mixed_sampling_separate_scans_restart.jpg",
    )
    grey = draw_twelve_bit_fundus(80, 60, grey=True, seed=43)
    _pvrg(work, grey, [(1, 1)], ["-r", "7"], "pvrg_grey_restart.jpg")


def _libjpeg_tools_files(work: Path) -> None:
    colour = draw_twelve_bit_fundus(120, 90, seed=44)
    _libjpeg_tools(
        work,
        colour,
        ["-q", "90", "-s", "1x1,2x2,2x2", "-z", "2"],
        "libjpegtools_ycbcr420_restart.jpg",
    )
    mixed = draw_twelve_bit_fundus(110, 85, seed=47)
    _libjpeg_tools(
        work,
        mixed,
        ["-q", "90", "-s", "1x1,1x2,2x1", "-z", "3"],
        "libjpegtools_ycbcr_mixed_sampling_restart.jpg",
    )
    grey = draw_twelve_bit_fundus(100, 70, grey=True, seed=45)
    _libjpeg_tools(work, grey, ["-q", "90", "-z", "5"], "libjpegtools_grey_restart.jpg")
    small = draw_twelve_bit_fundus(64, 48, seed=46)
    _libjpeg_tools(work, small, ["-q", "90", "-c"], "libjpegtools_rgb_adobe.jpg")
    _libjpeg_tools(work, small, ["-q", "90", "-v"], "libjpegtools_progressive.jpg")
    _libjpeg_tools(work, small, ["-q", "90", "-a"], "libjpegtools_arithmetic.jpg")
    _libjpeg_tools(work, small, ["-q", "100", "-p", "-c"], "libjpegtools_lossless.jpg")


def _pvrg(
    work: Path,
    samples: Samples,
    sampling: Sampling,
    options: Sequence[str],
    name: str,
) -> None:
    """Encode with PVRG-JPEG, which takes one raw 16-bit big-endian file per
    component, so colour is converted to YCbCr and subsampled here.

    PVRG-JPEG 1.2.1 fails with "Null Code" errors on interleaved 12-bit
    scans, so its files use separate scans (-n).
    """
    planes = _ycbcr_planes(samples) if samples.bands == 3 else [_plane(samples, 0)]
    max_horizontal = max(horizontal for horizontal, _ in sampling)
    max_vertical = max(vertical for _, vertical in sampling)
    arguments = ["-iw", str(samples.columns), "-ih", str(samples.rows), "-p", "12"]
    for index, (plane, (horizontal, vertical)) in enumerate(
        zip(planes, sampling, strict=True), start=1
    ):
        width = -(-samples.columns * horizontal // max_horizontal)
        height = -(-samples.rows * vertical // max_vertical)
        path = work / f"component{index}.raw"
        values = _subsample(
            plane,
            samples.columns,
            samples.rows,
            (max_horizontal // horizontal, max_vertical // vertical),
            (width, height),
        )
        path.write_bytes(struct.pack(f">{len(values)}H", *values))
        arguments += ["-ci", str(index), "-fw", str(width), "-fh", str(height)]
        arguments += ["-hf", str(horizontal), "-vf", str(vertical), str(path)]
    output = work / name
    _run(["pvrg-jpeg", *options, "-s", str(output), *arguments])
    shutil.copyfile(output, FOLDER / name)


def _libjpeg_tools(
    work: Path, samples: Samples, options: Sequence[str], name: str
) -> None:
    """Encode a 12-bit PGM or PPM (maximum 4095) with libjpeg-tools' jpeg."""
    kind = "P6" if samples.bands == 3 else "P5"
    header = f"{kind}\n{samples.columns} {samples.rows}\n4095\n".encode()
    source = work / "source.pnm"
    source.write_bytes(
        header + struct.pack(f">{len(samples.values)}H", *samples.values)
    )
    output = work / name
    _run(["jpeg", *options, str(source), str(output)])
    shutil.copyfile(output, FOLDER / name)


def _plane(samples: Samples, band: int) -> list[float]:
    return [float(value) for value in samples.values[band :: samples.bands]]


def _ycbcr_planes(samples: Samples) -> list[list[float]]:
    """Convert 12-bit RGB to YCbCr with the JFIF equations, centred on 2048."""
    red, green, blue = (_plane(samples, band) for band in range(3))
    luma = [
        0.299 * r + 0.587 * g + 0.114 * b
        for r, g, b in zip(red, green, blue, strict=True)
    ]
    blue_difference = [
        2048 - 0.168736 * r - 0.331264 * g + 0.5 * b
        for r, g, b in zip(red, green, blue, strict=True)
    ]
    red_difference = [
        2048 + 0.5 * r - 0.418688 * g - 0.081312 * b
        for r, g, b in zip(red, green, blue, strict=True)
    ]
    return [luma, blue_difference, red_difference]


def _subsample(
    plane: list[float],
    columns: int,
    rows: int,
    step: tuple[int, int],
    size: tuple[int, int],
) -> list[int]:
    """Average boxes of ``step`` pixels into a plane of ``size``, repeating
    the last row and column where a box runs past the edge, and round to 12
    bits.
    """
    (step_x, step_y), (width, height) = step, size
    values = []
    for y in range(height):
        for x in range(width):
            total = 0.0
            for dy in range(step_y):
                for dx in range(step_x):
                    source_x = min(columns - 1, x * step_x + dx)
                    source_y = min(rows - 1, y * step_y + dy)
                    total += plane[source_y * columns + source_x]
            values.append(min(4095, max(0, round(total / (step_x * step_y)))))
    return values


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    main()
