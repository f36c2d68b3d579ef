"""``eyer-desktop convert``: write the DICOM files of exams to a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eyer_desktop.cli.arguments import non_empty_path, resolve_exam_argument
from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.dicom.convert import convert_exam
from eyer_desktop.core.errors import EyerError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.manifest import load_exam

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="write exams as DICOM Ophthalmic Photography files",
        description=(
            "Write the DICOM files of each exam into its own folder under DIR, "
            "named by the exam id. Converting again gives the same UIDs and "
            "replaces the earlier files."
        ),
    )
    parser.add_argument(
        "exams",
        nargs="+",
        metavar="EXAM",
        help="exam id, unique id prefix, or path of an exam folder",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=non_empty_path,
        metavar="DIR",
        help="folder to write into, one subfolder per exam",
    )
    parser.set_defaults(handler=convert_exams)


def convert_exams(context: Workspace, args: argparse.Namespace) -> int:
    options = conversion_options(context.settings)
    sources = [_exam_source(context, text) for text in args.exams]

    failed = 0
    for source in sources:
        try:
            exam = _load(context, source)
            folder = args.out / exam.exam_id
            files = convert_exam(exam, options, folder)
        except EyerError as error:
            failed += 1
            print(f"error: {_name_of(source)}: {error}", file=sys.stderr)
            continue
        print(f"{exam.exam_id}: {len(files)} files in {folder}")

    if failed:
        print(f"{failed} of {len(sources)} exams were not converted", file=sys.stderr)
    return 1 if failed else 0


def _exam_source(context: Workspace, text: str) -> str | Path:
    """Return the exam folder an argument names, or the id of a library exam.

    Raises:
        ValidationError: The argument names no exam folder and no single exam.
    """
    path = Path(text)
    if (path / "exam.json").is_file():
        return path
    return resolve_exam_argument(context, text)


def _load(context: Workspace, source: str | Path) -> Exam:
    if isinstance(source, Path):
        return load_exam(source)
    return context.library.load(source)


def _name_of(source: str | Path) -> str:
    return f"exam folder {source}" if isinstance(source, Path) else source
