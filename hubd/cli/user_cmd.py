"""`hubd user add | remove | passwd | unlock | list | move`: through the daemon when it runs."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING

from hubd.cli.commands import Subcommands, add_action, add_command
from hubd.cli.context import Context
from hubd.errors import UsageError, UserAccountError
from hubd.stack.usernames import check_username, password_problem
from hubd.status import HubState

if TYPE_CHECKING:
    from hubd.control.client import ControlClient
    from hubd.stack.accounts import Accounts

# A person who mistypes gets this many tries at a password, as passwd(1) gives.
PASSWORD_TRIES = 3


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "user",
        description="People's accounts on the hub: add, remove, set a password, unlock after "
        "too many wrong passwords, list, move (on a hub of several machines). Through the "
        "running daemon when there is one.",
        example="hubd user add alice --admin\nhubd user list",
    )
    sub = parser.add_subparsers(dest="user_command", metavar="ACTION")
    sub.required = True
    add = add_action(
        sub,
        "add",
        "create an account (asks for the password twice)",
        description="Create an account. The password is asked twice on a terminal (at least "
        "8 characters), or read as one line with --password-stdin.",
        example="hubd user add alice --admin\nprintf '%s\\n' \"$PASS\" | hubd user add bob "
        "--password-stdin",
    )
    add.add_argument("name", help="lowercase letters, digits and single '.', '_' or '-'")
    add.add_argument("--admin", action="store_true", help="may manage the hub and other users")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one line)",
    )
    add.add_argument(
        "--node",
        metavar="NODE",
        help="on a hub of several machines: the one that keeps their files and runs their server",
    )
    add.set_defaults(handler=_add)
    remove = add_action(
        sub,
        "remove",
        "delete an account (their files stay unless asked)",
        example="hubd user remove bob\nhubd user remove bob --delete-data",
    )
    remove.add_argument("name")
    remove.add_argument(
        "--delete-data", action="store_true", help="also delete the user's files (asks first)"
    )
    remove.add_argument("--yes", action="store_true", help="do not ask before deleting files")
    remove.set_defaults(handler=_remove)
    passwd = add_action(
        sub, "passwd", "set a new password for an account", example="hubd user passwd alice"
    )
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one line)",
    )
    passwd.set_defaults(handler=_passwd)
    unlock = add_action(
        sub,
        "unlock",
        "let an account log in again now, after too many wrong passwords",
        example="hubd user unlock alice",
    )
    unlock.add_argument("name")
    unlock.set_defaults(handler=_unlock)
    listing = add_action(
        sub, "list", "who has an account, and whose server runs", example="hubd user list --json"
    )
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=_list)
    register_move(sub)


def _accounts(args: argparse.Namespace) -> ControlClient | Accounts:
    """The same operations, on the daemon when it runs, else directly on the engine (which
    is reached here: a person without Docker access learns it before typing a password)."""
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    if daemon is not None:
        # Right after `hubd service install` the daemon may still be pulling, building or
        # starting the hub: wait for it (as `hubd up` does) rather than say "try again".
        if daemon.status().state in (HubState.STARTING, HubState.RESTARTING):
            from hubd.cli.stack_cmd import _wait_for_daemon

            print("waiting for the hub to finish starting…", file=sys.stderr)
            _wait_for_daemon(daemon, ctx.timing, lambda: None)
        return daemon
    from hubd.stack.accounts import Accounts

    return Accounts(ctx.stack)


def _can_ask_password(from_stdin: bool) -> None:
    """Before Docker is asked anything: a password can be had at all."""
    if not from_stdin and not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        problem = password_problem(password)
        if problem:
            raise UserAccountError(problem)
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    problem = ""
    for _ in range(PASSWORD_TRIES):
        try:
            first = getpass.getpass("Password: ")
            problem = password_problem(first) or ""
            if not problem and getpass.getpass("Password again: ") != first:
                problem = "the two passwords differ"
        except EOFError:  # the terminal closed (Ctrl-D) before a password was typed
            raise UsageError("no password typed; nothing changed") from None
        if not problem:
            return first
        print(f"{problem}; try again", file=sys.stderr)
    raise UserAccountError(f"{problem}; nothing changed")


def _add(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    _can_ask_password(args.password_stdin)
    accounts = _accounts(args)
    password = _read_password(args.password_stdin)
    result = accounts.add_user(name, password, args.admin, node=args.node)
    where = f" (their files and server on {result['node']})" if result.get("node") else ""
    print(f"added {'admin ' if args.admin else ''}{name}{where}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    _can_ask_password(args.password_stdin)
    accounts = _accounts(args)
    password = _read_password(args.password_stdin)
    accounts.set_password(name, password)
    print(f"password changed for {name}")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    result = _accounts(args).unlock_user(name)
    print(f"unlocked {name}" if result.get("was_locked") else f"{name} was not locked out")
    return 0


def _remove(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    if args.delete_data and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "--delete-data deletes their files: run it on a terminal, or add --yes"
            )
        answer = input(f"Delete {name}'s account AND all their files? Type the name to confirm: ")
        if answer.strip() != name:
            print("nothing deleted")
            return 1
    result = _accounts(args).remove_user(name, args.delete_data)
    kept = (
        "their files were deleted"
        if result.get("data_deleted")
        else (
            f"their files stay in volume {result['volume']}"
            if result.get("volume")
            else "they had no files yet"
        )
    )
    print(f"removed {name}; {kept}")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = _accounts(args).list_users()
    if args.json:
        print(json.dumps(users, indent=2))
        return 0
    if not users:
        print("no users yet: add one with `hubd user add NAME --admin`")
        return 0
    print(f"{'NAME':<20} {'ADMIN':<6} {'SERVER':<8} LAST ACTIVITY")
    for user in users:
        print(
            f"{user['name']:<20} {'yes' if user['admin'] else 'no':<6} "
            f"{'running' if user['server_running'] else '-':<8} {user['last_activity'] or '-'}"
        )
    return 0


# ---------------------------------------------------------------- hubd user move (Swarm)


def register_move(sub: Subcommands) -> None:
    move = add_action(
        sub,
        "move",
        "move a person's files to another node of the Swarm (their home)",
        example="hubd user move alice --to node2",
    )
    move.add_argument("name")
    move.add_argument("--to", required=True, metavar="NODE", help="node hostname or id")
    move.add_argument(
        "--yes", action="store_true", help="stop their server if it runs, without asking"
    )
    move.set_defaults(handler=_move)


def _move(args: argparse.Namespace) -> int:
    from hubd.stack.swarm.move import move_user, plan_move

    name = check_username(args.name)
    ctx = Context.from_args(args)
    daemon = ctx.daemon()
    plan = (
        daemon.move_user(name, args.to, dry_run=True)
        if daemon is not None
        else plan_move(ctx.stack, name, args.to)
    )
    stop = bool(args.yes)
    if plan["server_running"] and not stop:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{name}'s server is running: stop it first, or add --yes to have hubd stop it"
            )
        answer = input(f"{name}'s server is running. Stop it and move {name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing moved")
            return 1
        stop = True
    print(f"moving {name} from {plan['from']} to {plan['to']}:")
    for step in plan["steps"]:
        print(f"  {step}")
    if daemon is not None:
        print("the daemon is moving them (their files are copied and compared first) ...")
        result = daemon.move_user(name, args.to, stop_server=stop)
    else:
        result = move_user(ctx.stack, name, args.to, stop_server=stop)
    for line in result["done"]:
        print(line)
    print(f"moved {name} to {result['to']} in {result['seconds']} s")
    return 0
