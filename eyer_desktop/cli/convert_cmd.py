"""``eyer-desktop convert``: write the DICOM files of exams to a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from eyer_desktop.cli.arguments import resolve_exam_argument
from eyer_desktop.core.dicom.convert import convert_exam
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.manifest import load_exam
from eyer_desktop.core.sending import conversion_options

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
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.set_defaults(handler=convert_exams)


def convert_exams(context: Workspace, args: argparse.Namespace) -> int:
    options = conversion_options(context.settings)
    exams = [_load(context, text) for text in args.exams]
    for exam in exams:
        folder = args.out / exam.exam_id
        files = convert_exam(exam, options, folder)
        print(f"{exam.exam_id}: {len(files)} files in {folder}")
    return 0


def _load(context: Workspace, text: str) -> Exam:
    path = Path(text)
    if (path / "exam.json").is_file():
        return load_exam(path)
    return context.library.load(resolve_exam_argument(context, text))
