from __future__ import annotations

from pathlib import Path

import pytest

from hubd.config import Config, load_config, render_toml
from hubd.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path / "missing.toml", environ={})
    assert config == Config()
    assert config.port == 8000 and config.mdns_name == "jupyter"
    assert config.shared_folder is None  # the host folder mount is opt-in


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 8100\nmem_limit = "2G"\nallowed_images = ["a/b:1", "c/d:2"]\n')
    config = load_config(
        path, environ={"HUBD_PORT": "8200", "HUBD_MDNS_IPV6": "no", "HUBD_CPU_LIMIT": "1.5"}
    )
    assert config.port == 8200
    assert config.mem_limit == "2G"
    assert config.allowed_images == ("a/b:1", "c/d:2")
    assert config.mdns_ipv6 is False
    assert config.cpu_limit == 1.5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("prot = 1", "unknown key 'prot'"),
        ('port = "8000"', "key 'port': expected an integer, got '8000'"),
        ("port = 70000", "key 'port': expected a port number from 1 to 65535"),
        ("port = true", "key 'port': expected an integer"),
        ('mdns_name = "Jupyter Hub"', "key 'mdns_name': expected lowercase letters"),
        ('mem_limit = "lots"', "key 'mem_limit': expected a memory size"),
        ('shared_folder = "relative/dir"', "key 'shared_folder': expected an absolute path"),
        ("cull_idle_timeout = -5", "key 'cull_idle_timeout'"),
        ('bind_address = "everywhere"', "key 'bind_address': expected an IP address"),
        ('allowed_images = ["ok/img", "bad image"]', "key 'allowed_images'"),
        ("port = ", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(path) in str(err.value)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("HUBD_PORT", "abc", "HUBD_PORT: expected an integer for 'port'"),
        ("HUBD_NOPE", "1", "HUBD_NOPE: 'nope' is not a config key"),
        ("HUBD_MDNS_ENABLED", "maybe", "expected true or false"),
        ("HUBD_PORT", "0", "HUBD_PORT: key 'port'"),
    ],
)
def test_bad_environment_names_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(tmp_path / "none.toml", environ={name: value})


def test_non_config_variables_are_ignored(tmp_path: Path) -> None:
    assert (
        load_config(tmp_path / "x.toml", environ={"HUBD_CONFIG": "/x", "HUBD_TIMING": ""})
        == Config()
    )


def test_rendered_toml_reads_back_the_same(tmp_path: Path) -> None:
    config = Config(port=9000, mem_limit="1G", allowed_images=("x/y:1",), mdns_ipv6=False)
    path = write(tmp_path, render_toml(config))
    assert load_config(path, environ={}) == config


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Config().port = 1  # type: ignore[misc]
    # Its lists too: they are tuples, even when a list was given, so a Config is hashable.
    config = Config(allowed_images=["a/b:1"])  # type: ignore[arg-type]
    assert config.allowed_images == ("a/b:1",)
    assert not hasattr(config.allowed_images, "append")
    assert hash(config) == hash(Config(allowed_images=("a/b:1",)))
    assert hash(Config()) == hash(Config())


def test_a_list_from_the_environment_is_a_tuple_and_a_bad_list_item_is_refused(
    tmp_path: Path,
) -> None:
    config = load_config(tmp_path / "none.toml", environ={"HUBD_MDNS_INTERFACES": "eth0, wlan0"})
    assert config.mdns_interfaces == ("eth0", "wlan0")
    with pytest.raises(ConfigError, match="expected a list of strings, got"):
        load_config(write(tmp_path, 'mdns_interfaces = ["eth0", 1]'), environ={})


@pytest.mark.parametrize(
    "folder, expected",
    [
        ("/", "not a system folder"),
        ("/etc", "not a system folder"),
        ("/usr/share", "not a system folder"),
        ("/home", "not a system folder"),
        ("/var/lib/docker/volumes", "not a system folder"),
        ("/no/such/folder", "an existing folder"),
    ],
)
def test_shared_folder_must_be_an_existing_folder_of_ones_own(
    tmp_path: Path, folder: str, expected: str
) -> None:
    path = write(tmp_path, f'shared_folder = "{folder}"')
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(path, environ={})
    assert "\n" not in str(err.value) and "key 'shared_folder'" in str(err.value)


def test_shared_folder_holding_the_docker_socket_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = tmp_path / "engine"
    (engine / "sock").mkdir(parents=True)
    (engine / "sock" / "docker.sock").touch()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine}/sock/docker.sock")
    path = write(tmp_path, f'shared_folder = "{engine}"')
    with pytest.raises(ConfigError, match="does not hold the Docker socket"):
        load_config(path, environ={})


def test_shared_folder_expands_home_and_warns_when_home_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home" / "owner"
    (home / "shared").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    config = load_config(write(tmp_path, 'shared_folder = "~/shared"'), environ={})
    assert config.shared_folder == str(home / "shared")
    assert "home folder" not in caplog.text
    load_config(write(tmp_path, 'shared_folder = "~"\nshared_folder_readonly = false'), {})
    assert "home folder" in caplog.text and "writable" in caplog.text
