"""A 2-node Docker Swarm for integration tests, on this one machine, beside the main engine.

Each node is an extra `dockerd` in a network namespace of its own (netns.py's LAN: a switch
namespace with a bridge), entered with `nsenter --net` plus `unshare --uts` (its own hostname;
no mount namespace of its own, see library-notes "Docker Swarm on one machine"), with its own
data root, exec root, pid file, socket, cgroup parent, no default bridge, and a config file whose
`deprecated-key-path` gives it a node ID of its own. node1 is the manager, node2 a worker whose
engine advertises the generic resource `NVIDIA-GPU=fake0` (a GPU for placement, none for real).
The test process stays in the root namespace and reaches the nodes over a veth on the LAN's
private subnet (198.18.N.0/24, RFC 2544: never routed; the nodes have no route beyond it).
Names carry the pid (namespaces `hubd-t<pid>-s<n>-node1`, folders /tmp/hubd-sw<pid>-*), and a
new lab first removes what labs of dead processes left (engines, containers, mounts, cgroups).

Images: nodes cannot pull or reach PyPI. node1 gets the hub base, a hub image built once on the
main engine (`hubd_env` tags it for each stack, so hubd never builds there), the proxy, user and
restic images; node2 the user and restic images. They come from `docker save | docker load`
the first time, and from a cache of the nodes' image stores (hard links, /tmp/hubd-lab-images,
keyed by image ids) after that; the hub image, which changes with every edit of hubd's hub
files, is not in the key: a new one alone loads in ~7 s on top of its cached base.

This kernel has no IPVS: use `EndpointSpec(mode="dnsrr")`, never VIPs or the ingress mesh.

Usage (fixtures `swarm_lab` (module scope, reset after the module) on `swarm_lab_session`):

    def test_x(swarm_lab: SwarmLab, tmp_path: Path, test_images: TestImages) -> None:
        node1, node2 = swarm_lab.node1, swarm_lab.node2
        swarm_lab.manager_client().services.create(
            test_images.user, constraints=[f"node.id=={node2.node_id}"],
            endpoint_spec=EndpointSpec(mode="dnsrr"), networks=[an_attachable_overlay])
        env = swarm_lab.hubd_env(tmp_path)  # a docker_env.StackEnv on node1, Swarm mode
        daemon = DaemonProc(env, tmp_path / "hubd.log").start()  # in node1's namespace
        requests.get(env.base_url + "/hub/health")  # http://<node1 ip>:<port>
        node2.stop_engine(); node2.wait_status("down"); node2.start_engine()  # Ready again

`reset()` removes what tests made on both nodes (services, containers, volumes, networks,
secrets, configs, image tags, node labels, drain), starts stopped engines and forms the Swarm
again if a test took it apart (`ensure_swarm()`; node IDs may then change).

Measured here (2 cores shared with other jobs, load 4-10): setup 4-14 s from the image cache
(the hard links 2-11 s), 47-146 s the first time (`docker save` of 1.4 GB alone ~16 s, the loads
in parallel 46-130 s); reset 0.5-1.3 s (up to ~4 s with a drained node); close 5-20 s (deleting
the data). A stopped node2 shows "down" after 2-3.5 s (killed: 4-7 s), is Ready 0.4-2.4 s after
its start; a pinned service runs in 1.5-3.3 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError, NotFound

from hubd.stack.images import LABEL_BASE_ID, LABEL_BASE_REF, ensure_hub_image, hub_image_tag
from hubd.stack.naming import LABEL_SPEC, ROLE_HUB_IMAGE, StackNames
from hubd.stack.progress import LogReporter
from hubd.timing import Timing
from tests.images.build import TestImages
from tests.integration import netns
from tests.integration.docker_env import StackEnv, make_stack_env
from tests.integration.engine_process import EngineProcess
from tests.integration.netns import wait_until

# The hub image every lab stack is tagged from, built on the main engine and kept there as a
# build cache (one tag per hub context, not per run).
PREBUILT_STACK = "hubdswlab"
GPU_RESOURCE = "NVIDIA-GPU=fake0"
# Swarm heartbeats every 2 s: a stopped node shows "down" within ~6 s, not ~15 s.
HEARTBEAT_NS = 2 * 10**9
# Networks every engine has; reset() keeps them.
BUILTIN_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}
_SUBNET_PREFIX = "198.18"
_DIR_PREFIX = "hubd-sw"
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_lab_numbers = itertools.count(1)
_TASK_ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}
# Image stores of lab nodes, kept between runs (hard links: no extra space while a lab uses them),
# beside the labs' own folders: hard links need the same file system.
IMAGE_CACHE = Path(tempfile.gettempdir()) / "hubd-lab-images"


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class LabNode(EngineProcess):
    """One Swarm node: an extra dockerd in its own network namespace."""

    def __init__(self, lab: SwarmLab, host: netns.Host, generic_resources: Sequence[str]) -> None:
        super().__init__()
        self.lab = lab
        self.host = host
        self.name = host.short  # also its hostname, as Swarm shows it
        self.ip = host.ipv4
        self.netns = host.netns
        self.dir = lab.workdir / self.name
        self.dir.mkdir()
        self.socket = self.dir / "docker.sock"
        self.pidfile = self.dir / "docker.pid"
        self.log_path = self.dir / "dockerd.log"
        self.cgroup_parent = self.netns
        self.generic_resources = list(generic_resources)
        self.node_id = ""  # set once the node is in the Swarm
        self.images: list[str] = []  # loaded at setup, kept by reset()
        config = self.dir / "daemon.json"
        # dockerd 20.10 has no flag for its identity key: without this every node would read
        # the main engine's /etc/docker/key.json and get the main engine's node ID.
        config.write_text(f'{{"deprecated-key-path": "{self.dir / "key.json"}"}}\n')
        self.config_file = config

    def __repr__(self) -> str:
        return f"LabNode({self.name}, {self.ip}, {self.node_id[:12]})"

    @property
    def docker_host(self) -> str:
        """For DOCKER_HOST or `docker -H`."""
        return f"unix://{self.socket}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run in this node's network namespace (and nothing else of it)."""
        return self.host.command(argv)

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """The docker command line against this engine; its output."""
        return _run(["docker", "-H", self.docker_host, *args], timeout=timeout, check=check)

    def _dockerd_argv(self) -> list[str]:
        argv = [
            "dockerd",
            f"--data-root={self.dir / 'data'}",
            f"--exec-root={self.dir / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--host={self.docker_host}",
            f"--cgroup-parent=/{self.cgroup_parent}",
            "--bridge=none",
            f"--config-file={self.config_file}",
            # Containers get this long to stop when the engine stops (the default is 15 s).
            "--shutdown-timeout=3",
        ]
        return argv + [f"--node-generic-resource={r}" for r in self.generic_resources]

    def pid(self) -> int:
        """The engine's process id (0 when it is stopped)."""
        return self._proc.pid if self.engine_running() and self._proc is not None else 0

    def engine_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start_engine(self, timeout: float = 60) -> None:
        """Start the engine (again); once in the Swarm, wait until the node is Ready."""
        if self.engine_running():
            return
        log = self.log_path.open("ab")
        argv = [
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.name} && exec "$@"',
            "sh",
            *self._dockerd_argv(),
        ]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
            )
        finally:
            log.close()
        self.wait_answering(timeout)
        if self.node_id:
            self.wait_status("ready", timeout)

    def stop_engine(self, kill: bool = False, timeout: float = 30) -> None:
        """Stop the engine: SIGTERM (its containers stop too), or with `kill` SIGKILL, as a
        node that loses power would (its containers keep running until it starts again).
        Does not wait for the Swarm to notice: see `wait_status("down")`."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def status(self) -> str:
        """The node's state as the manager sees it: "ready", "down", "unknown", ..."""
        node = self.lab.manager_client().nodes.get(self.node_id)
        return str(node.attrs.get("Status", {}).get("State", ""))

    def wait_status(self, state: str, timeout: float = 60) -> float:
        """Seconds until the manager reports this node in `state` ("ready", "down")."""

        def reached() -> bool:
            try:
                return self.status() == state
            except Exception:
                return False

        try:
            return wait_until(reached, timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"{self.name}: not {state} within {timeout} s") from None


