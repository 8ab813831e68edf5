"""Which images a stack runs: the pinned ones (stack/pins.py) while the engine has them, built
or pulled when not. `Stack.up` resolves them before it touches a container; `hubd upgrade`
(stack/upgrade.py) asks which user images the config names and what pins a hub image makes.

A tag that moved since (someone pulled `:latest`) is not followed: `hubd upgrade` does that.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import docker
from docker.errors import APIError

from hubd.config import Config
from hubd.errors import ImageError
from hubd.stack.images import (
    LABEL_BASE_ID,
    LABEL_BASE_REF,
    ensure_hub_image,
    ensure_user_images,
    image_id,
    image_present,
    pull_image,
)
from hubd.stack.naming import StackNames
from hubd.stack.part import StackPart
from hubd.stack.pins import ImagePins, PinStore
from hubd.stack.progress import Reporter
from hubd.timing import Timing


@dataclass
class ResolvedImages:
    """The hub image and the user images (name -> id) to run, and how they came to be."""

    hub_image: str
    user_images: dict[str, str]
    changes: list[str] = field(default_factory=list)
    # User images that could not be pulled (the hub runs without them).
    problems: list[str] = field(default_factory=list)


class StackImages(StackPart):
    """The images of one stack, on its pins."""

    def __init__(
        self,
        client: docker.DockerClient,
        config: Config,
        names: StackNames,
        reporter: Reporter,
        timing: Timing,
        pins: PinStore | None = None,
    ) -> None:
        super().__init__(client, config, names, reporter, timing)
        # Without a pin store (throwaway stacks in tests) images are used as their tags say.
        self.pins = pins

    def resolve(self) -> ResolvedImages:
        """The hub image (built if needed) and the user images (pulled if needed), pinned."""
        pins = self.pins.load() if self.pins else ImagePins()
        hub_image, changes = self._hub_image(pins)
        wanted = {ref: pins.user_images.get(ref, "") for ref in self.user_image_refs()}
        missing = [ref for ref, pinned in wanted.items() if not self.usable(pinned)]
        pulled, problems = ensure_user_images(self.client, missing, self.reporter)
        changes += [f"pulled {ref}" for ref in pulled]
        for problem in problems:
            # The hub itself does not need these: it starts, and only spawns with this image
            # fail until it is there. Said here, in `hubd status` and in the tray.
            self.reporter.step(f"warning: {problem}")
        user_images: dict[str, str] = {}
        for ref, pinned in wanted.items():
            if self.usable(pinned):
                user_images[ref] = pinned
            else:
                # An image that could not be pulled is left unpinned (spawns name it as is).
                with contextlib.suppress(ImageError, APIError):
                    user_images[ref] = image_id(self.client, ref)
        self.save(hub_image, user_images)
        return ResolvedImages(hub_image, user_images, changes, problems)

    def _hub_image(self, pins: ImagePins) -> tuple[str, list[str]]:
        if pins.hub_base_ref not in ("", self.config.hub_base_image) and self.usable(
            pins.hub_image
        ):
            # Another JupyterHub may need a database migration: that is an upgrade's job,
            # behind its health gate. Until then the pinned hub keeps running.
            return pins.hub_image, [
                f"kept the hub on {pins.hub_base_ref}: `hubd upgrade` switches to "
                f"{self.config.hub_base_image}"
            ]
        image, built = ensure_hub_image(
            self.client,
            self.names,
            self.config.hub_base_image,
            self.reporter,
            base_id=pins.hub_base_for(self.config.hub_base_image),
            build_timeout_s=self.timing.image_build_timeout_s,
        )
        return image, [f"built image {image}"] if built else []

    def ensure_proxy_image(self) -> bool:
        """Pull the proxy's image unless the engine has it; True if pulled. The proxy is as
        necessary as the hub: an image that cannot be pulled raises."""
        if image_present(self.client, self.config.proxy_image):
            return False
        pull_image(self.client, self.config.proxy_image, self.reporter)
        return True

    def user_image_refs(self) -> list[str]:
        return list(dict.fromkeys([self.config.user_image, *self.config.allowed_images]))

    def usable(self, pinned_id: str) -> bool:
        return bool(pinned_id) and image_present(self.client, pinned_id)

    def pins_for(self, hub_image: str, user_images: dict[str, str]) -> ImagePins:
        labels = self.client.images.get(hub_image).labels or {}
        return ImagePins(
            hub_base_ref=labels.get(LABEL_BASE_REF, self.config.hub_base_image),
            hub_base_id=labels.get(LABEL_BASE_ID, ""),
            hub_image=hub_image,
            user_images=dict(user_images),
        )

    def save(self, hub_image: str, user_images: dict[str, str]) -> None:
        if self.pins is None:
            return
        pins = self.pins_for(hub_image, user_images)
        if pins != self.pins.load():
            self.pins.save(pins)


__all__ = ["ResolvedImages", "StackImages"]
