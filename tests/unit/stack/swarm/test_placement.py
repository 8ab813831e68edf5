"""The rules of `hubd node`: nodes as people see them, names, removal, homes, labels."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from hubd.errors import NodeError
from hubd.stack.swarm.placement import (
    advertise_problem,
    check_label,
    home_problem,
    join_command,
    node_view,
    removal_problem,
    resolve,
    roomiest,
)
from hubd.status import NodeResource, NodeView, Status

MANAGER_ID = "m1" + "a" * 23
WORKER_ID = "w2" + "b" * 23


def inspect(
    node_id: str,
    hostname: str,
    role: str = "worker",
    state: str = "ready",
    labels: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A node as `docker node inspect` (Engine 20.10) shows it."""
    return {
        "ID": node_id,
        "Spec": {"Labels": labels or {}, "Role": role, "Availability": "active"},
        "Description": {
            "Hostname": hostname,
            "Resources": {"NanoCPUs": 4_000_000_000, "MemoryBytes": 8 * 2**30},
        },
        "Status": {"State": state, "Addr": "192.0.2.2"},
        **extra,
    }


def test_a_node_as_people_see_it() -> None:
    attrs = inspect(
        WORKER_ID,
        "gpubox",
        labels={
            "io.hubd.node.gpu": "true",
            "io.hubd.node.off": "false",
            "io.hubd.home.hubd.bob": "true",
            "other.label": "true",
        },
    )
    attrs["Description"]["Resources"]["GenericResources"] = [
        {"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 2}},
        {"NamedResourceSpec": {"Kind": "FPGA", "Value": "fpga-0"}},
        {"NamedResourceSpec": {"Kind": "FPGA", "Value": "fpga-1"}},
    ]
    view = node_view(
        attrs,
        homes={"bob": WORKER_ID, "ann": MANAGER_ID},
        running={"bob": WORKER_ID, "ann": MANAGER_ID},
        local_id=MANAGER_ID,
    )
    assert view == NodeView(
        id=WORKER_ID,
        hostname="gpubox",
        role="worker",
        state="ready",
        availability="active",
        address="192.0.2.2",
        cpus=4.0,
        memory_bytes=8 * 2**30,
        resources=(NodeResource("FPGA", 2), NodeResource("NVIDIA-GPU", 2)),
        labels=("gpu",),
        homes=("bob",),
        running=("bob",),
        this_machine=False,
    )
    # Through the status JSON and back, as the CLI and the tray read it.
    status = Status(nodes=(view,))
    assert Status.from_json(status.to_json()).nodes == (view,)


def test_a_manager_reporting_0000_is_shown_at_its_advertised_address() -> None:
    attrs = inspect(
        MANAGER_ID,
        "hubhost",
        role="manager",
        ManagerStatus={"Leader": True, "Addr": "192.0.2.1:2377"},
    )
    attrs["Status"]["Addr"] = "0.0.0.0"
    view = node_view(attrs, {}, {}, MANAGER_ID)
    assert view.address == "192.0.2.1" and view.this_machine and view.role == "manager"


def test_an_odd_node_record_does_not_break_the_view() -> None:
    view = node_view({"ID": WORKER_ID}, {}, {}, "")
    assert view.hostname == WORKER_ID[:12] and view.state == "unknown" and view.cpus == 0


VIEWS = (
    NodeView(id=MANAGER_ID, hostname="hubhost", role="manager", this_machine=True),
    NodeView(id=WORKER_ID, hostname="gpubox", role="worker", homes=("bob",)),
    NodeView(id="w3" + "c" * 23, hostname="spare", role="worker"),
)


@pytest.mark.parametrize(
    ("wanted", "hostname"),
    [("gpubox", "gpubox"), (WORKER_ID, "gpubox"), ("w2b", "gpubox"), ("w3", "spare")],
)
def test_a_node_is_named_by_hostname_id_or_unique_prefix(wanted: str, hostname: str) -> None:
    assert resolve(VIEWS, wanted).hostname == hostname


def test_an_unknown_or_ambiguous_name_lists_the_nodes_in_one_line() -> None:
    with pytest.raises(NodeError) as unknown:
        resolve(VIEWS, "nope")
    assert str(unknown.value) == (
        "no node 'nope'; the nodes are: hubhost (m1aaaaaaaaaa), gpubox (w2bbbbbbbbbb), "
        "spare (w3cccccccccc)"
    )
    with pytest.raises(NodeError, match=r"'w' names 2 nodes \(gpubox .*spare .*\): use the"):
        resolve(VIEWS, "w")
    twins = (*VIEWS, NodeView(id="x" * 25, hostname="spare"))
    with pytest.raises(NodeError, match="'spare' names 2 nodes"):
        resolve(twins, "spare")
    assert resolve(twins, "x").id == "x" * 25
    with pytest.raises(NodeError, match="one machine: there are no nodes yet"):
        resolve((), "gpubox")
    with pytest.raises(NodeError, match="no node ''"):
        resolve(VIEWS, "")


def test_the_manager_and_a_node_people_live_on_are_not_removed() -> None:
    manager, gpubox, spare = VIEWS
    assert "is a Swarm manager" in (removal_problem(manager) or "")
    assert removal_problem(gpubox) == (
        "bob has their files on gpubox: move them first (`hubd user move NAME --to NODE`)"
    )
    two = NodeView(hostname="gpubox", homes=("ann", "bob"))
    assert (removal_problem(two) or "").startswith("ann, bob have their files on gpubox")
    assert removal_problem(spare) is None


def test_a_new_home_must_be_ready_and_active() -> None:
    assert home_problem(NodeView(hostname="a", state="ready", availability="active")) is None
    assert "a is down" in (home_problem(NodeView(hostname="a", state="down")) or "")
    drained = NodeView(hostname="a", state="ready", availability="drain")
    assert "a is set to drain" in (home_problem(drained) or "")


class _Fit(TypedDict):
    """The fields that make a node usable, to spread into NodeView."""

    state: str
    availability: str


def test_a_new_account_without_a_node_goes_where_there_is_most_memory_per_person() -> None:
    gib = 1 << 30
    ready = _Fit(state="ready", availability="active")
    hub = NodeView(id="m", memory_bytes=16 * gib, this_machine=True, **ready)
    box = NodeView(id="w", memory_bytes=32 * gib, **ready)
    spare = NodeView(id="s", state="down", availability="active", memory_bytes=64 * gib)
    assert roomiest((hub, box, spare), {"m": 1, "w": 1}) == box
    assert roomiest((hub, box, spare), {"m": 1, "w": 3}) == hub
    # A tie goes to hubd's own machine; nowhere usable: no choice.
    assert roomiest((hub, NodeView(id="w", memory_bytes=16 * gib, **ready)), {}) == hub
    assert roomiest((spare,), {}) is None


@pytest.mark.parametrize("label", ["gpu", "big-ram", "x_1", "a" * 64])
def test_good_labels(label: str) -> None:
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["", "GPU", "a.b", "-gpu", "a" * 65, "gpu=true", "é"])
def test_bad_labels_are_refused_in_one_line(label: str) -> None:
    with pytest.raises(NodeError, match="lowercase letters, digits"):
        check_label(label)


def test_join_command() -> None:
    assert join_command("SWMTKN-1-x", "192.0.2.1") == (
        "docker swarm join --token SWMTKN-1-x 192.0.2.1:2377"
    )
    assert join_command("T", "2001:db8::1").endswith(" [2001:db8::1]:2377")


def test_the_engines_several_addresses_refusal_asks_for_advertise_addr() -> None:
    # Engine 20.10's words (daemon/cluster/listen_addr.go).
    engine = (
        "could not choose an IP address to advertise since this system has multiple "
        "addresses on different interfaces (10.0.0.2 on eth0 and 192.168.1.5 on wlan0)"
    )
    assert advertise_problem(engine) == (
        "this machine has several addresses (10.0.0.2 on eth0, 192.168.1.5 on wlan0): say "
        "which one the other machines reach it on, with --advertise-addr ADDR"
    )
    assert advertise_problem("this node is already part of a swarm") is None
