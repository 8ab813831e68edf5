"""Benchmark for backups: restic through hubd's helper container against plain `tar`
of the same volumes through a helper container, in one run.

1. First backup: throughput of restic (encrypted, deduplicated) vs tar (neither), as a ratio.
2. Second backup of unchanged data: restic's time as a share of its first (target < 10 %).

The data: two "people's" volumes, each a quarter in 64 KB files (notebooks, scripts: about 2000 per
person for 1000 MB) and three quarters in 8 big files (data sets), random bytes (incompressible,
no duplicates), written once by a helper container. Run:
    python -m bench.bench_backup [--megabytes 2000] [--rounds 3]
It prints a Markdown table (also written to bench/results/backup.md). Uses the local restic
stand-in image (Debian's restic 0.14), like the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker

from hubd.backup.helper import Helper, Mount
from hubd.stack.naming import StackNames
from tests.images.build import ensure_test_images

RESULTS = Path(__file__).parent / "results" / "backup.md"
PEOPLE = ("ada", "ben")


def make_volumes(client: docker.DockerClient, image: str, names: StackNames, mb: int) -> list[str]:
    volumes = []
    per_person = mb // len(PEOPLE)
    big_files, big_mb = 8, max(1, (per_person * 3 // 4) // 8)
    # Notebooks and scripts: 64 KB each, about a notebook with a few outputs.
    small_files = (per_person - big_files * big_mb) * 1024 // 64
    script = (
        "mkdir -p /v/data /v/notebooks\n"
        f"for i in $(seq {big_files}); do head -c {big_mb}M /dev/urandom > /v/data/set$i.bin;"
        " done\n"
        f"for i in $(seq {small_files}); do head -c 65536 /dev/urandom > /v/notebooks/nb$i.ipynb;"
        " done\n"
    )
    for person in PEOPLE:
        volume = f"{names.stack}-home-{person}"
        client.volumes.create(volume, labels=names.labels("user-data"))
        client.containers.run(
            image,
            ["-c", script],
            entrypoint=["sh"],
            volumes={volume: {"bind": "/v", "mode": "rw"}},
            remove=True,
        )
        volumes.append(volume)
    return volumes


def time_tar(client: docker.DockerClient, image: str, volumes: list[str], out: Path) -> float:
    mounts = {v: {"bind": f"/data/{p}", "mode": "ro"} for v, p in zip(volumes, PEOPLE, strict=True)}
    mounts[str(out)] = {"bind": "/out", "mode": "rw"}
    started = time.monotonic()
    client.containers.run(
        image,
        ["-c", "tar -cf /out/backup.tar -C /data . && sync"],
        entrypoint=["sh"],
        volumes=mounts,
        network_mode="none",
        remove=True,
    )
    return time.monotonic() - started


def time_restic(helper: Helper, volumes: list[str]) -> float:
    mounts = [Mount(v, f"/data/{p}") for v, p in zip(volumes, PEOPLE, strict=True)]
    started = time.monotonic()
    result = helper.restic(["backup", "--host", "bench", "/data"], mounts)
    if result.exit_code != 0:
        raise RuntimeError(result.errors or result.output)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env(timeout=600)
    images = ensure_test_images(client, log=lambda line: None)
    names = StackNames(f"hubdb{os.getpid()}")
    work = Path(tempfile.mkdtemp(prefix="hubd-bench-backup-"))
    rows: dict[str, list[float]] = {"tar": [], "first": [], "second": []}
    try:
        volumes = make_volumes(client, images.restic, names, args.megabytes)
        for n in range(args.rounds):
            tar_dir, repo = work / f"tar{n}", work / f"repo{n}"
            tar_dir.mkdir()
            repo.mkdir()
            helper = Helper(client, images.restic, names, str(repo), "bench-password")
            assert helper.restic(["init"]).exit_code == 0
            # Alternate which goes first, so that the page cache favours neither.
            if n % 2 == 0:
                rows["tar"].append(time_tar(client, images.restic, volumes, tar_dir))
                rows["first"].append(time_restic(helper, volumes))
            else:
                rows["first"].append(time_restic(helper, volumes))
                rows["tar"].append(time_tar(client, images.restic, volumes, tar_dir))
            rows["second"].append(time_restic(helper, volumes))
            shutil.rmtree(tar_dir)
            shutil.rmtree(repo)
    finally:
        for container in client.containers.list(all=True, filters=names.filters()):
            container.remove(force=True)
        for volume in client.volumes.list(filters=names.filters()):
            volume.remove(force=True)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    mb = args.megabytes
    table = "\n".join(
        [
            f"| backup of {mb} MB in 2 volumes (median of {args.rounds}) | restic (hubd) "
            "| plain tar | ratio |",
            "|---|---|---|---|",
            f"| first backup | {med['first']:.1f} s ({mb / med['first']:.0f} MB/s) "
            f"| {med['tar']:.1f} s ({mb / med['tar']:.0f} MB/s) "
            f"| {med['first'] / med['tar']:.2f} |",
            f"| second backup, data unchanged | {med['second']:.2f} s "
            f"({100 * med['second'] / med['first']:.1f} % of the first) | {med['tar']:.1f} s "
            f"(tar copies it all again) | {med['second'] / med['tar']:.2f} |",
        ]
    )
    raw = ", ".join(f"{k}: {[round(x, 2) for x in v]}" for k, v in rows.items())
    text = f"{table}\n\nRaw seconds: {raw}\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    if med["second"] >= 0.1 * med["first"]:
        raise SystemExit("second backup took 10 % or more of the first")


if __name__ == "__main__":
    main()
