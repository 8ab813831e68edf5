"""The hub stack on Docker: network, hub data volume, hub container, users' servers.

`up()` is idempotent: it compares what exists with what the config asks for and changes only
what differs (the hub container carries a hash of its spec in a label). `down()` stops
containers and never removes a volume; only `purge()` does, and the CLI asks first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from hubd.config import Config
from hubd.errors import HubUnhealthy, ImageError, PortInUse, StackError
from hubd.stack.docker_gate import (
    ROLE_DOCKER_GATE,
    ensure_gate,
    gate_container_name,
    hub_gate_mount,
    start_gate,
)
from hubd.stack.engine import docker_socket_path
from hubd.stack.hubapi import HubAPI
from hubd.stack.images import (
    LABEL_BASE_ID,
    LABEL_BASE_REF,
    ensure_hub_image,
    ensure_user_images,
    image_id,
    image_present,
)
from hubd.stack.naming import (
    LABEL_SPEC,
    LABEL_STACK,
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
from hubd.stack.settings import HUB_DATA_DIR, SETTINGS_DIR, hub_settings
from hubd.stack.user_networks import join_user_networks
from hubd.status import HubContainer, StackView, UserServer
from hubd.timing import Timing

log = logging.getLogger(__name__)

HUB_PORT_IN_CONTAINER = "8000/tcp"
SERVICE_TOKEN_PATH = f"{HUB_DATA_DIR}/hubd-service-token"
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


@dataclass(frozen=True)
class HubContainerState:
    exists: bool
    status: str = "missing"  # Docker's: created, running, paused, exited, dead, restarting
    container_id: str = ""
    image: str = ""
    started_at: datetime | None = None
    spec: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"


class Stack:
    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        *,
        reporter: Reporter | None = None,
        timing: Timing | None = None,
        pins: PinStore | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.names = StackNames(config.stack_name)
        self.timing = timing or Timing()
        self.reporter: Reporter = reporter or LogReporter(self.timing)
        # Without a pin store (throwaway stacks in tests) images are used as their tags say.
        self.pins = pins

    # ------------------------------------------------------------------ addresses

    @property
    def local_url(self) -> str:
        host = self.config.bind_address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.config.port}/"

    @property
    def health_url(self) -> str:
        return self.local_url + "hub/health"

    @functools.cached_property
    def engine_memory_bytes(self) -> int:
        """The engine's memory (Docker Desktop: its VM's), which sizes default limits."""
        return int(self.client.info().get("MemTotal") or 0)

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
        container, action = self.ensure_hub_container(image, user_images)
        if recreate and action == "created":
            action = "recreated"
        if action != "unchanged":
            changes.append(f"{action} container {self.names.hub_container}")
        if wait:
            self.wait_healthy()
        return UpResult(
            url=self.local_url,
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
        _remove_quietly(container, force=True)

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
        return False

    def _refuse_foreign(self, kind: str, objects: list[Any]) -> None:
        for obj in objects:
            labels = (obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels")) or {}
            if labels.get(LABEL_STACK) != self.names.stack:
                raise StackError(
                    f"a Docker {kind} named {obj.name!r} exists that hubd did not create; "
                    "hubd will not touch it: rename it, or set another `stack_name` in the config"
                )

    def hub_spec(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The hub container's create arguments and a hash that changes when they do.

        `upgrade_db` (only `hubd upgrade` sets it, after backing the database up) lets the new
        hub migrate the database schema; it is not hashed, as it changes nothing once done.
        """
        settings = hub_settings(
            self.config,
            self.names,
            self.timing,
            user_images,
            engine_memory_bytes=self.engine_memory_bytes,
        )
        # DockerSpawner reaches the engine only through the docker gate (docker_gate.py).
        gate_volumes, gate_environment = hub_gate_mount(self.names)
        spec = {
            "image": image,
            "settings": settings,
            "port": self.config.port,
            "bind_address": self.config.bind_address,
            "docker_gate": gate_volumes,
        }
        spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        create = {
            "image": image,
            "name": self.names.hub_container,
            "labels": self.names.labels(ROLE_HUB, **{LABEL_SPEC: spec_hash}),
            "network": self.names.network,
            "ports": {HUB_PORT_IN_CONTAINER: (self.config.bind_address, self.config.port)},
            "volumes": {
                self.names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"},
                **gate_volumes,
            },
            "environment": {"HUBD_SETTINGS": f"{SETTINGS_DIR}/settings.json", **gate_environment},
            "command": [*HUB_COMMAND, "--upgrade-db"] if upgrade_db else None,
            # hubd alone restarts the hub: a Docker restart policy would race with it.
            "restart_policy": {"Name": "no"},
            # tini as PID 1 reaps the proxy and forwards signals.
            "init": True,
            "detach": True,
        }
        return create, spec_hash

    def find_hub(self) -> Container | None:
        try:
            container = self.client.containers.get(self.names.hub_container)
        except NotFound:
            return None
        self._refuse_foreign("container", [container])
        return container

    def hub_state(self) -> HubContainerState:
        container = self.find_hub()
        if container is None:
            return HubContainerState(exists=False)
        state = container.attrs.get("State", {})
        started = _parse_time(state.get("StartedAt"))
        return HubContainerState(
            exists=True,
            status=str(state.get("Status", "unknown")),
            container_id=container.id or "",
            image=str(container.attrs["Config"]["Image"]),
            started_at=started,
            spec=container.labels.get(LABEL_SPEC, ""),
        )

    def ensure_hub_container(
        self, image: str, user_images: dict[str, str] | None = None, upgrade_db: bool = False
    ) -> tuple[Container, str]:
        """Make the hub container match the spec and run. Returns (container, what was done)."""
        # The gate first: the hub reaches Docker only through it, and it must know the images
        # this hub may start (`up`, `hubd upgrade` and its rollback all come through here).
        _, gate_action = ensure_gate(
            self.client,
            self.config,
            self.names,
            image,
            docker_socket_path(),
            self.timing,
            user_images,
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
        if container.status == "paused":
            container.unpause()
            action = "unpaused"
        elif container.status != "running":
            self._start(container)
            action = "started" if action == "unchanged" else action
        return container, action

    def _create_hub(
        self, create: dict[str, Any], user_images: dict[str, str] | None = None
    ) -> Container:
        self.reporter.step(f"creating the hub container {self.names.hub_container}")
        # The same settings as hashed into the spec.
        settings = hub_settings(
            self.config,
            self.names,
            self.timing,
            user_images,
            engine_memory_bytes=self.engine_memory_bytes,
        )
        container = self.client.containers.create(**create)
        join_user_networks(self.client, self.names, container)
        container.put_archive("/", _tar({f"{SETTINGS_DIR}/settings.json": json.dumps(settings)}))
        return container

    def _start(self, container: Container) -> None:
        self.reporter.step(f"starting {container.name}")
        try:
            container.start()
        except APIError as exc:
            text = str(exc.explanation or exc)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(
                    f"port {self.config.port} is already in use on this machine: stop what uses "
                    "it, or set another `port` in the config (`hubd config path` shows where)"
                ) from None
            raise StackError(f"the hub container did not start: {text}") from None
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
            _remove_quietly(container, force=True)

    def hub_is_healthy(self, timeout: float | None = None) -> bool:
        try:
            response = requests.get(
                self.health_url, timeout=timeout or self.timing.health_timeout_s
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

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
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            self._start(container)

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

    def follow_hub_logs(self, tail: int = 100) -> Iterator[str]:
        container = self.find_hub()
        if container is None:
            raise StackError("there is no hub container yet: run `hubd up`")
        for chunk in container.logs(stream=True, follow=True, tail=tail):
            yield bytes(chunk).decode(errors="replace")

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
        return HubAPI(self.local_url, self._service_token(container), self.timing)

    def _service_token(self, container: Container) -> str:
        try:
            stream, _ = container.get_archive(SERVICE_TOKEN_PATH)
        except NotFound:
            raise StackError("the hub has not finished its first start yet; try again") from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            assert member is not None
            return member.read().decode().strip()

    # ------------------------------------------------------------------ down, purge

    def down(self) -> list[str]:
        """Stop the hub and users' servers. Volumes (everyone's data) stay."""
        done = []
        container = self.find_hub()
        if container is not None and container.status in ("running", "paused", "restarting"):
            self.reporter.step(f"stopping {container.name}")
            self._stop(container)
            done.append(f"stopped {container.name}")
        for server in self.containers(ROLE_USER_SERVER):
            self.reporter.step(f"stopping {server.name}")
            self._stop(server)
            # DockerSpawner's containers remove themselves once stopped (auto-remove); older
            # ones may not, so do as DockerSpawner would.
            _remove_quietly(server)
            done.append(f"stopped {server.name}")
        for gate in self.containers(ROLE_DOCKER_GATE):
            if gate.status in ("running", "paused", "restarting"):
                self._stop(gate)
                done.append(f"stopped {gate.name}")
        return done

    def purge(self) -> list[str]:
        """Remove every object of this stack, data volumes included. The CLI confirms first."""
        removed = self.down()
        for container in self.containers():
            _remove_quietly(container, force=True)
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
        return StackView(
            hub=HubContainer(
                exists=hub.exists,
                status=hub.status,
                healthy=healthy,
                container_id=hub.container_id[:12],
                image=hub.image,
                uptime_s=uptime,
            ),
            local_url=self.local_url,
            servers=self.user_servers(),
        )


def _remove_quietly(container: Container, force: bool = False) -> None:
    """Remove a container that may be removing itself already (auto-remove)."""
    try:
        container.remove(force=force)
    except NotFound:
        pass
    except APIError as exc:
        if "already in progress" not in str(exc):
            raise


def _tar(files: dict[str, str], mode: int = 0o644) -> bytes:
    """A tar of `files` (absolute paths), with their folders, for put_archive at '/'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folders = {parent for name in files for parent in _parents(name)}
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            archive.addfile(info)
        for name, text in files.items():
            name = name.lstrip("/")
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python parses up to microseconds.
    head, _, rest = value.partition(".")
    fraction = rest.rstrip("Z")[:6]
    text = f"{head}.{fraction or '0'}+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


__all__ = ["HubContainerState", "Stack", "UpResult"]
