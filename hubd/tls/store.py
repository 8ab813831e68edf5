"""hubd's root and leaf on disk, in `<state folder>/tls/`, made or renewed when needed.

    root.key  root.crt   the CA (key 0600; carried by backups, kept across upgrades)
    leaf.key  leaf.crt   the server certificate the proxy serves (leaf.crt holds the chain)

Files are written whole (a temporary file, then a rename), keys created 0600 before a byte is
written, so a crash leaves the old file or the new one, never half a key nor a readable one.
"""

from __future__ import annotations

import datetime
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hubd.errors import TlsError
from hubd.files import atomic_write
from hubd.timing import Timing
from hubd.tls import ca, leaf

log = logging.getLogger(__name__)

TLS_DIR = "tls"


@dataclass(frozen=True)
class Files:
    folder: Path

    @property
    def root_key(self) -> Path:
        return self.folder / "root.key"

    @property
    def root_cert(self) -> Path:
        return self.folder / "root.crt"

    @property
    def leaf_key(self) -> Path:
        return self.folder / "leaf.key"

    @property
    def leaf_cert(self) -> Path:
        return self.folder / "leaf.crt"


def files_in(state_dir: Path) -> Files:
    return Files(state_dir / TLS_DIR)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write `path` whole (hubd.files.atomic_write: a 0600 temporary file, then a rename)."""
    # Readable folder: `hubd trust` of another account reads the system service's root.crt;
    # the keys themselves are 0600.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    atomic_write(path, data, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _read_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise TlsError(
            f"{path} is not a PEM certificate ({exc}); remove it to make a new one"
        ) from None


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{path} is not a PEM key ({exc}); remove it to make a new one") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{path} is not an EC key; remove it to make a new one")
    return key


@dataclass(frozen=True)
class Root:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> str:
        return ca.fingerprint(self.cert)


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def load_root(files: Files) -> x509.Certificate | None:
    """The root certificate alone (status, the trust page, `hubd trust`), if made yet."""
    return _read_cert(files.root_cert)


def ensure_root(
    files: Files, mdns_name: str, timing: Timing, now: datetime.datetime | None = None
) -> Root:
    """The root, made at the first start. A root whose constraints do not cover the hub's name
    (`mdns_name` changed) or that has expired is replaced, and devices must trust again: said
    in the log."""
    now = now or now_utc()
    cert, key = _read_cert(files.root_cert), _read_key(files.root_key)
    reason = None
    if cert is None or key is None:
        reason = None if cert is None and key is None else "half of it is missing"
    elif cert.public_key() != key.public_key():
        reason = "its key does not match it"
    elif not ca.permits(cert, f"{mdns_name}.local"):
        reason = f"it cannot vouch for the new name {mdns_name}.local"
    elif (
        now + datetime.timedelta(days=timing.tls_leaf_renew_before_days) >= cert.not_valid_after_utc
    ):
        reason = f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert is not None and key is not None and reason is None:
        return Root(cert, key)
    if reason is not None:
        log.warning(
            "tls: making a new root for the hub, as the old one %s: devices that trusted the "
            "old one must trust the new one (the trust page, `hubd trust install`)",
            reason,
        )
    machine = socket.gethostname().split(".")[0]
    cert, key = ca.make_root(mdns_name, machine, now, timing.tls_root_valid_days)
    # The key first: a root certificate without its key would be replaced at the next start.
    write_file(files.root_key, _key_pem(key), 0o600)
    write_file(files.root_cert, _pem(cert), 0o644)
    # A leaf of the old root is useless now.
    files.leaf_cert.unlink(missing_ok=True)
    log.info("tls: made the hub's root, SHA-256 %s", ca.fingerprint(cert))
    return Root(cert, key)


def ensure_leaf(
    files: Files,
    root: Root,
    hostnames: Iterable[str],
    addresses: Iterable[str],
    timing: Timing,
    now: datetime.datetime | None = None,
) -> str | None:
    """Make the leaf fit the hub's names and addresses; the reason when a new one was made."""
    now = now or now_utc()
    wanted = leaf.wanted_names(hostnames, addresses)
    current = _read_cert(files.leaf_cert)
    reason = leaf.misfit(
        current, root.cert, wanted, now, datetime.timedelta(days=timing.tls_leaf_renew_before_days)
    )
    if reason is None and _read_key(files.leaf_key) is None:
        reason = "its key is missing"
    if reason is None:
        return None
    cert, key = leaf.issue(root.cert, root.key, wanted, now, timing.tls_leaf_valid_days)
    write_file(files.leaf_key, _key_pem(key), 0o600)
    write_file(files.leaf_cert, _pem(cert), 0o644)
    log.info("tls: new certificate for %s (the old one: %s)", wanted.describe(), reason)
    return reason
