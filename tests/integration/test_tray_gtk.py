"""`hubd tray` on pystray's own GLib backends (PyGObject): AppIndicator, in a real desktop
session (Xvfb, a private session bus, xfce4-panel as the StatusNotifierItem host) that has
no notification service.

pystray's clean-up there raised `GLib.GError` (no `org.freedesktop.Notifications`), so Quit
and SIGTERM ended with a traceback and exit code 1. Both must end with 0.

PyGObject does not install with pip on Debian 12; the tests use Debian's `python3-gi` when
it fits this Python (same version), and are skipped with the command that installs it
otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.control import ControlServer
from tests.integration.dbus_client import BusClient
from tests.integration.test_tray_sni import (  # the same session, panel and helpers
    MENU,
    NOTIFICATIONS,
    WATCHER,
    WATCHER_PATH,
    SniTray,
    bus,
    host,
    panel,
    tray_env,
    x,
)
from tests.integration.xvfb import SessionBus, XfcePanel, started, wait_until
from tests.tray_fakes import FakeDaemon, serving, short_temp_dir

pytestmark = [pytest.mark.integration, pytest.mark.desktop]
__all__ = ["bus", "host", "panel", "x"]  # fixtures, used by name

DEBIAN_GI = Path("/usr/lib/python3/dist-packages/gi")
INSTALL_HINT = "apt-get install python3-gi gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1"


@pytest.fixture(scope="module")
def gi_path() -> Iterator[str]:
    """A folder to put on PYTHONPATH so that `import gi` works in this Python."""
    probe = "import gi; gi.require_version('AyatanaAppIndicator3', '0.1'); " + (
        "from gi.repository import AyatanaAppIndicator3"
    )
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
        yield ""
        return
    abi = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    if not any(DEBIAN_GI.glob(f"_gi.{abi}-*.so")):
        pytest.skip(f"PyGObject for this Python is not installed ({INSTALL_HINT})")
    with short_temp_dir("hubd-gi-") as folder:
        (folder / "gi").symlink_to(DEBIAN_GI)
        check = subprocess.run(
            [sys.executable, "-c", probe], env={"PYTHONPATH": str(folder)}, capture_output=True
        )
        if check.returncode != 0:
            pytest.skip(f"AyatanaAppIndicator3 is not importable ({INSTALL_HINT})")
        yield str(folder)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_temp_dir("hubd-traygtk-") as path:
        yield path


@pytest.fixture
def server(workdir: Path) -> Iterator[ControlServer]:
    with serving(FakeDaemon(users=("alice",)), workdir / "control.sock") as srv:
        yield srv


class IndicatorTray(SniTray):
    """The AppIndicator's item: libayatana registers it under its own object path."""

    def __init__(
        self, process: subprocess.Popen[str], host: BusClient, stderr: Path, *, before: set[str]
    ) -> None:
        super().__init__(process, host, stderr)
        self.before = before
        self.path = ""

    def find_item(self) -> bool:
        items = self.host.get(WATCHER, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems")
        new = [item for item in items if item not in self.before]
        if new:
            self.service, _, rest = new[0].partition("/")
            self.path = "/" + rest
        return bool(new)

    def prop(self, name: str) -> object:
        from tests.integration.test_tray_sni import ITEM

        return self.host.get(self.service, self.path, ITEM, name)


@pytest.mark.parametrize("how", ["menu", "sigterm"])
def test_appindicator_quits_cleanly_without_a_notification_service(
    how: str,
    gi_path: str,
    bus: SessionBus,
    panel: XfcePanel,
    host: BusClient,
    server: ControlServer,
    workdir: Path,
) -> None:
    assert host.name_owner(NOTIFICATIONS) is None
    env = {
        **tray_env(bus.env, workdir),
        "PYSTRAY_BACKEND": "appindicator",
        "PYTHONPATH": ":".join(p for p in (str(Path.cwd()), gi_path) if p),
    }
    before = set(host.get(WATCHER, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems"))
    stderr = workdir / "tray.stderr"
    command = [sys.executable, "-m", "hubd", "tray", "--socket", str(server.path)]
    with started(command, env, stderr=stderr.open("w")) as process:
        tray = IndicatorTray(process, host, stderr, before=before)
        try:
            wait_until(tray.find_item, timeout_s=30, what="the AppIndicator's item")
            if how == "menu":
                path = tray.prop("Menu")
                wait_until(lambda: _quit_id(tray, str(path)) is not None, what="the exported menu")
                from dbus_fast import Variant

                tray.host.call(
                    tray.service,
                    str(path),
                    MENU,
                    "Event",
                    "isvu",
                    [_quit_id(tray, str(path)), "clicked", Variant("s", ""), 0],
                )
            else:
                process.terminate()
            assert process.wait(timeout=15) == 0
        finally:
            sys.stderr.write(tray.log())
    log = stderr.read_text()
    assert "Traceback" not in log and "GError" not in log


def _quit_id(tray: IndicatorTray, path: str) -> int | None:
    _rev, layout = tray.host.call(tray.service, path, MENU, "GetLayout", "iias", [0, -1, []])
    for child in layout[2]:
        item_id, props, _children = child.value
        label = props.get("label")
        if label is not None and str(label.value).replace("_", "") == "Quit tray":
            return int(item_id)
    return None
