"""Issue 28: the docker gate against a compromised hub, for Swarm service specs on the 2-node lab.

The gate of a stack of its own runs in Swarm mode on the lab's manager (node1). From a container
that holds only the gate's socket (test_docker_gate_breaches.py's Lab and probe), ann's server is
made as the Swarm spawner makes it (her overlay, her service homed on node2, running); then every
breach class of issue 28 on POST /services/create is sent as raw HTTP: case twins (TaskTemplate,
ContainerSpec, a mount's Type/Source), duplicate keys (Go keeps the last), null and empty values,
siblings the allow-list does not know (privileges, capabilities, sysctls, devices, placement
preferences, published ports, foreign networks, a syslog driver), pre-1.24 and odd API prefixes,
bodies on GET and DELETE of her service, form-encoded and untyped bodies, and generated case
twins of every key of the gate's service schema with a hostile value. Each must be refused by
the gate itself; afterwards the manager has the same services (ann's unchanged), and neither node
a new container, volume or network of the stack. ann's server is then removed and made again
through the gate, as the spawner does. Pure judging of many more variants:
tests/unit/stack/test_docker_gate_variants.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from docker.errors import APIError
from docker.types import Mount

from hubd.stack.naming import LABEL_USER, ROLE_USER_DATA, ROLE_USER_NETWORK, ROLE_USER_SERVER
from tests.integration.netns import wait_until
from tests.integration.swarm_lab import _TASK_ENDED, SwarmLab
from tests.integration.test_docker_gate_breaches import JSON, Lab, start_gate, v
from tests.unit.stack import test_docker_gate_swarm as swarm
from tests.unit.stack.test_docker_gate import gate  # the gate's own allow-list

pytestmark = [pytest.mark.integration]

Attempt = tuple[str, str, list[str], str]
CREATE = v("/services/create")


class SwarmGateLab(Lab):
    """Lab on node1's engine (the manager), with the 2-node lab at hand."""

    swarm_lab: SwarmLab

    def service(self, person: str, **container: Any) -> dict[str, Any]:
        """The body the Swarm spawner (hub_image/hubd_swarm.py, through docker-py) sends for
        `person`'s server, homed on node2 (unit tests' service_body with this stack's names)."""
        n = self.names
        volume_labels = n.labels(ROLE_USER_DATA, **{LABEL_USER: person})
        mount = Mount("/home/jovyan/work", n.user_volume(person), labels=volume_labels)
        ours = n.labels(ROLE_USER_SERVER, **{LABEL_USER: person})
        arguments = {
            "image": self.config.user_image,
            "labels": ours,
            "command": ["sleep"],
            "args": ["600"],
        }
        body = swarm.service_body(
            mounts=[mount],
            network=n.user_swarm_network_prefix + person,
            **{**arguments, **container},
        )
        body["Name"] = f"{n.user_container_prefix}-{person}"
        body["Labels"] = ours
        task = body["TaskTemplate"]
        task["Placement"]["Constraints"] = [f"node.id=={self.swarm_lab.node2.node_id}"]
        del task["Resources"]["Reservations"]  # no GPU asked for
        return body

    def services(self) -> dict[str, tuple[str, int]]:
        """Every service on the manager: name -> (id, spec version)."""
        return {
            s.name: (str(s.id), int(s.attrs["Version"]["Index"]))
            for s in self.swarm_lab.manager_client().services.list()
        }

    def node2_objects(self) -> dict[str, set[str]]:
        client, wanted = self.swarm_lab.node2.client().api, {"name": [self.names.stack]}
        return {
            "containers": {
                c["Names"][0].lstrip("/") for c in client.containers(all=True, filters=wanted)
            },
            "volumes": {v["Name"] for v in client.volumes(filters=wanted)["Volumes"] or []},
        }


@pytest.fixture(scope="module")
def lab(swarm_lab: SwarmLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmGateLab]:
    """The gate (this worktree's program) of a stack of its own on node1, in Swarm mode."""
    node1 = swarm_lab.node1
    lab = SwarmGateLab(node1.client(), swarm_lab.images, tmp_path_factory.mktemp("sgate"))
    lab.swarm_lab = swarm_lab
    try:
        start_gate(lab, str(node1.socket), swarm=True)
        yield lab
    finally:
        manager = swarm_lab.manager_client()
        for service in manager.services.list(filters=lab.names.filters()):
            service.remove()
        # Tasks may still hold the overlays a moment: swarm_lab's reset() purges the rest.
        with contextlib.suppress(APIError):
            lab.remove_all()


