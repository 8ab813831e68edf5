"""Issue 28: the docker gate against a compromised hub, on the real engine.

A container on the gate's socket (as the hub is: no engine socket, no network) sends every
breach class of issue 28 and a replay of generated variants (every HostConfig key's case twin
with a hostile value, duplicates, every body-less route with a body, API version prefixes) as
raw HTTP, so that nothing a client library would tidy up is lost. Each attempt must be refused;
afterwards the host's engine shows nothing created or changed: no container, volume or network
of the stack besides the ones made legitimately, no bind of `/`, the person's container still
as created. The many more variants of the pure judging are unit-tested
(tests/unit/stack/test_docker_gate_variants.py).
"""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from hubd.config import Config
from hubd.stack.docker_gate import (
    GATE_DIR,
    GATE_PROGRAM,
    READY_LINE,
    gate_spec,
    gate_volume_name,
)
from hubd.stack.hardening import USER_PIDS_LIMIT
from hubd.stack.images import hub_context_dir
from hubd.stack.naming import LABEL_STACK, ROLE_USER_SERVER, StackNames
from hubd.timing import Timing
from tests.images.build import TestImages

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# Sends each attempt as raw HTTP on the gate's socket; prints each one's status line.
PROBE = textwrap.dedent(
    """
    import json, socket
    out = []
    for method, path, headers, body in json.load(open("/probe/attempts.json")):
        data = body.encode("utf-8", "surrogatepass")
        head = [f"{method} {path} HTTP/1.1", "Host: docker"] + headers
        if body or method == "POST":
            head.append(f"Content-Length: {len(data)}")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect("/run/hubd-gate/docker.sock")
            s.sendall(("\\r\\n".join(head) + "\\r\\n\\r\\n").encode("latin-1") + data)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        line, _, rest = answer.partition(b"\\r\\n")
        out.append([int(line.split()[1]), rest.rpartition(b"\\r\\n\\r\\n")[2].decode()[:300]])
    print(json.dumps(out))
    """
)
JSON = ["Content-Type: application/json"]


class Lab:
    def __init__(self, client: docker.DockerClient, images: TestImages, tmp: Path) -> None:
        self.client = client
        self.images = images
        self.tmp = tmp
        self.names = StackNames(f"gt{secrets.token_hex(3)}")
        self.config = Config(stack_name=self.names.stack, user_image=images.user)

    def run(self, attempts: list[tuple[str, str, list[str], str]]) -> list[tuple[int, str]]:
        """Send `attempts` from a container that has only the gate's socket (like the hub)."""
        (self.tmp / "attempts.json").write_text(json.dumps(attempts))
        output = self.client.containers.run(
            self.images.hub_base,
            ["python3", "-c", PROBE],
            entrypoint=[],
            network_mode="none",
            volumes={
                gate_volume_name(self.names): {"bind": GATE_DIR, "mode": "rw"},
                str(self.tmp): {"bind": "/probe", "mode": "ro"},
            },
            cap_drop=["ALL"],
            remove=True,
        )
        return [(status, text) for status, text in json.loads(output.decode().splitlines()[-1])]

    def objects(self) -> dict[str, set[str]]:
        """The stack's containers, volumes and networks on the host's engine, by name (the
        low-level listings: other tests' containers may come and go meanwhile)."""
        api, wanted = self.client.api, {"name": [self.names.stack]}
        return {
            "containers": {
                c["Names"][0].lstrip("/") for c in api.containers(all=True, filters=wanted)
            },
            "volumes": {v["Name"] for v in api.volumes(filters=wanted)["Volumes"] or []},
            "networks": {n["Name"] for n in api.networks(filters=wanted)},
        }

    def remove_all(self) -> None:
        found = self.objects()
        for name in found["containers"]:
            self.client.api.remove_container(name, force=True)
        for name in found["networks"]:
            self.client.api.remove_network(name)
        for name in found["volumes"]:
            self.client.api.remove_volume(name, force=True)


