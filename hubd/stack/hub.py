"""The hub container: JupyterHub itself, with its data volume, behind the front and the proxy.

It publishes no port: people and hubd reach it through the front (stack/front.py) and the
proxy (stack/proxy.py), so its health probe goes that way too. It reaches the Docker engine
only through the docker gate (stack/docker_gate.py), which comes up with it. Its spec (image,
settings, the gate's mounts, tmpfs) is hashed into a label: `ensure()` recreates it only when
that changes. hubd alone restarts it (no Docker restart policy): the daemon's supervisor
decides when, from `is_healthy()` and `frozen()`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Generator
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import HubUnhealthy, NoHubContainer, PortInUse, StackError
from hubd.stack.containers import (
    TarEntry,
    bring_up,
    http_ok,
    read_file,
    refuse_foreign,
    remove_quietly,
    start_container,
    stop_quietly,
    tar_of,
)
from hubd.stack.docker_gate import (
    ensure_gate,
    gate_container_name,
    hub_gate_mount,
    start_gate,
)
from hubd.stack.engine import engine_of
from hubd.stack.front import Front
from hubd.stack.hubapi import HubAPI
from hubd.stack.naming import LABEL_SPEC, ROLE_HUB, ROLE_HUB_DATA, StackNames
from hubd.stack.part import ContainerPart
from hubd.stack.progress import Reporter
from hubd.stack.proxy import Proxy, proxy_public_url
from hubd.stack.settings import (
    HUB_DATA_DIR,
    HUB_WORK_DIR,
    PROXY_TOKEN_FILE,
    SETTINGS_DIR,
    hub_settings,
)
from hubd.stack.subnets import choose_block
from hubd.stack.swarm.homes import manager_node_id
from hubd.stack.swarm.images import node_image_refs
from hubd.stack.user_networks import join_user_networks, remove_idle_user_networks
from hubd.stack.volume_trust import check_volume
from hubd.timing import Timing

SERVICE_TOKEN_PATH = f"{HUB_DATA_DIR}/hubd-service-token"
# Runtime state starts fresh at every start of the hub: its working directory (where
# JupyterHub writes pid files) and /tmp are tmpfs; what must last is on the data volume.
HUB_TMPFS = {HUB_WORK_DIR: "rw,nosuid,nodev,mode=0755", "/tmp": "rw,nosuid,nodev"}
HUB_COMMAND = ["jupyterhub", "-f", "/usr/local/lib/hubd/jupyterhub_config.py"]


class Hub(ContainerPart):
    """The hub container of one stack."""

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        names: StackNames,
        reporter: Reporter,
        timing: Timing,
        proxy: Proxy,
        front: Front,
    ) -> None:
        super().__init__(client, config, names, reporter, timing)
        # The way in: the hub's token is the proxy's too, and its probe goes through both.
        self.proxy = proxy
        self.front = front

    # ------------------------------------------------------------------ addresses

    @property
    def local_url(self) -> str:
        """Where hubd itself reaches the hub: through the front and the proxy."""
        return proxy_public_url(self.config, self.proxy.served)

    @property
    def health_url(self) -> str:
        return self.local_url + "hub/health"

    # ------------------------------------------------------------------ the engine it sizes to

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

    # ------------------------------------------------------------------ the container

    @property
    def container_name(self) -> str:
        return self.names.hub_container

    def ensure_volume(self) -> bool:
        """The hub's data volume (accounts, the database, the service token); True if made."""
        try:
            volume = self.client.volumes.get(self.names.hub_data_volume)
        except NotFound:
            self.reporter.step(f"creating volume {self.names.hub_data_volume}")
            self.client.volumes.create(
                self.names.hub_data_volume, labels=self.names.labels(ROLE_HUB_DATA)
            )
            return True
        refuse_foreign("volume", volume, self.names.stack)
        # The hub runs as root in its container: never on a volume that is a host folder.
        check_volume(self.client, self.names, volume.name, (ROLE_HUB_DATA,))
        return False

    def spec(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The hub container's create arguments and a hash that changes when they do.

        `upgrade_db` (only `hubd upgrade` sets it, after backing the database up) lets the new
        hub migrate the database schema; it is not hashed, as it changes nothing once done.
        """
        settings = self._settings(user_images)
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

    def _settings(self, user_images: dict[str, str] | None) -> dict[str, Any]:
        return hub_settings(
            self.config,
            self.names,
            self.timing,
            user_images,
            engine_memory_bytes=self.engine_memory_bytes,
            swarm_node_id=manager_node_id(self.client),
            engine_cpus=self.engine_cpus,
            user_network_block=self.user_network_block,
        )

    def ensure(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[Container, str]:
        """Make the hub container match the spec and run. Returns (container, what was done)."""
        swarm = manager_node_id(self.client) is not None
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
        create, spec_hash = self.spec(image, user_images, upgrade_db)
        container = self.find()
        action = "unchanged"
        if container is not None and container.labels.get(LABEL_SPEC) != spec_hash:
            self.reporter.step(f"the hub's configuration changed: recreating {container.name}")
            self._stop(container)
            container.remove()
            container, action = None, "recreated"
        if container is None:
            container = self._create(create, user_images)
            action = "created" if action == "unchanged" else action
        return container, bring_up(container, self._start, action)

    def _create(
        self, create: dict[str, Any], user_images: dict[str, str] | None = None
    ) -> Container:
        self.reporter.step(f"creating the hub container {self.names.hub_container}")
        # The same settings as hashed into the spec.
        settings = self._settings(user_images)
        container = self.client.containers.create(**create)
        # No hub runs now: people's networks without a running server go (the next start
        # makes one in the people's block), so a restart joins only those still in use.
        remove_idle_user_networks(self.client, self.names)
        join_user_networks(self.client, self.names, container)
        # The proxy starts first (see Stack.up) and holds the token the hub must share.
        token = self.proxy.token(None)
        files = [
            TarEntry(f"{SETTINGS_DIR}/settings.json", json.dumps(settings)),
            TarEntry(PROXY_TOKEN_FILE, token, mode=0o600),
        ]
        container.put_archive("/", tar_of(files))
        return container

    def _start(self, container: Container) -> None:
        self.reporter.step(f"starting {container.name}")
        start_container(container, "hub", self.config.port)
        container.reload()

    def _stop(self, container: Container) -> None:
        stop_quietly(container, self.timing.container_stop_timeout_s)

    def start(self) -> None:
        container = self.find()
        if container is None:
            raise NoHubContainer("there is no hub container yet: run `hubd up`")
        start_gate(self.client, self.names, self.timing)
        bring_up(container, self._start)

    def restart(self, graceful: bool = True) -> None:
        """Restart the hub container, whatever state its process is in (dead, hung, paused).

        A hung hub gets no graceful stop: it has not answered for several probes, and a
        SIGSTOPped process would only sit out the whole stop timeout before being killed.
        """
        container = self.find()
        if container is None:
            raise NoHubContainer("there is no hub container yet: run `hubd up`")
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

    def stop(self) -> bool:
        """Stop the hub (people's servers keep running); False when it was not running."""
        container = self.find()
        if container is None or container.status not in ("running", "paused", "restarting"):
            return False
        self.reporter.step(f"stopping {container.name}")
        self._stop(container)
        return True

    def remove(self) -> None:
        """Stop and remove the hub container; people's servers keep running."""
        container = self.find()
        if container is not None:
            self._stop(container)
            remove_quietly(container, force=True)

    def remove_to_recreate(self) -> None:
        """Remove the container at once (`hubd up --recreate`): the next ensure() makes one."""
        container = self.find()
        if container is None:
            return
        self.reporter.step(f"recreating {container.name}")
        remove_quietly(container, force=True)

    def retire_single_container(self) -> bool:
        """A stack of an earlier hubd ran the proxy inside the hub, whose container published
        the port. Remove that container (accounts live on the data volume, people's servers
        keep running: the hub never stops them) so that the proxy can take the port."""
        container = self.find()
        if container is None or not container.attrs.get("HostConfig", {}).get("PortBindings"):
            return False
        self.reporter.step(f"moving the proxy out of {container.name} into its own container")
        self._stop(container)
        remove_quietly(container, force=True)
        return True

    # ------------------------------------------------------------------ health

    def is_healthy(self, timeout: float | None = None) -> bool:
        return http_ok(self.health_url, timeout or self.timing.health_timeout_s, self.proxy.session)

    def wait_healthy(self, deadline_s: float | None = None) -> None:
        deadline = time.monotonic() + (deadline_s or self.timing.hub_ready_deadline_s)
        while time.monotonic() < deadline:
            if self.is_healthy():
                return
            container = self.find()
            if container is not None and container.status not in ("running", "created"):
                raise HubUnhealthy(
                    f"the hub exited while starting ({container.status}); its last lines:\n"
                    + self.log_tail(15)
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

    def frozen(self) -> bool:
        """Whether a process of the hub container is stopped (SIGSTOP, a cgroup freezer) or
        the container is paused: a hub that will never answer, however long one waits."""
        container = self.find()
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

    # ------------------------------------------------------------------ logs

    def log_tail(self, lines: int = 200) -> str:
        """The hub's last `lines` of log ("" without a hub container). A container being
        removed (hubd replacing it just now) has none to give: the new one's are waited for."""
        deadline = time.monotonic() + self.timing.hub_log_replaced_wait_s
        while True:
            container = self.find()
            if container is None:
                return ""
            try:
                return bytes(container.logs(tail=lines)).decode(errors="replace")
            except (NotFound, APIError) as exc:
                refused = isinstance(exc, NotFound) or exc.status_code == 409
                if not refused:
                    raise
                if time.monotonic() > deadline:
                    raise StackError(
                        "the hub container is being replaced and has no log yet: try again "
                        "in a moment"
                    ) from exc
                time.sleep(self.timing.container_gone_poll_s)

    def follow_logs(self, tail: int = 100) -> Generator[str, None, None]:
        stream = self.log_stream(tail)
        try:
            for chunk in stream:
                yield bytes(chunk).decode(errors="replace")
        finally:
            stream.close()

    def log_stream(self, tail: int | None, since: float | None = None) -> Any:
        """The hub's log from `tail` lines back (or from time `since`), followed: the
        engine's stream of byte chunks (docker-py's CancellableStream: `close()` from another
        thread ends it). It ends when the hub container stops. Opened here, so a missing hub
        is an error now."""
        container = self.find()
        if container is None:
            raise NoHubContainer("there is no hub container yet: run `hubd up`")
        if since is not None:
            return container.logs(stream=True, follow=True, since=since)
        return container.logs(stream=True, follow=True, tail=tail)

    # ------------------------------------------------------------------ the hub's API

    def api(self) -> HubAPI:
        # Not cached: the token lives on the data volume, and a purge + up makes a new one.
        container = self.find()
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


__all__ = ["HUB_COMMAND", "HUB_TMPFS", "SERVICE_TOKEN_PATH", "Hub"]
