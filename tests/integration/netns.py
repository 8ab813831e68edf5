"""Test hosts for the mDNS tests: network namespaces on one virtual LAN, with avahi.

A `Lab` is a "switch" namespace holding a Linux bridge; each `Host` is a namespace whose `eth0`
is a veth pair plugged into that bridge, with TEST-NET addresses only (192.0.2.0/24,
2001:db8::/64) and a 224.0.0.0/4 route. Nothing leaves the namespaces: they have no other
routes and no DNS in their nsswitch.

Each host also gets a *holder* process started by `ip netns exec` (which already makes a private
mount namespace, slave to the real one) in which:
- a tmpfs covers /run, so its avahi-daemon (socket and pid in /run/avahi-daemon) and its
  dbus-daemon (/run/dbus/system_bus_socket) do not meet those of other hosts or of the machine;
- a bind mount puts our nsswitch.conf (`hosts: files mdns_minimal`) over /etc/nsswitch.conf,
  so `getent hosts x.local` goes through nss-mdns to that host's avahi. The real /etc is never
  written (no /etc/netns/<name> directory either: nothing to leave behind after a crash).
Every command for a host then runs with `nsenter --target <holder> --mount --net`.

Cleanup kills every process a Lab started, then deletes its namespaces; a Lab also removes
namespaces left by an earlier run whose process is gone (`hubd-t<pid>-...`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.patience import patient

PREFIX = "hubd-t"
_TOOLS = ("ip", "nsenter", "avahi-daemon", "avahi-browse", "avahi-publish", "dbus-daemon", "getent")

_DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

_AVAHI_CONFIG = """[server]
host-name={host_name}
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes

[reflector]
enable-reflector=no

[rlimits]
"""


def missing_tools() -> list[str]:
    return [tool for tool in _TOOLS if shutil.which(tool) is None]


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def remove_stale_namespaces() -> None:
    """Delete namespaces of earlier runs whose process is gone (a killed pytest)."""
    for line in _run(["ip", "netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.match(rf"^{PREFIX}(\d+)-", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _run(["ip", "netns", "del", name], check=False)


class Process:
    """A process in a host; its output is collected by a thread so it can be searched."""

    def __init__(self, argv: Sequence[str], label: str) -> None:
        self.label = label
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """The first line from index `start` on that matches `pattern`; raises on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + patient(timeout)
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    if match:
                        return match
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and index >= len(self.lines)):
                    raise AssertionError(
                        f"{self.label}: no line matching {pattern!r} within {timeout} s; "
                        f"output:\n{self.output()[-4000:]}"
                    )
                self._cond.wait(min(left, 0.2))

    def line_count(self) -> int:
        with self._cond:
            return len(self.lines)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL; the exit code (None if it had to be killed)."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
                return None
        self._reader.join(2)
        return self.popen.returncode


