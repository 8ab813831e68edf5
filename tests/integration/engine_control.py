"""Restarting the real Docker engine, as a power blip or an upgrade would."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from tests.integration.daemon_proc import wait_for

DOCKERD_LOG = Path("/var/log/dockerd.log")
# The main engine's pid file (dockerd's default). Not `pidof dockerd`: the Swarm lab runs more
# engines (tests/integration/swarm_lab.py), and a fault test must never hit one of those.
DOCKERD_PIDFILE = Path("/var/run/docker.pid")


def main_engine_view(client: docker.DockerClient) -> dict[str, Any]:
    """What a test on another engine must leave as it was: the main engine's identity and
    process (not restarted) and its default bridge (a second dockerd in this network
    namespace deletes `docker0` at its start)."""
    info = client.info()
    bridge = subprocess.run(["ip", "link", "show", "docker0"], capture_output=True)
    pid = DOCKERD_PIDFILE.read_text().strip()
    return {"id": info["ID"], "pid": pid, "docker0": bridge.returncode == 0}


def _engine_up() -> bool:
    try:
        client = docker.from_env(timeout=5)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:
        return False


def _dockerd_pid() -> int | None:
    """The main engine's pid, while it runs (dockerd removes its pid file when it exits)."""
    try:
        pid = int(DOCKERD_PIDFILE.read_text().strip())
        # /proc/PID/stat: "PID (comm) STATE ..."; a zombie (an engine this process started
        # and has not reaped yet) has exited.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
    return pid if comm == "dockerd" and state != "Z" else None


@contextlib.contextmanager
def engine_frozen() -> Iterator[None]:
    """dockerd stopped with SIGSTOP: it keeps its socket, accepts connections and never
    answers. Always thawed on the way out. Only under the exclusive engine lock."""
    pid = _dockerd_pid()
    assert pid is not None, "no dockerd to freeze"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        wait_for(_engine_up, 60, "the Docker engine to answer after SIGCONT")


def stop_engine() -> None:
    if _systemd_manages_docker():
        subprocess.run(["systemctl", "stop", "docker.socket", "docker"], check=True)
        return
    pid = _dockerd_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: _dockerd_pid() is None, 60, "dockerd to exit")


def ensure_engine_running() -> None:
    """Start the engine unless it answers already (for `finally` blocks)."""
    if not _engine_up():
        start_engine()


def start_engine() -> None:
    if _systemd_manages_docker():
        subprocess.run(["systemctl", "start", "docker"], check=True)
    else:
        with DOCKERD_LOG.open("ab") as log:
            subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    wait_for(_engine_up, 60, "the Docker engine to answer")


def _systemd_manages_docker() -> bool:
    if not shutil.which("systemctl") or not Path("/run/systemd/system").exists():
        return False
    state = subprocess.run(["systemctl", "is-active", "docker"], capture_output=True, text=True)
    return state.stdout.strip() in ("active", "activating")
