"""Benchmarks for `hubd run` (issue 3), each against a baseline measured in the same run.

1. Hub SIGKILL -> /hub/health 200: hubd vs Docker's `unless-stopped` policy alone.
2. Frozen hub (SIGSTOP) -> healthy again: hubd vs Docker alone (which never notices).
3. Engine restarted -> hub healthy: hubd vs Docker's `unless-stopped` policy alone.
4. The daemon's idle footprint: RSS and CPU over 60 s.

Needs root and a real Docker engine (`./scripts/test` sets both up). Run:
    python -m bench.bench_supervisor [--idle-seconds 60] [--rounds 3]
It prints a Markdown table (also written to bench/results/supervisor.md).
Default timing (5 s probes, 3 failures) is used for hubd, as shipped.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import requests

from tests.images.build import ensure_test_images
from tests.integration import engine_control
from tests.integration.daemon_proc import DaemonProc, hub_process_pid
from tests.integration.docker_env import StackEnv, make_stack_env, purge_stack

CAP_S = 90.0  # give up measuring after this; "never" for Docker alone on a hang
STABLE_S = 11.0
RESULTS = Path(__file__).parent / "results" / "supervisor.md"


def healthy(env: StackEnv) -> bool:
    try:
        return requests.get(f"{env.base_url}/hub/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def time_until(condition: Callable[[], bool], cap: float = CAP_S) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < cap:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def wait_healthy_again(env: StackEnv) -> float | None:
    # First the hub must go down (a SIGKILL takes a moment to land), then come back.
    time_until(lambda: not healthy(env), 10)
    return time_until(lambda: healthy(env))


def kill_hub(env: StackEnv) -> float | None:
    pid = hub_process_pid(env)
    start = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    back = wait_healthy_again(env)
    return None if back is None else time.monotonic() - start


def freeze_hub(env: StackEnv) -> float | None:
    pid = hub_process_pid(env)
    start = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    back = (
        time_until(lambda: not healthy(env), 10) is not None
        and time_until(lambda: healthy(env)) is not None
    )
    return time.monotonic() - start if back else None


def restart_engine(envs: list[StackEnv]) -> list[float | None]:
    """Stop and start the engine; seconds from the start command until each hub is healthy."""
    engine_control.stop_engine()
    start = time.monotonic()
    engine_control.start_engine()
    back: list[float | None] = [None] * len(envs)
    while time.monotonic() - start < CAP_S and None in back:
        for i, env in enumerate(envs):
            if back[i] is None and healthy(env):
                back[i] = time.monotonic() - start
        time.sleep(0.05)
    return back


def docker_alone(env: StackEnv) -> None:
    """The same hub container, left to Docker's restart policy."""
    env.hubd("up")
    env.client.containers.get(env.names.hub_container).update(
        restart_policy={"Name": "unless-stopped"}
    )


def idle_footprint(proc: DaemonProc, seconds: float) -> tuple[float, float]:
    assert proc.proc is not None
    pid = proc.proc.pid
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    before, start = cpu(), time.monotonic()
    time.sleep(seconds)
    cpu_share = (cpu() - before) / (time.monotonic() - start) * 100
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return rss_kb / 1024, cpu_share


def fmt(values: list[float | None]) -> str:
    if any(v is None for v in values):
        return f"never (> {CAP_S:.0f} s)"
    return f"{statistics.median(v for v in values if v is not None):.2f} s"


def ratio(a: list[float | None], b: list[float | None]) -> str:
    if any(v is None for v in a + b):
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.2f}"  # type: ignore[type-var]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    images = ensure_test_images(client, log=lambda _line: None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("hubd", "base"):
            (Path(tmp) / name).mkdir()
        hubd_env = make_stack_env(Path(tmp) / "hubd", client, images)
        base_env = make_stack_env(Path(tmp) / "base", client, images)
        daemon = DaemonProc(hubd_env, Path(tmp) / "daemon.log", timing="")
        try:
            daemon.start().wait_state("running")
            docker_alone(base_env)
            mb, cpu_share = idle_footprint(daemon, args.idle_seconds)
            kills_h, kills_d = [], []
            for round_ in range(args.rounds):
                # Alternate who goes first, so neither gains from the other's warm caches.
                if round_ % 2:
                    kills_d.append(kill_hub(base_env))
                    kills_h.append(kill_hub(hubd_env))
                else:
                    kills_h.append(kill_hub(hubd_env))
                    kills_d.append(kill_hub(base_env))
                # Both restart managers slow down repeated deaths; a death after a stable
                # period (10 s for both) is a first death again.
                time.sleep(STABLE_S)
            rows.append(
                ("hub SIGKILL -> healthy", fmt(kills_h), fmt(kills_d), ratio(kills_h, kills_d))
            )
            freeze_h = [freeze_hub(hubd_env)]
            freeze_d = [freeze_hub(base_env)]
            rows.append(("hub frozen (SIGSTOP) -> healthy", fmt(freeze_h), fmt(freeze_d), "-"))
            engine, engine_d = ([seconds] for seconds in restart_engine([hubd_env, base_env]))
            rows.append(
                ("engine restarted -> healthy", fmt(engine), fmt(engine_d), ratio(engine, engine_d))
            )
        finally:
            daemon.stop()
            purge_stack(hubd_env)
            purge_stack(base_env)
    table = [
        "| measure | hubd | Docker `unless-stopped` alone | ratio hubd/Docker |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        f"Idle daemon over {args.idle_seconds:.0f} s: RSS {mb:.1f} MB, CPU {cpu_share:.2f} % "
        "(targets: under 50 MB, under 0.5 %).",
        f"Medians of {args.rounds} rounds for SIGKILL; one round for the others. Engine: from "
        "the engine's start command. Default timing (health probe every 5 s, 2 s timeout, "
        "3 failures).",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
