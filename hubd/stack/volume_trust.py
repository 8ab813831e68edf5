"""Volumes are checked where they are used: before hubd mounts, backs up or restores one.

A person's volume is made by the hub through the docker gate, which lets only plain `local`
volumes with this stack's labels through. A volume could still have been made otherwise (by
hand, by an older gate, by someone with the engine's socket): a `local` volume with driver
options `type=none,o=bind,device=PATH` is a bind mount of any host folder, and hubd's helpers
run as root. So hubd looks at a volume's labels, driver and options itself before it reads
or deletes through it, and refuses with one line naming the volume.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from docker.errors import NotFound

from hubd.errors import UntrustedVolume
from hubd.stack.naming import LABEL_ROLE, LABEL_STACK, ROLE_HUB_DATA, ROLE_USER_DATA, StackNames

DATA_ROLES = (ROLE_USER_DATA, ROLE_HUB_DATA)


def volume_problem(
    attrs: Mapping[str, Any], names: StackNames, roles: Collection[str] = DATA_ROLES
) -> str | None:
    """What is wrong with a volume (its `docker volume inspect`) for hubd to use, or None."""
    labels = attrs.get("Labels") or {}
    if labels.get(LABEL_STACK) != names.stack:
        return f"does not carry this stack's label {LABEL_STACK}={names.stack}"
    if labels.get(LABEL_ROLE) not in roles:
        return f"is not one of hubd's data volumes ({LABEL_ROLE}={labels.get(LABEL_ROLE)!r})"
    driver = attrs.get("Driver") or "local"
    if driver != "local":
        return f"uses the volume driver {driver!r}"
    options = attrs.get("Options") or {}
    if options:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        return f"has driver options ({shown}), which can make it a folder of the host"
    return None


def check_volume(
    client: Any, names: StackNames, name: str, roles: Collection[str] = DATA_ROLES
) -> None:
    """Refuse (UntrustedVolume) to use volume `name` unless it is a plain hubd volume. A
    volume that does not exist passes: the engine makes a plain one when it is mounted."""
    try:
        attrs = client.api.inspect_volume(name)
    except NotFound:
        return
    problem = volume_problem(attrs, names, roles)
    if problem is not None:
        raise UntrustedVolume(
            f"volume {name} {problem}: hubd will not mount, back up or restore it; look at it "
            f"with `docker volume inspect {name}` and remove it if hubd did not make it"
        )
