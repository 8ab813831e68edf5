"""`hubd completion bash|zsh|fish` and `hubd man`: both made from the parser itself, so they
never fall behind a new command or option (shtab and argparse-manpage read argparse)."""

from __future__ import annotations

import argparse

from hubd.cli.commands import Subcommands, add_command
from hubd.errors import UsageError

SHELLS = ("bash", "zsh", "fish")


def register(commands: Subcommands) -> None:
    completion = add_command(
        commands,
        "completion",
        description="Print a completion script for your shell, made from hubd's own parser "
        "(every command, action and option).",
        example="hubd completion bash | sudo tee /etc/bash_completion.d/hubd\n"
        'hubd completion zsh > "${fpath[1]}/_hubd"\n'
        "hubd completion fish > ~/.config/fish/completions/hubd.fish",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    completion.set_defaults(handler=_completion, logs=False)
    man = add_command(
        commands,
        "man",
        description="Print hubd's manual page (roff), made from its parser: every command "
        "with its description, options and example, and the exit codes.",
        example="hubd man | man -l -\nhubd man > /usr/local/share/man/man1/hubd.1",
    )
    man.set_defaults(handler=_man, logs=False)


def _full_parser() -> argparse.ArgumentParser:
    from hubd.cli import build_parser

    return build_parser()


def completion_script(shell: str) -> str:
    if shell not in SHELLS:
        raise UsageError(f"completion: no script for {shell!r} (bash, zsh or fish)")
    import shtab

    return str(shtab.complete(_full_parser(), shell=shell))


def _completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell), end="")
    return 0


def man_page() -> str:
    from hubd.cli.manpage import render

    return render(_full_parser())


def _man(args: argparse.Namespace) -> int:
    print(man_page(), end="")
    return 0
