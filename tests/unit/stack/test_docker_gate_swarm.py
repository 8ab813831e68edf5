"""The docker gate on a Swarm: people's servers as services, judged like containers."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    Mount,
    Placement,
    Resources,
    TaskTemplate,
)

from hubd.stack.docker_gate import gate_policy
from tests.unit.stack.test_docker_gate import CONFIG, NAMES, OURS, gate

SERVICE = {"ID": "s" * 25, "Spec": {"Labels": OURS}}
ENGINE: dict[str, Any] = {
    "/services/home-user-ann": SERVICE,
    "/services/postgres": {"ID": "p" * 25, "Spec": {"Labels": {}}},
    # Named like ours, made by someone else: judged by its labels, not its name.
    "/services/home-user-mallory": {"ID": "m" * 25, "Spec": {"Labels": {}}},
    "/networks/home-snet-ann": {"Id": "e" * 64, "Labels": {"io.hubd.stack": "home"}},
}
VOLUME_LABELS = {"io.hubd.stack": "home", "io.hubd.role": "user-data", "io.hubd.user": "ann"}


def judge(swarm: bool = True) -> gate.Judge:
    policy = gate.Policy.from_json(json.dumps(gate_policy(CONFIG, NAMES, swarm=swarm)))
    return gate.Judge(policy, ENGINE.get)


def check(method: str, path: str, body: Any = None, swarm: bool = True, **query: str) -> None:
    request = gate.Request(method, path, {k: [v] for k, v in query.items()}, body)
    judge(swarm).check(request)


def service_body(
    mounts: list[Mount] | None = None,
    network: str = "home-snet-ann",
    pids: int | None = 1024,
    **container: Any,
) -> dict[str, Any]:
    """The body docker-py sends for the service hub_image/hubd_swarm.py asks for."""
    volume = Mount("/home/jovyan/work", "home-home-ann", type="volume", labels=VOLUME_LABELS)
    arguments: dict[str, Any] = {
        "image": "lab:1",
        "env": {"JUPYTERHUB_USER": "ann"},
        "args": ["jupyterhub-singleuser"],
        "mounts": [volume] if mounts is None else mounts,
        "labels": dict(OURS),
        "cap_drop": ["ALL"],
    }
    spec = ContainerSpec(**{**arguments, **container})
    resources = Resources(mem_limit=2 * 1024**3, generic_resources={"NVIDIA-GPU": 1})
    if pids is not None:
        resources.setdefault("Limits", {})["Pids"] = pids
    task = TaskTemplate(
        container_spec=spec,
        resources=resources,
        networks=[network],
        placement=Placement(constraints=["node.id==abc"]),
        restart_policy={"Condition": "none"},
    )
    sent: dict[str, Any] = {}
    client = docker.APIClient(base_url="unix:///nowhere", version="1.41")
    client._post_json = lambda url, data, **kw: sent.update(data) or _Answer()
    client.create_service(
        task,
        name="home-user-ann",
        labels=dict(OURS),
        endpoint_spec=EndpointSpec(mode="dnsrr"),
    )
    body: dict[str, Any] = json.loads(json.dumps(sent))
    return body


class _Answer:
    status_code = 201

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, str]:
        return {"ID": "x"}


def test_what_the_swarm_spawner_does_is_let_through() -> None:
    check("POST", "/services/create", service_body())
    check("GET", "/services/home-user-ann")
    check("DELETE", "/services/home-user-ann")
    with pytest.raises(gate.NotFoundHere):  # the gate answers 404 itself
        check("GET", "/services/home-user-nobody-yet")
    check("GET", "/tasks", filters=json.dumps({"service": ["home-user-ann"]}))
    check("GET", "/tasks", filters=json.dumps({"service": {"home-user-ann": True}}))
    # dockerspawner's SwarmSpawner.get_task asks for the running one first.
    running = {"service": ["home-user-ann"], "desired-state": ["running"]}
    check("GET", "/tasks", filters=json.dumps(running))
    check("GET", "/nodes")
    check("GET", "/nodes/abc")
    labels = {"io.hubd.stack": "home", "io.hubd.role": "user-network", "io.hubd.user": "ann"}
    overlay = {"Name": "home-snet-ann", "Driver": "overlay", "Attachable": True, "Labels": labels}
    check("POST", "/networks/create", overlay)
    check("POST", "/networks/home-snet-ann/connect", {"Container": "home-hub"})
    shared = Mount("/home/jovyan/shared", "/srv/share", type="bind", read_only=True)
    check("POST", "/services/create", service_body(mounts=[shared]))


def test_a_one_machine_hub_gets_no_swarm_at_all() -> None:
    for method, path, body in [
        ("POST", "/services/create", service_body()),
        ("GET", "/nodes", None),
        ("GET", "/services/home-user-ann", None),
    ]:
        with pytest.raises(gate.Refused, match="not something"):
            check(method, path, body, swarm=False)
    overlay = {
        "Name": "home-snet-ann",
        "Driver": "overlay",
        "Attachable": True,
        "Labels": {"io.hubd.stack": "home"},
    }
    with pytest.raises(gate.Refused, match="not a person's network"):
        check("POST", "/networks/create", overlay, swarm=False)


@pytest.mark.parametrize(
    "body, reason",
    [
        (service_body(cap_add=["SYS_ADMIN"]), "CapabilityAdd"),
        (service_body(cap_drop=[]), "drop the capabilities"),
        (service_body(pids=None), "PID limit"),
        (service_body(pids=100000), "PID limit"),
        (service_body(image="evil/miner"), "configured user images"),
        (service_body(labels={}), "labels"),
        (service_body(network="home-snet-bo"), "only its own network home-snet-ann"),
        (service_body(network="ingress"), "only its own network"),
        (service_body(sysctls={"net.ipv4.ip_forward": "1"}), "Sysctls"),
        (service_body(mounts=[Mount("/x", "/etc", type="bind")]), "host folder"),
        (service_body(mounts=[Mount("/x", "/var/run/docker.sock", type="bind")]), "host folder"),
        (service_body(mounts=[Mount("/x", "home-hub-data")]), "not a user volume"),
        (service_body(mounts=[Mount("/x", "home-home-ann", labels={})]), "stack's label"),
        (service_body(mounts=[Mount("/x", "/tmp", type="tmpfs")]), "Type must be one of"),
    ],
)
def test_a_service_asking_for_more_is_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check("POST", "/services/create", body)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"Name": "home-hub"}, "names must be home-user-<person>"),
        ({"Labels": {}}, "labels"),
        ({"EndpointSpec": {"Ports": [{"TargetPort": 8888, "PublishedPort": 80}]}}, "Ports is not"),
        ({"Mode": {"Global": {}}}, "Mode.Global is not allowed"),
        ({"Mode": {"Replicated": {"Replicas": 5}}}, "Replicas must be between 0 and 1"),
        ({"UpdateConfig": {"Parallelism": 1}}, "UpdateConfig"),
    ],
)
def test_other_service_requests_are_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check("POST", "/services/create", {**service_body(), **change})


@pytest.mark.parametrize(
    "method, path, query, reason",
    [
        ("GET", "/tasks", {}, "listed by their service"),
        ("GET", "/tasks", {"filters": json.dumps({"node": ["abc"]})}, "listed by their service"),
        (
            "GET",
            "/tasks",
            {"filters": json.dumps({"service": ["home-user-ann"], "desired-state": ["x"]})},
            "not a task state",
        ),
        (
            "GET",
            "/tasks",
            {"filters": '{"service": ["home-user-ann"], "Service": ["postgres"]}'},
            "duplicate",
        ),
        ("GET", "/tasks", {"filters": json.dumps({"service": ["postgres"]})}, "not one of"),
        (
            "GET",
            "/tasks",
            {"filters": json.dumps({"service": ["home-user-ann", "home-user-mallory"]})},
            "not one of",
        ),
        ("GET", "/services/postgres", {}, "not one of this hub's users' servers"),
        ("DELETE", "/services/postgres", {}, "not one of this hub's users' servers"),
        ("POST", "/services/home-user-ann/update", {}, "not something"),
        ("GET", "/services", {}, "not something"),
        ("POST", "/nodes/abc/update", {}, "not something"),
        ("DELETE", "/nodes/abc", {}, "not something"),
        ("GET", "/swarm", {}, "not something"),
        ("GET", "/secrets", {}, "not something"),
    ],
)
def test_the_rest_of_the_swarm_is_refused(
    method: str, path: str, query: dict[str, str], reason: str
) -> None:
    with pytest.raises(gate.Refused, match=reason):
        check(method, path, body=None, swarm=True, **query)


def test_overlays_are_attachable_and_plain() -> None:
    labels = {"io.hubd.stack": "home", "io.hubd.role": "user-network"}
    with pytest.raises(gate.Refused, match="attachable overlays"):
        check(
            "POST",
            "/networks/create",
            {"Name": "home-snet-ann", "Driver": "overlay", "Labels": labels},
        )
    with pytest.raises(gate.Refused, match="Options"):
        body = {
            "Name": "home-snet-ann",
            "Driver": "overlay",
            "Attachable": True,
            "Labels": labels,
            "Options": {"encrypted": ""},
        }
        check("POST", "/networks/create", body)
