"""The list of subcommands, each registered by its own module."""

from __future__ import annotations

import argparse

from eyer_desktop.cli import (
    convert_cmd,
    delivery_cmd,
    demo_cmd,
    exams_cmd,
    gui_cmd,
    servers_cmd,
    settings_cmd,
)


def register_all(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    for module in (
        exams_cmd,
        convert_cmd,
        servers_cmd,
        settings_cmd,
        delivery_cmd,
        demo_cmd,
        gui_cmd,
    ):
        module.register(subparsers)
