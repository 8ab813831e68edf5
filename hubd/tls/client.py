"""hubd's own requests to the hub over HTTPS: health probes and the hub's API.

hubd reaches the proxy on 127.0.0.1, which the leaf does not name (the root may not vouch for
loopback). So the session checks the certificate against hubd's root for the hub's `.local`
name (sent as SNI too), whatever address it connects to: a stranger's certificate on that port
fails as it would in a browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class _PinnedName(HTTPAdapter):
    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = self._hostname
        kwargs["server_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def session_for(root_file: Path | None, hostname: str) -> requests.Session:
    """A session for URLs on this machine: HTTPS checked against `root_file` for `hostname`;
    without a root (a certificate of one's own, `tls_cert`) the system's trust store."""
    session = requests.Session()
    if root_file is not None:
        session.verify = str(root_file)
    session.mount("https://", _PinnedName(hostname))
    return session
