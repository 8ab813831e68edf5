"""What the proxy is given for HTTPS, without an engine: ports, arguments, the port choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker

from hubd.config import Config
from hubd.stack.front import Front
from hubd.stack.https import Served, choose_https_port, https_url
from hubd.stack.naming import StackNames
from hubd.stack.progress import LogReporter
from hubd.stack.proxy import Proxy, proxy_public_url
from hubd.timing import Timing


def test_choose_https_port() -> None:
    assert choose_https_port(9443, None, True) == 9443
    assert choose_https_port(0, None, True) == 443
    assert choose_https_port(0, None, False) == 8443
    assert choose_https_port(0, 443, False) == 443  # ours already
    assert https_url("jupyter.local", 443) == "https://jupyter.local/"
    assert https_url("jupyter.local", 8443) == "https://jupyter.local:8443/"


class _NoImages:
    """What the spec asks of the engine: the proxy image's id (none here)."""

    class images:
        @staticmethod
        def get(name: str) -> Any:
            raise docker.errors.ImageNotFound(name)


def _proxy(served: Served | None) -> Proxy:
    timing = Timing()
    proxy = Proxy(_NoImages(), Config(), StackNames("hubd"), LogReporter(timing), timing)
    proxy.serve(served)
    return proxy


def test_the_proxy_spec_with_and_without_tls() -> None:
    plain, plain_hash = _proxy(None).spec()
    served = Served("CERT", "KEY", 443, "jupyter.local", None, Path("/x/root.crt"))
    tls, tls_hash = _proxy(served).spec()
    assert plain_hash != tls_hash
    # The proxy publishes nothing: the front holds both ports and pipes TLS through unread.
    assert "ports" not in tls and "ports" not in plain
    command: Any = tls["command"]
    assert "--port=8443" in command and any(a.startswith("--ssl-cert=") for a in command)
    # Neither the key nor the certificate travel in the spec (docker inspect shows it).
    assert "KEY" not in str(tls) and "CERT" not in str(tls)
    assert proxy_public_url(Config(), served) == "https://127.0.0.1/"
    assert "--ssl-key" not in str(plain["command"])


def test_the_front_publishes_the_https_port_when_the_proxy_serves_it() -> None:
    timing = Timing()
    front = Front(None, Config(), StackNames("hubd"), LogReporter(timing), timing)
    plain, plain_hash = front.spec("hub-image", 8000)
    tls, tls_hash = front.spec("hub-image", 8000, https_port=443)
    assert plain_hash != tls_hash
    assert plain["ports"] == {"8000/tcp": ("0.0.0.0", 8000)}
    assert tls["ports"] == {"8000/tcp": ("0.0.0.0", 8000), "8443/tcp": ("0.0.0.0", 443)}
    assert "8443=hubd-proxy:8443" in " ".join(map(str, tls["command"]))  # type: ignore[call-overload]
