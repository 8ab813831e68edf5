"""What python-zeroconf publishes for us: the hub's DNS-SD service and the host's addresses.

Calls run on zeroconf's event loop and are waited for here (bounded by
`Timing.mdns_zeroconf_call_timeout_s`), so the worker thread knows each one is done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hubd._mdns import wire
from hubd._mdns.addresses import Selection
from hubd._mdns.claim import Claim
from hubd._mdns.report import Warn
from hubd._mdns.zeroconf_input import limit_zeroconf_input
from hubd.timing import Timing

if TYPE_CHECKING:  # imported for real only when needed: `import hubd.mdns` stays cheap
    from zeroconf import ServiceInfo, Zeroconf

log = logging.getLogger("hubd.mdns")

SERVICE_TYPE = "_http._tcp.local."
# With HTTPS (docs/https.md) the same instance is also a `_https._tcp` service on the HTTPS
# port; `_http._tcp` stays, pointing at the page that sends devices on to HTTPS.
HTTPS_SERVICE_TYPE = "_https._tcp.local."


class Publisher:
    def __init__(
        self, timing: Timing, ipv6: bool, warn: Warn, https_port: int | None = None
    ) -> None:
        self._timing = timing
        self._https_port = https_port
        self._https_info: ServiceInfo | None = None
        self._ipv6 = ipv6
        self._warn = warn
        self._zc: Zeroconf | None = None
        self._zc_interfaces: list[str | int] = []
        self._info: ServiceInfo | None = None

    def _wanted_interfaces(self, selection: Selection) -> list[str | int]:
        # One IPv4 address per link (zeroconf opens a socket per entry) and, for IPv6, the
        # interface index (IPv6 multicast is joined per interface).
        wanted: list[str | int] = []
        for link in selection.links:
            if link.ipv4:
                wanted.append(str(link.ipv4[0]))
            if link.ipv6 and self._ipv6:
                wanted.append(link.index)
        return wanted

    def open(self, selection: Selection) -> None:
        """Start zeroconf on the selection's links, or move it to them."""
        from zeroconf import Zeroconf

        wanted = self._wanted_interfaces(selection)
        if self._zc is None:
            self._zc = Zeroconf(interfaces=wanted)
            self._zc_interfaces = wanted
        elif wanted != self._zc_interfaces:
            self._zc.update_interfaces(wanted)
            self._zc_interfaces = wanted
        self._limit_input(self._zc)

    def register(self, claim: Claim) -> None:
        """Publish the claim's service and addresses (after `open`)."""
        from zeroconf import ServiceInfo

        info = ServiceInfo(
            SERVICE_TYPE,
            wire.name_text(claim.service),
            port=claim.port,
            properties=dict(claim.txt),
            server=wire.name_text(claim.host),
            addresses=[address.packed for address in claim.addresses],
        )
        https_info = None
        if self._https_port:
            # The same instance name under the other type: the host name (probed) is what
            # matters; a rival's identical `_https._tcp` instance is as unlikely as harmless.
            https_info = ServiceInfo(
                HTTPS_SERVICE_TYPE,
                wire.name_text(claim.service).replace(SERVICE_TYPE, HTTPS_SERVICE_TYPE),
                port=self._https_port,
                properties=dict(claim.txt),
                server=wire.name_text(claim.host),
                addresses=[address.packed for address in claim.addresses],
            )
        zc = self._zc
        assert zc is not None and zc.loop is not None

        async def register() -> None:
            # The names were probed already; zeroconf's own probe would only cover the service
            # name and cost another second. Its announcements go on in the background.
            await zc.async_register_service(info, cooperating_responders=True)
            if https_info is not None:
                await zc.async_register_service(https_info, cooperating_responders=True)

        future = asyncio.run_coroutine_threadsafe(register(), zc.loop)
        future.result(self._timing.mdns_zeroconf_call_timeout_s)
        self._info = info
        self._https_info = https_info

    def update(self, selection: Selection, claim: Claim) -> None:
        """New addresses for the published service, on the selection's links."""
        zc, info = self._zc, self._info
        assert zc is not None and zc.loop is not None and info is not None
        wanted = self._wanted_interfaces(selection)
        change_interfaces = wanted != self._zc_interfaces

        async def update() -> None:
            # On zeroconf's loop, so no answer is built from a half-updated address list;
            # addresses first, so the re-announce on a new socket carries the new ones.
            info.addresses = [address.packed for address in claim.addresses]
            if self._https_info is not None:
                self._https_info.addresses = info.addresses
            if change_interfaces:
                await zc.async_update_interfaces(wanted)
            await zc.async_update_service(info)
            if self._https_info is not None:
                await zc.async_update_service(self._https_info)

        future = asyncio.run_coroutine_threadsafe(update(), zc.loop)
        future.result(self._timing.mdns_zeroconf_call_timeout_s)
        self._zc_interfaces = wanted
        if change_interfaces:
            self._limit_input(zc)

    def _limit_input(self, zc: Zeroconf) -> None:
        # zeroconf_input.py: a CPU budget in front of zeroconf's listeners, new sockets too.
        limit_zeroconf_input(
            zc,
            self._timing.mdns_input_cpu_per_s,
            self._timing.mdns_zeroconf_call_timeout_s,
            self._timing.mdns_input_cpu_burst_s,
        )

    def unregister(self) -> None:
        """Withdraw the service, with zeroconf's goodbyes; best effort."""
        zc, info, https_info = self._zc, self._info, self._https_info
        if zc is not None and zc.loop is not None and info is not None:

            async def unregister() -> None:
                # Until the last of zeroconf's three goodbyes is out: its blocking
                # unregister_service() returns after the first, and a close() right after
                # it would drop the other two.
                await (await zc.async_unregister_service(info))
                if https_info is not None:
                    await (await zc.async_unregister_service(https_info))

            try:
                future = asyncio.run_coroutine_threadsafe(unregister(), zc.loop)
                future.result(self._timing.mdns_zeroconf_call_timeout_s)
            except Exception as exc:
                self._warn(f"unregister-{exc}", f"mDNS: goodbyes not sent: {exc}")
        self._info = None
        self._https_info = None

    def close(self) -> None:
        if self._zc is not None:
            try:
                self._zc.close()
            except Exception as exc:
                log.debug("mDNS: zeroconf close: %s", exc)
            self._zc = None
            self._zc_interfaces = []
