"""`hubd node add | list | remove | label`: the machines people's servers run on (a Swarm
whose manager is this machine), through the daemon when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hubd.cli.commands import Subcommands, add_action, add_command
from hubd.cli.context import Context
from hubd.status import NodeView

ONE_MACHINE = (
    "one machine: this one runs the hub and everyone's servers. `hubd node add` makes it "
    "a Swarm manager and prints how another machine joins"
)


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "node",
        description="The machines people's servers run on: a Docker Swarm whose manager is "
        "this machine. Each person's files live on one machine (their home).",
        example="hubd node add\nhubd node list\nhubd node label node2 gpu",
    )
    sub = parser.add_subparsers(dest="node_command", metavar="ACTION")
    sub.required = True
    add = add_action(
        sub,
        "add",
        "make this machine a Swarm manager (once) and print the join command",
        example="hubd node add --advertise-addr 192.168.1.10",
    )
    add.add_argument(
        "--advertise-addr",
        metavar="ADDR",
        help="this machine's address the other machines reach it on (when it has several)",
    )
    add.set_defaults(handler=_add)
    listing = add_action(
        sub, "list", "the machines, their state, resources and people", example="hubd node list"
    )
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=_list)
    remove = add_action(
        sub,
        "remove",
        "drain a machine and take it out (not while people's files are there)",
        example="hubd node remove node2",
    )
    remove.add_argument("node", help="hostname, id or unique id prefix")
    remove.set_defaults(handler=_remove)
    label = add_action(
        sub,
        "label",
        "give a machine a label for `image_nodes` (e.g. gpu), or take it away",
        example="hubd node label node2 gpu\nhubd node label node2 gpu --remove",
    )
    label.add_argument("node", help="hostname, id or unique id prefix")
    label.add_argument("label", help="lowercase letters, digits, '-' and '_'")
    label.add_argument("--remove", action="store_true", help="take the label away")
    label.set_defaults(handler=_label)


class _Local:
    """The same operations as the daemon's, straight on the engine (no daemon running)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.nodes = ctx.stack.nodes

    def list_nodes(self) -> list[dict[str, Any]]:
        return [view.to_json() for view in self.nodes.views()]

    def add_node(self, advertise_addr: str | None) -> dict[str, Any]:
        result = self.nodes.add(advertise_addr)
        if result.created and self.ctx.stack.hub.state().running:
            # What the daemon would do at once: the hub and the gate follow the Swarm role.
            print("switching the hub to the Swarm", file=sys.stderr)
            self.ctx.stack.up()
        return result.to_json()

    def remove_node(self, node: str) -> dict[str, Any]:
        return self.nodes.remove(node)

    def label_node(self, node: str, label: str, remove: bool) -> dict[str, Any]:
        return self.nodes.label(node, label, remove)


def _nodes(args: argparse.Namespace) -> Any:
    ctx = Context.from_args(args)
    return ctx.daemon() or _Local(ctx)


def _add(args: argparse.Namespace) -> int:
    result = _nodes(args).add_node(args.advertise_addr)
    if result.get("created"):
        print(
            f"this machine is now the Swarm manager (at {result['address']}); "
            "people's servers run as Swarm services from now on",
            file=sys.stderr,
        )
    else:
        print(f"this machine is the Swarm manager (at {result['address']})", file=sys.stderr)
    print("on the other machine, run:", file=sys.stderr)
    # The command alone on standard output, so that it can be copied or captured.
    print(result["join_command"])
    print("then `hubd node list` shows it", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    views = [NodeView.from_json(item) for item in _nodes(args).list_nodes()]
    if args.json:
        print(json.dumps([view.to_json() for view in views], indent=2))
        return 0
    if not views:
        print(ONE_MACHINE)
        return 0
    for line in node_table(views):
        print(line)
    return 0


def node_table(views: list[NodeView]) -> list[str]:
    rows = [("NODE", "ID", "ROLE", "STATE", "ADDRESS", "CPUS", "MEMORY", "HAS", "HOME OF", "RUNS")]
    for view in views:
        rows.append(
            (
                view.hostname + (" *" if view.this_machine else ""),
                view.id[:12],
                view.role,
                state_words(view),
                view.address or "-",
                f"{view.cpus:g}",
                memory_words(view.memory_bytes),
                ", ".join(
                    [f"{r.count} {r.kind}" for r in view.resources]
                    + [f"label {label}" for label in view.labels]
                )
                or "-",
                ", ".join(view.homes) or "-",
                ", ".join(view.running) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return [*lines, "(* this machine, where the hub runs)"]


def node_line(view: NodeView) -> str:
    """One machine in a line, for `hubd status`: 'node2 (worker, down): home of bob'."""
    where = "this machine, " if view.this_machine else ""
    people = []
    if view.homes:
        people.append("home of " + ", ".join(view.homes))
    if view.running:
        people.append("running " + ", ".join(view.running))
    return f"{view.hostname} ({where}{view.role}, {state_words(view)})" + (
        ": " + "; ".join(people) if people else ""
    )


def state_words(view: NodeView) -> str:
    """'ready', 'down', 'ready, drained', ..."""
    if view.availability and view.availability != "active":
        return f"{view.state}, {'drained' if view.availability == 'drain' else 'paused'}"
    return view.state


def memory_words(size: int) -> str:
    if size <= 0:
        return "-"
    gib = size / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{size // 2**20} MiB"


def _remove(args: argparse.Namespace) -> int:
    result = _nodes(args).remove_node(args.node)
    print(f"removed {result['node']} from the hub's machines")
    if result.get("was_up"):
        # The engine of a node removed while up still believes it is in the Swarm.
        print(
            f"on {result['node']}, run `docker swarm leave` so that its engine forgets this "
            "Swarm (`hubd node add` prints how it joins again)"
        )
    return 0


def _label(args: argparse.Namespace) -> int:
    result = _nodes(args).label_node(args.node, args.label, args.remove)
    verb = "no longer has" if args.remove else "has"
    unchanged = "" if result.get("changed") else " (already so)"
    print(f"{result['node']} {verb} label {args.label}{unchanged}")
    return 0
