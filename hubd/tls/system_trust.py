"""`hubd trust`: hubd's root in this machine's trust stores, as `mkcert -install` does.

- Linux: the system store (/usr/local/share/ca-certificates + update-ca-certificates, as
  root) and the NSS databases browsers read: Chromium's and Chrome's `~/.pki/nssdb`, each
  Firefox profile (also the snap's), with `certutil` from libnss3-tools;
- macOS: the keychain (`security add-trusted-cert`): the System keychain (admin trust
  settings, `-d`) as root, else (and with `--browsers-only`) the login keychain. Uninstall
  removes the trust settings as well as the certificate: settings left behind would still
  trust the root whenever a server sends it along in its chain.

Each store is one `Store` with install/uninstall/installed; nothing is touched but the entry
named after the root (`hubd <fingerprint prefix>`), so the same root is found again and
another hubd's root is left alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from hubd.errors import TlsError
from hubd.tls import ca

SYSTEM_CA_DIR = Path("/usr/local/share/ca-certificates")
MAC_SYSTEM_KEYCHAIN = "/Library/Keychains/System.keychain"


def nickname(root: x509.Certificate) -> str:
    """The root's name in every store: stable for one root, different for another."""
    return "hubd " + ca.fingerprint(root).replace(":", "")[:16]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise TlsError(f"{args[0]}: {exc.strerror}") from None


@dataclass(frozen=True)
class Store:
    """One trust store: its name for people, and what to run."""

    name: str
    kind: str  # "system", "nss", "keychain"
    location: str

    def installed(self, root: x509.Certificate, root_file: Path) -> bool:
        if self.kind == "system":
            path = Path(self.location) / f"{nickname(root).replace(' ', '-')}.crt"
            return path.is_file() and path.read_bytes() == root_file.read_bytes()
        if self.kind == "nss":
            return (
                _run(["certutil", "-L", "-d", self.location, "-n", nickname(root)]).returncode == 0
            )
        found = _run(["security", "find-certificate", "-a", "-Z", self.location])
        return found.returncode == 0 and _sha1(root) in found.stdout

    def install(self, root: x509.Certificate, root_file: Path) -> None:
        if self.kind == "system":
            path = Path(self.location) / f"{nickname(root).replace(' ', '-')}.crt"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root_file, path)
                path.chmod(0o644)
            except PermissionError:
                raise self._roots_only("install") from None
            _checked(["update-ca-certificates"])
        elif self.kind == "nss":
            db = Path(self.location.removeprefix("sql:"))
            if not (db / "cert9.db").exists():
                db.mkdir(parents=True, exist_ok=True, mode=0o700)
                _checked(["certutil", "-N", "-d", self.location, "--empty-password"])
            _checked(
                ["certutil", "-A", "-d", self.location, "-t", "C,,", "-n", nickname(root),
                 "-i", str(root_file)]
            )  # fmt: skip
        else:
            _checked(
                ["security", "add-trusted-cert", *self._admin(), "-r", "trustRoot",
                 "-k", self.location, str(root_file)]
            )  # fmt: skip

    def uninstall(self, root: x509.Certificate, root_file: Path) -> None:
        if self.kind == "system":
            path = Path(self.location) / f"{nickname(root).replace(' ', '-')}.crt"
            if path.exists():
                try:
                    path.unlink()
                except PermissionError:
                    raise self._roots_only("uninstall") from None
                # --fresh: without it, Debian's (bookworm) leaves the root's links in
                # /etc/ssl/certs dangling (tests/integration/test_trust_system.py).
                _checked(["update-ca-certificates", "--fresh"])
        elif self.kind == "nss":
            _run(["certutil", "-D", "-d", self.location, "-n", nickname(root)])
        else:
            # The trust settings live apart from the keychain (admin or user domain); each
            # step may find nothing to do when someone removed it by hand.
            _run(["security", "remove-trusted-cert", *self._admin(), str(root_file)])
            _run(["security", "delete-certificate", "-Z", _sha1(root), self.location])

    def _roots_only(self, action: str) -> TlsError:
        return TlsError(
            f"the system store ({self.location}) is root's: run `sudo hubd trust {action}`, "
            f"or `hubd trust {action} --browsers-only` for your own browsers alone"
        )

    def _admin(self) -> list[str]:
        """`-d`: the admin trust domain, that of the System keychain."""
        return ["-d"] if self.location == MAC_SYSTEM_KEYCHAIN else []


def _sha1(root: x509.Certificate) -> str:
    """The keychain names certificates by their SHA-1 hash (`security -Z`)."""
    return hashlib.sha1(ca.der(root)).hexdigest().upper()


def _checked(args: list[str]) -> None:
    done = _run(args)
    if done.returncode != 0:
        raise TlsError(f"`{' '.join(args[:2])}` failed: {(done.stderr or done.stdout).strip()}")


def _firefox_profiles(home: Path) -> Iterator[Path]:
    for base in (
        home / ".mozilla" / "firefox",
        home / "snap" / "firefox" / "common" / ".mozilla" / "firefox",
        home / "Library" / "Application Support" / "Firefox" / "Profiles",
    ):
        if base.is_dir():
            yield from sorted(p for p in base.iterdir() if (p / "cert9.db").exists())


def stores(
    home: Path,
    *,
    browsers_only: bool = False,
    is_root: bool | None = None,
    platform: str | None = None,
) -> list[Store]:
    """The stores on this machine that `hubd trust install` fills. `browsers_only` leaves the
    system store alone (and needs no root); on macOS that is the login keychain, which
    Safari and Chrome read."""
    is_root = (os.geteuid() == 0) if is_root is None else is_root
    platform = platform or sys.platform
    found: list[Store] = []
    if platform == "darwin":
        keychain = (
            MAC_SYSTEM_KEYCHAIN
            if is_root and not browsers_only
            else str(home / "Library" / "Keychains" / "login.keychain-db")
        )
        found.append(Store("macOS keychain", "keychain", keychain))
    elif not browsers_only and shutil.which("update-ca-certificates"):
        found.append(Store("system store", "system", str(SYSTEM_CA_DIR)))
    if shutil.which("certutil"):
        found.append(Store("Chromium/Chrome", "nss", f"sql:{home / '.pki' / 'nssdb'}"))
        for profile in _firefox_profiles(home):
            found.append(Store(f"Firefox ({profile.name})", "nss", f"sql:{profile}"))
    return found


def missing_tools() -> str | None:
    """One line on what is missing to reach the browsers' stores, or None."""
    if sys.platform != "darwin" and not shutil.which("certutil"):
        return "certutil is missing (Debian/Ubuntu: apt install libnss3-tools): browsers skipped"
    return None
