"""Benchmark for HTTPS (issue 25): what TLS costs a person, against plain HTTP, in one run.

Two stacks from the same images: one with `tls = "off"`, one with hubd's CA (`tls = "auto"`).
On each: log in → JupyterLab ready (spawn included), then kernel round trips over the
websocket (`1+1`, the median of many). Run:
    python -m bench.bench_https [--round-trips 200]
It prints a Markdown table (also written to bench/results/https.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import requests

from hubd.tls import store
from hubd.tls.client import session_for
from tests.images.build import ensure_test_images
from tests.integration.docker_env import StackEnv, free_port, make_stack_env, purge_stack
from tests.integration.hubclient import KernelSocket, login, open_lab

RESULTS = Path(__file__).parent / "results" / "https.md"
PASSWORD = "meadow-copper-violin"
HUB_NAME = "jupyter.local"


def measure(env: StackEnv, https: bool, round_trips: int) -> dict[str, float]:
    env.hubd("up")
    env.hubd("user", "add", "--password-stdin", "--", "ada", input=PASSWORD + "\n")
    sslopt: dict[str, Any] | None = None
    if https:
        root = store.files_in(env.state_dir).root_cert
        session = session_for(root, HUB_NAME)
        base = f"https://127.0.0.1:{env.config.https_port}"
        sslopt = {"ca_certs": str(root), "server_hostname": HUB_NAME, "check_hostname": True}
    else:
        session, base = requests.Session(), env.base_url
    began = time.perf_counter()
    login(base, "ada", PASSWORD, session)
    open_lab(session, base, "ada")
    lab_s = time.perf_counter() - began
    kernel = KernelSocket.start(session, base, "ada", sslopt)
    try:
        kernel.execute("1+1")  # warm
        times = []
        for _ in range(round_trips):
            start = time.perf_counter()
            kernel.execute("1+1")
            times.append(time.perf_counter() - start)
    finally:
        kernel.close()
    return {"lab_s": lab_s, "rt_ms": statistics.median(times) * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args()
    client = docker.from_env(timeout=300)
    images = ensure_test_images(client, log=lambda line: None)
    results = {}
    for label, overrides in (
        ("HTTP (tls = off)", {"tls": "off"}),
        ("HTTPS (hubd's CA)", {"tls": "auto", "https_port": free_port()}),
    ):
        folder = Path(tempfile.mkdtemp(prefix="hubd-bench-https-"))
        env = make_stack_env(folder, client, images, **overrides)
        try:
            results[label] = measure(env, overrides["tls"] == "auto", args.round_trips)
        finally:
            purge_stack(env)
            shutil.rmtree(folder, ignore_errors=True)
    http, https = results["HTTP (tls = off)"], results["HTTPS (hubd's CA)"]
    lines = [
        "| | login → Lab ready (s) | kernel round trip, median (ms) |",
        "|---|---|---|",
        *(f"| {k} | {v['lab_s']:.2f} | {v['rt_ms']:.2f} |" for k, v in results.items()),
        f"| HTTPS / HTTP | {https['lab_s'] / http['lab_s']:.2f} | "
        f"{https['rt_ms'] / http['rt_ms']:.2f} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(f"# bench_https ({args.round_trips} round trips)\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
