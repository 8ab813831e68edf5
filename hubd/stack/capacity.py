"""How many people's servers a machine takes at once: JupyterHub's spawn limits, from the
engine's CPUs and memory unless the owner sets them.

- `concurrent_spawn_limit`: starting a JupyterLab costs a CPU second or two; more starts at
  once than the CPUs serve only make every one of them slower. Beyond it, JupyterHub asks the
  person to wait (hub_image/templates/error.html says so and retries by itself).
- `active_server_limit`: as many servers as fit into the engine's memory less a reserve for
  the engine, the hub and the system, each counted at what it is promised
  (`promised_memory_bytes`). The hub also refuses a server that would push the running
  servers' promises past that (hub_image/hubd_spawner.py), so a machine never promises more
  memory than it has and then OOM-kills someone at work.

What a server is promised follows z2jh's guarantee/limit split: a `mem_limit` the owner set
is promised in full (they chose it, so each person may really use it). hubd's own default
limit (a quarter of the machine, hardening.py) is only a cap against one runaway person:
counting it in full would let a 24 GB machine run three people. Those servers are promised
DEFAULT_PROMISE_BYTES, what z2jh guarantees a person by default.
"""

from __future__ import annotations

import re

MiB = 1024**2
SPAWNS_PER_CPU = 4
MIN_CONCURRENT_SPAWNS = 4
MAX_CONCURRENT_SPAWNS = 50
RESERVE_MIN_BYTES = 512 * MiB
RESERVE_FRACTION = 10
DEFAULT_PROMISE_BYTES = 1024 * MiB
_UNITS = {"": 1, "K": 1024, "M": MiB, "G": 1024**3, "T": 1024**4}
_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT]?)$", re.IGNORECASE)


def size_bytes(text: str) -> int:
    """'2G', '512M', '1.5G' (the config's memory sizes) in bytes."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a memory size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_reserve_bytes(engine_memory_bytes: int) -> int:
    """What stays free of people's limits: a tenth of the memory, at least 512 MiB."""
    return max(RESERVE_MIN_BYTES, engine_memory_bytes // RESERVE_FRACTION)


def memory_for_servers(engine_memory_bytes: int) -> int:
    return max(0, engine_memory_bytes - memory_reserve_bytes(engine_memory_bytes))


def concurrent_spawn_limit(configured: int, engine_cpus: int) -> int:
    if configured > 0:
        return configured
    return max(MIN_CONCURRENT_SPAWNS, min(MAX_CONCURRENT_SPAWNS, SPAWNS_PER_CPU * engine_cpus))


def promised_memory_bytes(owners_mem_limit: str | None, mem_limit: str | None) -> int:
    """What one server is counted at: the owner's `mem_limit` in full; under hubd's default
    cap (`mem_limit` without `owners_mem_limit`) the default promise, never more than the
    cap; 0 without any limit (nothing to add up)."""
    if owners_mem_limit:
        return size_bytes(owners_mem_limit)
    if mem_limit:
        return min(size_bytes(mem_limit), DEFAULT_PROMISE_BYTES)
    return 0


def active_server_limit(configured: int, engine_memory_bytes: int, promised_bytes: int) -> int:
    """0 means no limit (JupyterHub's own convention): with nothing promised per server there
    is nothing to add up."""
    if configured > 0:
        return configured
    if promised_bytes <= 0 or engine_memory_bytes <= 0:
        return 0
    return max(1, memory_for_servers(engine_memory_bytes) // promised_bytes)
