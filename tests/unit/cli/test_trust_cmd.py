"""`hubd trust` before hubd made its root: one line, and no CA made on the way. (`status`
only here: install and uninstall as root are tried in a container,
tests/integration/test_trust_system.py, never on this machine's trust store.)"""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.test_cli import hubd, one_clear_line


def test_status_without_a_root_says_to_start_hubd_first(hubd_dirs: dict[str, Path]) -> None:
    state = hubd_dirs["STATE_DIRECTORY"]
    line = one_clear_line(hubd("trust", "status", env={"HOME": str(state.parent / "home")}))
    assert line.startswith(f"hubd: no root certificate in {state / 'tls'}")
    assert "`hubd up`" in line
    assert not (state / "tls").exists()
