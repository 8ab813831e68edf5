"""`hubd service install | uninstall | status`: hubd as a systemd/launchd service.

Exit codes: 0 done (also "already installed" and "not installed, nothing to remove");
64 usage (no root for --system, --purge without a terminal or --yes, hubd not runnable as
installed); 69 no usable systemd/launchd, or systemctl/launchctl refused; 1 --purge declined.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hubd.cli.commands import Subcommands, add_action, add_command
from hubd.errors import HubdError, UsageError
from hubd.paths import Mode, default_mode
from hubd.service import (
    MANAGER_NAMES,
    ServiceManager,
    ServiceStatus,
    Target,
    command_runner,
    find_hubd_command,
    installed_modes,
    service_manager,
)
from hubd.timing import timing_from_env

_DRY_RUN_HELP = "say what would be done, change nothing"


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "service",
        description="Install hubd's daemon (and the tray's autostart) with systemd or launchd, "
        "so the hub comes back after a reboot without anyone logging in.",
        example="sudo hubd service install\nhubd service status",
    )
    sub = parser.add_subparsers(dest="service_command", metavar="ACTION")
    sub.required = True

    install = add_action(
        sub,
        "install",
        "write, enable and start the service (again: update it)",
        description="Write the unit/plist with this hubd's path, enable and start it. "
        "Running it again changes nothing, or applies an update.",
        example="sudo hubd service install\nhubd service install --user --dry-run",
    )
    _mode_options(install, "default: system as root, else user")
    install.add_argument("--dry-run", action="store_true", help=_DRY_RUN_HELP)
    _packager_options(install)
    install.set_defaults(handler=_install)

    uninstall = add_action(
        sub,
        "uninstall",
        "stop and remove the service (keeps hubd's data unless --purge)",
        description="Stop, disable and remove everything `hubd service install` wrote. "
        "Docker volumes are never touched here: `hubd purge` removes those.",
        example="sudo hubd service uninstall",
    )
    _mode_options(uninstall, "default: the one that is installed")
    uninstall.add_argument(
        "--purge",
        action="store_true",
        help="also delete hubd's config, state and log folders (asks first)",
    )
    uninstall.add_argument("--yes", action="store_true", help="do not ask before --purge deletes")
    uninstall.add_argument("--dry-run", action="store_true", help=_DRY_RUN_HELP)
    _packager_options(uninstall)
    uninstall.set_defaults(handler=_uninstall)

    status = add_action(
        sub, "status", "installed? where? enabled? active?", example="hubd service status --json"
    )
    _mode_options(status, "default: the installed ones")
    status.add_argument("--json", action="store_true", help="as JSON (a list, one entry per mode)")
    _packager_options(status)
    status.set_defaults(handler=_status)


def _mode_options(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--system",
        dest="mode",
        action="store_const",
        const="system",
        help=f"the machine's service, started at boot (needs root; {default})",
    )
    group.add_argument(
        "--user",
        dest="mode",
        action="store_const",
        const="user",
        help="your own service, started with your session",
    )


def _packager_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="for packagers and tests: use this staging tree instead of /; "
        "systemctl/launchctl work offline there, nothing is started",
    )
    parser.add_argument(
        "--manager",
        choices=MANAGER_NAMES,
        help="with --root: files for this service manager, not this machine's",
    )


# ---------------------------------------------------------------------------- helpers


def _root(args: argparse.Namespace) -> Path | None:
    if not args.root:
        if args.manager:
            raise UsageError(
                "--manager goes with --root: on this machine, its own service manager is used"
            )
        return None
    root = Path(args.root).absolute()
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: no such directory")
    return root


def _manager(args: argparse.Namespace, mode: Mode) -> ServiceManager:
    target = Target(
        mode=mode,
        root=_root(args),
        dry_run=getattr(args, "dry_run", False),
        runner=command_runner(timing_from_env()),
    )
    return service_manager(target, args.manager)


def _installed(args: argparse.Namespace) -> list[Mode]:
    root = _root(args)
    runner = command_runner(timing_from_env())
    return installed_modes(lambda mode: Target(mode=mode, root=root, runner=runner), args.manager)


# ---------------------------------------------------------------------------- install


def _install(args: argparse.Namespace) -> int:
    manager = _manager(args, args.mode or default_mode())
    for line in manager.install(find_hubd_command()):
        print(line)
    return 0


# ---------------------------------------------------------------------------- uninstall


def _uninstall(args: argparse.Namespace) -> int:
    mode = args.mode
    if mode is None:
        modes = _installed(args)
        if len(modes) > 1:
            raise UsageError(
                "hubd is installed both as a system and as a user service: "
                "say which to remove with --system or --user"
            )
        mode = modes[0] if modes else default_mode()
    manager = _manager(args, mode)

    def confirm(folders: list[str]) -> None:
        _confirm_purge(folders, assume_yes=args.yes)

    for line in manager.uninstall(purge=args.purge, confirm=confirm):
        print(line)
    return 0


def _confirm_purge(folders: list[str], *, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "--purge deletes hubd's config, state and logs and there is no "
            "terminal to ask on: add --yes to confirm"
        )
    print("This deletes hubd's config, state and logs:", file=sys.stderr)
    for folder in folders:
        print(f"  {folder}", file=sys.stderr)
    print(
        "Docker volumes (users' work and accounts) are kept: `hubd purge` removes those "
        "(run it first: it needs the config).",
        file=sys.stderr,
    )
    try:
        answer = input("Delete these folders? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in {"y", "yes"}:
        raise HubdError("--purge not confirmed: nothing was changed")


# ---------------------------------------------------------------------------- status


def _status(args: argparse.Namespace) -> int:
    modes: list[Mode] = [args.mode] if args.mode else (_installed(args) or [default_mode()])
    command = find_hubd_command()
    statuses = [_manager(args, mode).status(command) for mode in modes]
    if args.json:
        print(json.dumps([status.as_dict() for status in statuses], indent=2))
        return 0
    for status in statuses:
        print("\n".join(_status_lines(status)))
    return 0


# What the service manager says, when it adds nothing to the yes or no in front of it.
_PLAIN_ANSWERS = {"enabled", "disabled", "active", "inactive"}


def _yes_no(value: bool | None, text: str) -> str:
    word = "unknown" if value is None else ("yes" if value else "no")
    return word if not text or text in _PLAIN_ANSWERS else f"{word} ({text})"


def _status_lines(status: ServiceStatus) -> list[str]:
    if not status.installed:
        installed = "no"
    elif status.missing:
        installed = "partly, missing " + ", ".join(status.missing)
    elif status.up_to_date is False:
        installed = "yes, but differs from what `hubd service install` writes now"
    else:
        installed = "yes"
    activity = status.activity
    return [
        f"hubd service ({status.manager}, {status.mode} mode)",
        f"  installed: {installed}",
        f"  where:     {', '.join(status.files) if status.files else '-'}",
        f"  enabled:   {_yes_no(activity.enabled, activity.enabled_text)}",
        f"  active:    {_yes_no(activity.active, activity.active_text)}",
    ]
