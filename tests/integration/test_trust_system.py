"""Issue 25: `hubd trust install | status | uninstall` as root puts hubd's root into the
system store (/usr/local/share/ca-certificates + update-ca-certificates) and takes it out.

Run as root in a throwaway Debian container (tests/images/trust.Dockerfile), never on this
machine: other tests and image builds read its /etc/ssl/certs meanwhile. The container runs
this tree's hubd (mounted read-only) on a root made by hubd's own store code, in the system
service's state folder (/var/lib/hubd, read-only too: `hubd trust` only reads it), and checks
with the real openssl what that store then vouches for.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hubd.timing import Timing
from hubd.tls import ca, leaf, store, system_trust
from tests.images.build import LABELS, TestImages

pytestmark = [pytest.mark.integration, pytest.mark.docker]

SOURCE = Path(__file__).resolve().parents[2] / "hubd"
MDNS_NAME = "jupyter"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
VERIFY = ["openssl", "verify", "-CApath", "/etc/ssl/certs", "-purpose", "sslserver"]


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Machine:
    """The container, as root, and what the test made for it."""

    container: docker.models.containers.Container
    root: x509.Certificate

    def run(self, *command: str, env: dict[str, str] | None = None, user: str = "root") -> Done:
        code, (out, err) = self.container.exec_run(
            list(command), demux=True, environment=env or {}, user=user
        )
        return Done(code, (out or b"").decode(), (err or b"").decode())

    def hubd(self, *args: str, env: dict[str, str] | None = None, user: str = "root") -> Done:
        return self.run("python3", "-m", "hubd", *args, env=env, user=user)

    def as_nobody(self, *args: str) -> Done:
        """A person without root, on the same machine (the system service's root)."""
        return self.hubd(*args, env={"HOME": "/tmp"}, user="nobody")

    def status(self) -> dict[str, bool]:
        done = self.hubd("trust", "status", "--json")
        assert done.code == 0, done
        answer = json.loads(done.stdout)
        assert answer["fingerprint"] == ca.fingerprint(self.root)
        return {item["store"]: item["trusted"] for item in answer["stores"]}

    def verify(self, name: str) -> Done:
        return self.run(*VERIFY, f"/leaves/{name}.pem")

    def bundle(self) -> str:
        return self.run("cat", SYSTEM_BUNDLE).stdout


def one_line(done: Done) -> str:
    """Bad input's answer: a non-zero exit and one line, no traceback."""
    assert done.code != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done
    return lines[0]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Made:
    """The hub's state folder (<state>/tls/root.{crt,key}) and leaves from its root."""

    state: Path
    leaves: Path
    root: x509.Certificate


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    folder = tmp_path_factory.mktemp("trust-system")
    files = store.files_in(folder / "state")
    root = store.ensure_root(files, MDNS_NAME, Timing())
    # Leaves from that root: one for the hub's name, one for a name it must not vouch for.
    leaves = folder / "leaves"
    leaves.mkdir()
    now = datetime.datetime.now(datetime.timezone.utc)
    for host in (f"{MDNS_NAME}.local", "example.com"):
        names = leaf.LeafNames.of([host], [ipaddress.ip_address("192.168.1.10")])
        cert, _ = leaf.issue(root.cert, root.key, names, now, Timing().tls_leaf_valid_days)
        (leaves / f"{host}.pem").write_bytes(_pem(cert))
    for path in (folder, folder / "state", files.folder, leaves, *leaves.iterdir()):
        path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else 0o644)
    return Made(folder / "state", leaves, root.cert)


