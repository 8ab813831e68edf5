"""A copy of the hub's SQLite database, taken while the hub runs and put back if need be.

The database lives on the hub's data volume. A throwaway container of the hub image (it has
Python) mounts the volume and uses SQLite's online backup API, which copies a live database
consistently while the hub keeps writing. Restoring uses the same API the other way round,
with the hub stopped; SQLite cannot downgrade a schema (`jupyterhub downgrade-db` does not
work on SQLite), so rolling back an upgrade means putting the copy back.
"""

from __future__ import annotations

import docker
from docker.errors import APIError, ContainerError, ImageNotFound

from hubd.errors import StackError
from hubd.stack.naming import StackNames
from hubd.stack.settings import HUB_DATA_DIR

DATABASE = f"{HUB_DATA_DIR}/jupyterhub.sqlite"
UPGRADE_COPY = f"{HUB_DATA_DIR}/jupyterhub.sqlite.before-upgrade"

# Run as `python3 -c SCRIPT SOURCE TARGET`. The source opened read-only cannot be created by
# mistake; `backup` replaces the target's content page by page, atomically for readers.
_COPY_SCRIPT = """
import os, sqlite3, sys
source, target = sys.argv[1], sys.argv[2]
if not os.path.exists(source):
    sys.exit(f"{source} does not exist")
src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
dst = sqlite3.connect(target)
with dst:
    src.backup(dst)
dst.execute("PRAGMA integrity_check").fetchone()
dst.close()
src.close()
os.chmod(target, 0o600)
"""


def copy_database(
    client: docker.DockerClient, names: StackNames, image: str, source: str, target: str
) -> None:
    """Copy the SQLite database `source` to `target` (paths on the hub data volume)."""
    try:
        client.containers.run(
            image,
            ["-c", _COPY_SCRIPT, source, target],
            entrypoint=["python3"],
            volumes={names.hub_data_volume: {"bind": HUB_DATA_DIR, "mode": "rw"}},
            network_mode="none",
            labels=names.labels("hub-db-copy"),
            remove=True,
            stderr=True,
        )
    except ContainerError as exc:
        detail = bytes(exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise StackError(
            f"copying the hub database {source} to {target} failed: "
            + (detail[-1] if detail else f"exit {exc.exit_status}")
        ) from None
    except (APIError, ImageNotFound) as exc:
        raise StackError(f"copying the hub database failed: {exc}") from None


def back_up_for_upgrade(client: docker.DockerClient, names: StackNames, image: str) -> str:
    copy_database(client, names, image, DATABASE, UPGRADE_COPY)
    return UPGRADE_COPY


def restore_upgrade_copy(client: docker.DockerClient, names: StackNames, image: str) -> None:
    copy_database(client, names, image, UPGRADE_COPY, DATABASE)


__all__ = ["DATABASE", "UPGRADE_COPY", "back_up_for_upgrade", "copy_database"]
