"""The front's program on loopback: bytes both ways, a proxy that comes late, one that never
comes, a half-close passed on."""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

import pytest

from hubd.stack.front_server import Forward, Front, Target
from tests.ports import free_port


async def echo_server(port: int) -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's half-close
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", port)


async def exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return answer


def one(listen: int, port: int) -> Forward:
    return Forward(listen, (Target("127.0.0.1", port),))


def test_forward_parse() -> None:
    assert Forward.parse("8000=hub-proxy:8000") == Forward(8000, (Target("hub-proxy", 8000),))
    assert Forward.parse("8001=p:8001,p-standby:8001") == Forward(
        8001, (Target("p", 8001), Target("p-standby", 8001))
    )
    for bad in ("8000", "8000=p", "x=p:1", "8000=p:1,", "8000=p:1,q"):
        with pytest.raises(argparse.ArgumentTypeError):
            Forward.parse(bad)


def test_the_front_waits_for_a_late_upstream_and_closes_when_it_never_comes() -> None:
    async def scenario() -> None:
        listen, upstream = free_port(), free_port()
        front = Front([one(listen, upstream)], wait_s=3.0, retry_s=0.02, try_s=0.5)
        await front.start("127.0.0.1")
        try:
            # The upstream appears only after the client has connected: no reset meanwhile.
            pending = asyncio.ensure_future(exchange(listen, b"hello"))
            await asyncio.sleep(0.4)
            assert not pending.done()
            server = await echo_server(upstream)
            assert await asyncio.wait_for(pending, 5) == b"HELLO"
            # A large payload both ways, unchanged.
            big = bytes(range(256)) * 4096
            assert await asyncio.wait_for(exchange(listen, big), 10) == big.upper()
            server.close()
            await server.wait_closed()
            # An upstream that never comes: the connection is closed after the wait.
            short = Front([one(free_port(), upstream)], wait_s=0.3, retry_s=0.02, try_s=0.5)
            await short.start("127.0.0.1")
            try:
                port = short.forwards[0].listen_port
                assert await asyncio.wait_for(exchange(port, b"x"), 5) == b""
            finally:
                await short.close()
        finally:
            await front.close()

    asyncio.run(scenario())


def test_only_an_unanswered_lookup_falls_back_to_the_last_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dockerd frozen: its DNS does not answer, the proxy is still there at its address. A
    proxy Docker says is gone (stopped, renamed) is looked up again, not dialled at an address
    that may have vanished."""
    from hubd.stack import front_server

    answers: list[object] = [[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 0))]]

    async def fake_getaddrinfo(*_args: object, **_kwargs: object) -> object:
        answer = answers[0]
        if answer == "hang":
            await asyncio.sleep(10)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
        monkeypatch.setattr(front_server, "_LAST_ADDRESS", {})
        assert await front_server._address("proxy", 0.2) == "10.0.0.7"
        answers[0] = "hang"
        assert await front_server._address("proxy", 0.2) == "10.0.0.7"
        answers[0] = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        assert await front_server._address("proxy", 0.2) == "10.0.0.7"
        answers[0] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        with pytest.raises(socket.gaierror):
            await front_server._address("proxy", 0.2)

    asyncio.run(scenario())


async def tagged_server(port: int, tag: bytes) -> asyncio.Server:
    """Answers with its tag and what it got: which of the two proxies served."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(tag + await reader.read())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def stop(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def test_the_standby_serves_while_the_proxy_is_away_and_the_proxy_again_once_back() -> None:
    async def scenario() -> None:
        listen, proxy_port, standby_port = free_port(), free_port(), free_port()
        targets = (Target("127.0.0.1", proxy_port), Target("127.0.0.1", standby_port))
        # A long wait: were the standby not tried, the first exchange would hang past 10 s.
        front = Front([Forward(listen, targets)], wait_s=30.0, retry_s=0.02, try_s=0.5)
        await front.start("127.0.0.1")
        standby = await tagged_server(standby_port, b"S:")
        try:
            assert await asyncio.wait_for(exchange(listen, b"a"), 10) == b"S:a"
            proxy = await tagged_server(proxy_port, b"P:")
            assert await asyncio.wait_for(exchange(listen, b"b"), 10) == b"P:b"
            await stop(proxy)
            assert await asyncio.wait_for(exchange(listen, b"c"), 10) == b"S:c"
            # Neither there: the connection waits for whichever comes first.
            await stop(standby)
            pending = asyncio.ensure_future(exchange(listen, b"d"))
            await asyncio.sleep(0.3)
            assert not pending.done()
            proxy = await tagged_server(proxy_port, b"P:")
            assert await asyncio.wait_for(pending, 10) == b"P:d"
            await stop(proxy)
        finally:
            await front.close()

    asyncio.run(scenario())


def test_a_proxy_that_does_not_accept_is_given_up_for_the_standby(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connect to a container's address just after it went can hang (ARP): the standby is
    tried after `try_s`, not after the front's whole wait."""
    listen, proxy_port, standby_port = free_port(), free_port(), free_port()
    real_open = asyncio.open_connection

    async def open_connection(
        host: str, port: int, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if port == proxy_port:
            await asyncio.sleep(3600)
        return await real_open(host, port, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", open_connection)

    async def scenario() -> None:
        targets = (Target("127.0.0.1", proxy_port), Target("127.0.0.1", standby_port))
        front = Front([Forward(listen, targets)], wait_s=30.0, retry_s=0.02, try_s=0.2)
        await front.start("127.0.0.1")
        standby = await tagged_server(standby_port, b"S:")
        try:
            assert await asyncio.wait_for(exchange(listen, b"x"), 10) == b"S:x"
        finally:
            await stop(standby)
            await front.close()

    asyncio.run(scenario())
