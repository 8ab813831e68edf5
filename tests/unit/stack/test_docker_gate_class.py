"""The gate's rules for a class (issue 24): people's /29s from the block, GPUs for GPU images."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest

from hubd.config import Config
from hubd.stack.docker_gate import gate_policy
from tests.unit.stack.test_docker_gate import NAMES, OURS, create_body, gate

BLOCK = "10.200.0.0/16"
CONFIG = Config(user_image="lab:1", allowed_images=("lab:2", "gpu:1"), gpu_images=("gpu:1",))
LABELS = {"io.hubd.stack": "home", "io.hubd.role": "user-network"}


def judge(block: str | None = BLOCK) -> gate.Judge:
    policy = gate.Policy.from_json(json.dumps(gate_policy(CONFIG, NAMES, user_network_block=block)))
    return gate.Judge(policy, {"/containers/home-user-ann/json": {"Config": {"Labels": OURS}}}.get)


def check(method: str, path: str, body: Any = None, block: str | None = BLOCK, **q: str) -> None:
    judge(block).check(gate.Request(method, path, {k: [v] for k, v in q.items()}, body))


def network_body(ipam: Any) -> dict[str, Any]:
    """What docker-py sends for create_network(name, driver="bridge", ipam=..., labels=...)."""
    return {
        "Name": "home-unet-ann",
        "Driver": "bridge",
        "Options": None,
        "IPAM": ipam,
        "CheckDuplicate": True,
        "Labels": LABELS,
    }


def pool(subnet: str, **extra: Any) -> Any:
    return docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, **extra)])


def test_a_person_network_with_one_slot_of_the_block_passes() -> None:
    check("POST", "/networks/create", network_body(pool("10.200.3.8/29")))
    check("POST", "/networks/create", network_body(pool("10.200.255.248/29")))


@pytest.mark.parametrize(
    "ipam, reason",
    [
        (None, "one subnet of the people.s block"),
        (pool("10.201.0.0/29"), "inside 10.200.0.0/16"),
        (pool("10.200.0.0/24"), "a /29"),
        (pool("10.200.0.0/29", gateway="10.200.0.1"), "Gateway is not allowed"),
        (pool("10.200.0.4/29"), "odd subnet"),
        ({"Driver": "weird", "Config": [{"Subnet": "10.200.0.0/29"}]}, "must be one of"),
        ({"Driver": "default", "Config": [{"Subnet": "10.200.0.0/29"}] * 2}, "at most 1"),
        (
            {"Config": [{"Subnet": "10.200.0.0/29"}], "EnableIPv6": True},
            "EnableIPv6 is not allowed",
        ),
    ],
)
def test_any_other_ipam_is_refused(ipam: Any, reason: str) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check("POST", "/networks/create", network_body(ipam))


def test_without_a_block_no_ipam_at_all() -> None:
    check("POST", "/networks/create", network_body(None), block=None)
    with pytest.raises(gate.Refused, match="IPAM"):
        check("POST", "/networks/create", network_body(pool("10.200.0.0/29")), block=None)


GPU = [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]


def test_gpu_images_get_all_gpus_and_nothing_else() -> None:
    body = create_body(DeviceRequests=GPU)
    body["Image"] = "gpu:1"
    check("POST", "/containers/create", body, name="home-user-ann")
    body["Image"] = "lab:1"
    with pytest.raises(gate.Refused, match="not one of the GPU images"):
        check("POST", "/containers/create", body, name="home-user-ann")


@pytest.mark.parametrize(
    "requests",
    [
        [{**GPU[0], "Driver": "nvidia-plus"}],
        [{**GPU[0], "DeviceIDs": ["/dev/sda"]}],
        [{**GPU[0], "Capabilities": [["gpu", "compute", "utility", "display"]]}],
        [{**GPU[0], "Options": {"x": "y"}}],
        [GPU[0], GPU[0]],
        [{**GPU[0], "Count": 1}],
    ],
)
def test_any_other_device_request_is_refused(requests: Any) -> None:
    body = create_body(DeviceRequests=requests)
    body["Image"] = "gpu:1"
    with pytest.raises(gate.Refused):
        check("POST", "/containers/create", body, name="home-user-ann")
