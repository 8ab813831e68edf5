"""Spawn limits from the machine (capacity.py) and what people read when a start fails."""

from __future__ import annotations

import pytest

from hubd.stack.capacity import (
    MiB,
    active_server_limit,
    concurrent_spawn_limit,
    memory_for_servers,
    size_bytes,
)
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


def test_active_servers_fit_their_limits_into_memory() -> None:
    assert memory_for_servers(24 * GiB) == 24 * GiB - 24 * GiB // 10
    assert active_server_limit(0, 24 * GiB, "1G") == 21
    assert active_server_limit(0, 4 * GiB, "1G") == 3
    assert active_server_limit(0, 1 * GiB, "4G") == 1
    assert active_server_limit(0, 24 * GiB, None) == 0  # nothing to add up: no limit
    assert active_server_limit(7, 24 * GiB, "1G") == 7


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
