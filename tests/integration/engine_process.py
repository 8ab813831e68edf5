"""What every dockerd of a test's own has (a Swarm lab node, a rootless engine): its process,
one docker-py client kept across restarts, its log, and the wait until it answers."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import docker

from tests.integration.netns import wait_until


class EngineProcess:
    """Subclasses set `name`, `log_path` and `docker_host`, and start `_proc`."""

    name: str
    log_path: Path

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: docker.DockerClient | None = None

    @property
    def docker_host(self) -> str:
        raise NotImplementedError

    def client(self) -> docker.DockerClient:
        """A docker-py client for this engine (one, kept across its restarts)."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.docker_host, timeout=120)
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_answering(self, timeout: float) -> None:
        """Until the engine answers a ping; its log in the failure when it exits or does not."""
        try:
            wait_until(self._answers, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(
                f"{self.name}: dockerd did not answer within {timeout} s; log:\n{self.log_tail()}"
            ) from None

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(
                f"{self.name}: dockerd exited ({self._proc.returncode}); log:\n{self.log_tail()}"
            )
        try:
            return bool(self.client().ping())
        except Exception:
            return False
