"""`hubd tray`: the tray icon. Nothing here imports pystray (it needs a display to import)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hubd.cli.commands import Subcommands, add_command
from hubd.cli.context import Context
from hubd.paths import Paths, default_mode, resolve_paths

if TYPE_CHECKING:
    from hubd.tray import TrayPlace


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "tray",
        description="Show hubd's tray icon: the hub's state, open it in the browser, start "
        "and stop it, add people. Quitting the tray leaves the hub running.",
        example="hubd tray &",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="the daemon's control socket (default: the user daemon's, else the system service's)",
    )
    parser.set_defaults(handler=_tray)


def place_finder(context: Context, socket: str | None) -> Callable[[], TrayPlace]:
    """Where to find the daemon, asked again on every poll while it is away.

    A desktop user's tray may belong with their own daemon or with the system service; the
    first control socket that exists wins, so either can come up after the tray did.
    """
    from hubd.tray import TrayPlace

    if socket is not None:
        fixed = TrayPlace(Path(socket), context.paths.log_file)
        return lambda: fixed
    candidates: list[Paths] = [context.paths]
    if default_mode() == "user":
        candidates.append(resolve_paths("system"))

    def find() -> TrayPlace:
        for paths in candidates:
            if _exists(paths.control_socket):
                return TrayPlace(paths.control_socket, paths.log_file)
        return TrayPlace(candidates[0].control_socket, candidates[0].log_file)

    return find


def _tray(args: argparse.Namespace) -> int:
    from hubd.tray import run_tray

    context = Context.from_args(args)
    # One icon per desktop session, its lock in the runtime folder: a second tray says so
    # and leaves (exit 0: what was asked for, a tray, is there).
    locate = place_finder(context, args.socket)
    return run_tray(locate, context.timing, runtime_dir=context.paths.runtime_dir)


def _exists(path: Path) -> bool:
    """Whether the socket is there; a folder closed to this account (root's /run/hubd without
    control_group) counts as not there, not as a crash."""
    try:
        return path.exists()
    except OSError:
        return False
