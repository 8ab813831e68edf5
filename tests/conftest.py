"""Shared test settings: every test gets its own hubd directories, never the machine's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def hubd_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """systemd's directory variables, which hubd honours, pointed at this test's folders."""
    dirs = {
        "CONFIGURATION_DIRECTORY": tmp_path / "etc",
        "STATE_DIRECTORY": tmp_path / "state",
        "RUNTIME_DIRECTORY": tmp_path / "run",
        "LOGS_DIRECTORY": tmp_path / "log",
    }
    for name, path in dirs.items():
        monkeypatch.setenv(name, str(path))
    for name in ("HUBD_CONFIG", "HUBD_TIMING", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        monkeypatch.delenv(name, raising=False)
    yield dirs


# -------------------------------------------------------------------------------- tiers
# The real service each fixture brings up. A test is marked with the services its fixtures
# need (pytest resolves the whole closure, so a test using `hub` that builds on `stack_env`
# counts as docker): `-m "not docker"`, `-m desktop` and scripts/test's tiers pick tests
# without a list of files to keep up to date.
SERVICE_OF_FIXTURE = {
    "docker_client": "docker",
    "test_images": "docker",
    "swarm_lab_session": "swarm",
    "lan": "netns",
    "x": "desktop",
    "browser": "browser",
}
# Tests that stop, restart or freeze the machine's Docker engine: run alone, after the rest
# (scripts/test), since every other test on that engine would fail with them.
ENGINE_DISRUPTING = "disrupts_engine"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        services = {service for name, service in SERVICE_OF_FIXTURE.items() if name in fixtures}
        for service in sorted(services):
            item.add_marker(service)
        if services and item.get_closest_marker("integration") is None:
            item.add_marker("integration")
        group = _xdist_group(item, services)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # pytest-xdist hands out work in this order: the largest indivisible groups first, so the
    # last one to finish does not start when the others are nearly done.
    items.sort(key=_schedule_rank)


# The groups that take longest on one worker (seconds, measured on a 2-core machine, full
# suite on 3 workers): started first. Others count as DEFAULT_GROUP_S.
GROUP_SECONDS = {
    "swarm": 420,
    "tests/integration/test_continuity.py": 260,
    "tests/integration/test_class.py": 320,
    "tests/integration/test_backup.py": 240,
    "tests/integration/test_trust.py": 180,
    "tests/integration/test_https.py": 150,
    "tests/integration/test_proxy_front.py": 130,
    # ~20 s from its image cache, 100-120 s without (the first run loads 1.3 GB of images).
    "tests/integration/test_engine_rootless.py": 110,
}
DEFAULT_GROUP_S = 60
WIDE_SCOPES = {"module", "class", "package"}


def _xdist_group(item: pytest.Item, services: set[str]) -> str | None:
    """Which tests must share a worker (pytest-xdist --dist loadgroup): all Swarm tests (one
    lab); a module whose tests share a module-scoped fixture (its stack is built once), or use
    network namespaces or a desktop (fixed names per worker). Other real-service tests, each
    with its own stack, go wherever a worker is free."""
    if item.get_closest_marker("integration") is None:
        return None
    if "swarm" in services:
        return "swarm"
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs.values() if fixture_info is not None else ()
    shared = any(d.scope in WIDE_SCOPES for defs in definitions for d in defs)
    if shared or services & {"netns", "desktop"}:
        return item.nodeid.split("::")[0]
    return None


def _schedule_rank(item: pytest.Item) -> tuple[int, int]:
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:
        group = str(marker.args[0] if marker.args else marker.kwargs.get("name", ""))
        return (0, -GROUP_SECONDS.get(group, DEFAULT_GROUP_S))
    if item.get_closest_marker("integration") is not None:
        return (1, 0)
    return (2, 0)
