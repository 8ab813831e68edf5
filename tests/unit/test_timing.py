import ast
import re
from pathlib import Path

import pytest

from hubd.errors import ConfigError
from hubd.timing import Timing, timing_from_env

PACKAGE = Path(__file__).resolve().parents[2] / "hubd"
DURATION_NAME = re.compile(r"(_S|_SECONDS|_TIMEOUT|_INTERVAL|_WAIT|_DEADLINE)$")


def test_overrides_from_env() -> None:
    timing = timing_from_env({"HUBD_TIMING": "health_interval_s=0.5, health_failures=2"})
    assert timing.health_interval_s == 0.5 and timing.health_failures == 2
    assert timing.health_timeout_s == Timing().health_timeout_s
    assert timing_from_env({}) == Timing()


@pytest.mark.parametrize("text", ["nope=1", "health_failures=x"])
def test_bad_overrides(text: str) -> None:
    with pytest.raises(ConfigError, match="HUBD_TIMING"):
        timing_from_env({"HUBD_TIMING": text})


def test_hubd_timing_reaches_the_tray(monkeypatch: pytest.MonkeyPatch) -> None:
    import hubd.tray
    from hubd.cli import main

    seen: list[Timing] = []

    def run_tray(_locate: object, timing: Timing, **_: object) -> int:
        seen.append(timing)
        return 0

    monkeypatch.setattr(hubd.tray, "run_tray", run_tray)
    monkeypatch.setenv("HUBD_TIMING", "tray_poll_interval_s=0.7")
    assert main(["tray", "--socket", "/nonexistent/control.sock"]) == 0
    assert [t.tray_poll_interval_s for t in seen] == [0.7]


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def test_no_timing_constant_lives_outside_timing_py() -> None:
    """Tunables named like durations, and sleeps of a literal length, belong in Timing."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "timing.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if _is_number(node.value) and any(DURATION_NAME.search(n) for n in names):
                    found.append(f"{path}:{node.lineno} {names}")
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "sleep"
                and call.args
                and _is_number(call.args[0])
            ):
                found.append(f"{path}:{call.lineno} sleep({ast.unparse(call.args[0])})")
    assert found == []


def test_only_timing_py_builds_a_timing() -> None:
    """A `Timing()` built deep down ignores the caller's (and HUBD_TIMING): it is passed down
    from where the process starts (`timing_from_env`, the CLI's Context, the daemon)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "timing.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("Timing", "timing.Timing"):
                found.append(f"{path}:{node.lineno}")
    assert found == []
