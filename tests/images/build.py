"""Build hubd's test images locally.

No image registry is reachable in tests, so nothing can be pulled: a minimal
Debian is debootstrapped from Debian's mirror and imported, and Dockerfiles
(stand-ins for the official JupyterHub, base-notebook and proxy images) build on it.
Tags carry a content hash, so an unchanged tree reuses the images at once.

Run as `python tests/images/build.py` to build (if needed) and print the tags.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, ContainerError, ImageNotFound

HERE = Path(__file__).resolve().parent
REPO = "hubd-test"
LABELS = {"io.hubd.test": "1"}
# The host's bundle holds the CA of the TLS proxy in front of PyPI and npm.
HOST_CA_BUNDLE = Path(os.environ.get("HUBDTEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))

# Everything that decides the rootfs content; hashed into the debian tag.
DEBOOTSTRAP: dict[str, Any] = {
    "suite": "bookworm",
    "variant": "minbase",
    "mirror": "http://deb.debian.org/debian",
    # npm is not here: debootstrap's resolver cannot handle its dependencies.
    "include": ["ca-certificates", "python3", "python3-pip", "tini"],
    # Caches and host files that debootstrap leaves behind; Docker supplies its own.
    "remove": ["var/cache/apt/archives", "var/lib/apt/lists", "etc/resolv.conf", "etc/hostname"],
    "changes": ["ENV LANG=C.UTF-8", "LABEL io.hubd.test=1", 'CMD ["/bin/bash"]'],
}
# Images built from Dockerfiles in this folder, in build order.
DOCKERFILES = {
    "hub-base": "hub-base.Dockerfile",
    "user": "user.Dockerfile",
    "proxy": "proxy.Dockerfile",
    # An older JupyterHub (5.x): upgrade tests migrate its database to the current one.
    "hub-base-5": "hub-base-5.Dockerfile",
    "restic": "restic.Dockerfile",
    # A Debian machine where `hubd trust` may change the system trust store as root.
    "trust": "trust.Dockerfile",
    # A Debian 12 machine with systemd as PID 1: the README's quickstart, service and all.
    "systemd": "systemd.Dockerfile",
}
BUILD_PARAMS = {"labels": LABELS, "rm": True, "forcerm": True, "pull": False}
# Hosts the builds need; probed to choose the build network mode.
PROBE_HOSTS = [("pypi.org", 443), ("registry.npmjs.org", 443), ("deb.debian.org", 80)]

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A test image could not be built; the message says which step and why."""


@dataclass(frozen=True)
class TestImages:
    __test__ = False  # not a pytest test class, despite the name

    hub_base: str  # e.g. "hubd-test/hub-base:<hash12>"
    user: str  # e.g. "hubd-test/user:<hash12>"
    proxy: str  # e.g. "hubd-test/proxy:<hash12>"
    hub_base_5: str  # JupyterHub 5.x, otherwise like hub_base
    restic: str  # stand-in for restic/restic
    trust: str  # Debian with ca-certificates, certutil and openssl, for `hubd trust` as root
    systemd: str  # Debian 12 booting systemd, for the quickstart's `hubd service install`


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)  # length prefix: no ambiguous joins
    return h.hexdigest()[:12]


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.api.inspect_image(tag)
        return True
    except ImageNotFound:
        return False


def _tags() -> dict[str, str]:
    """Tags for all images; each hash covers its parent's tag, so changes cascade."""
    debian = f"{REPO}/debian:{_digest(json.dumps(DEBOOTSTRAP, sort_keys=True))}"
    tags = {"debian": debian}
    common = (debian, json.dumps(BUILD_PARAMS, sort_keys=True), HOST_CA_BUNDLE.read_bytes())
    for name, dockerfile in DOCKERFILES.items():
        tags[name] = f"{REPO}/{name}:{_digest(*common, (HERE / dockerfile).read_bytes())}"
    return tags


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd: list[str], what: str, detail_log: Path | None = None) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        msg = f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{_tail(proc.stdout)}"
        if detail_log and detail_log.exists():  # it lives in a temp dir about to be deleted
            msg += f"\n--- {detail_log.name} ---\n{_tail(detail_log.read_text(errors='replace'))}"
        raise ImageBuildError(msg)


