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
    def __init__(self, hostname: str, root_file: Path | None) -> None:
        self._hostname = hostname
        self._root_file = root_file
        super().__init__()

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        # Here, not as session.verify: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from
        # the environment override a session's own CA file (psf/requests#3829).
        if self._root_file is not None:
            kwargs["verify"] = str(self._root_file)
        return super().send(request, *args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = self._hostname
        kwargs["server_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def session_for(root_file: Path | None, hostname: str) -> requests.Session:
    """A session for URLs on this machine: HTTPS checked against `root_file` for `hostname`;
    without a root (a certificate of one's own, `tls_cert`) the system's trust store."""
    session = requests.Session()
    session.mount("https://", _PinnedName(hostname, root_file))
    return session
