"""`hubd up | down | status | logs | purge`: the hub stack, through the daemon when it runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from hubd.cli.commands import Subcommands, add_command
from hubd.cli.context import Context
from hubd.errors import DaemonUnreachable, HubUnhealthy, ImageError, UsageError
from hubd.paths import LogFileFollower
from hubd.status import BackupStatus, HubState, Status

if TYPE_CHECKING:
    # The stack (and with it the Docker SDK) loads only for commands that use it: `hubd
    # status` through a running daemon needs neither.
    from hubd.control.client import ControlClient
    from hubd.stack import Stack
    from hubd.status import EngineView
    from hubd.timing import Timing


def register(commands: Subcommands) -> None:
    add_command(
        commands,
        "up",
        description="Bring the hub up (build its image, pull, start the proxy and the hub) on "
        "the pinned image versions, and print its address. Through a running daemon, the "
        "daemon does it and this shows its progress; newer versions come with `hubd upgrade`.",
        example="hubd up",
    ).set_defaults(handler=_up)
    add_command(
        commands,
        "down",
        description="Stop the hub and everyone's servers; all data is kept. A running daemon "
        "keeps the hub stopped until `hubd up`.",
        example="hubd down",
    ).set_defaults(handler=_down)
    status = add_command(
        commands,
        "status",
        description="The hub's state, its address, image, uptime, who has a server running, "
        "backups, and where hubd's log is.",
        example="hubd status\nhubd status --json | jq .state",
    )
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(handler=_status)
    logs = add_command(
        commands,
        "logs",
        description="The hub's log (JupyterHub's), through the running daemon when there is "
        "one (so a member of control_group without Docker access may read it); with --daemon, "
        "hubd's own log.",
        example="hubd logs -n 50\nhubd logs -f\nhubd logs --daemon",
    )
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until Ctrl-C (through the daemon: across hub restarts)",
    )
    logs.add_argument("-n", "--tail", type=int, default=200, help="lines from the end (200)")
    logs.add_argument(
        "--daemon", action="store_true", help="hubd's own log (the supervisor's), not the hub's"
    )
    logs.set_defaults(handler=_logs)
    purge = add_command(
        commands,
        "purge",
        description="Remove the hub stack AND all its data volumes: everyone's work and the "
        "accounts. Asks first (type 'purge'); there is no undo (`hubd backup` first).",
        example="hubd purge",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=_purge)
    run = add_command(
        commands,
        "run",
        description="Run the supervisor in the foreground: it brings the hub up, keeps it up, "
        "advertises it over mDNS and answers the control socket. SIGHUP reloads the config. "
        "Usually started by `hubd service install`.",
        example="hubd run",
    )
    run.set_defaults(handler=_run)


def _up(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    if daemon is not None:
        status = _up_through(daemon, ctx)
        print(status.url or status.local_url)
        return 0
    from hubd.stack.accounts import first_admin_hint

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


def _up_through(daemon: ControlClient, ctx: Context) -> Status:
    """Have the daemon bring the hub up, showing its progress (steps, builds, pulls) with this
    terminal's reporter: the same as `hubd up` without a daemon shows."""
    from hubd.cli.daemon_progress import DaemonProgress

    progress = DaemonProgress(daemon, ctx.reporter)  # this start's entries only
    daemon.start()
    try:
        return _wait_for_daemon(daemon, ctx.timing, progress.show)
    finally:
        progress.close()


def _wait_for_daemon(
    daemon: ControlClient, timing: Timing, show_progress: Callable[[], None]
) -> Status:
    deadline = time.monotonic() + timing.daemon_up_deadline_s
    while True:
        show_progress()
        status = daemon.status()
        if status.state == HubState.RUNNING:
            show_progress()
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
    for index, address in enumerate(_ip_urls(status, ctx)):
        print(f"{'by IP:' if index == 0 else '':<10}{address}  (where .local names do not resolve)")
    if status.fingerprint:
        # What a new device compares before trusting hubd's root (docs/https.md).
        print(f"trust:    {status.trust_url} shows new devices how to trust the hub")
        print(f"root:     SHA-256 {status.fingerprint}")
    print(f"image:    {status.hub.image or '-'}")
    print(
        f"proxy:    {status.proxy.status}"
        + (f" ({status.proxy.image})" if status.proxy.image else "")
    )
    if status.standby.exists:  # made by the first `up` of a hubd that has it
        print(f"standby:  {status.standby.status} (takes over while the proxy is away)")
    if status.front.exists:  # a stack of an earlier hubd has none: its proxy holds the port
        print(f"front:    {status.front.status} (holds the published port)")
    print(f"uptime:   {_duration(uptime) if uptime is not None else '-'}")
    if status.restart_count is not None:
        print(f"restarts: {status.restart_count}")
    for problem in status.image_problems:
        print(f"problem:  {problem}")
    if status.engine.endpoint:
        print(f"docker:   {status.engine.kind or 'Docker'} at {status.engine.endpoint}")
    if status.engine.live_restore is not None:
        print(
            "engine:   live-restore on (servers keep running while Docker restarts)"
            if status.engine.live_restore
            else "engine:   live-restore off (a Docker restart stops everyone's servers; "
            "see docs/supervision.md)"
        )
    servers = [s.user for s in status.servers if s.running]
    print(f"servers:  {', '.join(servers) if servers else 'none running'}")
    if status.nodes:
        from hubd.cli.node_cmd import node_line

        for index, node in enumerate(status.nodes):
            print(f"{'machines:' if index == 0 else '':<10}{node_line(node)}")
    print(f"backup:   {_backup_line(status.backup)}")
    print(f"daemon:   {'running' if daemon is not None else 'not running'}")
    log_file = (ctx.daemon_paths or ctx.paths).log_file
    print(f"log:      {log_file}" + ("" if daemon is not None else " (hubd's, when it runs)"))
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


