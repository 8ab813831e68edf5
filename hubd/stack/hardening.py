"""What every person's container gets on a shared home machine, whatever the image.

- A PID limit: a fork bomb in one terminal fills that container's table, not the host's.
- `no-new-privileges`: setuid programs in the image (sudo, su, ping) cannot raise privileges.
- No capabilities: JupyterLab runs as a normal user (uid 1000 in the Jupyter images) and needs
  none; without them a process that is root inside cannot sniff or spoof on the stack's network
  (NET_RAW), make device nodes (MKNOD) or change file ownership.
- A memory limit sized from the engine's memory unless the owner sets `mem_limit`, so one
  person's runaway notebook meets the kernel's OOM killer inside their container instead of
  pushing the whole machine into swap.

The docker gate (hub_image/docker_gate.py) refuses containers that ask for more than this.
"""

from __future__ import annotations

from typing import Any

# Kernels, terminals and their threads all count: a busy Lab with a few kernels using BLAS
# threads stays well under this, a fork bomb reaches it in milliseconds.
USER_PIDS_LIMIT = 1024
USER_SECURITY_OPT = ["no-new-privileges:true"]
USER_CAP_DROP = ["ALL"]

MiB = 1024**2
GiB = 1024**3
DEFAULT_MEM_FRACTION = 4
DEFAULT_MEM_MIN = 1 * GiB
DEFAULT_MEM_MAX = 8 * GiB


def default_mem_limit(engine_memory_bytes: int) -> str:
    """A quarter of the engine's memory, at least 1 GiB and at most 8 GiB, in whole MiB.

    A quarter lets a few people work at once on an 8-16 GB home machine without one of them
    starving the others (or the desktop); the cap keeps a large server from handing one person
    most of it. On Docker Desktop the engine's memory is its VM's, which is what limits count
    against.
    """
    share = engine_memory_bytes // DEFAULT_MEM_FRACTION
    bounded = max(DEFAULT_MEM_MIN, min(DEFAULT_MEM_MAX, share))
    return f"{bounded // MiB}M"


def user_host_config() -> dict[str, Any]:
    """docker-py `create_host_config` arguments for DockerSpawner's `extra_host_config`."""
    return {
        "pids_limit": USER_PIDS_LIMIT,
        "security_opt": list(USER_SECURITY_OPT),
        "cap_drop": list(USER_CAP_DROP),
    }
