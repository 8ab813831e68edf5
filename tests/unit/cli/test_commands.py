"""The command table, the parser built from it, and the one place errors become exit codes
(issue 23), in this process: fast."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from hubd.cli import EXIT_BUG, build_parser, main
from hubd.cli.commands import COMMANDS, chosen_command
from hubd.cli.exit_codes import EXIT_CODES
from hubd.errors import HubdError

ROOT = Path(__file__).resolve().parents[3]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _every_parser() -> list[argparse.ArgumentParser]:
    found, pending = [], list(_subparsers(build_parser()).values())
    while pending:
        parser = pending.pop()
        found.append(parser)
        pending.extend(_subparsers(parser).values())
    return found


def test_the_table_names_every_command_and_each_module_registers_its_own() -> None:
    full = build_parser()
    commands = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == list(COMMANDS)
    # The summary in `hubd --help` (from the table) is the command's own.
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    assert helps == {name: info.summary for name, info in COMMANDS.items()}


def test_only_the_chosen_command_is_built() -> None:
    parser = build_parser(["config", "path"])
    choices = _subparsers(parser)
    assert _subparsers(choices["config"])  # built in full: it has its actions
    assert not _subparsers(choices["user"]) and choices["user"].add_help is False  # a stub


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        (["--config", "x.toml", "status"], "status"),
        (["-v", "user", "add", "amy"], "user"),
        (["--config=x.toml", "up"], "up"),
        (["--version"], None),
        ([], None),
    ],
)
def test_chosen_command(argv: list[str], chosen: str | None) -> None:
    assert chosen_command(argv) == chosen


def test_every_command_and_action_has_a_description_and_an_example() -> None:
    for parser in _every_parser():
        assert parser.description, parser.prog
        assert parser.epilog and "example:" in parser.epilog, parser.prog


def test_bare_hubd_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hubd") and "status" in out and "config" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stauts"], "unknown command 'stauts'; did you mean 'status'?"),
        (["config", "shwo"], "config: unknown action 'shwo'; did you mean 'show'?"),
        (["user", "ad", "amy"], "user: unknown action 'ad'; did you mean 'add'?"),
        (["completion", "bsh"], "did you mean 'bash'?"),
        (["config"], "config: the following arguments are required: ACTION"),
        (["user", "add"], "the following arguments are required: name"),
        (["status", "--jsno"], "unrecognized arguments: --jsno"),
    ],
)
def test_usage_errors_are_one_line_and_exit_64(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == os.EX_USAGE == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hubd: ") and expected in err, err


def test_a_missing_config_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(tmp_path / "nonexistent.toml"), "config", "show"]) == 64
    assert "no such file" in capsys.readouterr().err


def test_a_bug_is_one_line_unless_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hubd.cli import config_cmd

    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(config_cmd, "_path", broken)
    assert main(["config", "path"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert err == "hubd: unexpected error (RuntimeError: boom); run with -v for details\n"
    assert main(["-v", "config", "path"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith(
        "hubd: unexpected error (RuntimeError: boom)"
    )


def test_docker_sdk_errors_are_mapped_without_importing_the_sdk_early(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import docker.errors

    from hubd.cli import config_cmd

    def refused(_args: argparse.Namespace) -> int:
        raise docker.errors.APIError("conflict: the name is in use")

    monkeypatch.setattr(config_cmd, "_path", refused)
    assert main(["config", "path"]) == 1
    assert capsys.readouterr().err.startswith("hubd: Docker refused: conflict")


def test_the_exit_code_table_covers_every_error_and_the_docs() -> None:
    table = {code for code, _name, _text in EXIT_CODES}
    pending: list[type[HubdError]] = [HubdError]
    while pending:
        cls = pending.pop()
        assert cls.exit_code in table, cls
        pending.extend(cls.__subclasses__())
    assert {64, 70, 130, 141} <= table
    documented = set(
        map(int, re.findall(r"^\| (\d+) ", (ROOT / "docs/exit-codes.md").read_text(), re.M))
    )
    assert documented == table


def test_completion_scripts_know_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == 0
        script = capsys.readouterr().out
        for name in ("status", "config", "completion", "unlock"):
            assert name in script, (shell, name)


def test_the_man_page_is_made_from_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["man"]) == 0
    page = capsys.readouterr().out
    assert page.startswith(".TH HUBD")
    for text in ("hubd config set", "\\-\\-password\\-stdin", "EXIT STATUS", "\\fB141\\fR"):
        assert text in page, text
