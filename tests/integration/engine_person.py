"""A person running hubd on an engine of their own, reached through a Docker context: their
environment, `docker context use`, `hubd run` watched until the hub answers, and what must hold
of the main engine afterwards. Shared by test_engine_context.py (a second root dockerd) and
test_engine_rootless.py (rootless Docker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import requests

from hubd.stack.docker_gate import gate_container_name
from hubd.stack.naming import StackNames
from tests.images.build import TestImages
from tests.integration import hubclient
from tests.integration.docker_env import free_port
from tests.integration.engine_control import main_engine_view

HUBD = [sys.executable, "-m", "hubd"]
# How a command reaches the engine's side: as it is (the engine is this machine's), or
# wrapped (run in the engine's network namespace).
Wrap = Callable[[list[str]], list[str]]


def person_env(tmp_path: Path, stack: str, test_images: TestImages) -> dict[str, str]:
    """A person's environment: their own HOME (so their own Docker CLI config), no engine
    named by DOCKER_*, hubd's test images, plain HTTP, no mDNS, folders under `tmp_path`."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG")
    }
    env.update(
        HOME=str(home),
        HUBD_HUB_BASE_IMAGE=test_images.hub_base,
        HUBD_USER_IMAGE=test_images.user,
        HUBD_PROXY_IMAGE=test_images.proxy,
        HUBD_STACK_NAME=stack,
        HUBD_MDNS_ENABLED="false",
        # Plain HTTP: these tests are about the engine; HTTPS is test_https.py's.
        HUBD_TLS="off",
        HUBD_CULL_IDLE_TIMEOUT="0",
        HUBD_PORT=str(free_port()),
        CONFIGURATION_DIRECTORY=str(tmp_path / "etc"),
        STATE_DIRECTORY=str(tmp_path / "state"),
        RUNTIME_DIRECTORY=str(tmp_path / "run"),
        LOGS_DIRECTORY=str(tmp_path / "log"),
    )
    return env


def use_context(env: dict[str, str], name: str, docker_host: str) -> None:
    """What a person (or dockerd-rootless-setuptool.sh) does: a context, made current."""
    for argv in (
        ["docker", "context", "create", name, "--docker", f"host={docker_host}"],
        ["docker", "context", "use", name],
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
    assert "DOCKER_HOST" not in env


class HubdRun:
    """`hubd run` in the person's environment, its output in `log`; other hubd commands the
    same way. Ends it (SIGTERM, then SIGKILL) on leaving."""

    def __init__(self, env: dict[str, str], log: Path, wrap: Wrap | None = None) -> None:
        self.env, self.log, self.wrap = env, log, wrap
        self.started = time.monotonic()
        with log.open("wb") as out:
            argv, run_env = self._command("run")
            self.proc = subprocess.Popen(
                argv, env=run_env, stdout=out, stderr=out, start_new_session=True
            )

    def _command(self, *args: str) -> tuple[list[str], dict[str, str] | None]:
        if self.wrap is None:
            return [*HUBD, *args], self.env
        pairs = [f"{key}={value}" for key, value in self.env.items()]
        return self.wrap(["env", "-i", *pairs, *HUBD, *args]), None

    def hubd(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv, env = self._command(*args)
        return subprocess.run(
            argv, env=env, input=input, capture_output=True, text=True, timeout=120
        )

    def wait_healthy(self, base: str, deadline_s: float) -> float:
        """Until the hub answers at `base`; the seconds since `hubd run` started."""
        deadline = time.monotonic() + deadline_s
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/hub/health", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.5)

    def add_person_and_open_lab(self, base: str, name: str, password: str) -> None:
        added = self.hubd("user", "add", name, "--admin", "--password-stdin", input=password + "\n")
        assert added.returncode == 0, added.stderr
        session = hubclient.login(base, name, password)
        assert hubclient.open_lab(session, base, name).status_code == 200

    def __enter__(self) -> HubdRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def gate_socket_sources(client: docker.DockerClient, names: StackNames) -> set[str]:
    """The engine sockets the stack's docker gate mounts."""
    gate = client.containers.get(gate_container_name(names))
    return {m["Source"] for m in gate.attrs["Mounts"] if m["Destination"].endswith(".sock")}


def assert_main_engine_untouched(main: docker.DockerClient, before: Any, stack: str) -> None:
    """The first engine: nothing of this stack, no restart, its default bridge still there."""
    assert main_engine_view(main) == before
    assert not main.containers.list(all=True, filters={"label": f"io.hubd.stack={stack}"})
    assert not main.volumes.list(filters={"label": f"io.hubd.stack={stack}"})
