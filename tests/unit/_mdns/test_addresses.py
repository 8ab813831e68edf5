"""Which addresses the mDNS host name stands for: the filtering rules."""

from __future__ import annotations

import ipaddress

import pytest

from hubd._mdns.addresses import (
    Interface,
    LinkFlags,
    is_virtual_name,
    read_interfaces,
    select_addresses,
)

ip = ipaddress.ip_address
UP = LinkFlags()


def iface(name: str, index: int, *addresses: str, flags: LinkFlags | None = UP) -> Interface:
    return Interface(name, index, tuple(ip(a) for a in addresses), flags)


def announced(*interfaces: Interface, wanted: tuple[str, ...] = (), ipv6: bool = True) -> list[str]:
    return [str(a) for a in select_addresses(interfaces, wanted, ipv6).addresses]


TYPICAL = (
    iface("lo", 1, "127.0.0.1", "::1", flags=LinkFlags(loopback=True)),
    iface("eth0", 2, "192.168.1.20", "fe80::1", "2001:db8::20", "fd00::20"),
    iface("docker0", 3, "172.17.0.1", "fe80::42"),
    iface("br-3f2a1b9c", 4, "172.18.0.1"),
    iface("veth12ab", 5, "fe80::99"),
    iface("virbr0", 6, "192.168.122.1"),
    iface("cni0", 7, "10.88.0.1"),
    iface("flannel.1", 8, "10.244.0.0"),
    iface("tailscale0", 9, "100.64.0.5"),
    iface("wg0", 10, "10.7.0.2"),
)


def test_only_lan_addresses_of_a_typical_docker_host() -> None:
    assert announced(*TYPICAL) == ["192.168.1.20", "2001:db8::20", "fd00::20"]


def test_local_set_has_every_address_for_recognising_our_own_packets() -> None:
    selection = select_addresses(TYPICAL)
    assert ip("172.17.0.1") in selection.local
    assert ip("127.0.0.1") in selection.local
    assert ip("fe80::1") in selection.local


@pytest.mark.parametrize(
    ("name", "virtual"),
    [
        ("docker0", True),
        ("br-0123abcd", True),
        ("veth9f3", True),
        ("virbr0", True),
        ("cni0", True),
        ("flannel.1", True),
        ("tun0", True),
        ("tap3", True),
        ("wg0", True),
        ("utun4", True),
        ("awdl0", True),
        ("bridge100", True),
        ("lo", True),
        ("lo0", True),
        ("eth0", False),
        ("enp3s0", False),
        ("wlan0", False),
        ("wlp2s0", False),
        ("en0", False),
        ("br0", False),
        ("bond0", False),
        ("eno1", False),
    ],
)
def test_virtual_interface_names(name: str, virtual: bool) -> None:
    assert is_virtual_name(name) is virtual


def test_loopback_never_even_when_named() -> None:
    lo = iface("lo", 1, "127.0.0.1", "::1", flags=LinkFlags(loopback=True))
    assert announced(lo, wanted=("lo",)) == []
    # Loopback addresses on an interface without a loopback flag are dropped too.
    assert announced(iface("eth0", 2, "127.0.0.2", "::1", "192.0.2.5")) == ["192.0.2.5"]


def test_down_or_unplugged_interfaces_are_left_out() -> None:
    down = iface("eth0", 2, "192.0.2.5", flags=LinkFlags(up=False, running=False))
    unplugged = iface("eth1", 3, "192.0.2.6", flags=LinkFlags(running=False))
    wifi = iface("wlan0", 4, "192.0.2.7")
    assert announced(down, unplugged, wifi) == ["192.0.2.7"]


def test_point_to_point_and_non_multicast_links_are_left_out() -> None:
    ppp = iface("uplink", 2, "192.0.2.5", flags=LinkFlags(point_to_point=True))
    nomc = iface("odd0", 3, "192.0.2.6", flags=LinkFlags(multicast=False))
    assert announced(ppp, nomc, iface("eth0", 4, "192.0.2.7")) == ["192.0.2.7"]


def test_interfaces_named_in_config_override_the_name_rules() -> None:
    assert announced(*TYPICAL, wanted=("docker0",)) == ["172.17.0.1"]
    assert announced(*TYPICAL, wanted=("wg0", "eth0"), ipv6=False) == ["192.168.1.20", "10.7.0.2"]


def test_missing_named_interface_is_reported() -> None:
    selection = select_addresses(TYPICAL, ("eht0",))
    assert selection.links == ()
    assert selection.missing == ("eht0",)


def test_ipv6_off() -> None:
    assert announced(*TYPICAL, ipv6=False) == ["192.168.1.20"]
    link = select_addresses(TYPICAL, ipv6=False).links[0]
    assert link.ipv6 is False


def test_ipv6_link_local_is_never_announced_but_the_link_listens_on_ipv6() -> None:
    only_ll = iface("eth0", 2, "192.0.2.5", "fe80::5")
    selection = select_addresses([only_ll])
    assert [str(a) for a in selection.addresses] == ["192.0.2.5"]
    assert selection.links[0].ipv6 is True


def test_ipv4_link_local_only_when_there_is_no_other_ipv4() -> None:
    both = iface("eth0", 2, "169.254.3.4", "192.0.2.5")
    assert announced(both) == ["192.0.2.5"]
    # LL on one link, routable on another: still no LL.
    assert announced(iface("eth0", 2, "169.254.3.4"), iface("wlan0", 3, "192.0.2.5")) == [
        "192.0.2.5"
    ]
    # A cable straight to a laptop, no DHCP: 169.254 is the only way in.
    assert announced(iface("eth0", 2, "169.254.3.4", "fe80::1")) == ["169.254.3.4"]


def test_ipv6_only_network() -> None:
    assert announced(iface("eth0", 2, "fe80::1", "2001:db8::7")) == ["2001:db8::7"]


def test_link_details_for_sockets() -> None:
    eth = iface("eth0", 7, "192.0.2.9", "169.254.1.1", "2001:db8::9")
    (link,) = select_addresses([eth]).links
    assert link.name == "eth0" and link.index == 7
    assert [str(a) for a in link.ipv4] == ["169.254.1.1", "192.0.2.9"]
    assert link.ipv6 is True


def test_unknown_flags_fall_back_to_name_rules() -> None:
    assert announced(
        iface("eth0", 2, "192.0.2.5", flags=None), iface("docker0", 3, "172.17.0.1", flags=None)
    ) == ["192.0.2.5"]


def test_order_is_stable() -> None:
    a = iface("wlan0", 3, "192.0.2.7", "2001:db8::7")
    b = iface("eth0", 2, "192.0.2.9", "192.0.2.5")
    assert announced(a, b) == ["192.0.2.5", "192.0.2.9", "192.0.2.7", "2001:db8::7"]
    assert announced(a, b) == announced(b, a)


def test_reads_this_machines_interfaces() -> None:
    interfaces = read_interfaces()
    loopback = [i for i in interfaces if ip("127.0.0.1") in i.addresses]
    assert loopback
    assert loopback[0].flags is not None and loopback[0].flags.loopback
    assert ip("127.0.0.1") not in select_addresses(interfaces).addresses
