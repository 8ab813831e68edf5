"""Which Docker engine hubd talks to, and connecting to it with failures turned into one line.

One resolver for everything that needs the engine: the client, the socket the docker gate
bind-mounts, `hubd status`, and every error message. The order is the Docker CLI's own:
`DOCKER_HOST`, then `DOCKER_CONTEXT`, then the CLI's current context (read with docker-py's
`ContextAPI`, which honours `DOCKER_CONFIG`), then the default socket. Where the default socket
is missing, the places rootless Docker, Docker Desktop, Colima and OrbStack put theirs are tried.

Only local Unix sockets are accepted: the hub reaches Docker through hubd's docker gate, a
container that must bind-mount the engine's socket, and a `tcp://` or `ssh://` engine has no
socket on this machine to mount (nor would its TLS keys or ssh agent reach the gate).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import requests
from docker.context import ContextAPI
from docker.context.config import get_current_context_name
from docker.errors import DockerException
from docker.utils.config import find_config_file

from hubd.errors import DockerPermissionDenied, DockerUnavailable, EngineAddressError

DEFAULT_SOCKET = "/var/run/docker.sock"
# Inside the VM of Docker Desktop (macOS, Windows and Linux), Colima and OrbStack the engine's
# socket is here, whatever the path on the host: a container must mount this one.
VM_SOCKET = "/var/run/docker.sock"


class EngineKind:
    """What kind of engine answers (names shown by `hubd status`)."""

    ENGINE = "Docker Engine"
    ROOTLESS = "Docker Engine (rootless)"
    DESKTOP = "Docker Desktop"
    COLIMA = "Colima"
    ORBSTACK = "OrbStack"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the engine is reached: a Unix socket on this machine, and how it was chosen."""

    socket_path: str
    source: str  # "DOCKER_HOST", "context NAME", "default", "found at a known place"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def describe(self) -> str:
        """The endpoint for messages: `unix:///path (Docker context 'x')`."""
        if self.source.startswith("context "):
            return f"{self.url} (Docker context '{self.source[len('context ') :]}')"
        if self.source == "DOCKER_HOST":
            return f"{self.url} (DOCKER_HOST)"
        return self.url


def _unix_path(host: str, where: str) -> str:
    """The socket path of a `unix://` address; anything else refused in one line."""
    scheme = urlsplit(host).scheme if "://" in host else ""
    if scheme == "http+unix":  # docker-py's spelling of a context's unix:// host
        host, scheme = host[len("http+") :], "unix"
    if scheme in ("tcp", "ssh", "http", "https"):
        raise EngineAddressError(
            f"{where} {host!r}: hubd needs the engine's local Unix socket, because the "
            "hub reaches Docker through hubd's docker gate, a container that mounts that "
            "socket; run hubd on the engine's machine, with a unix:// address or none"
        )
    path = host[len("unix://") :] if scheme == "unix" else ""
    if not path.startswith("/"):
        raise EngineAddressError(
            f"{where} {host!r}, not a Docker address hubd can use: give "
            "unix:///path/to/docker.sock, or unset it for the default"
        )
    return path


def _known_sockets(environ: Mapping[str, str]) -> list[str]:
    """Where engines other than a system dockerd put their socket, in the order tried."""
    home = Path(environ.get("HOME") or Path.home())
    places: list[str] = []
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        places.append(f"{runtime}/docker.sock")  # rootless Docker
    places += [
        str(home / ".docker/desktop/docker.sock"),  # Docker Desktop on Linux
        str(home / ".docker/run/docker.sock"),  # Docker Desktop on macOS
        str(home / ".colima/default/docker.sock"),
        str(home / ".colima/docker.sock"),
        str(home / ".orbstack/run/docker.sock"),
    ]
    return places


def _check_docker_config() -> None:
    """A Docker CLI config file that is not JSON is refused, naming it: docker-py would read
    it as "no current context" and hubd would quietly use another engine than `docker` does."""
    path = find_config_file()  # docker-py's own search: DOCKER_CONFIG, then ~/.docker
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError) as exc:
        raise EngineAddressError(
            f"the Docker CLI's config file {path} cannot be read ({_first_line(exc)}): "
            "mend or move it (it names the current Docker context), then try again"
        ) from None
    if not isinstance(data, dict):
        raise EngineAddressError(
            f"the Docker CLI's config file {path} is not a JSON object: mend or move it"
        )


def _context_endpoint(name: str | None) -> Endpoint | None:
    """The endpoint of context `name` (None: the CLI's current one); None for 'default'."""
    _check_docker_config()
    try:
        context = ContextAPI.get_context(name)
    except Exception as exc:  # docker-py raises plain Exception for a corrupt meta file
        raise EngineAddressError(
            f"the Docker context {name or '(current)'!r} cannot be read ({_first_line(exc)}): "
            "see `docker context ls`, or choose another with `docker context use`"
        ) from None
    if context is None:
        where = "DOCKER_CONTEXT names" if name else "the Docker CLI's current context is"
        raise EngineAddressError(
            f"{where} {name or get_current_context_name()!r}, which does not exist: "
            "see `docker context ls`, then `docker context use NAME`"
            + (" (or unset DOCKER_CONTEXT)" if name else "")
        )
    if context.Name == "default":
        return None
    shown = str(context.Name)
    host = str(context.Host or "")
    return Endpoint(_unix_path(host, f"the Docker context {shown!r} points at"), f"context {shown}")


