"""`hubd user add | remove | passwd | unlock | list | move`: through the daemon when it runs."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from hubd.cli.context import Context
from hubd.control import ControlClient
from hubd.errors import UsageError, UserAccountError
from hubd.stack.accounts import Accounts, check_password, check_username
from hubd.stack.swarm.move import move_user, plan_move


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("user", help="add, remove, reset and list people's accounts")
    sub = parser.add_subparsers(dest="user_command", metavar="ACTION")
    sub.required = True
    add = sub.add_parser("add", help="create an account (asks for the password twice)")
    add.add_argument("name")
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
    remove = sub.add_parser("remove", help="delete an account (their files stay unless asked)")
    remove.add_argument("name")
    remove.add_argument(
        "--delete-data", action="store_true", help="also delete the user's files (asks first)"
    )
    remove.add_argument("--yes", action="store_true", help="do not ask before deleting files")
    remove.set_defaults(handler=_remove)
    passwd = sub.add_parser("passwd", help="set a new password for an account")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one line)",
    )
    passwd.set_defaults(handler=_passwd)
    unlock = sub.add_parser(
        "unlock", help="let an account log in again now, after too many wrong passwords"
    )
    unlock.add_argument("name")
    unlock.set_defaults(handler=_unlock)
    listing = sub.add_parser("list", help="who has an account, and whose server runs")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=_list)
    register_move(sub)


def _accounts(args: argparse.Namespace) -> ControlClient | Accounts:
    """The same operations, on the daemon when it runs, else directly on the engine."""
    ctx = Context.from_args(args)
    return ctx.daemon() or Accounts(ctx.stack)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        return check_password(password)
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    try:
        first = getpass.getpass("Password: ")
        check_password(first)
        again = getpass.getpass("Password again: ")
    except EOFError:  # the terminal closed (Ctrl-D) before a password was typed
        raise UsageError("no password typed; nothing changed") from None
    if again != first:
        raise UserAccountError("the two passwords differ; nothing changed")
    return first


def _add(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    password = _read_password(args.password_stdin)
    result = _accounts(args).add_user(name, password, args.admin, node=args.node)
    where = f" (their files and server on {result['node']})" if result.get("node") else ""
    print(f"added {'admin ' if args.admin else ''}{name}{where}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    name = check_username(args.name)
    password = _read_password(args.password_stdin)
    _accounts(args).set_password(name, password)
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


def register_move(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    move = sub.add_parser(
        "move", help="move a person's files to another node of the Swarm (their home)"
    )
    move.add_argument("name")
    move.add_argument("--to", required=True, metavar="NODE", help="node hostname or id")
    move.add_argument(
        "--yes", action="store_true", help="stop their server if it runs, without asking"
    )
    move.set_defaults(handler=_move)


def _move(args: argparse.Namespace) -> int:
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
