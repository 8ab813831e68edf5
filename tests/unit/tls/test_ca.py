"""hubd's root vouches for this hub only: checked by the real `openssl verify`."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hubd.timing import Timing
from hubd.tls import ca, leaf

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
Root = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]  # hubd's root and its key


@pytest.fixture(scope="module")
def root() -> Root:
    return ca.make_root("jupyter", "box", NOW, Timing().tls_root_valid_days)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def openssl_verify(tmp_path: Path, root_cert: x509.Certificate, cert: x509.Certificate) -> str:
    """`openssl verify` of `cert` against `root_cert` alone, at the test's time; its output."""
    (tmp_path / "root.pem").write_bytes(_pem(root_cert))
    (tmp_path / "leaf.pem").write_bytes(_pem(cert))
    done = subprocess.run(
        [
            "openssl", "verify", "-x509_strict", "-purpose", "sslserver",
            "-attime", str(int((NOW + datetime.timedelta(days=1)).timestamp())),
            "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def _leaf(root: Root, dns: list[str], ips: list[str]) -> x509.Certificate:
    names = leaf.LeafNames.of(dns, [ipaddress.ip_address(a) for a in ips])
    cert, _ = leaf.issue(root[0], root[1], names, NOW, Timing().tls_leaf_valid_days)
    return cert


def test_the_root_is_a_constrained_ca(root: Root) -> None:
    cert = root[0]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and not usage.value.digital_signature
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    dns = [
        n.value for n in constraints.value.permitted_subtrees or [] if isinstance(n, x509.DNSName)
    ]
    assert dns[0] == "jupyter.local" and "jupyter-2.local" in dns and "local" not in dns
    nets = {
        str(n.value)
        for n in constraints.value.permitted_subtrees or []
        if isinstance(n, x509.IPAddress)
    }
    assert "127.0.0.0/8" not in nets and {"10.0.0.0/8", "fc00::/7"} <= nets


@pytest.mark.parametrize(
    ("dns", "ips"),
    [
        (["jupyter.local"], []),
        (["jupyter.local", "jupyter-2.local"], ["192.168.1.20", "fd00::20", "169.254.3.4"]),
    ],
)
def test_openssl_accepts_this_hubs_names(
    tmp_path: Path, root: Root, dns: list[str], ips: list[str]
) -> None:
    out = openssl_verify(tmp_path, root[0], _leaf(root, dns, ips))
    assert "leaf.pem: OK" in out, out


@pytest.mark.parametrize(
    ("dns", "ips"),
    [
        (["example.com"], []),
        (["jupyter.local", "example.com"], []),  # one bad name spoils the leaf
        (["printer.local"], []),  # not `.local` as a whole
        (["jupyter.local"], ["8.8.8.8"]),  # a public address
        (["jupyter.local"], ["127.0.0.1"]),  # loopback: other people's dev servers
        (["jupyter.local"], ["2001:db8::1"]),  # IPv6 is constrained too
    ],
)
def test_openssl_refuses_anything_else(
    tmp_path: Path, root: Root, dns: list[str], ips: list[str]
) -> None:
    out = openssl_verify(tmp_path, root[0], _leaf(root, dns, ips))
    assert "permitted subtree violation" in out and "verification failed" in out, out


def test_permits_and_fingerprint(root: Root) -> None:
    assert ca.permits(root[0], "jupyter.local")
    assert ca.permits(root[0], "jupyter-9.local")
    assert not ca.permits(root[0], "lab.local")
    assert not ca.permits(root[0], "xjupyter.local")
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=_pem(root[0]),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert text.strip().split("=", 1)[1] == ca.fingerprint(root[0])


def test_the_root_vouches_for_web_servers_only(tmp_path: Path, root: Root) -> None:
    cert = _leaf(root, ["jupyter.local"], [])
    (tmp_path / "root.pem").write_bytes(_pem(root[0]))
    (tmp_path / "leaf.pem").write_bytes(_pem(cert))
    done = subprocess.run(
        [
            "openssl", "verify", "-purpose", "smimesign",
            "-attime", str(int((NOW + datetime.timedelta(days=1)).timestamp())),
            "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    # Depth 1: the root itself is unsuitable for e-mail, whatever a leaf claims.
    assert done.returncode != 0
    assert "at 1 depth lookup: unsuitable certificate purpose" in done.stdout + done.stderr
