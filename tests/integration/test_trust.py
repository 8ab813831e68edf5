"""Trust boundaries, each tried for real from the side that should not get through.

One stack for the module: an admin who is not the owner, a person with a running server, and
hubd's docker gate between the hub and the engine.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator

import docker
import pytest
import requests

from hubd.stack.docker_gate import gate_container_name
from hubd.stack.hardening import USER_PIDS_LIMIT
from hubd.stack.naming import ROLE_USER_SERVER
from hubd.stack.proxy import PROXY_PUBLIC_PORT
from hubd.stack.settings import ALLOWED_FAILED_LOGINS, PROXY_API_PORT
from tests.images.build import TestImages
from tests.integration.docker_env import StackEnv, own_stack
from tests.integration.hubclient import login, login_refused, open_lab, read_file, write_file
from tests.patience import patient

pytestmark = pytest.mark.integration

PASSWORD = "tulip-orbit-candle"
NEW_PASSWORD = "granite-lantern-fox"


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    test_images: TestImages,
) -> Iterator[StackEnv]:
    with own_stack(tmp_path_factory.mktemp("trust"), docker_client, test_images) as env:
        env.hubd("up")
        add_user(env, "ada", "--admin")
        add_user(env, "bo")
        yield env


@pytest.fixture(scope="module")
def bo_server(hub: StackEnv) -> docker.models.containers.Container:
    """bo's running JupyterLab, started through the hub (and so through the docker gate)."""
    session = login(hub.base_url, "bo", PASSWORD)
    open_lab(session, hub.base_url, "bo")
    return hub.client.containers.get(f"{hub.names.user_container_prefix}-bo")


@pytest.fixture(scope="module")
def ada_server(hub: StackEnv) -> docker.models.containers.Container:
    session = login(hub.base_url, "ada", PASSWORD)
    open_lab(session, hub.base_url, "ada")
    return hub.client.containers.get(f"{hub.names.user_container_prefix}-ada")


def add_user(hub: StackEnv, name: str, *extra: str) -> None:
    hub.hubd("user", "add", "--password-stdin", *extra, "--", name, input=PASSWORD + "\n")


def admin_token(hub: StackEnv) -> str:
    """A token the admin makes for themself, as on the hub's token page."""
    return user_token(hub, "ada")


