"""The hub stack on a real Docker engine, driven through the real `hubd` CLI."""

from __future__ import annotations

import json

import pytest
import requests

from hubd.stack.docker_gate import gate_volume_name
from hubd.stack.naming import LABEL_STACK, ROLE_HUB, ROLE_USER_SERVER
from tests.integration.docker_env import StackEnv
from tests.integration.hubclient import login, login_refused, open_lab, read_file, write_file

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-battery"


def test_up_login_lab_data_survives_down_and_up_is_idempotent(stack_env: StackEnv) -> None:
    up = stack_env.hubd("up")
    assert up.stdout.strip() == f"{stack_env.base_url}/"
    assert "no admin yet" in up.stderr
    assert requests.get(f"{stack_env.base_url}/hub/health", timeout=5).status_code == 200

    stack_env.hubd("user", "add", "alice", "--admin", "--password-stdin", input=PASSWORD + "\n")
    session = login(stack_env.base_url, "alice", PASSWORD)
    lab = open_lab(session, stack_env.base_url, "alice")
    assert "JupyterLab" in lab.text
    write_file(session, stack_env.base_url, "alice", "notes.txt", "survives down and up")

    # Every object of the stack is labelled as hubd's.
    user_servers = stack_env.client.containers.list(
        filters=stack_env.names.filters(ROLE_USER_SERVER)
    )
    assert [c.name for c in user_servers] == [f"{stack_env.names.user_container_prefix}-alice"]
    volumes = {v.name for v in stack_env.client.volumes.list(filters=stack_env.names.filters())}
    assert volumes == {
        stack_env.names.hub_data_volume,
        stack_env.names.user_volume("alice"),
        gate_volume_name(stack_env.names),
        stack_env.names.proxy_routes_volume,
    }

    down = stack_env.hubd("down")
    assert "kept" in down.stdout
    assert not stack_env.client.containers.list(filters=stack_env.names.filters())
    # Nothing but containers stopped: both volumes are still there.
    assert {
        v.name for v in stack_env.client.volumes.list(filters=stack_env.names.filters())
    } == volumes

    stack_env.hubd("up")
    hub_id = stack_env.client.containers.get(stack_env.names.hub_container).id
    session = login(stack_env.base_url, "alice", PASSWORD)
    open_lab(session, stack_env.base_url, "alice")
    assert read_file(session, stack_env.base_url, "alice", "notes.txt") == "survives down and up"

    again = stack_env.hubd("up")
    assert "nothing to change" in again.stderr
    assert stack_env.client.containers.get(stack_env.names.hub_container).id == hub_id


def test_config_change_recreates_only_the_hub(stack_env: StackEnv) -> None:
    stack_env.hubd("up")
    names = stack_env.names
    network_id = stack_env.client.networks.get(names.network).id
    hub_id = stack_env.client.containers.get(names.hub_container).id

    stack_env.write_config(cull_idle_timeout=600)
    changed = stack_env.hubd("up")
    assert f"recreated container {names.hub_container}" in changed.stderr
    assert "created network" not in changed.stderr
    assert stack_env.client.networks.get(names.network).id == network_id
    assert stack_env.client.containers.get(names.hub_container).id != hub_id
    assert requests.get(f"{stack_env.base_url}/hub/health", timeout=5).status_code == 200


def test_default_config_lets_nobody_in_without_an_account(stack_env: StackEnv) -> None:
    stack_env.hubd("up")
    for name, password in [("admin", "admin"), ("jovyan", "jovyan"), ("root", "")]:
        assert login_refused(stack_env.base_url, name, password)
    # Signing oneself up is switched off: the page is gone, and a forged form makes no account.
    session = requests.Session()
    session.get(f"{stack_env.base_url}/hub/login", timeout=5)
    assert session.get(f"{stack_env.base_url}/hub/signup", timeout=5).status_code == 404
    session.post(
        f"{stack_env.base_url}/hub/signup",
        timeout=5,
        data={
            "username": "mallory",
            "signup_password": "a-long-password-1",
            "signup_password_confirmation": "a-long-password-1",
            "_xsrf": session.cookies["_xsrf"],
        },
    )
    assert login_refused(stack_env.base_url, "mallory", "a-long-password-1")


def test_status_json_and_logs(stack_env: StackEnv) -> None:
    stack_env.hubd("up")
    status = json.loads(stack_env.hubd("status", "--json").stdout)
    assert status["state"] == "running"
    assert status["hub"]["healthy"] is True
    assert status["hub"]["image"].startswith(stack_env.names.hub_image_repo + ":")
    logs = stack_env.hubd("logs", "--tail", "50").stdout
    assert "JupyterHub" in logs

    # `logs -f` keeps printing what the hub logs from now on.
    import subprocess
    import sys
    import time

    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubd",
            "--config",
            str(stack_env.config_file),
            "logs",
            "-f",
            "-n",
            "1",
        ],
        env=stack_env.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        requests.get(f"{stack_env.base_url}/hub/login?marker=followed", timeout=5)
        time.sleep(2)
    finally:
        follow.terminate()
        out, _ = follow.communicate(timeout=10)
    assert "marker=followed" in out


def test_port_in_use_is_one_clear_line(stack_env: StackEnv) -> None:
    import socket

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", stack_env.config.port))
        taken.listen()
        result = stack_env.hubd("up", check=False)
    assert result.returncode != 0
    assert f"port {stack_env.config.port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()[-1]) < 300


def test_hubd_never_touches_foreign_objects(stack_env: StackEnv) -> None:
    client = stack_env.client
    foreign = client.networks.create(stack_env.names.network)  # same name, no hubd label
    try:
        result = stack_env.hubd("up", check=False)
        assert result.returncode != 0
        assert "hubd did not create" in result.stderr
        assert "Traceback" not in result.stderr
        assert client.networks.get(foreign.id).attrs["Labels"].get(LABEL_STACK) is None
    finally:
        foreign.remove()


def test_hub_container_has_no_restart_policy_and_private_secrets(stack_env: StackEnv) -> None:
    stack_env.hubd("up")
    hub = stack_env.client.containers.get(stack_env.names.hub_container)
    assert hub.labels["io.hubd.role"] == ROLE_HUB
    assert hub.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    listing = hub.exec_run(
        [
            "stat",
            "-c",
            "%a %n",
            "/srv/jupyterhub/data/jupyterhub_cookie_secret",
            "/srv/jupyterhub/data/hubd-service-token",
            "/srv/jupyterhub/data",
        ]
    )
    modes = dict(line.split(" ", 1)[::-1] for line in listing.output.decode().splitlines())
    assert modes["/srv/jupyterhub/data/jupyterhub_cookie_secret"] == "600"
    assert modes["/srv/jupyterhub/data/hubd-service-token"] == "600"
    assert modes["/srv/jupyterhub/data"] == "700"


def test_image_pull_failure_is_one_clear_line(stack_env: StackEnv) -> None:
    # A registry on loopback where nothing listens: the pull fails at once, nothing leaves
    # this machine.
    missing = "127.0.0.1:5999/hubd-missing:1"
    stack_env.write_config(user_image=missing)
    result = stack_env.hubd("up", check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hubd: pulling {missing} failed") and "network" in last
    assert "Traceback" not in result.stderr
