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


# ------------------------------------------------------------- following hubd's log file


def test_the_log_file_follower_gives_the_last_lines_then_new_ones_across_rotation(
    tmp_path: Path,
) -> None:
    import threading

    from hubd.paths import LogFileFollower

    log = tmp_path / "hubd.log"
    log.write_text("one\ntwo\nthree\n")
    follower = LogFileFollower(log, tail=2)
    assert follower.last == ["two", "three"]
    stopped = threading.Event()
    lines = follower.follow(0.01, stopped)
    with log.open("a") as out:
        out.write("four\nfi")  # a line the writer has not finished yet is not given
        out.flush()
        assert next(lines) == "four\n"
        out.write("ve\n")
    assert next(lines) == "five\n"
    # RotatingFileHandler: the file is renamed and a new one begun; the old one's last
    # line (written before the rename) comes first, then the new file from its start.
    with log.open("a") as out:
        out.write("six\n")
    log.rename(tmp_path / "hubd.log.1")
    log.write_text("seven\n")
    assert [next(lines), next(lines)] == ["six\n", "seven\n"]
    stopped.set()
    assert list(lines) == []
    follower.close()


def test_the_log_file_follower_waits_for_a_log_that_is_not_there_yet(tmp_path: Path) -> None:
    import threading

    from hubd.paths import LogFileFollower

    log = tmp_path / "hubd.log"
    follower = LogFileFollower(log, tail=5)
    assert follower.last == []
    lines = follower.follow(0.01, threading.Event())
    log.write_text("first\n")
    assert next(lines) == "first\n"
    lines.close()
    follower.close()
