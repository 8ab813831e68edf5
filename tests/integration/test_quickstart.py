"""The README's quickstart, read from README.md (not a copy), run as written by a new person
on a Debian 12 machine whose PID 1 is systemd (tests/integration/systemd_box.py): the root
block with sudo, "log out and in again", lingering as the README's note says, then their block
in one login shell on a terminal — `pipx install .` with Debian's /usr/bin/python3 (PEP 668
active), `hubd service install` starting the user unit under their systemd user manager,
`hubd user add` asking for the password, `hubd status` — through to alice logged in from this
machine, her JupyterLab answering 200.

The box uses this machine's Docker engine through its socket (its `docker` group gets the
socket's GID) and this machine's network, so the stack hubd starts, and the port it
publishes, are this machine's. What differs from a fresh machine, all because nothing here may
reach an image registry or the LAN: the offline stand-in images, mDNS off, plain HTTP (the
HTTPS path, trust page then https://, is test_https.py's in a real browser), and a free port
and stack name of this test's own — in ~/.config/hubd/config.toml, which both the service and
the commands read.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import select
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest

from hubd.config import Config
from hubd.stack import Stack
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration import hubclient
from tests.integration.docker_env import free_port
from tests.integration.systemd_box import ENGINE_SOCKET, SystemdBox, systemd_box
from tests.patience import patient

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "quick-start-9"
SERVICE_LINE = "hubd service install"
PERSON = "pat"  # the box's new account; alice is the hub's
# pipx install (PyPI), the first start (hubd builds the hub image) and the spawn, loaded.
QUICKSTART_DEADLINE_S = patient(300.0)


def readme() -> str:
    return (ROOT / "README.md").read_text()


def quickstart_blocks() -> list[list[str]]:
    """The ```sh blocks under README.md's "## Quickstart", as lists of command lines."""
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme(), re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Quickstart' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def linger_line() -> str:
    """The README's command that keeps a user service running without a login."""
    match = re.search(r"`(sudo loginctl enable-linger \$USER)`", readme())
    assert match, "README.md no longer says `sudo loginctl enable-linger $USER`"
    return match.group(1)


def test_the_quickstart_is_two_blocks_root_then_you() -> None:
    root_block, user_block = quickstart_blocks()
    assert all(line.startswith("sudo ") for line in root_block)
    assert not any("sudo" in line for line in user_block)
    assert any(line.startswith(SERVICE_LINE) for line in user_block)
    assert "`hubd run`" in readme()
    linger_line()


def typed(lines: list[str]) -> str:
    """A block as a person types it into one terminal, in their checkout: each line echoed,
    the first that fails ends the session with its status (a brace group, not a subshell,
    so that `export` lasts)."""
    steps = ["cd ~/hubd"]
    for line in lines:
        steps.append(f"printf '%s\\n' {shlex.quote('$ ' + line)}")
        steps.append(f"{{ {line}\n}} || exit $?")
    return "\n".join(steps)


def answer_on_a_terminal(
    argv: list[str], answers: list[tuple[str, str]], timeout: float
) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal, typing each answer after its prompt appears (as a
    person does: getpass flushes what was typed before it asks)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    seen, pending = "", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096).decode(errors="replace")
                except OSError:  # the terminal closed: the command ended
                    break
                seen += chunk
            if pending and seen.rstrip().endswith(pending[0][0].rstrip()):
                os.write(controller, (pending.pop(0)[1] + "\n").encode())
                seen += "\n"
            if proc.poll() is not None and not ready:
                break
        else:
            raise AssertionError(f"still running after {timeout:.0f} s:\n{seen[-3000:]}")
        return proc.wait(30), seen
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


def checkout_tar(uid: int) -> bytes:
    """The worktree as `git clone` gives it (tracked and new files, nothing ignored: no caches,
    no build output), as a tar of hubd/ owned by `uid`."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in sorted(filter(None, listed.split("\0"))):
            path = ROOT / rel
            if path.is_file():  # a tracked file deleted in the worktree is not in a checkout
                info = tar.gettarinfo(str(path), arcname=f"hubd/{rel}")
                info.uid = info.gid = uid
                with path.open("rb") as f:
                    tar.addfile(info, f)
    return buffer.getvalue()


def new_person(box: SystemdBox) -> int:
    """A fresh account with sudo (the README's root block is theirs to type) and the
    `docker` group holding the engine socket's GID, as docker.io makes it on a real machine."""
    gid = os.stat(ENGINE_SOCKET).st_gid
    box.run(
        [
            "sh",
            "-ec",
            f"""other=$(getent group {gid} | cut -d: -f1)
            [ -z "$other" ] || [ "$other" = docker ] || groupmod -g {60000 + gid} "$other"
            groupmod -g {gid} docker
            useradd -m -s /bin/bash {PERSON}
            echo '{PERSON} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{PERSON}
            chmod 0440 /etc/sudoers.d/{PERSON}""",
        ]
    )
    return int(box.run(["id", "-u", PERSON]).stdout)


def offline_config(port: int, stack_name: str, images: TestImages) -> str:
    return (
        f'hub_base_image = "{images.hub_base}"\n'
        f'user_image = "{images.user}"\n'
        f'proxy_image = "{images.proxy}"\n'
        f"port = {port}\n"
        f'stack_name = "{stack_name}"\n'
        "mdns_enabled = false\n"
        'tls = "off"\n'
    )


def put_files(box: SystemdBox, home: str, uid: int, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, uid, uid
            tar.addfile(info, io.BytesIO(data))
    assert box.container.put_archive(home, buffer.getvalue())


@pytest.mark.timeout(patient(600.0))
def test_quickstart_as_written(docker_client: docker.DockerClient, test_images: TestImages) -> None:
    root_block, user_block = quickstart_blocks()
    port = free_port()
    stack_name = f"hubdqs{os.getpid()}"
    home = f"/home/{PERSON}"
    started = time.monotonic()
    try:
        with systemd_box(docker_client, test_images.systemd, f"hubdqs-box-{os.getpid()}") as box:
            booted = time.monotonic()
            try:
                box.run(["test", "-e", "/usr/lib/python3.11/EXTERNALLY-MANAGED"])  # PEP 668
                uid = new_person(box)
                assert box.container.put_archive(home, checkout_tar(uid))
                box.run(["chown", "-R", f"{PERSON}:", f"{home}/hubd"])  # its folders too
                config = offline_config(port, stack_name, test_images).encode()
                put_files(box, home, uid, {".config/hubd/config.toml": config})
                box.run(["chown", f"{PERSON}:", f"{home}/.config", f"{home}/.config/hubd"])

                # 1. Once, with sudo, as written; then "log out and in again" (the docker group
                # counts from the next login: end every session and the user manager).
                done = box.as_user(PERSON, typed(root_block), timeout=patient(300.0))
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
                box.run(["loginctl", "terminate-user", PERSON], check=False)
                rooted = time.monotonic()

                # 2. Their block, in one login shell on a terminal, after the README's linger
                # line (the user service keeps running when this shell ends).
                code, transcript = answer_on_a_terminal(
                    box.login_argv(PERSON, typed([linger_line(), *user_block]), tty=True),
                    [("Password:", PASSWORD), ("again:", PASSWORD)],
                    QUICKSTART_DEADLINE_S,
                )
                assert code == 0, transcript[-4000:]
                typed_in = time.monotonic()
                assert "by IP:" in transcript and f":{port}/" in transcript, transcript[-3000:]
                assert f"Docker Engine at unix://{ENGINE_SOCKET}" in transcript, transcript[-3000:]
                venv = box.run(
                    [
                        "sh",
                        "-c",
                        f"cat {home}/.local/pipx/venvs/hubd/pyvenv.cfg"
                        f" {home}/.local/share/pipx/venvs/hubd/pyvenv.cfg 2>/dev/null",
                    ],
                    check=False,
                ).stdout
                assert "home = /usr/bin" in venv, venv  # the system Python's venv
                # The hub is the service's: the user unit is up under the user manager.
                unit = box.as_user(PERSON, "systemctl --user is-active hubd.service")
                assert unit.stdout.strip() == "active", unit.stdout + unit.stderr

                # 3. A person logs in from this machine and gets their JupyterLab.
                base = f"http://127.0.0.1:{port}"
                session = hubclient.login(base, "alice", PASSWORD)
                lab = hubclient.open_lab(session, base, "alice")
                assert lab.status_code == 200
                print(
                    f"\nquickstart: systemd boot {booted - started:.0f} s, root block "
                    f"{rooted - booted:.0f} s, their block (pipx install, service start, "
                    f"user add, status) {typed_in - rooted:.0f} s, "
                    f"to alice's Lab {time.monotonic() - typed_in:.0f} s\n"
                    + transcript[transcript.find("$ hubd user add") :]
                )
            finally:
                # Stop the service before the box goes, so nothing is being restarted.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    box.as_user(PERSON, "systemctl --user stop hubd.service", patient(60.0))
    finally:
        Stack(docker_client, Config(stack_name=stack_name), timing=Timing()).purge()
        for image in docker_client.images.list(filters={"label": f"io.hubd.stack={stack_name}"}):
            docker_client.images.remove(image.id, force=True)
