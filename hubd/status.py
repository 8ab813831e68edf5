"""The status contract: what `hubd status`, the control API and the tray say about the hub.

One typed definition, frozen dataclasses, because the status crosses a process boundary (the
control socket) and one side may be an older or newer hubd than the other:

- the daemon (or, without one, the CLI) builds a `Status` once, with `Status.compose`;
- `to_json()` is what `GET /status` and `hubd status --json` emit;
- `from_json()` is how the CLI and the tray read it back. It is lenient on purpose: a missing
  key or a value of the wrong type falls back to the field's default, unknown keys are
  ignored, and a state word this version does not know is kept as it is (the tray shows it):
  `state` is a plain string, compared with `HubState` members (a `str` enum).

Adding a field is one change here: give it a type and a default (a nested record is another
frozen dataclass deriving from `Record`); `to_json`/`from_json` follow the annotations. Then
fill it where the status is composed and read it where it is shown.

Why dataclasses and not TypedDicts: readers get attributes that are always present and of the
declared type, so nobody reads the JSON defensively key by key again.

Part of the shared kernel: imports nothing of hubd but the config and the codec (hubd.codec,
the one typed decoder, which the config uses too).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from hubd.codec import decode, field_types
from hubd.config import Config


class HubState(str, enum.Enum):
    """The hub's state in one word: the one vocabulary for what is and for what is wanted
    (`desired` is RUNNING or STOPPED)."""

    RUNNING = "running"
    STARTING = "starting"
    RESTARTING = "restarting"
    FAILING = "failing"  # a crash loop
    STOPPED = "stopped"
    DOCKER_UNAVAILABLE = "docker-unavailable"

    def __str__(self) -> str:
        return self.value


# `Status.state` when the daemon sent no usable word. Otherwise it is a HubState's value, or a
# word of a newer daemon that this version does not know.
UNKNOWN = "unknown"
DESIRED_STATES = (HubState.RUNNING, HubState.STOPPED)

R = TypeVar("R", bound="Record")


class Record:
    """JSON in and out for a frozen dataclass whose fields all have defaults."""

    def to_json(self) -> dict[str, Any]:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return {f.name: _encode(getattr(self, f.name)) for f in fields}

    @classmethod
    def from_json(cls: type[R], data: object) -> R:
        if not isinstance(data, Mapping):
            return cls()
        kwargs = {}
        for name, kind in field_types(cls).items():
            if name in data:
                ok, value = decode(kind, data[name])
                if ok:
                    kwargs[name] = value
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class EngineView(Record):
    """What matters to people about the Docker engine itself."""

    # Whether containers outlive a restart of dockerd (`live-restore` in daemon.json): with
    # it, people's kernels survive an engine upgrade. None: not known. hubd only reads it.
    live_restore: bool | None = None
    # Which engine answers ("Docker Engine", "Docker Engine (rootless)", "Docker Desktop",
    # "Colima", "OrbStack") and where hubd reached it ("unix:///... (Docker context 'x')").
    kind: str | None = None
    endpoint: str | None = None


@dataclasses.dataclass(frozen=True)
class Supervision(Record):
    """The supervisor's own view: what it is doing, what it was asked for, what went wrong.
    The control API answers start/stop/restart with this."""

    state: str = UNKNOWN
    desired: str | None = None  # HubState.RUNNING or STOPPED; None without a daemon
    restart_count: int = 0
    last_error: str | None = None
    # User images that could not be pulled: the hub runs, servers with them cannot start.
    image_problems: tuple[str, ...] = ()
    engine: EngineView = EngineView()


@dataclasses.dataclass(frozen=True)
class HubContainer(Record):
    """The hub container as the engine shows it."""

    exists: bool = False
    status: str = "missing"  # Docker's word: created, running, paused, exited, dead, ...
    healthy: bool = False
    container_id: str = ""
    image: str = ""
    uptime_s: float | None = None


@dataclasses.dataclass(frozen=True)
class ProxyContainer(Record):
    """A container of the way in as the engine shows it: the proxy (configurable-http-proxy,
    in front of the hub), or the front that holds the published port (docs/proxy.md)."""

    exists: bool = False
    status: str = "missing"  # Docker's word
    container_id: str = ""
    image: str = ""


@dataclasses.dataclass(frozen=True)
class UserServer(Record):
    user: str = ""
    container: str = ""
    running: bool = False
    status: str = ""  # Docker's word


@dataclasses.dataclass(frozen=True)
class NodeResource(Record):
    """A Swarm generic resource a node's engine advertises, e.g. 2 of kind NVIDIA-GPU."""

    kind: str = ""
    count: int = 0


@dataclasses.dataclass(frozen=True)
class NodeView(Record):
    """One machine of the hub's Swarm (`hubd node list`), as hubd/stack/swarm/nodes.py sees
    it from the manager."""

    id: str = ""
    hostname: str = ""
    role: str = ""  # manager | worker
    state: str = ""  # Swarm's word: ready, down, unknown, disconnected
    availability: str = ""  # active | pause | drain
    address: str = ""
    cpus: float = 0.0
    memory_bytes: int = 0
    resources: tuple[NodeResource, ...] = ()
    labels: tuple[str, ...] = ()  # the owner's labels (`hubd node label`), without the prefix
    homes: tuple[str, ...] = ()  # the people whose files live there
    running: tuple[str, ...] = ()  # the people whose server runs there now
    this_machine: bool = False  # hubd's own engine: the manager, where the hub runs

    @property
    def ready(self) -> bool:
        return self.state == "ready"


