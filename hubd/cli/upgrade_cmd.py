"""`hubd upgrade [--check]`: newer images behind a health gate, through the daemon when it runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hubd.cli.commands import Subcommands, add_command
from hubd.cli.context import Context
from hubd.control.client import ControlClient
from hubd.errors import UsageError


def register(commands: Subcommands) -> None:
    upgrade = add_command(
        commands,
        "upgrade",
        description="Pull newer images of the hub, the proxy and people's servers, show what "
        "would change, and switch to them behind a health gate: if the new hub fails it, the "
        "previous version comes back. People's servers keep running.",
        example="hubd upgrade --check\nhubd upgrade --yes",
    )
    upgrade.add_argument(
        "--check", action="store_true", help="only show what an upgrade would change"
    )
    upgrade.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    upgrade.add_argument(
        "--no-pull",
        action="store_true",
        help="use the images already on this machine (e.g. loaded with `docker load`)",
    )
    upgrade.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from hubd.stack.pins import PinStore
    from hubd.stack.upgrade import UpgradePlan, Upgrader

    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    upgrader = None
    if daemon is not None:
        daemon = ControlClient(daemon.path, ctx.timing.upgrade_request_timeout_s, ctx.timing)
        print("asking the running hubd", file=sys.stderr)
        pull = not args.no_pull
        plan = UpgradePlan.from_json(_showing(ctx, daemon, lambda: daemon.upgrade_plan(pull=pull)))
    else:
        upgrader = Upgrader(
            ctx.stack, PinStore(ctx.paths.image_pins_file, ctx.config.stack_name), ctx.paths.log_dir
        )
        plan = upgrader.plan(pull=not args.no_pull)
    if plan.up_to_date:
        print("up to date: nothing to upgrade")
        return 0
    print("an upgrade would change:")
    for change in plan.changes:
        print(f"  {change}")
    if args.check:
        print("run `hubd upgrade` to switch (the previous version comes back if the new one fails)")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("an upgrade needs a confirmation: run it on a terminal, or add --yes")
        if input("Upgrade now? People's servers keep running. [y/N] ").strip().lower() not in (
            "y",
            "yes",
        ):
            print("nothing changed")
            return 1
    if daemon is not None:
        wanted = plan.to_json()
        result = _showing(ctx, daemon, lambda: daemon.upgrade_apply(wanted))
        copy = str(result.get("database_copy", ""))
    else:
        assert upgrader is not None
        copy = upgrader.apply(plan, ctx.timing.upgrade_gate_deadline_s).database_copy
    print(f"upgraded; the database as it was before is kept in the hub's data volume ({copy})")
    return 0


def _showing(
    ctx: Context, daemon: ControlClient, request: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The daemon's answer to `request`, with its progress (pulls, steps) shown meanwhile as
    `hubd upgrade` without a daemon shows it."""
    from hubd.cli.daemon_progress import while_showing

    return while_showing(daemon, ctx.reporter, ctx.timing.daemon_up_poll_s, request)
