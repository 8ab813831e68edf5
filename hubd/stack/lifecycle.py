"""The hub stack on Docker: network, hub data volume, proxy and hub containers, users' servers.

`up()` is idempotent: it compares what exists with what the config asks for and changes only
what differs (the hub, proxy and front containers carry a hash of their spec in a label). The
front (stack/front.py) publishes the port and pipes it to the proxy (stack/proxy.py); both
start first, and the hub never touches them. `down()` stops
containers and never removes a volume; only `purge()` does, and the CLI asks first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import HubdError, HubUnhealthy, ImageError, PortInUse, StackError
from hubd.paths import resolve_paths
from hubd.stack import https
from hubd.stack.containers import (
    ContainerState,
    bring_up,
    container_state,
    http_ok,
    read_file,
    refuse_foreign,
    remove_quietly,
    start_container,
    tar_files,
)
from hubd.stack.docker_gate import (
    ROLE_DOCKER_GATE,
    ensure_gate,
    gate_container_name,
    hub_gate_mount,
    start_gate,
)
from hubd.stack.engine import engine_of
from hubd.stack.front import Front, publishes_port
from hubd.stack.hubapi import HubAPI
from hubd.stack.images import (
    LABEL_BASE_ID,
    LABEL_BASE_REF,
    ensure_hub_image,
    ensure_user_images,
    image_id,
    image_present,
    pull_image,
)
from hubd.stack.naming import (
    LABEL_SPEC,
    LABEL_USER,
    ROLE_HUB,
    ROLE_HUB_DATA,
    ROLE_HUB_IMAGE,
    ROLE_NETWORK,
    ROLE_USER_DATA,
    ROLE_USER_SERVER,
    StackNames,
)
from hubd.stack.pins import ImagePins, PinStore
from hubd.stack.progress import LogReporter, Reporter
from hubd.stack.proxy import PROXY_PUBLIC_PORT, Proxy, proxy_public_url
from hubd.stack.settings import (
    HUB_DATA_DIR,
    HUB_WORK_DIR,
    PROXY_TOKEN_FILE,
    SETTINGS_DIR,
    hub_settings,
)
from hubd.stack.subnets import choose_block
from hubd.stack.swarm.homes import local_node_id, swarm_manager
from hubd.stack.swarm.images import node_image_refs
from hubd.stack.swarm.move_helper import remove_move_helpers
from hubd.stack.swarm.nodes import Nodes
from hubd.stack.swarm.services import remove_user_services, user_server, user_services
from hubd.stack.user_networks import join_user_networks, remove_idle_user_networks
from hubd.stack.volume_trust import check_volume
from hubd.status import HubContainer, NodeView, ProxyContainer, StackView, UserServer
from hubd.timing import Timing

log = logging.getLogger(__name__)

SERVICE_TOKEN_PATH = f"{HUB_DATA_DIR}/hubd-service-token"
# Runtime state starts fresh at every start of the hub: its working directory (where
# JupyterHub writes pid files) and /tmp are tmpfs; what must last is on the data volume.
HUB_TMPFS = {HUB_WORK_DIR: "rw,nosuid,nodev,mode=0755", "/tmp": "rw,nosuid,nodev"}
HUB_COMMAND = ["jupyterhub", "-f", "/usr/local/lib/hubd/jupyterhub_config.py"]


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
        # Without a pin store (throwaway stacks in tests) images are used as their tags say.
        self.pins = pins
        self.proxy = Proxy(client, config, self.names, self.reporter, self.timing)
        self.front = Front(client, config, self.names, self.reporter, self.timing)
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
        return proxy_public_url(self.config, self.proxy.served)

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
        return served

    def refresh_tls(self) -> bool:
        """The daemon's periodic check: a leaf that no longer fits (an address changed, the
        mDNS name moved, it expires soon) is replaced and handed to the running proxy without
        a restart. True when the proxy got a new one."""
        if not https.tls_enabled(self.config):
            return False
        self.prepare_tls()
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

    @property
    def health_url(self) -> str:
        return self.local_url + "hub/health"

    @functools.cached_property
    def engine_info(self) -> dict[str, Any]:
        return dict(self.client.info())

    @functools.cached_property
    def engine_memory_bytes(self) -> int:
        """The engine's memory (Docker Desktop: its VM's), which sizes default limits."""
        return int(self.engine_info.get("MemTotal") or 0)

    @functools.cached_property
    def engine_cpus(self) -> int:
        """The engine's CPUs, which size how many servers start at once (capacity.py)."""
        return int(self.engine_info.get("NCPU") or 1)

    @functools.cached_property
    def user_network_block(self) -> str:
        """Where people's networks take their /29s (subnets.py), fixed for this Stack."""
        return choose_block(self.client, self.names.stack, self.config.user_network_block)

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
        if self.ensure_hub_volume():
            changes.append(f"created volume {self.names.hub_data_volume}")
        pins = self.pins.load() if self.pins else ImagePins()
        if pins.hub_base_ref not in ("", self.config.hub_base_image) and self._usable(
            pins.hub_image
        ):
            # Another JupyterHub may need a database migration: that is an upgrade's job,
            # behind its health gate. Until then the pinned hub keeps running.
            image, built = pins.hub_image, False
            changes.append(
                f"kept the hub on {pins.hub_base_ref}: `hubd upgrade` switches to "
                f"{self.config.hub_base_image}"
            )
        else:
            image, built = ensure_hub_image(
                self.client,
                self.names,
                self.config.hub_base_image,
                self.reporter,
                base_id=pins.hub_base_for(self.config.hub_base_image),
                build_timeout_s=self.timing.image_build_timeout_s,
            )
        if built:
            changes.append(f"built image {image}")
        wanted = {ref: pins.user_images.get(ref, "") for ref in self.user_image_refs()}
        missing = [ref for ref, pinned in wanted.items() if not self._usable(pinned)]
        pulled, problems = ensure_user_images(self.client, missing, self.reporter)
        changes += [f"pulled {ref}" for ref in pulled]
        for problem in problems:
            # The hub itself does not need these: it starts, and only spawns with this image
            # fail until it is there. Said here, in `hubd status` and in the tray.
            self.reporter.step(f"warning: {problem}")
        user_images: dict[str, str] = {}
        for ref, pinned in wanted.items():
            if self._usable(pinned):
                user_images[ref] = pinned
            else:
                # An image that could not be pulled is left unpinned (spawns name it as is).
                with contextlib.suppress(ImageError, APIError):
                    user_images[ref] = image_id(self.client, ref)
        self.save_pins(image, user_images)
        if recreate:
            self.remove_hub_container()
        # The proxy is as necessary as the hub: an image that cannot be pulled stops `up`.
        if not image_present(self.client, self.config.proxy_image):
            pull_image(self.client, self.config.proxy_image, self.reporter)
            changes.append(f"pulled {self.config.proxy_image}")
        if self._retire_single_container_hub():
            changes.append(f"moved the proxy out of {self.names.hub_container}")
        if https.tls_enabled(self.config):
            self.prepare_tls()
            # Before ensure(): a stopped proxy (after `down`, a restore) starts with the new
            # certificate, a running one gets it without a restart.
            if self.proxy.sync_tls():
                changes.append("gave the proxy a new certificate")
        token = self.proxy.token(self.find_hub())
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
        if action != "unchanged" and self.hub_state().running:
            # A new proxy knows the routes it was given; a server started meanwhile is added.
            self.refresh_routes()
        container, action = self.ensure_hub_container(image, user_images)
        if recreate and action == "created":
            action = "recreated"
        if action != "unchanged":
            changes.append(f"{action} container {self.names.hub_container}")
        if wait:
            self.wait_healthy()
        served = self.proxy.served
        return UpResult(
            # Over HTTPS the name the certificate carries (127.0.0.1 is not in it).
            url=https.https_url(served.hostname, served.https_port) if served else self.local_url,
            changes=changes,
            hub_container_id=container.id or "",
            hub_action=action,
            image_problems=problems,
        )

    def remove_hub_container(self) -> None:
        container = self.find_hub()
        if container is None:
            return
        self.reporter.step(f"recreating {container.name}")
        remove_quietly(container, force=True)

    def user_image_refs(self) -> list[str]:
        return list(dict.fromkeys([self.config.user_image, *self.config.allowed_images]))

    def _usable(self, pinned_id: str) -> bool:
        return bool(pinned_id) and image_present(self.client, pinned_id)

    def pins_for(self, hub_image: str, user_images: dict[str, str]) -> ImagePins:
        labels = self.client.images.get(hub_image).labels or {}
        return ImagePins(
            hub_base_ref=labels.get(LABEL_BASE_REF, self.config.hub_base_image),
            hub_base_id=labels.get(LABEL_BASE_ID, ""),
            hub_image=hub_image,
            user_images=dict(user_images),
        )

    def save_pins(self, hub_image: str, user_images: dict[str, str]) -> None:
        if self.pins is None:
            return
        pins = self.pins_for(hub_image, user_images)
        if pins != self.pins.load():
            self.pins.save(pins)

    def ensure_network(self) -> bool:
        if self.client.networks.list(names=[self.names.network], filters=self.names.filters()):
            return False
        self._refuse_foreign("network", self.client.networks.list(names=[self.names.network]))
        self.reporter.step(f"creating network {self.names.network}")
        self.client.networks.create(
            self.names.network, driver="bridge", labels=self.names.labels(ROLE_NETWORK)
        )
        return True

    def ensure_hub_volume(self) -> bool:
        try:
            volume = self.client.volumes.get(self.names.hub_data_volume)
        except NotFound:
            self.reporter.step(f"creating volume {self.names.hub_data_volume}")
            self.client.volumes.create(
                self.names.hub_data_volume, labels=self.names.labels(ROLE_HUB_DATA)
            )
            return True
        self._refuse_foreign("volume", [volume])
        # The hub runs as root in its container: never on a volume that is a host folder.
        check_volume(self.client, self.names, volume.name, (ROLE_HUB_DATA,))
        return False

    def _refuse_foreign(self, kind: str, objects: list[Any]) -> None:
        for obj in objects:
            refuse_foreign(kind, obj, self.names.stack)

    def _retire_single_container_hub(self) -> bool:
        """A stack of an earlier hubd ran the proxy inside the hub, whose container published
        the port. Remove that container (accounts live on the data volume, people's servers
        keep running: the hub never stops them) so that the proxy can take the port."""
        container = self.find_hub()
        if container is None or not container.attrs.get("HostConfig", {}).get("PortBindings"):
            return False
        self.reporter.step(f"moving the proxy out of {container.name} into its own container")
        self._stop(container)
        remove_quietly(container, force=True)
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

    def hub_spec(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The hub container's create arguments and a hash that changes when they do.

        `upgrade_db` (only `hubd upgrade` sets it, after backing the database up) lets the new
        hub migrate the database schema; it is not hashed, as it changes nothing once done.
        """
        settings = self._hub_settings(user_images)
        # DockerSpawner reaches the engine only through the docker gate (docker_gate.py).
        gate_volumes, gate_environment = hub_gate_mount(self.names)
        spec = {
            "image": image,
            "settings": settings,
            "docker_gate": gate_volumes,
            "tmpfs": HUB_TMPFS,
        }
        spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        create = {
            "image": image,
            "name": self.names.hub_container,
            "labels": self.names.labels(ROLE_HUB, **{LABEL_SPEC: spec_hash}),
            "network": self.names.network,
            # No published port: people reach the hub through the proxy only.
            "tmpfs": HUB_TMPFS,
            "volumes": {
                self.names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"},
                **gate_volumes,
            },
            "environment": {"HUBD_SETTINGS": f"{SETTINGS_DIR}/settings.json", **gate_environment},
            "command": [*HUB_COMMAND, "--upgrade-db"] if upgrade_db else None,
            # hubd alone restarts the hub: a Docker restart policy would race with it.
            "restart_policy": {"Name": "no"},
            # tini as PID 1 reaps the hub's services (the idle culler) and forwards signals.
            "init": True,
            "detach": True,
        }
        return create, spec_hash

    def _hub_settings(self, user_images: dict[str, str] | None) -> dict[str, Any]:
        return hub_settings(
            self.config,
            self.names,
            self.timing,
            user_images,
            engine_memory_bytes=self.engine_memory_bytes,
            swarm_node_id=self.swarm_node_id(),
            engine_cpus=self.engine_cpus,
            user_network_block=self.user_network_block,
        )

    def swarm_node_id(self) -> str | None:
        """This engine's node when it is a Swarm manager (`hubd node add` made it one): then
        people's servers are Swarm services. Asked each time, as `node add` changes it."""
        return local_node_id(self.client) if swarm_manager(self.client) else None

    @property
    def nodes(self) -> Nodes:
        """The machines of the hub's Swarm (`hubd node`)."""
        return Nodes(self.client, self.names, self.timing)

    def find_hub(self) -> Container | None:
        try:
            container = self.client.containers.get(self.names.hub_container)
        except NotFound:
            return None
        self._refuse_foreign("container", [container])
        return container

    def hub_state(self) -> ContainerState:
        return container_state(self.find_hub())

    def proxy_state(self) -> ContainerState:
        return self.proxy.state()

    def ensure_hub_container(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[Container, str]:
        """Make the hub container match the spec and run. Returns (container, what was done)."""
        swarm = self.swarm_node_id() is not None
        if swarm and user_images:
            user_images = node_image_refs(self.client, user_images)
        # The gate first: the hub reaches Docker only through it, and it must know the images
        # this hub may start (`up`, `hubd upgrade` and its rollback all come through here).
        _, gate_action = ensure_gate(
            self.client,
            self.config,
            self.names,
            image,
            engine_of(self.client).mount_source,
            self.timing,
            user_images,
            swarm=swarm,
            user_network_block=self.user_network_block,
        )
        if gate_action != "unchanged":
            self.reporter.step(f"{gate_action} container {gate_container_name(self.names)}")
        create, spec_hash = self.hub_spec(image, user_images, upgrade_db)
        container = self.find_hub()
        action = "unchanged"
        if container is not None and container.labels.get(LABEL_SPEC) != spec_hash:
            self.reporter.step(f"the hub's configuration changed: recreating {container.name}")
            self._stop(container)
            container.remove()
            container, action = None, "recreated"
        if container is None:
            container = self._create_hub(create, user_images)
            action = "created" if action == "unchanged" else action
        return container, bring_up(container, self._start, action)

    def _create_hub(
        self, create: dict[str, Any], user_images: dict[str, str] | None = None
    ) -> Container:
        self.reporter.step(f"creating the hub container {self.names.hub_container}")
        # The same settings as hashed into the spec.
        settings = self._hub_settings(user_images)
        container = self.client.containers.create(**create)
        # No hub runs now: people's networks without a running server go (the next start
        # makes one in the people's block), so a restart joins only those still in use.
        remove_idle_user_networks(self.client, self.names)
        join_user_networks(self.client, self.names, container)
        container.put_archive(
            "/", tar_files({f"{SETTINGS_DIR}/settings.json": json.dumps(settings)})
        )
        # The proxy starts first (see up()) and holds the token the hub must share.
        token = self.proxy.token(None)
        container.put_archive("/", tar_files({PROXY_TOKEN_FILE: token}, mode=0o600))
        return container

    def _start(self, container: Container) -> None:
        self.reporter.step(f"starting {container.name}")
        start_container(container, "hub", self.config.port)
        container.reload()

    def _stop(self, container: Container) -> None:
        """Stop a container; one that is gone meanwhile (auto-removed users' servers) is
        stopped enough."""
        try:
            container.reload()
            if container.status == "paused":
                container.unpause()
            if container.status in ("running", "restarting"):
                container.stop(timeout=self.timing.container_stop_timeout_s)
        except NotFound:
            pass

    def remove_hub(self) -> None:
        """Stop and remove the hub container; people's servers keep running."""
        container = self.find_hub()
        if container is not None:
            self._stop(container)
            remove_quietly(container, force=True)

    def hub_is_healthy(self, timeout: float | None = None) -> bool:
        return http_ok(self.health_url, timeout or self.timing.health_timeout_s, self.proxy.session)

    def wait_healthy(self, deadline_s: float | None = None) -> None:
        deadline = time.monotonic() + (deadline_s or self.timing.hub_ready_deadline_s)
        while time.monotonic() < deadline:
            if self.hub_is_healthy():
                return
            container = self.find_hub()
            if container is not None and container.status not in ("running", "created"):
                raise HubUnhealthy(
                    f"the hub exited while starting ({container.status}); its last lines:\n"
                    + self.hub_log_tail(15)
                )
            # The probe goes through the front and the proxy: with either gone it can only
            # time out.
            proxy = self.proxy.state()
            if proxy.exists and not proxy.running:
                raise HubUnhealthy("the proxy is not running, so the hub cannot be reached")
            front = self.front.state()
            if front.exists and not front.running:
                raise HubUnhealthy("the front is not running, so the hub cannot be reached")
            time.sleep(self.timing.hub_ready_poll_s)
        raise HubUnhealthy(
            f"the hub did not answer {self.health_url} within "
            f"{deadline_s or self.timing.hub_ready_deadline_s:.0f} s; see `hubd logs`"
        )

    def hub_frozen(self) -> bool:
        """Whether a process of the hub container is stopped (SIGSTOP, a cgroup freezer) or
        the container is paused: a hub that will never answer, however long one waits."""
        container = self.find_hub()
        if container is None:
            return False
        if container.status == "paused":
            return True
        if container.status != "running":
            return False
        try:
            top = container.top(ps_args="-eo pid,stat")
        except (APIError, NotFound):
            return False
        titles = [str(t).upper() for t in top.get("Titles") or []]
        column = titles.index("STAT") if "STAT" in titles else 1
        return any(
            len(row) > column and str(row[column]).startswith("T")
            for row in top.get("Processes") or []
        )

    # ------------------------------------------------------------------ running hub

    def start_hub(self) -> None:
        container = self.find_hub()
        if container is None:
            raise StackError("there is no hub container yet: run `hubd up`")
        start_gate(self.client, self.names, self.timing)
        bring_up(container, self._start)

    def restart_hub(self, graceful: bool = True) -> None:
        """Restart the hub container, whatever state its process is in (dead, hung, paused).

        A hung hub gets no graceful stop: it has not answered for several probes, and a
        SIGSTOPped process would only sit out the whole stop timeout before being killed.
        """
        container = self.find_hub()
        if container is None:
            raise StackError("there is no hub container yet: run `hubd up`")
        start_gate(self.client, self.names, self.timing)
        if container.status == "paused":
            container.unpause()
        try:
            container.restart(timeout=self.timing.container_stop_timeout_s if graceful else 0)
        except APIError as exc:
            text = str(exc.explanation or exc)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(
                    f"port {self.config.port} is already in use on this machine"
                ) from None
            raise StackError(f"restarting the hub failed: {text}") from None

    def hub_log_tail(self, lines: int = 200) -> str:
        container = self.find_hub()
        if container is None:
            return ""
        return bytes(container.logs(tail=lines)).decode(errors="replace")

    def follow_hub_logs(self, tail: int = 100) -> Generator[str, None, None]:
        stream = self.hub_log_stream(tail)
        try:
            for chunk in stream:
                yield bytes(chunk).decode(errors="replace")
        finally:
            stream.close()

    def hub_log_stream(self, tail: int | None, since: float | None = None) -> Any:
        """The hub's log from `tail` lines back (or from time `since`), followed: the
        engine's stream of byte chunks (docker-py's CancellableStream: `close()` from another
        thread ends it). It ends when the hub container stops. Opened here, so a missing hub
        is an error now."""
        container = self.find_hub()
        if container is None:
            raise StackError("there is no hub container yet: run `hubd up`")
        if since is not None:
            return container.logs(stream=True, follow=True, since=since)
        return container.logs(stream=True, follow=True, tail=tail)

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
        # Not cached: the token lives on the data volume, and a purge + up makes a new one.
        container = self.find_hub()
        if container is None or container.status != "running":
            raise StackError("the hub is not running: run `hubd up` first")
        return HubAPI(
            self.local_url, self._service_token(container), self.timing, self.proxy.new_session()
        )

    def _service_token(self, container: Container) -> str:
        token = read_file(container, SERVICE_TOKEN_PATH)
        if not token:
            raise StackError("the hub has not finished its first start yet; try again")
        return token.strip()

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
        container = self.find_hub()
        if container is not None and container.status in ("running", "paused", "restarting"):
            self.reporter.step(f"stopping {container.name}")
            self._stop(container)
            done.append(f"stopped {container.name}")
        if self.proxy.stop():
            done.append(f"stopped {self.names.proxy_container}")
        if self.front.stop():
            done.append(f"stopped {self.names.front_container}")
        for server in self.containers(ROLE_USER_SERVER):
            self.reporter.step(f"stopping {server.name}")
            self._stop(server)
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
                self._stop(gate)
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
        hub = self.hub_state()
        uptime = None
        if hub.running and hub.started_at is not None:
            uptime = (datetime.now(timezone.utc) - hub.started_at).total_seconds()
        if healthy is None:
            healthy = hub.running and self.hub_is_healthy()
        proxy = self.proxy_state()
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
