"""Every module imports on its own, there is no import cycle, and the layers hold.

Like python-zeroconf's tests/test_circular_imports.py: each module is imported first thing in
a process of its own, so a cycle that only bites in one import order shows. The imports are
also read with `ast`, for the cycle check and the layer rules (docs/architecture.md).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hubd"
# The hub image's files run inside the hub's (and the gate's) container, without hubd. The
# ones that need JupyterHub (not installed beside hubd) are read here, not imported; the
# standard-library-only ones are modules like any other (hubd imports swarm_placement).
HUB_IMAGE = PACKAGE / "stack" / "hub_image"
NEEDS_JUPYTERHUB = {"hubd_hub.py", "hubd_spawner.py", "hubd_swarm.py", "jupyterhub_config.py"}

KERNEL = {
    "hubd",
    "hubd.config",
    "hubd.timing",
    "hubd.paths",
    "hubd.errors",
    "hubd.status",
    "hubd.logsafe",
    "hubd.files",
    "hubd.codec",
    "hubd.wakeup",
}
# The private packages and the one entry module allowed to use each.
PRIVATE = {"hubd._daemon": "hubd.daemon", "hubd._tray": "hubd.tray", "hubd._mdns": "hubd.mdns"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not (path.parent == HUB_IMAGE and path.name in NEEDS_JUPYTERHUB)
    }


# `python -m hubd`: runs the CLI when imported.
SCRIPTS = {"hubd.__main__"}


MODULES = _modules()


@dataclass(frozen=True)
class Import:
    target: str
    line: int
    at_import_time: bool  # module level, not under `if TYPE_CHECKING:`


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(nodes: list[ast.stmt], top: bool) -> Iterator[tuple[ast.stmt, bool]]:
    for node in nodes:
        yield node, top
        if isinstance(node, ast.If):
            yield from _walk(node.body, top and not _is_type_checking(node.test))
            yield from _walk(node.orelse, top)
        elif isinstance(node, (ast.Try, ast.With)):
            for block in (node.body, *[getattr(node, f, []) for f in ("orelse", "finalbody")]):
                yield from _walk(block, top)
            for handler in getattr(node, "handlers", []):
                yield from _walk(handler.body, top)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from _walk(node.body, top and isinstance(node, ast.ClassDef))


def imports_of(name: str) -> list[Import]:
    """The hubd modules `name` imports; `from pkg import mod` counts as importing pkg.mod."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node, top in _walk(ast.parse(path.read_text(), str(path)).body, True):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        found += [Import(t, node.lineno, top) for t in targets if t.split(".")[0] == "hubd"]
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# ---------------------------------------------------------------------- each on its own


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    # One interpreter, one fork per module: a fresh import state each time, without paying
    # for an interpreter start seventy times on a 2-core machine.
    # Third-party packages are imported once in the parent first: a cycle or a missing name
    # is a property of hubd's own modules, and importing the Docker SDK seventy times over
    # took half of this test's time.
    script = """
import importlib, os, sys, traceback
for name in os.environ["HUBD_PRELOAD"].split():
    try:
        importlib.import_module(name)
    except Exception:
        pass  # e.g. pystray without a display: the child shows what that means for hubd
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
print(" ".join(failed))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, *sorted(set(MODULES) - SCRIPTS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HUBD_PRELOAD": " ".join(sorted(_third_party()))},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], done.stderr


def _third_party() -> set[str]:
    """The top-level packages outside hubd and the standard library that hubd imports."""
    found = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found |= {name.split(".")[0] for name in names}
    return found - set(sys.stdlib_module_names) - {"hubd", "__future__"}


def test_no_import_cycle() -> None:
    """Module-level imports only: an import inside a function or for type checking is how a
    needed back-reference is kept out of the import graph."""
    edges = {
        name: sorted({i.target for i in imports if i.at_import_time and i.target != name})
        for name, imports in GRAPH.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in edges.get(name, []):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert cycles == []


# ---------------------------------------------------------------------- layers


def _violations() -> list[str]:
    found = []
    for name, imports in GRAPH.items():
        for i in imports:
            target = i.target
            where = f"{MODULES[name].relative_to(ROOT)}:{i.line} imports {target}"
            if _in(target, "hubd.cli") and not _in(name, "hubd.cli") and name != "hubd.__main__":
                found.append(f"only the CLI (and __main__) imports hubd.cli: {where}")
            if name in KERNEL and target not in KERNEL:
                found.append(f"the shared kernel imports only the kernel: {where}")
            for package, entry in PRIVATE.items():
                if _in(target, package) and not _in(name, package) and name != entry:
                    found.append(f"only {entry} imports {package}: {where}")
            if _in(name, "hubd._mdns") and (
                _in(target, "hubd._tray") or _in(target, "hubd._daemon")
            ):
                found.append(f"_mdns knows neither the tray nor the daemon: {where}")
            if _in(name, "hubd._tray") and (
                _in(target, "hubd._daemon") or _in(target, "hubd.stack")
            ):
                found.append(f"the tray talks to the daemon only over its socket: {where}")
            if (
                name in ("hubd.service.systemd", "hubd.service.launchd")
                and _in(target, "hubd.service")
                and target != "hubd.service._base"
            ):
                found.append(f"a service backend imports only service._base: {where}")
    return found


def test_layer_rules_hold() -> None:
    assert _violations() == []


def _hub_image_violations(files: dict[str, str]) -> list[str]:
    """The hub image's files run without hubd: none imports hubd; the ones hubd imports too
    (and the gate, whose container has only Python) import only the standard library and
    each other."""
    siblings = {Path(name).stem for name in files}
    found = []
    for name, text in files.items():
        for node in ast.walk(ast.parse(text, name)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            else:
                continue
            for target in targets:
                top = target.split(".")[0]
                where = f"hub_image/{name}:{node.lineno} imports {target}"
                if top == "hubd":
                    found.append(f"the hub image's files run without hubd: {where}")
                elif (
                    name not in NEEDS_JUPYTERHUB
                    and top not in sys.stdlib_module_names
                    and top not in siblings
                ):
                    found.append(f"standard library only: {where}")
    return found


def test_hub_image_files_run_without_hubd() -> None:
    files = {path.name: path.read_text() for path in sorted(HUB_IMAGE.glob("*.py"))}
    assert set(files) - NEEDS_JUPYTERHUB, "no standard-library-only file found"
    assert _hub_image_violations(files) == []
    # The rule can fail.
    assert _hub_image_violations({"swarm_placement.py": "import docker\n"}) != []
    assert _hub_image_violations({"hubd_swarm.py": "from hubd.config import Config\n"}) != []


@pytest.mark.parametrize(
    ("importer", "target", "rule"),
    [
        ("hubd.stack.lifecycle", "hubd.cli.context", "only the CLI"),
        ("hubd.config", "hubd.stack", "kernel"),
        ("hubd.status", "hubd.stack", "kernel"),
        ("hubd.cli.tray_cmd", "hubd._tray.state", "only hubd.tray imports hubd._tray"),
        ("hubd._mdns.worker", "hubd._daemon.backoff", "only hubd.daemon"),
        ("hubd._tray.menu", "hubd.stack.accounts", "the tray talks"),
        ("hubd.service.systemd", "hubd.service", "a service backend"),
    ],
)
def test_each_rule_catches_a_break(importer: str, target: str, rule: str) -> None:
    saved = GRAPH[importer]
    GRAPH[importer] = [*saved, Import(target, 1, True)]
    try:
        assert any(rule in v for v in _violations())
    finally:
        GRAPH[importer] = saved
