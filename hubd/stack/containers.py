"""Small helpers for the containers hubd makes (hub, proxy, backup helper): state, files in,
files out."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from hubd.errors import PortInUse, StackError
from hubd.stack.naming import LABEL_SPEC, LABEL_STACK


@dataclass(frozen=True)
class ContainerState:
    exists: bool
    status: str = "missing"  # Docker's: created, running, paused, exited, dead, restarting
    container_id: str = ""
    image: str = ""
    started_at: datetime | None = None
    spec: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"


def container_state(container: Container | None) -> ContainerState:
    if container is None:
        return ContainerState(exists=False)
    state = container.attrs.get("State", {})
    return ContainerState(
        exists=True,
        status=str(state.get("Status", "unknown")),
        container_id=container.id or "",
        image=str(container.attrs["Config"]["Image"]),
        started_at=parse_time(state.get("StartedAt")),
        spec=container.labels.get(LABEL_SPEC, ""),
    )


def refuse_foreign(kind: str, obj: Any, stack: str) -> None:
    """Refuse a Docker object (container, volume, ...) by our name that is not this stack's."""
    labels = (obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels")) or {}
    if labels.get(LABEL_STACK) != stack:
        raise StackError(
            f"a Docker {kind} named {obj.name!r} exists that hubd did not create; "
            "hubd will not touch it: rename it, or set another `stack_name` in the config"
        )


def start_container(container: Container, role: str, port: int) -> None:
    """Start the `role` ("hub", "proxy") container; a taken port is the user's one clear line."""
    try:
        container.start()
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "port is already allocated" in text or "address already in use" in text:
            raise PortInUse(
                f"port {port} is already in use on this machine: stop what uses "
                "it, or set another `port` in the config (`hubd config path` shows where)"
            ) from None
        raise StackError(f"the {role} container did not start: {text}") from None


def revive(
    container: Container | None, role: str, restart: bool, start: Callable[[Container], None]
) -> None:
    """Bring a dead, hung or paused container of the stack back (a hung one gets no graceful
    stop: it would wait out the timeout)."""
    if container is None:
        raise StackError(f"there is no {role} container: run `hubd up`")
    if container.status == "paused":
        container.unpause()
    if restart:
        container.restart(timeout=0)
    elif container.status != "running":
        start(container)


def stop_gracefully(container: Container | None, timeout_s: float) -> bool:
    """Stop a running (or paused) container; False when there was nothing to stop."""
    if container is None or container.status not in ("running", "paused", "restarting"):
        return False
    if container.status == "paused":
        container.unpause()  # a paused process cannot take the stop signal
    try:
        container.stop(timeout=timeout_s)
    except NotFound:
        return False
    return True


def stop_quietly(container: Container, timeout_s: float) -> None:
    """Stop a container; one that is gone meanwhile (auto-removed users' servers) is
    stopped enough."""
    try:
        container.reload()
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "restarting"):
            container.stop(timeout=timeout_s)
    except NotFound:
        pass


def bring_up(
    container: Container, start: Callable[[Container], None], action: str = "unchanged"
) -> str:
    """Unpause or start `container` as needed; returns `action` updated by what was done."""
    if container.status == "paused":
        container.unpause()
        return "unpaused"
    if container.status != "running":
        start(container)
        return "started" if action == "unchanged" else action
    return action


def http_ok(url: str, timeout_s: float, session: requests.Session | None = None) -> bool:
    """Whether `url` answers 200 within the timeout: the health probe of the hub and the proxy
    (over HTTPS with a session that checks hubd's certificate: hubd/tls/client.py)."""
    try:
        return (session or requests).get(url, timeout=timeout_s).status_code == 200
    except requests.RequestException:
        return False


def remove_quietly(container: Container, force: bool = False) -> None:
    """Remove a container that may be removing itself already (auto-remove)."""
    try:
        container.remove(force=force)
    except NotFound:
        pass
    except APIError as exc:
        if "already in progress" not in str(exc):
            raise


def read_file(container: Container, path: str) -> str | None:
    """A file's text from a container (running or not); None when it has no such file."""
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        return None if member is None else member.read().decode()


@dataclass(frozen=True)
class TarEntry:
    """A file (or, with `content` None, a folder) for put_archive at '/', by absolute path."""

    path: str
    content: str | bytes | None = None
    mode: int = 0o644
    owner: int = 0


def tar_of(entries: Iterable[TarEntry], folder_mode: int = 0o755) -> bytes:
    """One tar of `entries` with the folders above them (root's, `folder_mode`, unless listed),
    so that what a new container needs goes in with one put_archive: each is an API round
    trip and a re-exec of the engine's own binary to unpack it."""
    entries = list(entries)
    listed = {entry.path.strip("/") for entry in entries if entry.content is None}
    implied = {parent for entry in entries for parent in _parents(entry.path)} - listed
    now = int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in sorted(implied):
            archive.addfile(_tar_info(folder, tarfile.DIRTYPE, folder_mode, 0, now))
        for entry in entries:
            name = entry.path.strip("/")
            if entry.content is None:
                archive.addfile(_tar_info(name, tarfile.DIRTYPE, entry.mode, entry.owner, now))
                continue
            data = entry.content if isinstance(entry.content, bytes) else entry.content.encode()
            info = _tar_info(name, tarfile.REGTYPE, entry.mode, entry.owner, now)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tar_info(name: str, kind: bytes, mode: int, owner: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    info.uid = info.gid = owner
    return info


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def parse_time(value: str | None) -> datetime | None:
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