@dataclasses.dataclass(frozen=True)
class StackView(Record):
    """What `Stack.describe()` sees on the engine."""

    hub: HubContainer = HubContainer()
    proxy: ProxyContainer = ProxyContainer()
    standby: ProxyContainer = ProxyContainer()  # the proxy's standby (docs/proxy.md)
    front: ProxyContainer = ProxyContainer()
    servers: tuple[UserServer, ...] = ()
    local_url: str = ""
    # The machines of the hub's Swarm; empty on one machine (no Swarm).
    nodes: tuple[NodeView, ...] = ()
    # HTTPS (docs/https.md): its port (None: plain HTTP) and the SHA-256 fingerprint of
    # hubd's root ("" with a certificate of one's own).
    https_port: int | None = None
    fingerprint: str = ""


@dataclasses.dataclass(frozen=True)
class MdnsView(Record):
    """The advertiser's state, when the daemon advertises the hub."""

    state: str = ""  # the advertiser's word: advertising, conflict-renamed, error, ...
    hostname: str | None = None
    addresses: tuple[str, ...] = ()
    service: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class UpdateView(Record):
    """What the daemon knows about newer versions (`hubd upgrade`, or `auto_upgrade`)."""

    available: bool = False
    changes: tuple[str, ...] = ()
    checked_at: str | None = None  # ISO time of the last check
    last_result: str | None = None  # one line on the last upgrade: done, or rolled back and why
    last_ok: bool | None = None  # whether that upgrade went through


@dataclasses.dataclass(frozen=True)
class BackupStatus(Record):
    """The last backups, as `hubd.backup.summary` reads them from the state folder."""

    target: str | None = None  # backup_target; None: backups not set up
    scheduled: bool = False
    last_success_at: float | None = None  # seconds since the epoch
    age_s: float | None = None  # since the last good backup; None: never
    last_error: str | None = None  # the last backup failed with this
    overdue: bool = False  # no good backup for longer than backup_warn_after
    running: bool = False
    password_file: str | None = None  # where the repository password is kept


@dataclasses.dataclass(frozen=True)
class Status(Record):
    """Everything `hubd status` shows. The JSON keeps the shape of earlier versions."""

    state: str = UNKNOWN
    desired: str | None = None
    restart_count: int | None = None  # None: the daemon did not say
    last_error: str | None = None
    url: str = ""  # the advertised address when mDNS runs, else the local one
    local_url: str = ""
    mdns: MdnsView | None = None
    hub: HubContainer = HubContainer()
    proxy: ProxyContainer = ProxyContainer()
    standby: ProxyContainer = ProxyContainer()  # the proxy's standby (docs/proxy.md)
    front: ProxyContainer = ProxyContainer()
    servers: tuple[UserServer, ...] = ()
    version: str | None = None  # the daemon's; None without a daemon
    update: UpdateView | None = None  # None without a daemon
    backup: BackupStatus = BackupStatus()
    image_problems: tuple[str, ...] = ()
    engine: EngineView = EngineView()
    # The machines people's servers run on (`hubd node`); empty on one machine.
    nodes: tuple[NodeView, ...] = ()
    # HTTPS: the SHA-256 fingerprint of hubd's root, which devices compare before trusting
    # it, and the plain-HTTP address that sends a new device to the trust page (the tray's
    # QR code); both "" without hubd's CA.
    fingerprint: str = ""
    trust_url: str = ""

    @classmethod
    def compose(
        cls,
        supervision: Supervision,
        config: Config,
        stack: StackView | None = None,
        mdns: MdnsView | None = None,
        version: str | None = None,
        update: UpdateView | None = None,
        backup: BackupStatus | None = None,
    ) -> Status:
        """The one place a status is put together, by the daemon or by the CLI without one."""
        return cls(
            state=supervision.state,
            desired=supervision.desired,
            restart_count=supervision.restart_count,
            last_error=supervision.last_error,
            url=advertised_url(
                config,
                mdns.hostname if mdns and mdns.hostname else None,
                stack.https_port if stack else None,
            ),
            local_url=stack.local_url if stack else f"http://localhost:{config.port}/",
            mdns=mdns,
            hub=stack.hub if stack else HubContainer(),
            proxy=stack.proxy if stack else ProxyContainer(),
            standby=stack.standby if stack else ProxyContainer(),
            front=stack.front if stack else ProxyContainer(),
            servers=stack.servers if stack else (),
            version=version,
            update=update,
            backup=backup or BackupStatus(),
            image_problems=supervision.image_problems,
            engine=supervision.engine,
            nodes=stack.nodes if stack else (),
            fingerprint=stack.fingerprint if stack else "",
            trust_url=(
                advertised_url(config, mdns.hostname if mdns and mdns.hostname else None)
                if stack and stack.fingerprint
                else ""
            ),
        )

    @property
    def known_state(self) -> HubState | None:
        """The state as this version knows it, None for a word from a newer daemon."""
        try:
            return HubState(self.state)
        except ValueError:
            return None


def advertised_url(
    config: Config, hostname: str | None = None, https_port: int | None = None
) -> str:
    """The address people type: over HTTPS (`https_port`) `https://jupyter.local/` (443) or
    with its port; else plain HTTP on `port`."""
    host = hostname or (f"{config.mdns_name}.local" if config.mdns_enabled else None)
    if https_port:
        # Without mDNS the certificate still names <mdns_name>.local, not localhost.
        host = host or f"{config.mdns_name}.local"
        return f"https://{host}/" if https_port == 443 else f"https://{host}:{https_port}/"
    return f"http://{host}:{config.port}/" if host else f"http://localhost:{config.port}/"


# ---------------------------------------------------------------------- the codec


def _encode(value: object) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value
