"""The standby proxy: a second configurable-http-proxy that takes people's connections the
moment the proxy goes away (docs/proxy.md).

It is the proxy's twin: the same spec, token, certificate and people's networks, and the same
routing table (a file on a volume both mount, proxy_routes.py). The front (front_server.py)
connects to the proxy first and, when that one is not there (killed, crashed, restarting,
being replaced), to the standby at once. So a notebook whose websocket dropped with the proxy
reconnects within a moment, without waiting for node to start again: on a loaded machine that
took 3-28 s, and JupyterLab's next try after a failed one comes 10-30 s later.

Connections stay on the container they were made to: once the proxy is back, new ones go to it
again while the standby's keep running. The standby never takes the proxy's name: hubd brings
the proxy back as before (supervisor.py), and the standby is supervised for death and pauses.
A new spec recreates it (the proxy serves meanwhile), after the proxy's own switch.
"""

from __future__ import annotations

from hubd.stack.https import Served
from hubd.stack.naming import ROLE_PROXY_STANDBY
from hubd.stack.proxy import Proxy


class StandbyProxy(Proxy):
    """The standby proxy container of one stack."""

    role = ROLE_PROXY_STANDBY
    switches = False

    @property
    def container_name(self) -> str:
        return self.names.proxy_standby_container

    def _wait_serving(self, served: Served) -> None:
        # The only way to it from here is the front's fallback, taken while the proxy is
        # away: nothing to wait for. It reloads the certificate on the signal as the proxy
        # does.
        return None


__all__ = ["StandbyProxy"]
