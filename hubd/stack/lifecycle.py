"""The hub stack on Docker: its network and the parts that make it, brought up and down together.

`Stack` orchestrates; the parts are objects of their own: the images on their pins
(stack/stack_images.py), the front that publishes the port (stack/front.py), the proxy behind
it (stack/proxy.py) and the hub container (stack/hub.py). People's servers, the Swarm's nodes,
HTTPS and the status description are asked of the stack as a whole.

`up()` is idempotent: it compares what exists with what the config asks for and changes only
what differs (the hub, proxy and front containers carry a hash of their spec in a label). The
front and the proxy start first, and the hub never touches them. `down()` stops containers
and never removes a volume; only `purge()` does, and the CLI asks first.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import HubdError
from hubd.paths import resolve_paths
from hubd.stack import https
from hubd.stack.containers import (
    ContainerState,
    refuse_foreign,
    remove_quietly,
    stop_quietly,
)
from hubd.stack.docker_gate import ROLE_DOCKER_GATE
from hubd.stack.front import Front, publishes_port
from hubd.stack.hub import Hub
from hubd.stack.hubapi import HubAPI
from hubd.stack.naming import (
    LABEL_USER,
    ROLE_HUB_IMAGE,
    ROLE_NETWORK,
    ROLE_USER_DATA,
    ROLE_USER_SERVER,
    StackNames,
)
from hubd.stack.pins import PinStore
from hubd.stack.progress import LogReporter, Reporter
from hubd.stack.proxy import PROXY_PUBLIC_PORT, Proxy
from hubd.stack.proxy_standby import StandbyProxy
from hubd.stack.stack_images import StackImages
from hubd.stack.swarm.homes import manager_node_id
from hubd.stack.swarm.move_helper import remove_move_helpers
from hubd.stack.swarm.nodes import Nodes
from hubd.stack.swarm.services import remove_user_services, user_server, user_services
from hubd.status import HubContainer, NodeView, ProxyContainer, StackView, UserServer
from hubd.timing import Timing

log = logging.getLogger(__name__)


@dataclass
class UpResult:
    url: str
    changes: list[str] = field(default_factory=list)
    hub_container_id: str = ""
    # What was done to the hub container: unchanged, created, recreated, started, unpaused.
    hub_action: str = "unchanged"
    # User images that could not be pulled (the hub runs without them).
    image_problems: list[str] = field(default_factory=list)


# The hub's and the proxy's container state are the same thing.
HubContainerState = ContainerState


class Stack:
    """One stack: brings its parts (`images`, `front`, `proxy`, `hub`) up and down together
    and answers for the whole (people's servers, the Swarm's nodes, HTTPS, the status)."""

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        *,
        reporter: Reporter | None = None,
        timing: Timing,
        pins: PinStore | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.names = StackNames(config.stack_name)
        self.timing = timing
        self.reporter: Reporter = reporter or LogReporter(self.timing)
        self.images = StackImages(client, config, self.names, self.reporter, self.timing, pins)
        self.proxy = Proxy(client, config, self.names, self.reporter, self.timing)
        self.standby = StandbyProxy(client, config, self.names, self.reporter, self.timing)
        self.front = Front(client, config, self.names, self.reporter, self.timing)
        self.hub = Hub(
            client, config, self.names, self.reporter, self.timing, self.proxy, self.front
        )
        # hubd's CA and the leaf live here (hubd/tls/store.py).
        self.state_dir = state_dir or resolve_paths().state_dir
        # The names mDNS holds right now (the daemon sets them); the leaf covers them.
        self.mdns_hostnames: tuple[str, ...] = ()
        if https.tls_enabled(config):
            # What is on disk, so probes and status speak HTTPS from the start; made or
            # renewed by up() and the daemon's refresh_tls(), never by a command that looks.
            self.prepare_tls(make=False)

    # ------------------------------------------------------------------ addresses

    @property
    def local_url(self) -> str:
        return self.hub.local_url

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of hubd's root, which devices compare ("" without one)."""
        return self.proxy.served.fingerprint if self.proxy.served else ""

    # ------------------------------------------------------------------ HTTPS

    def prepare_tls(self, make: bool = True) -> https.Served | None:
        """Make the root and a leaf that fits the hub's names and addresses now (or read one's
        own certificate) and have the proxy serve it."""
        if not https.tls_enabled(self.config):
            self.proxy.serve(None)
            self.standby.serve(None)
            return None
        from hubd.mdns import lan_addresses

        addresses = (
            lan_addresses(self.config.mdns_interfaces, self.config.mdns_ipv6) if make else ()
        )
        published = self.proxy.served.https_port if self.proxy.served else None
        port = https.choose_https_port(
            self.config.https_port,
            published or self._published_https_port(),
            self.config.https_port != 0
            or https.port_free(self.config.bind_address, https.HTTPS_PORT_STANDARD),
        )
        if (
            make
            and not self.config.https_port
            and port != https.HTTPS_PORT_STANDARD
            and not published
        ):
            self.reporter.step(
                f"port {https.HTTPS_PORT_STANDARD} is in use here: HTTPS on port {port} "
                "(set https_port to choose)"
            )
        served = https.prepare(
            self.config, self.state_dir, self.timing, port, self.mdns_hostnames, addresses, make
        )
        self.proxy.serve(served)
        self.standby.serve(served)
        return served

    def refresh_tls(self) -> bool:
        """The daemon's periodic check: a leaf that no longer fits (an address changed, the
        mDNS name moved, it expires soon) is replaced and handed to the running proxy without
        a restart. True when the proxy got a new one."""
        if not https.tls_enabled(self.config):
            return False
        self.prepare_tls()
        # The standby first: the proxy's new certificate is checked through the front, and
        # the standby must not serve the old one after it.
        self.standby.sync_tls()
        return self.proxy.sync_tls()

    def _published_https_port(self) -> int | None:
        """The HTTPS port the stack publishes already (it holds 443, so 443 is not "free" but
        ours)."""
        from hubd.stack.proxy_tls import HTTPS_PORT_IN_PROXY

        # The front publishes it; a proxy of an earlier hubd did so itself.
        for container in (self.front.find(), self.proxy.find()):
            if container is None:
                continue
            bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
            for binding in bindings.get(f"{HTTPS_PORT_IN_PROXY}/tcp") or []:
                with contextlib.suppress(TypeError, ValueError):
                    return int(binding.get("HostPort"))
        return None

    # ------------------------------------------------------------------ up

    def up(self, wait: bool = True, recreate: bool = False) -> UpResult:
        """Bring the stack to what the config asks for, on the pinned image versions: a tag
        that moved since (someone pulled `:latest`) is not followed; `hubd upgrade` does that.

        `wait=False` returns once the hub container runs (the daemon watches its start
        itself); `recreate` replaces the hub container even when its spec is unchanged (a
        container broken by hand: its network removed, files deleted)."""
        changes: list[str] = []
        if self.ensure_network():
            changes.append(f"created network {self.names.network}")
        if self.hub.ensure_volume():
            changes.append(f"created volume {self.names.hub_data_volume}")
        images = self.images.resolve()
        changes += images.changes
        if recreate:
            self.hub.remove_to_recreate()
        if self.images.ensure_proxy_image():
            changes.append(f"pulled {self.config.proxy_image}")
        changes += self._ensure_way_in(images.hub_image)
        container, action = self.hub.ensure(images.hub_image, images.user_images)
        if recreate and action == "created":
            action = "recreated"
        if action != "unchanged":
            changes.append(f"{action} container {self.names.hub_container}")
        if wait:
            self.hub.wait_healthy()
        served = self.proxy.served
        return UpResult(
            # Over HTTPS the name the certificate carries (127.0.0.1 is not in it).
            url=https.https_url(served.hostname, served.https_port) if served else self.local_url,
            changes=changes,
            hub_container_id=container.id or "",
            hub_action=action,
            image_problems=images.problems,
        )

    def _ensure_way_in(self, image: str) -> list[str]:
        """The front and the proxy, up and answering before the hub (it shares the proxy's
        token); containers of an earlier hubd's layout make way for them. What was done."""
        changes: list[str] = []
        if self.hub.retire_single_container():
            changes.append(f"moved the proxy out of {self.names.hub_container}")
        if https.tls_enabled(self.config):
            self.prepare_tls()
            # Before ensure(): a stopped proxy (after `down`, a restore) starts with the new
            # certificate, a running one gets it without a restart.
            self.standby.sync_tls()
            if self.proxy.sync_tls():
                changes.append("gave the proxy a new certificate")
        token = self.proxy.token(self.hub.find())
        if self._retire_publishing_proxy():
            changes.append(f"moved the port from {self.names.proxy_container} to the front")
        https_port = self.proxy.served.https_port if self.proxy.served else None
        front_action = self.front.ensure(image, PROXY_PUBLIC_PORT, https_port)
        if front_action != "unchanged":
            changes.append(f"{front_action} container {self.names.front_container}")
        action = self.proxy.ensure(token, switch=self.front.state().running)
        if action != "unchanged":
            changes.append(f"{action} container {self.names.proxy_container}")
        self.proxy.wait_healthy()
        if action != "unchanged" and self.hub.state().running:
            # A new proxy knows the routes it was given; a server started meanwhile is added.
            self.refresh_routes()
        # After the proxy: a new spec recreates the standby while the proxy serves.
        standby_action = self.standby.ensure(token)
        if standby_action != "unchanged":
            changes.append(f"{standby_action} container {self.names.proxy_standby_container}")
        return changes

    def ensure_network(self) -> bool:
        if self.client.networks.list(names=[self.names.network], filters=self.names.filters()):
            return False
        for network in self.client.networks.list(names=[self.names.network]):
            refuse_foreign("network", network, self.names.stack)
        self.reporter.step(f"creating network {self.names.network}")
        self.client.networks.create(
            self.names.network, driver="bridge", labels=self.names.labels(ROLE_NETWORK)
        )
        return True

    def _retire_publishing_proxy(self) -> bool:
        """A proxy of an earlier hubd published the port itself: it goes, so that the front
        can take the port. People are cut off for a few seconds, this once (only one
        container can publish a port)."""
        proxy = self.proxy.find()
        if not publishes_port(proxy):
            return False
        assert proxy is not None
        self.reporter.step(
            f"the front takes the port over from {proxy.name}: people are cut off for a few "
            "seconds, this once"
        )
        remove_quietly(proxy, force=True)
        return True

    def swarm_node_id(self) -> str | None:
        """This engine's node when it is a Swarm manager (`hubd node add` made it one): then
        people's servers are Swarm services. Asked each time, as `node add` changes it."""
        return manager_node_id(self.client)

    @property
    def nodes(self) -> Nodes:
        """The machines of the hub's Swarm (`hubd node`)."""
        return Nodes(self.client, self.names, self.timing)

    # ------------------------------------------------------------------ users' servers

    def containers(self, role: str | None = None) -> list[Container]:
        """This stack's containers, running or not.

        Users' servers remove themselves once stopped, so one may vanish between the listing
        and its inspection (docker-py's `containers.list` then raises): it is simply gone.
        """
        found = []
        for summary in self.client.api.containers(all=True, filters=self.names.filters(role)):
            try:
                found.append(self.client.containers.get(summary["Id"]))
            except NotFound:
                continue
        return found

    def user_servers(self) -> tuple[UserServer, ...]:
        servers = []
        if self.swarm_node_id() is not None:
            servers += [user_server(service) for service in user_services(self.client, self.names)]
        for container in self.containers(ROLE_USER_SERVER):
            env = dict(
                item.split("=", 1)
                for item in container.attrs["Config"].get("Env") or []
                if "=" in item
            )
            servers.append(
                UserServer(
                    user=env.get("JUPYTERHUB_USER", container.name),
                    container=container.name or "",
                    running=container.status == "running",
                    status=container.status,
                )
            )
        return tuple(servers)

    # ------------------------------------------------------------------ the hub's API

    def hub_api(self) -> HubAPI:
        """The running hub's REST API as hubd's own service (Hub.api)."""
        return self.hub.api()

    # ------------------------------------------------------------------ the proxy

    def recover_proxy(self, restart: bool) -> None:
        """Bring a dead (start) or hung (restart) proxy back, then have the hub give it every
        route at once: a new proxy knows none, and JupyterHub itself would only notice after
        minutes. A hub that is down re-adds them anyway when it starts."""
        began = time.monotonic()
        self.proxy.start_or_restart(restart)
        self.proxy.wait_healthy()
        answering = time.monotonic()
        if self.refresh_routes():
            log.info(
                "the proxy is back (answering after %.2f s, routes restored after %.2f s)",
                answering - began,
                time.monotonic() - began,
            )

    def recover_standby(self) -> str:
        """Bring a missing, dead or paused standby proxy back (made anew when missing, with
        the proxy's token). What was done."""
        return self.standby.ensure(self.proxy.token(self.hub.find()))

    def recover_front(self, restart: bool) -> None:
        """Bring a dead (start) or hung (restart) front back. The proxy and its routes were
        not touched: people are served again as soon as it listens."""
        began = time.monotonic()
        self.front.start_or_restart(restart)
        self.proxy.wait_healthy()
        log.info("the front is back (answering after %.2f s)", time.monotonic() - began)

    def hung_part(self) -> str:
        """Which of the two on the way in stopped answering: "proxy" unless the proxy
        answers when asked past the front."""
        front = self.front.state()
        if front.status == "paused":
            return "front"
        return "front" if self.proxy.answers_directly() else "proxy"

    def refresh_routes(self) -> bool:
        try:
            self.hub_api().refresh_proxy_routes()
        except (HubdError, DockerException) as exc:
            log.info("the hub will restore the proxy's routes when it is up (%s)", exc)
            return False
        return True

    # ------------------------------------------------------------------ down, purge

    def down(self) -> list[str]:
        """Stop the hub, the proxy and users' servers. Volumes (everyone's data) stay."""
        done = []
        if self.hub.stop():
            done.append(f"stopped {self.names.hub_container}")
        if self.proxy.stop():
            done.append(f"stopped {self.names.proxy_container}")
        if self.standby.stop():
            done.append(f"stopped {self.names.proxy_standby_container}")
        if self.front.stop():
            done.append(f"stopped {self.names.front_container}")
        for server in self.containers(ROLE_USER_SERVER):
            self.reporter.step(f"stopping {server.name}")
            stop_quietly(server, self.timing.container_stop_timeout_s)
            # DockerSpawner's containers remove themselves once stopped (auto-remove); older
            # ones may not, so do as DockerSpawner would.
            remove_quietly(server)
            done.append(f"stopped {server.name}")
        if self.swarm_node_id() is not None:
            # A service has no "stopped": removing it stops the server, as a container's
            # auto-remove does. The person's volume stays on its node.
            for name in remove_user_services(self.client, self.names):
                done.append(f"stopped {name}")
            # A move cut short (hubd killed mid-copy): its helpers stop too; the person's
            # home label had not moved, so their old volume is still the one in use.
            for name in remove_move_helpers(self.client, self.names):
                done.append(f"removed {name}")
        for gate in self.containers(ROLE_DOCKER_GATE):
            if gate.status in ("running", "paused", "restarting"):
                stop_quietly(gate, self.timing.container_stop_timeout_s)
                done.append(f"stopped {gate.name}")
        return done

    def purge(self) -> list[str]:
        """Remove every object of this stack, data volumes included. The CLI confirms first."""
        removed = self.down()
        for container in self.containers():
            remove_quietly(container, force=True)
            removed.append(f"removed container {container.name}")
        # Users' servers remove themselves once stopped; their volumes are in use until then.
        deadline = time.monotonic() + self.timing.container_stop_timeout_s
        while self.containers(ROLE_USER_SERVER) and time.monotonic() < deadline:
            time.sleep(self.timing.container_gone_poll_s)
        for volume in self.client.volumes.list(filters=self.names.filters()):
            volume.remove(force=True)
            removed.append(f"removed volume {volume.name}")
        for network in self.client.networks.list(filters=self.names.filters()):
            network.remove()
            removed.append(f"removed network {network.name}")
        for image in self.client.images.list(filters=self.names.filters(ROLE_HUB_IMAGE)):
            try:
                self.client.images.remove(image.id, force=True)
                removed.append(f"removed image {', '.join(image.tags) or image.short_id}")
            except DockerException as exc:
                log.warning("could not remove image %s: %s", image.short_id, exc)
        return removed

    def user_volumes(self) -> dict[str, str]:
        """User name -> volume name, for volumes hubd made."""
        return {
            (volume.attrs.get("Labels") or {}).get(LABEL_USER, ""): volume.name
            for volume in self.client.volumes.list(filters=self.names.filters(ROLE_USER_DATA))
        }

    # ------------------------------------------------------------------ status

    def describe(self, healthy: bool | None = None) -> StackView:
        """The hub and users' servers as the engine shows them; `healthy` is probed unless
        the caller already knows (the daemon probes on its own schedule)."""
        hub = self.hub.state()
        uptime = None
        if hub.running and hub.started_at is not None:
            uptime = (datetime.now(timezone.utc) - hub.started_at).total_seconds()
        if healthy is None:
            healthy = hub.running and self.hub.is_healthy()
        proxy = self.proxy.state()
        front = self.front.state()
        return StackView(
            hub=HubContainer(
                exists=hub.exists,
                status=hub.status,
                healthy=healthy,
                container_id=hub.container_id[:12],
                image=hub.image,
                uptime_s=uptime,
            ),
            proxy=_way_in(proxy),
            standby=_way_in(self.standby.state()),
            front=_way_in(front),
            local_url=self.local_url,
            servers=self.user_servers(),
            nodes=self._node_views(),
            https_port=self.proxy.served.https_port if self.proxy.served else None,
            fingerprint=self.fingerprint,
        )

    def _node_views(self) -> tuple[NodeView, ...]:
        """The Swarm's machines; none when the manager cannot list them right now (the
        rest of the status still answers)."""
        try:
            return self.nodes.views()
        except APIError as exc:
            log.debug("status: could not list the Swarm's nodes: %s", exc)
            return ()


def _way_in(state: ContainerState) -> ProxyContainer:
    return ProxyContainer(
        exists=state.exists,
        status=state.status,
        container_id=state.container_id[:12],
        image=state.image,
    )


__all__ = ["ContainerState", "HubContainerState", "Stack", "UpResult"]