class Host:
    """One namespace on the lab's LAN."""

    def __init__(
        self, lab: Lab, short: str, ipv4: str, ipv6: str | None, holder: bool = True
    ) -> None:
        self.lab = lab
        self.short = short
        self.netns = f"{lab.tag}-{short}"
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.dir = lab.workdir / short
        self.dir.mkdir()
        _run(["ip", "netns", "add", self.netns])
        lab.namespaces.append(self.netns)
        # No duplicate address detection: addresses (link-local ones too) usable at once.
        for key in ("all", "default"):
            _run(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.netns,
                    "sysctl",
                    "-q",
                    "-w",
                    f"net.ipv6.conf.{key}.accept_dad=0",
                    # Secondary IPv4 addresses survive removing the primary (as with
                    # systemd-networkd), so an address can be replaced add-then-delete.
                    f"net.ipv4.conf.{key}.promote_secondaries=1",
                ]
            )
        port = f"p-{short}"
        _run(
            [
                "ip",
                "-n",
                lab.switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.netns,
            ]
        )
        _run(["ip", "-n", lab.switch, "link", "set", port, "master", "br0", "up"])
        self.ip("link", "set", "lo", "up")
        self.ip("link", "set", "eth0", "up")
        self.ip("addr", "add", f"{ipv4}/24", "dev", "eth0")
        if ipv6:
            self.ip("addr", "add", f"{ipv6}/64", "dev", "eth0", "nodad")
        self.ip("route", "add", "224.0.0.0/4", "dev", "eth0")
        # Without a holder, commands join only the network namespace (see `command`).
        self.holder: Process | None = None
        if holder:
            self._start_holder()

    def add_port(self, ifname: str, ipv4: str | None, ipv6: str | None, up: bool = True) -> None:
        """Another interface on the same LAN (a second network card: Wi-Fi next to Ethernet)."""
        port = f"p-{self.short}-{ifname}"[:15]
        _run(
            [
                "ip",
                "-n",
                self.lab.switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                ifname,
                "netns",
                self.netns,
            ]
        )
        _run(["ip", "-n", self.lab.switch, "link", "set", port, "master", "br0", "up"])
        self._configure(ifname, ipv4, ipv6, up)

    def add_container_bridge(
        self, bridge: str, ipv4: str, ipv6: str, veth: str, veth_ipv4: str
    ) -> None:
        """A Docker-like bridge with one container's veth plugged in: up, running, and
        leading nowhere on the LAN (the container end sits unplugged in the switch namespace).
        """
        self.ip("link", "add", bridge, "type", "bridge")
        self.ip(
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            f"c-{self.short}"[:15],
            "netns",
            self.lab.switch,
        )
        _run(["ip", "-n", self.lab.switch, "link", "set", f"c-{self.short}"[:15], "up"])
        self.ip("link", "set", veth, "master", bridge)
        self._configure(bridge, ipv4, ipv6, True)
        self._configure(veth, veth_ipv4, None, True)

    def _configure(self, ifname: str, ipv4: str | None, ipv6: str | None, up: bool) -> None:
        if ipv4:
            self.ip("addr", "add", ipv4, "dev", ifname)
        if ipv6:
            self.ip("addr", "add", ipv6, "dev", ifname, "nodad")
        if up:
            self.ip("link", "set", ifname, "up")

    def _start_holder(self) -> None:
        nsswitch = self.dir / "nsswitch.conf"
        lines = Path("/etc/nsswitch.conf").read_text().splitlines()
        lines = [line for line in lines if not line.startswith("hosts:")]
        # No `dns`: a name nss-mdns does not find must never become a query to a real server.
        nsswitch.write_text("\n".join([*lines, "hosts: files mdns_minimal"]) + "\n")
        script = (
            "set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/avahi-daemon /run/dbus; "
            f"mount --bind {nsswitch} /etc/nsswitch.conf; echo ready; exec sleep infinity"
        )
        self.holder = Process(
            ["ip", "netns", "exec", self.netns, "sh", "-c", script], f"{self.short}/holder"
        )
        self.lab.processes.append(self.holder)
        self.holder.wait_for_line("^ready$", 10)

    def ip(self, *args: str) -> str:
        return _run(["ip", "-n", self.netns, *args])

    def command(self, argv: Sequence[str]) -> list[str]:
        if self.holder is None:
            return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]
        return ["nsenter", f"--target={self.holder.popen.pid}", "--mount", "--net", "--", *argv]

    def run(
        self, argv: Sequence[str], *, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.short}: {' '.join(argv)} failed: {done.stderr.strip()}")
        return done

    def spawn(self, argv: Sequence[str], label: str, env: dict[str, str] | None = None) -> Process:
        prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
        process = Process(self.command([*prefix, *argv]), f"{self.short}/{label}")
        self.lab.processes.append(process)
        return process

    def resolve(self, name: str, database: str = "ahostsv4", timeout: float = 15) -> list[str]:
        """Addresses `getent` finds for `name` through nss-mdns (empty when it finds none)."""
        done = self.run(["getent", database, name], timeout=timeout, check=False)
        found: list[str] = []
        for line in done.stdout.splitlines():
            address = line.split()[0]
            if address not in found:
                found.append(address)
        return found

    def start_avahi(self, host_name: str, timeout: float = 15) -> Process:
        """dbus-daemon + avahi-daemon in this host, running once avahi has its host name."""
        config = self.dir / "dbus.conf"
        config.write_text(_DBUS_CONFIG)
        self.dbus = self.spawn(
            [
                "dbus-daemon",
                f"--config-file={config}",
                "--nofork",
                "--nopidfile",
                "--print-address",
            ],
            "dbus",
        )
        self.dbus.wait_for_line("unix:path=", 10)
        avahi_conf = self.dir / "avahi-daemon.conf"
        avahi_conf.write_text(_AVAHI_CONFIG.format(host_name=host_name))
        self.avahi = self.spawn(
            [
                "avahi-daemon",
                "-f",
                str(avahi_conf),
                "--no-drop-root",
                "--no-chroot",
                "--no-rlimits",
                "--no-proc-title",
            ],
            "avahi",
        )
        self.avahi.wait_for_line(r"Server startup complete", timeout)
        return self.avahi

    def stop_avahi(self) -> None:
        for attr in ("avahi", "dbus"):
            process: Process | None = getattr(self, attr, None)
            if process is not None:
                process.stop()
                setattr(self, attr, None)