def _ip_urls(status: Status, ctx: Context) -> list[str]:
    """The hub's address by IP: the advertised IPv4 addresses, else this machine's LAN ones."""
    import ipaddress

    from hubd.mdns import lan_ipv4_addresses

    mdns_addresses = status.mdns.addresses if status.mdns else ()
    advertised = [a for a in mdns_addresses if ipaddress.ip_address(a).version == 4]
    try:
        addresses = advertised or lan_ipv4_addresses(ctx.config.mdns_interfaces)
    except Exception:  # reading interfaces failed: the name is all there is to show
        return []
    bind = ctx.config.bind_address
    if bind not in ("0.0.0.0", "::", ""):
        addresses = [bind] if bind not in ("127.0.0.1", "::1") else []
    return [f"http://{address}:{ctx.config.port}/" for address in addresses]


def _local_status(ctx: Context) -> Status:
    """Status without a daemon: what the engine shows right now, and the backup record."""
    from hubd.backup import summary
    from hubd.status import Supervision

    view = ctx.stack.describe()
    if view.hub.status != "running":
        state, error = HubState.STOPPED, None
    elif view.hub.healthy:
        state, error = HubState.RUNNING, None
    else:
        state, error = HubState.STARTING, "the hub does not answer /hub/health"
    backup = summary(ctx.paths.state_dir, ctx.config, ctx.timing)
    engine = _engine_view(ctx.stack)
    return Status.compose(
        Supervision(state=state, last_error=error, engine=engine), ctx.config, view, backup=backup
    )


def _engine_view(stack: Stack) -> EngineView:
    """Read from `docker info`; hubd never changes the engine's configuration."""
    from hubd.stack.engine import engine_of
    from hubd.status import EngineView

    engine = engine_of(stack.client)
    try:
        live: bool | None = bool(stack.client.info().get("LiveRestoreEnabled"))
    except Exception:  # an engine that does not say: unknown
        live = None
    return EngineView(live_restore=live, kind=engine.kind, endpoint=engine.endpoint.describe())


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
    if args.daemon:
        return _daemon_logs(ctx, args)
    daemon = ctx.daemon()
    if daemon is not None:
        # The daemon reads it: a control_group member needs no Docker access of their own.
        if args.follow:
            return _follow(_streamed(daemon.follow_logs(args.tail)))
        _print_lines(daemon.logs(args.tail))
        return 0
    if args.follow:
        return _follow(ctx.stack.hub.follow_logs(tail=args.tail))
    sys.stdout.write(ctx.stack.hub.log_tail(args.tail))
    return 0


def _daemon_logs(ctx: Context, args: argparse.Namespace) -> int:
    """hubd's own log: through the daemon when it runs (the file may be root's), else the
    file itself; -f follows it (across its rotation)."""
    daemon = ctx.daemon()
    if daemon is not None:
        if args.follow:
            return _follow(_streamed(daemon.follow_daemon_logs(args.tail)))
        _print_lines(daemon.daemon_logs(args.tail))
        return 0
    path = (ctx.daemon_paths or ctx.paths).log_file
    try:
        log_file = LogFileFollower(path, args.tail)
    except UsageError:
        raise UsageError(
            f"cannot read {path}: ask its owner, or start hubd (`hubd run`) and use the "
            "control socket"
        ) from None
    try:
        if not path.exists():
            raise UsageError(f"no log at {path} yet: hubd has not run as this user")
        _print_lines(log_file.last)
        if not args.follow:
            return 0
        import threading

        return _follow(log_file.follow(ctx.timing.log_file_follow_poll_s, threading.Event()))
    finally:
        log_file.close()


def _streamed(chunks: Generator[str, None, None]) -> Generator[str, None, None]:
    """A daemon's streamed log, where a daemon from before streaming (not restarted since
    hubd was updated) is told apart from other refusals."""
    try:
        yield from chunks
    except UsageError as exc:
        if not str(exc).startswith("no such endpoint"):
            raise
        raise DaemonUnreachable(
            "the running hubd is older than this command and cannot stream its logs: restart "
            "it (`systemctl restart hubd`, or `hubd run` again); `hubd logs` without -f works"
        ) from None
    finally:
        chunks.close()


def _follow(chunks: Generator[str, None, None]) -> int:
    """Print the text as it comes, until it ends (0) or Ctrl-C ends it: 130 as the exit-code
    table says, but quietly, since that is how following is meant to end."""
    from hubd.cli import EXIT_INTERRUPTED

    try:
        for chunk in chunks:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        chunks.close()  # hang up now (the daemon stops sending), not at exit
    return 0


def _print_lines(lines: list[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _purge(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    # Asked before the engine is: the answer does not depend on it.
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("purge deletes every user's work: run it on a terminal, or add --yes")
        answer = input(
            f"Delete the hub stack '{ctx.config.stack_name}' and ALL its data "
            "(users' work, accounts)? Type 'purge' to confirm: "
        )
        if answer.strip() != "purge":
            print("nothing deleted")
            return 1
    stack = ctx.stack
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
