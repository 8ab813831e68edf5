"""The README's quickstart, read from README.md (not a copy), run as a new person would: a
non-root account in the `docker` group, Debian's own /usr/bin/python3 (PEP 668 active), a
checkout in their home, through to a person logged in whose JupyterLab answers 200.

No image registry is reachable here, so the run is pointed at the local test images through
hubd's HUBD_* environment variables (as the other integration tests do), and mDNS is off (no
advertising on this machine's LAN). This machine has no systemd as PID 1, so the quickstart's
`hubd service install` line is taken the way the README offers for trying it: `hubd run`.
"""

from __future__ import annotations

import os
import pty
import pwd
import re
import select
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from hubd.config import Config
from hubd.stack import Stack
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration import hubclient
from tests.integration.docker_env import free_port

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "quick-start-9"
SERVICE_LINE = "hubd service install"


def quickstart_blocks() -> list[list[str]]:
    """The ```sh blocks under README.md's "## Quickstart", as lists of command lines."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Quickstart' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def test_the_quickstart_is_two_blocks_root_then_you() -> None:
    root_block, user_block = quickstart_blocks()
    assert all(line.startswith("sudo ") for line in root_block)
    assert not any("sudo" in line for line in user_block)
    assert any(line.startswith(SERVICE_LINE) for line in user_block)
    assert "`hubd run`" in (ROOT / "README.md").read_text()


@pytest.fixture
def newcomer() -> Iterator[str]:
    """A fresh non-root account (removed afterwards, with its home and processes)."""
    name = f"hubdqs{os.getpid() % 100000}"
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        time.sleep(0.5)
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)


def copy_checkout(home: Path, uid: int, gid: int) -> Path:
    """The working tree as a person's checkout (no caches), owned by them."""
    target = home / "hubd"
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(
            ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.egg-info"
        ),
    )
    for path in [target, *target.rglob("*")]:
        os.lchown(path, uid, gid)
    return target


def answer_on_a_terminal(
    argv: list[str], answers: list[tuple[str, str]], timeout: float = 300
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
        return proc.wait(30), seen
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


def as_user(name: str, env: dict[str, str], script: str, **kw: object) -> list[str]:
    """argv running `script` in a login shell of `name` (its own ~/.profile) with `env`."""
    words = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return ["runuser", "-l", name, "-c", f"export {words}; cd ~/hubd && {script}"]


def test_quickstart_as_written(
    newcomer: str, docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    root_block, user_block = quickstart_blocks()
    account = pwd.getpwnam(newcomer)
    home = Path(account.pw_dir)
    assert Path("/usr/lib/python3.11/EXTERNALLY-MANAGED").exists()  # PEP 668 is active

    # 1. The root part, as written, for this account (`sudo` is who we are already).
    started = time.monotonic()
    for line in root_block:
        command = line.removeprefix("sudo ").replace("$USER", newcomer)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{line}: {done.stderr[-2000:]}"
    copy_checkout(home, account.pw_uid, account.pw_gid)

    port = free_port()
    stack_name = f"hubdqs{os.getpid()}"
    env = {
        # Offline stand-ins for the official images; the rest stays at its defaults.
        "HUBD_HUB_BASE_IMAGE": test_images.hub_base,
        "HUBD_USER_IMAGE": test_images.user,
        "HUBD_PROXY_IMAGE": test_images.proxy,
        "HUBD_PORT": str(port),
        "HUBD_STACK_NAME": stack_name,
        "HUBD_MDNS_ENABLED": "false",
        # The person logs in over plain HTTP here; the HTTPS path (trust page, then
        # https://) is test_https.py's, in a real browser.
        "HUBD_TLS": "off",
    }
    service = user_block.index(next(x for x in user_block if x.startswith(SERVICE_LINE)))
    before, after = user_block[:service], user_block[service + 1 :]
    hubd_run: subprocess.Popen[bytes] | None = None
    log = home / "hubd-run.log"
    try:
        # 2. Your part: install (pipx, Debian's python3), until the service line.
        done = subprocess.run(
            as_user(newcomer, env, " && ".join(before)),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        installed = time.monotonic()
        # pipx 1.1 (Debian 12) keeps venvs in ~/.local/pipx, newer ones in ~/.local/share/pipx.
        (cfg,) = [p for p in home.glob(".local/**/venvs/hubd/pyvenv.cfg")]
        venv_cfg = cfg.read_text()
        assert "home = /usr/bin" in venv_cfg, venv_cfg  # the system Python's venv

        # The service line's stand-in: `hubd run`, as the README offers for trying it.
        prefix = " && ".join(b for b in before if "PATH" in b)
        hubd_run = subprocess.Popen(
            as_user(newcomer, env, f"{prefix} && exec hubd run > {log} 2>&1"),
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert hubd_run.poll() is None, log.read_text()[-3000:]
            try:
                import requests

                if requests.get(f"{base}/hub/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise AssertionError(f"the hub did not come up:\n{log.read_text()[-3000:]}")
        running = time.monotonic()

        # 3. The rest as written; `hubd user add` asks on a terminal: a pty via script(1).
        outputs = []
        for line in after:
            argv = as_user(newcomer, env, f"{prefix} >/dev/null && {line}")
            if line.startswith("hubd user add"):
                prompts = [("Password:", PASSWORD), ("again:", PASSWORD)]
                code, out = answer_on_a_terminal(argv, prompts)
                assert code == 0, f"{line}: {out}"
                continue
            result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{line}: {result.stdout}\n{result.stderr}"
            outputs.append(result.stdout)
        status = outputs[-1]
        assert "by IP:" in status and f":{port}/" in status, status
        assert "docker:   Docker Engine at unix:///var/run/docker.sock" in status, status

        # 4. A person logs in and gets their JupyterLab.
        session = hubclient.login(base, "alice", PASSWORD)
        lab = hubclient.open_lab(session, base, "alice")
        assert lab.status_code == 200
        print(
            f"\nquickstart: root part + copy {installed - started:.0f} s (incl. pipx install), "
            f"hubd run to healthy {running - installed:.0f} s, "
            f"to alice's Lab {time.monotonic() - running:.0f} s"
        )
    finally:
        if hubd_run is not None and hubd_run.poll() is None:
            os.killpg(hubd_run.pid, signal.SIGTERM)
            try:
                hubd_run.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(hubd_run.pid, signal.SIGKILL)
        Stack(docker_client, Config(stack_name=stack_name), timing=Timing()).purge()
        for image in docker_client.images.list(filters={"label": f"io.hubd.stack={stack_name}"}):
            docker_client.images.remove(image.id, force=True)
