"""The hub's server certificate: its current names and addresses, signed by hubd's root.

`wanted_names()` says what a leaf must cover, `misfit()` whether a leaf still does (pure: the
daemon asks it on every check, the tests directly), `issue()` makes a new one.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hubd.tls import ca
from hubd.tls.ca import Address, address_permitted

# Clocks on phones and laptops are often a little off: a leaf valid from "now" would be
# refused by a device whose clock runs behind.
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class LeafNames:
    """What a leaf covers: DNS names and IP addresses, in a canonical order."""

    dns: tuple[str, ...]
    ips: tuple[Address, ...]

    @classmethod
    def of(cls, dns: Iterable[str], ips: Iterable[Address]) -> LeafNames:
        return cls(
            tuple(sorted({d.lower().rstrip(".") for d in dns})),
            tuple(sorted(set(ips), key=lambda a: (a.version, int(a)))),
        )

    def describe(self) -> str:
        return ", ".join([*self.dns, *(str(a) for a in self.ips)])


def wanted_names(hostnames: Iterable[str], addresses: Iterable[str | Address]) -> LeafNames:
    """The leaf for the hub's `.local` names and those of its addresses the root permits
    (private and link-local ones: a global IPv6 address would make the whole leaf invalid
    under the root's name constraints, so it is left out, and people use the name)."""
    ips = []
    for text in addresses:
        address = ipaddress.ip_address(str(text).split("%")[0])
        if address_permitted(address):
            ips.append(address)
    return LeafNames.of(hostnames, ips)


def names_of(leaf: x509.Certificate) -> LeafNames:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return LeafNames((), ())
    ips = [a for a in san.get_values_for_type(x509.IPAddress) if not isinstance(a, ca.Network)]
    return LeafNames.of(san.get_values_for_type(x509.DNSName), ips)


def misfit(
    leaf: x509.Certificate | None,
    root: x509.Certificate,
    wanted: LeafNames,
    now: datetime.datetime,
    renew_before: datetime.timedelta,
) -> str | None:
    """Why `leaf` must be replaced (for the log line), or None when it still fits: signed by
    this root, for exactly these names and addresses, valid now and for a while yet."""
    if leaf is None:
        return "there is none yet"
    if leaf.issuer != root.subject:
        return "it was signed by another root"
    try:
        leaf.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return "it was signed by another root"
    have = names_of(leaf)
    if have != wanted:
        return f"the hub's names or addresses changed (now {wanted.describe() or 'none'})"
    if now < leaf.not_valid_before_utc:
        return "it is not valid yet (the clock moved back)"
    if now + renew_before >= leaf.not_valid_after_utc:
        return f"it expires on {leaf.not_valid_after_utc:%Y-%m-%d}"
    return None


def issue(
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    names: LeafNames,
    now: datetime.datetime,
    valid_days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new leaf (and key) for `names`, valid for `valid_days` in all (backdating included)."""
    key = ec.generate_private_key(ec.SECP256R1())
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in names.dns]
    general += [x509.IPAddress(a) for a in names.ips]
    not_before = now - _BACKDATE
    common = names.dns[0] if names.dns else str(names.ips[0]) if names.ips else "hubd"
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(root_key, hashes.SHA256()), key
