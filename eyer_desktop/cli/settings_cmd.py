"""``eyer-desktop settings``: show and change the application settings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from eyer_desktop.cli.output import print_json, print_table
from eyer_desktop.core.settings import DESCRIPTIONS, SETTING_NAMES

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    names = "\n".join(f"  {name}: {DESCRIPTIONS[name]}" for name in SETTING_NAMES)
    parser = subparsers.add_parser(
        "settings",
        help="show and change the application settings",
        description=f"Settings:\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="settings_command", metavar="ACTION")
    commands.required = True

    show = commands.add_parser("show", help="print every setting and its value")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=show_settings)

    set_parser = commands.add_parser("set", help="change one setting")
    set_parser.add_argument("name", help="one of: " + ", ".join(SETTING_NAMES))
    set_parser.add_argument("value")
    set_parser.set_defaults(handler=set_setting)


def show_settings(context: Workspace, args: argparse.Namespace) -> int:
    settings = context.settings
    if args.json:
        print_json({name: settings.get(name) for name in SETTING_NAMES})
        return 0
    print_table(("SETTING", "VALUE"), [(n, settings.get(n)) for n in SETTING_NAMES])
    return 0


def set_setting(context: Workspace, args: argparse.Namespace) -> int:
    settings = context.settings.with_value(args.name, args.value)
    context.save_settings(settings)
    print(f"{args.name} = {settings.get(args.name)}")
    return 0
