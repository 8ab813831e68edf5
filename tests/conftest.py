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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        services = {service for name, service in SERVICE_OF_FIXTURE.items() if name in fixtures}
        for service in sorted(services):
            item.add_marker(service)
        if services and item.get_closest_marker("integration") is None:
            item.add_marker("integration")
        if item.get_closest_marker("integration") is not None:
            # pytest-xdist (--dist loadgroup): a module's tests stay on one worker, so its
            # module-scoped stack is built once; all Swarm tests share one worker and its lab.
            group = "swarm" if "swarm" in services else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))
