"""hubd's root: a CA that can sign certificates for this hub and nothing else.

A device that trusts a root trusts whatever it signs. mkcert's and Caddy's roots may sign any
name, so their leaked key impersonates every web site on every device that trusted them.
hubd's root carries critical X.509 name constraints (RFC 5280 4.2.1.10), enforced by Chrome
(since 2024, also for locally trusted roots), Firefox, Apple's platforms and OpenSSL:

- DNS names: `<name>.local` and the names hubd's mDNS moves to after a conflict
  (`<name>-2.local` ... `<name>-9.local`), each with its subdomains; not `.local` as a whole,
  so the key cannot vouch for the printer or the NAS next door either;
- IP addresses: the private and link-local ranges only (10/8, 172.16/12, 192.168/16,
  169.254/16, fc00::/7, fe80::/10). Loopback is left out: a leaked key must not vouch for
  the development servers on people's own devices. Both families are listed: RFC 5280
  leaves a family without a permitted subtree unconstrained;
- web servers only: the root's extended key usage is serverAuth, which Chrome, Firefox,
  Apple, Windows and OpenSSL apply to everything under a CA, so it cannot vouch for e-mail
  (S/MIME), code or client identities either. (Constraints on e-mail or URI names would do the
  same, but some verifiers refuse a whole critical constraint holding a name type they do not
  implement.)

The root's path length is 0 (no intermediate CA) and its only key usage is signing
certificates. A rename of the hub (`mdns_name`) needs a new root: see `permits()`.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names hubd's mDNS moves to after conflicts (hubd/_mdns/names.py) that the root still
# covers: past these a hub has bigger problems than its certificate.
CONFLICT_RENAMES_COVERED = 9

PERMITTED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fc00::/7"),
    ipaddress.ip_network("fe80::/10"),
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = (ipaddress.IPv4Network, ipaddress.IPv6Network)


def host_names(mdns_name: str) -> tuple[str, ...]:
    """The `.local` names the root for `mdns_name` permits, the configured one first."""
    renames = (f"{mdns_name}-{n}" for n in range(2, CONFLICT_RENAMES_COVERED + 1))
    return tuple(f"{label}.local" for label in (mdns_name, *renames))


def address_permitted(address: Address) -> bool:
    return any(address in network for network in PERMITTED_NETWORKS)


def name_constraints(mdns_name: str) -> x509.NameConstraints:
    permitted: list[x509.GeneralName] = [x509.DNSName(name) for name in host_names(mdns_name)]
    permitted += [x509.IPAddress(network) for network in PERMITTED_NETWORKS]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def make_root(
    mdns_name: str, machine: str, now: datetime.datetime, valid_days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new root for the hub `<mdns_name>.local` on `machine`. ECDSA P-256: small, fast and
    accepted by every platform the trust page serves."""
    key = ec.generate_private_key(ec.SECP256R1())
    # A name people can recognise in their certificate settings, unique per root.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hubd"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, machine[:64] or "hub"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"hubd {mdns_name}.local {secrets.token_hex(4)}"
            ),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(name_constraints(mdns_name), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def permits(root: x509.Certificate, host: str) -> bool:
    """Whether the root's name constraints allow a certificate for `host` (a DNS name):
    after a rename of the hub, the old root may not, and a new one is needed."""
    try:
        constraints = root.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return True
    allowed = [
        name.value
        for name in constraints.permitted_subtrees or []
        if isinstance(name, x509.DNSName)
    ]
    host = host.lower().rstrip(".")
    return any(host == a or host.endswith("." + a) for a in allowed)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as devices show it: upper-case hex pairs with colons."""
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
