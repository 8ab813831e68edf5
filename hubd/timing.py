"""Every timing constant of hubd, with its unit in its name, in one place.

Tests shrink them by building a smaller `Timing`, or for a subprocess through the
`HUBD_TIMING` environment variable (`"health_interval_s=0.2,health_failures=2"`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

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
    # One engine API call may take this long before hubd gives up on it (streamed pulls and
    # builds: this long without a byte). Far below systemd's WatchdogSec=60, so a frozen
    # engine never stops the loop long enough to get hubd killed.
    engine_call_timeout_s: float = 20.0
    # An image build may stay silent for minutes (a long RUN step): its own read timeout.
    image_build_timeout_s: float = 900.0

    # A full reconcile pass even without events, to catch anything events missed.
    reconcile_interval_s: float = 30.0

    # Shutdown: graceful first, then forced (systemd's TimeoutStopSec is 90 s by default).
    shutdown_grace_s: float = 10.0
    # Seconds Docker gives a container between SIGTERM and SIGKILL on stop.
    container_stop_timeout_s: int = 10

    # mDNS: how often the claimed host name is re-checked for a conflict, and how often the
    # machine's addresses are compared with what is announced. Address changes are also
    # reported by the kernel (netlink / routing socket), so the poll is only a fallback.
    # The tray asks the daemon for its status this often: a crash shows within a couple of
    # seconds, and the daemon does not notice the load.
    tray_poll_interval_s: float = 2.0
    # A panel takes its tray icons within a second; after this long without one the tray
    # warns that nothing shows it (and says which desktop setting or package would).
    tray_host_wait_s: float = 5.0

    mdns_conflict_check_interval_s: float = 30.0
    mdns_address_poll_s: float = 2.0
    # After the last probe, how long to wait for a defending answer before claiming the name:
    # RFC 6762 section 8.1 says 250 ms.
    mdns_probe_timeout_s: float = 0.25
    # A change notification comes as a burst (address removed, address added, link flags):
    # wait this long for the rest before rescanning.
    mdns_change_settle_s: float = 0.2
    # After a failure to open sockets or start zeroconf, retry after this long.
    mdns_retry_s: float = 10.0
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
    fields = {f.name: f.type for f in dataclasses.fields(Timing)}
    overrides: dict[str, float | int] = {}
    for item in raw.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in fields:
            raise ConfigError(f"HUBD_TIMING: unknown name {name!r}")
        try:
            overrides[name] = int(value) if fields[name] == "int" else float(value)
        except ValueError:
            raise ConfigError(f"HUBD_TIMING: {name} expects a number, got {value!r}") from None
    return dataclasses.replace(Timing(), **overrides)  # type: ignore[arg-type]
