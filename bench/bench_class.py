"""Benchmark for a class on one machine (issue 24): 40 people arriving over two minutes, at most
10 at work at once, each logging in, getting a Lab, running a cell, saving a file and leaving
(their server stopped). hubd's stack against the tutorial's layout (JupyterHub's Docker
tutorial: the hub holds the engine's socket, every server on one shared network, no spawn
limits), the same images and memory limit, in the same run.

Reports per layout: p50/p95 of login -> Lab, how many people waited for a turn (hubd's "please
wait" page), failures, the whole run's time; then hubd's ratios to the tutorial's.
    python -m bench.bench_class [--people 40] [--over-s 120] [--active 10]
Writes a Markdown table to bench/results/class.md. Uses the local test images, like the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.images.build import TestImages, ensure_test_images
from tests.integration.classroom import add_accounts, arrive, people, percentile
from tests.integration.docker_env import StackEnv, make_stack_env, purge_stack
from tests.integration.hubclient import KernelSocket, stop_server, write_file
from tests.integration.hubclient import read_file as read_lab_file
from tests.integration.tutorial_stack import make_tutorial_stack

RESULTS = Path(__file__).parent / "results" / "class.md"
MEM_LIMIT = "512M"


@dataclass
class Outcome:
    layout: str
    login_to_lab_s: list[float] = field(default_factory=list)
    waited: int = 0
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def one_person(env: StackEnv, name: str, outcome: Outcome, lock: threading.Lock) -> None:
    try:
        arrival = arrive(env.base_url, name)
        kernel = KernelSocket.start(arrival.session, env.base_url, name)
        try:
            assert kernel.execute("print(6 * 7)").strip() == "42"
        finally:
            kernel.close()
        write_file(arrival.session, env.base_url, name, "work.py", f"# {name}'s work\n")
        assert read_lab_file(arrival.session, env.base_url, name, "work.py").startswith("#")
        stop_server(arrival.session, env.base_url, name)
    except Exception as exc:
        with lock:
            outcome.failures.append(f"{name}: {str(exc)[:300]}")
        return
    with lock:
        outcome.login_to_lab_s.append(arrival.login_to_lab_s)
        outcome.waited += 1 if arrival.waited_turns else 0


def run_class(env: StackEnv, layout: str, count: int, over_s: float, active: int) -> Outcome:
    names = people(count)
    add_accounts(env.stack(), names)
    outcome = Outcome(layout)
    lock = threading.Lock()
    started = time.monotonic()
    gap = over_s / count

    def arriving(index_name: tuple[int, str]) -> None:
        index, name = index_name
        # People come in at their own time; at most `active` are at work at once (the pool).
        time.sleep(max(0.0, started + index * gap - time.monotonic()))
        one_person(env, name, outcome, lock)

    with ThreadPoolExecutor(max_workers=active) as pool:
        list(pool.map(arriving, enumerate(names)))
    outcome.wall_s = time.monotonic() - started
    return outcome


@contextlib.contextmanager
def stack(
    tmp: Path, client: docker.DockerClient, images: TestImages, shape: Callable[[StackEnv], None]
) -> Iterator[StackEnv]:
    env = make_stack_env(tmp, client, images, mem_limit=MEM_LIMIT)
    try:
        env.hubd("up")
        shape(env)
        yield env
    finally:
        purge_stack(env)


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| layout | people | p50 login->Lab (s) | p95 login->Lab (s) | waited for a turn | "
        "failures | whole run (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        done = len(o.login_to_lab_s) + len(o.failures)
        lines.append(
            f"| {o.layout} | {done} | {percentile(o.login_to_lab_s, 0.5):.1f} | "
            f"{percentile(o.login_to_lab_s, 0.95):.1f} | {o.waited} | {len(o.failures)} | "
            f"{o.wall_s:.0f} |"
        )
    hubd, tutorial = outcomes
    if hubd.login_to_lab_s and tutorial.login_to_lab_s:
        for q in (0.5, 0.95):
            ratio = percentile(hubd.login_to_lab_s, q) / percentile(tutorial.login_to_lab_s, q)
            lines.append(f"\nhubd / tutorial, p{int(q * 100)} login->Lab: {ratio:.2f}")
    for o in outcomes:
        for failure in o.failures[:5]:
            lines.append(f"\n- {o.layout} failure: {failure}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--over-s", type=float, default=120.0)
    parser.add_argument("--active", type=int, default=10)
    args = parser.parse_args()
    client = docker.from_env(timeout=300)
    images = ensure_test_images(client, log=print)
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout, shape in (("hubd", lambda env: None), ("tutorial", make_tutorial_stack)):
            folder = Path(tmp) / layout
            folder.mkdir()
            with stack(folder, client, images, shape) as env:
                print(f"{layout}: {args.people} people over {args.over_s:.0f} s ...", flush=True)
                outcomes.append(run_class(env, layout, args.people, args.over_s, args.active))
    report = table(outcomes)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        f"# A class on one machine ({args.people} people over {args.over_s:.0f} s, "
        f"at most {args.active} at once)\n\n{report}"
    )
    print(report)


if __name__ == "__main__":
    main()
