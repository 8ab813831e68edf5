"""What the proxy serves over HTTPS, put together from the config and hubd's CA (hubd/tls).

`tls = "auto"`: hubd's root and a leaf for the hub's names and addresses (made, renewed and
re-issued here, each time the stack asks); `tls_cert`/`tls_key`: a certificate of one's own;
`tls = "off"`: plain HTTP as before (behind one's own reverse proxy).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from hubd.config import Config
from hubd.errors import TlsError
from hubd.timing import Timing
from hubd.tls import ca, store, trustpage

# https_port = 0: the standard port where it is free, else this one.
HTTPS_PORT_STANDARD = 443
HTTPS_PORT_FALLBACK = 8443


@dataclass(frozen=True)
class Served:
    cert_pem: str
    key_pem: str
    https_port: int
    # The name hubd's own probes ask for (SNI and the certificate check).
    hostname: str
    # hubd's root (tls = "auto"); None for a certificate of one's own.
    root: x509.Certificate | None = None
    root_file: Path | None = None
    # The HTTP page's files: name -> text.
    page: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return ca.fingerprint(self.root) if self.root is not None else ""


def tls_enabled(config: Config) -> bool:
    return config.tls != "off"


def port_free(bind_address: str, port: int) -> bool:
    """Whether nothing listens on `port` here. Only "in use" counts as taken: an unprivileged
    hubd may not bind 443 itself, but the engine that publishes it may."""
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_address, port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
    return True


def choose_https_port(configured: int, published: int | None, free: bool) -> int:
    """The HTTPS port: the configured one; for 0, the one the proxy publishes already, else 443
    when free, else 8443 (pure: `free` says whether 443 is)."""
    if configured:
        return configured
    if published:
        return published
    return HTTPS_PORT_STANDARD if free else HTTPS_PORT_FALLBACK


def https_url(host: str, port: int) -> str:
    return f"https://{host}/" if port == HTTPS_PORT_STANDARD else f"https://{host}:{port}/"


def prepare(
    config: Config,
    state_dir: Path,
    timing: Timing,
    https_port: int,
    hostnames: Sequence[str],
    addresses: Sequence[str],
    make: bool = True,
) -> Served | None:
    """The certificate and page files the proxy serves, the leaf made fit first. Without
    `make` (a command that only looks, e.g. `hubd status`): what is on disk, None if nothing."""
    hub_name = f"{config.mdns_name}.local"
    if config.tls_cert or config.tls_key:
        return _own(config, https_port)
    files = store.files_in(state_dir)
    if make:
        root = store.ensure_root(files, config.mdns_name, timing)
        names = [hub_name, *(h for h in hostnames if ca.permits(root.cert, h))]
        store.ensure_leaf(files, root, names, addresses, timing)
        root_cert = root.cert
    else:
        found = store.load_root(files)
        if found is None or not files.leaf_cert.is_file() or not files.leaf_key.is_file():
            return None
        root_cert = found
    facts = trustpage.PageFacts(root_cert, https_port, hub_name)
    return Served(
        cert_pem=files.leaf_cert.read_text(),
        key_pem=files.leaf_key.read_text(),
        https_port=https_port,
        hostname=hub_name,
        root=root_cert,
        root_file=files.root_cert,
        page={
            "index.html": trustpage.render_page(facts),
            trustpage.ROOT_CRT: files.root_cert.read_text(),
            trustpage.MOBILECONFIG: trustpage.mobileconfig(root_cert, hub_name).decode(),
        },
    )


def _own(config: Config, https_port: int) -> Served:
    if not (config.tls_cert and config.tls_key):
        raise TlsError("set both tls_cert and tls_key (PEM files), or neither")
    try:
        cert_pem = Path(config.tls_cert).read_text()
        key_pem = Path(config.tls_key).read_text()
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except (OSError, ValueError) as exc:
        raise TlsError(f"tls_cert/tls_key: cannot read a PEM certificate and key: {exc}") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    hostname = dns[0] if dns else f"{config.mdns_name}.local"
    # No trust page: a certificate of one's own is trusted by devices already.
    return Served(cert_pem, key_pem, https_port, hostname.lstrip("*."))
