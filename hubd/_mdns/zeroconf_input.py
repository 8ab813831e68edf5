"""A CPU budget for what python-zeroconf reads from the LAN.

zeroconf's listener parses every packet that reaches its sockets, and a stranger can send a
thousand packets a second, each costly to parse (bench/bench_mdns_flood.py: about 40 % of a
core without a budget, with zeroconf's own duplicate-packet filter defeated by changing the
message ID). zeroconf has no hook for this, so each of its listening transports gets, through
asyncio's public `set_protocol()`, a thin protocol in front of zeroconf's listener that hands
packets on while zeroconf's loop thread has CPU budget left this second (guard.CpuBudget), and
drops them unread for the rest of the second otherwise. A querier whose question is dropped
asks again (RFC 6762 section 5.2: after 1 s, then doubling), so a flood delays answers rather
than losing the name.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from hubd._mdns.guard import CpuBudget

if TYPE_CHECKING:
    from zeroconf import Zeroconf

_budgets: weakref.WeakKeyDictionary[Zeroconf, CpuBudget] = weakref.WeakKeyDictionary()


class BudgetedListener(asyncio.DatagramProtocol):
    """Passes datagrams to zeroconf's listener within the budget; everything else as is."""

    def __init__(self, inner: Any, budget: CpuBudget) -> None:
        self.inner = inner
        self._budget = budget

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self._budget.allows():
            return
        started = self._budget.start()
        try:
            self.inner.datagram_received(data, addr)
        finally:
            self._budget.charge(started)

    def error_received(self, exc: Exception) -> None:
        self.inner.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)


def limit_zeroconf_input(
    zc: Zeroconf, cpu_per_s: float, call_timeout_s: float, burst_s: float | None = None
) -> int:
    """Put a budget of `cpu_per_s` CPU seconds per second in front of each of zeroconf's
    listeners that has none yet (call again after zeroconf opens new sockets). Called from
    any thread but zeroconf's own; returns how many listeners were wrapped."""
    loop = zc.loop
    assert loop is not None
    shared = _budgets.setdefault(zc, CpuBudget(cpu_per_s, burst_s=burst_s))

    async def wrap() -> int:
        wrapped = 0
        for listener in zc.engine.protocols:
            if listener.transport is None:
                continue
            transport = listener.transport.transport
            if isinstance(transport.get_protocol(), BudgetedListener):
                continue
            transport.set_protocol(BudgetedListener(transport.get_protocol(), shared))
            wrapped += 1
        return wrapped

    return asyncio.run_coroutine_threadsafe(wrap(), loop).result(call_timeout_s)
