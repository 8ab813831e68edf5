"""The daemon's mDNS: an `Advertiser` (hubd/mdns.py) while the hub is meant to run and mDNS
is on, none otherwise, and a new one when a setting it is built from changes.

Meant, not running: a hub that crashed or waits for the engine keeps its name on the LAN,
so people's devices find it again the moment it is back. mDNS is a convenience: when the
advertiser cannot start, the hub runs without it (one warning, another try next pass).

`sync_once()` is one look, called from the daemon's loop; `status()` is read by the control
API's threads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from hubd.config import Config
from hubd.logsafe import WarnOnce
from hubd.status import MdnsView
from hubd.timing import Timing

if TYPE_CHECKING:
    from hubd.mdns import AdvertiserStatus
    from hubd.stack import Stack

log = logging.getLogger("hubd")


class AdvertiserLike(Protocol):
    """What the daemon uses of `hubd.mdns.Advertiser`."""

    def start(self) -> None: ...
    def close(self) -> None: ...
    def status(self) -> AdvertiserStatus: ...


MakeAdvertiser = Callable[[Config, Timing, int | None], AdvertiserLike]


def make_advertiser(config: Config, timing: Timing, https_port: int | None) -> AdvertiserLike:
    # Loaded here, not with the daemon: with mDNS off, zeroconf and asyncio stay unloaded.
    from hubd.mdns import Advertiser

    return Advertiser(
        config.mdns_name,
        config.port,
        interfaces=config.mdns_interfaces,
        ipv6=config.mdns_ipv6,
        timing=timing,
        on_change=lambda status: log.info("mDNS: %s as %s", status.state, status.hostname),
        https_port=https_port,
    )


def mdns_settings(config: Config) -> tuple[object, ...]:
    """What the advertiser is built from: a change to any of it means a new advertiser."""
    return (
        config.mdns_enabled,
        config.mdns_name,
        config.port,
        tuple(config.mdns_interfaces),
        config.mdns_ipv6,
    )


def https_port_of(stack: Stack | None) -> int | None:
    """The port the hub answers on over HTTPS (advertised as `_https._tcp`), if it does."""
    served = stack.proxy.served if stack is not None else None
    return served.https_port if served is not None else None


class Advertising:
    """The daemon's one advertiser, or none."""

    def __init__(
        self,
        config: Config,
        timing: Timing,
        warn: WarnOnce,
        make: MakeAdvertiser = make_advertiser,
    ) -> None:
        self.config = config
        self.timing = timing
        self.warn = warn  # the supervisor's: a recovery makes the next failure news again
        self._make = make
        # Replaced only by the loop's thread; the control API's threads read it once per use.
        self.advertiser: AdvertiserLike | None = None

    def sync_once(self, hub_wanted: bool, https_port: int | None) -> None:
        """Start or stop advertising as the config and the owner's wish say.

        `hub_wanted`: the hub is meant to run. `https_port`: also advertised as `_https._tcp`
        by an advertiser started now (a running one keeps what it was built with).
        """
        want = self.config.mdns_enabled and hub_wanted
        if want and self.advertiser is None:
            advertiser: AdvertiserLike | None = None
            try:
                advertiser = self._make(self.config, self.timing, https_port)
                advertiser.start()
            except Exception as exc:  # mDNS is a convenience; the hub runs without it
                self.warn.warn("mdns", "mDNS advertising failed: %s", exc)
                if advertiser is not None:  # its sockets and pipe, not left to the next try
                    with contextlib.suppress(Exception):
                        advertiser.close()
                return
            self.advertiser = advertiser
        elif not want and self.advertiser is not None:
            self._close_advertiser()

    def reload(self, config: Config) -> None:
        """A changed setting the advertiser is built from: the next pass starts a new one."""
        changed = mdns_settings(config) != mdns_settings(self.config)
        self.config = config
        if changed:
            self._close_advertiser()

    def hostname(self) -> str | None:
        """The name claimed on the LAN (`jupyter.local`, or `jupyter-2.local` after a
        conflict); None while nothing is claimed."""
        advertiser = self.advertiser
        return advertiser.status().hostname if advertiser is not None else None

    def status(self) -> MdnsView | None:
        """For the daemon's status; None when nothing is advertised."""
        advertiser = self.advertiser
        if advertiser is None:
            return None
        status = advertiser.status()
        return MdnsView(
            state=status.state,
            hostname=status.hostname,
            addresses=tuple(status.addresses),
            service=status.service_name,
            error=status.last_error,
        )

    def _close_advertiser(self) -> None:
        advertiser, self.advertiser = self.advertiser, None
        if advertiser is not None:
            advertiser.close()  # goodbyes on the LAN

    def close(self) -> None:
        """Stop advertising (goodbyes sent). Safe to call more than once."""
        self._close_advertiser()


__all__ = ["AdvertiserLike", "Advertising", "https_port_of", "make_advertiser", "mdns_settings"]
