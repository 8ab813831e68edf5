"""Every timing constant of hubd, with its unit in its name, in one place.

Tests shrink them by building a smaller `Timing`, or for a subprocess through the
`HUBD_TIMING` environment variable (`"health_interval_s=0.2,health_failures=2"`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from hubd.codec import field_types, from_text
from hubd.errors import ConfigError


@dataclass(frozen=True)
class Timing:
    # Hang detection: a probe of /hub/health every interval; this many failures in a row
    # mean the hub hangs. 5 s x 3 notices a hang within ~15 s, while one slow answer
    # (a busy hub spawning a server) is not enough to restart it.
    health_interval_s: float = 5.0
    health_timeout_s: float = 2.0
    health_failures: int = 3

    # How long `hubd up` waits for a fresh hub to answer /hub/health. A cold hub with a new
    # database migrates it first, which takes a few seconds on a Raspberry Pi.
    hub_ready_deadline_s: float = 120.0
    hub_ready_poll_s: float = 0.25
    # A hub hubd finds already running (at start, after an engine reconnect or a SIGHUP that
    # changed nothing) has no migration to do: it gets the hang budget below, not the
    # deadline above. While the hub starts, its processes are checked for being stopped
    # (SIGSTOP, freezer) this often: a frozen hub is killed within seconds even when fresh.
    hub_frozen_check_s: float = 2.0

    # The same for the proxy, which starts in about a second.
    proxy_ready_deadline_s: float = 30.0
    proxy_ready_poll_s: float = 0.05
    # The front (stack/front.py) holds a connection this long while the proxy is away instead
    # of resetting it, trying to reach the proxy again this often. Past it the connection is
    # closed. It must cover the slowest restart: CHP restarts in ~1 s on an idle machine, but
    # took 16.5 s on a 2-core machine at load 20 (node starting under contention).
    front_proxy_wait_s: float = 30.0
    front_proxy_retry_s: float = 0.05
    # The proxy gets this long to accept a connection before the front tries its standby: a
    # connect to a container's address just after the container went can hang for seconds
    # (ARP), and one to a proxy that is there takes a millisecond. Too short costs nothing:
    # the standby routes the same way.
    front_proxy_try_s: float = 0.5
    # A planned proxy switch (stack/proxy_switch.py): the replaced proxy keeps serving the
    # requests it has in flight this long before it is removed (its websockets are cut then,
    # and reconnect at once to the new proxy).
    proxy_switch_drain_s: float = 1.0
    # The proxy answers hubd's direct look (inside its container, past the front) within this.
    proxy_direct_probe_timeout_s: float = 2.0

    # Crash loops: the first death is restarted at once, then the delay starts small, doubles
    # up to the cap, and is forgotten once the hub has stayed healthy for the stable period
    # (Docker's restart manager: 100 ms doubling to 1 min, reset after 10 s up).
    restart_backoff_initial_s: float = 1.0
    restart_backoff_max_s: float = 60.0
    restart_stable_after_s: float = 10.0
    # A death seen this many times in a row turns the state to `failing`.
    failing_after_restarts: int = 3

    # Engine watchdog: the event stream never ends when the engine hangs, so ping it.
    engine_ping_interval_s: float = 5.0
    engine_ping_timeout_s: float = 3.0
    engine_reconnect_initial_s: float = 0.5
    # A reconnect attempt is one connect() on a local socket: cheap enough to try every 2 s,
    # so the hub is back within seconds of the engine.
    engine_reconnect_max_s: float = 2.0
    # One engine API call of the daemon may take this long before it gives up on it (streamed
    # pulls: this long without a byte). Far below systemd's WatchdogSec=60, so a frozen engine
    # never stops the loop long enough to get hubd killed. (The CLI, with a person waiting,
    # uses engine_api_timeout_s below.)
    engine_call_timeout_s: float = 20.0
    # An image build may stay silent for minutes (a long RUN step): its own read timeout.
    image_build_timeout_s: float = 900.0

    # A full reconcile pass even without events, to catch anything events missed.
    reconcile_interval_s: float = 30.0

    # Shutdown: graceful first, then forced (systemd's TimeoutStopSec is 90 s by default).
    shutdown_grace_s: float = 10.0
    # Seconds Docker gives a container between SIGTERM and SIGKILL on stop.
    container_stop_timeout_s: int = 10
    # How often `purge` looks whether stopped users' servers have removed themselves.
    container_gone_poll_s: float = 0.1

    # Each sign of progress before systemd's READY=1 (a pull, a build line) buys the daemon
    # this much more start-up time.
    start_timeout_extension_s: float = 180.0
    # How often the forced-shutdown deadline thread looks at the clock once a stop signal came.
    shutdown_deadline_poll_s: float = 0.1
    # How often it looks for a first stop signal (the grace then starts up to this late): rarer
    # looks keep an idle daemon's CPU down (it woke 10 times a second).
    stop_signal_poll_s: float = 0.5
    # A plain (non-terminal) pull reports its progress this often.
    pull_report_every_s: float = 10.0

    # Calls to other programs: the engine's API (a pull or a build answers slowly), the hub's
    # REST API, and the service manager's commands (systemctl, launchctl).
    engine_api_timeout_s: float = 120.0
    hub_api_timeout_s: float = 30.0
    service_command_timeout_s: float = 120.0
    # JupyterHub's spawn_timeout: how long a user's server may take to start.
    hub_spawn_timeout_s: int = 120
    # After too many failed logins, the hub refuses that account for this long.
    hub_login_lockout_s: int = 600
    # On a Swarm, how often the hub's spawner looks at a starting server's task (and at its
    # node): a rejected task or a node that went away is then reported at once.
    swarm_task_poll_s: float = 1.0
    # When a Swarm node comes back, hubd starts again the servers that were running there when
    # it went away; it keeps asking the hub for this long (the hub may still be noticing that
    # the old server is gone), looking at most this often.
    lost_server_restart_window_s: float = 600.0
    node_watch_interval_s: float = 5.0
    # `hubd node remove`: the node is drained first; this long at most for its tasks to leave
    # (a person's server gets its stop timeout), looked at this often.
    node_drain_deadline_s: float = 60.0
    node_drain_poll_s: float = 0.5
    # The docker gate (stack/docker_gate.py): how long `up` waits for it to listen, how often
    # it looks, and how long the gate waits for one engine call of its own (an inspect).
    gate_ready_deadline_s: float = 15.0
    gate_ready_poll_s: float = 0.1
    gate_engine_timeout_s: float = 30.0

    # `hubd up` through the daemon: how long it waits for the hub to run (a first start may
    # build and pull images), and how often it asks.
    daemon_up_deadline_s: float = 3600.0
    daemon_up_poll_s: float = 0.5
    # A command typed right after `hubd service install` waits this long at most for the
    # starting service to open its control socket (Python and hubd's imports: seconds).
    service_answer_deadline_s: float = 60.0

    # Control socket: a client that sends nothing for this long is dropped, so a stuck caller
    # holds no thread; the CLI's requests give up after the client timeout.
    control_request_read_timeout_s: float = 5.0
    control_client_timeout_s: float = 30.0
    # A streamed answer (`hubd logs -f` through the daemon) with nothing to say sends a
    # keep-alive this often: a client that went away is found by it (and its stream closed),
    # and a client that hears nothing for the silence below takes the daemon for hung.
    control_stream_keepalive_s: float = 5.0
    control_stream_silence_s: float = 30.0
    # How often the control socket's idle accept loop wakes (socketserver's default); closing
    # does not wait for it (close() wakes the loop with a connection of its own).
    control_server_poll_s: float = 0.5
    # `hubd logs --daemon -f`: hubd's log file is looked at this often for new lines.
    log_file_follow_poll_s: float = 0.25
    # `hubd logs -f` through the daemon, after the hub stopped: how often it looks for the
    # hub running again, to go on with its log.
    hub_log_follow_poll_s: float = 1.0
    # `hubd logs` just as hubd replaces the hub container (a config change, a recreation):
    # the engine refuses the old one's logs; the new one's are waited for this long.
    hub_log_replaced_wait_s: float = 15.0
    # `hubd config set` waits this long for the daemon's loop to apply the change (it does so
    # between two passes; a pass pulling a big image can take longer, and is not waited for).
    config_reload_wait_s: float = 20.0

    # `hubd upgrade`: how long the new hub has to pass its health gate (start, migrate the
    # database, render the login page, log someone in, route to people's servers) before the
    # previous version is put back. A migration of a big database on a Raspberry Pi takes
    # minutes, not seconds.
    upgrade_gate_deadline_s: float = 300.0
    # A control request for an upgrade pulls and builds images, then switches: allow an hour.
    upgrade_request_timeout_s: float = 3600.0

    # The tray asks the daemon for its status this often: a crash shows within a couple of
    # seconds, and the daemon does not notice the load.
    tray_poll_interval_s: float = 2.0
    # A status poll that takes longer than this counts as "not answering".
    tray_poll_timeout_s: float = 5.0
    # Start/stop/restart return the new status at once (the daemon acts in the background).
    tray_action_timeout_s: float = 30.0
    # Adding a user waits for the hub's API; reading the log through the daemon is quick.
    tray_add_user_timeout_s: float = 60.0
    tray_logs_timeout_s: float = 10.0
    # A restart asked for from the tray is not a crash while it completes; a hub's first start
    # can take a couple of minutes (see hub_ready_deadline_s), hence the long window.
    tray_expected_restart_window_s: float = 180.0
    # How long a helper window (a Tk process) gets to end when the tray quits.
    tray_window_stop_wait_s: float = 3.0
    # X11: how often the icon checks that a tray host has embedded it (asking again if not),
    # and how often a thread waiting for the X thread re-checks that the loop is still there.
    tray_dock_check_interval_s: float = 1.0
    tray_x_call_recheck_s: float = 0.5
    # A panel takes its tray icons within a second; after this long without one the tray
    # warns that nothing shows it (and says which desktop setting or package would).
    tray_host_wait_s: float = 5.0
    # At start, how long the tray waits for the session bus to say whether a panel shows
    # StatusNotifierItems.
    tray_sni_probe_timeout_s: float = 2.0
    # "Copy address": how long a clipboard program (xclip, wl-copy, pbcopy) may take to take
    # the text, and how long the Tk fallback keeps holding it (X11's clipboard lives only as
    # long as the program that owns it).
    tray_copy_timeout_s: float = 5.0
    tray_clipboard_keep_s: float = 600.0
    # "Start hubd": how long systemctl or launchctl may take to accept the start.
    tray_start_daemon_timeout_s: float = 30.0

    # mDNS: how often the claimed host name is re-checked for a conflict, and how often the
    # machine's addresses are compared with what is announced. Address changes are also
    # reported by the kernel (netlink / routing socket), so the poll is only a fallback.
    mdns_conflict_check_interval_s: float = 30.0
    mdns_address_poll_s: float = 2.0
    # Probing (RFC 6762 section 8.1): a random wait of up to 250 ms before the first probe,
    # 250 ms between probes, and after the last one 250 ms for a defending answer.
    mdns_probe_jitter_s: float = 0.25
    mdns_probe_spacing_s: float = 0.25
    mdns_probe_timeout_s: float = 0.25
    # Lost a simultaneous-probe tie-break: wait this long, then probe again (section 8.2).
    mdns_lost_tiebreak_wait_s: float = 1.0
    # Section 9: after this many conflicts within the window, wait the backoff before each
    # further attempt.
    mdns_conflict_burst: int = 15
    mdns_conflict_window_s: float = 10.0
    mdns_conflict_backoff_s: float = 5.0
    # Section 6: no record more than once this often on a link, except in answer to a probe.
    mdns_answer_repeat_s: float = 1.0
    # Our own packets can still be in flight (or echoed) a little after an address is gone: an
    # address record with it is not a rival's claim for this long.
    mdns_own_address_memory_s: float = 10.0
    # A call into zeroconf (register, update, unregister) that takes longer has failed.
    mdns_zeroconf_call_timeout_s: float = 10.0
    # A change notification comes as a burst (address removed, address added, link flags):
    # wait this long for the rest before rescanning.
    mdns_change_settle_s: float = 0.2
    # After a failure to open sockets or start zeroconf, retry after this long.
    mdns_retry_s: float = 10.0
    # How long closing the advertiser waits for its thread.
    mdns_close_wait_s: float = 15.0
    # Another device's claim on a name we hold is checked by probing again (RFC 6762 section
    # 9) at most this often: a storm of claims that nobody defends costs one probe round per
    # interval, and the name stays answered meanwhile.
    mdns_conflict_probe_min_interval_s: float = 5.0
    # Renamed (jupyter-2) because the requested name was taken: probe for the requested name
    # this often, and move back to it once it is free.
    mdns_reclaim_interval_s: float = 60.0
    # CPU time per second that reading mDNS packets may take, for hubd's guard and again for
    # zeroconf's listeners; past it packets are dropped unread until the second is over (a
    # flood of crafted packets stays cheap; an ordinary LAN needs a few ms).
    mdns_input_cpu_per_s: float = 0.015
    # ... on average: up to this much may be spent at once before the limit bites (start-up,
    # a probe's answers arriving together on a busy machine); a flood pays it once.
    mdns_input_cpu_burst_s: float = 0.05

    # A scheduled backup that failed (disk unplugged, NAS away) is tried again after this
    # long rather than at every loop pass; the tray says it failed meanwhile.
    backup_retry_after_failure_s: float = 3600.0
    # A backup asked for over the control socket is answered when it is done: a first backup
    # of big volumes to a USB disk can take hours.
    backup_request_timeout_s: float = 6 * 3600.0
    # A restore of one person's files stops their server through the hub first: DockerSpawner
    # gives it 10 s after SIGTERM, a slow disk adds some.
    restore_server_stop_deadline_s: float = 60.0
    restore_server_stop_poll_s: float = 0.5
    # `hubd user move`: a helper service still pending after this never got a node (image
    # missing there, node gone); the copy itself may take as long as a first backup; the
    # person's server gets what a restore gives it to stop.
    move_helper_start_deadline_s: float = 60.0
    move_helper_poll_s: float = 0.5
    move_copy_deadline_s: float = 6 * 3600.0
    move_server_stop_deadline_s: float = 60.0

    # HTTPS (hubd/tls): the root lasts long (every device trusts it once; a new root means
    # trusting again), the leaf at most 397 days (what browsers accept from public CAs; Apple
    # refuses more than 825 even under a private root) and is renewed this long before its end,
    # so a hub that was off for weeks still starts with a valid one.
    tls_root_valid_days: int = 3652
    tls_leaf_valid_days: int = 397
    tls_leaf_renew_before_days: int = 30
    # How often the daemon asks whether the leaf still fits the hub's names and addresses.
    tls_check_interval_s: float = 30.0
    move_request_timeout_s: float = 6 * 3600.0
    # Inside the helpers: the sender retries reaching the receiver's task (its DNS name comes
    # a moment after it starts); either side gives up on a stream silent for this long.
    move_connect_deadline_s: float = 120.0
    move_connect_retry_s: float = 0.5
    move_io_timeout_s: float = 600.0


def hang_budget_s(timing: Timing) -> float:
    """How long a hub may stay silent before hubd calls it hung: the failed probes in a row
    it takes, each up to its timeout."""
    return timing.health_failures * (timing.health_interval_s + timing.health_timeout_s)


def timing_from_env(environ: Mapping[str, str] | None = None) -> Timing:
    """The defaults, with overrides from `HUBD_TIMING` (for tests and benchmarks)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("HUBD_TIMING", "").strip()
    if not raw:
        return Timing()
    fields = field_types(Timing)
    overrides: dict[str, float | int] = {}
    for item in raw.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in fields:
            raise ConfigError(f"HUBD_TIMING: unknown name {name!r}")
        try:
            overrides[name] = from_text(fields[name], value)
        except ValueError:
            raise ConfigError(f"HUBD_TIMING: {name} expects a number, got {value!r}") from None
    return dataclasses.replace(Timing(), **overrides)  # type: ignore[arg-type]
