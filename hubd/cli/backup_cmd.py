"""`hubd backup` and `hubd restore`: through the daemon when it runs (backup), else directly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubd.cli.commands import Subcommands, add_command
from hubd.cli.context import Context
from hubd.errors import UsageError

if TYPE_CHECKING:
    from hubd.backup import BackupEngine


def register(commands: Subcommands) -> None:
    backup = add_command(
        commands,
        "backup",
        description="Back up the hub's accounts and secrets, hubd's config and everyone's "
        "files with restic into a folder (a USB disk, a NAS), encrypted with a password hubd "
        "keeps. Through the running daemon when there is one.",
        example="hubd backup --to /media/usb/hub-backup",
    )
    backup.add_argument(
        "--to", metavar="FOLDER", help="backup folder (default: `backup_target` in the config)"
    )
    backup.add_argument("--json", action="store_true", help="print the result as JSON")
    backup.set_defaults(handler=_backup)
    restore = add_command(
        commands,
        "restore",
        description="Restore everything (accounts, secrets, config, files), or only one "
        "person's files, from a backup. Asks before overwriting; --dry-run says what changes.",
        example="hubd restore --from /media/usb/hub-backup --dry-run\n"
        "hubd restore --from /media/usb/hub-backup --user alice",
    )
    restore.add_argument(
        "--from",
        dest="source",
        metavar="FOLDER",
        help="backup folder (default: `backup_target` in the config)",
    )
    restore.add_argument("--user", metavar="NAME", help="restore only this person's files")
    restore.add_argument(
        "--snapshot", default="latest", help="which backup (an id from restic; default: latest)"
    )
    restore.add_argument(
        "--password-file",
        metavar="FILE",
        help="the repository password (default: the one hubd made, see `hubd backup`)",
    )
    restore.add_argument("--dry-run", action="store_true", help="only say what would change")
    restore.add_argument("--yes", action="store_true", help="do not ask before overwriting")
    restore.set_defaults(handler=_restore)


def _engine(ctx: Context) -> BackupEngine:
    from hubd.backup import BackupEngine

    return BackupEngine(ctx.stack, ctx.config, ctx.paths.state_dir, ctx.config_file)


def _backup(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    result: dict[str, Any]
    if daemon is not None:
        result = daemon.backup(args.to)
    else:
        result = _engine(ctx).backup(args.to, log_failure=False).to_json()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    users = ", ".join(result["users"]) or "nobody yet"
    print(
        f"backup {result['snapshot']} written to {result['target']} in {result['seconds']} s "
        f"(hub, config, files of: {users})"
    )
    if result.get("warning"):
        print(f"warning: {result['warning']}")
    from hubd.backup.keys import password_file

    print(
        f"repository password: {password_file(ctx.paths.state_dir)} — keep a copy elsewhere: "
        "without it the backup cannot be read"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from hubd.backup import Restorer

    ctx = Context.from_args(args)
    given = Path(args.password_file).expanduser() if args.password_file else None
    restorer = Restorer(_engine(ctx), password_file=given)
    plan = restorer.plan(args.source, user=args.user, snapshot=args.snapshot)
    if args.dry_run:
        print("would:")
        for line in plan.lines():
            print(f"  {line}")
        return 0
    if plan.overwrites and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "restore would overwrite existing data: run it on a terminal, or add --yes "
                "(see --dry-run for what changes)"
            )
        print("This restore will:")
        for line in plan.lines():
            print(f"  {line}")
        if input("Overwrite? Type 'restore' to confirm: ").strip() != "restore":
            print("nothing changed")
            return 1
    daemon = ctx.daemon()
    if plan.stop_hub:
        if daemon is not None:
            daemon.stop()  # the daemon keeps it stopped until asked again
        ctx.stack.down()
    for line in restorer.carry_out(plan):
        print(line)
    if plan.stop_hub:
        if daemon is not None:
            daemon.start()
            print("the daemon is starting the hub again (`hubd status` shows when it runs)")
        else:
            ctx.stack.up()
            print(f"the hub is running again at {ctx.stack.local_url}")
    elif args.user is None:
        print("start the hub with `hubd up`: the restored accounts log in with their passwords")
    return 0
