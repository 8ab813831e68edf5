"""Where a person's server runs on a Swarm (hub_image/swarm_placement.py, run inside the hub)."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from hubd.config import Config
from hubd.stack.images import hub_context_dir
from hubd.stack.naming import StackNames
from hubd.stack.settings import hub_settings
from hubd.stack.swarm.homes import home_label, node_label
from hubd.timing import Timing


def _load() -> ModuleType:
    path = hub_context_dir() / "swarm_placement.py"
    spec = importlib.util.spec_from_file_location("swarm_placement", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["swarm_placement"] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    # The same file, seen by mypy as hubd's module; at run time it is loaded as the hub
    # container runs it: a standalone top-level module.
    from hubd.stack.hub_image import swarm_placement
else:
    swarm_placement = _load()
placement = swarm_placement
NAMES = StackNames("home")
CONFIG = Config(
    user_image="lab:1",
    allowed_images=("lab:1", "lab-gpu:1"),
    image_nodes=("lab-gpu:1=gpu",),
    gpu_images=("lab-gpu:1",),
)
SWARM: dict[str, Any] = hub_settings(
    CONFIG, NAMES, Timing(), user_images={"lab-gpu:1": "sha256:gpu"}, swarm_node_id="m1"
)["swarm"]


def node(
    ident: str, host: str, state: str = "ready", avail: str = "active", **labels: str
) -> dict[str, Any]:
    return {
        "ID": ident,
        "Description": {"Hostname": host},
        "Status": {"State": state},
        "Spec": {"Availability": avail, "Labels": labels},
    }


MANAGER = node("m1", "desk")
WORKER = node("w2", "gpubox", **{home_label(NAMES, "ann"): "true", node_label("gpu"): "true"})
# What Swarm lists for an engine with `node-generic-resources: ["NVIDIA-GPU=GPU-1a2b"]`.
GPU_WORKER = {
    **WORKER,
    "Description": {
        "Hostname": "gpubox",
        "Resources": {
            "GenericResources": [{"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "GPU-1a2b"}}]
        },
    },
}


def test_a_person_lives_where_their_label_is_else_on_the_manager() -> None:
    assert placement.home_node([MANAGER, WORKER], "ann", SWARM) is WORKER
    assert placement.home_node([MANAGER, WORKER], "bo", SWARM) is MANAGER
    assert placement.constraints(WORKER) == ["node.id==w2"]
    # Another stack's label on the same Swarm is not this stack's person.
    other = node("w3", "x", **{home_label(StackNames("other"), "bo"): "true"})
    assert placement.home_node([MANAGER, other], "bo", SWARM) is MANAGER
    with pytest.raises(placement.PlacementRefused, match="no longer part of this hub"):
        placement.home_node([WORKER], "bo", SWARM)


@pytest.mark.parametrize(
    "home, image, message",
    [
        (node("w2", "gpubox", state="down"), "lab:1", "gpubox, which is not reachable"),
        (node("w2", "gpubox", state="unknown"), "lab:1", "start again when gpubox is back"),
        (node("w2", "gpubox", avail="drain"), "lab:1", "paused for maintenance"),
        (MANAGER, "sha256:gpu", "labelled 'gpu'.*hubd user move ann --to NODE"),
        (MANAGER, "lab-gpu:1", "labelled 'gpu'"),
        (GPU_WORKER, "sha256:gpu", None),
        (MANAGER, "lab:1", None),
    ],
)
def test_a_server_that_cannot_run_now_is_told_at_once(
    home: Any, image: str, message: str | None
) -> None:
    if message is None:
        placement.check_home(home, "ann", image, SWARM)
        return
    with pytest.raises(placement.PlacementRefused, match=message):
        placement.check_home(home, "ann", image, SWARM)


def test_gpu_images_see_the_nodes_gpus_by_name_and_by_pinned_id() -> None:
    wanted = {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    assert placement.gpu_environment("lab-gpu:1", SWARM) == wanted
    assert placement.gpu_environment("sha256:gpu", SWARM) == wanted
    assert placement.gpu_environment("lab:1", SWARM) == {}


def test_a_gpu_image_is_refused_at_once_on_a_node_without_a_gpu() -> None:
    swarm = {**SWARM, "image_node_labels": {}}
    with pytest.raises(placement.PlacementRefused, match=r"needs a GPU.*on gpubox, which has"):
        placement.check_home(WORKER, "ann", "lab-gpu:1", swarm)
    placement.check_home(GPU_WORKER, "ann", "lab-gpu:1", swarm)
    placement.check_home(WORKER, "ann", "lab:1", swarm)


@pytest.mark.parametrize(
    "task, home, message",
    [
        ({"Status": {"State": "pending"}}, WORKER, None),
        ({"Status": {"State": "running"}}, WORKER, None),
        ({"Status": {"State": "rejected", "Err": "invalid mount config"}}, WORKER, "invalid mount"),
        ({"Status": {"State": "failed", "Err": "exit 1"}}, WORKER, "on gpubox: exit 1"),
        ({"Status": {"State": "pending"}}, node("w2", "gpubox", state="down"), "went away"),
    ],
)
def test_a_task_that_will_never_run_ends_the_start(
    task: dict[str, Any], home: Any, message: str | None
) -> None:
    problem = placement.task_problem(task, home)
    if message is None:
        assert problem is None
    else:
        assert problem is not None and re.search(message, problem)


def test_the_server_is_reached_at_its_task_address_on_the_persons_network() -> None:
    task = {
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.9/24"]},
            {"Network": {"Spec": {"Name": "hubd-snet-ada"}}, "Addresses": ["10.0.7.3/24"]},
        ]
    }
    assert placement.task_address(task, "hubd-snet-ada") == "10.0.7.3"
    assert placement.task_address(task, "hubd-snet-bob") is None
    assert placement.task_address({}, "hubd-snet-ada") is None


def test_a_one_machine_hub_has_no_swarm_settings() -> None:
    assert hub_settings(CONFIG, NAMES, Timing())["swarm"] is None
    assert SWARM["manager_node_id"] == "m1"
    assert SWARM["image_node_labels"] == {
        "lab-gpu:1": "io.hubd.node.gpu",
        "sha256:gpu": "io.hubd.node.gpu",
    }


def test_hubd_and_the_hub_read_a_node_with_the_same_readers() -> None:
    """One reading of a node's JSON: the hub's placement (this file, in the container) and
    hubd's node list (`hubd node list`, the tray) agree on name, readiness and GPUs."""
    from hubd.stack.hub_image import swarm_placement as shared
    from hubd.stack.swarm.placement import node_view

    bare = {"ID": "abcdef1234567890", "Status": {}, "Spec": {}}
    gpu = {
        "ID": "n2",
        "Description": {
            "Hostname": "gpu-box",
            "Resources": {
                "GenericResources": [
                    {"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "GPU-1"}},
                    {"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "GPU-2"}},
                    {"DiscreteResourceSpec": {"Kind": "SSD", "Value": 2}},
                ]
            },
        },
        "Status": {"State": "ready"},
        "Spec": {"Availability": "drain"},
    }
    assert shared.node_name(bare) == "abcdef123456" == node_view(bare, {}, {}, "").hostname
    assert not shared.node_ready(bare) and not node_view(bare, {}, {}, "").ready
    assert shared.node_resources(gpu) == {"NVIDIA-GPU": 2, "SSD": 2}
    view = node_view(gpu, {}, {}, "")
    assert view.ready and view.hostname == "gpu-box"
    assert [(r.kind, r.count) for r in view.resources] == [("NVIDIA-GPU", 2), ("SSD", 2)]
    assert not shared.node_active(gpu) and shared.node_active(bare)
    assert shared.has_gpu(gpu, {"gpu_resource_kind": "NVIDIA-GPU"})
    assert not shared.has_gpu(bare, {"gpu_resource_kind": "NVIDIA-GPU"})
