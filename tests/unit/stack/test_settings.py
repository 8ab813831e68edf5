"""The hub's generated configuration, loaded as JupyterHub would load it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config as TraitletsConfig

from hubd.config import Config
from hubd.stack.images import hub_context_dir
from hubd.stack.naming import StackNames
from hubd.stack.settings import hub_settings
from hubd.timing import Timing


def load_hub_config(tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = hub_settings(config, StackNames(config.stack_name), Timing())
    settings["data_dir"] = str(tmp_path / "data")
    settings["proxy_token_file"] = str(tmp_path / "proxy-token")
    (tmp_path / "proxy-token").write_text("the-proxy-token\n")
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings))
    monkeypatch.setenv("HUBD_SETTINGS", str(settings_file))
    c = TraitletsConfig()
    source = (hub_context_dir() / "jupyterhub_config.py").read_text()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    return c


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = load_hub_config(tmp_path, Config(), monkeypatch)
    assert c.JupyterHub.spawner_class == "hubd_spawner.HubdDockerSpawner"
    assert c.DockerSpawner.network_name == "hubd-net"
    assert c.JupyterHub.hub_connect_ip == "hubd-hub"
    assert c.Spawner.default_url == "/lab"
    assert c.DockerSpawner.image == "quay.io/jupyter/base-notebook:latest"
    # Each user's work on their own named volume, never one shared host folder.
    assert c.DockerSpawner.volumes == {"hubd-home-{username}": "/home/jovyan/work"}
    assert "read_only_volumes" not in c.DockerSpawner
    assert c.JupyterHub.authenticator_class == "hubd_hub.HubdAuthenticator"
    assert c.JupyterHub.cleanup_servers is False
    assert c.DockerSpawner.extra_create_kwargs["labels"]["io.hubd.stack"] == "hubd"


def test_the_proxy_is_hubds_not_the_hubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = load_hub_config(tmp_path, Config(stack_name="lab"), monkeypatch)
    # A hub restart must never take the proxy (and everyone's open sessions) with it.
    assert c.ConfigurableHTTPProxy.should_start is False
    # The proxy's alias on the stack network, not its name: its API listens there only.
    assert c.ConfigurableHTTPProxy.api_url == "http://lab-proxy-api:8001"
    assert c.ConfigurableHTTPProxy.auth_token == "the-proxy-token"
    # hubd asks the hub to re-add the routes right after a proxy restart.
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "proxy" in roles["hubd"]["scopes"]


def test_culler_is_a_service_with_least_privilege(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_hub_config(tmp_path, Config(cull_idle_timeout=42000), monkeypatch)
    services = {s["name"]: s for s in c.JupyterHub.services}
    culler = services["idle-culler"]
    assert culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--timeout=42000" in culler["command"]
    assert "admin" not in culler  # the deprecated admin: True
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(roles["idle-culler"]["scopes"]) == {
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
    assert roles["idle-culler"]["services"] == ["idle-culler"]


def test_culling_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = load_hub_config(tmp_path, Config(cull_idle_timeout=0), monkeypatch)
    assert [s["name"] for s in c.JupyterHub.services] == ["hubd"]


def test_service_token_is_made_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_hub_config(tmp_path, Config(), monkeypatch)
    token_file = tmp_path / "data" / "hubd-service-token"
    token = token_file.read_text()
    assert len(token) == 64 and token_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["hubd"]["api_token"] == token
    again = load_hub_config(tmp_path, Config(), monkeypatch)
    assert {s["name"]: s for s in again.JupyterHub.services}["hubd"]["api_token"] == token


def test_limits_images_and_shared_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(
        mem_limit="2G",
        cpu_limit=1.5,
        allowed_images=("a/b:1", "c/d:2"),
        shared_folder="/srv/shared",
        shared_folder_readonly=True,
    )
    c = load_hub_config(tmp_path, config, monkeypatch)
    assert c.DockerSpawner.mem_limit == "2G" and c.DockerSpawner.cpu_limit == 1.5
    assert c.DockerSpawner.allowed_images == ["a/b:1", "c/d:2"]
    assert c.DockerSpawner.read_only_volumes == {"/srv/shared": "/home/jovyan/shared"}
    writable = load_hub_config(
        tmp_path, Config(shared_folder="/srv/s", shared_folder_readonly=False), monkeypatch
    )
    assert writable.DockerSpawner.volumes["/srv/s"] == "/home/jovyan/shared"


def test_users_containers_are_hardened_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_hub_config(tmp_path, Config(), monkeypatch)
    host = c.DockerSpawner.extra_host_config
    assert host["pids_limit"] == 1024
    assert host["security_opt"] == ["no-new-privileges:true"]
    assert host["cap_drop"] == ["ALL"]


@pytest.mark.parametrize(
    "engine_gib, expected",
    [(2, "1024M"), (6, "1536M"), (16, "4096M"), (24, "6144M"), (64, "8192M")],
)
def test_default_memory_limit_is_a_quarter_of_the_engine_within_1_to_8_gib(
    engine_gib: int, expected: str
) -> None:
    settings = hub_settings(
        Config(), StackNames("hubd"), Timing(), engine_memory_bytes=engine_gib * 1024**3
    )
    assert settings["mem_limit"] == expected
    assert hub_settings(
        Config(mem_limit="3G"), StackNames("hubd"), Timing(), engine_memory_bytes=64 * 1024**3
    )["mem_limit"] == ("3G")
