"""The people's block hubd picks (subnets.py) and the /29s the hub takes from it."""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from hubd.errors import StackError
from hubd.stack.images import hub_context_dir
from hubd.stack.subnets import AUTO_CANDIDATES, choose_block, host_networks, pick_block


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, hub_context_dir() / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    # The same file, seen by mypy as hubd's module; at run time it is loaded as the hub
    # container runs it: a standalone top-level module.
    from hubd.stack.hub_image import user_subnets
else:
    user_subnets = _load("user_subnets")
N = ipaddress.IPv4Network


def test_a_free_block_is_the_first_candidate() -> None:
    assert pick_block(AUTO_CANDIDATES, [], [], [N("172.17.0.0/16")]) == N("10.200.0.0/16")


def test_a_block_overlapping_a_route_or_network_is_skipped() -> None:
    blocked = [N("10.200.5.0/24"), N("10.0.0.0/9")]  # a VPN route; a big LAN
    assert pick_block(AUTO_CANDIDATES, [], [], blocked) == N("10.201.0.0/16")


def test_the_block_already_holding_the_stacks_networks_is_kept() -> None:
    own = [N("10.230.0.8/29"), N("10.230.0.16/29")]
    # Their docker bridges' routes are the people's networks, not the machine's.
    assert pick_block(AUTO_CANDIDATES, own, own, [*own]) == N("10.230.0.0/16")


def test_the_block_stays_even_when_something_appears_beside_it() -> None:
    own = [N("10.230.0.8/29")]
    assert pick_block(AUTO_CANDIDATES, own, own, [N("10.230.9.0/24")]) == N("10.230.0.0/16")


def test_no_free_candidate() -> None:
    assert pick_block(AUTO_CANDIDATES, [], [], [N("10.0.0.0/8")]) is None


def test_host_networks_reads_routes_and_addresses(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    routes.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"  # default: not a block
        "wg0\t0000C80A\t00000000\t0001\t0\t0\t0\t0000FFFF\n"  # 10.200.0.0/16
    )
    fib = tmp_path / "fib"
    fib.write_text("  |-- 10.77.0.5\n     /32 host LOCAL\n")
    assert host_networks(routes, fib) == [N("10.200.0.0/16"), N("10.77.0.5/32")]


class _Client:
    class api:
        @staticmethod
        def networks() -> list[dict[str, object]]:
            return [{"Labels": {}, "IPAM": {"Config": [{"Subnet": "10.99.0.0/16"}]}}]


def test_a_configured_block_that_clashes_says_what_to_set() -> None:
    with pytest.raises(StackError, match="set user_network_block"):
        choose_block(_Client(), "lab", "10.99.128.0/17")
    assert choose_block(_Client(), "lab", "10.98.0.0/16") == "10.98.0.0/16"


def test_a_configured_block_holding_the_stacks_own_networks_is_not_a_clash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`hubd up` again with people's networks in the block: their bridges' routes and
    gateway addresses are theirs, not the machine's (a second `up` was refused)."""
    from hubd.stack import subnets
    from hubd.stack.naming import LABEL_ROLE, LABEL_STACK, ROLE_USER_NETWORK

    class Client:
        class api:
            @staticmethod
            def networks() -> list[dict[str, object]]:
                labels = {LABEL_ROLE: ROLE_USER_NETWORK, LABEL_STACK: "lab"}
                return [{"Labels": labels, "IPAM": {"Config": [{"Subnet": "10.99.0.0/29"}]}}]

    monkeypatch.setattr(
        subnets, "host_networks", lambda: [N("10.99.0.0/29"), N("10.99.0.1/32"), N("10.5.0.1/32")]
    )
    assert choose_block(Client(), "lab", "10.99.0.0/28") == "10.99.0.0/28"
    with pytest.raises(StackError, match=r"overlaps 10\.5\.0\.1/32"):
        choose_block(Client(), "lab", "10.5.0.0/24")  # the machine's own address: a clash


def test_slots_cover_the_block_once_from_the_persons_own_start() -> None:
    block = "10.200.0.0/24"
    assert user_subnets.slot_count(block) == 32
    got = list(user_subnets.candidates(block, "ann", set()))
    assert len(set(got)) == 32
    assert all(N(s).subnet_of(N(block)) and N(s).prefixlen == 29 for s in got)
    assert got[0] == user_subnets.slot(block, user_subnets.first_slot(block, "ann"))
    assert got[0] not in list(user_subnets.candidates(block, "ann", {got[0]}))


def test_two_people_usually_start_apart() -> None:
    block = "10.200.0.0/16"
    firsts = {user_subnets.first_slot(block, f"p{i}") for i in range(40)}
    assert len(firsts) >= 39
