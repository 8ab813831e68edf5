"""`hubd trust install | uninstall | status`: hubd's root in this machine's trust stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hubd.cli.commands import Subcommands, add_action, add_command
from hubd.cli.context import Context
from hubd.errors import TlsError
from hubd.paths import resolve_paths, sudo_user_state_dir
from hubd.tls import ca, store, system_trust


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "trust",
        description="Put hubd's root certificate into this machine's trust stores, as "
        "`mkcert -install` does (docs/https.md).",
        example="hubd trust install\nhubd trust status --browsers-only",
    )
    sub = parser.add_subparsers(dest="trust_command", metavar="ACTION")
    sub.required = True
    for name, text in (
        ("install", "put hubd's root into the system store and the browsers' databases"),
        ("uninstall", "take it out again"),
        ("status", "say where it is trusted, with its SHA-256 fingerprint"),
    ):
        action = add_action(sub, name, text, example=f"hubd trust {name} --browsers-only")
        action.add_argument(
            "--browsers-only",
            action="store_true",
            help="only the browsers' databases of this account (no root needed)",
        )
        action.add_argument("--json", action="store_true", help="as JSON")
        action.set_defaults(handler=_trust, action=name)


def root_file(ctx: Context, action: str) -> Path:
    """This hubd's root; else the system service's; else, under sudo, that of the hub in the
    person's own account.

    Never made here: a root made by `hubd trust` (as root, before any `hubd up`; or under
    sudo for a hub that runs in a person's own account) would be one no hub serves, and
    `trust status` would have written a CA key just by being asked."""
    folders = [ctx.paths.state_dir, resolve_paths("system").state_dir]
    person = sudo_user_state_dir()
    if person is not None:
        folders.append(person)
    looked = list(dict.fromkeys(store.files_in(folder) for folder in folders))
    for files in looked:
        try:
            if files.root_cert.is_file():
                return files.root_cert
        except PermissionError:
            # The system service's folder is root's alone (StateDirectoryMode=0700).
            raise TlsError(
                f"{files.root_cert} is root's to read: run `sudo hubd trust {action}` (for "
                "a browser alone: the hub's own page shows how to trust it)"
            ) from None
    where = " nor ".join(str(files.folder) for files in looked)
    raise TlsError(
        f"no root certificate in {where}: hubd makes it at its first start; "
        "run `hubd up` (or start the service), then `hubd trust` again"
    )


def _trust(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    path = root_file(ctx, args.action)
    root = store.load_root(store.Files(path.parent))
    if root is None:
        raise TlsError(f"no root certificate at {path}")
    stores = system_trust.stores(Path.home(), browsers_only=args.browsers_only)
    missing = system_trust.missing_tools()
    result = []
    for one in stores:
        if args.action == "install" and not one.installed(root, path):
            one.install(root, path)
        elif args.action == "uninstall" and one.installed(root, path):
            one.uninstall(root, path)
        result.append(
            {"store": one.name, "location": one.location, "trusted": one.installed(root, path)}
        )
    if args.json:
        print(
            json.dumps(
                {"root": str(path), "fingerprint": ca.fingerprint(root), "stores": result}, indent=2
            )
        )
        return 0
    print(f"root:   {path}")
    print(f"SHA-256 {ca.fingerprint(root)}")
    for item in result:
        word = "trusted" if item["trusted"] else "not trusted"
        print(f"  {word:<12} {item['store']} ({item['location']})")
    if missing:
        print(missing)
    if not stores:
        print("no trust store found on this machine")
    return 0
