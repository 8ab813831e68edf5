"""`hubd trust` on macOS, where this machine cannot run it: which keychain, and the `security`
command lines for it. Only the command runner is a fake (it records, answers as `security`
would); the stores, the root and the files are real. Linux's system store is tested for real,
as root in a container: tests/integration/test_trust_system.py."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hubd.errors import TlsError
from hubd.timing import Timing
from hubd.tls import ca, system_trust
from hubd.tls.system_trust import MAC_SYSTEM_KEYCHAIN, Store

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def root() -> x509.Certificate:
    return ca.make_root("jupyter", "box", NOW, Timing().tls_root_valid_days)[0]


@pytest.fixture
def root_file(root: x509.Certificate, tmp_path: Path) -> Path:
    path = tmp_path / "root.crt"
    path.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return path


def sha1(root: x509.Certificate) -> str:
    """As `security find-certificate -Z` prints it."""
    return hashlib.sha1(root.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


@dataclass
class Security:
    """Stands in for the `security` command: what was run, and what it answers."""

    calls: list[list[str]] = field(default_factory=list)
    listing: str = ""
    refusal: str | None = None

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        if self.refusal is not None and args[1] == "add-trusted-cert":
            return subprocess.CompletedProcess(args, 1, "", self.refusal)
        out = self.listing if args[1] == "find-certificate" else ""
        return subprocess.CompletedProcess(args, 0, out, "")


@pytest.fixture
def security(monkeypatch: pytest.MonkeyPatch) -> Security:
    fake = Security()
    monkeypatch.setattr(system_trust, "_run", fake)
    return fake


def keychain(home: Path, *, is_root: bool, browsers_only: bool = False) -> Store:
    found = system_trust.stores(
        home, is_root=is_root, browsers_only=browsers_only, platform="darwin"
    )
    assert not [s for s in found if s.kind == "system"]  # no /usr/local/share on macOS
    (store,) = [s for s in found if s.kind == "keychain"]
    return store


def test_as_root_the_system_keychain_in_the_admin_domain(
    security: Security, root: x509.Certificate, root_file: Path, tmp_path: Path
) -> None:
    store = keychain(tmp_path, is_root=True)
    assert store.location == MAC_SYSTEM_KEYCHAIN == "/Library/Keychains/System.keychain"
    store.install(root, root_file)
    store.uninstall(root, root_file)
    assert security.calls == [
        ["security", "add-trusted-cert", "-d", "-r", "trustRoot",
         "-k", MAC_SYSTEM_KEYCHAIN, str(root_file)],
        # The admin trust settings go too: left behind, they would still trust the root
        # whenever a server sends it along.
        ["security", "remove-trusted-cert", "-d", str(root_file)],
        ["security", "delete-certificate", "-Z", sha1(root), MAC_SYSTEM_KEYCHAIN],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("is_root", "browsers_only"), [(False, False), (False, True), (True, True)]
)
def test_otherwise_the_login_keychain_in_the_users_domain(
    security: Security,
    root: x509.Certificate,
    root_file: Path,
    tmp_path: Path,
    is_root: bool,
    browsers_only: bool,
) -> None:
    """A person without root; and --browsers-only, even as root: this account's keychain,
    which Safari and Chrome read, never the machine's."""
    store = keychain(tmp_path, is_root=is_root, browsers_only=browsers_only)
    login = str(tmp_path / "Library" / "Keychains" / "login.keychain-db")
    assert store.location == login
    store.install(root, root_file)
    store.uninstall(root, root_file)
    assert security.calls == [
        ["security", "add-trusted-cert", "-r", "trustRoot", "-k", login, str(root_file)],
        ["security", "remove-trusted-cert", str(root_file)],
        ["security", "delete-certificate", "-Z", sha1(root), login],
    ]


def test_installed_is_this_roots_sha1_in_the_keychain(
    security: Security, root: x509.Certificate, root_file: Path, tmp_path: Path
) -> None:
    store = keychain(tmp_path, is_root=True)
    other = ca.make_root("jupyter", "box", NOW, Timing().tls_root_valid_days)[0]
    security.listing = f'SHA-256 hash: 00\nSHA-1 hash: {sha1(other)}\n    "labl"<blob>="hubd"\n'
    assert not store.installed(root, root_file)
    security.listing += f"SHA-1 hash: {sha1(root)}\n"
    assert store.installed(root, root_file)
    assert security.calls[-1] == ["security", "find-certificate", "-a", "-Z", MAC_SYSTEM_KEYCHAIN]


def test_a_refused_install_is_one_line(
    security: Security, root: x509.Certificate, root_file: Path, tmp_path: Path
) -> None:
    # What macOS 11+ answers root without an administrator's confirmation.
    security.refusal = (
        "SecTrustSettingsSetTrustSettings: The authorization was denied since no user "
        "interaction was possible.\n"
    )
    with pytest.raises(TlsError) as refused:
        keychain(tmp_path, is_root=True).install(root, root_file)
    message = str(refused.value)
    assert message.startswith("`security add-trusted-cert` failed: ")
    assert "authorization was denied" in message and "\n" not in message


def test_a_missing_tool_is_one_line() -> None:
    with pytest.raises(TlsError, match=r"^no-such-tool-hubd: No such file or directory$"):
        system_trust._run(["no-such-tool-hubd", "-L"])


def test_linux_browsers_only_leaves_the_system_store_out(tmp_path: Path) -> None:
    kinds = {s.kind for s in system_trust.stores(tmp_path, is_root=True, platform="linux")}
    assert "keychain" not in kinds
    only = system_trust.stores(tmp_path, is_root=True, browsers_only=True, platform="linux")
    assert {s.kind for s in only} <= {"nss"}