@pytest.fixture(scope="module")
def lab(
    docker_client: docker.DockerClient,
    test_images: TestImages,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    """The gate (this worktree's program) of a stack of its own, with nothing else."""
    lab = Lab(docker_client, test_images, tmp_path_factory.mktemp("gate"))
    try:
        start_gate(lab, "/var/run/docker.sock")
        yield lab
    finally:
        lab.remove_all()


def start_gate(lab: Lab, engine_socket: str, swarm: bool = False) -> None:
    """Start the gate of `lab`'s stack (this worktree's program) on `lab.client`'s engine,
    whose socket is `engine_socket` on the host; until it listens."""
    spec = gate_spec(
        lab.config, lab.names, lab.images.hub_base, engine_socket, Timing(), swarm=swarm
    )
    spec["volumes"][str(hub_context_dir() / "docker_gate.py")] = {
        "bind": GATE_PROGRAM,
        "mode": "ro",
    }
    lab.client.volumes.create(gate_volume_name(lab.names))
    gate = lab.client.containers.create(**{**spec, "entrypoint": []})
    gate.start()
    for _ in range(600):
        if READY_LINE in bytes(gate.logs()):
            break
        gate.reload()
        assert gate.status == "running", gate.logs()
        time.sleep(0.1)


def create_body(lab: Lab, person: str = "ann", **host: Any) -> dict[str, Any]:
    n = lab.names
    return {
        "Image": lab.config.user_image,
        "Labels": n.labels(ROLE_USER_SERVER),
        "Cmd": ["sleep", "600"],
        "Entrypoint": ["/bin/sh", "-c", 'exec "$@"', "-"],
        "HostConfig": {
            "NetworkMode": f"{n.user_network_prefix}{person}",
            "PidsLimit": USER_PIDS_LIMIT,
            "SecurityOpt": ["no-new-privileges:true"],
            "CapDrop": ["ALL"],
            "Binds": [f"{n.user_volume(person)}:/home/jovyan/work:rw"],
            **host,
        },
    }


def with_twin(body: dict[str, Any], where: list[str], key: str, value: Any) -> str:
    """`body` as JSON text with `key` (a twin of an allowed key) added at `where`."""
    target = body
    for step in where:
        target = target[step]
    target[key] = value
    return json.dumps(body)


def v(path: str) -> str:
    return f"/v1.41{path}"


def legit(lab: Lab) -> list[tuple[str, str, list[str], str]]:
    """What DockerSpawner does, for ann: must all go through."""
    n = lab.names
    labels = {LABEL_STACK: n.stack}
    return [
        ("GET", "/_ping", [], ""),
        (
            "POST",
            v("/volumes/create"),
            JSON,
            json.dumps({"Name": n.user_volume("ann"), "Labels": labels}),
        ),
        (
            "POST",
            v("/networks/create"),
            JSON,
            json.dumps(
                {"Name": f"{n.user_network_prefix}ann", "Labels": labels, "Driver": "bridge"}
            ),
        ),
        (
            "POST",
            v(f"/containers/create?name={n.user_container_prefix}-ann"),
            JSON,
            json.dumps(create_body(lab)),
        ),
        ("GET", v(f"/containers/{n.user_container_prefix}-ann/json"), [], ""),
    ]


def breaches(lab: Lab) -> list[tuple[str, str, list[str], str]]:
    """Every breach class of issue 28, then generated variants."""
    n = lab.names
    ann = f"{n.user_container_prefix}-ann"
    create = v(f"/containers/create?name={n.user_container_prefix}-mallory")
    mallory = "mallory"
    labels = {LABEL_STACK: n.stack}
    root_bind = {"Type": "volume", "Source": n.user_volume(mallory), "Target": "/w"}
    attempts: list[tuple[str, str, list[str], str]] = []

    def add_create(text: str, path: str = create) -> None:
        attempts.append(("POST", path, JSON, text))

    # Mounts with lower-case twins: a bind of / and of the engine's socket.
    add_create(
        json.dumps(create_body(lab, mallory, Mounts=[{**root_bind, "type": "bind", "source": "/"}]))
    )
    add_create(
        json.dumps(
            create_body(
                lab,
                mallory,
                Mounts=[{**root_bind, "type": "bind", "source": "/var/run/docker.sock"}],
            )
        )
    )
    # Volumes with driver options in a twin: a host folder as a person's volume.
    for twin in ("driveropts", "DRIVEROPTS", "DriverOpts"):
        attempts.append(
            (
                "POST",
                v("/volumes/create"),
                JSON,
                json.dumps(
                    {
                        "Name": n.user_volume(mallory),
                        "Labels": labels,
                        twin: {"type": "none", "o": "bind", "device": "/etc"},
                    }
                ),
            )
        )
    # A start with a body, in the old API (HostConfig applied) and the current one.
    start_body = json.dumps({"Binds": ["/:/host"], "CapAdd": ["SYS_ADMIN"], "PidMode": "host"})
    for prefix in ("/v1.23", "/v1.12", "/v1.41", ""):
        attempts.append(("POST", f"{prefix}/containers/{ann}/start", JSON, start_body))
    # HostConfig fields emptied by twins; HostConfig dropped; networking twins.
    for key, value in [
        ("capdrop", []), ("securityopt", []), ("pidslimit", 0), ("maskedPaths", []),
        ("readonlyPaths", []), ("networkmode", ""), ("networkMode", "host"), ("privileged", True),
        ("pidmode", "host"), ("binds", ["/:/host"]), ("capadd", ["SYS_ADMIN"]),
        ("CapAdd", ["SYS_ADMIN"]), ("MaskedPaths", []), ("Privileged", True),
    ]:  # fmt: skip
        add_create(with_twin(create_body(lab, mallory), ["HostConfig"], key, value))
    add_create(with_twin(create_body(lab, mallory), [], "hostconfig", None))
    add_create(
        with_twin(
            create_body(lab, mallory), [], "networkingconfig", {"endpointsconfig": {n.network: {}}}
        )
    )
    add_create(
        with_twin(
            create_body(lab, mallory), [], "NetworkingConfig", {"endpointsconfig": {n.network: {}}}
        )
    )
    # A form-encoded pull: the query judged, the body used.
    form = ["Content-Type: application/x-www-form-urlencoded"]
    repo, _, tag = lab.config.user_image.rpartition(":")
    attempts.append(
        (
            "POST",
            v(f"/images/create?fromImage={repo}&tag={tag}"),
            form,
            "fromImage=alpine&tag=latest",
        )
    )
    attempts.append(
        (
            "POST",
            v(f"/images/create?fromImage={repo}&tag={tag}"),
            form,
            "fromSrc=http://127.0.0.1:1/x&repo=evil",
        )
    )
    attempts.append(("POST", v(f"/images/create?fromImage={repo}&tag={tag}"), JSON, "{}"))
    # networks/connect with a twin: a foreign container joins a person's network.
    net = v(f"/networks/{n.user_network_prefix}ann/connect")
    attempts.append(
        ("POST", net, JSON, json.dumps({"Container": n.hub_container, "container": ann}))
    )
    attempts.append(("POST", net, JSON, json.dumps({"Container": ann})))
    # A log driver that connects from the host.
    syslog = {"Type": "syslog", "Config": {"syslog-address": "tcp://127.0.0.1:9"}}
    add_create(json.dumps(create_body(lab, mallory, LogConfig=syslog)))
    add_create(with_twin(create_body(lab, mallory), ["HostConfig"], "logconfig", syslog))
    add_create(
        json.dumps(
            create_body(lab, mallory, LogConfig={"Type": "json-file", "Config": {"max-size": "1"}})
        )
    )
    # Blank first values; names by prefix only.
    attempts.append(
        (
            "POST",
            v(f"/containers/create?name=&name={n.user_container_prefix}-mallory"),
            JSON,
            json.dumps(create_body(lab, mallory)),
        )
    )
    attempts.append(
        (
            "POST",
            v(f"/containers/create?name={n.user_container_prefix}-mallory&name=x"),
            JSON,
            json.dumps(create_body(lab, mallory)),
        )
    )
    for name in (
        f"{n.user_volume(mallory)}_x",
        f"{n.user_volume('')}",
        f"{n.user_volume(mallory)}.",
        f"{n.user_volume('MAL')}",
    ):
        attempts.append(
            ("POST", v("/volumes/create"), JSON, json.dumps({"Name": name, "Labels": labels}))
        )
    # Exact duplicates (Go keeps the last) and the Kelvin sign (Go folds it to k).
    body = json.dumps(create_body(lab, mallory))
    add_create(body[:-1] + ', "HostConfig": {"Binds": ["/:/host"], "NetworkMode": "host"}}')
    add_create(body.replace('"CapDrop"', '"CapDrop": [], "CapDrop"'))
    add_create(with_twin(create_body(lab, mallory), ["HostConfig"], "Networ\u212aMode", "host"))
    add_create(with_twin(create_body(lab, mallory), ["HostConfig"], "Bind\u017f", ["/:/host"]))
    add_create(with_twin(create_body(lab, mallory), ["HostConfig"], "\u017fecurityOpt", []))
    add_create(with_twin(create_body(lab, mallory), ["HostConfig"], "Pid\u017fLimit", 0))
    # Generated: every HostConfig key and top-level key of the allow-list, lower-cased,
    # with a hostile value.
    from tests.unit.stack.test_docker_gate import gate  # the gate's own allow-list

    for key in gate._HOST_CONFIG.fields:
        add_create(with_twin(create_body(lab, mallory), ["HostConfig"], key.lower(), ["/:/host"]))
    for key in gate._CREATE.fields:
        add_create(with_twin(create_body(lab, mallory), [], key.upper(), None))
    # Every body-less route with a body, every method where none is expected.
    for route in gate.ROUTES:
        if route.body is None and not route.swarm:
            path = "/" + route.pattern.replace("{id}", ann).replace(
                "{ref*}", lab.config.user_image
            ).replace(
                "{name}",
                f"{n.user_network_prefix}ann"
                if "networks" in route.pattern
                else n.user_volume("ann"),
            )
            attempts.append((route.method, v(path), JSON, start_body))
    for method in ("PUT", "PATCH", "DELETE"):
        attempts.append(
            (method, v("/containers/create"), JSON, json.dumps(create_body(lab, mallory)))
        )
    # API version prefixes.
    for prefix in ("/v1.0", "/v1.18", "/v1.23", "/v2.41", "/v1.41.0", "/v", "/v1"):
        attempts.append(
            (
                "POST",
                f"{prefix}/containers/create?name={n.user_container_prefix}-mallory",
                JSON,
                json.dumps(create_body(lab, mallory, Binds=["/:/host"])),
            )
        )
    # Framing: chunked, two lengths.
    attempts.append(("POST", create, [*JSON, "Transfer-Encoding: chunked"], ""))
    attempts.append(
        ("POST", create, [*JSON, "Content-Length: 5"], json.dumps(create_body(lab, mallory)))
    )
    return attempts


def test_a_compromised_hub_gets_nothing_through_the_gate(lab: Lab) -> None:
    n = lab.names
    answers = lab.run(legit(lab))
    assert [status for status, _ in answers] == [200, 201, 201, 201, 200], answers
    ann = lab.client.containers.get(f"{n.user_container_prefix}-ann")
    before = lab.objects()
    attrs_before = ann.attrs

    attempts = breaches(lab)
    answers = lab.run(attempts)
    let_through = [
        (attempt[:2], status, text)
        for attempt, (status, text) in zip(attempts, answers, strict=True)
        if status != 403 or "hubd's docker gate" not in text
    ]  # refused by the gate itself, not by the engine after all
    assert not let_through, let_through
    assert len(answers) > 100

    # The host's engine: nothing made, nothing changed.
    assert lab.objects() == before
    ann.reload()
    assert ann.status == "created"
    assert ann.attrs["HostConfig"] == attrs_before["HostConfig"]
    network = lab.client.networks.get(f"{n.user_network_prefix}ann")
    assert not network.attrs.get("Containers")
    volume = lab.client.volumes.get(n.user_volume("ann"))
    assert not volume.attrs.get("Options")
    for name in lab.objects()["containers"]:
        mounts = lab.client.api.inspect_container(name).get("Mounts") or []
        assert "/" not in [m.get("Source") for m in mounts], name
    # The one legitimate start (no body) still works afterwards.
    assert lab.run([("POST", v(f"/containers/{ann.name}/start"), [], "")])[0][0] == 204
