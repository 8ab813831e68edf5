from pathlib import Path

from hubd.paths import resolve_paths


def test_systemd_directories_win() -> None:
    paths = resolve_paths(
        "system", {"STATE_DIRECTORY": "/var/lib/hubd:/other", "RUNTIME_DIRECTORY": "/run/hubd"}
    )
    assert paths.state_dir == Path("/var/lib/hubd")
    assert paths.control_socket == Path("/run/hubd/control.sock")


def test_user_mode_uses_xdg_dirs() -> None:
    paths = resolve_paths("user", {})
    assert paths.config_file.name == "config.toml"
    assert "hubd" in paths.state_dir.parts
    assert paths.desired_state_file.parent == paths.state_dir
