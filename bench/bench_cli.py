"""How fast `hubd` answers (issue 23), against `docker --version` measured in the same run.

Like hyperfine: each command runs a few times to warm the caches, then `--runs` times; the
table gives the median and the fastest wall time and the median's ratio to `docker --version`.
`python -c pass` is the floor: the interpreter's own start, which no hubd change can go below.
`hubd` runs as its console script does (`from hubd.cli import main`), from this checkout.

`status` goes through a running daemon: by default a control server in this process that
answers with a fixed Status (so the figure is the CLI's own cost: start, imports, one request
on the socket, printing), or with `--socket PATH` a real `hubd run`.

Targets: `--version`, `--help`, `config path` <= 60 ms median; `status` <= 150 ms.
Run: python -m bench.bench_cli [--runs 30]   (no Docker needed; prints and writes
bench/results/cli.md)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cli.md"
TARGETS_MS = {"--version": 60, "--help": 60, "config path": 60, "status": 150}
WARMUP = 3
HUBD = "import sys; from hubd.cli import main; sys.exit(main())"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def measure(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    for _ in range(WARMUP):
        timed(argv, env)
    return [timed(argv, env) for _ in range(runs)]


@contextmanager
def stub_daemon(runtime_dir: Path) -> Iterator[None]:
    """A control socket answering like `hubd run` with its hub running."""
    from hubd.config import Config
    from hubd.control.server import ControlServer
    from hubd.status import HubState, Status, Supervision

    class Backend:
        def status(self) -> Status:
            return Status.compose(Supervision(state=HubState.RUNNING), Config(), None)

    server = ControlServer(runtime_dir / "control.sock", Backend())  # type: ignore[arg-type]
    server.start()
    try:
        yield
    finally:
        server.close()


def row(
    name: str, times: list[float], baseline_s: float | None, floor_s: float, target: int | None
) -> str:
    median = statistics.median(times)
    ratio = f"{median / baseline_s:.1f}x" if baseline_s else "1.0x"
    verdict = "" if target is None else ("yes" if median * 1000 <= target else "NO")
    target_text = f"<= {target} ms" if target else "-"
    over = f"{(median - floor_s) * 1000:+.1f}" if target else "-"
    return (
        f"| {name} | {median * 1000:.1f} | {min(times) * 1000:.1f} | {ratio} | {over} "
        f"| {target_text} | {verdict} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--socket", help="a real daemon's control socket for `status`")
    args = parser.parse_args()
    docker = shutil.which("docker")
    if docker is None:
        print("docker is not installed: it is the baseline", file=sys.stderr)
        return 1
    python = sys.executable
    with tempfile.TemporaryDirectory() as temp:
        runtime = Path(args.socket).parent if args.socket else Path(temp) / "run"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            # The CLI finds the (stub) daemon's socket here, as under systemd.
            "RUNTIME_DIRECTORY": str(runtime),
            "HUBD_CONFIG": str(Path(temp) / "config.toml"),
        }
        env.pop("PYTHONUNBUFFERED", None)
        results: list[tuple[str, list[float], int | None]] = []
        docker_times = measure([docker, "--version"], env, args.runs)
        results.append(
            ("python -c pass (floor)", measure([python, "-c", "pass"], env, args.runs), None)
        )
        for command in ("--version", "--help", "config path"):
            argv = [python, "-c", HUBD, *command.split()]
            results.append((f"hubd {command}", measure(argv, env, args.runs), TARGETS_MS[command]))
        status_argv = [python, "-c", HUBD, "status"]
        if args.socket:
            status_times = measure(status_argv, env, args.runs)
        else:
            runtime.mkdir(mode=0o700)
            with stub_daemon(runtime):
                status_times = measure(status_argv, env, args.runs)
        results.append(("hubd status (through a daemon)", status_times, TARGETS_MS["status"]))
    baseline = statistics.median(docker_times)
    floor = statistics.median(results[0][1])
    load = os.getloadavg()[0]
    lines = [
        f"CLI start, {args.runs} runs each after {WARMUP} warm-up runs, on {os.cpu_count()} "
        f"cores (load average {load:.1f}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        " 'hubd's own' is the median minus the interpreter's (python -c pass).",
        "",
        "| command | median ms | fastest ms | median / docker --version | hubd's own ms "
        "| target | met |",
        "|---|---|---|---|---|---|---|",
        row("docker --version (baseline)", docker_times, None, floor, None),
        *(row(name, times, baseline, floor, target) for name, times, target in results),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
