"""The front's program on loopback: bytes both ways, a proxy that comes late, one that never
comes, a half-close passed on."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hubd.stack.front_server import Forward, Front


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def test_forward_parse() -> None:
    assert Forward.parse("8000=hub-proxy:8000") == Forward(8000, "hub-proxy", 8000)


def test_the_front_waits_for_a_late_upstream_and_closes_when_it_never_comes() -> None:
    async def scenario() -> None:
        listen, upstream = free_port(), free_port()
        front = Front([Forward(listen, "127.0.0.1", upstream)], wait_s=3.0, retry_s=0.02)
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
            short = Front([Forward(free_port(), "127.0.0.1", upstream)], wait_s=0.3, retry_s=0.02)
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
