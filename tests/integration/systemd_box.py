"""A Debian 12 machine whose PID 1 is systemd, as a container on this machine's Docker engine
(tests/images/systemd.Dockerfile): for what needs a real service manager, such as the README's
`hubd service install` with a user manager and lingering.

The options, and why. systemd must create cgroups for its units and the user manager, which
Docker's read-only cgroup mounts refuse:
- cgroup v1 (this machine: a name=systemd hierarchy, Docker 20.10, and an engine whose
  capability set lacks CAP_SYS_RESOURCE, so `--privileged` fails with "unable to apply caps"):
  CAP_SYS_ADMIN, the host's cgroup namespace and /sys/fs/cgroup bind-mounted writable; systemd
  then works below the container's own cgroup (/docker/<id>/...), which goes with the
  container (checked: nothing is left under /sys/fs/cgroup/*/docker/<id>).
- cgroup v2 (a stock Debian 12 host; not run here): `--privileged` with a private cgroup
  namespace, Docker's way for systemd in a container; the units that would then act on the
  host itself are masked in the image.
- the host's network: hubd reaches its proxy on 127.0.0.1 at the port the engine publishes,
  as on a real machine, and the test reaches the hub at that port.
- tmpfs on /run, /run/lock, /tmp: systemd expects them fresh at boot.
- /var/run/docker.sock bind-mounted: the engine is this machine's.
- stop signal SIGRTMIN+3 (in the image): systemd's "halt".
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from tests.patience import patient

ENGINE_SOCKET = "/var/run/docker.sock"
CGROUPS = "/sys/fs/cgroup"
BOOTED = ("running", "degraded")  # degraded: some unit failed, the system still runs
BOOT_DEADLINE_S = patient(60.0)


@dataclass(frozen=True)
class SystemdBox:
    container: Container

    @property
    def name(self) -> str:
        return str(self.container.name)

    def run(
        self, argv: list[str], timeout: float = patient(60.0), check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`argv` as root in the box (docker exec: no login, no session)."""
        done = subprocess.run(
            ["docker", "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} in {self.name}: {done.stdout[-2000:]}{done.stderr}")
        return done

    def login_argv(self, user: str, script: str, tty: bool = False) -> list[str]:
        """argv running `script` in a login shell of `user`: `su -l` goes through PAM, whose
        pam_systemd opens a logind session (XDG_RUNTIME_DIR, the user manager) as a login
        on the console does."""
        return [
            "docker",
            "exec",
            *(["-it"] if tty else []),
            self.name,
            "su",
            "-l",
            user,
            "-c",
            script,
        ]

    def as_user(
        self, user: str, script: str, timeout: float = patient(60.0)
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.login_argv(user, script), capture_output=True, text=True, timeout=timeout
        )

    def boot_state(self) -> str:
        done = self.run(["systemctl", "is-system-running", "--wait"], check=False)
        return done.stdout.strip()


@contextlib.contextmanager
def systemd_box(client: docker.DockerClient, image: str, name: str) -> Iterator[SystemdBox]:
    """The box, booted (`systemctl is-system-running`: running or degraded); removed however
    the block ends."""
    cgroup_options: dict[str, Any]
    if Path(CGROUPS, "cgroup.controllers").exists():  # cgroup v2 (unified)
        cgroup_options, cgroup_mounts = {"privileged": True, "cgroupns": "private"}, {}
    else:
        cgroup_options = {"cap_add": ["SYS_ADMIN"], "cgroupns": "host"}
        cgroup_mounts = {CGROUPS: {"bind": CGROUPS, "mode": "rw"}}
    container = client.containers.run(
        image,
        name=name,
        detach=True,
        network_mode="host",
        tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
        volumes={ENGINE_SOCKET: {"bind": ENGINE_SOCKET, "mode": "rw"}, **cgroup_mounts},
        **cgroup_options,
        labels={"io.hubd.test": "1"},
    )
    try:
        box = SystemdBox(container)
        deadline = time.monotonic() + BOOT_DEADLINE_S
        state = box.boot_state()
        while state not in BOOTED:
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                raise AssertionError(
                    f"systemd in {name} did not boot ({state!r}):\n"
                    + container.logs(tail=40).decode(errors="replace")
                )
            time.sleep(0.5)
            state = box.boot_state()
        yield box
    finally:
        container.remove(force=True, v=True)