class Lab:
    """A virtual LAN of namespaces; `close()` removes everything, also after a failure."""

    def __init__(self, tag: str = "") -> None:
        remove_stale_namespaces()
        self.tag = f"{PREFIX}{os.getpid()}{tag}"
        self.workdir = Path(tempfile.mkdtemp(prefix="hubd-netns-"))
        self.namespaces: list[str] = []
        self.processes: list[Process] = []
        self.hosts: dict[str, Host] = {}
        self.switch = f"{self.tag}-sw"
        try:
            _run(["ip", "netns", "add", self.switch])
            self.namespaces.append(self.switch)
            # Snooping off: the bridge must flood 224.0.0.251 and ff02::fb to every port, as a
            # home switch without an IGMP querier does.
            _run(
                [
                    "ip",
                    "-n",
                    self.switch,
                    "link",
                    "add",
                    "br0",
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ]
            )
            _run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        except BaseException:
            self.close()
            raise

    def add_host(self, short: str, ipv4: str, ipv6: str | None = None, holder: bool = True) -> Host:
        """A host on the LAN; `holder=False` for one that needs no private /run or nsswitch
        (its commands then join only its network namespace, no mount namespace of its own:
        a long-lived `dockerd` must not keep copies of the main engine's mounts)."""
        try:
            host = Host(self, short, ipv4, ipv6, holder)
        except BaseException:
            self.close()
            raise
        self.hosts[short] = host
        return host

    def add_root_port(self, ifname: str, ipv4: str) -> None:
        """Plug the root namespace (where the tests run) into the LAN: a veth `ifname` with
        `ipv4` (CIDR), whose peer sits in the switch. The route covers the LAN's subnet only,
        and deleting the switch namespace removes the pair."""
        try:
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "p-root",
                    "netns",
                    self.switch,
                ]
            )
            _run(["ip", "-n", self.switch, "link", "set", "p-root", "master", "br0", "up"])
            _run(["ip", "addr", "add", ipv4, "dev", ifname])
            _run(["ip", "link", "set", ifname, "up"])
        except BaseException:
            _run(["ip", "link", "del", ifname], check=False)
            self.close()
            raise

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop(timeout=3)
        self.processes.clear()
        for name in reversed(self.namespaces):
            _run(["ip", "netns", "del", name], check=False)
        self.namespaces.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def lab(tag: str = "") -> Iterator[Lab]:
    the_lab = Lab(tag)
    try:
        yield the_lab
    finally:
        the_lab.close()


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Seconds until `check()` was true; raises AssertionError after `timeout`."""
    start = time.monotonic()
    timeout = patient(timeout)
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
