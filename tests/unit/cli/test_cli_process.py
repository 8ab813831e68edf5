"""`hubd` as a process (issue 23): what loads for a command, a closed pipe, a runtime folder
another account planted. No Docker needed."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.as_nobody import NOBODY, as_nobody, preload_cli

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("docker", "rich", "zeroconf", "pystray", "requests", "tomlkit")
HEAVY_HUBD = ("hubd.stack.lifecycle", "hubd.control.server", "hubd.daemon", "hubd.backup")

# Runs hubd's main in a fresh interpreter, then lists the heavy modules it loaded.
PROBE = """
import sys
from hubd.cli import main
code = main(sys.argv[1:])
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {heavy!r} or any(m == h or m.startswith(h + ".") for h in {hubd!r})
)
print("LOADED", code, " ".join(heavy), file=sys.stderr)
"""


def _loaded(
    *argv: str,
    env: dict[str, str] | None = None,
    heavy: tuple[str, ...] = HEAVY,
    heavy_hubd: tuple[str, ...] = HEAVY_HUBD,
) -> list[str]:
    code = PROBE.format(heavy=heavy, hubd=heavy_hubd)
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
    )
    line = [x for x in result.stderr.splitlines() if x.startswith("LOADED")][-1]
    return line.split()[2:]


@pytest.mark.parametrize("argv", [["config", "path"], ["config", "show"], ["stauts"], []])
def test_light_commands_load_no_sdk_and_no_stack(argv: list[str], tmp_path: Path) -> None:
    assert _loaded(*argv, env={"HUBD_CONFIG": str(tmp_path / "c.toml")}) == []


def test_config_path_does_not_set_up_logging(tmp_path: Path) -> None:
    """It only prints a path: logging (with traceback, tokenize, string) is a fifth of its
    start."""
    env = {"HUBD_CONFIG": str(tmp_path / "c.toml")}
    assert _loaded("config", "path", env=env, heavy=("logging",), heavy_hubd=()) == []


def test_status_through_a_daemon_loads_no_sdk_and_no_stack(tmp_path: Path) -> None:
    from hubd.config import Config
    from hubd.control.server import ControlServer
    from hubd.status import HubState, Status, Supervision
    from hubd.timing import Timing

    class Backend:
        def status(self) -> Status:
            return Status.compose(Supervision(state=HubState.RUNNING), Config(), None)

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    server = ControlServer(
        runtime / "control.sock",
        Backend(),  # type: ignore[arg-type]
        timing=Timing(),
    )
    server.start()
    try:
        env = {"RUNTIME_DIRECTORY": str(runtime), "HUBD_CONFIG": str(tmp_path / "c.toml")}
        # Nor asyncio: the mDNS worker's, which `hubd status` does not need (~40 ms).
        assert _loaded("status", env=env, heavy=(*HEAVY, "asyncio")) == []
    finally:
        server.close()


def test_the_shared_kernel_and_the_stack_package_stay_light() -> None:
    code = (
        "import sys, hubd.errors, hubd.stack, hubd.stack.naming, hubd.control; "
        "print(sorted(m for m in sys.modules if m.startswith(('docker', 'hubd.stack.lifecycle'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- SIGPIPE


@pytest.mark.parametrize(
    ("pipeline", "runs"),
    [
        ("{hubd} config show | true", 30),
        ("{hubd} config show --json | head -1 >/dev/null", 30),
        ("{hubd} --help | true", 10),
    ],
)
def test_a_closed_pipe_is_quiet_every_time(pipeline: str, runs: int, tmp_path: Path) -> None:
    """As Unix tools: no BrokenPipeError noise, no traceback, in 30 runs of 30."""
    hubd = f"{sys.executable} -m hubd"
    script = f"for i in $(seq {runs}); do {pipeline.format(hubd=hubd)}; done"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env["HUBD_CONFIG"] = str(tmp_path / "c.toml")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode from the first run on: a faster loop
    # Many keys, so the output is larger than the pipe's first read.
    env["HUBD_ALLOWED_IMAGES"] = ",".join(f"quay.io/jupyter/image-{i}:latest" for i in range(300))
    result = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert result.stderr == ""


# -------------------------------------------------------------- runtime folder, no XDG var


@contextlib.contextmanager
def planted(kind: str) -> Iterator[None]:
    """/tmp/runtime-<nobody> as another account might leave it."""
    path = Path(f"/tmp/runtime-{NOBODY}")
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    if kind == "owned by root":
        path.mkdir(mode=0o700)
    elif kind == "mode 0777":
        path.mkdir()
        path.chmod(0o777)
        os.chown(path, NOBODY, NOBODY)
    elif kind == "symlink":
        target = Path(f"/tmp/runtime-{NOBODY}-target")
        target.mkdir(exist_ok=True)
        path.symlink_to(target)
    try:
        yield
    finally:
        if path.is_symlink():
            path.unlink()
            shutil.rmtree(f"/tmp/runtime-{NOBODY}-target", ignore_errors=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _as_nobody_main(argv: list[str], home: Path) -> str:
    """main(argv) as `nobody` with XDG_RUNTIME_DIR unset: 'code|stdout|stderr'."""
    from hubd.cli import main

    preload_cli()

    def run() -> str:
        os.environ.pop("XDG_RUNTIME_DIR", None)
        for name in ("RUNTIME_DIRECTORY", "HUBD_CONFIG", "DOCKER_HOST"):
            os.environ.pop(name, None)
        os.environ["HOME"] = str(home)
        os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return f"{code}|{out.getvalue()}|{err.getvalue()}"

    return as_nobody(run)


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root (CI is root)")
@pytest.mark.parametrize("kind", ["owned by root", "mode 0777", "symlink"])
def test_a_planted_runtime_folder_is_no_traceback(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile  # noqa: F401  (imported here: `nobody` may not read this Python's files)

    import platformdirs.unix  # noqa: F401

    import hubd.cli.config_cmd
    import hubd.cli.context
    import hubd.cli.stack_cmd
    import hubd.cli.tray_cmd
    import hubd.config
    import hubd.control.client
    import hubd.stack.engine
    import hubd.timing
    import hubd.tray

    monkeypatch.setattr(hubd.tray, "run_tray", lambda locate, timing, **_: print(locate()) or 0)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    tmp_path.chmod(0o755)
    with planted(kind):
        code, out, err = _as_nobody_main(["config", "path"], home).split("|")
        assert (code, err) == ("0", "") and out.strip().endswith("config.toml")
        code, out, err = _as_nobody_main(["tray"], home).split("|")
        assert (code, err) == ("0", ""), err
        assert f"runtime-{NOBODY}" in out
        # Reaching for Docker: one line about Docker, not about the folder or a traceback.
        code, out, err = _as_nobody_main(["status"], home).split("|")
        assert code != "0" and err.count("\n") == 1 and err.startswith("hubd: "), err