class SwarmLab:
    """Two Swarm nodes in network namespaces; `close()` removes everything, also when the
    setup fails half-way. `timings` holds the seconds each setup step took."""

    def __init__(
        self, main: docker.DockerClient, images: TestImages, load_images: bool = True
    ) -> None:
        """`load_images=False`: a bare lab (no images, no hub image; `hubd_env` unusable),
        for tests of the lab's own mechanics."""
        self.main = main
        self.images = images
        self.load_images = load_images
        self.number = next(_lab_numbers)  # several labs in one process: tests of the lab
        self.timings: dict[str, float] = {}
        self.hub_image = ""  # the prebuilt hub image, once loaded
        started = time.monotonic()
        remove_stale_labs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
        self.net: netns.Lab | None = None
        self.nodes: list[LabNode] = []
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        self.timings["setup"] = time.monotonic() - started

    @property
    def node1(self) -> LabNode:
        return self.nodes[0]

    @property
    def node2(self) -> LabNode:
        return self.nodes[1]

    def manager_client(self) -> docker.DockerClient:
        return self.node1.client()

    def _timed(self, step: str, action: Callable[[], Any]) -> Any:
        start = time.monotonic()
        result = action()
        self.timings[step] = time.monotonic() - start
        return result

    def _setup(self) -> None:
        self._timed("namespaces", self._make_network)
        if self.load_images:
            self.hub_image = self._timed("hub image", self._prebuild_hub_image)
            # node1 runs the stack (hub and gate from the hub image, whose base hubd looks up,
            # and the proxy); both run people's servers, move helpers (user image), backups.
            people = [self.images.user, self.images.restic]
            self.node1.images = [self.images.hub_base, self.hub_image, self.images.proxy, *people]
            self.node2.images = people
            self._timed("image cache", self._restore_images)
        self._timed("engines", self._start_engines)
        if self.load_images:
            self._timed("image load", self._load_missing_images)
        self._timed("swarm", self.ensure_swarm)

    def _make_network(self) -> None:
        subnet = _free_subnet()
        self.subnet = f"{subnet}.0/24"
        # Namespaces hubd-t<pid>-s<n>-node1 (netns.py removes those of dead processes).
        self.net = netns.Lab(f"-s{self.number}")
        self.root_port = f"hs{os.getpid()}x{self.number}"[:15]
        self.net.add_root_port(self.root_port, f"{subnet}.1/24")
        for index, name in enumerate(("node1", "node2")):
            host = self.net.add_host(name, f"{subnet}.{11 + index}", holder=False)
            resources = [GPU_RESOURCE] if name == "node2" else []
            self.nodes.append(LabNode(self, host, resources))

    def _start_engines(self) -> None:
        errors: list[BaseException] = []

        def start(node: LabNode) -> None:
            try:
                node.start_engine()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def ensure_swarm(self) -> None:
        """node1 the manager and node2 a Ready worker, however a test left them (engines
        stopped, Swarm left or taken apart, node removed, another Swarm made by `hubd node
        add`); nodes left over from before are removed from the list. Node IDs may change.
        Cheap when all is well (setup and `reset()` call it)."""
        for node in self.nodes:
            if not node.engine_running():
                node.start_engine()
        manager = self.manager_client()
        if not _swarm_info(self.node1).get("ControlAvailable"):
            if _swarm_info(self.node1).get("LocalNodeState") != "inactive":
                manager.swarm.leave(force=True)
            manager.swarm.init(
                advertise_addr=self.node1.ip,
                listen_addr=f"{self.node1.ip}:2377",
                dispatcher_heartbeat_period=HEARTBEAT_NS,
            )
        manager.swarm.reload()
        if manager.swarm.attrs["Spec"]["Dispatcher"].get("HeartbeatPeriod") != HEARTBEAT_NS:
            manager.swarm.update(dispatcher_heartbeat_period=HEARTBEAT_NS)
            manager.swarm.reload()
        self.node1.node_id = str(_swarm_info(self.node1)["NodeID"])
        members = {node.id for node in manager.nodes.list()}
        worker = _swarm_info(self.node2)
        if worker.get("NodeID") not in members or worker.get("LocalNodeState") != "active":
            if worker.get("LocalNodeState") != "inactive":
                self.node2.client().swarm.leave(force=True)
            self.node2.client().swarm.join(
                remote_addrs=[f"{self.node1.ip}:2377"],
                join_token=manager.swarm.attrs["JoinTokens"]["Worker"],
                advertise_addr=self.node2.ip,
                listen_addr=f"{self.node2.ip}:2377",
            )
        self.node2.node_id = str(_swarm_info(self.node2)["NodeID"])
        ours = {node.node_id for node in self.nodes}
        for member in manager.nodes.list():
            if member.id not in ours:
                with contextlib.suppress(NotFound, APIError):
                    member.remove(force=True)
        for node in self.nodes:
            node.wait_status("ready", 60)

    def take_apart(self) -> None:
        """Both engines out of the Swarm (a one-machine hub on node1, as before `hubd node
        add`); `ensure_swarm()` or `reset()` forms it again."""
        for node in (self.node2, self.node1):
            if _swarm_info(node).get("LocalNodeState") != "inactive":
                node.client().swarm.leave(force=True)
            node.node_id = ""

    def _prebuild_hub_image(self) -> str:
        tag, _ = ensure_hub_image(
            self.main, StackNames(PREBUILT_STACK), self.images.hub_base, LogReporter(Timing())
        )
        return tag

    def _image_key(self, node: LabNode) -> str:
        """Names a node's image store by what is in it (and the engine that wrote it)."""
        # Not the hub image: it changes with every edit of hubd's hub files, and on top of
        # its base (cached) it loads in ~7 s where all of node1's images take a minute or two.
        refs = [ref for ref in node.images if ref != self.hub_image]
        ids = sorted(f"{ref}={self.main.images.get(ref).id}" for ref in refs)
        version = str(self.main.version().get("Version", ""))
        return hashlib.sha256(json.dumps([version, ids]).encode()).hexdigest()[:16]

    def _restore_images(self) -> None:
        """Hard-link each node's image store from the cache, when it holds one: instant,
        where a load takes a minute. Safe to share: an engine never writes into a committed
        layer or a metadata file in place (it writes new files and renames them), and a
        container's changes go to its own layer."""
        copies = []
        for node in self.nodes:
            cached = IMAGE_CACHE / self._image_key(node)
            if not (cached / "complete").exists():
                continue
            os.utime(cached)  # in use: not pruned
            data = node.dir / "data"
            data.mkdir(mode=0o711)
            argv = ["cp", "-al", str(cached / "image"), str(cached / "overlay2"), str(data)]
            copies.append((data, subprocess.Popen(argv, stderr=subprocess.DEVNULL)))
        for data, copy in copies:
            if copy.wait(300):  # e.g. another file system: the images are loaded instead
                shutil.rmtree(data, ignore_errors=True)

    def _load_missing_images(self) -> None:
        """`docker save` from the main engine into each node's `docker load` (both at once),
        where the cache had not put the node's images; then cache its image store."""
        missing = {node.name: _missing_images(node) for node in self.nodes}
        pipelines = []
        for node in self.nodes:
            if not missing[node.name]:
                continue
            err = (self.workdir / f"{node.name}-load.err").open("wb")
            save = subprocess.Popen(
                ["docker", "save", *missing[node.name]], stdout=subprocess.PIPE, stderr=err
            )
            load = subprocess.Popen(
                ["docker", "-H", node.docker_host, "load", "-q"],
                stdin=save.stdout,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            assert save.stdout is not None
            save.stdout.close()  # the load holds it now: it sees the end when the save ends
            err.close()
            pipelines.append((node, save, load))
        problems = []
        for node, save, load in pipelines:
            if save.wait(600) or load.wait(600):
                text = (self.workdir / f"{node.name}-load.err").read_text().strip()
                problems.append(f"{node.name}: {text}")
        if problems:
            raise AssertionError("loading the test images failed: " + "; ".join(problems))
        for node in self.nodes:
            if (IMAGE_CACHE / self._image_key(node)).exists():
                continue
            # The engine keeps its layer folder mounted (hard links cannot cross that), and a
            # stopped engine writes nothing: a restart costs ~2 s, once per new set of images.
            node.stop_engine()
            self._cache_images(node)
            node.start_engine()

    def _cache_images(self, node: LabNode) -> None:
        """Hard-link the node's freshly loaded image store into the cache (next labs start
        from it); renamed into place whole, so a concurrent run never sees half of it."""
        _prune_image_cache()
        final = IMAGE_CACHE / self._image_key(node)
        data = node.dir / "data"
        if final.exists() or str(data) in Path("/proc/self/mountinfo").read_text():
            return
        partial = IMAGE_CACHE / f".{final.name}.{os.getpid()}"
        partial.mkdir(parents=True)
        _run(["cp", "-al", str(data / "image"), str(data / "overlay2"), str(partial)], timeout=300)
        (partial / "complete").write_text(" ".join(node.images) + "\n")
        try:
            partial.rename(final)
        except OSError:  # another run was first
            shutil.rmtree(partial, ignore_errors=True)

    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def hubd_env(self, tmp_path: Path, **config: Any) -> StackEnv:
        """A hubd stack (docker_env.StackEnv) whose engine is node1, the manager: `env.hubd()`
        and DaemonProc(env) run hubd in node1's network namespace with DOCKER_HOST on node1's
        engine, so its hub, proxy and gate run on node1; the proxy listens on node1's address,
        which `env.base_url` names (reachable from the test process). Purged by `reset()`."""
        client = self.node1.client()
        env = make_stack_env(tmp_path, client, self.images, bind_address=self.node1.ip, **config)
        env.env["DOCKER_HOST"] = self.node1.docker_host
        env.command_prefix = self.node1.command([])
        self._tag_hub_image(env.names, env.config.hub_base_image)
        return env

    def _tag_hub_image(self, names: StackNames, base_image: str) -> None:
        """The stack's hub image on node1, as hubd would build it (its tag and labels, see
        hubd/stack/images.py), made from the prebuilt one: node1 cannot reach PyPI."""
        client = self.node1.client()
        base_id = str(client.images.get(base_image).id)
        tag = hub_image_tag(names, base_id)
        labels = {
            **names.labels(ROLE_HUB_IMAGE),
            LABEL_SPEC: tag.rsplit(":", 1)[1],
            LABEL_BASE_REF: base_image,
            LABEL_BASE_ID: base_id,
        }
        client.images.build(
            fileobj=io.BytesIO(f"FROM {self.hub_image}\n".encode()), tag=tag, labels=labels, rm=True
        )

    def reset(self) -> float:
        """Remove what tests made on both nodes; the seconds it took."""
        start = time.monotonic()
        self.ensure_swarm()
        manager = self.manager_client()
        # Containers killed first (a task's process may well ignore SIGTERM for its 10 s
        # grace), then the services, before their restart delay (5 s) replaces a task; then
        # wait until the agents have seen every task end (the manager deletes them a few
        # seconds later), so that no container appears after the second sweep.
        self._remove_containers()
        for service in manager.services.list():
            with contextlib.suppress(NotFound):
                service.remove()

        def tasks_ended() -> bool:
            # Not network attachments (a container on an attachable overlay): no service,
            # no container of their own; they go with their container, some seconds later.
            tasks = [t for t in manager.api.tasks() if t.get("ServiceID")]
            return all(t["Status"]["State"] in _TASK_ENDED for t in tasks)

        with contextlib.suppress(AssertionError):
            wait_until(tasks_ended, 30, interval=0.1)
        self._remove_containers()
        for secret in manager.secrets.list():
            with contextlib.suppress(NotFound):
                secret.remove()
        for config in manager.configs.list():
            with contextlib.suppress(NotFound):
                config.remove()
        self._remove_networks()
        for node in self.nodes:
            client = node.client()
            for volume in client.volumes.list():
                with contextlib.suppress(NotFound):
                    volume.remove(force=True)
            for image in client.images.list():
                for tag in image.tags:
                    if tag not in node.images:
                        with contextlib.suppress(NotFound, APIError):
                            client.images.remove(tag)
            with contextlib.suppress(APIError):
                client.images.prune(filters={"dangling": True})
        for node in manager.nodes.list():
            spec = node.attrs["Spec"]
            # All labels (hubd's io.hubd.* and any other): the lab itself sets none.
            if spec.get("Labels") or spec.get("Availability") != "active":
                node.update({**spec, "Labels": {}, "Availability": "active"})
        elapsed = time.monotonic() - start
        self.timings["last reset"] = elapsed
        return elapsed

    def _remove_containers(self) -> None:
        for node in self.nodes:
            for container in node.client().containers.list(all=True):
                with contextlib.suppress(NotFound, APIError):
                    container.remove(force=True, v=True)

    def _remove_networks(self, timeout: float = 30) -> None:
        """Overlays on the manager, bridges on each node; an overlay stays busy until the
        tasks of removed services are gone on every node, so retry for a while."""

        def removed() -> bool:
            left = 0
            for node in self.nodes:
                for network in node.client().networks.list():
                    if network.name in BUILTIN_NETWORKS:
                        continue
                    if network.attrs.get("Scope") == "swarm" and node is not self.node1:
                        continue
                    left += 1
                    with contextlib.suppress(NotFound, APIError):
                        network.remove()
            return left == 0

        with contextlib.suppress(AssertionError):
            wait_until(removed, timeout, interval=0.3)
        removed()

    def close(self) -> None:
        """Stop the engines (gracefully, then by force), kill whatever they left, unmount,
        delete the namespaces, cgroups and data. Safe to call twice."""
        start = time.monotonic()
        for node in self.nodes:
            if node.engine_running():
                # Killed, not stopped: the engine would wait up to 10 s for each to stop.
                with contextlib.suppress(Exception):
                    for container in node.client().containers.list():
                        container.kill()
        threads = [
            threading.Thread(target=node.stop_engine, kwargs={"timeout": 15}) for node in self.nodes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for node in self.nodes:
            node.close_client()
        cgroups = [node.cgroup_parent for node in self.nodes]
        _teardown(self.workdir, cgroups)
        if self.net is not None:
            # Now, not when the kernel gets round to destroying the switch namespace.
            _run(["ip", "link", "del", self.root_port], check=False)
            self.net.close()
            self.net = None
        self.nodes = []
        self.timings["close"] = time.monotonic() - start


def _swarm_info(node: LabNode) -> dict[str, Any]:
    return dict(node.client().info().get("Swarm") or {})


def _missing_images(node: LabNode) -> list[str]:
    missing = []
    for ref in node.images:
        try:
            node.client().images.get(ref)
        except NotFound:
            missing.append(ref)
    return missing


def _prune_image_cache(max_age_s: float = 3 * 24 * 3600) -> None:
    """Cached image stores unused for days (older test images), and halves left by runs that
    died while caching."""
    if not IMAGE_CACHE.is_dir():
        return
    for entry in IMAGE_CACHE.iterdir():
        match = re.match(r"^\.\w+\.(\d+)$", entry.name)
        if match:
            stale = not Path(f"/proc/{match.group(1)}").exists()
        else:
            stale = time.time() - entry.stat().st_mtime > max_age_s
        if stale:
            shutil.rmtree(entry, ignore_errors=True)


def _free_subnet() -> str:
    """A 198.18.N prefix no route of this machine uses yet (parallel runs, leftovers)."""
    routes = _run(["ip", "-4", "route", "show", "table", "all"])
    used = set(re.findall(rf"{re.escape(_SUBNET_PREFIX)}\.(\d+)\.", routes))
    for offset in range(250):
        third = (os.getpid() + offset) % 250 + 1
        if str(third) not in used:
            return f"{_SUBNET_PREFIX}.{third}"
    raise AssertionError("no free 198.18.N.0/24 for the Swarm lab")


def _pids_to_kill(workdir: Path, cgroups: Sequence[str]) -> set[int]:
    """Processes a lab left: any whose command line names its directory (dockerd,
    containerd, shims, docker-proxy) and any in its nodes' cgroups (containers)."""
    needle = str(workdir).encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    for cgroup in cgroups:
        for procs in _CGROUP_ROOT.glob(f"*/{cgroup}/**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(line) for line in procs.read_text().split())
    found.discard(os.getpid())
    return found


def _teardown(workdir: Path, cgroups: Sequence[str]) -> None:
    """Everything of a lab below `workdir` and in `cgroups` gone, however it ended."""
    pids = _pids_to_kill(workdir, cgroups)
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            pids = {pid for pid in pids if _alive(pid)}
            if not pids:
                break
            time.sleep(0.1)
        if not pids:
            break
    _unmount_under(workdir)
    for cgroup in cgroups:
        for controller in _CGROUP_ROOT.iterdir():
            base = controller / cgroup
            if not base.is_dir():
                continue
            # Deepest first: a cgroup is removed with rmdir once it has no children.
            for path in sorted(base.glob("**"), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    path.rmdir()
    shutil.rmtree(workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _unmount_under(path: Path) -> None:
    prefix = str(path) + "/"
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        _run(["umount", "-l", point], check=False)


def remove_stale_labs() -> None:
    """Remove what labs of earlier runs left when their process died (a killed pytest):
    engines, containers, mounts, cgroups, data, veths and namespaces."""
    stale: dict[str, list[str]] = {}
    for cgroup in _CGROUP_ROOT.glob(f"*/{netns.PREFIX}*-s*-node*"):
        match = re.match(rf"^{netns.PREFIX}(\d+)-s\w*-node\d+$", cgroup.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            stale.setdefault(match.group(1), []).append(cgroup.name)
    for workdir in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        match = re.match(rf"^{_DIR_PREFIX}(\d+)-", workdir.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _teardown(workdir, sorted(set(stale.pop(match.group(1), []))))
    for pid, cgroups in stale.items():  # their directory already gone
        _teardown(Path(tempfile.gettempdir()) / f"{_DIR_PREFIX}{pid}-gone", sorted(set(cgroups)))
    # Their root ends of the LAN (SwarmLab.root_port), then their namespaces.
    for name in re.findall(r"^\d+: (hs(\d+)x\d+)@", _run(["ip", "-o", "link"]), re.M):
        if not Path(f"/proc/{name[1]}").exists():
            _run(["ip", "link", "del", name[0]], check=False)
    netns.remove_stale_namespaces()


@contextlib.contextmanager
def swarm_lab_running(main: docker.DockerClient, images: TestImages) -> Iterator[SwarmLab]:
    lab = SwarmLab(main, images)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def swarm_lab_session(
    docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[SwarmLab]:
    """One lab for the whole session (set up on first use)."""
    with swarm_lab_running(docker_client, test_images) as lab:
        yield lab


@pytest.fixture(scope="module")
def swarm_lab(swarm_lab_session: SwarmLab) -> Iterator[SwarmLab]:
    """The session's lab, reset after each module."""
    yield swarm_lab_session
    swarm_lab_session.reset()
