"""Connecting to the Docker engine, with failures turned into one actionable line."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

import docker
import requests
from docker.errors import DockerException

from hubd.errors import DockerPermissionDenied, DockerUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"


def docker_socket_path() -> str:
    """The engine's Unix socket on this machine (bind-mounted into the hub for DockerSpawner)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return urlsplit(host).path
    return DEFAULT_SOCKET


def explain_connection_failure(exc: BaseException) -> DockerUnavailable | DockerPermissionDenied:
    text = f"{exc!r} {exc}"
    socket_path = docker_socket_path()
    if "PermissionError" in text or "Permission denied" in text:
        return DockerPermissionDenied(
            f"no permission to use the Docker socket {socket_path}: add your user to the "
            "'docker' group (sudo usermod -aG docker $USER, then log in again) or run as root"
        )
    if (
        not os.path.exists(socket_path)
        and shutil.which("docker") is None
        and shutil.which("dockerd") is None
    ):
        return DockerUnavailable(
            "Docker is not installed: install Docker Engine or Docker Desktop "
            "(https://docs.docker.com/engine/install/), then run this again"
        )
    return DockerUnavailable(
        f"the Docker engine is not running or not answering at {socket_path}: start it "
        "(e.g. `sudo systemctl start docker`, or open Docker Desktop) and try again"
    )


def connect(timeout: float, ping_timeout: float | None = None) -> docker.DockerClient:
    """A client for the engine, checked with a ping (within `ping_timeout`, so a frozen engine
    is told apart quickly). Image pulls and builds are streamed, so `timeout` bounds single API
    calls, not whole pulls."""
    client = None
    try:
        client = docker.from_env(timeout=int(max(1, ping_timeout or timeout)))
        client.ping()
        client.api.timeout = int(max(1, timeout))
    except (DockerException, requests.exceptions.RequestException, OSError) as exc:
        if client is not None:
            client.close()  # one client per attempt would leak a connection pool each
        raise explain_connection_failure(exc) from None
    return client
