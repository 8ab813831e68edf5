"""The `hubd` command. The one place where errors become messages and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from docker.errors import DockerException

from hubd import __version__
from hubd.cli import (
    backup_cmd,
    config_cmd,
    node_cmd,
    service_cmd,
    stack_cmd,
    tray_cmd,
    trust_cmd,
    upgrade_cmd,
    user_cmd,
)
from hubd.errors import HubdError

_COMMAND_GROUPS = (
    stack_cmd,
    upgrade_cmd,
    config_cmd,
    user_cmd,
    node_cmd,
    backup_cmd,
    service_cmd,
    trust_cmd,
    tray_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubd",
        description="JupyterHub at home: run it on Docker, keep it up, find it as jupyter.local.",
    )
    parser.add_argument("--version", action="version", version=f"hubd {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: see `hubd config path`)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for group in _COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The Docker SDK and urllib3 are chatty at debug level.
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result: int = args.handler(args)
        return result
    except HubdError as exc:
        print(f"hubd: {exc}", file=sys.stderr)
        return exc.exit_code
    except DockerException as exc:
        # Anything the stack code did not foresee still reaches the person as one line.
        print(f"hubd: Docker refused: {_first_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hubd: interrupted", file=sys.stderr)
        return 130


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
