"""hubd's docker gate: the hub's only way to the Docker engine.

The hub faces the LAN; the engine's socket is root on the host. So the hub does not get the
socket. It gets this gate's socket instead, which runs in its own container (no network, no
capabilities) and passes on only what DockerSpawner does for hubd's users:

- create a container that carries this stack's user-server labels and name prefix, from one
  of the configured images, on that person's own network, with only the stack's user volumes and the
  configured shared folder mounted, with the PID limit, `no-new-privileges` and no
  capabilities, and nothing else of the host (no privileged mode, devices, host namespaces,
  extra capabilities, other mounts, unmasked /proc paths or runtimes);
- inspect, start, stop, kill, wait for, read the logs of and remove such containers;
- inspect and pull the configured images; inspect and create the stack's user volumes;
- inspect and create people's networks, and connect the stack's own members (the hub) to them;
- the engine's version and ping;
- on a Swarm (after `hubd node add`): create a service for a person's server under the same
  rules (its name, labels, image, mounts, capabilities and PID limit; one task, no published
  ports, only that person's own overlay network), inspect, list the tasks of and remove such
  services, read the nodes (where people's files are), and create people's attachable overlay
  networks.

Everything else (exec, attach, archives, other containers, images, volumes, networks, builds,
swarm, plugins, the system) gets 403 with a message that says why. Requests are read and
judged whole (method, path, query and the JSON body), then passed to the engine unchanged and
the answer streamed back; each connection carries one request.

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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

log = logging.getLogger("hubd.docker_gate")

MAX_BODY_BYTES = 1024 * 1024
MAX_INSPECT_BYTES = 4 * 1024 * 1024
COPY_CHUNK_BYTES = 64 * 1024

_VERSION_PREFIX = re.compile(r"^/v[0-9]+(\.[0-9]+)?(?=/)")
_CONTAINER_OPS = {
    ("GET", "json"),
    ("GET", "logs"),
    ("POST", "start"),
    ("POST", "stop"),
    ("POST", "kill"),
    ("POST", "wait"),
    ("DELETE", ""),
}
# Keys of a create request's body and HostConfig that may be given at all; any other key must
# be absent or empty. A new engine feature is thereby refused until it is looked at.
_CREATE_KEYS = {
    "Image", "Labels", "Env", "Cmd", "Entrypoint", "ExposedPorts", "Volumes", "HostConfig",
    "NetworkingConfig", "Hostname", "Domainname", "User", "WorkingDir", "Tty", "OpenStdin",
    "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr", "StopSignal", "StopTimeout",
    "Healthcheck", "NetworkDisabled",
}  # fmt: skip
_HOST_CONFIG_KEYS = {
    "Binds", "Mounts", "NetworkMode", "PidsLimit", "SecurityOpt", "CapDrop", "Memory",
    "MemorySwap", "MemoryReservation", "NanoCpus", "CpuPeriod", "CpuQuota", "CpuShares",
    "AutoRemove", "RestartPolicy", "Init", "ShmSize", "Ulimits", "LogConfig", "OomScoreAdj",
    "ReadonlyRootfs", "IpcMode", "PidMode", "UTSMode", "UsernsMode", "CgroupnsMode",
}  # fmt: skip
_PRIVATE_NAMESPACE = {"", "private", "none", "shareable"}
# The same for a service (Swarm): its spec, its task template and the task's container.
_SERVICE_KEYS = {"Name", "Labels", "TaskTemplate", "Mode", "EndpointSpec"}
_TASK_KEYS = {
    "ContainerSpec", "Resources", "RestartPolicy", "Placement", "Networks", "LogDriver",
    "ForceUpdate", "Runtime",
}  # fmt: skip
_CONTAINER_SPEC_KEYS = {
    "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Mounts",
    "StopGracePeriod", "StopSignal", "TTY", "OpenStdin", "ReadOnly", "Init", "CapabilityDrop",
    "Healthcheck",
}  # fmt: skip


class Refused(Exception):
    """A request the gate does not pass on; the message goes back to the hub."""


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
            user_network_block=data.get("user_network_block") or None,
            gpu_images=frozenset(data.get("gpu_images") or ()),
        )

    def owns(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return (
            labels.get(self.stack_label) == self.stack
            and labels.get(self.role_label) == self.user_role
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the API version prefix
    query: dict[str, list[str]]
    body: Any  # parsed JSON, or None


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False, [], {})


def _image_ref(image: str | None, tag: str | None = None) -> str:
    image = image or ""
    if tag and "@" not in image:
        image = f"{image}:{tag}"
    return image


class Judge:
    """Decides about one request. `inspect(path)` asks the real engine (GET) and returns the
    parsed JSON, or None for 404."""

    def __init__(self, policy: Policy, inspect: Any) -> None:
        self.policy = policy
        self.inspect = inspect

    def check(self, request: Request) -> None:
        method, parts = request.method, [unquote(p) for p in request.path.split("/") if p]
        if any("/" in part or part in (".", "..") for part in parts[:2]) or any(
            part in (".", "..") for part in parts
        ):
            # An encoded slash or a dot segment would make the engine see another path than
            # the one judged here.
            raise Refused(f"odd path {request.path!r}")
        if method in ("GET", "HEAD") and parts in (["_ping"], ["version"]):
            return
        if parts == ["containers", "create"] and method == "POST":
            return self._check_create(request)
        if parts[:1] == ["containers"] and len(parts) in (2, 3):
            op = parts[2] if len(parts) == 3 else ""
            if (method, op) in _CONTAINER_OPS:
                return self._check_container(parts[1])
        if parts[:1] == ["images"] and method == "GET" and len(parts) >= 3 and parts[-1] == "json":
            return self._check_image("/".join(parts[1:-1]))
        if parts == ["images", "create"] and method == "POST":
            query = {k: v[0] for k, v in request.query.items() if v}
            if query.get("fromSrc") or query.get("repo"):
                raise Refused("importing images is not allowed")
            return self._check_image(_image_ref(query.get("fromImage"), query.get("tag")))
        if parts[:1] == ["volumes"] and len(parts) == 2 and method == "GET":
            return self._check_volume_name(parts[1])
        if parts == ["volumes", "create"] and method == "POST":
            return self._check_volume_create(request.body)
        if parts[:1] == ["networks"] and len(parts) == 2 and method == "GET":
            return self._check_network_name(parts[1])
        if parts == ["networks", "create"] and method == "POST":
            return self._check_network_create(request.body)
        if parts[:1] == ["networks"] and parts[2:] == ["connect"] and method == "POST":
            return self._check_network_connect(parts[1], request.body)
        if self.policy.swarm and self._check_swarm(method, parts, request):
            return
        raise Refused(f"{method} {request.path} is not something hubd's spawner does")

    # -- containers

    def _check_container(self, ident: str) -> None:
        found = self.inspect(f"/containers/{quote(ident, safe='')}/json")
        if found is None:
            return  # the engine answers 404 itself
        if not self.policy.owns(found.get("Config", {}).get("Labels")):
            raise Refused(f"container {ident!r} is not one of this hub's users' servers")

    def _check_create(self, request: Request) -> None:
        p, body = self.policy, request.body
        if not isinstance(body, dict):
            raise Refused("a container needs a JSON body")
        name = (request.query.get("name") or [""])[0]
        if not name.startswith(p.container_prefix + "-"):
            raise Refused(f"container names must start with {p.container_prefix}-")
        for key, value in body.items():
            if key not in _CREATE_KEYS and not _empty(value):
                raise Refused(f"{key} is not allowed for a user's server")
        self._check_image(body.get("Image"))
        if not p.owns(body.get("Labels")):
            raise Refused("a user's server must carry this stack's user-server labels")
        own_network = p.user_network_prefix + name[len(p.container_prefix) + 1 :]
        host = dict(body.get("HostConfig") or {})
        check_device_requests(p, body.get("Image"), host.pop("DeviceRequests", None))
        self._check_host_config(host, own_network)
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if set(endpoints) - {own_network}:
            raise Refused(f"this server joins only its own network {own_network}")

    def _check_host_config(self, host: dict[str, Any], own_network: str) -> None:
        p = self.policy
        for key in ("MaskedPaths", "ReadonlyPaths"):
            # Even an empty list counts: it replaces the engine's defaults (unmasks /proc).
            if host.get(key) is not None:
                raise Refused(f"HostConfig.{key} is not allowed for a user's server")
        for key, value in host.items():
            if key not in _HOST_CONFIG_KEYS and not _empty(value):
                raise Refused(f"HostConfig.{key} is not allowed for a user's server")
        if host.get("NetworkMode") != own_network:
            raise Refused(f"this server runs on its own network {own_network}")
        for key in ("IpcMode", "PidMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
            if (host.get(key) or "") not in _PRIVATE_NAMESPACE:
                raise Refused(f"HostConfig.{key} must stay private")
        limit = host.get("PidsLimit") or 0
        if not 0 < limit <= p.pids_limit:
            raise Refused(f"users' servers need a PID limit of at most {p.pids_limit}")
        if set(host.get("SecurityOpt") or []) != p.security_opt:
            raise Refused(f"users' servers run with security options {sorted(p.security_opt)}")
        if not p.cap_drop <= set(host.get("CapDrop") or []):
            raise Refused(f"users' servers drop the capabilities {sorted(p.cap_drop)}")
        for bind in host.get("Binds") or []:
            source, _, rest = str(bind).partition(":")
            mode = rest.partition(":")[2]
            self._check_mount(source, "ro" in mode.split(","))
        for mount in host.get("Mounts") or []:
            kind = mount.get("Type")
            if kind not in ("volume", "bind"):
                raise Refused(f"mounts of type {kind!r} are not allowed")
            source = str(mount.get("Source") or "")
            if (kind == "bind") != source.startswith("/"):
                raise Refused(f"mount source {source!r} does not match its type {kind}")
            if not _empty(mount.get("VolumeOptions")) or not _empty(mount.get("BindOptions")):
                raise Refused("mount options are not allowed")
            self._check_mount(source, bool(mount.get("ReadOnly")))

    def _check_mount(self, source: str, read_only: bool) -> None:
        p = self.policy
        if not source.startswith("/"):
            return self._check_volume_name(source)
        if p.shared_folder is None or os.path.normpath(source) != p.shared_folder:
            raise Refused(f"host folder {source!r} may not be mounted (only the shared folder)")
        if p.shared_folder_readonly and not read_only:
            raise Refused("the shared folder is mounted read-only")

    # -- images, volumes

    def _check_image(self, ref: str | None) -> None:
        if not ref or ref not in self.policy.images:
            raise Refused(f"image {ref!r} is not one of the configured user images")

    def _check_volume_name(self, name: str) -> None:
        if not name.startswith(self.policy.volume_prefix):
            raise Refused(f"volume {name!r} is not a user volume of this hub")

    def _check_volume_create(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise Refused("a volume needs a JSON body")
        self._check_volume_name(str(body.get("Name") or ""))
        if (body.get("Labels") or {}).get(self.policy.stack_label) != self.policy.stack:
            raise Refused("a user volume must carry this stack's label")
        if (body.get("Driver") or "local") != "local" or not _empty(body.get("DriverOpts")):
            raise Refused("user volumes use the local driver without options")

    def _network_prefixes(self) -> tuple[str, ...]:
        p = self.policy
        if p.swarm:
            return (p.user_network_prefix, p.swarm_network_prefix)
        return (p.user_network_prefix,)

    def _check_network_name(self, name: str) -> None:
        if not any(name.startswith(prefix) for prefix in self._network_prefixes()):
            raise Refused(f"network {name!r} is not a person's network of this hub")

    def _check_network_create(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise Refused("a network needs a JSON body")
        name = str(body.get("Name") or "")
        self._check_network_name(name)
        overlay = self.policy.swarm and name.startswith(self.policy.swarm_network_prefix)
        allowed = ("Name", "Driver", "Labels", "CheckDuplicate", "Internal")
        allowed += ("Attachable",) if overlay else ()
        for key, value in body.items():
            if key not in allowed and key != "IPAM" and not _empty(value):
                raise Refused(f"{key} is not allowed for a person's network")
        if not overlay:
            check_person_subnet(self.policy, body.get("IPAM"))
        elif not _empty(body.get("IPAM")):
            raise Refused("IPAM is not allowed for a person's overlay network")
        if overlay:
            if body.get("Driver") != "overlay" or body.get("Attachable") is not True:
                raise Refused("people's networks on a Swarm are attachable overlays")
        elif (body.get("Driver") or "bridge") != "bridge":
            raise Refused("people's networks use the bridge driver")
        if (body.get("Labels") or {}).get(self.policy.stack_label) != self.policy.stack:
            raise Refused("a person's network must carry this stack's label")

    def _check_network_connect(self, name: str, body: Any) -> None:
        self._check_network_name(name)
        if not isinstance(body, dict) or body.get("Container") not in self.policy.network_members:
            raise Refused("only the stack's own members join people's networks")
        endpoint = body.get("EndpointConfig") or {}
        if any(not _empty(value) for value in endpoint.values()):
            raise Refused("endpoint settings are not allowed")

    # -- a Swarm: services, their tasks, the nodes

    def _check_swarm(self, method: str, parts: list[str], request: Request) -> bool:
        """True when a Swarm request is let through; raises when it is refused; False when
        it is not a Swarm request the gate knows."""
        if method == "GET" and parts[:1] == ["nodes"] and len(parts) <= 2:
            return True  # where people's files are; no tokens or secrets in there
        if parts == ["services", "create"] and method == "POST":
            self._check_service_create(request.body)
            return True
        if parts[:1] == ["services"] and len(parts) == 2 and method in ("GET", "DELETE"):
            self._check_service(parts[1])
            return True
        if parts == ["tasks"] and method == "GET":
            self._check_task_filter(request.query)
            return True
        return False

    def _check_service(self, ident: str) -> None:
        found = self.inspect(f"/services/{quote(ident, safe='')}")
        if found is None:
            return  # the engine answers 404 itself
        if not self.policy.owns((found.get("Spec") or {}).get("Labels")):
            raise Refused(f"service {ident!r} is not one of this hub's users' servers")

    def _check_task_filter(self, query: dict[str, list[str]]) -> None:
        # A task carries its service's whole spec, environment (API tokens) included: only
        # the tasks of this hub's people's services may be listed.
        try:
            filters = json.loads((query.get("filters") or ["{}"])[0])
        except ValueError:
            raise Refused("tasks are listed by their service") from None
        services = filters.get("service") if isinstance(filters, dict) else None
        if isinstance(services, dict):
            services = [name for name, wanted in services.items() if wanted]
        if not services or not isinstance(services, list):
            raise Refused("tasks are listed by their service")
        for service in services:
            if not str(service).startswith(self.policy.container_prefix + "-"):
                raise Refused(f"service {service!r} is not one of this hub's users' servers")
            self._check_service(str(service))

    def _check_service_create(self, body: Any) -> None:
        p = self.policy
        if not isinstance(body, dict):
            raise Refused("a service needs a JSON body")
        name = str(body.get("Name") or "")
        if not name.startswith(p.container_prefix + "-"):
            raise Refused(f"service names must start with {p.container_prefix}-")
        _only(body, _SERVICE_KEYS, "a user's service")
        if not p.owns(body.get("Labels")):
            raise Refused("a user's server must carry this stack's user-server labels")
        # docker-py writes the mode in lower case; the engine reads either.
        mode = {str(k).lower(): v for k, v in (body.get("Mode") or {}).items()}
        replicas = (mode.get("replicated") or {}).get("Replicas", 1)
        if set(mode) - {"replicated"} or replicas not in (0, 1):
            raise Refused("a user's server is one replicated task")
        endpoint = body.get("EndpointSpec") or {}
        if endpoint.get("Ports") or set(endpoint) - {"Mode", "Ports"}:
            raise Refused("a user's server publishes no ports")
        task = body.get("TaskTemplate") or {}
        _only(task, _TASK_KEYS, "a user's task")
        if not _empty(task.get("Runtime")) and task.get("Runtime") != "container":
            raise Refused("a user's task runs a container")
        spec = task.get("ContainerSpec") or {}
        _only(spec, _CONTAINER_SPEC_KEYS, "a user's container")
        self._check_image(spec.get("Image"))
        if not p.owns(spec.get("Labels")):
            raise Refused("a user's server must carry this stack's user-server labels")
        if not p.cap_drop <= set(spec.get("CapabilityDrop") or []):
            raise Refused(f"users' servers drop the capabilities {sorted(p.cap_drop)}")
        limits = (task.get("Resources") or {}).get("Limits") or {}
        if not 0 < (limits.get("Pids") or 0) <= p.pids_limit:
            raise Refused(f"users' servers need a PID limit of at most {p.pids_limit}")
        own_network = p.swarm_network_prefix + name[len(p.container_prefix) + 1 :]
        attachments = task.get("Networks") or []
        for attachment in attachments:
            _only(attachment, {"Target"}, "a user's network attachment")
        if [attachment.get("Target") for attachment in attachments] != [own_network]:
            raise Refused(f"this server joins only its own network {own_network}")
        for mount in spec.get("Mounts") or []:
            self._check_service_mount(mount)

    def _check_service_mount(self, mount: dict[str, Any]) -> None:
        kind = mount.get("Type")
        source = str(mount.get("Source") or "")
        if kind not in ("volume", "bind") or (kind == "bind") != source.startswith("/"):
            raise Refused(f"mount {source!r} of type {kind!r} is not allowed")
        options = mount.get("VolumeOptions") or {}
        if set(options) - {"Labels"} or not _empty(mount.get("BindOptions")):
            raise Refused("mount options other than a volume's labels are not allowed")
        self._check_mount(source, bool(mount.get("ReadOnly")))
        # The node's engine creates the volume from these labels: hubd finds it by them.
        labels = options.get("Labels") or {}
        if kind == "volume" and labels.get(self.policy.stack_label) != self.policy.stack:
            raise Refused("a user volume must carry this stack's label")


# -- people's subnets and GPUs (issue 24): kept apart so the rules above stay as they were.

_GPU_REQUEST = {"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]]}


def check_person_subnet(policy: Policy, ipam: Any) -> None:
    """With a block, a person's bridge network has exactly one /29 of it and nothing else;
    without one (an older hubd's settings), no IPAM at all."""
    if policy.user_network_block is None:
        if not _empty(ipam):
            raise Refused("IPAM is not allowed for a person's network")
        return
    if not isinstance(ipam, dict) or set(ipam) - {"Driver", "Config", "Options"}:
        raise Refused("a person's network has one subnet of the people's block")
    if (ipam.get("Driver") or "default") != "default" or not _empty(ipam.get("Options")):
        raise Refused("a person's network uses the default IPAM driver without options")
    pools = ipam.get("Config")
    if not isinstance(pools, list) or len(pools) != 1 or not isinstance(pools[0], dict):
        raise Refused("a person's network has exactly one subnet")
    pool = pools[0]
    if any(not _empty(value) for key, value in pool.items() if key != "Subnet"):
        raise Refused("a person's subnet has no gateway, range or extra addresses")
    try:
        subnet = ipaddress.IPv4Network(str(pool.get("Subnet") or ""))
    except ValueError:
        raise Refused(f"odd subnet {pool.get('Subnet')!r}") from None
    block = ipaddress.IPv4Network(policy.user_network_block)
    if subnet.prefixlen != 29 or not subnet.subnet_of(block):
        raise Refused(f"a person's subnet is a /29 inside {block}")


def check_device_requests(policy: Policy, image: Any, requests: Any) -> None:
    """Servers from the GPU images may ask for all of the machine's GPUs, exactly as
    DeviceRequest(count=-1, capabilities=[["gpu"]]) does; nobody gets any other device."""
    if _empty(requests):
        return
    if image not in policy.gpu_images:
        raise Refused(f"image {image!r} is not one of the GPU images")
    if not isinstance(requests, list) or len(requests) != 1 or not isinstance(requests[0], dict):
        raise Refused("a GPU server asks for the machine's GPUs in one request")
    request = {key: value for key, value in requests[0].items() if not _empty(value)}
    if request != {key: value for key, value in _GPU_REQUEST.items() if not _empty(value)}:
        raise Refused("a GPU server asks for all GPUs (count -1, capability gpu) and nothing else")


def _only(body: dict[str, Any], allowed: set[str], what: str) -> None:
    for key, value in body.items():
        if key not in allowed and not _empty(value):
            raise Refused(f"{key} is not allowed for {what}")


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


def engine_inspector(engine_socket: str, timeout: float) -> Any:
    def inspect(path: str) -> Any:
        conn = _EngineConnection(engine_socket, timeout)
        try:
            conn.request("GET", path)
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


class GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GateServer

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            return
        try:
            self._serve()
        except Refused as refusal:
            log.warning("refused %s %s: %s", self.command, self.path, refusal)
            self._answer(403, str(refusal))
        except (OSError, ValueError) as exc:
            log.warning("failed %s %s: %s", self.command, self.path, exc)
            self._answer(502, f"hubd's docker gate: {exc}")

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding") or self.headers.get("Upgrade"):
            raise Refused("chunked or upgraded requests are not allowed")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise Refused("request body too large")
        raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        body = None
        if raw_body and "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw_body)
        request = Request(
            method=self.command,
            path=_VERSION_PREFIX.sub("", url.path),
            query=parse_qs(url.query),
            body=body,
        )
        self.server.judge.check(request)
        self._forward(raw_body)

    def _forward(self, raw_body: bytes) -> None:
        head = [f"{self.command} {self.path} HTTP/1.1"]
        for key, value in self.headers.items():
            if key.lower() not in ("connection", "keep-alive", "proxy-connection"):
                head.append(f"{key}: {value}")
        head.append("Connection: close")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
            engine.connect(self.server.engine_socket)
            engine.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw_body)
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
