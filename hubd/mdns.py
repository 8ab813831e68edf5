"""Advertise the hub on the LAN over mDNS: `jupyter.local` and a `_http._tcp` service.

python-zeroconf answers the queries (A/AAAA for the host name, PTR/SRV/TXT for the service);
hubd closes its gaps around the *host name* (see docs/mdns.md):
- it probes the host name and the service name before claiming them (RFC 6762 section 8),
  taking `jupyter-2`, `JupyterHub on box (2)`, ... when another device already has one;
- it defends the host name: zeroconf does not answer ANY queries, which is how avahi and
  Apple's responder probe, so hubd answers those itself with its address records;
- it notices other devices claiming the name later (every packet seen, plus a periodic query)
  and resolves the conflict as RFC 6762 section 9 says: withdraw, probe again, rename if the
  other device defends it. It never takes a name another device defends;
- it follows address changes (kernel notifications, with a periodic rescan as a fallback):
  new addresses announced, removed ones withdrawn with goodbyes; a link that was not
  advertised on before is probed first;
- goodbyes for everything when it stops.

Threads: `start()` returns at once; a worker thread does the probing, publishing and watching,
the guard (hubd._mdns.guard) has a receive thread, zeroconf has its event-loop thread.

Run it alone (tests, debugging): `python -m hubd.mdns --name jupyter --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import errno
import json
import logging
import random
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hubd._mdns import claim as mdns_claim
from hubd._mdns import wire
from hubd._mdns.addresses import Address, Link, Selection, read_interfaces, select_addresses
from hubd._mdns.claim import HOST, SERVICE, Claim
from hubd._mdns.guard import CpuBudget, MulticastGuard
from hubd._mdns.watch import ChangeWatcher
from hubd._mdns.zeroconf_input import limit_zeroconf_input
from hubd.errors import ConfigError, HubdError
from hubd.timing import Timing, timing_from_env

if TYPE_CHECKING:  # imported for real only when needed: `import hubd.mdns` stays cheap
    from zeroconf import ServiceInfo, Zeroconf

# Named, not __name__: under `python -m hubd.mdns` that would be "__main__".
log = logging.getLogger("hubd.mdns")

State = Literal["probing", "advertising", "conflict-renamed", "stopped", "error"]

# RFC 6762 section 8.1: up to 250 ms random wait, three probes 250 ms apart.
_PROBE_JITTER_S = 0.25
_PROBE_SPACING_S = 0.25
_PROBE_COUNT = 3
# Section 8.2: the loser of a simultaneous probe waits one second and probes again.
_LOST_TIEBREAK_WAIT_S = 1.0
# Section 9: after 15 conflicts within 10 s, wait 5 s before each further attempt.
_CONFLICT_BURST, _CONFLICT_WINDOW_S, _CONFLICT_BACKOFF_S = 15, 10.0, 5.0
# Section 6: no record more than once a second on a link, except in answer to a probe.
_ANSWER_REPEAT_S = 1.0
# Our own packets can still be in flight (or echoed) a little after an address is gone; an
# address record with it is not a rival's claim.
_OWN_ADDRESS_MEMORY_S = 10.0
_SERVICE_TYPE = "_http._tcp.local."
_ZEROCONF_CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AdvertiserStatus:
    """What the advertiser is doing; `hostname` is None until a name is claimed.

    state: "probing" (checking the name is free), "advertising" (under the requested name),
    "conflict-renamed" (another device has the requested name: advertising under
    `hostname` instead), "stopped", or "error" (`last_error` says why; it retries by itself).
    """

    state: State
    requested_name: str
    hostname: str | None
    addresses: tuple[str, ...]
    service_name: str | None
    last_error: str | None
    port: int

    @property
    def url(self) -> str | None:
        return f"http://{self.hostname}:{self.port}/" if self.hostname else None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["addresses"] = list(self.addresses)
        return data


class _Stopping(Exception):
    """close() was called: unwind the worker."""


class _Warnings:
    """Warn once per distinct failure; repeats go to debug."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str) -> None:
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        log.log(logging.WARNING if first else logging.DEBUG, "%s", message)


