"""One engine resolver: DOCKER_HOST, DOCKER_CONTEXT, the CLI's current context (through
docker-py's ContextAPI, DOCKER_CONFIG respected), the places other engines keep their socket,
and bad input refused in one line that names what was tried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docker.context import ContextAPI

from hubd.errors import ConfigError, EngineAddressError
from hubd.stack import engine
from hubd.stack.engine import Endpoint, EngineKind, engine_kind, mount_source, resolve_endpoint


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Docker CLI config folder of the test's own (DOCKER_CONFIG), nothing else set."""
    folder = tmp_path / "dockercfg"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder


def make_context(name: str, host: str) -> None:
    # ContextAPI puts contexts beside the config file it finds: make sure there is one.
    folder = Path(os.environ["DOCKER_CONFIG"])
    if not (folder / "config.json").exists():
        (folder / "config.json").write_text("{}")
    ContextAPI.create_context(name, host=host)


def use_context(folder: Path, name: str) -> None:
    (folder / "config.json").write_text(json.dumps({"currentContext": name}))


def test_default_is_the_system_socket(docker_config: Path) -> None:
    assert resolve_endpoint() == Endpoint("/var/run/docker.sock", "default")


def test_docker_host_unix(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other/docker.sock")
    endpoint = resolve_endpoint()
    assert endpoint.socket_path == "/run/other/docker.sock"
    assert endpoint.describe() == "unix:///run/other/docker.sock (DOCKER_HOST)"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("tcp://192.0.2.7:2376", "mounts that socket"),
        ("ssh://me@box", "mounts that socket"),
        ("garbage", "not a Docker address"),
        ("unix://", "not a Docker address"),
        ("npipe:////./pipe/docker_engine", "not a Docker address"),
    ],
)
def test_docker_host_refused(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", value)
    with pytest.raises(EngineAddressError) as caught:
        resolve_endpoint()
    message = str(caught.value)
    assert "\n" not in message and words in message and value in message
    assert isinstance(caught.value, ConfigError)  # exit 78: no service-manager restarts


def test_current_context_through_contextapi(docker_config: Path, tmp_path: Path) -> None:
    make_context("other", f"unix://{tmp_path}/other.sock")
    use_context(docker_config, "other")
    endpoint = resolve_endpoint()
    assert endpoint == Endpoint(f"{tmp_path}/other.sock", "context other")
    assert endpoint.describe() == f"unix://{tmp_path}/other.sock (Docker context 'other')"


def test_docker_context_overrides_current(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_context(docker_config, "one")
    make_context("one", f"unix://{tmp_path}/one.sock")
    make_context("two", f"unix://{tmp_path}/two.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "two")
    assert resolve_endpoint().socket_path == f"{tmp_path}/two.sock"
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert resolve_endpoint().source == "default"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/host.sock")  # DOCKER_HOST wins
    assert resolve_endpoint().socket_path == f"{tmp_path}/host.sock"


def test_context_that_does_not_exist(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(EngineAddressError, match="'nowhere', which does not exist"):
        resolve_endpoint()
    monkeypatch.delenv("DOCKER_CONTEXT")
    use_context(docker_config, "gone")
    with pytest.raises(EngineAddressError, match="current context is 'gone'"):
        resolve_endpoint()


def test_context_over_tcp_refused(docker_config: Path) -> None:
    make_context("remote", "tcp://192.0.2.9:2375")
    use_context(docker_config, "remote")
    with pytest.raises(EngineAddressError, match="context 'remote' points at"):
        resolve_endpoint()


def test_corrupt_cli_config(docker_config: Path) -> None:
    (docker_config / "config.json").write_text('{"currentContext": "x",')
    with pytest.raises(EngineAddressError) as caught:
        resolve_endpoint()
    assert str(docker_config / "config.json") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_corrupt_context_meta(docker_config: Path, tmp_path: Path) -> None:
    make_context("broken", f"unix://{tmp_path}/b.sock")
    use_context(docker_config, "broken")
    (meta,) = (docker_config / "contexts" / "meta").glob("*/meta.json")
    meta.write_text("{")
    with pytest.raises(EngineAddressError, match=r"context 'broken'|cannot be read"):
        resolve_endpoint()


def test_known_places_when_the_default_socket_is_missing(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", str(tmp_path / "absent.sock"))
    runtime = tmp_path / "run-user"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert resolve_endpoint().source == "default"  # nothing anywhere: the default, named
    desktop = tmp_path / "home" / ".docker" / "desktop"
    desktop.mkdir(parents=True)
    (desktop / "docker.sock").touch()
    assert resolve_endpoint().socket_path == str(desktop / "docker.sock")
    (runtime / "docker.sock").touch()  # rootless comes first
    assert resolve_endpoint().socket_path == str(runtime / "docker.sock")


@pytest.mark.parametrize(
    ("path", "info", "kind", "mount"),
    [
        (
            "/var/run/docker.sock",
            {"OperatingSystem": "Debian GNU/Linux 12"},
            EngineKind.ENGINE,
            "/var/run/docker.sock",
        ),
        (
            "/run/user/1000/docker.sock",
            {"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]},
            EngineKind.ROOTLESS,
            "/run/user/1000/docker.sock",
        ),
        (
            "/home/a/.docker/desktop/docker.sock",
            {"OperatingSystem": "Docker Desktop"},
            EngineKind.DESKTOP,
            "/var/run/docker.sock",
        ),
        ("/Users/a/.docker/run/docker.sock", {}, EngineKind.DESKTOP, "/var/run/docker.sock"),
        (
            "/Users/a/.colima/default/docker.sock",
            {"Name": "colima"},
            EngineKind.COLIMA,
            "/var/run/docker.sock",
        ),
        (
            "/Users/a/.orbstack/run/docker.sock",
            {"OperatingSystem": "OrbStack"},
            EngineKind.ORBSTACK,
            "/var/run/docker.sock",
        ),
        ("/srv/engine2/docker.sock", {}, EngineKind.ENGINE, "/srv/engine2/docker.sock"),
    ],
)
def test_kind_and_the_socket_a_container_mounts(
    path: str, info: dict[str, object], kind: str, mount: str
) -> None:
    endpoint = Endpoint(path, "context x")
    assert engine_kind(endpoint, info) == kind
    assert mount_source(endpoint, kind) == mount


def run_hubd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    "case", ["tcp", "ssh", "garbage", "no-such-context", "context-to-nowhere", "corrupt-config"]
)
def test_bad_engine_input_is_one_line_and_changes_nothing(tmp_path: Path, case: str) -> None:
    """`hubd status`, `up` and `run` each refuse in one line naming what was tried, exit
    non-zero, and leave no file behind (state, config, runtime folders stay empty)."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "rt"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        CONFIGURATION_DIRECTORY=str(tmp_path / "etc"),
        STATE_DIRECTORY=str(tmp_path / "state2"),
        RUNTIME_DIRECTORY=str(tmp_path / "run"),
        LOGS_DIRECTORY=str(tmp_path / "log"),
        HUBD_STACK_NAME=f"hubdbad{os.getpid()}",
        HUBD_MDNS_ENABLED="false",
    )
    expected = {
        "tcp": "tcp://127.0.0.1:2375",
        "ssh": "ssh://me@127.0.0.1",
        "garbage": "not-an-address",
        "no-such-context": "'nowhere', which does not exist",
        "context-to-nowhere": f"{tmp_path}/gone.sock",
        "corrupt-config": str(home / ".docker" / "config.json"),
    }[case]
    if case in ("tcp", "ssh", "garbage"):
        env["DOCKER_HOST"] = expected
    elif case == "no-such-context":
        env["DOCKER_CONTEXT"] = "nowhere"
    elif case == "context-to-nowhere":
        # Made by the real docker CLI, as a person would.
        made = subprocess.run(
            [
                "docker",
                "context",
                "create",
                "gone",
                "--docker",
                f"host=unix://{tmp_path}/gone.sock",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        subprocess.run(
            ["docker", "context", "use", "gone"], env=env, check=True, capture_output=True
        )
    else:
        (home / ".docker" / "config.json").write_text('{"auths": {}, "currentContext": ')
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    # `hubd run` waits for an engine that is only missing (a boot-time race): it refuses at
    # once only what no waiting mends.
    commands = [["status"], ["up"]] + ([] if case == "context-to-nowhere" else [["run"]])
    for command in commands:
        result = run_hubd(env, *command)
        assert result.returncode != 0, (command, result.stdout)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (command, result.stderr)
        assert lines[0].startswith("hubd: ") and expected in lines[0], lines[0]
        if case != "context-to-nowhere":  # that one is a missing engine: retried by services
            assert result.returncode == 78, (command, result.returncode)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