@contextlib.contextmanager
def booted(client: docker.DockerClient, image: str, made: Made, state_at: str) -> Iterator[Machine]:
    """A fresh machine with this tree's hubd, the hub's state folder at `state_at`."""
    container = client.containers.run(
        image,
        detach=True,
        labels=LABELS,
        network_mode="none",
        environment={"PYTHONPATH": "/src", "PYTHONDONTWRITEBYTECODE": "1"},
        volumes={
            str(SOURCE): {"bind": "/src/hubd", "mode": "ro"},
            str(made.state): {"bind": state_at, "mode": "ro"},
            str(made.leaves): {"bind": "/leaves", "mode": "ro"},
        },
    )
    try:
        yield Machine(container, made.root)
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def machine(
    made: Made, docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[Machine]:
    """The hub's root where the system service keeps it."""
    with booted(docker_client, test_images.trust, made, "/var/lib/hubd") as machine:
        yield machine


def test_root_installs_into_the_system_store_and_out_again(machine: Machine) -> None:
    hub_leaf, other_leaf = "jupyter.local", "example.com"
    root_pem = _pem(machine.root).decode().strip()
    shipped = f"/usr/local/share/ca-certificates/{system_trust.nickname(machine.root)}.crt"
    shipped = shipped.replace("hubd ", "hubd-")
    # Before: the system store does not know the root, so not even the hub's leaf passes.
    assert machine.status() == {"system store": False, "Chromium/Chrome": False}
    assert machine.verify(hub_leaf).code != 0
    assert root_pem not in machine.bundle()
    roots_before = machine.bundle().count("BEGIN CERTIFICATE")
    # Without root: one line that says how, and the system store untouched.
    refused = machine.as_nobody("trust", "install")
    assert one_line(refused).endswith(
        "is root's: run `sudo hubd trust install`, or `hubd trust install --browsers-only` "
        "for your own browsers alone"
    )
    assert machine.run("ls", "-A", "/usr/local/share/ca-certificates").stdout == ""

    installed = machine.hubd("trust", "install")
    assert installed.code == 0, installed
    assert "trusted      system store (/usr/local/share/ca-certificates)" in installed.stdout
    assert ca.fingerprint(machine.root) in installed.stdout
    # The file update-ca-certificates reads, the bundle and the hashed folder it writes.
    assert machine.run("cat", shipped).stdout.strip() == root_pem
    assert root_pem in machine.bundle()
    assert machine.bundle().count("BEGIN CERTIFICATE") == roots_before + 1
    accepted = machine.verify(hub_leaf)
    assert accepted.code == 0 and accepted.stdout.strip().endswith(": OK"), accepted
    # The root vouches for the hub's name only: the same root's leaf for example.com fails.
    refused = machine.verify(other_leaf)
    assert refused.code != 0, refused
    assert "permitted subtree violation" in refused.stdout + refused.stderr, refused
    assert machine.status() == {"system store": True, "Chromium/Chrome": True}
    # A second install changes nothing.
    again = machine.hubd("trust", "install")
    assert again.code == 0 and machine.bundle().count(root_pem) == 1, again
    refused = machine.as_nobody("trust", "uninstall")
    assert "`sudo hubd trust uninstall`" in one_line(refused)
    assert machine.status()["system store"]

    removed = machine.hubd("trust", "uninstall")
    assert removed.code == 0, removed
    assert "not trusted  system store" in removed.stdout
    assert machine.run("test", "-e", shipped).code != 0
    assert root_pem not in machine.bundle()
    assert machine.verify(hub_leaf).code != 0
    assert machine.status() == {"system store": False, "Chromium/Chrome": False}
    # Nothing left behind in the hashed folder, and the machine's own roots are all there.
    assert machine.run("find", "/etc/ssl/certs", "-xtype", "l").stdout == ""
    assert machine.bundle().count("BEGIN CERTIFICATE") == roots_before


def test_without_a_root_trust_says_so_in_one_line_and_changes_nothing(machine: Machine) -> None:
    before = machine.run("ls", "-A", "/usr/local/share/ca-certificates").stdout
    empty = {"STATE_DIRECTORY": "/tmp/no-hub-here"}
    for action in ("install", "status", "uninstall"):
        line = one_line(machine.hubd("trust", action, env=empty))
        assert line.startswith("hubd: no root certificate in /tmp/no-hub-here/tls"), line
        assert "`hubd up`" in line
    # No root was made on the way, and the system store is as it was.
    assert machine.run("test", "-e", "/tmp/no-hub-here").code != 0
    assert machine.run("ls", "-A", "/usr/local/share/ca-certificates").stdout == before


def test_sudo_finds_the_root_of_the_persons_own_hub(
    made: Made, docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    """The quickstart runs hubd in the person's account (~/.local/state/hubd); the system
    store needs `sudo hubd trust install`, which runs with root's environment."""
    person_state = "/home/ada/.local/state/hubd"
    with booted(docker_client, test_images.trust, made, person_state) as machine:
        setup = (
            "useradd -M -d /home/ada ada && echo 'ada ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ada"
        )
        assert machine.run("sh", "-c", setup).code == 0
        # The system service's folder is root's alone (StateDirectoryMode=0700): a person
        # without root is told to use sudo, not shown a traceback.
        system = (
            "mkdir -m 700 /var/lib/hubd && cp -r /home/ada/.local/state/hubd/tls /var/lib/hubd/"
        )
        assert machine.run("sh", "-c", system).code == 0
        line = one_line(machine.as_nobody("trust", "status"))
        assert line.startswith("hubd: /var/lib/hubd/tls/root.crt is root's to read: run `sudo"), (
            line
        )
        assert machine.run("rm", "-r", "/var/lib/hubd").code == 0
        # sudo resets the environment: PYTHONPATH comes back by env, nothing else.
        sudo = ["sudo", "-n", "env", "PYTHONPATH=/src", "PYTHONDONTWRITEBYTECODE=1"]
        hubd = [*sudo, "python3", "-m", "hubd", "trust"]
        installed = machine.run(*hubd, "install", user="ada")
        assert installed.code == 0, installed
        assert f"root:   {person_state}/tls/root.crt" in installed.stdout, installed
        assert "trusted      system store" in installed.stdout
        assert machine.verify("jupyter.local").code == 0
        removed = machine.run(*hubd, "uninstall", user="ada")
        assert removed.code == 0 and "not trusted  system store" in removed.stdout, removed
        assert machine.verify("jupyter.local").code != 0
