"""`hubd config path | show | set | unset`."""

from __future__ import annotations

import argparse
import sys

from hubd.cli.commands import Subcommands, add_action, add_command
from hubd.cli.context import Context


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "config",
        description="Where hubd's config file lives, the config in effect (built-in defaults, "
        "then the file, then HUBD_<KEY> environment variables), and changing one key.",
        example="hubd config show\nhubd config set port 8080\nhubd config unset port",
    )
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True
    add_action(
        sub, "path", "print the config file's path", example='$EDITOR "$(hubd config path)"'
    ).set_defaults(handler=_path, logs=False)
    show = add_action(
        sub,
        "show",
        "print the effective config (defaults, file, environment)",
        example="hubd config show --json",
    )
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(handler=_show)
    set_ = add_action(
        sub,
        "set",
        "check a value, write it to the config file, apply it to the running hubd",
        description="Check VALUE against the key's type and rules, write it to the config "
        "file (atomically, keeping the file's comments), and have a running hubd apply it as "
        "after SIGHUP. Lists are comma-separated; true/false, yes/no, 1/0 for switches.",
        example="hubd config set port 8080\nhubd config set allowed_images "
        "'quay.io/jupyter/scipy-notebook:latest,quay.io/jupyter/r-notebook:latest'",
    )
    set_.add_argument("key", metavar="KEY", help="a config key (`hubd config show` lists them)")
    set_.add_argument("value", metavar="VALUE")
    set_.set_defaults(handler=_set)
    unset = add_action(
        sub,
        "unset",
        "remove a key from the config file (back to its default), apply it",
        example="hubd config unset mem_limit",
    )
    unset.add_argument("key", metavar="KEY")
    unset.set_defaults(handler=_unset)


def _path(args: argparse.Namespace) -> int:
    print(Context.from_args(args).config_file)
    return 0


def _show(args: argparse.Namespace) -> int:
    import json

    from hubd.config import render_toml

    config = Context.from_args(args).config
    print(json.dumps(config.describe(), indent=2) if args.json else render_toml(config), end="")
    if args.json:
        print()
    return 0


def _set(args: argparse.Namespace) -> int:
    import json

    from hubd.cli.config_file import set_key
    from hubd.config import parse_setting

    ctx = Context.from_args(args)
    value = parse_setting(args.key, args.value)
    changed = set_key(ctx.config_file, args.key, value)
    print(
        f"{args.key} = {json.dumps(value)} in {ctx.config_file}"
        + ("" if changed else " (already so)")
    )
    _apply(ctx)
    return 0


def _unset(args: argparse.Namespace) -> int:
    from hubd.cli.config_file import unset_key
    from hubd.config import config_keys, parse_setting

    ctx = Context.from_args(args)
    if args.key not in config_keys():
        parse_setting(args.key, "")  # raises: not a key, with a suggestion
    if unset_key(ctx.config_file, args.key):
        print(f"{args.key} removed from {ctx.config_file} (its default applies)")
    else:
        print(f"{args.key} is not set in {ctx.config_file}: nothing changed")
        return 0
    _apply(ctx)
    return 0


def _apply(ctx: Context) -> None:
    """Have the running hubd read its config again, as SIGHUP does; without one, the next
    start reads it."""
    daemon = ctx.daemon()
    if daemon is None:
        print("hubd is not running: it applies the change when it starts", file=sys.stderr)
        return
    from hubd.errors import UsageError

    try:
        result = daemon.reload_config(str(ctx.config_file))
    except UsageError as exc:
        if "no such endpoint" not in str(exc):
            raise
        # A daemon from before `reload_config` (not restarted since an update).
        raise UsageError(
            "the running hubd is older than this command: send it SIGHUP to apply the change "
            "(`systemctl reload hubd`), or restart it"
        ) from None
    for line in result.get("notes", []):
        print(f"  {line}", file=sys.stderr)
    print("the running hubd applied it", file=sys.stderr)
