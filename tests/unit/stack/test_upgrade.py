"""Pure parts of pinning and upgrades: the pin file, the plan, the pinned hub settings."""

from __future__ import annotations

import json
from pathlib import Path

from hubd.config import Config
from hubd.stack.naming import StackNames
from hubd.stack.pins import ImagePins, PinStore
from hubd.stack.settings import hub_settings
from hubd.stack.upgrade import Change, UpgradePlan
from hubd.timing import Timing

PINS = ImagePins(
    hub_base_ref="quay.io/jupyterhub/jupyterhub:latest",
    hub_base_id="sha256:" + "a" * 64,
    hub_image="hubd-hub:0123456789ab",
    user_images={"quay.io/jupyter/base-notebook:latest": "sha256:" + "b" * 64},
)


def test_pins_round_trip_per_stack_and_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state" / "image-pins.json"
    one, other = PinStore(path, "hubd"), PinStore(path, "lab")
    assert one.load() == ImagePins()
    one.save(PINS)
    other.save(ImagePins(hub_image="lab-hub:1"))
    assert one.load() == PINS
    assert other.load().hub_image == "lab-hub:1"
    assert [p.name for p in path.parent.iterdir()] == ["image-pins.json"]  # no temp file left


def test_unreadable_pins_are_nothing_pinned(tmp_path: Path) -> None:
    path = tmp_path / "image-pins.json"
    path.write_text("{not json")
    assert PinStore(path, "hubd").load() == ImagePins()
    path.write_text(json.dumps({"stacks": {"hubd": "garbage"}}))
    assert PinStore(path, "hubd").load() == ImagePins()


def test_a_pinned_base_counts_only_for_the_name_it_was_pinned_under() -> None:
    assert PINS.hub_base_for("quay.io/jupyterhub/jupyterhub:latest") == PINS.hub_base_id
    # The owner named another base image in the config: nothing pinned for it yet.
    assert PINS.hub_base_for("quay.io/jupyterhub/jupyterhub:5") == ""


def test_plan_round_trips_and_knows_when_nothing_changes() -> None:
    newer = ImagePins.from_json({**PINS.to_json(), "hub_image": "hubd-hub:ba9876543210"})
    plan = UpgradePlan(PINS, newer, (Change("hub image: jupyterhub", "5.4.6", "6.1.1"),))
    assert not plan.up_to_date
    assert UpgradePlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert str(plan.changes[0]) == "hub image: jupyterhub: 5.4.6 -> 6.1.1"
    assert UpgradePlan(PINS, ImagePins.from_json(PINS.to_json())).up_to_date


def test_the_hub_starts_pinned_user_images_by_id() -> None:
    config = Config(allowed_images=("quay.io/jupyter/base-notebook:latest", "r:latest"))
    names = StackNames(config.stack_name)
    pinned = hub_settings(config, names, Timing(), user_images=PINS.user_images)
    assert pinned["user_image"] == "sha256:" + "b" * 64
    # People still pick by name; DockerSpawner starts the pinned id (r is not pinned yet).
    assert pinned["allowed_images"] == {
        "quay.io/jupyter/base-notebook:latest": "sha256:" + "b" * 64,
        "r:latest": "r:latest",
    }
    unpinned = hub_settings(config, names, Timing())
    assert unpinned["user_image"] == config.user_image
    assert unpinned["allowed_images"] == list(config.allowed_images)
