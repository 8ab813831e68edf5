"""Backups while people work, restore after a purge and onto another stack, a killed
backup, and bad input. One stack (two people, files, a kernel) is shared by the module; the
tests run in file order, the purge round trip last."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import requests

from hubd.backup.helper import Helper
from hubd.backup.keys import password_file
from hubd.stack.naming import LABEL_USER, ROLE_USER_DATA
from tests.images.build import TestImages
from tests.integration.daemon_proc import DaemonProc, wait_for
from tests.integration.docker_env import StackEnv, own_stack
from tests.integration.hubclient import (
    KernelSocket,
    login,
    open_lab,
    read_bytes,
    write_bytes,
)
from tests.patience import patient

pytestmark = pytest.mark.integration

PASSWORDS = {"dana": "tulip-orbit-candle", "eli": "granite-lantern-fox"}
# Bytes that text handling would mangle: every byte value, and a NUL-rich tail.
FILES = {
    "dana": {"notes.bin": bytes(range(256)) * 64 + b"\x00" * 1000},
    "eli": {"data.bin": os.urandom(300_000)},
}


@dataclass
class Team:
    hub: StackEnv
    target: Path
    sessions: dict[str, requests.Session]
    kernel: KernelSocket
    failures: list[str] = field(default_factory=list)
    requests_done: int = 0


def add_user(hub: StackEnv, name: str) -> None:
    hub.hubd("user", "add", "--password-stdin", "--", name, input=PASSWORDS[name] + "\n")


def state_dir(hub: StackEnv) -> Path:
    return Path(hub.env["STATE_DIRECTORY"])


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
    test_images: TestImages,
) -> Iterator[Team]:
    tmp = tmp_path_factory.mktemp("backup")
    target = tmp / "usb-disk"
    target.mkdir()
    restic = test_images.restic
    with own_stack(
        tmp, docker_client, test_images, backup_image=restic, backup_target=str(target)
    ) as hub:
        hub.hubd("up")
        sessions = {}
        for name, files in FILES.items():
            add_user(hub, name)
            sessions[name] = login(hub.base_url, name, PASSWORDS[name])
            open_lab(sessions[name], hub.base_url, name)
            for file_name, data in files.items():
                write_bytes(sessions[name], hub.base_url, name, file_name, data)
        kernel = KernelSocket.start(sessions["dana"], hub.base_url, "dana")
        try:
            kernel.execute("counter = 41")
            yield Team(hub, target, sessions, kernel)
        finally:
            kernel.close()


def keep_working(team: Team, stop: threading.Event) -> None:
    """Dana saves and reads a file over and over, as someone working does."""
    session, base = team.sessions["dana"], team.hub.base_url
    n = 0
    while not stop.is_set():
        n += 1
        try:
            write_bytes(session, base, "dana", "scratch.txt", f"draft {n}".encode())
            assert read_bytes(session, base, "dana", "scratch.txt") == f"draft {n}".encode()
        except (AssertionError, requests.RequestException) as exc:
            team.failures.append(f"request {n}: {exc}")
        team.requests_done += 1
        time.sleep(0.05)


def test_backup_while_people_work(team: Team) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=keep_working, args=(team, stop))
    worker.start()
    try:
        out = team.hub.hubd("backup").stdout
    finally:
        stop.set()
        worker.join()
    assert "written to" in out and "dana" in out and "eli" in out, out
    assert team.requests_done > 5 and team.failures == [], team.failures
    # The kernel kept its state through the backup; nobody's server was stopped.
    assert team.kernel.execute("counter += 1; print(counter)").strip() == "42"
    secret = password_file(state_dir(team.hub))
    assert secret.stat().st_mode & 0o777 == 0o600
    status = team.hub.hubd("status").stdout
    assert "backup:   last good one 0m" in status, status


def test_the_daemon_backs_up_on_schedule_and_on_request(team: Team, tmp_path: Path) -> None:
    hub = team.hub
    first = hub.hubd("status", "--json")
    before = json.loads(first.stdout)["backup"]["last_success_at"]
    hub.write_config(backup_interval=15)
    daemon = DaemonProc(hub, tmp_path / "daemon.log").start()
    try:
        # The schedule: the next backup comes by itself once the interval has passed.
        wait_for(
            lambda: (daemon.status().backup.last_success_at or 0) > before,
            90,
            "a scheduled backup",
        )
        assert daemon.status().backup.last_error is None
        # Asked for: through the daemon (the CLI finds its socket); a failure is one line
        # for the caller, one line in the daemon's log, and the status says it.
        missing = hub.hubd("backup", "--to", str(tmp_path / "unplugged"), check=False)
        assert missing.returncode != 0 and "does not exist" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
        assert "does not exist" in (daemon.status().backup.last_error or "")
        assert "FAILED" in hub.hubd("status").stdout
        wait_for(lambda: "FAILED: backup target" in daemon.log_tail(200), 10, "the log line")
        hub.hubd("backup")
        assert daemon.status().backup.last_error is None
    finally:
        daemon.stop()
        hub.write_config(backup_interval=86400)


def test_bad_input_is_one_line_and_a_failure(team: Team, tmp_path: Path) -> None:
    hub = team.hub
    missing = hub.hubd("backup", "--to", str(tmp_path / "unplugged"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    bad_pw = hub.hubd("restore", "--dry-run", "--password-file", str(wrong), check=False)
    assert bad_pw.returncode != 0 and "wrong repository password" in bad_pw.stderr
    assert len(bad_pw.stderr.strip().splitlines()) == 1, bad_pw.stderr
    nobody = hub.hubd("restore", "--user", "zoe", "--dry-run", check=False)
    assert nobody.returncode != 0 and "no files of 'zoe'" in nobody.stderr
    assert len(nobody.stderr.strip().splitlines()) == 1, nobody.stderr
    # Overwriting needs a terminal or --yes: one line, nothing changed.
    no_tty = hub.hubd("restore", "--user", "dana", check=False)
    assert no_tty.returncode != 0 and "--yes" in no_tty.stderr
    assert len(no_tty.stderr.strip().splitlines()) == 1, no_tty.stderr


def test_a_persons_volume_with_driver_options_is_never_used(team: Team, tmp_path: Path) -> None:
    """Issue 28: a volume labelled as someone's home but made with driver options (here a
    bind of a host folder, as a compromised hub once could) is neither backed up nor restored
    through; the restore's helper (root, deleting) never touches the folder."""
    hub = team.hub
    names = hub.names
    name = names.user_volume("mallory")
    labels = names.labels(ROLE_USER_DATA, **{LABEL_USER: "mallory"})
    hub.client.volumes.create(name, labels=labels)
    hub.hubd("backup")  # mallory's (plain) volume is in this backup
    hub.client.volumes.get(name).remove()
    host_folder = tmp_path / "host-folder"
    host_folder.mkdir()
    (host_folder / "precious.txt").write_text("keep me")
    options = {"type": "none", "o": "bind", "device": str(host_folder)}
    hub.client.volumes.create(name, driver="local", driver_opts=options, labels=labels)
    try:
        for args in (["restore", "--user", "mallory", "--yes"], ["backup"]):
            refused = hub.hubd(*args, check=False)
            assert refused.returncode != 0, refused.stdout
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1, lines  # the one line, before any work began
            assert name in lines[0] and "driver options" in lines[0], lines
        assert (host_folder / "precious.txt").read_text() == "keep me"
    finally:
        hub.client.volumes.get(name).remove(force=True)


