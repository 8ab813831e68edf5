"""Spawn limits from the machine (capacity.py) and what people read when a start fails."""

from __future__ import annotations

import pytest

from hubd.stack.capacity import (
    MiB,
    active_server_limit,
    concurrent_spawn_limit,
    memory_for_servers,
    promised_memory_bytes,
    size_bytes,
)
from hubd.stack.hardening import default_mem_limit
from tests.unit.stack.test_subnets import _load

messages = _load("spawn_messages")
GiB = 1024 * MiB


def test_sizes() -> None:
    assert size_bytes("512M") == 512 * MiB
    assert size_bytes("1.5g") == 3 * GiB // 2
    with pytest.raises(ValueError):
        size_bytes("lots")


def test_concurrent_spawns_from_cpus_unless_set() -> None:
    assert concurrent_spawn_limit(0, 2) == 8
    assert concurrent_spawn_limit(0, 1) == 4
    assert concurrent_spawn_limit(0, 64) == 50
    assert concurrent_spawn_limit(3, 64) == 3


def test_active_servers_fit_their_promises_into_memory() -> None:
    assert memory_for_servers(24 * GiB) == 24 * GiB - 24 * GiB // 10
    assert active_server_limit(0, 24 * GiB, GiB) == 21
    assert active_server_limit(0, 4 * GiB, GiB) == 3
    assert active_server_limit(0, 1 * GiB, 4 * GiB) == 1
    assert active_server_limit(0, 24 * GiB, 0) == 0  # nothing to add up: no limit
    assert active_server_limit(7, 24 * GiB, GiB) == 7


def test_an_owners_limit_is_promised_in_full_hubds_default_cap_is_not() -> None:
    assert promised_memory_bytes("6G", "6G") == 6 * GiB
    assert promised_memory_bytes(None, "6144M") == GiB  # hubd's default cap on 24 GB
    assert promised_memory_bytes(None, "512M") == 512 * MiB  # never more than the cap
    assert promised_memory_bytes(None, None) == 0


def test_a_24_gb_machine_with_defaults_runs_a_class_not_three_people() -> None:
    """The default cap is a quarter of the machine (6 GiB here); counted in full it let
    three people work at once and refused the fourth."""
    cap = default_mem_limit(24 * GiB)
    assert active_server_limit(0, 24 * GiB, promised_memory_bytes(None, cap)) >= 20


@pytest.mark.parametrize(
    "exc, words",
    [
        (
            Exception(
                "500 Server Error for http+docker://localhost/v1.41/containers/x/start: "
                'Internal Server Error ("could not select device driver "" with capabilities: '
                '[[gpu]]")'
            ),
            "cannot give servers a GPU",
        ),
        (messages.BlockFull("no free /29 left in 10.200.0.0/28"), "no room for another server"),
        (messages.NoMemory("memory"), "memory is taken"),
        (Exception("404 Client Error: pull access denied for lab"), "not available"),
        (Exception("could not find an available, non-overlapping IPv4 address pool"), "network"),
        (Exception("500 Server Error: something odd happened"), "could not start"),
    ],
)
def test_every_failure_reads_as_one_sentence(exc: Exception, words: str) -> None:
    said = messages.person_message(exc)
    assert words in said.text
    for engine_words in ("http", "docker", "500", "404", "/29", "[[gpu]]", "IPv4"):
        assert engine_words not in said.text
