"""hubd's own sockets (the guard) and what the guard thread does with every packet it hears.

While probing, a packet may show that another device has one of our names, or is probing for
it too (the tie-break, RFC 6762 section 8.2): that is written into the `ProbeSession`. Once a
name is published, a rival's claim is noted for the worker (section 9), and ANY queries for
the host name, which zeroconf leaves unanswered, get our address records.

Everything the guard thread reads or writes lives here, under one lock; the worker thread
changes it only through these methods, and is woken by `wake` when there is news.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hubd._mdns import claim as mdns_claim
from hubd._mdns import wire
from hubd._mdns.addresses import Link
from hubd._mdns.claim import Claim
from hubd._mdns.guard import CpuBudget, MulticastGuard
from hubd._mdns.report import Warn
from hubd._mdns.wire import Address
from hubd.timing import Timing

log = logging.getLogger("hubd.mdns")


class ProbeSession:
    """One round of probing; the guard thread fills in what it hears."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.conflicts: set[str] = set()
        self.lost_tiebreak = False

    def decided(self) -> bool:
        return bool(self.conflicts) or self.lost_tiebreak


class Defender:
    def __init__(self, timing: Timing, warn: Warn, wake: Callable[[], None]) -> None:
        self._timing = timing
        self._warn = warn
        self._wake = wake
        self._lock = threading.Lock()
        # Shared with the guard thread (under _lock).
        self._published: Claim | None = None
        self._session: ProbeSession | None = None
        self._rival_claims: set[str] = set()
        self._own: frozenset[Address] = frozenset()
        self._last_answer = 0.0
        # Worker thread only.
        self._guard: MulticastGuard | None = None
        self._guard_links: tuple[Link, ...] | None = None

    # ------------------------------------------------------------------ the worker's side

    def follow(self, links: tuple[Link, ...]) -> None:
        """Open the guard's sockets, or move them to these links. Raises OSError."""
        if self._guard is None:
            budget = CpuBudget(
                self._timing.mdns_input_cpu_per_s, burst_s=self._timing.mdns_input_cpu_burst_s
            )
            self._guard = MulticastGuard(self.on_packet, self._warn, budget)
        if self._guard_links != links:
            self._guard.configure(links)
            self._guard_links = links

    def send(self, message: wire.Message) -> None:
        if self._guard is not None:
            self._guard.send(message)

    @property
    def published(self) -> Claim | None:
        with self._lock:
            return self._published

    def set_own(self, own: frozenset[Address]) -> None:
        """This machine's addresses: a packet from one of them is not a rival's."""
        with self._lock:
            self._own = own

    def begin_probe(self, claim: Claim) -> ProbeSession:
        session = ProbeSession(claim)
        with self._lock:
            self._session = session
        return session

    def end_probe(self) -> None:
        with self._lock:
            self._session = None

    def publish(self, claim: Claim) -> None:
        """Ours from now on: defended even before zeroconf's first announcement."""
        with self._lock:
            self._published = claim
            self._rival_claims = set()

    def republish(self, claim: Claim, gone: list[Address]) -> None:
        """The same names for new addresses; the `gone` ones still count as our own."""
        with self._lock:
            self._own = self._own | frozenset(gone)
            self._published = claim

    def has_rivals(self) -> bool:
        with self._lock:
            return bool(self._rival_claims)

    def clear_rivals(self) -> None:
        with self._lock:
            self._rival_claims = set()

    def take_rivals(self) -> set[str]:
        with self._lock:
            rivals, self._rival_claims = self._rival_claims, set()
        return rivals

    def withdraw(self) -> None:
        """Stop answering for our names, with goodbyes (RFC 6762 section 10.1)."""
        with self._lock:
            claim, self._published = self._published, None
        if claim is not None and self._guard is not None:
            # Our own goodbye for the address records too, on every link and both families:
            # a peer keeps an IPv4-received record until an IPv4-received goodbye, and our
            # sockets always follow the current links, zeroconf's only after an update.
            self._guard.send(mdns_claim.goodbye_for(claim.host, claim.addresses))

    def forget(self) -> None:
        with self._lock:
            self._published = None
            self._session = None

    def close(self) -> None:
        if self._guard is not None:
            self._guard.close()
            self._guard = None
            self._guard_links = None

    # ------------------------------------------------------------------ the guard thread

    def on_packet(self, message: wire.Message, sender: Address) -> None:
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
                repeat_s = self._timing.mdns_answer_repeat_s
                due = found.from_probe or now - self._last_answer >= repeat_s
                if due:
                    self._last_answer = now
            guard = self._guard
            if due and guard is not None:
                # The gap in zeroconf: ANY for the host name. A probing avahi (or Apple)
                # host sees these records and knows the name is taken.
                guard.send(mdns_claim.host_answer(published))
