"""`hubd up | down | status | logs | purge`: the hub stack, through the daemon when it runs."""

from __future__ import annotations

import argparse
import json
import sys
import time

from hubd.cli.context import Context
from hubd.cli.node_cmd import node_line
from hubd.control import ControlClient
from hubd.errors import HubUnhealthy, ImageError, UsageError
from hubd.stack import Stack
from hubd.stack.accounts import first_admin_hint
from hubd.status import BackupStatus, EngineView, HubState, Status, Supervision
from hubd.timing import Timing


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser(
        "up", help="bring the hub up on the pinned versions (newer ones: `hubd upgrade`)"
    ).set_defaults(handler=_up)
    commands.add_parser(
        "down", help="stop the hub and users' servers (keeps all data)"
    ).set_defaults(handler=_down)
    status = commands.add_parser("status", help="hub state, URL, image, uptime, user servers")
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(handler=_status)
    logs = commands.add_parser("logs", help="the hub's log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--tail", type=int, default=200, help="lines from the end (200)")
    logs.set_defaults(handler=_logs)
    purge = commands.add_parser(
        "purge", help="remove the stack AND all its data volumes (users' work, accounts)"
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=_purge)
    run = commands.add_parser("run", help="run the supervisor daemon in the foreground")
    run.set_defaults(handler=_run)


def _up(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    if daemon is not None:
        daemon.start()
        status = _wait_for_daemon(daemon, ctx.timing)
        print(status.url or status.local_url)
        return 0
    result = ctx.stack.up()
    for change in result.changes:
        print(f"  {change}", file=sys.stderr)
    if not result.changes:
        print("  nothing to change", file=sys.stderr)
    hint = first_admin_hint(ctx.stack)
    if hint is not None:
        print(f"  {hint}", file=sys.stderr)
    print(result.url)
    if result.image_problems:
        # The hub runs; servers with that image cannot start until it is fixed.
        raise ImageError(
            f"{result.image_problems[0]}; the hub runs, but servers with this image cannot start"
        )
    return 0


def _wait_for_daemon(daemon: ControlClient, timing: Timing) -> Status:
    deadline = time.monotonic() + timing.daemon_up_deadline_s
    while True:
        status = daemon.status()
        if status.state == HubState.RUNNING:
            return status
        if status.state == HubState.FAILING:
            raise HubUnhealthy(f"the hub is failing: {status.last_error}; see `hubd logs`")
        if time.monotonic() > deadline:
            raise HubUnhealthy("the hub did not come up in time; see `hubd logs`")
        time.sleep(timing.daemon_up_poll_s)


def _down(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    if daemon is not None:
        daemon.stop()
        print("hub stopped (the daemon keeps it stopped); data kept")
        return 0
    for line in ctx.stack.down() or ["nothing was running"]:
        print(line)
    print("all data volumes kept")
    return 0


def _status(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    status = daemon.status() if daemon is not None else _local_status(ctx)
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
        return 0
    uptime = status.hub.uptime_s
    print(f"state:    {status.state}" + (f" ({status.last_error})" if status.last_error else ""))
    print(f"url:      {status.url}  (on this machine: {status.local_url})")
    if status.mdns is not None:
        print(f"mdns:     {status.mdns.hostname} ({status.mdns.state})")
    if status.fingerprint:
        # What a new device compares before trusting hubd's root (docs/https.md).
        print(f"trust:    {status.trust_url} shows new devices how to trust the hub")
        print(f"root:     SHA-256 {status.fingerprint}")
    print(f"image:    {status.hub.image or '-'}")
    print(
        f"proxy:    {status.proxy.status}"
        + (f" ({status.proxy.image})" if status.proxy.image else "")
    )
    print(f"uptime:   {_duration(uptime) if uptime is not None else '-'}")
    if status.restart_count is not None:
        print(f"restarts: {status.restart_count}")
    for problem in status.image_problems:
        print(f"problem:  {problem}")
    if status.engine.live_restore is not None:
        print(
            "engine:   live-restore on (servers keep running while Docker restarts)"
            if status.engine.live_restore
            else "engine:   live-restore off (a Docker restart stops everyone's servers; "
            "see the README)"
        )
    servers = [s.user for s in status.servers if s.running]
    print(f"servers:  {', '.join(servers) if servers else 'none running'}")
    for index, node in enumerate(status.nodes):
        print(f"{'machines:' if index == 0 else '':<10}{node_line(node)}")
    print(f"backup:   {_backup_line(status.backup)}")
    print(f"daemon:   {'running' if daemon is not None else 'not running'}")
    update = status.update
    if update is not None and update.available:
        print(f"update:   available ({'; '.join(update.changes)}): `hubd upgrade`")
    if update is not None and update.last_result:
        print(f"upgrade:  {update.last_result}")
    return 0


def _backup_line(backup: BackupStatus) -> str:
    age = backup.age_s
    text = f"last good one {_duration(age)} ago" if age is not None else "never backed up"
    if backup.running:
        text += ", one is running now"
    if backup.last_error:
        text += f"; LAST BACKUP FAILED: {backup.last_error}"
    elif backup.overdue:
        text += " (overdue)"
    if not backup.target:
        text += " (no backup_target set)"
    return text


def _local_status(ctx: Context) -> Status:
    """Status without a daemon: what the engine shows right now, and the backup record."""
    from hubd.backup import summary

    view = ctx.stack.describe()
    if view.hub.status != "running":
        state, error = HubState.STOPPED, None
    elif view.hub.healthy:
        state, error = HubState.RUNNING, None
    else:
        state, error = HubState.STARTING, "the hub does not answer /hub/health"
    backup = summary(ctx.paths.state_dir, ctx.config, ctx.timing)
    engine = EngineView(live_restore=_live_restore(ctx.stack))
    return Status.compose(
        Supervision(state=state, last_error=error, engine=engine), ctx.config, view, backup=backup
    )


def _live_restore(stack: Stack) -> bool | None:
    """Read from `docker info`; hubd never changes the engine's configuration."""
    try:
        return bool(stack.client.info().get("LiveRestoreEnabled"))
    except Exception:  # an engine that does not say: unknown
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    return " ".join([*parts, f"{minutes}m", f"{seconds}s"])


def _logs(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    if args.tail < 1:
        raise UsageError("--tail must be 1 or more")
    if args.follow:
        try:
            for chunk in ctx.stack.follow_hub_logs(tail=args.tail):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except KeyboardInterrupt:
            return 0
        return 0
    sys.stdout.write(ctx.stack.hub_log_tail(args.tail))
    return 0


def _purge(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    stack = ctx.stack
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("purge deletes every user's work: run it on a terminal, or add --yes")
        answer = input(
            f"Delete the hub stack '{stack.names.stack}' and ALL its data "
            "(users' work, accounts)? Type 'purge' to confirm: "
        )
        if answer.strip() != "purge":
            print("nothing deleted")
            return 1
    daemon = ctx.daemon()
    if daemon is not None:
        daemon.stop()
    for line in stack.purge() or ["nothing to remove"]:
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    from hubd.daemon import run_daemon

    ctx = Context.from_args(args)
    return run_daemon(ctx.paths, ctx.config_file, ctx.config, ctx.timing)