class _ProbeSession:
    """One round of probing; the guard thread fills in what it hears."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.conflicts: set[str] = set()
        self.lost_tiebreak = False

    def decided(self) -> bool:
        return bool(self.conflicts) or self.lost_tiebreak


def _check_name(name: str) -> str:
    label = name.strip().lower()
    if label.endswith(".local"):
        label = label[: -len(".local")]
    problem = not label or len(label) > 63 or label.startswith("-") or label.endswith("-")
    if problem or not all(c.isascii() and (c.isalnum() or c == "-") for c in label):
        raise ConfigError(f"mDNS name {name!r}: expected a DNS label such as 'jupyter'")
    return label


class Advertiser:
    """Keeps `<name>.local` and the hub's DNS-SD service on the LAN while it runs."""

    def __init__(
        self,
        name: str,
        port: int,
        *,
        interfaces: Sequence[str] = (),
        ipv6: bool = True,
        timing: Timing | None = None,
        on_change: Callable[[AdvertiserStatus], None] | None = None,
    ) -> None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"mDNS: port {port} is not a port number")
        self._name = _check_name(name)
        self._port = port
        self._interfaces = tuple(interfaces)
        self._ipv6 = ipv6
        self._timing = timing or Timing()
        self._on_change = on_change
        self._machine = socket.gethostname().split(".")[0] or "this machine"
        self._lock = threading.Lock()
        self._status = AdvertiserStatus("stopped", self._name, None, (), None, None, port)
        self._warn = _Warnings()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # Shared with the guard thread (under _lock).
        self._published: Claim | None = None
        self._session: _ProbeSession | None = None
        self._rival_claims: set[str] = set()
        self._own: frozenset[Address] = frozenset()
        self._last_answer = 0.0
        # Worker thread only.
        self._zc: Zeroconf | None = None
        self._zc_interfaces: list[str | int] = []
        self._info: ServiceInfo | None = None
        self._guard: MulticastGuard | None = None
        self._guard_links: tuple[Link, ...] | None = None
        self._watcher: ChangeWatcher | None = None
        self._announced: Selection | None = None
        self._host_number = 1
        self._service_number = 1
        self._conflict_times: collections.deque[float] = collections.deque()
        self._recent_own: dict[Address, float] = {}
        self._change_pending = False
        self._next_recheck = 0.0
        self._next_conflict_probe = 0.0
        self._next_reclaim = 0.0

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Begin probing and advertising on a thread of its own; returns at once."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="hubd-mdns", daemon=True)
        self._set_status(state="probing")
        self._thread.start()

    def close(self) -> None:
        """Send goodbyes and stop every thread. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake()
        if thread is threading.current_thread():
            return  # close() from an on_change callback: the worker winds down by itself
        if thread is not None:
            thread.join(timeout=15)
            if thread.is_alive():
                log.warning("mDNS: the advertiser thread did not stop in time")
        self._set_status(state="stopped", hostname=None, addresses=(), service_name=None)
        self._wake_r.close()
        self._wake_w.close()

    def status(self) -> AdvertiserStatus:
        with self._lock:
            return self._status

    # ------------------------------------------------------------------ status

    def _set_status(self, **changes: Any) -> None:
        with self._lock:
            new = dataclasses.replace(self._status, **changes)
            if new == self._status:
                return
            self._status = new
        if self._on_change is not None:
            try:
                self._on_change(new)
            except Exception as exc:
                self._warn(
                    f"on-change-{type(exc).__name__}", f"mDNS: the status callback failed: {exc!r}"
                )

    def _error(self, key: str, message: str) -> None:
        self._warn(key, f"mDNS: {message}")
        self._set_status(state="error", last_error=message)

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        try:
            self._watcher = ChangeWatcher()
            if self._watcher.error:
                self._warn("watch", f"mDNS: {self._watcher.error}")
            while True:
                try:
                    self._step()
                except _Stopping:
                    break
                except Exception as exc:
                    # Sockets that cannot be opened, zeroconf refusing: say so, start over.
                    message = str(exc)
                    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
                        message = (
                            "port 5353 is held exclusively by another mDNS responder "
                            "(for avahi: set disallow-other-stacks=no)"
                        )
                    self._error(f"step-{type(exc).__name__}-{exc}", message)
                    log.debug("mDNS: failure details", exc_info=True)
                    self._teardown(goodbyes=True)
                    try:
                        self._wait(self._timing.mdns_retry_s)
                    except _Stopping:
                        break
        finally:
            self._teardown(goodbyes=True)
            if self._watcher is not None:
                self._watcher.close()

    def _step(self) -> None:
        selection = self._scan()
        if not selection.links:
            self._withdraw()
            self._report_no_address(selection)
            self._wait(self._timing.mdns_address_poll_s, lambda: self._change_pending)
            self._settle()
            return
        self._ensure_guard(selection)
        if self._published is None:
            self._claim_names(selection)
            return
        # Links, not the whole selection: a container starting changes the machine's address
        # list (a new veth) without changing anything we announce.
        if self._announced is not None and selection.links != self._announced.links:
            self._follow_change(selection)
            return
        with self._lock:
            rivals, self._rival_claims = self._rival_claims, set()
        if rivals:
            self._resolve_conflict(rivals)
            return
        now = time.monotonic()
        if self._renamed() and now >= self._next_reclaim:
            self._reclaim(selection)
            return
        if now >= self._next_recheck:
            self._next_recheck = now + self._timing.mdns_conflict_check_interval_s
            assert self._guard is not None and self._published is not None
            self._guard.send(mdns_claim.recheck_query(self._published, self._ipv6))
        wait = min(self._timing.mdns_address_poll_s, max(0.0, self._next_recheck - now))
        self._wait(wait, lambda: self._change_pending or bool(self._rival_claims))
        self._settle()

    def _settle(self) -> None:
        """After a change notification, let the burst of messages pass, then rescan."""
        if self._change_pending:
            self._wait(self._timing.mdns_change_settle_s)
            if self._watcher is not None:
                self._watcher.drain()
            self._change_pending = False

    def _scan(self) -> Selection:
        selection = select_addresses(read_interfaces(), self._interfaces, self._ipv6)
        for name in selection.missing:
            self._warn(f"missing-{name}", f"mDNS: there is no network interface named {name!r}")
        now = time.monotonic()
        self._recent_own = {a: t for a, t in self._recent_own.items() if t > now}
        with self._lock:
            self._own = selection.local | frozenset(self._recent_own)
        return selection

    def _report_no_address(self, selection: Selection) -> None:
        where = f" on {', '.join(self._interfaces)}" if self._interfaces else ""
        missing = ""
        if selection.missing:
            missing = f" (no interface named {', '.join(selection.missing)})"
        self._set_status(
            state="error",
            hostname=None,
            addresses=(),
            last_error=(f"no LAN address to advertise{where}{missing}; waiting for a network"),
        )

    # ------------------------------------------------------------------ probing

    def _claim_for(self, selection: Selection) -> Claim:
        return Claim(
            host=(mdns_claim.host_label(self._name, self._host_number), "local"),
            service=(
                mdns_claim.service_label(self._machine, self._service_number),
                *mdns_claim.SERVICE_TYPE,
            ),
            addresses=selection.addresses,
            port=self._port,
        )

    def _probe(self, claim: Claim) -> _ProbeSession:
        """RFC 6762 section 8.1; returns early once a conflict or a lost tie-break is heard."""
        assert self._guard is not None
        session = _ProbeSession(claim)
        with self._lock:
            self._session = session
        try:
            self._wait(random.uniform(0, _PROBE_JITTER_S), session.decided)
            for _ in range(_PROBE_COUNT):
                if session.decided():
                    break
                self._guard.send(mdns_claim.probe(claim, self._ipv6))
                self._wait(_PROBE_SPACING_S, session.decided)
            extra = max(0.0, self._timing.mdns_probe_timeout_s - _PROBE_SPACING_S)
            self._wait(extra, session.decided)
        finally:
            with self._lock:
                self._session = None
        return session

    def _claim_names(self, selection: Selection) -> None:
        claim = self._claim_for(selection)
        self._set_status(state="probing", hostname=None, addresses=())
        self._throttle_conflicts()
        log.debug("mDNS: probing %s and %r", claim.hostname, claim.instance)
        session = self._probe(claim)
        if session.lost_tiebreak and not session.conflicts:
            log.info(
                "mDNS: another device is probing for %s at the same time; retrying", claim.hostname
            )
            self._wait(_LOST_TIEBREAK_WAIT_S)
            return
        if session.conflicts:
            self._rename(claim, session.conflicts)
            return
        self._publish(claim, selection)

    def _rename(self, claim: Claim, conflicts: set[str]) -> None:
        self._conflict_times.append(time.monotonic())
        self._next_reclaim = time.monotonic() + self._timing.mdns_reclaim_interval_s
        if HOST in conflicts:
            self._host_number += 1
            new = mdns_claim.host_label(self._name, self._host_number)
            self._warn(
                f"rename-{claim.hostname}",
                f"mDNS: {claim.hostname} is in use by another device on the network; "
                f"trying {new}.local",
            )
        if SERVICE in conflicts:
            self._service_number += 1
            new = mdns_claim.service_label(self._machine, self._service_number)
            self._warn(
                f"rename-{claim.instance}",
                f"mDNS: service name {claim.instance!r} is in use; trying {new!r}",
            )

    def _throttle_conflicts(self) -> None:
        now = time.monotonic()
        while self._conflict_times and now - self._conflict_times[0] > _CONFLICT_WINDOW_S:
            self._conflict_times.popleft()
        if len(self._conflict_times) >= _CONFLICT_BURST:
            self._wait(_CONFLICT_BACKOFF_S)

    # ------------------------------------------------------------------ publishing

    def _publish(self, claim: Claim, selection: Selection) -> None:
        from zeroconf import ServiceInfo

        self._sync_zeroconf(selection)
        info = ServiceInfo(
            _SERVICE_TYPE,
            wire.name_text(claim.service),
            port=claim.port,
            properties=dict(claim.txt),
            server=wire.name_text(claim.host),
            addresses=[address.packed for address in claim.addresses],
        )
        zc = self._zc
        assert zc is not None and zc.loop is not None

        async def register() -> None:
            # The names were probed above; zeroconf's own probe would only cover the service
            # name and cost another second. Its announcements go on in the background.
            await zc.async_register_service(info, cooperating_responders=True)

        with self._lock:
            # Ours from now on: the guard defends it even before zeroconf's first announcement.
            self._published = claim
            self._rival_claims = set()
        asyncio.run_coroutine_threadsafe(register(), zc.loop).result(_ZEROCONF_CALL_TIMEOUT_S)
        self._info = info
        self._announced = selection
        self._next_recheck = time.monotonic() + self._timing.mdns_conflict_check_interval_s
        renamed = self._host_number > 1
        self._set_status(
            state="conflict-renamed" if renamed else "advertising",
            hostname=claim.hostname,
            addresses=tuple(str(a) for a in claim.addresses),
            service_name=claim.instance,
            last_error=None,
        )
        log.info(
            "mDNS: advertising http://%s:%d/ (%s), service %r",
            claim.hostname,
            claim.port,
            ", ".join(str(a) for a in claim.addresses),
            claim.instance,
        )

    def _follow_change(self, selection: Selection) -> None:
        """New or lost addresses: announce / withdraw, probing first on a link new to us."""
        assert self._announced is not None and self._published is not None
        old = self._announced
        claim = dataclasses.replace(self._published, addresses=selection.addresses)
        new_links = {link.name for link in selection.links} - {link.name for link in old.links}
        if new_links:
            # RFC 6762 section 8: a new link may be a different network, where the name can
            # belong to someone else: probe before announcing there. The old links keep
            # being answered meanwhile.
            log.debug("mDNS: new link(s) %s; probing before announcing there", new_links)
            session = self._probe(claim)
            if session.decided():
                self._withdraw()
                if session.conflicts:
                    self._rename(claim, session.conflicts)
                else:
                    self._wait(_LOST_TIEBREAK_WAIT_S)
                return
        removed = [a for a in old.addresses if a not in set(selection.addresses)]
        expiry = time.monotonic() + _OWN_ADDRESS_MEMORY_S
        self._recent_own.update(dict.fromkeys(removed, expiry))
        with self._lock:
            self._own = self._own | frozenset(removed)
            self._published = claim
        if removed and self._guard is not None:
            # RFC 6762 section 10.1: goodbyes for the old rdata, so peers drop it now (the
            # new records' cache-flush bit only covers records of the same type).
            self._guard.send(mdns_claim.goodbye_for(claim.host, removed))
        self._set_status(addresses=tuple(str(a) for a in claim.addresses))
        self._update_zeroconf(selection, claim)
        self._announced = selection
        log.info(
            "mDNS: %s now stands for %s", claim.hostname, ", ".join(str(a) for a in claim.addresses)
        )

    def _resolve_conflict(self, rivals: set[str]) -> None:
        """RFC 6762 section 9: another device announced other data for our name. Probe again;
        if the other device defends the name it keeps it and we move on to the next one.

        The name stays answered while we probe (avahi does the same; only a name somebody
        defends is given up, with goodbyes), and these probes run at most once per
        `mdns_conflict_probe_min_interval_s`, however many claims come: claims heard in
        between are settled by the next probe. When nobody defends, our records are
        announced again: the other device's cache-flush bit may have evicted them from
        peers' caches. (A claim heard *during* the probe is a conflict, RFC 6762 section 8.1:
        a device that keeps sending well-formed claims does take the name, from avahi too.)
        """
        claim = self._published
        assert claim is not None and self._guard is not None
        for kind in sorted(rivals):
            name = claim.hostname if kind == HOST else repr(claim.instance)
            self._warn(
                f"rival-{kind}-{name}",
                f"mDNS: another device answered for {name}; checking who owns it",
            )
        self._wait(max(0.0, self._next_conflict_probe - time.monotonic()))
        log.debug("mDNS: probing %s again after another device's claim", claim.hostname)
        session = self._probe(claim)
        self._next_conflict_probe = (
            time.monotonic() + self._timing.mdns_conflict_probe_min_interval_s
        )
        with self._lock:
            self._rival_claims = set()  # answered by this probe round
        # A lost tie-break does not count here: we hold the name, and a device probing for it
        # now hears our answers (§8.2 settles two devices that both probe).
        if session.conflicts:
            self._withdraw()
            self._rename(claim, session.conflicts)
        else:
            self._guard.send(mdns_claim.host_answer(claim))

    def _renamed(self) -> bool:
        return self._host_number > 1 or self._service_number > 1

    def _reclaim(self, selection: Selection) -> None:
        """Running as jupyter-2 because jupyter was taken: probe for the requested names (we
        keep answering for the stand-ins meanwhile); once nobody holds them, move back."""
        self._next_reclaim = time.monotonic() + self._timing.mdns_reclaim_interval_s
        wanted = dataclasses.replace(
            self._claim_for(selection),
            host=(mdns_claim.host_label(self._name, 1), "local"),
            service=(mdns_claim.service_label(self._machine, 1), *mdns_claim.SERVICE_TYPE),
        )
        session = self._probe(wanted)
        if session.decided():
            log.debug("mDNS: %s is still taken", wanted.hostname)
            return
        log.info("mDNS: %s is free again; moving back to it", wanted.hostname)
        self._withdraw()
        self._host_number = self._service_number = 1
        self._publish(wanted, selection)

    def _withdraw(self) -> None:
        """Stop answering for our names, with goodbyes (RFC 6762 section 10.1)."""
        with self._lock:
            claim, self._published = self._published, None
        if claim is not None and self._guard is not None:
            # Our own goodbye for the address records too, on every link and both families:
            # a peer keeps an IPv4-received record until an IPv4-received goodbye, and our
            # sockets always follow the current links, zeroconf's only after an update.
            self._guard.send(mdns_claim.goodbye_for(claim.host, claim.addresses))
        zc, info = self._zc, self._info
        if zc is not None and zc.loop is not None and info is not None:

            async def unregister() -> None:
                # Until the last of zeroconf's three goodbyes is out: its blocking
                # unregister_service() returns after the first, and a close() right after
                # it would drop the other two.
                await (await zc.async_unregister_service(info))

            try:
                future = asyncio.run_coroutine_threadsafe(unregister(), zc.loop)
                future.result(_ZEROCONF_CALL_TIMEOUT_S)
            except Exception as exc:
                self._warn(f"unregister-{exc}", f"mDNS: goodbyes not sent: {exc}")
        self._info = None
        self._announced = None

    # ------------------------------------------------------------------ sockets

    def _ensure_guard(self, selection: Selection) -> None:
        if self._guard is None:
            budget = CpuBudget(self._timing.mdns_input_cpu_per_s)
            self._guard = MulticastGuard(self._on_packet, self._warn, budget)
        if self._guard_links != selection.links:
            self._guard.configure(selection.links)
            self._guard_links = selection.links

    def _wanted_zeroconf_interfaces(self, selection: Selection) -> list[str | int]:
        # One IPv4 address per link (zeroconf opens a socket per entry) and, for IPv6, the
        # interface index (IPv6 multicast is joined per interface).
        wanted: list[str | int] = []
        for link in selection.links:
            if link.ipv4:
                wanted.append(str(link.ipv4[0]))
            if link.ipv6 and self._ipv6:
                wanted.append(link.index)
        return wanted

    def _sync_zeroconf(self, selection: Selection) -> None:
        from zeroconf import Zeroconf

        wanted = self._wanted_zeroconf_interfaces(selection)
        if self._zc is None:
            self._zc = Zeroconf(interfaces=wanted)
            self._zc_interfaces = wanted
        elif wanted != self._zc_interfaces:
            self._zc.update_interfaces(wanted)
            self._zc_interfaces = wanted
        limit_zeroconf_input(self._zc, self._timing.mdns_input_cpu_per_s)

    def _update_zeroconf(self, selection: Selection, claim: Claim) -> None:
        zc, info = self._zc, self._info
        assert zc is not None and zc.loop is not None and info is not None
        wanted = self._wanted_zeroconf_interfaces(selection)
        change_interfaces = wanted != self._zc_interfaces

        async def update() -> None:
            # On zeroconf's loop, so no answer is built from a half-updated address list;
            # addresses first, so the re-announce on a new socket carries the new ones.
            info.addresses = [address.packed for address in claim.addresses]
            if change_interfaces:
                await zc.async_update_interfaces(wanted)
            await zc.async_update_service(info)

        asyncio.run_coroutine_threadsafe(update(), zc.loop).result(_ZEROCONF_CALL_TIMEOUT_S)
        self._zc_interfaces = wanted
        if change_interfaces:
            limit_zeroconf_input(zc, self._timing.mdns_input_cpu_per_s)

    def _teardown(self, goodbyes: bool) -> None:
        if goodbyes:
            self._withdraw()
        with self._lock:
            self._published = None
            self._session = None
        if self._zc is not None:
            try:
                self._zc.close()
            except Exception as exc:
                log.debug("mDNS: zeroconf close: %s", exc)
            self._zc = None
            self._zc_interfaces = []
        if self._guard is not None:
            self._guard.close()
            self._guard = None
            self._guard_links = None

    # ------------------------------------------------------------------ guard thread

    def _on_packet(self, message: wire.Message, sender: Address) -> None:
        with self._lock:
            session, published, own = self._session, self._published, self._own
        from_self = sender in own
        if session is not None:
            found = mdns_claim.inspect(
                message, session.claim, from_self=from_self, own_addresses=own
            )
            lost = any(
                mdns_claim.tiebreak(session.claim, kind, theirs) < 0
                for kind, theirs in found.rival_probes.items()
            )
            if found.conflicts or lost:
                log.debug(
                    "mDNS: probe of %s: conflicts %s, lost tie-break %s (from %s)",
                    session.claim.hostname,
                    sorted(found.conflicts),
                    lost,
                    sender,
                )
                with self._lock:
                    session.conflicts |= found.conflicts
                    session.lost_tiebreak |= lost
                self._wake()
        if published is None:
            return
        found = mdns_claim.inspect(message, published, from_self=from_self, own_addresses=own)
        if found.conflicts:
            log.debug("mDNS: %s claimed by %s", sorted(found.conflicts), sender)
            with self._lock:
                self._rival_claims |= found.conflicts
            self._wake()
        if found.any_for_host:
            now = time.monotonic()
            with self._lock:
                due = found.from_probe or now - self._last_answer >= _ANSWER_REPEAT_S
                if due:
                    self._last_answer = now
            guard = self._guard
            if due and guard is not None:
                # The gap in zeroconf: ANY for the host name. A probing avahi (or Apple)
                # host sees these records and knows the name is taken.
                guard.send(mdns_claim.host_answer(published))

    # ------------------------------------------------------------------ waiting

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _wait(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Sleep up to `seconds`, less if `until()` turns true; raise _Stopping on close()."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stop.is_set():
                raise _Stopping
            if until():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            watch_fd = self._watcher.fileno() if self._watcher is not None else None
            fds: list[Any] = [self._wake_r] + ([watch_fd] if watch_fd is not None else [])
            ready, _, _ = select.select(fds, [], [], left)
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            watcher = self._watcher
            if watch_fd is not None and watch_fd in ready and watcher is not None:
                self._change_pending |= watcher.drain()


# ---------------------------------------------------------------------- runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd.mdns",
        description="Advertise <name>.local and a JupyterHub _http._tcp service until "
        "SIGTERM/SIGINT, then send goodbyes.",
    )
    parser.add_argument("--name", default="jupyter", help="host name to claim (default jupyter)")
    parser.add_argument("--port", type=int, default=8000, help="the hub's port (default 8000)")
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        help="advertise only on this interface (repeatable; default: all LAN)",
    )
    parser.add_argument("--no-ipv6", action="store_true", help="IPv4 addresses only")
    parser.add_argument(
        "--json", action="store_true", help="print each status change as a JSON line on stdout"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("zeroconf").setLevel(logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # only a flag: the main loop below does the work

    # The wakeup fd ends the select() below the moment a signal arrives (no polling delay
    # before the goodbyes go out); the handler itself only sets the flag.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_change(status: AdvertiserStatus) -> None:
        if args.json:
            print(json.dumps(status.as_dict()), flush=True)

    try:
        advertiser = Advertiser(
            args.name,
            args.port,
            interfaces=args.interface,
            ipv6=not args.no_ipv6,
            timing=timing_from_env(),
            on_change=on_change,
        )
    except HubdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    advertiser.start()
    while not stop.is_set():
        select.select([wake_r], [], [], 5.0)
        with contextlib.suppress(OSError):
            wake_r.recv(64)
    last = advertiser.status()
    advertiser.close()
    log.info("mDNS: stopped; goodbyes sent for %s", last.hostname or "nothing (no name held)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
