"""The front's program: a byte pipe from the hub's published port to the proxy (docs/proxy.md).

It runs inside the front container (stack/front.py), started as `python3 -I -c <this file>`
from hubd's hub image, so it uses the standard library only and imports nothing of hubd.

For every accepted connection it connects to the proxy by name on the stack network and
copies bytes both ways, without reading them (TLS passes through). When the proxy is away
(killed, restarting after a crash, being replaced) it connects to the standby proxy instead
(stack/proxy_standby.py), at once; when neither answers the connect is retried for a bounded
time instead of resetting the person's connection: a browser whose websocket dropped
reconnects at once, and that one try must not fail, or JupyterLab waits 10-30 s before the
next.

The proxies are found by name at each connection, so hubd switches proxies by renaming
containers (Docker's DNS follows a rename at once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from dataclasses import dataclass

log = logging.getLogger("hubd-front")

CHUNK_BYTES = 65536
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
BACKLOG = 1024


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Forward:
    """One listening port and where its connections go: the first target that answers, in
    order (the proxy, then its standby)."""

    listen_port: int
    targets: tuple[Target, ...]

    @classmethod
    def parse(cls, text: str) -> Forward:
        """`8000=hub-proxy:8000,hub-proxy-standby:8000`."""
        listen, _, rest = text.partition("=")
        targets: list[Target] = []
        for target in rest.split(","):
            host, _, port = target.rpartition(":")
            if not port.isdigit() or not host:
                targets = []
                break
            targets.append(Target(host, int(port)))
        if not listen.isdigit() or not targets:
            raise argparse.ArgumentTypeError(f"not LISTEN_PORT=HOST:PORT[,HOST:PORT]: {text!r}")
        return cls(int(listen), tuple(targets))

    def __str__(self) -> str:
        return ",".join(str(target) for target in self.targets)


# The address each target name had when it last resolved. Docker's DNS (127.0.0.11) is
# served by dockerd: while the engine is frozen or restarting names do not resolve, but the
# proxy is still there and people's connections must still reach it.
_LAST_ADDRESS: dict[str, str] = {}
# How many retry intervals a name lookup may take before the last address is used: Docker's
# DNS answers in milliseconds when dockerd runs; a frozen one never does.
RESOLVE_RETRIES = 20


async def _address(host: str, timeout: float) -> str:
    """The target's address now, or the one it last had when Docker's DNS does not answer.

    Only an unanswered lookup (dockerd frozen) falls back to the last address. A name Docker
    says does not exist is a stopped or renamed proxy: its old address may be gone or, after a
    restart, someone else's, and a connect to a vanished address hangs for seconds of ARP
    before it fails; the lookup is retried instead, until the proxy is back under its name."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=timeout
        )
    except (OSError, asyncio.TimeoutError) as exc:
        unanswered = isinstance(exc, asyncio.TimeoutError) or (
            isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
        )
        if unanswered and host in _LAST_ADDRESS:
            return _LAST_ADDRESS[host]
        raise
    address = str(infos[0][4][0])
    _LAST_ADDRESS[host] = address
    return address


async def _connect(target: Target, timeout: float, retry_s: float) -> Connection:
    address = await _address(target.host, retry_s * RESOLVE_RETRIES)
    return await asyncio.wait_for(
        asyncio.open_connection(address, target.port), timeout=max(timeout, 0.1)
    )


async def connect_upstream(
    forward: Forward, wait_s: float, retry_s: float, try_s: float
) -> tuple[Connection, Target]:
    """Connect to the first target that answers, retrying refused connections and unknown
    names (a stopped or renamed container has none) until `wait_s` has passed.

    A target with another behind it gets `try_s` to accept: a connect to the address of a
    proxy that has just gone can hang for seconds (ARP), while the next target is there now.
    Returns the connection and the target it went to."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    last = forward.targets[-1]
    while True:
        for target in forward.targets:
            remaining = deadline - loop.time()
            try:
                timeout = remaining if target is last else min(try_s, remaining)
                return await _connect(target, timeout, retry_s), target
            except (OSError, asyncio.TimeoutError):
                if target is not last:
                    continue
                if loop.time() + retry_s >= deadline:
                    raise
        await asyncio.sleep(retry_s)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the half-close on (HTTP clients rely on it)."""
    while True:
        data = await reader.read(CHUNK_BYTES)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout=1)


class Front:
    def __init__(
        self, forwards: list[Forward], wait_s: float, retry_s: float, try_s: float
    ) -> None:
        self.forwards = forwards
        self.wait_s = wait_s
        self.retry_s = retry_s
        self.try_s = try_s
        self.servers: list[asyncio.Server] = []
        # Strong references: asyncio keeps only weak ones, and Python 3.11's streams drop
        # theirs to a connection's task when its peer goes, so a task still cleaning up could
        # be garbage-collected half-way.
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "0.0.0.0") -> None:
        for forward in self.forwards:

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                forward: Forward = forward,
            ) -> None:
                await self.serve(forward, reader, writer)

            server = await asyncio.start_server(
                handle, host, forward.listen_port, backlog=BACKLOG, reuse_address=True
            )
            self.servers.append(server)
            log.info("listening on %s, forwarding to %s", forward.listen_port, forward)

    async def serve(
        self, forward: Forward, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await self._serve(forward, reader, writer)
        finally:
            if task is not None:
                self.tasks.discard(task)

    async def _serve(
        self, forward: Forward, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            (up_reader, up_writer), target = await connect_upstream(
                forward, self.wait_s, self.retry_s, self.try_s
            )
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning(
                "%s did not answer within %.1f s (%s): closing a connection",
                forward,
                self.wait_s,
                exc,
            )
            await close(writer)
            return
        waited = loop.time() - began
        if waited > 0.5 or target is not forward.targets[0]:
            log.info("a connection went to %s after %.2f s", target, waited)
        tasks = [
            asyncio.ensure_future(pipe(reader, up_writer)),
            asyncio.ensure_future(pipe(up_reader, writer)),
        ]
        self.tasks.update(tasks)
        try:
            # A reset on either side ends both; a clean end of one direction waits for the other.
            pending: set[asyncio.Future[None]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(task.exception() is not None for task in done):
                    break
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
                self.tasks.discard(task)
            await close(up_writer)
            await close(writer)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()


async def run(args: argparse.Namespace) -> None:
    front = Front(args.forward, args.wait_s, args.retry_s, args.try_s)
    await front.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await front.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubd-front", description="hubd's front")
    parser.add_argument("--forward", type=Forward.parse, action="append", required=True)
    parser.add_argument("--wait-s", type=float, required=True)
    parser.add_argument("--retry-s", type=float, required=True)
    parser.add_argument("--try-s", type=float, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
