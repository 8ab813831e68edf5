"""Advertise the hub on the LAN over mDNS: `jupyter.local` and a `_http._tcp` service.

python-zeroconf answers the queries (A/AAAA for the host name, PTR/SRV/TXT for the service);
hubd closes its gaps around the *host name* (see docs/mdns.md):
- it probes the host name and the service name before claiming them (RFC 6762 section 8),
  taking `jupyter-2`, `JupyterHub on box (2)`, ... when another device already has one;
- it defends the host name: zeroconf does not answer ANY queries, which is how avahi and
  Apple's responder probe, so hubd answers those itself with its address records;
- it notices other devices claiming the name later (every packet seen, plus a periodic query)
  and resolves the conflict as RFC 6762 section 9 says: withdraw, probe again, rename if the
  other device defends it. It never takes a name another device defends;
- it follows address changes (kernel notifications, with a periodic rescan as a fallback):
  new addresses announced, removed ones withdrawn with goodbyes; a link that was not
  advertised on before is probed first;
- goodbyes for everything when it stops.

Threads: `start()` returns at once; a worker thread (hubd._mdns.worker) does the probing,
publishing and watching, the guard (hubd._mdns.guard, its packets handled by
hubd._mdns.defender) has a receive thread, zeroconf (hubd._mdns.publisher) has its event-loop
thread. Which names are claimed, and the next ones after a conflict: hubd._mdns.names.

Run it alone (tests, debugging): `python -m hubd.mdns --name jupyter --port 8000`.
"""

from __future__ import annotations

import argparse
import json
import logging
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from hubd._mdns.report import AdvertiserStatus, State, StatusBoard
from hubd.config import check_port
from hubd.errors import ConfigError, HubdError
from hubd.logsafe import WarnOnce
from hubd.timing import Timing, timing_from_env

__all__ = [
    "Advertiser",
    "AdvertiserStatus",
    "State",
    "lan_addresses",
    "lan_ipv4_addresses",
    "main",
]

# Named, not __name__: under `python -m hubd.mdns` that would be "__main__".
log = logging.getLogger("hubd.mdns")


def lan_addresses(interfaces: Sequence[str] = (), ipv6: bool = True) -> tuple[str, ...]:
    """The addresses `<name>.local` stands for right now, as the advertiser chooses them (the
    hub's certificate covers them: hubd/tls)."""
    from hubd._mdns.addresses import read_interfaces, select_addresses

    return tuple(str(a) for a in select_addresses(read_interfaces(), interfaces, ipv6).addresses)


class Advertiser:
    """Keeps `<name>.local` and the hub's DNS-SD service on the LAN while it runs."""

    def __init__(
        self,
        name: str,
        port: int,
        *,
        interfaces: Sequence[str] = (),
        ipv6: bool = True,
        timing: Timing,
        on_change: Callable[[AdvertiserStatus], None] | None = None,
        https_port: int | None = None,
    ) -> None:
        """`https_port`: also a `_https._tcp` service there (the hub over HTTPS)."""
        if check_port(port) is not None:
            raise ConfigError(f"mDNS: port {port} is not a port number")
        warn = WarnOnce(log).warn
        # Loaded here, not with the module: `hubd status` asks this module only for the LAN
        # addresses, and the worker brings asyncio and zeroconf (~40 ms of its start).
        from hubd._mdns.names import Names
        from hubd._mdns.worker import Worker

        names = Names(name, port, timing, warn)
        self._timing = timing
        self._board = StatusBoard(
            AdvertiserStatus("stopped", names.name, None, (), None, None, port), on_change, warn
        )
        self._worker = Worker(names, interfaces, ipv6, timing, self._board, warn, https_port)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Begin probing and advertising on a thread of its own; returns at once."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._worker.run, name="hubd-mdns", daemon=True)
        self._board.set(state="probing")
        self._thread.start()

    def close(self) -> None:
        """Send goodbyes and stop every thread. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._worker.stop()
        if thread is threading.current_thread():
            return  # close() from an on_change callback: the worker winds down by itself
        if thread is not None:
            thread.join(timeout=self._timing.mdns_close_wait_s)
            if thread.is_alive():
                log.warning("mDNS: the advertiser thread did not stop in time")
        self._board.set(state="stopped", hostname=None, addresses=(), service_name=None)
        self._worker.close_wakeup()

    def status(self) -> AdvertiserStatus:
        return self._board.get()


def lan_ipv4_addresses(interfaces: Sequence[str] = ()) -> list[str]:
    """This machine's LAN IPv4 addresses, chosen as for `<name>.local` (no container bridges,
    VPNs or loopback): the way in for a device where `.local` names do not resolve."""
    return list(lan_addresses(interfaces, ipv6=False))


# ---------------------------------------------------------------------- runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubd.mdns",
        description="Advertise <name>.local and a JupyterHub _http._tcp service until "
        "SIGTERM/SIGINT, then send goodbyes.",
    )
    parser.add_argument("--name", default="jupyter", help="host name to claim (default jupyter)")
    parser.add_argument("--port", type=int, default=8000, help="the hub's port (default 8000)")
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        help="advertise only on this interface (repeatable; default: all LAN)",
    )
    parser.add_argument("--no-ipv6", action="store_true", help="IPv4 addresses only")
    parser.add_argument(
        "--https-port", type=int, default=None, help="also a _https._tcp service on this port"
    )
    parser.add_argument(
        "--json", action="store_true", help="print each status change as a JSON line on stdout"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("zeroconf").setLevel(logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # only a flag: the main loop below does the work

    # The wakeup fd ends the select() below the moment a signal arrives (no polling delay
    # before the goodbyes go out); the handler itself only sets the flag.
    from hubd.wakeup import Wakeup

    wakeup = Wakeup()
    signal.set_wakeup_fd(wakeup.write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_change(status: AdvertiserStatus) -> None:
        if args.json:
            print(json.dumps(status.as_dict()), flush=True)

    try:
        advertiser = Advertiser(
            args.name,
            args.port,
            interfaces=args.interface,
            ipv6=not args.no_ipv6,
            timing=timing_from_env(),
            on_change=on_change,
            https_port=args.https_port,
        )
    except HubdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    advertiser.start()
    while not stop.is_set():
        select.select([wakeup], [], [], 5.0)
        wakeup.drain()
    last = advertiser.status()
    advertiser.close()
    log.info("mDNS: stopped; goodbyes sent for %s", last.hostname or "nothing (no name held)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
