"""The front: a small container that holds the hub's published port and never restarts with
the proxy (docs/proxy.md).

It runs `front_server.py` (standard-library Python) from hubd's hub image, as nobody, on a
read-only file system with no capabilities, on the stack network only. Every connection to the
published port is piped to the container named `<stack>-proxy`; while that proxy is away, to
its standby `<stack>-proxy-standby` (proxy_standby.py); while neither answers the front keeps
trying for `front_proxy_wait_s` instead of refusing or resetting. It also holds
the alias the hub reaches the proxy's API by, and pipes that to the proxy too, so that hubd
can put a new proxy in place by renaming containers (stack/proxy_switch.py).

The front knows no secret: the proxy's token passes through it encrypted or not, unread.
Its spec hash leaves the image out: a hub upgrade does not recreate it (it keeps the image it
was created from, which Docker then keeps too). A new front (another port, a hubd whose front
program changed) is a gap of about a second, as only one container can publish a port.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import docker
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import StackError
from hubd.stack import front_server
from hubd.stack.containers import (
    revive,
    start_container,
    stop_gracefully,
)
from hubd.stack.naming import LABEL_SPEC, ROLE_FRONT, StackNames
from hubd.stack.part import ContainerPart
from hubd.stack.progress import Reporter
from hubd.stack.proxy_tls import HTTPS_PORT_IN_PROXY
from hubd.stack.settings import PROXY_API_PORT
from hubd.timing import Timing

log = logging.getLogger(__name__)

FRONT_SOURCE = Path(front_server.__file__).read_text()
# The port the front listens on inside its container, published as the hub's port; the
# proxy's public port is the same number inside the proxy's container.
FRONT_PORT = 8000
NOBODY = "65534:65534"


class Front(ContainerPart):
    """The front container of one stack."""

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        names: StackNames,
        reporter: Reporter,
        timing: Timing,
    ) -> None:
        super().__init__(client, config, names, reporter, timing)

    def spec(
        self, image: str, proxy_port: int, https_port: int | None = None
    ) -> tuple[dict[str, object], str]:
        """The front's create arguments and a hash of what matters in them (not the image).
        `https_port`: the proxy serves HTTPS too (hubd/stack/proxy_tls.py), published there;
        the front pipes its bytes unread, so TLS goes through it end to end."""
        proxies = (self.names.proxy_container, self.names.proxy_standby_container)

        def forward(listen: int, port: int) -> list[str]:
            # The proxy first; its standby while the proxy is away (proxy_standby.py).
            return ["--forward", f"{listen}=" + ",".join(f"{p}:{port}" for p in proxies)]

        command = [
            *forward(FRONT_PORT, proxy_port),
            *forward(PROXY_API_PORT, PROXY_API_PORT),
            f"--wait-s={self.timing.front_proxy_wait_s:g}",
            f"--retry-s={self.timing.front_proxy_retry_s:g}",
            f"--try-s={self.timing.front_proxy_try_s:g}",
        ]
        ports = {f"{FRONT_PORT}/tcp": (self.config.bind_address, self.config.port)}
        if https_port is not None:
            command += forward(HTTPS_PORT_IN_PROXY, HTTPS_PORT_IN_PROXY)
            ports[f"{HTTPS_PORT_IN_PROXY}/tcp"] = (self.config.bind_address, https_port)
        entrypoint = ["python3", "-I", "-c", FRONT_SOURCE]
        hashed = {
            "source": hashlib.sha256(FRONT_SOURCE.encode()).hexdigest(),
            "command": command,
            "port": self.config.port,
            "bind_address": self.config.bind_address,
            "api_alias": self.names.proxy_api_alias,
            "https_port": https_port,
        }
        spec_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
        create: dict[str, object] = {
            "image": image,
            "name": self.names.front_container,
            "entrypoint": entrypoint,
            "command": command,
            "labels": self.names.labels(ROLE_FRONT, **{LABEL_SPEC: spec_hash}),
            "network": self.names.network,
            # The hub reaches the proxy's API by this name: through the front, to whichever
            # container is the proxy now. People's networks do not have the front on them.
            "networking_config": {self.names.network: {"Aliases": [self.names.proxy_api_alias]}},
            "ports": ports,
            "user": NOBODY,
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "environment": {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
            # hubd alone restarts the front, as the hub and the proxy: see supervisor.py.
            "restart_policy": {"Name": "no"},
            "init": True,
            "detach": True,
        }
        return create, spec_hash

    @property
    def container_name(self) -> str:
        return self.names.front_container

    def ensure(self, image: str, proxy_port: int, https_port: int | None = None) -> str:
        """Make the front match its spec and run. Returns what was done."""
        create, spec_hash = self.spec(image, proxy_port, https_port)
        container = self.find()
        action = "unchanged"
        if container is not None and container.labels.get(LABEL_SPEC) != spec_hash:
            self.reporter.step(f"the front's configuration changed: recreating {container.name}")
            container.remove(force=True)
            container, action = None, "recreated"
        if container is None:
            self.reporter.step(f"creating the front container {self.names.front_container}")
            container = self.client.containers.create(**create)
            action = "created" if action == "unchanged" else action
        if container.status == "paused":
            container.unpause()
            return "unpaused"
        if container.status != "running":
            try:
                self._start(container)
            except StackError as exc:
                # Broken by hand (its network removed): a new one from the spec.
                self.reporter.step(f"{exc}: replacing {container.name}")
                container.remove(force=True)
                container = self.client.containers.create(**create)
                self._start(container)
                return "recreated"
            return "started" if action == "unchanged" else action
        return action

    def _start(self, container: Container) -> None:
        self.reporter.step(f"starting {container.name}")
        start_container(container, "front", self.config.port)

    def start_or_restart(self, restart: bool) -> None:
        """Bring a dead, hung or paused front back."""
        revive(self.find(), "front", restart, self._start)

    def stop(self) -> bool:
        return stop_gracefully(self.find(), self.timing.container_stop_timeout_s)


def publishes_port(container: Container | None) -> bool:
    """Whether a container publishes a port (the hub's or the proxy's of an earlier hubd)."""
    if container is None:
        return False
    return bool(container.attrs.get("HostConfig", {}).get("PortBindings"))


__all__ = ["FRONT_PORT", "Front", "publishes_port"]
