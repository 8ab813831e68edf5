"""The advertiser's thread: probe, publish, watch for changes and rivals, start over on errors.

Each `step()` looks at the machine's addresses and does the one thing due: claim the names
(probing first), follow an address change, answer a rival's claim, or wait for news (a change
notification from the kernel, a packet from the guard thread, `close()`).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import random
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from hubd._mdns import claim as mdns_claim
from hubd._mdns.addresses import Selection, read_interfaces, select_addresses
from hubd._mdns.claim import HOST, Claim
from hubd._mdns.defender import Defender, ProbeSession
from hubd._mdns.names import Names
from hubd._mdns.publisher import Publisher
from hubd._mdns.report import StatusBoard, Warn
from hubd._mdns.watch import ChangeWatcher
from hubd._mdns.wire import Address
from hubd.timing import Timing
from hubd.wakeup import Wakeup

log = logging.getLogger("hubd.mdns")

# RFC 6762 section 8.1: three probes (their timing is in hubd/timing.py).
PROBE_COUNT = 3


class Stopping(Exception):
    """close() was called: unwind the worker."""


class Worker:
    def __init__(
        self,
        names: Names,
        interfaces: Sequence[str],
        ipv6: bool,
        timing: Timing,
        board: StatusBoard,
        warn: Warn,
        https_port: int | None = None,
    ) -> None:
        self._names = names
        self._interfaces = tuple(interfaces)
        self._ipv6 = ipv6
        self._timing = timing
        self._board = board
        self._warn = warn
        self._stop = threading.Event()
        self._wakeup = Wakeup()
        self._publisher = Publisher(timing, ipv6, warn, https_port)
        self._defender = Defender(timing, warn, self._wakeup.wake)
        self._watcher: ChangeWatcher | None = None
        self._announced: Selection | None = None
        self._recent_own: dict[Address, float] = {}
        self._change_pending = False
        self._next_recheck = 0.0
        self._next_conflict_probe = 0.0

    # ------------------------------------------------------------------ from other threads

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.wake()

    def close_wakeup(self) -> None:
        """After the thread has ended (or never started)."""
        self._wakeup.close()

    # ------------------------------------------------------------------ the thread

    def run(self) -> None:
        try:
            self._watcher = ChangeWatcher()
            if self._watcher.error:
                self._warn("watch", f"mDNS: {self._watcher.error}")
            while True:
                try:
                    self.step()
                except Stopping:
                    break
                except Exception as exc:
                    # Sockets that cannot be opened, zeroconf refusing: say so, start over.
                    message = str(exc)
                    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
                        message = (
                            "port 5353 is held exclusively by another mDNS responder "
                            "(for avahi: set disallow-other-stacks=no)"
                        )
                    self._board.error(f"step-{type(exc).__name__}-{exc}", message)
                    log.debug("mDNS: failure details", exc_info=True)
                    self._teardown(goodbyes=True)
                    try:
                        self._wait(self._timing.mdns_retry_s)
                    except Stopping:
                        break
        finally:
            self._teardown(goodbyes=True)
            if self._watcher is not None:
                self._watcher.close()

    def step(self) -> None:
        selection = self._scan()
        if not selection.links:
            self._withdraw()
            self._report_no_address(selection)
            self._wait(self._timing.mdns_address_poll_s, lambda: self._change_pending)
            self._settle()
            return
        self._defender.follow(selection.links)
        published = self._defender.published
        if published is None:
            self._claim_names(selection)
            return
        # Links, not the whole selection: a container starting changes the machine's address
        # list (a new veth) without changing anything we announce.
        if self._announced is not None and selection.links != self._announced.links:
            self._follow_change(selection)
            return
        rivals = self._defender.take_rivals()
        if rivals:
            self._resolve_conflict(published, rivals)
            return
        now = time.monotonic()
        if self._names.reclaim_due(now):
            self._reclaim(selection)
            return
        if now >= self._next_recheck:
            self._next_recheck = now + self._timing.mdns_conflict_check_interval_s
            self._defender.send(mdns_claim.recheck_query(published, self._ipv6))
        wait = min(self._timing.mdns_address_poll_s, max(0.0, self._next_recheck - now))
        self._wait(wait, lambda: self._change_pending or self._defender.has_rivals())
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
        self._defender.set_own(selection.local | frozenset(self._recent_own))
        return selection

    def _report_no_address(self, selection: Selection) -> None:
        where = f" on {', '.join(self._interfaces)}" if self._interfaces else ""
        missing = ""
        if selection.missing:
            missing = f" (no interface named {', '.join(selection.missing)})"
        self._board.set(
            state="error",
            hostname=None,
            addresses=(),
            last_error=(f"no LAN address to advertise{where}{missing}; waiting for a network"),
        )

    # ------------------------------------------------------------------ probing

    def _probe(self, claim: Claim) -> ProbeSession:
        """RFC 6762 section 8.1; returns early once a conflict or a lost tie-break is heard."""
        session = self._defender.begin_probe(claim)
        try:
            self._wait(random.uniform(0, self._timing.mdns_probe_jitter_s), session.decided)
            for _ in range(PROBE_COUNT):
                if session.decided():
                    break
                self._defender.send(mdns_claim.probe(claim, self._ipv6))
                self._wait(self._timing.mdns_probe_spacing_s, session.decided)
            spacing_s = self._timing.mdns_probe_spacing_s
            self._wait(max(0.0, self._timing.mdns_probe_timeout_s - spacing_s), session.decided)
        finally:
            self._defender.end_probe()
        return session

    def _claim_names(self, selection: Selection) -> None:
        claim = self._names.claim_for(selection)
        self._board.set(state="probing", hostname=None, addresses=())
        throttle_s = self._names.throttle_s()
        if throttle_s:
            self._wait(throttle_s)
        log.debug("mDNS: probing %s and %r", claim.hostname, claim.instance)
        session = self._probe(claim)
        if session.lost_tiebreak and not session.conflicts:
            log.info(
                "mDNS: another device is probing for %s at the same time; retrying", claim.hostname
            )
            self._wait(self._timing.mdns_lost_tiebreak_wait_s)
            return
        if session.conflicts:
            self._names.rename(claim, session.conflicts)
            return
        self._publish(claim, selection)

    # ------------------------------------------------------------------ publishing

    def _publish(self, claim: Claim, selection: Selection) -> None:
        self._publisher.open(selection)
        self._defender.publish(claim)
        self._publisher.register(claim)
        self._announced = selection
        self._next_recheck = time.monotonic() + self._timing.mdns_conflict_check_interval_s
        self._board.set(
            state="conflict-renamed" if self._names.renamed else "advertising",
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
        published = self._defender.published
        assert self._announced is not None and published is not None
        old = self._announced
        claim = dataclasses.replace(published, addresses=selection.addresses)
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
                    self._names.rename(claim, session.conflicts)
                else:
                    self._wait(self._timing.mdns_lost_tiebreak_wait_s)
                return
        removed = [a for a in old.addresses if a not in set(selection.addresses)]
        expiry = time.monotonic() + self._timing.mdns_own_address_memory_s
        self._recent_own.update(dict.fromkeys(removed, expiry))
        self._defender.republish(claim, removed)
        if removed:
            # RFC 6762 section 10.1: goodbyes for the old rdata, so peers drop it now (the
            # new records' cache-flush bit only covers records of the same type).
            self._defender.send(mdns_claim.goodbye_for(claim.host, removed))
        self._board.set(addresses=tuple(str(a) for a in claim.addresses))
        self._publisher.update(selection, claim)
        self._announced = selection
        log.info(
            "mDNS: %s now stands for %s", claim.hostname, ", ".join(str(a) for a in claim.addresses)
        )

    def _resolve_conflict(self, claim: Claim, rivals: set[str]) -> None:
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
        self._defender.clear_rivals()  # answered by this probe round
        # A lost tie-break does not count here: we hold the name, and a device probing for it
        # now hears our answers (§8.2 settles two devices that both probe).
        if session.conflicts:
            self._withdraw()
            self._names.rename(claim, session.conflicts)
        else:
            self._defender.send(mdns_claim.host_answer(claim))

    def _reclaim(self, selection: Selection) -> None:
        """Running as jupyter-2 because jupyter was taken: probe for the requested names (we
        keep answering for the stand-ins meanwhile); once nobody holds them, move back."""
        wanted = self._names.requested_claim(selection)
        session = self._probe(wanted)
        if session.decided():
            log.debug("mDNS: %s is still taken", wanted.hostname)
            return
        log.info("mDNS: %s is free again; moving back to it", wanted.hostname)
        self._withdraw()
        self._names.back_to_requested()
        self._publish(wanted, selection)

    def _withdraw(self) -> None:
        """Stop answering for our names, with goodbyes (RFC 6762 section 10.1)."""
        self._defender.withdraw()
        self._publisher.unregister()
        self._announced = None

    def _teardown(self, goodbyes: bool) -> None:
        if goodbyes:
            self._withdraw()
        self._defender.forget()
        self._publisher.close()
        self._defender.close()

    # ------------------------------------------------------------------ waiting

    def _wait(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Sleep up to `seconds`, less if `until()` turns true; raise Stopping on close()."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stop.is_set():
                raise Stopping
            if until():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            watch_fd = self._watcher.fileno() if self._watcher is not None else None
            fds: list[Any] = [self._wakeup] + ([watch_fd] if watch_fd is not None else [])
            ready, _, _ = select.select(fds, [], [], left)
            if self._wakeup in ready:
                self._wakeup.drain()
            watcher = self._watcher
            if watch_fd is not None and watch_fd in ready and watcher is not None:
                self._change_pending |= watcher.drain()
