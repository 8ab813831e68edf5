"""`hubd config path|show`."""

from __future__ import annotations

import argparse
import json

from hubd.cli.context import Context
from hubd.config import render_toml


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("config", help="show where the config lives and what is in effect")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("path", help="print the config file's path").set_defaults(handler=_path)
    show = sub.add_parser("show", help="print the effective config (defaults, file, environment)")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(handler=_show)


def _path(args: argparse.Namespace) -> int:
    print(Context.from_args(args).config_file)
    return 0


def _show(args: argparse.Namespace) -> int:
    config = Context.from_args(args).config
    print(json.dumps(config.describe(), indent=2) if args.json else render_toml(config), end="")
    if args.json:
        print()
    return 0
