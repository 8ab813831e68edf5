"""`hubd config set|unset`, the name and password checks of `hubd user`, and the progress
feed `hubd up` through a daemon replays (issue 23)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubd.cli import main
from hubd.cli.config_file import set_key, unset_key
from hubd.config import load_config
from hubd.errors import ConfigError, UserAccountError
from hubd.stack.progress import FeedReplay, LogReporter, ProgressFeed
from hubd.stack.usernames import check_username, suggest_username, username_problem
from hubd.timing import Timing


@pytest.fixture
def no_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))  # no socket there


def test_config_set_keeps_comments_and_is_checked(
    tmp_path: Path, no_daemon: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hubd.toml"
    config.write_text("# my hub\nport = 8000  # the usual\nmdns_name = 'lab'\n")
    assert main(["--config", str(config), "config", "set", "port", "8080"]) == 0
    text = config.read_text()
    assert "# my hub" in text and "port = 8080" in text and "mdns_name = 'lab'" in text
    assert load_config(config, environ={}).port == 8080
    assert "not running" in capsys.readouterr().err
    # Refused values leave the file exactly as it was.
    before = config.read_bytes()
    assert main(["--config", str(config), "config", "set", "port", "99999"]) == os.EX_CONFIG
    assert main(["--config", str(config), "config", "set", "prot", "1"]) == os.EX_CONFIG
    assert "did you mean 'port'?" in capsys.readouterr().err
    assert config.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_config_set_types_and_unset(tmp_path: Path, no_daemon: None) -> None:
    config = tmp_path / "new" / "hubd.toml"  # made when missing (not given as --config)
    assert set_key(config, "allowed_images", ["a/b:1", "c/d:2"])
    assert set_key(config, "mdns_enabled", False)
    assert not set_key(config, "mdns_enabled", False)  # already so
    loaded = load_config(config, environ={})
    assert loaded.allowed_images == ("a/b:1", "c/d:2") and loaded.mdns_enabled is False
    assert unset_key(config, "mdns_enabled") and not unset_key(config, "mdns_enabled")
    assert load_config(config, environ={}).mdns_enabled is True
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "bad.toml").write_text("port = = 1\n")
        set_key(tmp_path / "bad.toml", "port", 1)


def test_config_set_from_text_through_the_cli(tmp_path: Path, no_daemon: None) -> None:
    config = tmp_path / "hubd.toml"
    config.write_text("")
    base = ["--config", str(config), "config"]
    assert main([*base, "set", "allowed_images", "a/b:1, c/d:2"]) == 0
    assert main([*base, "set", "shared_folder_readonly", "no"]) == 0
    assert main([*base, "set", "cpu_limit", "1.5"]) == 0
    loaded = load_config(config, environ={})
    assert (loaded.allowed_images, loaded.shared_folder_readonly, loaded.cpu_limit) == (
        ("a/b:1", "c/d:2"),
        False,
        1.5,
    )
    assert main([*base, "unset", "cpu_limit"]) == 0
    assert load_config(config, environ={}).cpu_limit is None


# ----------------------------------------------------------------------------- user names


@pytest.mark.parametrize(
    ("given_name", "offered"),
    [("Bad Name", "bad-name"), ("Amy", "amy"), ("amy smith", "amy-smith"), ("1amy", "amy")],
)
def test_the_name_offered_is_itself_valid(given_name: str, offered: str) -> None:
    problem = username_problem(given_name)
    assert problem is not None and problem.endswith(f"use {offered!r}")
    assert check_username(offered) == offered


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_suggestion_is_a_valid_name(text: str) -> None:
    suggestion = suggest_username(text)
    assert suggestion is None or username_problem(suggestion) is None


def test_a_short_password_asks_again_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hubd.cli import user_cmd

    answers = iter(["short", "long-enough-1", "long-enough-2", "long-enough-1", "long-enough-1"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert user_cmd._read_password(from_stdin=False) == "long-enough-1"
    err = capsys.readouterr().err
    assert "at least 8 characters; try again" in err and "differ; try again" in err
    answers = iter(["short"] * user_cmd.PASSWORD_TRIES)
    with pytest.raises(UserAccountError, match="nothing changed"):
        user_cmd._read_password(from_stdin=False)


def test_docker_access_is_checked_before_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_daemon: None
) -> None:

    asked: list[str] = []

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        return "long-enough-1"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", getpass)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    monkeypatch.setenv("HUBD_CONFIG", str(tmp_path / "c.toml"))
    assert main(["user", "add", "amy"]) == os.EX_UNAVAILABLE
    assert asked == []


# ------------------------------------------------------------------ up through the daemon


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def step(self, message: str) -> None:
        self.seen.append(("step", message))

    def build_output(self, line: str) -> None:
        self.seen.append(("build", line))

    def pulling(self, image: str) -> Any:
        seen = self.seen

        class Pull:
            def __enter__(self) -> Pull:
                seen.append(("pulling", image))
                return self

            def __exit__(self, *exc: object) -> None:
                seen.append(("pulled", image))

            def update(self, event: dict[str, Any]) -> None:
                detail = event.get("progressDetail") or {}
                seen.append(("bytes", detail.get("current"), detail.get("total")))

        return Pull()


def test_the_daemons_progress_is_replayed_as_the_cli_shows_it() -> None:
    feed = ProgressFeed()
    daemon_side = LogReporter(Timing(), feed=feed.add)
    daemon_side.step("building the hub image")
    daemon_side.build_output("Step 1/3 : FROM hub-base\n")
    with daemon_side.pulling("quay.io/jupyter/base-notebook") as pull:
        event = {"id": "l1", "status": "Downloading"}
        pull.update({**event, "progressDetail": {"current": 5 << 20, "total": 10 << 20}})
    daemon_side.step("starting the hub")
    first = feed.since(0)
    assert first["next"] == len(first["entries"]) and feed.since(first["next"])["entries"] == []
    cli_side = Recorder()
    replay = FeedReplay(cli_side)
    for entry in first["entries"]:
        replay.show(entry)
    replay.close()
    assert cli_side.seen[:3] == [
        ("step", "building the hub image"),
        ("build", "Step 1/3 : FROM hub-base"),
        ("pulling", "quay.io/jupyter/base-notebook"),
    ]
    assert ("bytes", 5 << 20, 10 << 20) in cli_side.seen
    assert cli_side.seen[-2:] == [
        ("pulled", "quay.io/jupyter/base-notebook"),
        ("step", "starting the hub"),
    ]
