import os
import pwd
from pathlib import Path

import pytest

from hubd.paths import resolve_paths, sudo_user_state_dir


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


@pytest.mark.skipif(os.geteuid() != 0, reason="sudo's case: run as root")
def test_under_sudo_the_persons_own_state_folder() -> None:
    """`sudo hubd trust install` for a hub in the person's account (the quickstart's)."""
    nobody = Path(pwd.getpwnam("nobody").pw_dir)
    assert sudo_user_state_dir({"SUDO_USER": "nobody"}) == nobody / ".local/state/hubd"
    assert sudo_user_state_dir({"SUDO_USER": "root"}) is None
    assert sudo_user_state_dir({"SUDO_USER": "no-such-person-hubd"}) is None
    assert sudo_user_state_dir({}) is None
