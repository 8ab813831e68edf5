"""Accounts that last, made by the owner with `hubd user`, used on the real login page."""

from __future__ import annotations

import json
import subprocess

import pytest

from hubd.stack.settings import ALLOWED_FAILED_LOGINS
from tests.integration.docker_env import StackEnv
from tests.integration.hubclient import login, login_refused, open_lab

pytestmark = pytest.mark.integration

PASSWORD = "tulip-orbit-candle"
NEW_PASSWORD = "granite-lantern-fox"


@pytest.fixture
def hub(stack_env: StackEnv) -> StackEnv:
    stack_env.hubd("up")
    return stack_env


def add_user(
    hub: StackEnv, name: str, password: str = PASSWORD, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return hub.hubd(
        "user", "add", "--password-stdin", *extra, "--", name, input=password + "\n", check=check
    )


def test_add_login_spawn_page_wrong_password_and_list(hub: StackEnv) -> None:
    assert add_user(hub, "dana", PASSWORD, "--admin").stdout.strip() == "added admin dana"
    add_user(hub, "eli")
    session = login(hub.base_url, "dana", PASSWORD)
    spawn = session.get(f"{hub.base_url}/hub/spawn", timeout=30)
    assert spawn.status_code == 200 and "/hub/spawn-pending/dana" in spawn.url
    assert login_refused(hub.base_url, "dana", "not-the-password")
    assert login_refused(hub.base_url, "nobody", PASSWORD)

    open_lab(session, hub.base_url, "dana")
    users = {u["name"]: u for u in json.loads(hub.hubd("user", "list", "--json").stdout)}
    assert set(users) == {"dana", "eli"}
    assert users["dana"]["admin"] and not users["eli"]["admin"]
    assert users["dana"]["server_running"] and not users["eli"]["server_running"]
    table = hub.hubd("user", "list").stdout
    assert "dana" in table and "running" in table


def test_lockout_after_repeated_failures(hub: StackEnv) -> None:
    add_user(hub, "fay")
    for _ in range(ALLOWED_FAILED_LOGINS):
        assert login_refused(hub.base_url, "fay", "wrong-wrong-wrong")
    # Locked out now: even the right password is refused for a while.
    assert login_refused(hub.base_url, "fay", PASSWORD)
    # Another person is not affected.
    add_user(hub, "gus")
    login(hub.base_url, "gus", PASSWORD)


def test_accounts_survive_hub_recreation(hub: StackEnv) -> None:
    add_user(hub, "hana")
    old_id = hub.client.containers.get(hub.names.hub_container).id
    hub.write_config(cull_idle_timeout=900)  # a config change recreates the hub container
    hub.hubd("up")
    assert hub.client.containers.get(hub.names.hub_container).id != old_id
    login(hub.base_url, "hana", PASSWORD)
    # Removing the container by hand (as a rebuild would) keeps accounts too.
    hub.client.containers.get(hub.names.hub_container).remove(force=True)
    hub.hubd("up")
    login(hub.base_url, "hana", PASSWORD)


def test_passwd_by_owner_and_by_the_person(hub: StackEnv) -> None:
    add_user(hub, "ivan")
    out = hub.hubd("user", "passwd", "ivan", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert "password changed" in out.stdout
    assert login_refused(hub.base_url, "ivan", PASSWORD)
    session = login(hub.base_url, "ivan", NEW_PASSWORD)

    # The person changes their own password on the hub's change-password page.
    session.get(f"{hub.base_url}/hub/change-password", timeout=30)
    own = "my-own-choice-2026"
    page = session.post(
        f"{hub.base_url}/hub/change-password",
        timeout=30,
        data={
            "old_password": NEW_PASSWORD,
            "new_password": own,
            "new_password_confirmation": own,
            "_xsrf": session.cookies.get("_xsrf", path="/hub/"),
        },
    )
    assert page.status_code == 200
    assert login_refused(hub.base_url, "ivan", NEW_PASSWORD)
    login(hub.base_url, "ivan", own)


def test_remove_refuses_login_and_keeps_volume_unless_asked(hub: StackEnv) -> None:
    add_user(hub, "june")
    session = login(hub.base_url, "june", PASSWORD)
    open_lab(session, hub.base_url, "june")
    volume = hub.names.user_volume("june")
    hub.client.volumes.get(volume)

    out = hub.hubd("user", "remove", "june").stdout
    assert f"their files stay in volume {volume}" in out
    assert login_refused(hub.base_url, "june", PASSWORD)
    hub.client.volumes.get(volume)  # still there
    servers = [s for s in hub.stack().user_servers() if s.user == "june" and s.running]
    assert servers == []

    add_user(hub, "june")  # the same name again gets the same files back
    session = login(hub.base_url, "june", PASSWORD)
    open_lab(session, hub.base_url, "june")
    out = hub.hubd("user", "remove", "june", "--delete-data", "--yes").stdout
    assert "their files were deleted" in out
    assert volume not in {v.name for v in hub.client.volumes.list()}


HOSTILE_NAMES = [
    ("Bob", "capital letters"),
    ("../etc", "must start with a letter"),
    ("a b", "may only hold"),
    ("root;rm -rf /", "may only hold"),
    ("x" * 40, "longer than 32"),
    ("émile", "must start with a letter"),
    ("-dash", "must start with a letter"),
    ("a..b", "may only hold"),
    ("", "cannot be empty"),
]


def test_hostile_usernames_are_refused_and_nothing_is_created(hub: StackEnv) -> None:
    for name, message in HOSTILE_NAMES:
        result = add_user(hub, name, check=False)
        assert result.returncode != 0, name
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
    assert json.loads(hub.hubd("user", "list", "--json").stdout) == []
    assert not hub.client.volumes.list(filters=hub.names.filters("user-data"))


def test_clear_errors_for_existing_missing_and_short_password(hub: StackEnv) -> None:
    add_user(hub, "kim")
    again = add_user(hub, "kim", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    missing = hub.hubd("user", "remove", "nobody", check=False)
    assert missing.returncode != 0 and "there is no user 'nobody'" in missing.stderr
    short = add_user(hub, "lee", "short", check=False)
    assert short.returncode != 0 and "at least 8 characters" in short.stderr
    common = add_user(hub, "lee", "password123", check=False)
    assert common.returncode != 0 and "too common" in common.stderr


def test_no_plain_text_password_anywhere(hub: StackEnv) -> None:
    add_user(hub, "max", PASSWORD, "--admin")
    hub.hubd("user", "passwd", "max", "--password-stdin", input=NEW_PASSWORD + "\n")
    login(hub.base_url, "max", NEW_PASSWORD)
    container = hub.client.containers.get(hub.names.hub_container)
    places = {
        "docker inspect": json.dumps(container.attrs),
        "hub log": container.logs().decode(errors="replace"),
        "hub database": container.exec_run(
            ["sh", "-c", "cat /srv/jupyterhub/data/*"]
        ).output.decode(errors="replace"),
    }
    for path in [
        hub.config_file,
        *[
            p
            for d in ("state", "log", "run", "etc")
            for p in (hub.config_file.parent / d).rglob("*")
        ],
    ]:
        if path.is_file():
            places[str(path)] = path.read_text(errors="replace")
    for place, text in places.items():
        for secret in (PASSWORD, NEW_PASSWORD):
            assert secret not in text, f"a password in plain text in {place}"


def test_first_run_without_admin_says_how_to_add_one(hub: StackEnv) -> None:
    assert "hubd user add NAME --admin" in hub.hubd("up").stderr
    add_user(hub, "ned", PASSWORD, "--admin")
    assert "no admin yet" not in hub.hubd("up").stderr


def test_user_commands_need_a_running_hub(stack_env: StackEnv) -> None:
    result = stack_env.hubd("user", "list", check=False)
    assert result.returncode != 0
    assert "hubd up" in result.stderr and "Traceback" not in result.stderr
