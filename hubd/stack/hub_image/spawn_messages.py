"""What a person reads on the spawn page when their server cannot start (runs inside the hub).

The engine's own text (HTTP errors, Go error strings, image ids) means nothing to a student
and may show things about the machine; it goes to the hub's log for the owner, and the person
gets one sentence that says what happened and what to do. Pure: hubd_spawner.py applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

ASK_OWNER = "Please tell the person who runs this hub."


@dataclass(frozen=True)
class PersonMessage:
    text: str
    reason: str  # JupyterHub's short label for metrics and logs


class BlockFull(Exception):
    """Every /29 of the people's block is in use."""


class NoMemory(Exception):
    """Starting this server would promise more memory than the machine has."""


def person_message(exc: BaseException) -> PersonMessage:
    text = str(exc).lower()
    if isinstance(exc, BlockFull):
        return PersonMessage(
            "The hub has no room for another server right now (its network addresses are all "
            f"in use). {ASK_OWNER}",
            "network-block-full",
        )
    if isinstance(exc, NoMemory):
        return PersonMessage(
            "This machine's memory is taken by the servers already running, so yours cannot "
            "start now. Try again when someone has stopped theirs.",
            "memory",
        )
    if "could not select device driver" in text or "nvidia" in text:
        return PersonMessage(
            "This machine cannot give servers a GPU (Docker has no NVIDIA GPU support here), "
            f"so this image cannot start. Choose an image without a GPU. {ASK_OWNER}",
            "gpu",
        )
    if "no space left on device" in text:
        return PersonMessage(
            f"The machine's disk is full, so your server cannot start. {ASK_OWNER}", "disk"
        )
    if "pull access denied" in text or "no such image" in text or "not found: manifest" in text:
        return PersonMessage(
            f"The software for your server is not available on this machine. {ASK_OWNER}",
            "image",
        )
    if "address pool" in text or "overlap" in text:
        return PersonMessage(
            f"The hub could not set up a network for your server. {ASK_OWNER}", "network"
        )
    return PersonMessage(
        "Your server could not start. Try again in a minute; if it happens again, "
        f"{ASK_OWNER[0].lower()}{ASK_OWNER[1:]} (the reason is in the hub's log).",
        "error",
    )
