"""The table of `hubd` commands: name -> the module that implements it, and a one-line summary.

As pip's `commands/__init__.py` does it: `hubd --help` is printed from this table alone, and
only the chosen command's module is imported (and so only its imports: the Docker SDK, rich,
zeroconf and the stack load when a command needs them, not to print the version).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence

# Not `from typing import TYPE_CHECKING`: importing typing costs ~3 ms on every `hubd
# --version`; mypy treats a module-level TYPE_CHECKING as true all the same.
TYPE_CHECKING = False


class CommandInfo:
    """One row of the table. (A plain class: `dataclasses` costs `inspect`, ~10 ms to import,
    on every `hubd --version`.)"""

    __slots__ = ("module", "summary")

    def __init__(self, module: str, summary: str) -> None:
        self.module = module  # under hubd.cli; its `register(commands)` adds this command
        self.summary = summary


COMMANDS: dict[str, CommandInfo] = {
    "up": CommandInfo(
        "stack_cmd", "bring the hub up on the pinned versions (newer ones: `hubd upgrade`)"
    ),
    "down": CommandInfo("stack_cmd", "stop the hub and users' servers (keeps all data)"),
    "status": CommandInfo("stack_cmd", "hub state, URL, image, uptime, user servers, log file"),
    "logs": CommandInfo("stack_cmd", "the hub's log (or with --daemon, hubd's own)"),
    "purge": CommandInfo(
        "stack_cmd", "remove the stack AND all its data volumes (users' work, accounts)"
    ),
    "run": CommandInfo("stack_cmd", "run the supervisor daemon in the foreground"),
    "upgrade": CommandInfo(
        "upgrade_cmd",
        "pull newer images, show what changes, switch behind a health gate (rolled back if "
        "the new hub fails it)",
    ),
    "config": CommandInfo("config_cmd", "where the config lives, what is in effect; change it"),
    "user": CommandInfo("user_cmd", "add, remove, reset and list people's accounts"),
    "node": CommandInfo(
        "node_cmd", "add, list, remove and label the machines people's servers run on"
    ),
    "backup": CommandInfo(
        "backup_cmd", "back up accounts, secrets, config and everyone's files (encrypted)"
    ),
    "restore": CommandInfo(
        "backup_cmd", "restore everything, or one person's files, from a backup"
    ),
    "service": CommandInfo(
        "service_cmd", "run hubd at boot as a systemd/launchd service: install, uninstall, status"
    ),
    "trust": CommandInfo(
        "trust_cmd", "trust the hub's HTTPS certificate on this machine (system and browsers)"
    ),
    "tray": CommandInfo(
        "tray_cmd", "show the tray icon: the hub's state, open it, start/stop, add users"
    ),
    "completion": CommandInfo("meta_cmd", "print a shell completion script (bash, zsh, fish)"),
    "man": CommandInfo("meta_cmd", "print hubd's manual page (roff), made from this parser"),
}

if TYPE_CHECKING:
    import argparse

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # only annotations use it; argparse itself loads when a parser is built
    Subcommands = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(
    commands: Subcommands, name: str, *, description: str | None = None, example: str = ""
) -> argparse.ArgumentParser:
    """A command's parser, its summary taken from the table, with a description and examples."""
    summary = COMMANDS[name].summary
    return add_action(commands, name, summary, description=description, example=example)


def add_action(
    actions: Subcommands,
    name: str,
    summary: str,
    *,
    description: str | None = None,
    example: str = "",
) -> argparse.ArgumentParser:
    """An action of a command group (`hubd config set`), with a description and examples."""
    import argparse

    epilog = (
        "example:\n" + "\n".join(f"  {line}" for line in example.splitlines()) if example else None
    )
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command word in `argv` (the first word that is not a global option or its value)."""
    takes_value = {"--config"}
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--":
            continue
        if word.startswith("-"):
            skip = word in takes_value
            continue
        return word
    return None


def _modules_in_order() -> Iterator[tuple[str, list[str]]]:
    seen: dict[str, list[str]] = {}
    for name, info in COMMANDS.items():
        seen.setdefault(info.module, []).append(name)
    yield from seen.items()


def register_commands(commands: Subcommands, chosen: str | None, everything: bool) -> None:
    """Every command, fully for the chosen one (or all, for completion and the man page), and
    as a summary only for the others: their modules are not imported."""
    wanted = COMMANDS[chosen].module if chosen in COMMANDS else None
    for module, names in _modules_in_order():
        if everything or module == wanted:
            importlib.import_module(f"hubd.cli.{module}").register(commands)
            continue
        for name in names:
            commands.add_parser(name, help=COMMANDS[name].summary, add_help=False)
