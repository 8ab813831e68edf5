"""Which names the advertiser claims: the requested one first, the next one after a conflict.

RFC 6762 section 9: a name another device defends is never taken; hubd moves on to
`jupyter-2`, `JupyterHub on box (2)`, ... and, after many conflicts in a short time, slows down.
Once renamed, it asks now and then whether the requested names are free again.
"""

from __future__ import annotations

import collections
import dataclasses
import socket
import time

from hubd._mdns import claim as mdns_claim
from hubd._mdns.addresses import Selection
from hubd._mdns.claim import HOST, SERVICE, Claim
from hubd._mdns.report import Warn
from hubd.config import check_dns_label
from hubd.errors import ConfigError
from hubd.timing import Timing


def check_name(name: str) -> str:
    """The DNS label of `name` ("Jupyter.local" -> "jupyter"); ConfigError if it is none."""
    label = name.strip().lower()
    if label.endswith(".local"):
        label = label[: -len(".local")]
    if check_dns_label(label) is not None:
        raise ConfigError(f"mDNS name {name!r}: expected a DNS label such as 'jupyter'")
    return label


class Names:
    def __init__(self, name: str, port: int, timing: Timing, warn: Warn) -> None:
        self.name = check_name(name)
        self.port = port
        self.machine = socket.gethostname().split(".")[0] or "this machine"
        self._timing = timing
        self._warn = warn
        self._host_number = 1
        self._service_number = 1
        self._conflict_times: collections.deque[float] = collections.deque()
        self._next_reclaim = 0.0

    @property
    def renamed(self) -> bool:
        """Whether the host name is no longer the one asked for."""
        return self._host_number > 1

    def reclaim_due(self, now: float) -> bool:
        """Whether to probe for the requested names again (we hold stand-ins)."""
        renamed = self._host_number > 1 or self._service_number > 1
        return renamed and now >= self._next_reclaim

    def requested_claim(self, selection: Selection) -> Claim:
        """The claim under the requested names, and the next reclaim scheduled."""
        self._next_reclaim = time.monotonic() + self._timing.mdns_reclaim_interval_s
        return dataclasses.replace(
            self.claim_for(selection),
            host=(mdns_claim.host_label(self.name, 1), "local"),
            service=(mdns_claim.service_label(self.machine, 1), *mdns_claim.SERVICE_TYPE),
        )

    def back_to_requested(self) -> None:
        self._host_number = self._service_number = 1

    def claim_for(self, selection: Selection) -> Claim:
        return Claim(
            host=(mdns_claim.host_label(self.name, self._host_number), "local"),
            service=(
                mdns_claim.service_label(self.machine, self._service_number),
                *mdns_claim.SERVICE_TYPE,
            ),
            addresses=selection.addresses,
            port=self.port,
        )

    def rename(self, claim: Claim, conflicts: set[str]) -> None:
        """Move on to the next name for each kind of name another device has."""
        self._conflict_times.append(time.monotonic())
        self._next_reclaim = time.monotonic() + self._timing.mdns_reclaim_interval_s
        if HOST in conflicts:
            self._host_number += 1
            new = mdns_claim.host_label(self.name, self._host_number)
            self._warn(
                f"rename-{claim.hostname}",
                f"mDNS: {claim.hostname} is in use by another device on the network; "
                f"trying {new}.local",
            )
        if SERVICE in conflicts:
            self._service_number += 1
            new = mdns_claim.service_label(self.machine, self._service_number)
            self._warn(
                f"rename-{claim.instance}",
                f"mDNS: service name {claim.instance!r} is in use; trying {new!r}",
            )

    def throttle_s(self) -> float:
        """How long to wait before the next claim: zero unless conflicts came in a burst."""
        now = time.monotonic()
        window_s = self._timing.mdns_conflict_window_s
        while self._conflict_times and now - self._conflict_times[0] > window_s:
            self._conflict_times.popleft()
        if len(self._conflict_times) >= self._timing.mdns_conflict_burst:
            return self._timing.mdns_conflict_backoff_s
        return 0.0
