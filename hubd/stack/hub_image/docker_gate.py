"""hubd's docker gate: the hub's only way to the Docker engine.

The hub faces the LAN; the engine's socket is root on the host. So the hub does not get the
socket. It gets this gate's socket instead, which runs in its own container (no network, no
capabilities) and passes on only what DockerSpawner does for hubd's users:

- create a container that carries this stack's user-server labels and name, from one of the
  configured images, on that person's own network, with only the stack's user volumes and the
  configured shared folder mounted, with the PID limit, `no-new-privileges` and no
  capabilities, and nothing else of the host;
- inspect, start, stop, kill, wait for, read the logs of and remove such containers;
- inspect and pull the configured images; inspect and create the stack's user volumes;
- inspect and create people's networks, and connect the stack's own members (the hub) to them;
- the engine's version and ping;
- on a Swarm (after `hubd node add`): create a service for a person's server under the same
  rules, inspect, list the tasks of and remove such services, read the nodes (where people's
  files are), and create people's attachable overlay networks.

Everything else gets 403 with a message that says why. `ROUTES` below is the whole policy.

The engine reads JSON with Go's `encoding/json`: keys match struct fields case-insensitively,
the last duplicate wins and unknown keys are ignored. So the gate never forwards what it was
sent. It parses the request (refusing duplicate keys, keys that differ from an allowed one only
by case, and unknown keys at every level), judges the parsed values, and then sends the engine
a request it wrote itself: its own path (at one API version), its own query string from the
judged parameters, its own headers and a body serialized from the judged values. A request
whose body the gate would not judge (start, query-judged calls, form-encoded bodies) is
refused. See docs/docker-gate.md.

Runs with the Python standard library only, inside hubd's hub image.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import socketserver
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

log = logging.getLogger("hubd.docker_gate")

MAX_BODY_BYTES = 1024 * 1024
MAX_INSPECT_BYTES = 4 * 1024 * 1024
COPY_CHUNK_BYTES = 64 * 1024
# The one API version the engine is spoken to in. 1.41 is Engine 20.10 (Debian 12) and has
# everything hubd uses (a service's PID limit); it is past 1.24, below which a start request's
# body could carry a HostConfig.
API_VERSION = "1.41"
MIN_CLIENT_MINOR = 24
_VERSION_PREFIX = re.compile(r"^/v([0-9.]*)(?=/)")
_CLIENT_VERSION = re.compile(r"^1\.([0-9]{1,3})$")


class Refused(Exception):
    """A request the gate does not pass on; the message goes back to the hub."""


# ---------------------------------------------------------------------------- parsing JSON


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: Go keeps the last of duplicate keys and matches struct
    fields ignoring case, so two keys that fold to the same are refused outright."""
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            raise Refused(f"duplicate key {key!r} (beside {seen[folded]!r})")
        seen[folded] = key
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise Refused(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """The body as the gate judges it. Only UTF-8 without a BOM (Go reads nothing else the
    same way); no NaN/Infinity; no duplicate keys; no unpaired surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the body is not UTF-8") from None
    if text.startswith("\ufeff"):
        raise Refused("the body starts with a byte-order mark")
    try:
        value = json.loads(text, object_pairs_hook=_strict_object, parse_constant=_no_constant)
    except ValueError as exc:
        raise Refused(f"the body is not JSON: {exc}") from None
    _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("a string holds an unpaired surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


# ---------------------------------------------------------------------------- the schemas


def _is_empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ("", [], {})


class Schema:
    """A value's allowed shape. `clean` returns the value the gate will send (its own)."""

    def clean(self, value: Any, where: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Schema):
    pattern: str = r"[^\x00]*"
    choices: tuple[str, ...] = ()

    def clean(self, value: Any, where: str) -> Any:
        if not isinstance(value, str):
            raise Refused(f"{where} must be a string")
        if self.choices and value not in self.choices:
            raise Refused(f"{where} must be one of {list(self.choices)}, not {value!r}")
        if not re.fullmatch(self.pattern, value):
            raise Refused(f"{where} {value!r} is not allowed")
        return value


@dataclass(frozen=True)
class Int(Schema):
    low: int = 0
    high: int = 2**63 - 1
    choices: tuple[int, ...] = ()

    def clean(self, value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refused(f"{where} must be a whole number")
        if self.choices and value not in self.choices:
            raise Refused(f"{where} must be one of {list(self.choices)}")
        if not self.low <= value <= self.high:
            raise Refused(f"{where} must be between {self.low} and {self.high}")
        return value


@dataclass(frozen=True)
class Bool(Schema):
    def clean(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise Refused(f"{where} must be true or false")
        return value


@dataclass(frozen=True)
class ListOf(Schema):
    item: Schema
    most: int = 256

    def clean(self, value: Any, where: str) -> Any:
        if not isinstance(value, list) or len(value) > self.most:
            raise Refused(f"{where} must be a list (of at most {self.most})")
        return [self.item.clean(item, f"{where}[{n}]") for n, item in enumerate(value)]


@dataclass(frozen=True)
class MapOf(Schema):
    """A JSON object with free keys (labels, ports): Go's maps match keys exactly."""

    key: Str
    value: Schema
    most: int = 256

    def clean(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict) or len(value) > self.most:
            raise Refused(f"{where} must be an object (of at most {self.most} keys)")
        return {
            self.key.clean(k, f"{where} key"): self.value.clean(v, f"{where}[{k!r}]")
            for k, v in value.items()
        }


@dataclass(frozen=True)
class Nothing(Schema):
    """An empty object or null where the engine's type is an empty struct ({} in ports)."""

    def clean(self, value: Any, where: str) -> Any:
        if value not in (None, {}):
            raise Refused(f"{where} must be empty")
        return {}


@dataclass(frozen=True)
class F:
    """A field of a Struct: its schema, whether it must be given (non-empty), and the
    spellings it may be sent in (docker-py writes a few in lower case)."""

    schema: Schema | None  # None: the key may be sent only empty, and is not passed on
    required: bool = False
    spellings: tuple[str, ...] = ()
    need: str = ""  # why a required field is needed


@dataclass(frozen=True)
class Struct(Schema):
    """A Go struct: only the listed keys, exactly as spelled; an empty value (null, "", 0,
    false, [], {}) means "not given" and is not passed on."""

    fields: Mapping[str, F]
    name: str = ""

    def clean(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise Refused(f"{where} must be an object")
        spelled = {s: key for key, f in self.fields.items() for s in (key, *f.spellings)}
        folded = {s.casefold(): s for s in spelled}
        out: dict[str, Any] = {}
        for sent, item in value.items():
            key = spelled.get(sent)
            if key is None:
                twin = folded.get(sent.casefold())
                if twin is not None:
                    raise Refused(f"{where}.{sent} differs from {twin} only by case")
                raise Refused(f"{where}.{sent} is not allowed")
            spec = self.fields[key]
            if _is_empty(item) and not (item is False and isinstance(spec.schema, Bool)):
                continue  # not given: the engine's default (never a key's odd empty value)
            if spec.schema is None:
                raise Refused(f"{where}.{key} is not allowed")
            cleaned = spec.schema.clean(item, f"{where}.{key}")
            if _is_empty(cleaned) and cleaned is not False:
                continue  # emptied on the way ({"Type": null} is {}): not sent either
            out[key] = cleaned
        for key, spec in self.fields.items():
            if spec.required and _is_empty(out.get(key)):
                raise Refused(
                    f"{where}.{key} must be given" + (f": {spec.need}" if spec.need else "")
                )
        return out


# Values hubd's servers may carry at all (the policy checks decide which exactly).
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_PATH = r"/[^\x00:]{0,4095}"
_LABELS = MapOf(Str(r"[^\x00=]{1,256}"), Str(r"[^\x00]{0,4096}"))
_STRINGS = ListOf(Str(r"[^\x00]*"), 4096)
_SIGNAL = r"(SIG)?[A-Z0-9+-]{1,16}|[0-9]{1,2}"
_NUMBER = Int()
_CAPS = ListOf(Str(r"[A-Za-z_]{1,64}"), 64)
_OPTS = ListOf(Str(r"[^\x00]{1,256}"), 16)

# -- people's subnets and GPUs (issue 24): what DockerSpawner sends for them, nothing more.
_DEVICE_REQUEST = Struct(
    {
        "Driver": F(None),
        "Count": F(Int(-1, -1), required=True, need="all of the machine's GPUs"),
        "DeviceIDs": F(None),
        "Capabilities": F(ListOf(ListOf(Str(choices=("gpu",)), 1), 1), required=True),
        "Options": F(None),
    },
    "a device request",
)
_IPAM_POOL = Struct(
    {
        "Subnet": F(Str(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}"), required=True),
        "IPRange": F(None),
        "Gateway": F(None),
        "AuxiliaryAddresses": F(None),
    },
    "a subnet",
)
_IPAM = Struct(
    {
        "Driver": F(Str(choices=("default",))),
        "Config": F(ListOf(_IPAM_POOL, 1), required=True, need="one subnet"),
        "Options": F(None),
    },
    "IPAM",
)

_MOUNT = Struct(
    {
        "Type": F(Str(choices=("volume", "bind")), required=True),
        "Source": F(Str(r"[^\x00:]{1,4096}"), required=True),
        "Target": F(Str(_PATH), required=True),
        "ReadOnly": F(Bool()),
        "Consistency": F(None),
        "BindOptions": F(None),
        "VolumeOptions": F(None),
        "TmpfsOptions": F(None),
    },
    "a mount",
)
_HOST_CONFIG = Struct(
    {
        "Binds": F(ListOf(Str(r"[^\x00]{1,8192}"), 16)),
        "Mounts": F(ListOf(_MOUNT, 16)),
        "NetworkMode": F(Str(_NAME), required=True),
        "PidsLimit": F(Int(1), required=True, need="users' servers need a PID limit"),
        "SecurityOpt": F(_OPTS, required=True, need="users' servers need their security options"),
        "CapDrop": F(_CAPS, required=True, need="users' servers drop the capabilities"),
        "Memory": F(_NUMBER),
        "MemorySwap": F(Int(-1)),
        "MemoryReservation": F(_NUMBER),
        "NanoCpus": F(_NUMBER),
        "CpuPeriod": F(_NUMBER),
        "CpuQuota": F(_NUMBER),
        "CpuShares": F(_NUMBER),
        "AutoRemove": F(Bool()),
        "RestartPolicy": F(
            Struct(
                {
                    "Name": F(Str(choices=("no", "on-failure", "unless-stopped", "always"))),
                    "MaximumRetryCount": F(Int(0, 100)),
                }
            )
        ),
        "Init": F(Bool()),
        "ShmSize": F(_NUMBER),
        # The engine's default driver, or json-file; no options: another driver (syslog,
        # gelf, fluentd...) makes the engine connect from the host wherever it is told.
        "LogConfig": F(Struct({"Type": F(Str(choices=("json-file",))), "Config": F(None)})),
        "ReadonlyRootfs": F(Bool()),
        "IpcMode": F(Str(choices=("private", "none", "shareable"))),
        "CgroupnsMode": F(Str(choices=("private",))),
        # docker-py always writes these; only empty is let through (and not passed on).
        "Links": F(None),
        "PortBindings": F(None),
        "Privileged": F(None),
        "PublishAllPorts": F(None),
        "CapAdd": F(None),
        # Only for the GPU images: all GPUs, nothing else (check_device_requests).
        "DeviceRequests": F(ListOf(_DEVICE_REQUEST, 1)),
    },
    "HostConfig",
)
_ENDPOINT = Struct({}, "an endpoint")
_CREATE = Struct(
    {
        "Image": F(Str(r"[^\x00]{1,512}"), required=True),
        "Labels": F(_LABELS, required=True, need="this stack's labels"),
        "Env": F(_STRINGS),
        "Cmd": F(_STRINGS),
        "Entrypoint": F(_STRINGS),
        "ExposedPorts": F(MapOf(Str(r"[0-9]{1,5}(/(tcp|udp|sctp))?"), Nothing(), 16)),
        "Volumes": F(MapOf(Str(_PATH), Nothing(), 16)),
        "HostConfig": F(_HOST_CONFIG, required=True),
        "NetworkingConfig": F(
            Struct({"EndpointsConfig": F(MapOf(Str(_NAME), _ENDPOINT, 1))}, "NetworkingConfig")
        ),
        "WorkingDir": F(Str(_PATH)),
        "Tty": F(Bool()),
        "OpenStdin": F(Bool()),
        "StdinOnce": F(Bool()),
        "AttachStdin": F(Bool()),
        "AttachStdout": F(Bool()),
        "AttachStderr": F(Bool()),
        "NetworkDisabled": F(Bool()),
        "StopSignal": F(Str(_SIGNAL)),
        "StopTimeout": F(Int(0, 3600)),
        # docker-py writes these as null.
        "Hostname": F(None),
        "Domainname": F(None),
        "User": F(None),
        "MacAddress": F(None),
        "Healthcheck": F(None),
        "Runtime": F(None),
    },
    "a container",
)
_VOLUME = Struct(
    {
        "Name": F(Str(_NAME), required=True),
        "Labels": F(_LABELS, required=True, need="this stack's labels"),
        "Driver": F(Str(choices=("local",))),
        # `local` with type=none,o=bind,device=PATH is a bind mount of the host.
        "DriverOpts": F(None),
    },
    "a volume",
)
_NETWORK = Struct(
    {
        "Name": F(Str(_NAME), required=True),
        "Labels": F(_LABELS, required=True, need="this stack's labels"),
        "Driver": F(Str(choices=("bridge", "overlay"))),
        "CheckDuplicate": F(Bool()),
        "Internal": F(Bool()),
        "Attachable": F(Bool()),
        "Options": F(None),
        "IPAM": F(_IPAM),
        "EnableIPv6": F(None),
        "Scope": F(None),
        "Ingress": F(None),
        "ConfigOnly": F(None),
        "ConfigFrom": F(None),
    },
    "a network",
)
_CONNECT = Struct(
    {"Container": F(Str(_NAME), required=True), "EndpointConfig": F(None)}, "a connection"
)
# A service (Swarm): its spec, its task template and the task's container.
_SERVICE_MOUNT = Struct(
    {
        "Type": F(Str(choices=("volume", "bind")), required=True),
        "Source": F(Str(r"[^\x00:]{1,4096}"), required=True),
        "Target": F(Str(_PATH), required=True),
        "ReadOnly": F(Bool()),
        # The node's engine creates the volume from these labels; no driver, no options.
        "VolumeOptions": F(Struct({"Labels": F(_LABELS), "NoCopy": F(Bool())}, "VolumeOptions")),
        "Consistency": F(None),
        "BindOptions": F(None),
        "TmpfsOptions": F(None),
    },
    "a mount",
)
_PIDS = "users' servers need a PID limit"
_RESOURCES = Struct({"NanoCPUs": F(_NUMBER), "MemoryBytes": F(_NUMBER)})
_GENERIC = Struct(
    {"DiscreteResourceSpec": F(Struct({"Kind": F(Str(_NAME), True), "Value": F(Int(1), True)}))}
)  # a node's GPUs, asked for by hubd_swarm.py
_TASK_RESOURCES = Struct(
    {
        "Limits": F(
            Struct({**_RESOURCES.fields, "Pids": F(Int(1), True, need=_PIDS)}), True, need=_PIDS
        ),
        "Reservations": F(
            Struct({**_RESOURCES.fields, "GenericResources": F(ListOf(_GENERIC, 8))})
        ),
    },
    "Resources",
)
_CONTAINER_SPEC = Struct(
    {
        "Image": F(Str(r"[^\x00]{1,512}"), required=True),
        "Labels": F(_LABELS, required=True, need="this stack's labels"),
        "Command": F(_STRINGS),
        "Args": F(_STRINGS),
        "Env": F(_STRINGS),
        "Dir": F(Str(_PATH)),
        "Mounts": F(ListOf(_SERVICE_MOUNT, 16)),
        "CapabilityDrop": F(_CAPS, required=True, need="users' servers drop the capabilities"),
        "StopGracePeriod": F(_NUMBER),
        "StopSignal": F(Str(_SIGNAL)),
        "TTY": F(Bool()),
        "OpenStdin": F(Bool()),
        "ReadOnly": F(Bool()),
        "Init": F(Bool()),
        "Hostname": F(None),
        "User": F(None),
        "Healthcheck": F(None),
    },
    "ContainerSpec",
)
_TASK = Struct(
    {
        "ContainerSpec": F(_CONTAINER_SPEC, required=True),
        "Resources": F(_TASK_RESOURCES, required=True, need=_PIDS),
        "RestartPolicy": F(
            Struct(
                {
                    "Condition": F(Str(choices=("none", "on-failure", "any"))),
                    "Delay": F(_NUMBER),
                    "MaxAttempts": F(Int(0, 100)),
                    "Window": F(_NUMBER),
                }
            )
        ),
        "Placement": F(Struct({"Constraints": F(ListOf(Str(r"[^\x00]{1,512}"), 16))})),
        "Networks": F(ListOf(Struct({"Target": F(Str(_NAME), required=True)}), 1)),
        "ForceUpdate": F(_NUMBER),
        "Runtime": F(Str(choices=("container",))),
        # The node's default log driver: another one connects wherever it is told.
        "LogDriver": F(Struct({"Name": F(Str(choices=("json-file",))), "Options": F(None)})),
    },
    "TaskTemplate",
)
_SERVICE = Struct(
    {
        "Name": F(Str(_NAME), required=True),
        "Labels": F(_LABELS, required=True, need="this stack's labels"),
        "TaskTemplate": F(_TASK, required=True),
        # docker-py writes the mode's key in lower case.
        "Mode": F(
            Struct({"Replicated": F(Struct({"Replicas": F(Int(0, 1))}), spellings=("replicated",))})
        ),
        "EndpointSpec": F(Struct({"Mode": F(Str(choices=("vip", "dnsrr"))), "Ports": F(None)})),
        "Networks": F(None),
        "UpdateConfig": F(None),
        "RollbackConfig": F(None),
    },
    "a service",
)


# ---------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Policy:
    stack_label: str
    stack: str
    role_label: str
    user_role: str
    container_prefix: str
    volume_prefix: str
    user_network_prefix: str
    network_members: frozenset[str]
    images: frozenset[str]
    shared_folder: str | None
    shared_folder_readonly: bool
    pids_limit: int
    security_opt: frozenset[str]
    cap_drop: frozenset[str]
    swarm: bool = False
    swarm_network_prefix: str = ""
    volume_suffix: str = ""
    # People's networks' /29s come from this block; GPU images get the machine's GPUs.
    user_network_block: str | None = None
    gpu_images: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        return cls(
            stack_label=data["stack_label"],
            stack=data["stack"],
            role_label=data["role_label"],
            user_role=data["user_role"],
            container_prefix=data["container_prefix"],
            volume_prefix=data["volume_prefix"],
            user_network_prefix=data["user_network_prefix"],
            network_members=frozenset(data["network_members"]),
            images=frozenset(data["images"]),
            shared_folder=data.get("shared_folder"),
            shared_folder_readonly=bool(data.get("shared_folder_readonly", True)),
            pids_limit=int(data["pids_limit"]),
            security_opt=frozenset(data["security_opt"]),
            cap_drop=frozenset(data["cap_drop"]),
            swarm=bool(data.get("swarm")),
            swarm_network_prefix=str(data.get("swarm_network_prefix") or ""),
            volume_suffix=str(data.get("volume_suffix") or ""),
            user_network_block=data.get("user_network_block") or None,
            gpu_images=frozenset(data.get("gpu_images") or ()),
        )

    def owns(self, labels: Any) -> bool:
        labels = labels if isinstance(labels, dict) else {}
        return bool(
            labels.get(self.stack_label) == self.stack
            and labels.get(self.role_label) == self.user_role
        )

    def person(self, prefix: str, name: str, suffix: str = "") -> str | None:
        """The escaped username in `name` (prefix + DockerSpawner's escaping + suffix)."""
        found = re.fullmatch(
            re.escape(prefix) + "([a-z0-9][a-z0-9-]{0,127})" + re.escape(suffix), name
        )
        return found.group(1) if found else None


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the API version prefix
    query: dict[str, list[str]]
    body: Any = None  # parsed JSON, or None
    has_body: bool = False  # the request carried a body (JSON or not)


@dataclass
class Forward:
    """The request the gate sends: its own path, query and body."""

    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Route:
    """One line of the policy: method, path pattern (`{x}` is one segment, `{x*}` one or
    more), the query parameters allowed (name -> Str; each at most once, non-empty), the
    body's schema (None: no body at all) and the check that decides the rest."""

    method: str
    pattern: str
    check: str
    query: Mapping[str, Str] = field(default_factory=dict)
    body: Schema | None = None
    swarm: bool = False

    def match(self, parts: list[str]) -> dict[str, str] | None:
        want = self.pattern.split("/")
        if want[-2:-1] and want[-2].endswith("*}"):
            if len(parts) < len(want) or parts[-1] != want[-1]:
                return None
            parts = [*parts[: len(want) - 2], "/".join(parts[len(want) - 2 : -1]), parts[-1]]
        if len(parts) != len(want):
            return None
        found: dict[str, str] = {}
        for part, piece in zip(parts, want, strict=True):
            if piece.startswith("{"):
                found[piece.strip("{*}")] = part
            elif part != piece:
                return None
        return found

    def build(self, values: Mapping[str, str]) -> str:
        """The path the gate sends: the pattern with the (judged) values put in."""
        pieces = []
        for piece in self.pattern.split("/"):
            if piece.startswith("{"):
                piece = quote(values[piece.strip("{*}")], safe="/:@" if "*" in piece else "")
            pieces.append(piece)
        return "/" + "/".join(pieces)


_BOOL = Str(r"0|1|true|false|True|False")
_LOGS = {k: _BOOL for k in ("stdout", "stderr", "timestamps", "follow")} | {
    "tail": Str(r"all|[0-9]{1,9}"),
    "since": Str(r"[0-9]{1,12}"),
    "until": Str(r"[0-9]{1,12}"),
}
_REMOVE = {"v": _BOOL, "force": _BOOL, "link": _BOOL}
_PULL = {
    "fromImage": Str(r"[^\x00@]{1,512}"),
    "tag": Str(r"[A-Za-z0-9_.-]{1,128}|sha256:[0-9a-f]{64}"),  # docker-py: a digest as tag
}
_NETWORK_INSPECT = {"verbose": _BOOL, "scope": Str(choices=("local", "swarm"))}
_WAIT = {"condition": Str(choices=("not-running", "next-exit", "removed"))}

# The whole policy: (method, path, check, query parameters, body). Anything else is refused.
ROUTES: tuple[Route, ...] = (
    Route("GET", "_ping", "nothing"),
    Route("HEAD", "_ping", "nothing"),
    Route("GET", "version", "nothing"),
    Route("POST", "containers/create", "container_create", {"name": Str(_NAME)}, _CREATE),
    Route("GET", "containers/{id}/json", "container", {"size": _BOOL}),
    Route("GET", "containers/{id}/logs", "container", _LOGS),
    Route("POST", "containers/{id}/start", "container"),
    Route("POST", "containers/{id}/stop", "container", {"t": Str(r"[0-9]{1,5}")}),
    Route("POST", "containers/{id}/kill", "container", {"signal": Str(_SIGNAL)}),
    Route("POST", "containers/{id}/wait", "container", _WAIT),
    Route("DELETE", "containers/{id}", "container_remove", _REMOVE),
    Route("GET", "images/{ref*}/json", "image"),
    Route("POST", "images/create", "image_pull", _PULL),
    Route("GET", "volumes/{name}", "volume"),
    Route("POST", "volumes/create", "volume_create", body=_VOLUME),
    Route("GET", "networks/{name}", "network", _NETWORK_INSPECT),
    Route("POST", "networks/create", "network_create", body=_NETWORK),
    Route("POST", "networks/{name}/connect", "network_connect", body=_CONNECT),
    Route("GET", "nodes", "nothing", swarm=True),
    Route("GET", "nodes/{id}", "nothing", swarm=True),
    Route("POST", "services/create", "service_create", body=_SERVICE, swarm=True),
    Route("GET", "services/{id}", "service", {"insertDefaults": _BOOL}, swarm=True),
    Route("DELETE", "services/{id}", "service", swarm=True),
    Route("GET", "tasks", "tasks", {"filters": Str(r"[^\x00]{1,4096}")}, swarm=True),
)  # fmt: skip


def strip_version(path: str) -> str:
    """The path without its API version prefix. The client's version is checked (none, or
    1.24 and later) and then replaced by API_VERSION when the gate sends the request."""
    found = _VERSION_PREFIX.match(path)
    if not found:
        return path
    version = _CLIENT_VERSION.match(found.group(1))
    if not version or int(version.group(1)) < MIN_CLIENT_MINOR:
        raise Refused(f"API version {found.group(1)!r} is not spoken here (1.24 or later)")
    return path[found.end() :]


def split_path(path: str) -> list[str]:
    """The path's segments, decoded. An encoded slash, a dot segment, an empty segment or a
    NUL would make the engine see another path than the one judged: refused."""
    raw = path.split("/")
    if raw[:1] != [""] or "" in raw[1:]:
        raise Refused(f"odd path {path!r}")
    try:
        parts = [unquote(p, errors="strict") for p in raw[1:]]
    except UnicodeDecodeError:
        raise Refused(f"odd path {path!r}") from None
    if any(p in (".", "..") or "/" in p or "\x00" in p for p in parts):
        raise Refused(f"odd path {path!r}")
    return parts


_Ids = Mapping[str, str]


class Judge:
    """Decides about one request and writes the one the gate sends. `inspect(path)` asks the
    real engine (GET) and returns the parsed JSON, or None for 404."""

    def __init__(self, policy: Policy, inspect: Callable[[str], Any]) -> None:
        self.policy = policy
        self.inspect = inspect

    def route(self, method: str, parts: list[str]) -> tuple[Route, dict[str, str]]:
        allowed = [r for r in ROUTES if self.policy.swarm or not r.swarm]
        for route in allowed:
            found = route.match(parts)
            if found is not None and route.method == method:
                return route, found
        path = "/" + "/".join(parts)
        raise Refused(f"{method} {path} is not something hubd's spawner does")

    def check(self, request: Request) -> Forward:
        route, found = self.route(request.method, split_path(request.path))
        query = self._query(route, request.query)
        if route.body is None:
            if request.has_body or request.body is not None:
                raise Refused(f"{request.method} {request.path} takes no body")
            body = None
        else:
            if request.body is None:
                raise Refused(f"{request.method} {request.path} needs a JSON body")
            body = route.body.clean(request.body, getattr(route.body, "name", "") or "the body")
        checker: Callable[..., Mapping[str, str] | None] = getattr(self, f"_check_{route.check}")
        # A check may put the engine's id of what it judged into the path (so the engine acts
        # on that object, even if a name moves meanwhile) and rewrite the query.
        return Forward(route.build({**found, **(checker(found, query, body) or {})}), query, body)

    def _query(self, route: Route, query: dict[str, list[str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, values in query.items():
            schema = route.query.get(key)
            if schema is None:
                raise Refused(f"query parameter {key!r} is not allowed here")
            if len(values) != 1 or values[0] == "":
                raise Refused(f"query parameter {key!r} must be given once, not empty")
            out[key] = schema.clean(values[0], f"query parameter {key!r}")
        return out

    # -- nothing more to check

    def _check_nothing(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        return None

    # -- containers

    def _own_container(self, ident: str) -> str:
        """The full id of this hub's user server `ident` (the gate sends the id, so the
        engine acts on the container judged here even if a name changes meanwhile)."""
        if not re.fullmatch(_NAME, ident):
            raise Refused(f"odd container name {ident!r}")
        found = self.inspect(f"/containers/{quote(ident, safe='')}/json")
        if found is None:
            raise NotFoundHere(f"no such container: {ident}")
        if not self.policy.owns((found.get("Config") or {}).get("Labels")):
            raise Refused(f"container {ident!r} is not one of this hub's users' servers")
        return str(found["Id"])

    def _check_container(self, found: dict[str, str], query: dict[str, str], body: Any) -> _Ids:
        return {"id": self._own_container(found["id"])}

    def _check_container_remove(
        self, found: dict[str, str], query: dict[str, str], body: Any
    ) -> _Ids:
        if _truthy(query.get("link", "")):
            raise Refused("removing links is not allowed")
        return {"id": self._own_container(found["id"])}

    def _check_container_create(
        self, found: dict[str, str], query: dict[str, str], body: dict[str, Any]
    ) -> None:
        p = self.policy
        name = query.get("name", "")
        person = p.person(p.container_prefix + "-", name)
        if person is None:
            raise Refused(f"container names must be {p.container_prefix}-<person>")
        self._allowed_image(body["Image"])
        if not p.owns(body["Labels"]):
            raise Refused("a user's server must carry this stack's user-server labels")
        own_network = p.user_network_prefix + person
        host = body["HostConfig"]
        if host["NetworkMode"] != own_network:
            raise Refused(f"this server runs on its own network {own_network}")
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if set(endpoints) - {own_network}:
            raise Refused(f"this server joins only its own network {own_network}")
        if not host["PidsLimit"] <= p.pids_limit:
            raise Refused(f"users' servers need a PID limit of at most {p.pids_limit}")
        if set(host["SecurityOpt"]) != p.security_opt:
            raise Refused(f"users' servers run with security options {sorted(p.security_opt)}")
        if not p.cap_drop <= set(host["CapDrop"]):
            raise Refused(f"users' servers drop the capabilities {sorted(p.cap_drop)}")
        check_device_requests(p, body["Image"], host.get("DeviceRequests"))
        for bind in host.get("Binds", []):
            self._check_bind(bind)
        for mount in host.get("Mounts", []):
            self._check_mount(mount["Type"], mount["Source"], bool(mount.get("ReadOnly")))

    def _check_bind(self, bind: str) -> None:
        # The engine splits "source:target[:mode]" at colons (Linux).
        pieces = bind.split(":")
        if len(pieces) not in (2, 3) or not re.fullmatch(_PATH, pieces[1]):
            raise Refused(f"bind {bind!r} is not source:target[:mode]")
        mode = pieces[2] if len(pieces) == 3 else "rw"
        if mode not in ("rw", "ro"):
            raise Refused(f"bind mode {mode!r} is not allowed (rw or ro)")
        source = pieces[0]
        self._check_mount("bind" if source.startswith("/") else "volume", source, mode == "ro")

    def _check_mount(self, kind: str, source: str, read_only: bool) -> None:
        p = self.policy
        if (kind == "bind") != source.startswith("/"):
            raise Refused(f"mount source {source!r} does not match its type {kind}")
        if kind == "volume":
            return self._check_volume_name(source)
        if p.shared_folder is None or source != p.shared_folder:
            raise Refused(f"host folder {source!r} may not be mounted (only the shared folder)")
        if p.shared_folder_readonly and not read_only:
            raise Refused("the shared folder is mounted read-only")

    # -- images, volumes, networks

    def _allowed_image(self, ref: str) -> None:
        if ref not in self.policy.images:
            raise Refused(f"image {ref!r} is not one of the configured user images")

    def _check_image(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        self._allowed_image(found["ref"])

    def _check_image_pull(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        image, tag = query.get("fromImage", ""), query.get("tag", "")
        if not image or not tag:
            raise Refused("a pull names the image and its tag")
        self._allowed_image(f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}")

    def _check_volume_name(self, name: str) -> None:
        p = self.policy
        if p.person(p.volume_prefix, name, p.volume_suffix) is None:
            raise Refused(f"volume {name!r} is not a user volume of this hub")

    def _check_volume(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        self._check_volume_name(found["name"])

    def _check_volume_create(
        self, found: dict[str, str], query: dict[str, str], body: dict[str, Any]
    ) -> None:
        self._check_volume_name(body["Name"])
        if body["Labels"].get(self.policy.stack_label) != self.policy.stack:
            raise Refused("a user volume must carry this stack's label")

    def _network_person(self, name: str) -> tuple[str | None, bool]:
        p = self.policy
        person = p.person(p.user_network_prefix, name)
        if person is None and p.swarm and p.swarm_network_prefix:
            return p.person(p.swarm_network_prefix, name), True
        return person, False

    def _check_network(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        if self._network_person(found["name"])[0] is None:
            raise Refused(f"network {found['name']!r} is not a person's network of this hub")

    def _check_network_create(
        self, found: dict[str, str], query: dict[str, str], body: dict[str, Any]
    ) -> None:
        person, overlay = self._network_person(body["Name"])
        if person is None:
            raise Refused(f"network {body['Name']!r} is not a person's network of this hub")
        if overlay:
            if body.get("Driver") != "overlay" or body.get("Attachable") is not True:
                raise Refused("people's networks on a Swarm are attachable overlays")
        elif body.get("Driver", "bridge") != "bridge" or body.get("Attachable"):
            raise Refused("people's networks use the bridge driver")
        check_person_subnet(self.policy, body.get("IPAM"), overlay)
        if body["Labels"].get(self.policy.stack_label) != self.policy.stack:
            raise Refused("a person's network must carry this stack's label")

    def _check_network_connect(
        self, found: dict[str, str], query: dict[str, str], body: dict[str, Any]
    ) -> _Ids:
        name = found["name"]
        if self._network_person(name)[0] is None:
            raise Refused(f"network {name!r} is not a person's network of this hub")
        if body["Container"] not in self.policy.network_members:
            raise Refused("only the stack's own members join people's networks")
        network = self.inspect(f"/networks/{quote(name, safe='')}")
        if network is None:
            raise NotFoundHere(f"no such network: {name}")
        if (network.get("Labels") or {}).get(self.policy.stack_label) != self.policy.stack:
            raise Refused(f"network {name!r} was not made by this hub")
        return {"name": str(network["Id"])}

    # -- a Swarm: services, their tasks, the nodes

    def _own_service(self, ident: str) -> str:
        if not re.fullmatch(_NAME, ident):
            raise Refused(f"odd service name {ident!r}")
        found = self.inspect(f"/services/{quote(ident, safe='')}")
        if found is None:
            raise NotFoundHere(f"no such service: {ident}")
        if not self.policy.owns((found.get("Spec") or {}).get("Labels")):
            raise Refused(f"service {ident!r} is not one of this hub's users' servers")
        return str(found["ID"])

    def _check_service(self, found: dict[str, str], query: dict[str, str], body: Any) -> _Ids:
        return {"id": self._own_service(found["id"])}

    def _check_tasks(self, found: dict[str, str], query: dict[str, str], body: Any) -> None:
        # A task carries its service's whole spec, environment (API tokens) included: only
        # the tasks of this hub's people's services may be listed.
        filters = parse_json(query.get("filters", "{}").encode())
        if not isinstance(filters, dict) or not set(filters) <= {"service", "desired-state"}:
            raise Refused("tasks are listed by their service (and desired state)")
        wanted = {key: _filter_values(value) for key, value in filters.items()}
        services = wanted.get("service") or []
        if not services:
            raise Refused("tasks are listed by their service")
        states = wanted.get("desired-state") or []
        if not set(states) <= {"running", "shutdown", "accepted", "ready", "complete"}:
            raise Refused(f"desired-state {states} is not a task state")
        ids = {}
        for service in services:
            if self.policy.person(self.policy.container_prefix + "-", service) is None:
                raise Refused(f"service {service!r} is not one of this hub's users' servers")
            ids[self._own_service(service)] = True
        rebuilt: dict[str, Any] = {"service": ids}
        if states:
            rebuilt["desired-state"] = dict.fromkeys(states, True)
        query["filters"] = json.dumps(rebuilt)

    def _check_service_create(
        self, found: dict[str, str], query: dict[str, str], body: dict[str, Any]
    ) -> None:
        p = self.policy
        name = body["Name"]
        person = p.person(p.container_prefix + "-", name)
        if person is None:
            raise Refused(f"service names must be {p.container_prefix}-<person>")
        if not p.owns(body["Labels"]):
            raise Refused("a user's server must carry this stack's user-server labels")
        task = body["TaskTemplate"]
        spec = task["ContainerSpec"]
        self._allowed_image(spec["Image"])
        if not p.owns(spec["Labels"]):
            raise Refused("a user's server must carry this stack's user-server labels")
        if not p.cap_drop <= set(spec["CapabilityDrop"]):
            raise Refused(f"users' servers drop the capabilities {sorted(p.cap_drop)}")
        if not task["Resources"]["Limits"]["Pids"] <= p.pids_limit:
            raise Refused(f"users' servers need a PID limit of at most {p.pids_limit}")
        own_network = p.swarm_network_prefix + person
        if [n["Target"] for n in task.get("Networks", [])] != [own_network]:
            raise Refused(f"this server joins only its own network {own_network}")
        for mount in spec.get("Mounts", []):
            self._check_mount(mount["Type"], mount["Source"], bool(mount.get("ReadOnly")))
            labels = (mount.get("VolumeOptions") or {}).get("Labels") or {}
            if mount["Type"] == "bind" and mount.get("VolumeOptions"):
                raise Refused("a bind mount has no volume options")
            # The node's engine creates the volume from these labels: hubd finds it by them.
            if mount["Type"] == "volume" and labels.get(p.stack_label) != p.stack:
                raise Refused("a user volume must carry this stack's label")


def _filter_values(value: Any) -> list[str]:
    """A filter's values in either of the engine's forms: ["a"] or {"a": true}."""
    if isinstance(value, dict) and all(v is True for v in value.values()):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused("a filter is a list of strings")
    return value


# -- people's subnets and GPUs : kept apart from the table above.


def check_person_subnet(policy: Policy, ipam: Any, overlay: bool) -> None:
    """With a block, a person's bridge network has exactly one /29 of it; an overlay (the
    Swarm's own pools) or a hub without a block (an older hubd's settings): no IPAM at all."""
    if overlay or policy.user_network_block is None:
        if ipam:
            raise Refused("IPAM is not allowed for this person's network")
        return
    if not ipam:
        raise Refused("a person's network has one subnet of the people's block")
    try:
        subnet = ipaddress.IPv4Network(ipam["Config"][0]["Subnet"])
    except ValueError:
        raise Refused(f"odd subnet {ipam['Config'][0]['Subnet']!r}") from None
    block = ipaddress.IPv4Network(policy.user_network_block)
    if subnet.prefixlen != 29 or not subnet.subnet_of(block):
        raise Refused(f"a person's subnet is a /29 inside {block}")


def check_device_requests(policy: Policy, image: str, requests: Any) -> None:
    """Servers from the GPU images may ask for all of the machine's GPUs, exactly as
    DeviceRequest(count=-1, capabilities=[["gpu"]]) does (the schema allows no more)."""
    if requests and image not in policy.gpu_images:
        raise Refused(f"image {image!r} is not one of the GPU images")


def _truthy(value: str) -> bool:
    # The engine's httputils.BoolValue.
    return value.strip().lower() not in ("", "0", "no", "false", "none")


class NotFoundHere(Exception):
    """The engine has no such object: answered 404 by the gate itself."""


# ---------------------------------------------------------------------------- the server


class _EngineConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def engine_inspector(engine_socket: str, timeout: float) -> Callable[[str], Any]:
    def inspect(path: str) -> Any:
        conn = _EngineConnection(engine_socket, timeout)
        try:
            conn.request("GET", f"/v{API_VERSION}{path}")
            response = conn.getresponse()
            data = response.read(MAX_INSPECT_BYTES)
        finally:
            conn.close()
        if response.status == 404:
            return None
        if response.status != 200:
            raise Refused(f"the engine could not show {path}: HTTP {response.status}")
        return json.loads(data)

    return inspect


def parse_query(query: str) -> dict[str, list[str]]:
    """Every parameter with every value, blank ones too (Go's Form.Get reads the first one,
    blank or not; Python's parse_qs would drop it)."""
    out: dict[str, list[str]] = {}
    if not query:
        return out
    for piece in query.split("&"):
        if ";" in piece:
            raise Refused("';' in the query")
        key, _, value = piece.partition("=")
        try:
            key = unquote(key.replace("+", " "), errors="strict")
            value = unquote(value.replace("+", " "), errors="strict")
        except UnicodeDecodeError:
            raise Refused("the query is not UTF-8") from None
        out.setdefault(key, []).append(value)
    return out


class GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GateServer

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            return
        # One request per connection (parse_request sets keep-alive for HTTP/1.1): the
        # engine's answer, passed on as it is, says "Connection: close".
        self.close_connection = True
        try:
            self._serve()
        except Refused as refusal:
            log.warning("refused %s %s: %s", self.command, self.path, refusal)
            self._answer(403, str(refusal))
        except NotFoundHere as missing:
            self._answer(404, str(missing))
        except (OSError, ValueError) as exc:
            log.warning("failed %s %s: %s", self.command, self.path, exc)
            self._answer(502, f"hubd's docker gate: {exc}")

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding") or self.headers.get("Upgrade"):
            raise Refused("chunked or upgraded requests are not allowed")
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or not re.fullmatch(r"[0-9]{0,9}", lengths[0] if lengths else ""):
            raise Refused("one Content-Length, a number")
        length = int(lengths[0]) if lengths and lengths[0] else 0
        if length > MAX_BODY_BYTES:
            raise Refused("request body too large")
        raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.scheme or url.netloc or url.fragment:
            raise Refused("a plain path, please")
        body = None
        if raw_body:
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise Refused("request bodies are JSON (Content-Type: application/json)")
            body = parse_json(raw_body)
        request = Request(
            self.command, strip_version(url.path), parse_query(url.query), body, bool(raw_body)
        )
        forward = self.server.judge.check(request)
        self._forward(forward)

    def _forward(self, forward: Forward) -> None:
        target = f"/v{API_VERSION}{forward.path}"
        if forward.query:
            target += "?" + urlencode(forward.query)
        data = b"" if forward.body is None else json.dumps(forward.body).encode()
        head = [f"{self.command} {target} HTTP/1.1", "Host: docker", "Connection: close"]
        if forward.body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        elif self.command in ("POST", "PUT"):
            head.append("Content-Length: 0")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
            engine.connect(self.server.engine_socket)
            engine.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
            while chunk := engine.recv(COPY_CHUNK_BYTES):
                self.wfile.write(chunk)
                self.wfile.flush()

    def _answer(self, status: int, message: str) -> None:
        data = json.dumps({"message": f"hubd's docker gate: {message}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class GateServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, listen: str, engine_socket: str, policy: Policy, timeout: float) -> None:
        if os.path.exists(listen) or os.path.islink(listen):
            os.unlink(listen)  # left by an earlier run of this container
        old_umask = os.umask(0o177)
        try:
            super().__init__(listen, GateHandler)
        finally:
            os.umask(old_umask)
        self.engine_socket = engine_socket
        self.judge = Judge(policy, engine_inspector(engine_socket, timeout))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    policy = Policy.from_json(os.environ["HUBD_GATE_POLICY"])
    listen = os.environ.get("HUBD_GATE_LISTEN", "/run/hubd-gate/docker.sock")
    engine = os.environ.get("HUBD_GATE_ENGINE", "/var/run/docker.sock")
    # hubd's Timing.gate_engine_timeout_s: bounds the gate's own inspect calls.
    timeout = float(os.environ["HUBD_GATE_ENGINE_TIMEOUT_S"])
    server = GateServer(listen, engine, policy, timeout)
    log.info("hubd's docker gate: listening on %s for stack %s", listen, policy.stack)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
