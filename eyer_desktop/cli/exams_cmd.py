"""``eyer-desktop exams`` and ``samples``: the exam library from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eyer_desktop.cli.arguments import non_empty_path, resolve_exam_argument
from eyer_desktop.cli.output import print_json, print_table
from eyer_desktop.core import removal, routing
from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.exams import (
    DeviceInfo,
    Diopters,
    ExamType,
    ImageRole,
    Laterality,
)
from eyer_desktop.core.importer import ImageInput, import_images, make_patient
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.manifest import ExamValidationError, exam_to_json
from eyer_desktop.core.samples import write_sample_exams

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace


# Manifest fields of an imported exam and the options that set them.
_IMPORT_OPTIONS = {
    "patient.name.family": "--family-name",
    "patient.name.given": "--given-name",
    "patient.name.middle": "--middle-name",
    "patient.name": "--family-name",
    "patient.document.number": "--document",
    "patient.document.type": "--document-type",
    "patient.sex": "--sex",
    "patient.birth_date": "--birth-date",
    "captured_at": "--captured-at",
    "exam_type": "--type",
    "anamnesis": "--anamnesis",
    "diopters.R": "--diopter-right",
    "diopters.L": "--diopter-left",
    "pupil_dilated": "--pupil-dilated",
}
_IMAGE_FIELD = re.compile(r"images\[([0-9]+)\]")
_NULL_HINT = re.compile(r",? or null when [a-z ]+")
_EXAM_TYPE_HINT = re.compile(r'Set exam_type to "([a-z-]+)"')


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("exams", help="list, show, import and delete exams")
    commands = parser.add_subparsers(dest="exams_command", metavar="ACTION")
    commands.required = True

    list_parser = commands.add_parser("list", help="list the exams, newest first")
    list_parser.add_argument("--json", action="store_true", help="print JSON")
    list_parser.set_defaults(handler=list_exams)

    show = commands.add_parser("show", help="print an exam's manifest")
    show.add_argument("exam", help="exam id or a unique prefix of it")
    show.set_defaults(handler=show_exam)

    delete = commands.add_parser("delete", help="delete an exam and its images")
    delete.add_argument("exam", help="exam id or a unique prefix of it")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete even if deliveries are unfinished, and cancel them",
    )
    delete.set_defaults(handler=delete_exam)

    _register_import(commands)

    samples = subparsers.add_parser(
        "samples", help="write synthetic sample exams of every exam type"
    )
    samples.add_argument(
        "dir",
        nargs="?",
        type=non_empty_path,
        help="folder to write the exams to (default: the profile's exam library)",
    )
    samples.add_argument(
        "--size", type=int, default=1600, help="image width and height in pixels"
    )
    samples.add_argument(
        "--seed", type=int, default=0, help="same seed, same exams (default: 0)"
    )
    samples.set_defaults(handler=write_samples)


def _register_import(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "import",
        help="create an exam from JPEG or PNG files (the files are copied)",
        description=(
            "Create an exam from loose JPEG or PNG files. The files are copied "
            "into the library; the originals stay where they are. Add :R or :L "
            "after a file name to give that image's eye, and :montage for the "
            "stitched image of a panoramic exam."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE[:R|:L][:montage]")
    patient = parser.add_argument_group("patient")
    patient.add_argument("--family-name", required=True)
    patient.add_argument("--given-name", default="")
    patient.add_argument("--middle-name", default="")
    patient.add_argument("--document", required=True, help="the clinic document number")
    patient.add_argument("--document-type", default="", help="e.g. CPF, CNS, MRN")
    patient.add_argument("--sex", choices=["M", "F", "O", "m", "f", "o"])
    patient.add_argument("--birth-date", metavar="YYYY-MM-DD")
    exam = parser.add_argument_group("exam")
    exam.add_argument(
        "--type",
        dest="exam_type",
        default=ExamType.COLOR.value,
        choices=[exam_type.value for exam_type in ExamType],
    )
    exam.add_argument(
        "--eye",
        default="R",
        choices=["R", "L"],
        help="eye of the images that do not name theirs (default: R)",
    )
    exam.add_argument(
        "--captured-at",
        metavar="ISO-8601",
        help="capture date and time with UTC offset (default: EXIF time, or now)",
    )
    exam.add_argument(
        "--anamnesis",
        metavar="JSON",
        help='conditions and answers, e.g. \'{"diabetes": "yes"}\'',
    )
    exam.add_argument("--diopter-right", type=float)
    exam.add_argument("--diopter-left", type=float)
    exam.add_argument(
        "--pupil-dilated", action=argparse.BooleanOptionalAction, default=None
    )
    parser.set_defaults(handler=import_exam)


def list_exams(context: Workspace, args: argparse.Namespace) -> int:
    listing = context.library.list_exams()
    if args.json:
        print_json(
            {
                "exams": [
                    {
                        "exam_id": s.exam_id,
                        "captured_at": s.captured_at.isoformat(),
                        "exam_type": s.exam_type.value,
                        "image_count": s.image_count,
                        "sequence_number": s.sequence_number,
                        "patient_name": s.patient_name,
                    }
                    for s in listing.exams
                ],
                "broken": [
                    {"folder": str(b.folder), "error": str(b.error)}
                    for b in listing.broken
                ],
            }
        )
    else:
        rows = [
            (
                s.exam_id[:8],
                s.captured_at.strftime("%Y-%m-%d %H:%M"),
                s.exam_type.value,
                s.image_count,
                s.patient_name,
            )
            for s in listing.exams
        ]
        print_table(("ID", "CAPTURED", "TYPE", "IMAGES", "PATIENT"), rows)
    for broken in listing.broken:
        print(f"warning: {broken.error}", file=sys.stderr)
    return 0


def show_exam(context: Workspace, args: argparse.Namespace) -> int:
    exam_id = resolve_exam_argument(context, args.exam)
    print_json(exam_to_json(context.library.load(exam_id)))
    return 0


def delete_exam(context: Workspace, args: argparse.Namespace) -> int:
    exam_id = resolve_exam_argument(context, args.exam)
    try:
        deletion = removal.delete_exam(
            context.library,
            context.outbox,
            exam_id,
            cache_dir=context.paths.cache_dir,
            force=args.force,
        )
    except removal.UnfinishedDeliveriesError as error:
        raise ValidationError(
            error.field,
            error.value,
            error.problem,
            f"Send them first ('outbox run'), cancel them ('outbox list --exam "
            f"{exam_id[:8]}', then 'outbox cancel ID...'), or add --force, "
            "which cancels them",
        ) from error
    cancelled = deletion.cancelled
    note = f", {cancelled} deliveries cancelled" if cancelled else ""
    print(f"{exam_id}: deleted{note}")
    # The exam is gone, so copies left in the cache are a warning, not an
    # error. The core logs their paths as warnings, which standard error shows.
    if deletion.cache_failures:
        print(
            f"warning: {len(deletion.cache_failures)} cached files or folders of "
            f"exam {exam_id} could not be removed from {context.paths.cache_dir}. "
            "Delete them by hand.",
            file=sys.stderr,
        )
    return 0


def import_exam(context: Workspace, args: argparse.Namespace) -> int:
    settings = context.settings
    try:
        patient = make_patient(
            family=args.family_name,
            given=args.given_name,
            middle=args.middle_name,
            document_number=args.document,
            document_type=args.document_type,
            sex=args.sex,
            birth_date=args.birth_date,
        )
        exam = import_images(
            context.library,
            [_parse_image_argument(text) for text in args.files],
            patient,
            exam_type=ExamType(args.exam_type),
            laterality=Laterality(args.eye),
            captured_at=_parse_capture_time(args.captured_at),
            device=DeviceInfo(
                serial_number=settings.device_serial_number,
                software_version=settings.software_version,
                clinic_name=settings.institution_name,
            ),
            anamnesis=_parse_anamnesis(args.anamnesis),
            diopters=Diopters(right=args.diopter_right, left=args.diopter_left),
            pupil_dilated=args.pupil_dilated,
        )
    except ExamValidationError as error:
        print(f"error: {_import_error_message(error, args.files)}", file=sys.stderr)
        return 2
    print(exam.exam_id)
    routing.enqueue_exam(context.outbox, list(context.servers), exam)
    return 0


def _import_error_message(error: ExamValidationError, files: Sequence[str]) -> str:
    """Return the problems of an import in terms of the import command's options.

    The core names manifest fields (``diopters.R``) and manifest values
    (``null``); the user typed options (``--diopter-right``) and file names.
    """
    messages = [_import_problem_message(problem, files) for problem in error.problems]
    if len(messages) == 1:
        return messages[0]
    lines = "\n".join(f"- {message}" for message in messages)
    return f"the import has {len(messages)} problems:\n{lines}"


def _import_problem_message(problem: ValidationError, files: Sequence[str]) -> str:
    field = _IMPORT_OPTIONS.get(problem.field, problem.field)
    image = _IMAGE_FIELD.match(problem.field)
    if image is not None and int(image.group(1)) < len(files):
        field = f"FILE {files[int(image.group(1))]!r}"
    fix = _NULL_HINT.sub("", problem.fix)
    fix = _EXAM_TYPE_HINT.sub(r"Give --type \1", fix)
    shown = "" if problem.value is None else f" {problem.value!r}"
    return f"{field}{shown}: {problem.problem}. {fix}"


def write_samples(context: Workspace, args: argparse.Namespace) -> int:
    if not 64 <= args.size <= 8192:
        raise ValidationError(
            "--size", args.size, "is out of range", "Give 64 to 8192 pixels"
        )
    target = ExamLibrary(args.dir) if args.dir is not None else context.library
    exams = write_sample_exams(target, size=args.size, seed=args.seed)
    for exam in exams:
        print(f"{exam.exam_id}  {exam.exam_type.value}  {len(exam.images)} images")
    return 0


def _parse_image_argument(text: str) -> ImageInput:
    """Split ``photo.jpg:L:montage`` into the path and its options."""
    path_text, laterality, role = text, None, ImageRole.CAPTURE
    while True:
        head, _, tail = path_text.rpartition(":")
        if not head:
            break
        option = tail.lower()
        if option in ("r", "l"):
            laterality = Laterality(option.upper())
        elif option == "montage":
            role = ImageRole.MONTAGE
        else:
            break
        path_text = head
    _check_suffix(path_text)
    return ImageInput(Path(path_text), laterality=laterality, role=role)


def _check_suffix(path_text: str) -> None:
    """Reject ``photo.jpg:X``, a file that exists followed by an unknown suffix."""
    head, _, tail = path_text.rpartition(":")
    if not head or Path(path_text).exists() or not Path(head).is_file():
        return
    raise ValidationError(
        "FILE",
        path_text,
        f"':{tail}' is not a known suffix",
        "Use :R, :L or :montage after the file name",
    )


def _parse_capture_time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as err:
        raise ValidationError(
            "--captured-at",
            text,
            "is not an ISO 8601 date and time",
            "Use e.g. 2024-05-17T14:30:12-03:00",
        ) from err
    if value.tzinfo is None:
        raise ValidationError(
            "--captured-at",
            text,
            "has no UTC offset",
            "Add the offset, e.g. 2024-05-17T14:30:12-03:00",
        )
    return value


def _parse_anamnesis(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValidationError(
            "--anamnesis",
            text,
            f"is not valid JSON ({err.msg})",
            'Use e.g. {"diabetes": "yes"}',
        ) from err
    except RecursionError as err:
        raise ValidationError(
            "--anamnesis",
            text,
            "is nested too deeply",
            'Use a flat object, e.g. {"diabetes": "yes"}',
        ) from err
    if not isinstance(value, dict):
        raise ValidationError(
            "--anamnesis", text, "is not a JSON object", 'Use e.g. {"diabetes": "yes"}'
        )
    return value
