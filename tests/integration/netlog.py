"""Chromium's net-log, read: which requests failed with which net error, and when Chromium saw
the machine's network change. For finding out why a browser test's request failed
(`HUBDTEST_NETLOG=<folder>`, tests/integration/browser.py; docs/https.md).

    python3 -m tests.integration.netlog [--url-contains jupyter.local] <netlog.json>...
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Chromium's own "the network changed" events (net/log/net_log_event_type_list.h).
NETWORK_EVENTS = frozenset(
    {
        "NETWORK_IP_ADDRESSES_CHANGED",
        "NETWORK_CHANGED",
        "NETWORK_CONNECTIVITY_CHANGED",
        "NETWORK_MAC_ADDRESS_CHANGED",
    }
)
# The page's requests and their connections (not Chromium's own background DNS and UDP probes,
# which an offline test machine fails all the time).
PAGE_SOURCES = frozenset(
    {"URL_REQUEST", "HTTP_STREAM_JOB", "HTTP_STREAM_POOL_GROUP", "SSL_CONNECT_JOB",
     "TRANSPORT_CONNECT_JOB", "SOCKET", "HTTP_STREAM_POOL_ATTEMPT_MANAGER"}
)  # fmt: skip
# Not failures: a page that moved on cancels what it no longer needs.
IGNORED_ERRORS = frozenset({"ERR_ABORTED", "ERR_IO_PENDING"})


@dataclass(frozen=True)
class Failure:
    time_ms: int
    source_type: str
    event: str
    error: str
    url: str
    method: str


@dataclass(frozen=True)
class NetLog:
    failures: list[Failure]
    network_changes: list[tuple[int, str]]


def load(path: Path) -> dict[str, Any]:
    """The log as JSON; a browser that did not quit cleanly leaves the closing brackets off."""
    text = path.read_text()
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        return dict(json.loads(text.rstrip().rstrip(",") + "]}"))


def read(path: Path) -> NetLog:
    log = load(path)
    constants = log["constants"]
    event_names = {v: k for k, v in constants["logEventTypes"].items()}
    source_names = {v: k for k, v in constants["logSourceType"].items()}
    error_names = {
        v: k if k.startswith("ERR_") else f"ERR_{k}" for k, v in constants["netError"].items()
    }
    urls: dict[int, tuple[str, str]] = {}
    failures: list[Failure] = []
    changes: list[tuple[int, str]] = []
    for event in log["events"]:
        name = event_names.get(event["type"], str(event["type"]))
        params = event.get("params") or {}
        source = event.get("source") or {}
        time_ms = int(event["time"])
        if "url" in params and source.get("id") is not None:
            urls.setdefault(source["id"], (str(params["url"]), str(params.get("method", ""))))
        if name in NETWORK_EVENTS:
            changes.append((time_ms, name))
        error = params.get("net_error")
        if isinstance(error, int) and error < 0:
            error_name = error_names.get(error, str(error))
            source_type = source_names.get(source.get("type"), str(source.get("type")))
            if error_name in IGNORED_ERRORS or source_type not in PAGE_SOURCES:
                continue
            url, method = urls.get(int(source.get("id", -1)), ("", ""))
            failures.append(
                Failure(
                    time_ms,
                    source_type,
                    name,
                    error_name,
                    url,
                    method,
                )
            )
    return NetLog(failures, changes)


def main(argv: list[str]) -> int:
    """`[--url-contains TEXT] NETLOG...`: the failures of requests whose URL holds TEXT."""
    wanted = ""
    if argv[:1] == ["--url-contains"]:
        wanted, argv = argv[1], argv[2:]
    for arg in argv:
        netlog = read(Path(arg))
        print(f"== {arg}: {len(netlog.network_changes)} network changes seen by Chromium")
        for time_ms, name in netlog.network_changes:
            print(f"  {time_ms} {name}")
        for failure in netlog.failures:
            if wanted not in failure.url:
                continue
            print(
                f"  {failure.time_ms} {failure.error} {failure.source_type}/{failure.event}"
                f" {failure.method} {failure.url}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
