"""Fixtures around the real Docker engine: the client, the local test images, a hubd stack.

These tests never skip: without an engine they fail and say so (CI starts one in .ci/run).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from hubd.config import Config
from hubd.stack import Stack
from hubd.stack.naming import StackNames
from hubd.stack.proxy import proxy_public_url
from hubd.timing import Timing
from tests.images.build import TestImages, ensure_test_images

_counter = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.fail(f"integration tests need a running Docker engine (.ci/run starts one): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> TestImages:
    return ensure_test_images(docker_client, log=lambda line: None)


@dataclass
class StackEnv:
    """One isolated hubd stack: its own name, port, config file and directories."""

    config: Config
    config_file: Path
    env: dict[str, str]
    client: docker.DockerClient
    # Put before every hubd command (`hubd()`, DaemonProc), e.g. nsenter into a Swarm lab
    # node's network namespace (tests/integration/swarm_lab.py).
    command_prefix: list[str] = field(default_factory=list)

    @property
    def names(self) -> StackNames:
        return StackNames(self.config.stack_name)

    @property
    def base_url(self) -> str:
        """Where the proxy answers: as hubd itself reaches it (127.0.0.1 for 0.0.0.0)."""
        return proxy_public_url(self.config).rstrip("/")

    @property
    def state_dir(self) -> Path:
        """hubd's state folder for this stack's commands (its CA: hubd/tls)."""
        return Path(self.env["STATE_DIRECTORY"])

    def stack(self, timing: Timing | None = None) -> Stack:
        return Stack(self.client, self.config, timing=timing or Timing(), state_dir=self.state_dir)

    def hubd(
        self, *args: str, input: str | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `hubd` command line against this stack."""
        result = subprocess.run(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "hubd",
                "--config",
                str(self.config_file),
                *args,
            ],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"hubd {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def write_config(self, **changes: Any) -> None:
        import dataclasses

        self.config = dataclasses.replace(self.config, **changes)
        self.config_file.write_text(_toml(self.config))


def _toml(config: Config) -> str:
    import json

    lines = []
    for key, value in config.describe().items():
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def make_stack_env(
    tmp_path: Path, client: docker.DockerClient, images: TestImages, **overrides: Any
) -> StackEnv:
    name = f"hubdt{os.getpid()}x{next(_counter)}"
    config = Config(
        hub_base_image=images.hub_base,
        user_image=images.user,
        proxy_image=images.proxy,
        port=free_port(),
        stack_name=name,
        mdns_enabled=False,
        cull_idle_timeout=0,
        # Plain HTTP unless a test asks for HTTPS (tests/integration/test_https.py).
        **{"tls": "off", **overrides},
    )
    config_file = tmp_path / "hubd.toml"
    config_file.write_text(_toml(config))
    env = {
        **os.environ,
        "HUBD_CONFIG": str(config_file),
        "CONFIGURATION_DIRECTORY": str(tmp_path / "etc"),
        "STATE_DIRECTORY": str(tmp_path / "state"),
        "RUNTIME_DIRECTORY": str(tmp_path / "run"),
        "LOGS_DIRECTORY": str(tmp_path / "log"),
    }
    return StackEnv(config=config, config_file=config_file, env=env, client=client)


def purge_stack(env: StackEnv) -> None:
    Stack(env.client, env.config, timing=Timing(), state_dir=env.state_dir).purge()


@contextlib.contextmanager
def own_stack(
    tmp_path: Path, client: docker.DockerClient, images: TestImages, **overrides: Any
) -> Iterator[StackEnv]:
    """A stack of its own (config overridden by `overrides`), purged however the block ends."""
    env = make_stack_env(tmp_path, client, images, **overrides)
    try:
        yield env
    finally:
        purge_stack(env)


@pytest.fixture
def stack_env(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[StackEnv]:
    with own_stack(tmp_path, docker_client, test_images) as env:
        yield env


def derived_image(client: docker.DockerClient, tag: str, base: str, *lines: str) -> str:
    """A small image on top of a test image (no network needed); rebuilt from cache at once."""
    dockerfile = "\n".join([f"FROM {base}", *lines]) + "\n"
    client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels={"io.hubd.test": "1"}, rm=True
    )
    return tag


@pytest.fixture
def broken_hub_base(docker_client: docker.DockerClient, test_images: TestImages) -> str:
    """A hub base image whose hub cannot start (no jupyterhub command): a crash loop."""
    return derived_image(
        docker_client,
        "hubd-test/broken-hub-base:1",
        test_images.hub_base,
        "RUN rm -f /usr/local/bin/jupyterhub",
    )


# `jupyterhub --upgrade-db` that damages the database and then fails, as a migration that
# breaks half-way does: the accounts table emptied, the schema version unknown to any hub.
_HALF_MIGRATION = r"""#!/usr/bin/python3
import os, sqlite3, sys
if "--upgrade-db" in sys.argv:
    db = sqlite3.connect("/srv/jupyterhub/data/jupyterhub.sqlite")
    db.execute("DELETE FROM users_info")
    db.execute("UPDATE alembic_version SET version_num = 'half-done'")
    db.commit()
    sys.exit("stand-in: the database migration failed half-way")
os.execv("/usr/local/bin/jupyterhub-real", ["jupyterhub", *sys.argv[1:]])
"""


@pytest.fixture
def half_migrating_hub_base(docker_client: docker.DockerClient, test_images: TestImages) -> str:
    """A hub base image whose database migration fails after altering the database."""
    script = _HALF_MIGRATION.replace("\\", "\\\\").replace("\n", "\\n").replace("'", "'\\''")
    return derived_image(
        docker_client,
        "hubd-test/half-migrating-hub-base:1",
        test_images.hub_base,
        "RUN mv /usr/local/bin/jupyterhub /usr/local/bin/jupyterhub-real"
        f" && printf '%b' '{script}' > /usr/local/bin/jupyterhub"
        " && chmod +x /usr/local/bin/jupyterhub",
    )


@pytest.fixture
def login_breaking_hub_base(docker_client: docker.DockerClient, test_images: TestImages) -> str:
    """A hub base image whose hub starts and answers /hub/health, but whose login page fails
    (the page template every login page extends, JupyterHub's page.html, is missing; hubd's own
    login template extends it too), as a JupyterHub that breaks it would."""
    return derived_image(
        docker_client,
        "hubd-test/login-breaking-hub-base:2",
        test_images.hub_base,
        "RUN rm \"$(python3 -c 'import os; from jupyterhub._data import DATA_FILES_PATH as d;"
        ' print(os.path.join(d, "templates", "page.html"))\')"',
    )
