"""`hubd up | down | status | logs | purge`: the hub stack, through the daemon when it runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from hubd.cli.context import Context
from hubd.errors import HubUnhealthy, ImageError, UsageError
from hubd.status import describe_local

# How long `hubd up` waits for the daemon to report the hub running (a first start may build
# and pull images).
DAEMON_UP_DEADLINE_S = 3600.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up", help="bring the hub up (build/pull what it needs), print its URL"
    )
    up.add_argument(
        "--pull", action="store_true", help="pull newer images and rebuild the hub image first"
    )
    up.set_defaults(handler=_up)
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
        status = _wait_for_daemon(daemon)
        print(status.get("url") or status.get("local_url"))
        return 0
    result = ctx.stack.up(pull=args.pull)
    for change in result.changes:
        print(f"  {change}", file=sys.stderr)
    if not result.changes:
        print("  nothing to change", file=sys.stderr)
    _hint_first_admin(ctx)
    print(result.url)
    if result.image_problems:
        # The hub runs; servers with that image cannot start until it is fixed.
        raise ImageError(
            f"{result.image_problems[0]}; the hub runs, but servers with this image cannot start"
        )
    return 0


def _wait_for_daemon(daemon: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DAEMON_UP_DEADLINE_S
    while True:
        status: dict[str, Any] = daemon.status()
        if status["state"] == "running":
            return status
        if status["state"] == "failing":
            raise HubUnhealthy(f"the hub is failing: {status.get('last_error')}; see `hubd logs`")
        if time.monotonic() > deadline:
            raise HubUnhealthy("the hub did not come up in time; see `hubd logs`")
        time.sleep(0.5)


def _hint_first_admin(ctx: Context) -> None:
    from hubd.stack.accounts import Accounts

    if not Accounts(ctx.stack).has_admin():
        print("  no admin yet: add one with `hubd user add NAME --admin`", file=sys.stderr)


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
    status = daemon.status() if daemon is not None else describe_local(ctx.stack, ctx.config)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    hub = status.get("hub", {})
    uptime = hub.get("uptime_s")
    print(
        f"state:    {status['state']}"
        + (f" ({status['last_error']})" if status.get("last_error") else "")
    )
    print(f"url:      {status.get('url')}  (on this machine: {status.get('local_url')})")
    if status.get("mdns"):
        print(f"mdns:     {status['mdns'].get('hostname')} ({status['mdns'].get('state')})")
    print(f"image:    {hub.get('image') or '-'}")
    print(f"uptime:   {_duration(uptime) if uptime is not None else '-'}")
    if "restart_count" in status:
        print(f"restarts: {status['restart_count']}")
    for problem in status.get("image_problems") or []:
        print(f"problem:  {problem}")
    live_restore = (status.get("engine") or {}).get("live_restore")
    if live_restore is not None:
        print(
            "engine:   live-restore on (servers keep running while Docker restarts)"
            if live_restore
            else "engine:   live-restore off (a Docker restart stops everyone's servers; "
            "see the README)"
        )
    servers = [s for s in status.get("servers", []) if s.get("running")]
    print(f"servers:  {', '.join(s['user'] for s in servers) if servers else 'none running'}")
    print(f"daemon:   {'running' if daemon is not None else 'not running'}")
    return 0


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

    return run_daemon(Context.from_args(args))
