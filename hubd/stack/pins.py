"""The image versions a stack runs, recorded by image id, so that nothing moves by itself.

A tag such as `:latest` moves whenever anybody pulls it. hubd records the id of the hub base
image its hub image was built on and the id of every user image, in a small state file next
to the desired-state file. `hubd up` and every restart use these ids; only `hubd upgrade`
changes them (after its health gate passed).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hubd.files import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePins:
    """Image ids by name. Empty fields: nothing pinned yet (a first `up` pins what it uses)."""

    hub_base_ref: str = ""  # the config's name of the hub base image, e.g. "...:latest"
    hub_base_id: str = ""  # the image id it had when the hub image was built
    hub_image: str = ""  # the tag of hubd's hub image built on it
    user_images: dict[str, str] = field(default_factory=dict)  # name -> image id

    def hub_base_for(self, ref: str) -> str:
        """The pinned id of `ref`, or "" if the config names another base image now."""
        return self.hub_base_id if ref == self.hub_base_ref else ""

    def with_user_images(self, images: dict[str, str]) -> ImagePins:
        return replace(self, user_images=dict(images))

    def to_json(self) -> dict[str, Any]:
        return {
            "hub_base_ref": self.hub_base_ref,
            "hub_base_id": self.hub_base_id,
            "hub_image": self.hub_image,
            "user_images": dict(sorted(self.user_images.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImagePins:
        users = data.get("user_images") or {}
        return cls(
            hub_base_ref=str(data.get("hub_base_ref", "")),
            hub_base_id=str(data.get("hub_base_id", "")),
            hub_image=str(data.get("hub_image", "")),
            user_images={str(k): str(v) for k, v in users.items()},
        )


class PinStore:
    """The pins of one stack in a JSON file, replaced atomically (a crash leaves old or new)."""

    def __init__(self, path: Path, stack: str) -> None:
        self.path = path
        self.stack = stack

    def load(self) -> ImagePins:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return ImagePins()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable image pins %s: %s", self.path, exc)
            return ImagePins()
        stacks = data.get("stacks") if isinstance(data, dict) else None
        mine = stacks.get(self.stack) if isinstance(stacks, dict) else None
        return ImagePins.from_json(mine) if isinstance(mine, dict) else ImagePins()

    def save(self, pins: ImagePins) -> None:
        try:
            data = json.loads(self.path.read_text())
            stacks = data["stacks"] if isinstance(data.get("stacks"), dict) else {}
        except (OSError, ValueError, AttributeError):
            stacks = {}
        stacks[self.stack] = pins.to_json()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"stacks": stacks}, indent=2) + "\n")


__all__ = ["ImagePins", "PinStore"]
