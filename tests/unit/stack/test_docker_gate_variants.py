"""The docker gate against generated variants of what DockerSpawner sends.

The engine decodes bodies with Go's encoding/json (keys match struct fields ignoring case, the
last duplicate wins, unknown keys are ignored). For every key of the gate's allow-list at every
nesting level: its case variants, a duplicate, null, empty values and unknown siblings; every
method with a body where none is expected; every API version prefix; repeated and blank query
parameters. Whatever is let through, the body sent on is the gate's own: only allowed keys,
exactly spelled, and still within the policy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubd.stack.docker_gate import gate_policy
from tests.unit.stack import test_docker_gate as plain
from tests.unit.stack import test_docker_gate_class as klass
from tests.unit.stack import test_docker_gate_swarm as swarm
from tests.unit.stack.test_docker_gate import CONFIG, NAMES, OURS, gate

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
STACK = {"io.hubd.stack": "home"}
Path = tuple[Any, ...]


def full_create() -> dict[str, Any]:
    """A create body with every nested object of the allow-list present (and allowed)."""
    body = plain.create_body()
    host = body["HostConfig"]
    host["Mounts"] = [
        {"Type": "volume", "Source": "home-home-ann", "Target": "/x", "ReadOnly": False}
    ]
    host["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    host["LogConfig"] = {"Type": "json-file"}
    host["IpcMode"] = "private"
    body["NetworkingConfig"] = {"EndpointsConfig": {"home-unet-ann": {}}}
    body["Entrypoint"] = ["tini"]
    body["StopSignal"] = "SIGTERM"
    return body


def gpu_create() -> dict[str, Any]:
    """A GPU image's server, which alone may ask for the machine's GPUs."""
    body = full_create()
    body["Image"] = "gpu:1"
    body["HostConfig"]["DeviceRequests"] = copy.deepcopy(klass.GPU)
    return body


def full_service() -> dict[str, Any]:
    body = swarm.service_body()
    body["Mode"] = {"replicated": {"Replicas": 1}}
    task = body["TaskTemplate"]
    task["LogDriver"] = {"Name": "json-file"}
    task["RestartPolicy"].update({"Delay": 1, "MaxAttempts": 0, "Window": 0})
    task["Resources"]["Limits"]["NanoCPUs"] = 10**9
    task["Resources"]["Reservations"]["MemoryBytes"] = 1
    task["Runtime"] = "container"
    task["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["NoCopy"] = False
    return body


# (method, path, query, full body, schema, judge)
BODIES: dict[str, tuple[str, str, dict[str, str], Any, Any, Any]] = {
    "container": (
        "POST",
        "/containers/create",
        {"name": "home-user-ann"},
        full_create(),
        gate._CREATE,
        plain.judge,
    ),
    "volume": (
        "POST",
        "/volumes/create",
        {},
        {"Name": "home-home-ann", "Labels": dict(STACK), "Driver": "local"},
        gate._VOLUME,
        plain.judge,
    ),
    "network": (
        "POST",
        "/networks/create",
        {},
        {"Name": "home-unet-ann", "Labels": dict(STACK), "Driver": "bridge", "Internal": False},
        gate._NETWORK,
        plain.judge,
    ),
    "connect": (
        "POST",
        "/networks/home-unet-ann/connect",
        {},
        {"Container": "home-hub"},
        gate._CONNECT,
        plain.judge,
    ),
    "service": ("POST", "/services/create", {}, full_service(), gate._SERVICE, swarm.judge),
    # A class (people's /29s from hubd's block, GPUs for GPU images).
    "gpu-container": (
        "POST",
        "/containers/create",
        {"name": "home-user-ann"},
        gpu_create(),
        gate._CREATE,
        klass.judge,
    ),
    "block-network": (
        "POST",
        "/networks/create",
        {},
        json.loads(json.dumps(klass.network_body(klass.pool("10.200.3.8/29")))),
        gate._NETWORK,
        klass.judge,
    ),
}


def run(kind: str, body: Any, raw: str | None = None) -> Any:
    """Judge `body` (or the raw JSON text `raw`, parsed the gate's way); the body sent on."""
    method, path, query, _, _, judge = BODIES[kind]
    if raw is not None:
        body = gate.parse_json(raw.encode())
    request = gate.Request(method, path, {k: [v] for k, v in query.items()}, body)
    return judge().check(request).body


def struct_paths(schema: Any, value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, Struct) of the allow-list that is present in `value`."""
    if isinstance(schema, gate.Struct) and isinstance(value, dict):
        yield path, schema
        for key, spec in schema.fields.items():
            for spelled in (key, *spec.spellings):
                if spelled in value and spec.schema is not None:
                    yield from struct_paths(spec.schema, value[spelled], (*path, spelled))
    elif isinstance(schema, gate.ListOf) and isinstance(value, list):
        for n, item in enumerate(value):
            yield from struct_paths(schema.item, item, (*path, n))
    elif isinstance(schema, gate.MapOf) and isinstance(value, dict):
        for key, item in value.items():
            yield from struct_paths(schema.value, item, (*path, key))


def at(body: Any, path: Path) -> Any:
    for step in path:
        body = body[step]
    return body


STRUCTS = [
    (kind, path)
    for kind, (_, _, _, body, schema, _) in BODIES.items()
    for path, _ in struct_paths(schema, body)
]
CASES = [
    (kind, path, key)
    for kind, (_, _, _, body, schema, _) in BODIES.items()
    for path, struct in struct_paths(schema, body)
    for key in struct.fields
]


def case_variants(key: str) -> st.SearchStrategy[str]:
    """Spellings of `key` that Go's encoding/json reads as the same field (including the
    Kelvin sign and the long s, which fold to k and s)."""

    def spell(flags: list[int]) -> str:
        out = []
        for char, flag in zip(key, flags, strict=False):
            if flag == 2 and char in "kK":
                out.append("\u212a")
            elif flag == 2 and char in "sS":
                out.append("\u017f")
            else:
                out.append(char.swapcase() if flag else char)
        return "".join(out)

    return st.lists(st.integers(0, 2), min_size=len(key), max_size=len(key)).map(spell)


HOSTILE = st.one_of(
    st.none(),
    st.just(""),
    st.just([]),
    st.just({}),
    st.just(0),
    st.just(["/:/host"]),
    st.just({"Type": "bind", "Source": "/", "Target": "/host"}),
    st.just("host"),
    st.just(True),
)


def allowed_spellings(kind: str, path: Path) -> set[str]:
    struct = dict(struct_paths(BODIES[kind][4], BODIES[kind][3]))[path]
    return {s for key, f in struct.fields.items() for s in (key, *f.spellings)}


def test_every_full_body_is_let_through_and_sent_as_its_own_shape() -> None:
    for kind, (_, _, _, body, schema, _) in BODIES.items():
        sent = run(kind, copy.deepcopy(body))
        assert schema.clean(sent, "again") == sent, kind  # only allowed keys, exactly spelled
        assert run(kind, None, json.dumps(body)) == sent


def test_the_variants_cover_every_nested_object() -> None:
    covered = set(STRUCTS)
    assert ("container", ("HostConfig", "Mounts", 0)) in covered
    assert ("container", ("NetworkingConfig", "EndpointsConfig", "home-unet-ann")) in covered
    assert ("service", ("TaskTemplate", "ContainerSpec", "Mounts", 0, "VolumeOptions")) in covered
    assert ("service", ("TaskTemplate", "Resources", "Reservations", "GenericResources", 0)) in (
        covered
    )
    # Every object of the allow-list is in a full body, so every key of it is varied.
    present = {
        id(struct)
        for _, (_, _, _, body, schema, _) in BODIES.items()
        for _, struct in struct_paths(schema, body)
    }
    missing = [s.name or sorted(s.fields) for s in all_structs() if id(s) not in present]
    assert not missing, missing


def all_structs() -> list[Any]:
    found: dict[int, Any] = {}

    def walk(schema: Any) -> None:
        if isinstance(schema, gate.Struct) and id(schema) not in found:
            found[id(schema)] = schema
            for spec in schema.fields.values():
                if spec.schema is not None:
                    walk(spec.schema)
        elif isinstance(schema, gate.ListOf):
            walk(schema.item)
        elif isinstance(schema, gate.MapOf):
            walk(schema.value)

    for route in gate.ROUTES:
        if route.body is not None:
            walk(route.body)
    return list(found.values())


def fixed_variants(key: str) -> set[str]:
    variants = {key.lower(), key.upper(), key.swapcase(), key[:1].swapcase() + key[1:]}
    variants.add(key.replace("k", "\u212a").replace("K", "\u212a"))
    variants.add(key.replace("s", "\u017f").replace("S", "\u017f"))
    return variants


def refuses_variant(kind: str, path: Path, variant: str, value: Any) -> None:
    body = copy.deepcopy(BODIES[kind][3])
    at(body, path)[variant] = value
    with pytest.raises(gate.Refused, match=r"only by case|duplicate"):
        run(kind, body)
    # Sent as text the object hook sees the twin first when the original is there too.
    with pytest.raises(gate.Refused, match=r"only by case|duplicate"):
        run(kind, None, json.dumps(body))


@pytest.mark.parametrize("kind, path, key", CASES)
def test_every_key_of_the_allow_list(kind: str, path: Path, key: str) -> None:
    """Its case variants and a duplicate are refused; null and empty values are refused where
    the key is needed, and otherwise never sent on."""
    case_variants_are_refused(kind, path, key)
    a_duplicate_is_refused(kind, path, key)
    empty: Any
    for empty in (None, "", 0, False, [], {}):
        null_or_empty(kind, path, key, empty)


def case_variants_are_refused(kind: str, path: Path, key: str) -> None:
    value: Any
    for variant in fixed_variants(key) - allowed_spellings(kind, path):
        for value in (None, "", ["/:/host"]):
            refuses_variant(kind, path, variant, value)


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_generated_case_variants_are_refused(data: st.DataObject) -> None:
    kind, path, key = data.draw(st.sampled_from(CASES))
    allowed = allowed_spellings(kind, path)
    variant = data.draw(case_variants(key).filter(lambda v: v not in allowed))
    refuses_variant(kind, path, variant, data.draw(HOSTILE))


def a_duplicate_is_refused(kind: str, path: Path, key: str) -> None:
    body = copy.deepcopy(BODIES[kind][3])
    container = at(body, path)
    container.setdefault(key, None)
    marker = "\x00MARK\x00"
    container[marker] = None
    text = json.dumps(body).replace(json.dumps(marker) + ": null", f'"{key}": null')
    with pytest.raises(gate.Refused, match="duplicate"):
        run(kind, None, text)


def null_or_empty(kind: str, path: Path, key: str, empty: Any) -> None:
    body = copy.deepcopy(BODIES[kind][3])
    struct = dict(struct_paths(BODIES[kind][4], body))[path]
    container = at(body, path)
    for spelled in allowed_spellings(kind, path) - {key}:
        if spelled.casefold() == key.casefold():
            container.pop(spelled, None)
    container[key] = empty
    try:
        sent = run(kind, body)
    except gate.Refused:
        # Only a required key, or one whose absence the policy refuses (a server's own
        # network, its labels...), makes an empty value a refusal.
        assert struct.fields[key].required or _policy_needs(kind, path, key), (kind, path, key)
        return
    assert not struct.fields[key].required
    where = sent
    for step in path:
        if step not in where if isinstance(where, dict) else False:
            return  # the whole object was emptied, hence not sent
        where = where[step]
    assert where.get(key) in (None, False), (kind, path, key)  # not sent (false is the default)


def _policy_needs(kind: str, path: Path, key: str) -> bool:
    needed = {
        ("container", ("NetworkingConfig",), "EndpointsConfig"),
        ("service", ("TaskTemplate",), "Networks"),
        ("network", (), "Driver"),
        ("block-network", (), "Driver"),
        ("block-network", (), "IPAM"),  # with a block, a person's network has its /29
        ("service", ("TaskTemplate", "Networks", 0), "Target"),
    }
    return (kind, path, key) in needed or key in ("Type", "VolumeOptions", "Labels")


def refuses_sibling(kind: str, path: Path, key: str, value: Any) -> None:
    folded = {s.casefold() for s in allowed_spellings(kind, path)}
    if key.casefold() in folded:
        return
    body = copy.deepcopy(BODIES[kind][3])
    at(body, path)[key] = value
    with pytest.raises(gate.Refused, match=r"not allowed|only by case|duplicate"):
        run(kind, body)


@pytest.mark.parametrize("kind, path", STRUCTS)
def test_an_unknown_sibling_is_refused_even_empty(kind: str, path: Path) -> None:
    value: Any
    for key in ("Privileged", "MaskedPaths", "Devices", "DriverOpts", "X", ""):
        for value in (None, [], True):
            refuses_sibling(kind, path, key, value)


@settings(max_examples=300, deadline=None, database=None)
@given(where=st.sampled_from(STRUCTS), key=st.text(max_size=20), value=HOSTILE)
def test_generated_unknown_siblings_are_refused(
    where: tuple[str, Path], key: str, value: Any
) -> None:
    refuses_sibling(*where, key, value)


def _mutate(body: Any, kind: str, steps: list[tuple[int, int, Any]]) -> None:
    paths = [p for p, _ in struct_paths(BODIES[kind][4], body)]
    for pick, key_pick, value in steps:
        if not paths:
            return
        path = paths[pick % len(paths)]
        container = at(body, path)
        keys = sorted(container) or ["X"]
        container[keys[key_pick % len(keys)]] = value
        paths = [p for p, _ in struct_paths(BODIES[kind][4], body)]


@SETTINGS
@given(
    kind=st.sampled_from(sorted(BODIES)),
    steps=st.lists(
        st.tuples(
            st.integers(0, 99),
            st.integers(0, 99),
            st.one_of(HOSTILE, st.integers(-5, 10**6), st.text(max_size=12)),
        ),
        max_size=4,
    ),
)
def test_whatever_is_let_through_is_within_the_policy(
    kind: str, steps: list[tuple[int, int, Any]]
) -> None:
    body = copy.deepcopy(BODIES[kind][3])
    _mutate(body, kind, steps)
    try:
        sent = run(kind, body)
    except gate.Refused:
        return
    schema = BODIES[kind][4]
    assert schema.clean(sent, "again") == sent
    if kind == "container":
        host = sent["HostConfig"]
        assert host["NetworkMode"] == "home-unet-ann"
        assert 0 < host["PidsLimit"] <= 1024 and "ALL" in host["CapDrop"]
        assert host["SecurityOpt"] == ["no-new-privileges:true"]
        assert all(
            b.split(":")[0] in ("home-home-ann", "/srv/share") for b in host.get("Binds", [])
        )
        assert set(host) <= {k for k, f in gate._HOST_CONFIG.fields.items() if f.schema}
    if kind == "service":
        spec = sent["TaskTemplate"]["ContainerSpec"]
        assert "ALL" in spec["CapabilityDrop"]
        assert sent["TaskTemplate"]["Resources"]["Limits"]["Pids"] <= 1024


# ---------------------------------------------------------------------------- methods, versions


BODILESS = [r for r in gate.ROUTES if r.body is None]
SAMPLE_PATH = {
    "{id}": "home-user-ann",
    "{ref*}": "lab:1",
    "{name}": "home-home-ann",
}


def _path_of(route: gate.Route) -> str:
    path = str(route.pattern)
    for hole, value in SAMPLE_PATH.items():
        path = path.replace(hole, value)
    if route.pattern.startswith("networks/"):
        path = path.replace("home-home-ann", "home-unet-ann")
    if route.pattern.startswith("services/"):
        path = path.replace("{id}", "home-user-ann")
    return "/" + path


@settings(max_examples=200, deadline=None, database=None)
@given(
    route=st.sampled_from(BODILESS),
    body=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), HOSTILE, max_size=3)),
)
def test_a_body_where_none_is_expected_is_refused(route: gate.Route, body: Any) -> None:
    request = gate.Request(route.method, _path_of(route), {}, body, has_body=True)
    with pytest.raises(gate.Refused, match="takes no body"):
        swarm.judge().check(request)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("route", gate.ROUTES, ids=lambda r: f"{r.method} {r.pattern}")
def test_other_methods_on_every_path_are_refused(method: str, route: gate.Route) -> None:
    if any(r.method == method and r.pattern == route.pattern for r in gate.ROUTES):
        return
    try:
        swarm.judge().check(gate.Request(method, _path_of(route), {}, None))
    except gate.Refused as refused:
        assert "not something" in str(refused) or "not a" in str(refused)
    except gate.NotFoundHere:
        pass  # judged as another route's object (DELETE /containers/create: a container)
    else:
        raise AssertionError(f"{method} {route.pattern} let through")


@SETTINGS
@given(major=st.integers(0, 3), minor=st.integers(0, 60), junk=st.sampled_from(["", ".0", "."]))
def test_every_api_version_prefix(major: int, minor: int, junk: str) -> None:
    version = f"{major}.{minor}{junk}"
    if major == 1 and minor >= 24 and not junk:
        assert gate.strip_version(f"/v{version}/containers/create") == "/containers/create"
    else:
        with pytest.raises(gate.Refused, match="API version"):
            gate.strip_version(f"/v{version}/containers/create")


@pytest.mark.parametrize("prefix", ["/v1.23", "/v1.0", "/v", "/v1", "/v2.41", "/v1.41.", "/v01.41"])
def test_old_and_odd_versions_are_refused(prefix: str) -> None:
    with pytest.raises(gate.Refused, match="API version"):
        gate.strip_version(f"{prefix}/containers/home-user-ann/start")


@pytest.mark.parametrize(
    "query",
    [
        "name=&name=home-user-ann",
        "name=home-user-ann&name=home-user-ann",
        "name=home-user-ann&name=",
        "name=home-user-ann&Name=home-user-bo",
        "name=home-user-ann;name=x",
        "name=home-user-ann&platform=linux",
    ],
)
def test_each_query_parameter_once_and_never_blank(query: str) -> None:
    with pytest.raises(gate.Refused, match=r"once|not allowed|';'"):
        request = gate.Request(
            "POST", "/containers/create", gate.parse_query(query), plain.create_body()
        )
        plain.judge().check(request)


def test_what_is_sent_is_the_gates_own_request() -> None:
    sent = plain.judge().check(
        gate.Request("POST", "/containers/home-user-ann/stop", {"t": ["5"]}, None)
    )
    assert (sent.path, sent.query, sent.body) == (f"/containers/{'a' * 64}/stop", {"t": "5"}, None)
    connect = plain.judge().check(
        gate.Request(
            "POST",
            "/networks/home-unet-ann/connect",
            {},
            {"Container": "home-hub", "EndpointConfig": {}},
        )
    )
    assert (connect.path, connect.body) == (
        f"/networks/{'d' * 64}/connect",
        {"Container": "home-hub"},
    )
    policy = gate_policy(CONFIG, NAMES, swarm=True)
    assert policy["volume_prefix"] == "home-home-" and policy["volume_suffix"] == ""
    assert OURS["io.hubd.stack"] == "home"