def test_killed_backup_leaves_the_previous_one_usable(team: Team) -> None:
    hub, client = team.hub, team.hub.client
    volume = hub.stack().user_volumes()["dana"]
    # Enough new data that the backup is still running when it is killed.
    client.containers.run(
        hub.config.backup_image,
        ["-c", "head -c 400000000 /dev/urandom > /v/big.bin"],
        entrypoint=["sh"],
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        remove=True,
    )
    backup = subprocess.Popen(
        [sys.executable, "-m", "hubd", "--config", str(hub.config_file), "backup"],
        env=hub.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    helper_name = f"{hub.names.stack}-backup"
    try:
        deadline = time.monotonic() + patient(120)
        while not _restic_backup_running(client, helper_name):
            assert time.monotonic() < deadline, "the backup helper never started its backup"
            time.sleep(0.2)
        time.sleep(1.5)
        client.containers.get(helper_name).kill(signal="SIGKILL")
        backup.send_signal(signal.SIGKILL)
    finally:
        backup.wait(timeout=60)
    dry = hub.hubd("restore", "--user", "dana", "--dry-run").stdout
    assert "replace volume" in dry and "dana's files" in dry, dry
    password = password_file(state_dir(hub)).read_text().strip()
    helper = Helper(client, hub.config.backup_image, hub.names, str(team.target), password)
    helper.restic(["unlock", "--remove-all"])
    check = helper.restic(["check"])
    assert check.exit_code == 0, check.output + check.errors
    # dana's files come back as in the good backup: big.bin (never backed up) is gone.
    hub.hubd("restore", "--user", "dana", "--yes")
    session = login(hub.base_url, "dana", PASSWORDS["dana"])
    open_lab(session, hub.base_url, "dana")
    assert read_bytes(session, hub.base_url, "dana", "notes.bin") == FILES["dana"]["notes.bin"]
    listing = session.get(f"{hub.base_url}/user/dana/api/contents/", timeout=30).json()
    assert "big.bin" not in {item["name"] for item in listing["content"]}
    # And the next backup goes through.
    hub.hubd("backup")


def _restic_backup_running(client: docker.DockerClient, name: str) -> bool:
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return container.status == "running" and "backup" in container.attrs["Args"]


def test_restore_onto_a_second_empty_stack(
    team: Team, tmp_path: Path, docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    # A new machine has no password file: the owner's kept copy is passed in.
    kept = tmp_path / "kept-password"
    shutil.copy(password_file(state_dir(team.hub)), kept)
    restic = test_images.restic
    with own_stack(tmp_path, docker_client, test_images, backup_image=restic) as other:
        args = ("restore", "--from", str(team.target), "--password-file", str(kept))
        plan = other.hubd(*args, "--dry-run").stdout
        assert "create volume" in plan and "replace" not in plan, plan
        other.hubd(*args)  # nothing to overwrite: no confirmation needed
        other.hubd("up")
        session = login(other.base_url, "eli", PASSWORDS["eli"])
        open_lab(session, other.base_url, "eli")
        assert read_bytes(session, other.base_url, "eli", "data.bin") == FILES["eli"]["data.bin"]
        # Everything again, now over the running stack: the hub is stopped, restored, started.
        write_bytes(session, other.base_url, "eli", "after.bin", b"made after the backup")
        plan = other.hubd(*args, "--dry-run").stdout
        assert "stop the hub" in plan and "replace volume" in plan, plan
        assert "running again" in other.hubd(*args, "--yes").stdout
        session = login(other.base_url, "eli", PASSWORDS["eli"])
        open_lab(session, other.base_url, "eli")
        listing = session.get(f"{other.base_url}/user/eli/api/contents/", timeout=30).json()
        assert {item["name"] for item in listing["content"]} == {"data.bin"}


# Everything purged, restored and every person's Lab started again: on a loaded machine longer
# than the suite's 10-minute hang limit; each spawn has its own deadline (open_lab).
@pytest.mark.timeout(patient(300))
def test_purge_then_restore_everything(team: Team) -> None:
    hub = team.hub
    team.kernel.close()
    hub.hubd("purge", "--yes")
    assert hub.stack().hub.find() is None and hub.stack().user_volumes() == {}
    out = hub.hubd("restore", "--yes").stdout
    assert "hubd up" in out, out
    hub.hubd("up")
    for name, files in FILES.items():
        session = login(hub.base_url, name, PASSWORDS[name])
        open_lab(session, hub.base_url, name)
        for file_name, data in files.items():
            assert read_bytes(session, hub.base_url, name, file_name) == data
