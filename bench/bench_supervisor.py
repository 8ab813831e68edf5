"""Benchmarks for `hubd run`, each against a baseline measured in the same run.

The baseline is JupyterHub's Docker tutorial (jupyterhub-deploy-docker) on the same images:
one hub container that starts the proxy itself and publishes the port, Docker's
`restart: always` its only supervisor (tests/integration/tutorial_stack.py, as bench_faults).
An earlier baseline, a hubd stack's hub container with `unless-stopped`, was unfair after an
engine restart: its proxy and front have no restart policy, so it never answered again.

1. Hub SIGKILL -> /hub/health 200: hubd vs the tutorial.
2. Frozen hub (SIGSTOP) -> healthy again: hubd vs the tutorial (Docker never notices; the
   frozen hub is thawed after the cap, so the next row starts from a live one).
3. Engine restarted -> hub healthy: hubd vs the tutorial.
4. The daemon's idle footprint: RSS and CPU over 60 s.

With `--faults` instead: the supervisor's dead ends, each fault to a healthy hub
(hubd only: Docker's restart policy has no answer to any of them, see the README):
a hub frozen when hubd starts, a hub whose settings file was deleted, a hub container whose
network was removed by hand, a first start with an unpullable user image, SIGTERM during a
slow pull; with `--engine-freeze` only dockerd frozen (SIGSTOP) for 10 s.

Needs root and a real Docker engine (`./scripts/test` sets both up). Run:
    flock -x /tmp/hubd-engine.lock python -m bench.bench_supervisor [--idle-seconds 60] [--rounds 3]
    flock -s /tmp/hubd-engine.lock python -m bench.bench_supervisor --faults
    flock -x /tmp/hubd-engine.lock python -m bench.bench_supervisor --faults --engine-freeze
It prints a Markdown table (also written to bench/results/supervisor.md, faults.md or
faults-engine.md).
Default timing (5 s probes, 3 failures) is used for hubd, as shipped.
"""

from __future__ import annotations

import argparse
import contextlib
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
from tests.integration.tutorial_stack import make_tutorial_stack

CAP_S = 90.0  # give up measuring after this; "never" for the tutorial on a hang
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
    try:
        back = (
            time_until(lambda: not healthy(env), 10) is not None
            and time_until(lambda: healthy(env)) is not None
        )
        return time.monotonic() - start if back else None
    finally:
        with contextlib.suppress(ProcessLookupError):  # hubd replaced it: that pid is gone
            os.kill(pid, signal.SIGCONT)


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


def tutorial_baseline(env: StackEnv) -> None:
    """The tutorial's layout on the same images, left to Docker's `restart: always`."""
    env.hubd("up")
    make_tutorial_stack(env)


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
    known_a = [v for v in a if v is not None]
    known_b = [v for v in b if v is not None]
    if len(known_a) < len(a) or len(known_b) < len(b):
        return "-"
    return f"{statistics.median(known_a) / statistics.median(known_b):.2f}"


def hubd_state(daemon: DaemonProc) -> str:
    try:
        return str(daemon.status().state)
    except Exception:
        return "?"


def frozen_at_start(env: StackEnv, tmp: Path) -> float | None:
    """hubd (re)started while its hub is frozen: until a new hub answers."""
    env.hubd("up")
    os.kill(hub_process_pid(env), signal.SIGSTOP)
    before = env.client.containers.get(env.names.hub_container).id
    daemon = DaemonProc(env, tmp / "frozen.log", timing="")
    start = time.monotonic()
    daemon.start()
    try:
        back = time_until(
            lambda: healthy(env) and env.client.containers.get(env.names.hub_container).id != before
        )
        return None if back is None else time.monotonic() - start
    finally:
        daemon.stop()


def settings_deleted(env: StackEnv, daemon: DaemonProc) -> float | None:
    from hubd.stack.settings import SETTINGS_FILE

    hub = env.client.containers.get(env.names.hub_container)
    hub.exec_run(f"rm {SETTINGS_FILE}")
    start = time.monotonic()
    hub.kill("SIGKILL")
    time_until(lambda: not healthy(env), 10)
    back = time_until(lambda: healthy(env))
    return None if back is None else time.monotonic() - start


def healthy_after_daemon_start(env: StackEnv, log: Path) -> float | None:
    """Seconds from starting `hubd run` to a healthy hub (None: never)."""
    daemon = DaemonProc(env, log, timing="")
    start = time.monotonic()
    daemon.start()
    try:
        back = time_until(lambda: healthy(env))
        return None if back is None else time.monotonic() - start
    finally:
        daemon.stop()