def _unmount_under(path: Path) -> None:
    """Undo mounts debootstrap may leave on failure, so rmtree cannot reach host /proc or /dev."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for mnt in sorted(mounts, key=len, reverse=True):  # deepest first
        subprocess.run(["umount", "-l", mnt], check=False)


def _debootstrap(root: Path, log: Log) -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise ImageBuildError("the test base image needs root and `apt-get install debootstrap`")
    d = DEBOOTSTRAP
    cmd = [
        "debootstrap",
        f"--variant={d['variant']}",
        f"--include={','.join(d['include'])}",
        d["suite"],
        str(root),
        d["mirror"],
    ]
    log(f"debootstrap {d['suite']} into {root} (about a minute)")
    # dpkg's errors during the configure stage only show in debootstrap.log.
    _run(cmd, "debootstrap", detail_log=root / "debootstrap" / "debootstrap.log")


def _slim(root: Path) -> None:
    for rel in DEBOOTSTRAP["remove"]:
        target = root / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif target.exists() or target.is_symlink():
            target.unlink()


def _ensure_debian(client: docker.DockerClient, tag: str, log: Log) -> None:
    if _exists(client, tag):
        return
    tmp = Path(tempfile.mkdtemp(prefix="hubd-debootstrap-"))
    try:
        root = tmp / "rootfs"
        _debootstrap(root, log)
        _slim(root)
        tarball = tmp / "rootfs.tar"
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."], "tar of rootfs")
        repo, version = tag.rsplit(":", 1)
        log(f"importing {tag}")
        changes = DEBOOTSTRAP["changes"]
        client.api.import_image(src=str(tarball), repository=repo, tag=version, changes=changes)
        if not _exists(client, tag):
            raise ImageBuildError(f"docker import did not produce {tag}")
    finally:
        _unmount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _network_mode(client: docker.DockerClient, image: str, log: Log) -> str | None:
    """Pick the build network: the default bridge if it reaches the registries, else host."""
    probe = f"import socket\nfor h, p in {PROBE_HOSTS!r}: socket.create_connection((h, p), 10)"
    for mode in ("bridge", "host"):
        try:
            client.containers.run(image, ["python3", "-c", probe], network_mode=mode, remove=True)
            log(f"builds use network mode {mode}")
            return None if mode == "bridge" else mode  # None: the builder's default (bridge)
        except (ContainerError, APIError):  # e.g. DNS or connect failure in the probe
            continue
    raise ImageBuildError(f"neither bridge nor host network in containers can reach {PROBE_HOSTS}")


def _forward(stream: Iterable[dict[str, Any]], tag: str, log: Log) -> None:
    """Forward build output to log; docker reports failures as an item, not an exception."""
    recent: deque[str] = deque(maxlen=20)  # repeated in the error, in case log went nowhere
    for item in stream:
        if "error" in item:
            detail = "\n".join(recent)
            raise ImageBuildError(f"building {tag} failed: {item['error'].strip()}\n{detail}")
        text = (item.get("stream") or item.get("status") or "").rstrip()
        if text.strip():
            recent.append(text)
            log(text)


def _build(
    client: docker.DockerClient, dockerfile: str, tag: str, base: str, network: str | None, log: Log
) -> None:
    # A private context holds just the Dockerfile and the CA bundle to COPY.
    with tempfile.TemporaryDirectory(prefix="hubd-build-") as ctx:
        shutil.copy(HERE / dockerfile, Path(ctx) / dockerfile)
        shutil.copy(HOST_CA_BUNDLE, Path(ctx) / "ca-bundle.crt")
        log(f"building {tag} from {dockerfile}")
        stream = client.api.build(
            path=ctx,
            dockerfile=dockerfile,
            tag=tag,
            buildargs={"BASE": base},
            network_mode=network,
            decode=True,
            **BUILD_PARAMS,
        )
        _forward(stream, tag, log)


def ensure_test_images(
    client: docker.DockerClient, log: Callable[[str], None] = print
) -> TestImages:
    """Return the test image tags, building whatever is missing (minutes cold, ~instant warm)."""
    tags = _tags()
    if not all(_exists(client, tags[name]) for name in DOCKERFILES):
        # Serialise concurrent callers (pytest-xdist workers) so only one builds.
        with open(Path(tempfile.gettempdir()) / "hubd-test-images.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            missing = [name for name in DOCKERFILES if not _exists(client, tags[name])]
            if missing:
                _ensure_debian(client, tags["debian"], log)
                network = _network_mode(client, tags["debian"], log)
                for name in missing:
                    _build(client, DOCKERFILES[name], tags[name], tags["debian"], network, log)
    return TestImages(
        hub_base=tags["hub-base"],
        user=tags["user"],
        proxy=tags["proxy"],
        hub_base_5=tags["hub-base-5"],
        restic=tags["restic"],
        trust=tags["trust"],
        systemd=tags["systemd"],
    )


if __name__ == "__main__":
    images = ensure_test_images(docker.from_env(), log=lambda line: print(line, file=sys.stderr))
    print(images.hub_base)
    print(images.user)
    print(images.proxy)
    print(images.hub_base_5)
    print(images.restic)
    print(images.trust)
    print(images.systemd)
