"""A planned proxy switch without a gap: a new image, new options, an upgrade (docs/proxy.md).

1. a new proxy container beside the running one (`<stack>-proxy-next`), with the running
   one's routing table copied in (proxy_routes.py), started and listening;
2. the running proxy renamed away (`<stack>-proxy-old`), the new one renamed to the proxy's
   name: the front (front.py) finds the proxy by name at each connection, and Docker's DNS
   follows a rename at once, so new connections go to the new proxy, with routes;
3. the old proxy keeps serving what it has in flight for `proxy_switch_drain_s`, then goes:
   its websockets are cut and reconnect at once, to the new one;
4. the caller has the hub re-add every route (a server started during the switch).

A switch cut short (hubd killed) is tidied by the next `up`: a new proxy that had not taken the
name yet is removed, one that had is kept, and an old one is removed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from hubd.errors import HubUnhealthy
from hubd.stack.containers import remove_quietly
from hubd.stack.proxy_routes import LISTENING_JS
from hubd.stack.user_networks import join_user_networks

if TYPE_CHECKING:
    from hubd.stack.proxy import Proxy

log = logging.getLogger(__name__)


class ProxySwitch:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.names = proxy.names

    def switch(self, old: Container, token: str) -> Container:
        from hubd.stack.proxy import PROXY_PUBLIC_PORT, PROXY_USER_ID

        proxy, reporter = self.proxy, self.proxy.reporter
        self._remove(self.names.proxy_next_container)
        new = proxy._create(
            token, routes=proxy.routing_table(old), name=self.names.proxy_next_container
        )
        try:
            reporter.step(f"starting {new.name} beside {old.name}")
            proxy._start(new)
            deadline_ms = str(int(proxy.timing.proxy_ready_deadline_s * 1000))
            listening = new.exec_run(
                ["node", "-e", LISTENING_JS, deadline_ms, str(PROXY_PUBLIC_PORT)],
                user=str(PROXY_USER_ID),
            )
            if listening.exit_code != 0:
                new.reload()
                logs = bytes(new.logs(tail=15)).decode(errors="replace")
                raise HubUnhealthy(
                    f"the new proxy did not start listening ({new.status}); its last lines:\n"
                    + logs
                )
        except BaseException:
            # The running proxy was not touched: it goes on serving.
            remove_quietly(new, force=True)
            raise
        reporter.step(f"switching the front to {new.name}")
        self._remove(self.names.proxy_old_container)
        old.rename(self.names.proxy_old_container)
        new.rename(self.names.proxy_container)
        # A person's network made while the new proxy was starting (a spawn meanwhile).
        join_user_networks(proxy.client, self.names, new)
        time.sleep(proxy.timing.proxy_switch_drain_s)
        remove_quietly(old, force=True)
        return new

    def tidy(self) -> None:
        """Finish or undo a switch that was cut short."""
        current = self.proxy.find()
        pending = self.proxy.find(self.names.proxy_next_container)
        if pending is not None:
            if current is None:
                log.info("finishing a proxy switch that was cut short")
                pending.rename(self.names.proxy_container)
            else:
                remove_quietly(pending, force=True)
        self._remove(self.names.proxy_old_container)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(NotFound, APIError):
            container = self.proxy.find(name)
            if container is not None:
                remove_quietly(container, force=True)


__all__ = ["ProxySwitch"]
