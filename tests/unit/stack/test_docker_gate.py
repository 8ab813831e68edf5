"""The docker gate's judgement, request by request (the real gate and engine: integration)."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import docker
import pytest

from hubd.config import Config
from hubd.stack.docker_gate import gate_policy
from hubd.stack.hardening import user_host_config
from hubd.stack.images import hub_context_dir
from hubd.stack.naming import StackNames


def _load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docker_gate", hub_context_dir() / "docker_gate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docker_gate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    # The same file, seen by mypy as hubd's module; at run time it is loaded as the hub
    # container runs it: a standalone top-level module.
    from hubd.stack.hub_image import docker_gate
else:
    docker_gate = _load_gate()
gate = docker_gate
NAMES = StackNames("home")
CONFIG = Config(user_image="lab:1", allowed_images=("lab:2",), shared_folder="/srv/share")
OURS = {"io.hubd.stack": "home", "io.hubd.role": "user-server"}
ENGINE: dict[str, Any] = {
    "/containers/home-user-ann/json": {"Id": "a" * 64, "Config": {"Labels": OURS}},
    "/containers/home-hub/json": {
        "Id": "b" * 64,
        "Config": {"Labels": {**OURS, "io.hubd.role": "hub"}},
    },
    "/containers/postgres/json": {"Id": "c" * 64, "Config": {"Labels": {}}},
    "/networks/home-unet-ann": {"Id": "d" * 64, "Labels": {"io.hubd.stack": "home"}},
    "/networks/home-snet-ann": {"Id": "e" * 64, "Labels": {"io.hubd.stack": "home"}},
}


def judge() -> gate.Judge:
    policy = gate.Policy.from_json(json.dumps(gate_policy(CONFIG, NAMES)))
    return gate.Judge(policy, ENGINE.get)


def create_body(**host: Any) -> dict[str, Any]:
    """A create request as DockerSpawner sends it, with `host` merged into its HostConfig."""
    host_config = docker.types.HostConfig(
        version="1.41",
        binds={"home-home-ann": {"bind": "/home/jovyan/work", "mode": "rw"}},
        network_mode="home-unet-ann",
        auto_remove=True,
        mem_limit="2G",
        **user_host_config(),
    )
    return {
        "Image": "lab:1",
        "Labels": dict(OURS),
        "Env": ["JUPYTERHUB_USER=ann"],
        "Cmd": ["jupyterhub-singleuser"],
        "ExposedPorts": {"8888/tcp": {}},
        "Volumes": {"/home/jovyan/work": {}},
        "HostConfig": {**host_config, **host},
    }


def check(method: str, path: str, body: Any = None, **query: str) -> None:
    request = gate.Request(method, path, {k: [v] for k, v in query.items()}, body)
    judge().check(request)


def test_what_dockerspawner_does_is_let_through() -> None:
    check("GET", "/version")
    check("HEAD", "/_ping")
    check("POST", "/containers/create", create_body(), name="home-user-ann")
    for method, path in [
        ("GET", "/containers/home-user-ann/json"),
        ("POST", "/containers/home-user-ann/start"),
        ("POST", "/containers/home-user-ann/stop"),
        ("POST", "/containers/home-user-ann/wait"),
        ("DELETE", "/containers/home-user-ann"),
        ("GET", "/images/lab:2/json"),
        ("GET", "/volumes/home-home-ann"),
    ]:
        check(method, path)
    with pytest.raises(gate.NotFoundHere):  # the gate answers 404 itself
        check("GET", "/containers/home-user-nobody-yet/json")
    check("POST", "/images/create", fromImage="lab", tag="1")
    check("POST", "/volumes/create", {"Name": "home-home-ann", "Labels": {"io.hubd.stack": "home"}})
    shared = ["home-home-ann:/home/jovyan/work:rw", "/srv/share:/home/jovyan/shared:ro"]
    check("POST", "/containers/create", create_body(Binds=shared), name="home-user-ann")


@pytest.mark.parametrize(
    "host, reason",
    [
        ({"Privileged": True}, "Privileged"),
        ({"Binds": ["/:/host"]}, "host folder '/'"),
        ({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, "host folder"),
        ({"Binds": ["/srv/share:/home/jovyan/shared:rw"]}, "read-only"),
        ({"Binds": ["home-hub-data:/data"]}, "not a user volume"),
        ({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}, "host folder"),
        ({"CapAdd": ["SYS_ADMIN"]}, "CapAdd"),
        ({"CapDrop": []}, "drop the capabilities"),
        ({"Devices": [{"PathOnHost": "/dev/sda"}]}, "Devices"),
        ({"PidMode": "host"}, "PidMode"),
        ({"NetworkMode": "host"}, "own network home-unet-ann"),
        ({"NetworkMode": "home-net"}, "own network home-unet-ann"),
        ({"NetworkMode": "home-unet-bo"}, "own network home-unet-ann"),
        ({"PidsLimit": 0}, "PID limit"),
        ({"SecurityOpt": ["seccomp=unconfined", "no-new-privileges:true"]}, "security"),
        ({"MaskedPaths": []}, "MaskedPaths"),  # empty unmasks /proc
        ({"ReadonlyPaths": ["/proc"]}, "ReadonlyPaths"),
        ({"Memory": 0, "Links": None}, None),  # empty is the engine's default
        ({"Runtime": "runc-host"}, "Runtime"),
        ({"PortBindings": {"8888/tcp": [{"HostPort": "80"}]}}, "PortBindings"),
    ],
)
def test_a_container_asking_for_more_is_refused(host: dict[str, Any], reason: str | None) -> None:
    body = create_body(**host)
    if reason is None:
        check("POST", "/containers/create", body, name="home-user-ann")
        return
    with pytest.raises(gate.Refused, match=reason):
        check("POST", "/containers/create", body, name="home-user-ann")


@pytest.mark.parametrize(
    "change, query, reason",
    [
        ({"Image": "alpine"}, {}, "not one of the configured user images"),
        ({"Labels": {}}, {}, "labels"),
        ({}, {"name": "home-hub"}, "names must be home-user-<person>"),
        ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {}}}}, {}, "only its own network"),
    ],
)
def test_other_create_requests_are_refused(
    change: dict[str, Any], query: dict[str, str], reason: str
) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check(
            "POST",
            "/containers/create",
            {**create_body(), **change},
            **{"name": "home-user-ann", **query},
        )


@pytest.mark.parametrize(
    "method, path, reason",
    [
        ("POST", "/containers/home-user-ann/exec", "not something"),
        ("POST", "/containers/home-user-ann/attach", "not something"),
        ("PUT", "/containers/home-user-ann/archive", "not something"),
        ("POST", "/containers/postgres/stop", "not one of this hub's users' servers"),
        ("DELETE", "/containers/home-hub", "not one of this hub's users' servers"),
        ("GET", "/containers/json", "not something"),
        ("GET", "/images/alpine/json", "not one of the configured"),
        ("POST", "/build", "not something"),
        ("GET", "/volumes/home-hub-data", "not a user volume"),
        ("POST", "/networks/create", "needs a JSON body"),
        ("GET", "/networks/home-net", "not a person's network"),
        ("DELETE", "/networks/home-unet-ann", "not something"),
        ("POST", "/networks/home-unet-ann/disconnect", "not something"),
        ("GET", "/info", "not something"),
        ("POST", "/containers/home-user-ann%2F..%2F..%2Fexec/start", "odd path"),
        ("POST", "/containers/home-user-ann/../../build", "odd path"),
    ],
)
def test_everything_else_is_refused(method: str, path: str, reason: str) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check(method, path)


def test_people_get_networks_that_only_the_hub_joins() -> None:
    labels = {"io.hubd.stack": "home", "io.hubd.role": "user-network", "io.hubd.user": "ann"}
    check("GET", "/networks/home-unet-ann")
    check(
        "POST", "/networks/create", {"Name": "home-unet-ann", "Driver": "bridge", "Labels": labels}
    )
    check(
        "POST", "/networks/home-unet-ann/connect", {"Container": "home-hub", "EndpointConfig": {}}
    )
    with pytest.raises(gate.Refused, match="only the stack's own members"):
        check("POST", "/networks/home-unet-ann/connect", {"Container": "home-user-bo"})
    with pytest.raises(gate.Refused, match="not a person's network"):
        check("POST", "/networks/home-net/connect", {"Container": "home-hub"})
    with pytest.raises(gate.Refused, match="Driver must be one of"):
        check(
            "POST",
            "/networks/create",
            {"Name": "home-unet-x", "Driver": "macvlan", "Labels": labels},
        )
    with pytest.raises(gate.Refused, match="Options"):
        body = {"Name": "home-unet-x", "Labels": labels, "Options": {"parent": "eth0"}}
        check("POST", "/networks/create", body)


def test_an_image_by_digest_is_pulled_as_docker_py_asks() -> None:
    digest = "sha256:" + "ab" * 32
    config = Config(user_image=f"lab@{digest}")
    policy = gate.Policy.from_json(json.dumps(gate_policy(config, NAMES)))
    request = gate.Request("POST", "/images/create", {"fromImage": ["lab"], "tag": [digest]})
    gate.Judge(policy, ENGINE.get).check(request)
    with pytest.raises(gate.Refused):
        gate.Judge(policy, ENGINE.get).check(
            gate.Request("POST", "/images/create", {"fromImage": [f"lab@{digest}"], "tag": ["1"]})
        )


def test_pulls_and_volumes_stay_within_the_config() -> None:
    with pytest.raises(gate.Refused, match="configured user images"):
        check("POST", "/images/create", fromImage="evil/miner", tag="latest")
    with pytest.raises(gate.Refused, match="label"):
        check("POST", "/volumes/create", {"Name": "home-home-x"})
    with pytest.raises(gate.Refused, match="Driver must be one of"):
        body = {"Name": "home-home-x", "Labels": {"io.hubd.stack": "home"}, "Driver": "nfs"}
        check("POST", "/volumes/create", body)


def test_pinned_image_ids_are_allowed_beside_the_names() -> None:
    pinned = gate_policy(CONFIG, NAMES, {"lab:1": "sha256:feed", "lab:2": "sha256:beef"})
    judge_pinned = gate.Judge(gate.Policy.from_json(json.dumps(pinned)), ENGINE.get)
    body = {**create_body(), "Image": "sha256:feed"}
    judge_pinned.check(
        gate.Request("POST", "/containers/create", {"name": ["home-user-ann"]}, body)
    )
    judge_pinned.check(gate.Request("GET", "/images/sha256:beef/json", {}, None))
    with pytest.raises(gate.Refused, match="configured user images"):
        judge().check(gate.Request("GET", "/images/sha256:feed/json", {}, None))