def legit(lab: SwarmGateLab) -> list[Attempt]:
    """What the Swarm spawner does for ann (and mallory's network): must all go through."""
    n = lab.names
    networks = [
        (
            "POST",
            v("/networks/create"),
            JSON,
            json.dumps(
                {
                    "Name": n.user_swarm_network_prefix + person,
                    "Driver": "overlay",
                    "Attachable": True,
                    "Labels": n.labels(ROLE_USER_NETWORK, **{LABEL_USER: person}),
                }
            ),
        )
        for person in ("ann", "mallory")
    ]
    return [
        ("GET", "/_ping", [], ""),
        *networks,
        ("POST", CREATE, JSON, json.dumps(lab.service("ann"))),
        ("GET", v(f"/services/{n.user_container_prefix}-ann"), [], ""),
    ]


def _at(body: dict[str, Any], where: list[str]) -> dict[str, Any]:
    target = body
    for step in where:
        target = target[step]
    return target


def twin(body: dict[str, Any], where: list[str], key: str, value: Any) -> str:
    """A copy of `body` as JSON text with `key` set to `value` at `where`."""
    body = copy.deepcopy(body)
    _at(body, where)[key] = value
    return json.dumps(body)


def breaches(lab: SwarmGateLab) -> list[Attempt]:
    """Every breach class of issue 28 for service specs, then generated variants."""
    n, node1 = lab.names, lab.swarm_lab.node1
    base = lab.service("mallory")
    spec_at, task_at = ["TaskTemplate", "ContainerSpec"], ["TaskTemplate"]
    resources_at = [*task_at, "Resources"]
    limits_at = [*resources_at, "Limits"]
    volume = base["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    root = {"Type": "bind", "Source": "/", "Target": "/host"}
    privileges = {"NoNewPrivileges": False, "AppArmor": {"Mode": "disabled"}}
    hostile_spec = {
        **_at(base, spec_at),
        "Mounts": [root],
        "CapabilityDrop": [],
        "Privileges": privileges,
    }
    hostile_task = {**base["TaskTemplate"], "ContainerSpec": hostile_spec}
    attempts: list[Attempt] = []

    def add(text: str, path: str = CREATE, headers: list[str] = JSON) -> None:
        attempts.append(("POST", path, headers, text))

    # Case twins of TaskTemplate and ContainerSpec carrying a bind of / and privileges.
    for key in ("taskTemplate", "tasktemplate", "TASKTEMPLATE", "Ta\u017fkTemplate"):
        add(twin(base, [], key, hostile_task))
    for key in ("containerspec", "containerSpec", "CONTAINERSPEC", "Container\u017fpec"):
        add(twin(base, task_at, key, hostile_spec))
    # A mount with lower-case twins: a bind of /, of node1's engine socket, of the host's.
    for source in ("/", str(node1.socket), "/var/run/docker.sock", "/etc"):
        add(twin(base, spec_at, "Mounts", [{**volume, "type": "bind", "source": source}]))
        add(twin(base, spec_at, "Mounts", [{**volume, "TYPE": "bind", "Source\u017f": source}]))
    add(twin(base, spec_at, "mounts", [root]))
    add(
        twin(base, spec_at, "Mounts", [volume, {**root, "bindoptions": {"Propagation": "rshared"}}])
    )
    add(twin(base, spec_at, "Mounts", [{**volume, "volumeoptions": {"DriverConfig": {}}}]))
    driver = {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/"}}
    add(twin(base, spec_at, "Mounts", [{**volume, "VolumeOptions": {"DriverConfig": driver}}]))
    # Duplicate keys: Go keeps the last.
    text = json.dumps(base)
    add(text[:-1] + f', "TaskTemplate": {json.dumps(hostile_task)}}}')
    add(text.replace('"CapabilityDrop"', '"CapabilityDrop": [], "CapabilityDrop"'))
    add(text.replace('"Mounts"', f'"Mounts": {json.dumps([root])}, "Mounts"'))
    add(text.replace('"Pids"', '"Pids": 1024, "Pids"').replace('"Pids": 1024}', '"Pids": 0}'))
    add(text.replace('"Networks"', '"Networks": [{"Target": "ingress"}], "Networks"'))
    add(text[:-1] + ', "Name": "' + n.hub_container + '"}')
    add(text[:-1] + ', "Mode": {"Global": {}}, "mode": {"global": {}}}')
    add(text[:-1] + ', "Mode": {"Replicated": {"Replicas": 1}, "replicated": {"Replicas": 9}}}')
    # Null and empty values where something is required or checked.
    value: Any  # a JSON value of any shape: each case sets its own
    for where, key, value in [
        (spec_at, "CapabilityDrop", None), (spec_at, "CapabilityDrop", []),
        (spec_at, "Labels", None), (spec_at, "Labels", {}), (spec_at, "Image", ""),
        (spec_at, "Mounts", [{**volume, "VolumeOptions": None}]),
        (task_at, "Resources", None), (task_at, "Resources", {}),
        (resources_at, "Limits", None), (resources_at, "Limits", {}),
        (limits_at, "Pids", None),
        (limits_at, "Pids", 0), (task_at, "Networks", []),
        (task_at, "Networks", None), (task_at, "ContainerSpec", None), ([], "TaskTemplate", None),
        ([], "Labels", None), ([], "Name", ""), ([], "Name", None),
    ]:  # fmt: skip
        add(twin(base, where, key, value))
    for text in ("null", "{}", "[]", "", '""', "[" + json.dumps(base) + "]"):
        add(text)
    # Siblings the allow-list does not know, and values it does not allow.
    syslog = {"Name": "syslog", "Options": {"syslog-address": "tcp://127.0.0.1:9"}}
    foreign = [n.user_swarm_network_prefix + "ann", "ingress", "docker_gwbridge", "host", n.network]
    for where, key, value in [
        (spec_at, "Privileges", privileges), (spec_at, "CapabilityAdd", ["SYS_ADMIN"]),
        (spec_at, "Capabilities", ["CAP_SYS_ADMIN"]),
        (spec_at, "Sysctls", {"net.ipv4.ip_forward": "1"}),
        (spec_at, "Devices", [{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem"}]),
        (spec_at, "Ulimits", [{"Name": "nproc", "Soft": -1, "Hard": -1}]), (spec_at, "User", "0"),
        (spec_at, "Groups", ["0", "docker"]), (spec_at, "Isolation", "hyperv"),
        (spec_at, "Hosts", ["127.0.0.1 evil"]), (spec_at, "Hostname", "node1"),
        (spec_at, "Secrets", [{"SecretName": "x"}]), (spec_at, "Configs", [{"ConfigName": "x"}]),
        (spec_at, "Image", "evil/miner:latest"),
        (spec_at, "Labels", n.labels(ROLE_USER_SERVER, **{"io.hubd.role": "hub"})),
        (task_at, "Placement", {
            "Constraints": [f"node.id=={node1.node_id}"],
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.id"}}],
        }),
        (task_at, "Placement", {"Constraints": ["node.role==manager"], "MaxReplicas": 9}),
        (task_at, "Placement", {"Platforms": [{"OS": "linux"}]}),
        (task_at, "placement", {"Constraints": [f"node.id=={node1.node_id}"]}),
        (task_at, "LogDriver", syslog), (task_at, "logDriver", syslog),
        (task_at, "LogDriver", {"Name": "json-file", "Options": {"max-size": "1"}}),
        (task_at, "Runtime", "plugin"), (task_at, "PluginSpec", {"Name": "evil"}),
        (task_at, "NetworkAttachmentSpec", {"ContainerID": n.hub_container}),
        (limits_at, "Pids", 10**6),
        (resources_at, "Reservations", {"GenericResources": [
            {"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "fake0"}}
        ]}),
        ([], "EndpointSpec", {"Mode": "vip", "Ports": [{"TargetPort": 8888, "PublishedPort": 80}]}),
        ([], "endpointSpec", {"Ports": [{"TargetPort": 22, "PublishedPort": 2222}]}),
        ([], "EndpointSpec", {"Mode": "dnsrr", "ports": [{"TargetPort": 22}]}),
        ([], "Networks", [{"Target": "ingress"}]),
        ([], "Mode", {"Global": {}}), ([], "Mode", {"Replicated": {"Replicas": 5}}),
        ([], "Mode", {"ReplicatedJob": {}}), ([], "UpdateConfig", {"Parallelism": 1}),
        ([], "Labels", {}), ([], "Name", f"{n.user_container_prefix}-ann"),
        ([], "Name", n.hub_container), ([], "Name", "postgres"),
    ]:  # fmt: skip
        add(twin(base, where, key, value))
    for network in foreign:
        add(twin(base, task_at, "Networks", [{"Target": network}]))
        add(twin(base, task_at, "Networks", [{"Target": n.user_swarm_network_prefix + "mallory"},
                                             {"Target": network}]))  # fmt: skip
    add(twin(base, task_at, "Networks", [{"Target": foreign[0], "target": "x", "Aliases": ["a"]}]))
    # Pre-1.24 and odd API version prefixes, with a bind of / (a real service would need 1.24).
    body = twin(base, spec_at, "Mounts", [root])
    for prefix in (
        "/v1.23",
        "/v1.12",
        "/v1.0",
        "/v1.18",
        "/v2.41",
        "/v1.41.0",
        "/v",
        "/v1",
        "//v1.41",
    ):
        add(body, f"{prefix}/services/create")
    add(json.dumps(base), "/v1.23/services/create")
    add(json.dumps(base), "/v1.12/services/create")
    # Bodies where none is expected: GET and DELETE of ann's service, the other Swarm reads.
    ann = f"{n.user_container_prefix}-ann"
    for method, path in [
        ("GET", f"/services/{ann}"), ("GET", f"/services/{ann}?insertDefaults=true"),
        ("DELETE", f"/services/{ann}"), ("POST", f"/services/{ann}/update?version=1"),
        ("GET", "/nodes"), ("GET", f"/nodes/{node1.node_id}"),
        ("GET", "/tasks?filters=" + quote(json.dumps({"service": [ann]}))),
        ("PUT", "/services/create"), ("DELETE", "/services/create"),
    ]:  # fmt: skip
        attempts.append((method, v(path), JSON, json.dumps(hostile_task)))
    # Form-encoded and untyped bodies.
    form = ["Content-Type: application/x-www-form-urlencoded"]
    add(twin(base, spec_at, "Mounts", [root]), headers=form)
    add(f"Name={ann}&TaskTemplate={json.dumps(hostile_task)}", headers=form)
    add(json.dumps(base), headers=form)
    add(body, headers=["Content-Type: text/plain"])
    add(body, headers=[])
    # Generated: every key of the service schema (and of its task and container) as a case
    # twin with a hostile value.
    danger: dict[str, Any] = {
        "Name": n.hub_container, "Labels": {}, "TaskTemplate": hostile_task,
        "Mode": {"Global": {}}, "EndpointSpec": {"Ports": [{"TargetPort": 22}]},
        "Networks": [{"Target": "ingress"}], "ContainerSpec": hostile_spec, "Resources": {},
        "Placement": {"Constraints": [f"node.id=={node1.node_id}"]}, "LogDriver": syslog,
        "Mounts": [root], "CapabilityDrop": [], "Image": "evil/miner:latest", "User": "0",
    }  # fmt: skip
    for where, schema in [
        ([], gate._SERVICE),
        (task_at, gate._TASK),
        (spec_at, gate._CONTAINER_SPEC),
    ]:
        for key in schema.fields:
            value = danger.get(key, [root])
            for spelling in {key.lower(), key.upper(), key[0].swapcase() + key[1:]}:
                add(twin(base, where, spelling, value))
    return attempts


def test_a_compromised_hub_gets_no_service_through_the_gate(lab: SwarmGateLab) -> None:
    n, manager = lab.names, lab.swarm_lab.manager_client()
    ann = f"{n.user_container_prefix}-ann"
    answers = lab.run(legit(lab))
    assert [status for status, _ in answers] == [200, 201, 201, 201, 200], answers

    states: list[str] = []

    def running() -> bool:
        states[:] = [t["Status"]["State"] for t in manager.services.get(ann).tasks()]
        return "running" in states or any(s in _TASK_ENDED for s in states)

    wait_until(running, 60, interval=0.5)  # her volume and container made on node2
    assert states == ["running"], states
    services, objects, on_node2 = lab.services(), lab.objects(), lab.node2_objects()
    spec = manager.services.get(ann).attrs["Spec"]

    attempts = breaches(lab)
    answers = lab.run(attempts)
    let_through = [
        (attempt[:2], attempt[3][:200], status, text)
        for attempt, (status, text) in zip(attempts, answers, strict=True)
        if status != 403 or "hubd's docker gate" not in text
    ]  # refused by the gate itself, not by the engine after all
    assert not let_through, let_through
    assert len(answers) > 100

    # The engines: nothing made, nothing changed.
    assert lab.services() == services
    assert manager.services.get(ann).attrs["Spec"] == spec
    assert lab.objects() == objects
    assert lab.node2_objects() == on_node2
    # The spawner's own requests still go through: ann's server removed and made again.
    again = [
        ("DELETE", v(f"/services/{ann}"), [], ""),
        ("POST", CREATE, JSON, json.dumps(lab.service("ann"))),
    ]
    assert [status for status, _ in lab.run(again)] == [200, 201]
    remade = manager.services.get(ann).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert remade["CapabilityDrop"] == ["ALL"] and "Privileges" not in remade
    assert [status for status, _ in lab.run([again[0]])] == [200]
