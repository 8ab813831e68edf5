"""What a person at work sees during a fault: hubd's stack against the tutorial's layout.

Two stacks on the same images, one person at work on each (logged in, a kernel holding state,
an open kernel websocket, a saved file):
- hubd: the front holding the port, the proxy and its standby in containers of their own,
  `hubd run` supervising (timing as shipped);
- tutorial: JupyterHub's Docker tutorial (jupyterhub-deploy-docker) as a compose file runs it:
  one hub container that starts configurable-http-proxy as its child and publishes the port
  itself, DockerSpawner on the engine's socket, Docker's `restart: always`, no hubd
  (tests/integration/tutorial_stack.py).

Two tables:
- the notebook's next cell after a proxy kill (run first, while both stacks are fresh): a
  person with a notebook open in JupyterLab (Chromium, headless); the proxy is killed (hubd:
  `docker kill <stack>-proxy`; tutorial: SIGKILL to the CHP process inside the hub container,
  which JupyterHub notices within its 5 s check and starts again, routes restored); the person
  runs a cell at once; the seconds from the kill until its output shows. Rounds alternate
  between the two sides; the medians and tutorial / hubd. (JupyterLab reconnects its kernel
  websocket at once; when that try fails it waits a random 10-30 s.)
- the longest outage of `/user/NAME/api/status` (polled every 50 ms) per fault, and when the
  hub's pages answered again; the tutorial's stack is gone after its last fault (`docker rm
  -f` of the hub: nothing brings it back).

Needs root and a real Docker engine; take the shared engine lock. Run:
    flock -s /tmp/hubd-engine.lock python -m bench.bench_faults [--rounds 5] [--cell-only]
It prints Markdown tables (also written to bench/results/continuity.md) with the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import requests

from tests.images.build import ensure_test_images
from tests.integration.continuity import Person
from tests.integration.daemon_proc import DaemonProc, hub_process_pid
from tests.integration.docker_env import StackEnv, make_stack_env, purge_stack
from tests.integration.notebook_lab import Lab
from tests.integration.tutorial_stack import make_tutorial_stack

CAP_S = 30.0  # stop watching after this: "≥ 30 s" means the person was still cut off
CELL_CAP_S = 60.0  # a notebook cell that shows nothing for this long: not back
CELL_ROUNDS = 5
SETTLE_S = 2.0
HUB_BACK_CAP_S = 60.0  # watch on this long after recovery, to catch a relapse
PASSWORD = "bench-lantern-river"
RESULTS = Path(__file__).parent / "results" / "continuity.md"


def _process_pid(env: StackEnv, container: str, needle: str) -> int:
    top = env.client.containers.get(container).top(ps_args="-eo pid,args")
    for pid, args in top["Processes"]:
        if needle in args and Path(args.split()[0]).name not in ("docker-init", "tini"):
            return int(pid)
    raise RuntimeError(f"no {needle!r} process in {container}")


def _answers(person: Person) -> bool:
    try:
        url = f"{person.base_url}/user/{person.name}/api/status"
        return person.session.get(url, timeout=1, allow_redirects=False).status_code == 200
    except requests.RequestException:
        return False


def _hub_healthy(env: StackEnv) -> bool:
    try:
        return requests.get(f"{env.base_url}/hub/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _wait(condition: Callable[[], bool], cap_s: float) -> None:
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)


def measure(side: Side, act: Callable[[], None]) -> tuple[float, float]:
    """(the longest outage the person saw, seconds until the hub's pages answered again),
    from the fault until things have settled; each capped at CAP_S."""
    assert side.person is not None
    with side.person.watch() as watch:
        start = time.monotonic()
        act()
        hub_back: float | None = None
        # Until the person has been served for SETTLE_S in a row and the hub is back, or the cap.
        good_since: float | None = None
        while time.monotonic() - start < CAP_S:
            if hub_back is None and _hub_healthy(side.env):
                hub_back = time.monotonic() - start
            if _answers(side.person):
                good_since = good_since or time.monotonic()
                if time.monotonic() - good_since >= SETTLE_S and hub_back is not None:
                    break
            else:
                good_since = None
            time.sleep(0.05)
    outage = min(CAP_S, watch.result.longest_s) if good_since else CAP_S
    return outage, CAP_S if hub_back is None else hub_back


class Side:
    def __init__(self, name: str, env: StackEnv) -> None:
        self.name, self.env = name, env
        self.person: Person | None = None

    def proxy_kill(self) -> None:
        raise NotImplementedError

    def hub_kill(self) -> None:
        os.kill(hub_process_pid(self.env), signal.SIGKILL)

    def hub_freeze(self) -> None:
        os.kill(hub_process_pid(self.env), signal.SIGSTOP)

    def hub_remove(self) -> None:
        self.env.client.containers.get(self.env.names.hub_container).remove(force=True)


class Hubd(Side):
    def proxy_kill(self) -> None:
        self.env.client.containers.get(self.env.names.proxy_container).kill("SIGKILL")


class Tutorial(Side):
    def proxy_kill(self) -> None:
        pid = _process_pid(self.env, self.env.names.hub_container, "configurable-http-proxy")
        os.kill(pid, signal.SIGKILL)

    def thaw(self) -> None:
        """Docker never notices a frozen hub: let it go on for the next fault."""
        with contextlib.suppress(AssertionError, OSError, docker.errors.DockerException):
            os.kill(hub_process_pid(self.env), signal.SIGCONT)


FAULTS = ["hub SIGKILL", "proxy SIGKILL", "hub frozen (SIGSTOP)", "hub docker rm -f"]


Results = dict[str, dict[str, tuple[float, float]]]


def run(sides: list[Side]) -> Results:
    results: Results = {fault: {} for fault in FAULTS}
    for side in sides:
        actions = {
            "hub SIGKILL": side.hub_kill,
            "proxy SIGKILL": side.proxy_kill,
            "hub frozen (SIGSTOP)": side.hub_freeze,
            "hub docker rm -f": side.hub_remove,
        }
        for fault in FAULTS:
            try:
                outage, hub_back = measure(side, actions[fault])
            except Exception as exc:  # a fault that breaks the stack for good is a result
                print(f"{side.name}: {fault}: {exc}")
                outage, hub_back = CAP_S, CAP_S
            results[fault][side.name] = (outage, hub_back)
            print(
                f"{side.name:>9}  {fault:<22} longest outage {outage:5.2f} s, "
                f"hub back after {hub_back:5.2f} s",
                flush=True,
            )
            if isinstance(side, Tutorial) and fault.startswith("hub frozen"):
                side.thaw()
            if fault != FAULTS[-1]:
                # Each fault starts from a whole stack: the hub may still be on its way back.
                _wait(functools.partial(_hub_healthy, side.env), HUB_BACK_CAP_S)
    return results


def _resync(lab: Lab) -> None:
    """After a round that hit the cap, count runs from what the cell shows: the lost or late
    run must not make the next round wait for an output that never comes."""
    match = re.search(r"round (\d+)", lab.output())
    if match:
        lab.runs = int(match.group(1))


def cell_round(side: Side, lab: Lab) -> float:
    """Kill the proxy, run the cell at once; seconds from the kill to its output."""
    began = time.monotonic()
    side.proxy_kill()
    try:
        lab.run_cell(timeout_s=CELL_CAP_S)
        took = time.monotonic() - began
    except Exception:  # no output within the cap
        took = CELL_CAP_S
    print(
        f"{side.name:>9}  proxy SIGKILL: notebook cell after {took:5.2f} s "
        f"(dialogs {lab.dialogs()}, same page {lab.same_page()})",
        flush=True,
    )
    # The next round starts from a whole stack and a connected notebook.
    _wait(functools.partial(_hub_healthy, side.env), HUB_BACK_CAP_S)
    if took >= CELL_CAP_S:
        time.sleep(CELL_CAP_S / 2)  # a late run may still show
        _resync(lab)
    time.sleep(SETTLE_S)
    return took


def notebook_after_proxy_kill(sides: list[Side], rounds: int) -> dict[str, list[float]]:
    """Seconds from the proxy's death to the output of the next cell, per side and round;
    the sides take turns, so that both see the machine's load alike."""
    labs: dict[str, Lab] = {}
    try:
        for side in sides:
            person = side.person
            assert person is not None
            labs[side.name] = Lab(side.env.base_url, person.name, PASSWORD, person.session)
        times: dict[str, list[float]] = {side.name: [] for side in sides}
        for _ in range(rounds):
            for side in sides:
                times[side.name].append(cell_round(side, labs[side.name]))
        return times
    finally:
        for lab in labs.values():
            lab.close()


def _cells(values: list[float]) -> str:
    return ", ".join(f"≥ {CELL_CAP_S:.0f}" if v >= CELL_CAP_S else f"{v:.1f}" for v in values)


def cell_table(cells: dict[str, list[float]]) -> str:
    hubd, tutorial = statistics.median(cells["hubd"]), statistics.median(cells["tutorial"])
    return (
        "| proxy SIGKILL, notebook open | median: hubd | tutorial | tutorial / hubd "
        "| rounds (s): hubd | tutorial |\n"
        "|---|---|---|---|---|---|\n"
        f"| kill → the next cell's output | {hubd:.2f} s | {tutorial:.2f} s "
        f"| {tutorial / hubd:.1f} | {_cells(cells['hubd'])} | {_cells(cells['tutorial'])} |"
    )


def table(results: Results) -> str:
    def show(value: float) -> str:
        return f"≥ {CAP_S:.0f} s (not back)" if value >= CAP_S else f"{value:.2f} s"

    def ratio(hubd: float, tutorial: float) -> str:
        if hubd < 0.05:
            return "—  (neither cut)" if tutorial < 0.05 else "∞ (hubd: none)"
        return f"{tutorial / hubd:.1f}"

    lines = [
        "| Fault | people's servers cut: hubd | tutorial | tutorial / hubd "
        "| hub pages back: hubd | tutorial |",
        "|---|---|---|---|---|---|",
    ]
    for fault, by_side in results.items():
        (hubd, hubd_back), (tutorial, tutorial_back) = by_side["hubd"], by_side["tutorial"]
        lines.append(
            f"| {fault} | {show(hubd)} | {show(tutorial)} | {ratio(hubd, tutorial)} "
            f"| {show(hubd_back)} | {show(tutorial_back)} |"
        )
    return "\n".join(lines)


def machine_state(client: docker.DockerClient) -> str:
    """The load the figures were taken under: this machine is shared with other test runs."""
    one, five, fifteen = os.getloadavg()
    running = len(client.containers.list())
    return (
        f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on "
        f"{os.cpu_count()} CPUs, {running} containers running on the engine"
    )


def _purge(env: StackEnv) -> None:
    # A person's server may still be removing itself (auto-remove) and hold its volume.
    for attempt in range(5):
        try:
            purge_stack(env)
            return
        except docker.errors.APIError:
            if attempt == 4:
                raise
            time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=CELL_ROUNDS, help="proxy kills with a notebook open, per side"
    )
    parser.add_argument(
        "--cell-only", action="store_true", help="only the notebook's row, not the HTTP faults"
    )
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    images = ensure_test_images(client, log=lambda line: None)
    tmp = Path(tempfile.mkdtemp(prefix="hubd-bench-faults-"))
    for name in ("hubd", "tutorial"):
        (tmp / name).mkdir()
    envs = [make_stack_env(tmp / n, client, images) for n in ("hubd", "tutorial")]
    hubd_env, tutorial_env = envs
    daemon = DaemonProc(hubd_env, tmp / "daemon.log", timing="")
    states: list[str] = []
    try:
        daemon.start().wait_state("running", 240)
        tutorial_env.hubd("up")
        make_tutorial_stack(tutorial_env)
        sides: list[Side] = [Hubd("hubd", hubd_env), Tutorial("tutorial", tutorial_env)]
        for side in sides:
            side.env.hubd("user", "add", "--password-stdin", "ada", input=PASSWORD + "\n")
            side.person = Person(side.env.base_url, "ada", PASSWORD)
        # The notebook first: the HTTP faults end with the tutorial's hub removed for good.
        states.append(f"notebook rounds began: {machine_state(client)}")
        text = cell_table(notebook_after_proxy_kill(sides, args.rounds))
        states.append(f"notebook rounds ended: {machine_state(client)}")
        if not args.cell_only:
            text += "\n\n" + table(run(sides))
            states.append(f"HTTP faults ended: {machine_state(client)}")
    finally:
        daemon.stop()
        for env in envs:
            _purge(env)
    state = "".join(f"- {line}\n" for line in states)
    print(text + "\n\n" + state)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Faults seen by a person at work (bench/bench_faults.py)\n\n"
        "Notebook's next cell: seconds from the proxy's death until a cell run at once in "
        "JupyterLab (Chromium) shows its output; rounds alternate between the sides. "
        "People's servers cut: the longest outage of `/user/NAME/api/status` (polled every "
        "50 ms). Hub pages back: seconds from the fault until `/hub/health` answers. "
        f"Capped at {CAP_S:.0f} s (a cell at {CELL_CAP_S:.0f} s).\n\n"
        + text
        + "\n\nMachine:\n"
        + state
    )


if __name__ == "__main__":
    main()