def network_removed(env: StackEnv, tmp: Path) -> float | None:
    """The stack's network removed by hand while hubd was stopped; from hubd's start."""
    env.client.containers.get(env.names.hub_container).stop(timeout=2)
    # Docker refuses to remove a network a running container is on: the proxy goes down too.
    env.client.containers.get(env.names.proxy_container).stop(timeout=2)
    env.client.networks.get(env.names.network).remove()
    return healthy_after_daemon_start(env, tmp / "network.log")


def unpullable_image(env: StackEnv, tmp: Path) -> float | None:
    """A first start whose allowed_images holds one that cannot be pulled."""
    env.write_config(allowed_images=["127.0.0.1:5999/hubd-missing:1"])
    try:
        return healthy_after_daemon_start(env, tmp / "image.log")
    finally:
        env.write_config(allowed_images=[])


def sigterm_during_slow_pull(env: StackEnv, tmp: Path) -> float | None:
    from tests.integration.slow_registry import SlowRegistry

    registry = SlowRegistry(size=1 << 20, chunk=2048, pause_s=0.2).start()
    env.write_config(allowed_images=[registry.image])
    daemon = DaemonProc(env, tmp / "pull.log", timing="")
    try:
        daemon.start()
        if time_until(lambda: registry.layer_requests > 0) is None:
            return None
        time.sleep(1)
        start = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.proc is not None
        daemon.proc.wait(60)
        return time.monotonic() - start
    finally:
        daemon.stop()
        registry.close()
        env.write_config(allowed_images=[])


def engine_frozen(env: StackEnv, daemon: DaemonProc, seconds: float = 10) -> tuple[str, str]:
    """dockerd SIGSTOPped for `seconds`: whether the hub answered throughout, and the time
    from SIGCONT until hubd reports `running` again."""
    answered = True
    with engine_control.engine_frozen():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            answered = answered and healthy(env)
            time.sleep(0.5)
        state_during = hubd_state(daemon)
        thawed = time.monotonic()
    back = time_until(lambda: hubd_state(daemon) == "running")
    took = time.monotonic() - thawed if back is not None else None
    return (
        f"hub answered {'throughout' if answered else 'NOT throughout'}; hubd said "
        f"`{state_during}`",
        fmt([took]),
    )


def faults(args: argparse.Namespace, client: docker.DockerClient) -> int:
    images = ensure_test_images(client, log=lambda _line: None)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = make_stack_env(tmp, client, images)
        try:
            if args.engine_freeze:
                daemon = DaemonProc(env, tmp / "daemon.log", timing="")
                daemon.start().wait_state("running")
                try:
                    during, after = engine_frozen(env, daemon)
                    rows.append((f"dockerd frozen 10 s ({during}) -> `running`", after))
                finally:
                    daemon.stop()
            else:
                rows += fault_rows(env, tmp)
        finally:
            purge_stack(env)
    table = [
        "| fault | hubd (default timing) |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
        "One round each. Docker's restart policy alone has no answer to any of these: it never "
        "restarts a running-but-frozen container, restarts the same broken container forever, "
        "does not act on a stopped one, and knows nothing of a frozen engine.",
    ]
    out = RESULTS.with_name("faults-engine.md" if args.engine_freeze else "faults.md")
    out.write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


def fault_rows(env: StackEnv, tmp: Path) -> list[tuple[str, str]]:
    rows = [
        ("hub frozen when hubd starts -> healthy", fmt([frozen_at_start(env, tmp)])),
        ("hub's network removed by hand -> healthy", fmt([network_removed(env, tmp)])),
    ]
    daemon = DaemonProc(env, tmp / "daemon.log", timing="")
    daemon.start().wait_state("running")
    try:
        took = settings_deleted(env, daemon)
        rows.append(("hub's settings file deleted, hub killed -> healthy", fmt([took])))
    finally:
        daemon.stop()
    purge_stack(env)
    took = unpullable_image(env, tmp)
    rows.append(("first start, one user image unpullable -> healthy", fmt([took])))
    took = sigterm_during_slow_pull(env, tmp)
    rows.append(("SIGTERM during a slow pull -> hubd exited", fmt([took])))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--faults", action="store_true", help="the fault rows instead")
    parser.add_argument(
        "--engine-freeze", action="store_true", help="with --faults: SIGSTOP dockerd"
    )
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    if args.faults:
        return faults(args, client)
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
            tutorial_baseline(base_env)
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
        "| measure | hubd | the tutorial (`restart: always`) | ratio hubd/tutorial |",
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