def user_token(hub: StackEnv, name: str) -> str:
    session = login(hub.base_url, name, PASSWORD)
    session.get(f"{hub.base_url}/hub/token", timeout=30)
    response = session.post(
        f"{hub.base_url}/hub/api/users/{name}/tokens",
        json={"note": "mine"},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


# ---------------------------------------------------------------------------- accounts


def test_an_admins_own_token_cannot_use_the_account_api(hub: StackEnv) -> None:
    headers = {"Authorization": f"token {admin_token(hub)}"}
    api = f"{hub.base_url}/hub/api"
    # The token is a real admin's: it may manage users the JupyterHub way ...
    assert requests.get(f"{api}/users", headers=headers, timeout=30).status_code == 200
    # ... but not make accounts, set passwords or lift lockouts: that is the owner's, via hubd.
    attempts = [
        ("POST", "/hubd/accounts", {"name": "mallory", "password": NEW_PASSWORD, "admin": True}),
        ("PUT", "/hubd/accounts/ada/password", {"password": NEW_PASSWORD}),
        ("POST", "/hubd/accounts/bo/unlock", None),
    ]
    for method, path, body in attempts:
        response = requests.request(method, api + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 403, (path, response.status_code, response.text)
        assert "only hubd's own service" in response.json()["message"]
    assert login_refused(hub.base_url, "mallory", NEW_PASSWORD)
    login(hub.base_url, "ada", PASSWORD)


def test_an_admin_does_not_get_the_owners_share_of_the_hub(hub: StackEnv) -> None:
    """Issue 28: repointing the proxy (its token would go to the admin's address), services
    (their tokens outlive the admin), accounts and admins are hubd's, not an admin's."""
    headers = {"Authorization": f"token {admin_token(hub)}"}
    api = f"{hub.base_url}/hub/api"
    attempts = [
        ("PATCH", "/proxy", {"api_url": "http://mallory.example:8001", "auth_token": "x"}),
        ("POST", "/services/mallory", {"url": "http://mallory.example:1"}),
        ("DELETE", "/services/hubd", None),
        ("POST", "/users", {"usernames": ["mallory"], "admin": True}),
        ("POST", "/users/mallory", {"admin": True}),
        ("PATCH", "/users/bo", {"admin": True}),
        ("PATCH", "/users/bo", {"name": "mallory"}),
        ("DELETE", "/users/bo", None),
        ("POST", "/shutdown", None),
    ]
    for method, path, body in attempts:
        response = requests.request(method, api + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        assert "only hubd's own service" in response.json()["message"]
    # What stays an admin's: the people and their servers, the proxy's routes (read).
    assert requests.get(f"{api}/users/bo", headers=headers, timeout=30).status_code == 200
    assert requests.get(f"{api}/proxy", headers=headers, timeout=30).status_code == 200
    services = requests.get(f"{api}/services", headers=headers, timeout=30).json()
    assert "mallory" not in services
    users = requests.get(f"{api}/users", headers=headers, timeout=30).json()
    assert {u["name"]: u["admin"] for u in users}.get("bo") is False
    assert health(hub)


def health(hub: StackEnv) -> bool:
    return bool(requests.get(f"{hub.base_url}/hub/health", timeout=30).status_code == 200)


def test_a_removed_admins_tokens_are_gone(hub: StackEnv) -> None:
    add_user(hub, "ed", "--admin")
    token = user_token(hub, "ed")
    headers = {"Authorization": f"token {token}"}
    api = f"{hub.base_url}/hub/api"
    assert requests.get(f"{api}/user", headers=headers, timeout=30).status_code == 200
    hub.hubd("user", "remove", "ed")
    for path in ("/user", "/users", "/proxy", "/services"):
        response = requests.get(api + path, headers=headers, timeout=30)
        assert response.status_code == 403, (path, response.status_code)
    # No service is anyone's but the config's: none could be made, none outlives anyone.
    others = {"Authorization": f"token {admin_token(hub)}"}
    services = requests.get(f"{api}/services", headers=others, timeout=30).json()
    assert set(services) <= {"hubd", "idle-culler"}, services


def refused_login_seconds(base_url: str, username: str) -> float:
    """How long the hub takes to refuse a login (the form's POST alone)."""
    session = requests.Session()
    session.get(f"{base_url}/hub/login", timeout=30)
    data = {"username": username, "password": "wrong-wrong-wrong"}
    data["_xsrf"] = session.cookies["_xsrf"]
    started = time.perf_counter()
    response = session.post(f"{base_url}/hub/login", data=data, allow_redirects=False, timeout=60)
    seconds = time.perf_counter() - started
    assert response.status_code != 302, response.status_code
    return seconds


def test_a_login_takes_as_long_for_an_unknown_name(hub: StackEnv) -> None:
    """Issue 28: ~590 ms for an existing name, ~15 ms for an unknown one, was an oracle for
    which names exist. Both now cost one bcrypt check. The fastest of a few tries of each (the
    least disturbed by a loaded machine) must be comparable: the bounds are wide for load,
    and still far from the 40-fold gap they catch."""
    add_user(hub, "tim")
    known, unknown = [], []
    for _ in range(3):  # fewer than the lockout's allowed failed logins
        known.append(refused_login_seconds(hub.base_url, "tim"))
        unknown.append(refused_login_seconds(hub.base_url, "nobody-by-this-name"))
    ratio = min(known) / min(unknown)
    print(f"login refused: known {min(known) * 1000:.0f} ms, unknown {min(unknown) * 1000:.0f} ms")
    assert 0.25 < ratio < 4, (known, unknown)
    login(hub.base_url, "tim", PASSWORD)


def test_native_pages_hubd_does_not_use_are_gone(hub: StackEnv) -> None:
    session = login(hub.base_url, "ada", PASSWORD)
    for path in [
        "/hub/signup",
        "/hub/authorize",
        "/hub/authorize/bo",
        "/hub/discard/bo",
        "/hub/confirm/whatever",
        "/hub/change-password/bo",
    ]:
        response = session.get(hub.base_url + path, timeout=30, allow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
    # The person's own change-password page stays.
    own = session.get(f"{hub.base_url}/hub/change-password", timeout=30)
    assert own.status_code == 200


def test_passwd_repairs_a_deauthorized_account(hub: StackEnv) -> None:
    add_user(hub, "cy")
    hub_container = hub.client.containers.get(hub.names.hub_container)
    deauthorize = textwrap.dedent(
        """
        import sqlite3
        db = sqlite3.connect("/srv/jupyterhub/data/jupyterhub.sqlite")
        db.execute("UPDATE users_info SET is_authorized = 0 WHERE username = 'cy'")
        db.commit()
        """
    )
    assert hub_container.exec_run(["python3", "-c", deauthorize]).exit_code == 0
    assert login_refused(hub.base_url, "cy", PASSWORD)
    hub.hubd("user", "passwd", "cy", "--password-stdin", input=NEW_PASSWORD + "\n")
    login(hub.base_url, "cy", NEW_PASSWORD)


def test_owner_unlocks_an_account_a_stranger_keeps_locked(hub: StackEnv) -> None:
    add_user(hub, "dee")
    assert hub.hubd("user", "unlock", "dee").stdout.strip() == "dee was not locked out"
    for _ in range(ALLOWED_FAILED_LOGINS):
        assert login_refused(hub.base_url, "dee", "wrong-wrong-wrong")
    assert login_refused(hub.base_url, "dee", PASSWORD)  # locked: even the right password
    assert hub.hubd("user", "unlock", "dee").stdout.strip() == "unlocked dee"
    login(hub.base_url, "dee", PASSWORD)
    # The lockout itself is unchanged for the stranger.
    for _ in range(ALLOWED_FAILED_LOGINS):
        assert login_refused(hub.base_url, "dee", "wrong-wrong-wrong")
    assert login_refused(hub.base_url, "dee", PASSWORD)
    missing = hub.hubd("user", "unlock", "nobody", check=False)
    assert missing.returncode != 0 and "there is no user 'nobody'" in missing.stderr


# ---------------------------------------------------------------------------- people's containers


def test_a_users_container_is_confined(
    hub: StackEnv, bo_server: docker.models.containers.Container
) -> None:
    host = bo_server.attrs["HostConfig"]
    assert host["PidsLimit"] == USER_PIDS_LIMIT
    assert host["Memory"] >= 1024**3  # sized from the engine's memory
    status = bo_server.exec_run(["cat", "/proc/self/status"]).output.decode()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapBnd"], 16) == 0 and int(fields["CapEff"], 16) == 0
    # Neither the engine's socket nor the gate's is anywhere in the container.
    found = bo_server.exec_run(["sh", "-c", "find / -xdev -type s 2>/dev/null; echo done"])
    assert found.output.decode().split() == ["done"]


CONNECT = textwrap.dedent(
    """
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
        print("connected")
    except OSError as exc:
        print("refused", type(exc).__name__)
    """
)


def can_connect(container: docker.models.containers.Container, host: str, port: int) -> bool:
    # docker-py is untyped: exec_run's output is bytes (no stream, no demux).
    output: bytes = container.exec_run(["python3", "-c", CONNECT, host, str(port)]).output
    return output.decode().startswith("connected")


def test_one_persons_container_cannot_reach_anothers(
    hub: StackEnv,
    bo_server: docker.models.containers.Container,
    ada_server: docker.models.containers.Container,
) -> None:
    ada_server.reload()
    (ada_network,) = ada_server.attrs["NetworkSettings"]["Networks"].values()
    ada_ip = ada_network["IPAddress"]
    hub_container = hub.client.containers.get(hub.names.hub_container)
    # The hub (the proxy) reaches ada's server: the address and port are right ...
    assert can_connect(hub_container, ada_ip, 8888)
    # ... bo's container does not, neither by address nor by name.
    assert not can_connect(bo_server, ada_ip, 8888)
    assert not can_connect(bo_server, ada_server.name, 8888)
    # bo's network holds bo's server, the hub and the two proxies, nothing else.
    (bo_network_name,) = bo_server.attrs["NetworkSettings"]["Networks"]
    bo_network = hub.client.networks.get(bo_network_name)
    stack = {hub_container.name, hub.names.proxy_container, hub.names.proxy_standby_container}
    assert {c.name for c in bo_network.containers} == {bo_server.name, *stack}
    assert bo_network_name == f"{hub.names.user_network_prefix}bo"


@pytest.mark.usefixtures("ada_server")  # the proxy on two people's networks
def test_a_persons_container_cannot_reach_the_proxys_api(
    hub: StackEnv, bo_server: docker.models.containers.Container
) -> None:
    """The proxy joins everyone's network to reach their servers; its API must stay out of
    their reach all the same, whichever way they address it."""
    names = hub.names
    proxy = hub.client.containers.get(names.proxy_container)
    networks = proxy.attrs["NetworkSettings"]["Networks"]
    addresses = {name: network["IPAddress"] for name, network in networks.items()}
    bo_network = f"{names.user_network_prefix}bo"
    assert {names.network, bo_network} <= set(addresses), addresses
    hub_container = hub.client.containers.get(names.hub_container)
    # The hub reaches the API by its alias and on the stack network's address ...
    assert can_connect(hub_container, names.proxy_api_alias, PROXY_API_PORT)
    assert can_connect(hub_container, addresses[names.network], PROXY_API_PORT)
    # ... and nowhere else: on people's networks the proxy only serves its public port.
    assert not can_connect(hub_container, addresses[bo_network], PROXY_API_PORT)
    # bo reaches the proxy's public port on bo's network (the address is right) ...
    assert can_connect(bo_server, addresses[bo_network], PROXY_PUBLIC_PORT)
    assert can_connect(bo_server, names.proxy_container, PROXY_PUBLIC_PORT)
    # ... but its API neither by name, by alias nor by any of its addresses; nor the
    # standby's, its twin on the same networks.
    standby = hub.client.containers.get(names.proxy_standby_container)
    standby_networks = standby.attrs["NetworkSettings"]["Networks"]
    assert bo_network in standby_networks
    targets = [
        names.proxy_container,
        names.proxy_api_alias,
        *addresses.values(),
        names.proxy_standby_container,
        *(network["IPAddress"] for network in standby_networks.values()),
    ]
    reached = [target for target in targets if can_connect(bo_server, target, PROXY_API_PORT)]
    assert reached == [], reached


FORK_LOOP = textwrap.dedent(
    """
    import errno, os, signal, time
    kids, failure = [], None
    for _ in range(3000):
        try:
            pid = os.fork()
        except OSError as exc:
            failure = exc.errno
            break
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        kids.append(pid)
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
    for pid in kids:
        os.waitpid(pid, 0)
    print(len(kids), failure == errno.EAGAIN)
    """
)


def test_a_fork_bomb_hits_the_pid_limit_and_the_hub_stays_fine(
    hub: StackEnv, bo_server: docker.models.containers.Container
) -> None:
    result = bo_server.exec_run(["python3", "-c", FORK_LOOP], user="1000")
    forked, hit_the_limit = result.output.decode().split()
    assert hit_the_limit == "True" and int(forked) < USER_PIDS_LIMIT, result.output
    assert requests.get(f"{hub.base_url}/hub/health", timeout=10).status_code == 200
    session = login(hub.base_url, "bo", PASSWORD)
    open_lab(session, hub.base_url, "bo")  # bo's own Lab still answers


# ---------------------------------------------------------------------------- the docker gate


GATE_PROBE = textwrap.dedent(
    """
    import json, os, sys
    import docker
    s = json.loads(sys.argv[1])
    api = docker.APIClient(version="auto", **docker.utils.kwargs_from_env())
    hardened = dict(
        network_mode=s["network"], pids_limit=s["pids"],
        security_opt=["no-new-privileges:true"], cap_drop=["ALL"],
    )
    def create(**host):
        return api.create_container(
            s["image"], name=s["prefix"] + "-mallory", labels=s["labels"],
            host_config=api.create_host_config(**{**hardened, **host}),
        )
    tries = {
        "privileged": lambda: create(privileged=True),
        "bind_root": lambda: create(binds={"/": {"bind": "/host", "mode": "rw"}}),
        "engine_socket": lambda: create(
            binds={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
        ),
        "cap_add": lambda: create(cap_add=["SYS_ADMIN"]),
        "foreign_inspect": lambda: api.inspect_container(s["foreign"]),
        "foreign_stop": lambda: api.stop(s["foreign"], timeout=0),
        "foreign_remove": lambda: api.remove_container(s["foreign"], force=True),
        "hub_itself": lambda: api.inspect_container(s["hub"]),
        "gate_itself": lambda: api.stop(s["gate"]),
        "exec": lambda: api.exec_create(s["server"], ["id"]),
        "list_containers": lambda: api.containers(all=True),
        "pull_other": lambda: api.pull("alpine", tag="latest"),
        "networks": lambda: api.networks(),
        "inspect_server": lambda: api.inspect_container(s["server"]),
    }
    out = {"engine_socket_here": os.path.exists("/var/run/docker.sock")}
    for name, attempt in tries.items():
        try:
            attempt()
            out[name] = "allowed"
        except docker.errors.APIError as exc:
            out[name] = exc.status_code
    print(json.dumps(out))
    """
)


def test_the_hub_reaches_docker_only_through_the_gate(
    hub: StackEnv, bo_server: docker.models.containers.Container
) -> None:
    names = hub.names
    foreign = hub.client.containers.run(
        hub.config.user_image,
        ["sleep", "300"],
        name=f"{names.stack}-foreign",
        detach=True,
        entrypoint=[],
    )
    try:
        settings = {
            "image": hub.config.user_image,
            "prefix": names.user_container_prefix,
            "labels": names.labels(ROLE_USER_SERVER),
            "network": names.network,
            "pids": USER_PIDS_LIMIT,
            "foreign": foreign.name,
            "hub": names.hub_container,
            "gate": gate_container_name(names),
            "server": bo_server.name,
        }
        hub_container = hub.client.containers.get(names.hub_container)
        result = hub_container.exec_run(["python3", "-c", GATE_PROBE, json.dumps(settings)])
        assert result.exit_code == 0, result.output.decode()
        seen = json.loads(result.output.decode().strip().splitlines()[-1])
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)
    assert seen.pop("engine_socket_here") is False
    assert seen.pop("inspect_server") == "allowed"
    assert seen == {name: 403 for name in seen}, seen
    assert not hub.client.containers.list(all=True, filters={"name": "mallory"})
    # The gate has no network and holds no capabilities.
    gate = hub.client.containers.get(gate_container_name(names))
    assert gate.attrs["HostConfig"]["NetworkMode"] == "none"
    assert gate.attrs["HostConfig"]["CapDrop"] == ["ALL"]


def test_spawning_survives_a_gate_restart(hub: StackEnv) -> None:
    """The gate is a container of its own: it comes back with its socket, hubd not needed."""
    gate = hub.client.containers.get(gate_container_name(hub.names))
    gate.restart(timeout=5)
    add_user(hub, "eve")
    session = login(hub.base_url, "eve", PASSWORD)
    open_lab(session, hub.base_url, "eve")
    # A crash (not a stop): Docker's restart policy brings it back.
    restarts = gate.attrs["RestartCount"]
    gate.exec_run(["python3", "-c", "import os, signal; os.kill(1, signal.SIGTERM)"])
    deadline = time.monotonic() + patient(30)
    while time.monotonic() < deadline:
        gate.reload()
        if gate.attrs["RestartCount"] > restarts and gate.status == "running":
            break
        time.sleep(0.2)
    assert gate.attrs["RestartCount"] > restarts and gate.status == "running"
    add_user(hub, "fox")
    session = login(hub.base_url, "fox", PASSWORD)
    open_lab(session, hub.base_url, "fox")


def test_removing_an_account_removes_its_network(hub: StackEnv) -> None:
    add_user(hub, "gil")
    open_lab(login(hub.base_url, "gil", PASSWORD), hub.base_url, "gil")
    network = f"{hub.names.user_network_prefix}gil"
    hub.client.networks.get(network)
    hub.hubd("user", "remove", "gil")
    assert not hub.client.networks.list(names=[network])
    hub.client.volumes.get(hub.names.user_volume("gil"))  # their files stay


def test_a_new_hub_container_rejoins_peoples_networks(
    hub: StackEnv, bo_server: docker.models.containers.Container
) -> None:
    """Runs last: it recreates the hub, with bo's server running on bo's own network."""
    session = login(hub.base_url, "bo", PASSWORD)
    open_lab(session, hub.base_url, "bo")
    write_file(session, hub.base_url, "bo", "before.txt", "kept")
    old_id = hub.client.containers.get(hub.names.hub_container).id
    hub.write_config(cull_idle_timeout=7200)  # a config change recreates the hub container
    hub.hubd("up")
    assert hub.client.containers.get(hub.names.hub_container).id != old_id
    bo_server.reload()
    assert bo_server.status == "running"
    assert read_file(session, hub.base_url, "bo", "before.txt") == "kept"
