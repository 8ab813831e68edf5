"""Rootless Docker for integration tests: an account of its own with an /etc/subuid range, its
engine started the way Debian's docker.io ships it (`dockerd-rootless.sh`: rootlesskit, a user
namespace, slirp4netns, the builtin port driver), reached as `unix:///run/user/<uid>/docker.sock`.

The engine lives in namespaces of its own (user, mount, network): it has its own `docker0` and
iptables, and leaves the machine's engine alone. On this kernel (≥ 5.11) it stores images with
overlay2 natively (`userxattr`; no fuse-overlayfs, no vfs), but without native overlay diffs:
a `docker build` there walks whole layers for every step, so hubd must find its hub image
already there (built once on the main engine, loaded, tagged as the stack's).

Images: `docker save` from the main engine into the engine's `docker load` the first time
(hub base, hub, proxy and user image: ~1.3 GB, 80-90 s on the 2-core test machine, loaded),
then a cache of its image store in swarm_lab's IMAGE_CACHE, keyed by the image ids *and the
account's id mappings* (the owners of the files on disk are mapped ids, so a lab node's
root-owned store cannot be used, nor this one by an account with other mappings). The store is
moved in and back out with renames, not hard links: a copy of its ~110,000 files as links
takes seconds and deleting them at the end 25-35 s, a rename nothing. The account takes the
first free uid from UID_FIRST with a subordinate range derived from it, so run after run the
mappings, and the key, are the same. The hub image (it changes with every edit of hubd's hub
files) is not in the key: a new one is loaded on top of its cached base (~17 s) and replaces
the old one in the store that goes back.

Clean-up: the engine and every process of the account's ids, the account, its subordinate
ranges, /run/user/<uid>, the work folder. A run that died is cleaned up by the next one
(accounts `hubdrl<pid>` of gone processes; the test names its stack as the account, so its
hubd, root's, is found by HUBD_STACK_NAME).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker
from docker.errors import NotFound

from tests.integration.engine_process import EngineProcess
from tests.integration.swarm_lab import IMAGE_CACHE, _prune_image_cache, _run, _unmount_under

ROOTLESS_SCRIPT = Path("/usr/share/docker.io/contrib/dockerd-rootless.sh")
ACCOUNT_PREFIX = "hubdrl"
# Above login.defs' UID_MAX (60000) and SUB_UID_MAX (600100000): useradd hands out neither on
# its own, so the first free uid here (and the range derived from it) is the same every run.
UID_FIRST = 61000
SUBID_FIRST = 700_000_000
SUBID_COUNT = 65536
USERADD_UID_IN_USE = 4  # useradd(8)
# The image store: layers and image metadata (dockerd's other folders hold containers,
# volumes, networks: what a test made).
STORE_PARTS = ("image", "overlay2")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RootlessEngine(EngineProcess):
    """One account and its rootless engine."""

    def __init__(self) -> None:
        super().__init__()
        self.name = f"{ACCOUNT_PREFIX}{os.getpid()}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"hubd-rl{os.getpid()}-"))
        self.workdir.chmod(0o711)  # the account reaches its home inside
        self.home = self.workdir / "home"
        self.log_path = self.workdir / "dockerd.log"
        self.uid = 0
        self.subid_first = 0

    @property
    def runtime_dir(self) -> Path:
        return Path(f"/run/user/{self.uid}")

    @property
    def socket(self) -> Path:
        return self.runtime_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        """dockerd-rootless.sh's default, as a person's engine has it."""
        return self.home / ".local" / "share" / "docker"

    @property
    def subids(self) -> range:
        return range(self.subid_first, self.subid_first + SUBID_COUNT)

    def create_account(self) -> None:
        """The account, its subordinate ids (fixed, not useradd's next free range) and its
        runtime folder (no logind here to make it)."""
        for uid in _free_uids():
            self.uid, self.subid_first = uid, SUBID_FIRST + (uid - UID_FIRST) * SUBID_COUNT
            argv = [
                "useradd", "--create-home", "--home-dir", str(self.home), "--uid", str(uid),
                "--user-group", "--shell", "/bin/sh",
                "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", self.name,
            ]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            if done.returncode == 0:
                break
            if done.returncode != USERADD_UID_IN_USE:  # else another run took it just now
                raise RuntimeError(f"useradd failed ({done.returncode}): {done.stderr.strip()}")
        ids = f"{self.subids.start}-{self.subids.stop - 1}"
        _run(["usermod", "--add-subuids", ids, "--add-subgids", ids, self.name])
        self.runtime_dir.mkdir(mode=0o700)
        os.chown(self.runtime_dir, self.uid, self.uid)

    def make_data_root(self) -> None:
        for path in (self.home / ".local", self.home / ".local" / "share", self.data_root):
            path.mkdir(mode=0o710 if path == self.data_root else 0o711, exist_ok=True)
            os.chown(path, self.uid, self.uid)

    def start(self, timeout: float = 60) -> None:
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PATH": f"{ROOTLESS_SCRIPT.parent}:{PATH}",
        }
        argv = [
            "runuser", "-u", self.name, "--", "env", "-i",
            *(f"{key}={value}" for key, value in env.items()),
            str(ROOTLESS_SCRIPT),
            # Containers get this long to stop when the engine stops (the default is 15 s).
            "--shutdown-timeout=3",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.wait_answering(timeout)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM to dockerd (its pid file; no PID namespace here): it stops its containers,
        then rootlesskit and runuser end with it. True if it ended cleanly now."""
        proc = self._proc
        self.close_client()
        if proc is None or proc.poll() is not None:
            return False
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.runtime_dir / "docker.pid").read_text().strip()), signal.SIGTERM)
        try:
            return proc.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return False

    def close(self) -> None:
        """The engine, every process of the account's ids, the account, its folders."""
        self.stop()
        if self.uid:
            _remove_account(self.name, self.uid, self.subids)
        _unmount_under(self.workdir)  # none expected: its mounts are in its own namespace
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------------ images

    def image_key(self, main: docker.DockerClient, refs: Sequence[str]) -> str:
        """Names an image store by what is in it, the engine that wrote it, and the id
        mappings its files' owners were written with."""
        ids = sorted(f"{ref}={main.images.get(ref).id}" for ref in refs)
        version = str(main.version().get("Version", ""))
        mapping = [self.uid, self.subid_first, SUBID_COUNT]
        digest = hashlib.sha256(json.dumps([version, ids, mapping]).encode()).hexdigest()[:16]
        # Letters and digits only: swarm_lab's prune tells half-made entries by `.\w+.<pid>`.
        return f"rootless{digest}"

    def take_images(self, key: str) -> bool:
        """Move the cached image store in (engine stopped): renames, so it takes no time, and
        only one run can have it; False if there is none (or another run has it now)."""
        self.make_data_root()
        claimed = self.workdir / "cached-store"
        try:
            (IMAGE_CACHE / key).rename(claimed)
        except OSError:
            return False
        for part in STORE_PARTS:
            (claimed / part).rename(self.data_root / part)
        shutil.rmtree(claimed)
        return True

    def load_images(self, refs: Sequence[str]) -> list[str]:
        """`docker save` (main engine) into this engine's `docker load`, for what it lacks."""
        missing = [ref for ref in refs if not self._has(ref)]
        if not missing:
            return []
        err = self.workdir / "load.err"
        with err.open("wb") as errors:
            save = subprocess.Popen(
                ["docker", "save", *missing], stdout=subprocess.PIPE, stderr=errors
            )
            load = subprocess.Popen(
                ["docker", "-H", self.docker_host, "load", "-q"],
                stdin=save.stdout,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            assert save.stdout is not None
            save.stdout.close()  # the load holds it now: it sees the end when the save ends
        if save.wait(600) or load.wait(600):
            raise AssertionError(f"loading {missing} failed: {err.read_text().strip()}")
        return missing

    def _has(self, ref: str) -> bool:
        try:
            self.client().images.get(ref)
        except NotFound:
            return False
        return True

    def put_back_images(self, key: str, keep: Sequence[str]) -> bool:
        """Give the image store back to the cache holding only `keep`: what the test made
        (containers, volumes, networks, other tags) removed through the engine, the engine
        stopped cleanly (nothing half written), its folders renamed into the cache. False
        (and the store is left to be deleted) if any of that failed."""
        client = self.client()
        for container in client.containers.list(all=True):
            container.remove(force=True, v=True)
        for volume in client.volumes.list():
            volume.remove(force=True)
        client.networks.prune()
        for image in client.images.list():
            for tag in image.tags:
                if tag not in keep:
                    client.images.remove(tag)
        client.images.prune(filters={"dangling": True})
        if not self.stop():
            return False
        _prune_image_cache()
        final = IMAGE_CACHE / key
        partial = IMAGE_CACHE / f".{key}.{os.getpid()}"
        partial.mkdir(parents=True)
        for part in STORE_PARTS:
            (self.data_root / part).rename(partial / part)
        (partial / "complete").write_text(f"{self.uid} {self.subid_first}\n")
        try:
            partial.rename(final)
        except OSError:  # another run was first
            shutil.rmtree(partial, ignore_errors=True)
        return True


def _free_uids() -> Iterator[int]:
    for uid in range(UID_FIRST, UID_FIRST + 1000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not Path(f"/run/user/{uid}").exists():
                yield uid
    raise AssertionError(f"no free uid from {UID_FIRST} for a rootless Docker account")


def _processes_of(uids: Sequence[range]) -> set[int]:
    """Processes whose real uid is one of `uids` (the engine, its shims, containers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
            if any(real_uid(int(entry.name)) in ids for ids in uids):
                found.add(int(entry.name))
    return found


def _processes_with_env(item: str) -> set[int]:
    needle = item.encode() + b"\0"
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes():
                found.add(int(entry.name))
    found.discard(os.getpid())
    return found


def real_uid(pid: int) -> int:
    """A process's real uid on this machine (outside any user namespace)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _kill(pids: set[int]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if Path(f"/proc/{pid}").exists() and _alive(pid)}
            time.sleep(0.1)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _remove_account(name: str, uid: int, subids: range | None) -> None:
    """Every process of the account's ids, its subordinate ranges, the account and its
    home, /run/user/<uid>."""
    _kill(_processes_of([range(uid, uid + 1), *([subids] if subids else [])]))
    if subids:
        ids = f"{subids.start}-{subids.stop - 1}"
        _run(["usermod", "--del-subuids", ids, "--del-subgids", ids, name], check=False)
    _run(["userdel", "--remove", name], check=False)  # its group too (USERGROUPS_ENAB)
    shutil.rmtree(f"/run/user/{uid}", ignore_errors=True)


def _subids_of(name: str) -> range | None:
    for line in Path("/etc/subuid").read_text().splitlines():
        owner, _, rest = line.partition(":")
        if owner == name and rest.count(":") == 1:
            first, count = (int(part) for part in rest.split(":"))
            return range(first, first + count)
    return None


def remove_stale_rootless() -> None:
    """What runs whose process died left: accounts `hubdrl<pid>`, their processes, ranges,
    runtime folders and work folders."""
    for entry in pwd.getpwall():
        match = re.match(rf"^{ACCOUNT_PREFIX}(\d+)$", entry.pw_name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            # The run's hubd (root, its own session) too: its stack is named as the account.
            _kill(_processes_with_env(f"HUBD_STACK_NAME={entry.pw_name}"))
            _remove_account(entry.pw_name, entry.pw_uid, _subids_of(entry.pw_name))
    for workdir in Path(tempfile.gettempdir()).glob("hubd-rl*-*"):
        match = re.match(r"^hubd-rl(\d+)-", workdir.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _unmount_under(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