def resolve_endpoint() -> Endpoint:
    """The engine's endpoint, as the Docker CLI would choose it (see the module's doc).
    Bad addresses, contexts and config files raise EngineAddressError (one line)."""
    env = os.environ
    host = env.get("DOCKER_HOST", "")
    if host:
        return Endpoint(_unix_path(host, "DOCKER_HOST is"), "DOCKER_HOST")
    context_name = env.get("DOCKER_CONTEXT", "")
    endpoint = _context_endpoint(context_name or None)
    if endpoint is not None:
        return endpoint
    if not os.path.exists(DEFAULT_SOCKET):
        for path in _known_sockets(env):
            if os.path.exists(path):
                return Endpoint(path, "found at a known place")
    return Endpoint(DEFAULT_SOCKET, "default")


def engine_kind(endpoint: Endpoint, info: Mapping[str, Any]) -> str:
    """The kind of engine, from what `docker info` says and where its socket is."""
    system = str(info.get("OperatingSystem", ""))
    name = str(info.get("Name", ""))
    path = endpoint.socket_path
    if "Docker Desktop" in system or "/.docker/desktop/" in path or "/.docker/run/" in path:
        return EngineKind.DESKTOP
    if "OrbStack" in system or "/.orbstack/" in path:
        return EngineKind.ORBSTACK
    if name.startswith("colima") or "/.colima/" in path:
        return EngineKind.COLIMA
    if any("rootless" in str(option) for option in info.get("SecurityOptions") or ()):
        return EngineKind.ROOTLESS
    return EngineKind.ENGINE


def mount_source(endpoint: Endpoint, kind: str) -> str:
    """The socket a container must mount to reach this engine: the path inside the VM for
    engines that run in one, else the socket on this machine."""
    if kind in (EngineKind.DESKTOP, EngineKind.COLIMA, EngineKind.ORBSTACK):
        return VM_SOCKET
    return endpoint.socket_path


@dataclasses.dataclass(frozen=True)
class Engine:
    """The engine a client is connected to."""

    endpoint: Endpoint
    kind: str

    @property
    def mount_source(self) -> str:
        return mount_source(self.endpoint, self.kind)


_engines: weakref.WeakKeyDictionary[docker.DockerClient, Engine] = weakref.WeakKeyDictionary()


def engine_of(client: docker.DockerClient) -> Engine:
    """The engine `connect` found for this client (resolved again for a client made elsewhere,
    e.g. by a test)."""
    engine = _engines.get(client)
    if engine is None:
        endpoint = resolve_endpoint()
        engine = Engine(endpoint, engine_kind(endpoint, _info(client)))
        _engines[client] = engine
    return engine


def _info(client: docker.DockerClient) -> dict[str, Any]:
    """`docker info`, or nothing from an engine (or stand-in) that does not say: the kind is
    then judged by the socket's path alone."""
    try:
        info = client.info()
    except (DockerException, requests.exceptions.RequestException, OSError):
        return {}
    return info if isinstance(info, dict) else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain_connection_failure(
    exc: BaseException, endpoint: Endpoint | None = None
) -> DockerUnavailable | DockerPermissionDenied:
    endpoint = endpoint or resolve_endpoint()
    text = f"{exc!r} {exc}"
    where = endpoint.describe()
    if "PermissionError" in text or "Permission denied" in text:
        return DockerPermissionDenied(
            f"no permission to use the Docker socket {where}: add your user to the "
            "'docker' group (sudo usermod -aG docker $USER, then log in again) or run as root"
        )
    if (
        not os.path.exists(endpoint.socket_path)
        and shutil.which("docker") is None
        and shutil.which("dockerd") is None
    ):
        return DockerUnavailable(
            f"Docker is not installed (no engine at {where}): install Docker Engine or "
            "Docker Desktop (https://docs.docker.com/engine/install/), then run this again"
        )
    return DockerUnavailable(
        f"the Docker engine is not running or not answering at {where}: start it "
        "(e.g. `sudo systemctl start docker`, or open Docker Desktop) and try again"
    )


def client_for(endpoint: Endpoint, timeout: float) -> docker.DockerClient:
    """A client for this endpoint (no check): the one way hubd makes a Docker client."""
    return docker.DockerClient(base_url=endpoint.url, timeout=int(max(1, timeout)))


def connect(timeout: float, ping_timeout: float | None = None) -> docker.DockerClient:
    """A client for the engine, checked with a ping (within `ping_timeout`, so a frozen engine
    is told apart quickly). Image pulls and builds are streamed, so `timeout` bounds single API
    calls, not whole pulls. Bad engine addresses raise EngineAddressError (a config error)."""
    endpoint = resolve_endpoint()
    client = None
    try:
        client = client_for(endpoint, ping_timeout or timeout)
        client.ping()
        info = _info(client)
        client.api.timeout = int(max(1, timeout))
    except (DockerException, requests.exceptions.RequestException, OSError) as exc:
        if client is not None:
            client.close()  # one client per attempt would leak a connection pool each
        raise explain_connection_failure(exc, endpoint) from None
    _engines[client] = Engine(endpoint, engine_kind(endpoint, info))
    return client
