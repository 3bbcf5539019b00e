"""The layout shows the architecture: the import graph, walked from the source.

Every import statement of every module counts, also those inside functions (a lazy import
that dodges a cycle is still a cycle). The inference core imports neither torch nor
scikit-learn nor anything built on top of it, nor librosa or numba (JIT kernels cached on
disk); training, the server, the Ray engine and the
command line depend on the core and never the other way; nothing imports in a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import music2emotion

PACKAGE = Path(music2emotion.__file__).parent
NAME = "music2emotion"
# the inference core: what `pip install music2emotion` runs
CORE = {f"{NAME}.{m}" for m in ("_version", "config", "audio", "windows", "dsp", "frontends", "descriptors",
                                "modelfile", "music", "model", "prediction", "engine", "output")} | {NAME} | {
    f"{NAME}.audio.{m}" for m in ("errors", "decoder", "content", "mpeg", "sndfile", "ffmpeg", "stream", "scan")}
# third-party packages of training and the apps, never of the core (pyarrow may be, for
# Parquet output, imported only when asked for)
NOT_IN_CORE = {"torch", "sklearn", "skl2onnx", "onnx", "matplotlib", "fastapi", "starlette",
               "uvicorn", "ray"}
# JIT compilers with an on-disk kernel cache (librosa compiles numba kernels at import): a
# cache corrupted by processes starting at once crashed every later prediction
# (docs/development.md, "No cached JIT kernels"); training and the tests may use librosa
NO_JIT_IN_CORE = {"librosa", "numba"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports, anywhere in its file: this package's modules by full
    name, others by their top-level package."""
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from . import x` names a module when x is one, else something in `base`
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    out = set()
    for mod in found:
        if mod.startswith(NAME):
            out.add(mod)
        else:
            out.add(mod.split(".")[0])
    out.discard(name)
    return out


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_the_walk_sees_the_whole_package():
    assert {f"{NAME}.model", f"{NAME}.training.recipe", f"{NAME}.cli.predict",
            f"{NAME}.server.app", f"{NAME}.ray_engine"} <= set(GRAPH)
    assert f"{NAME}.training.cnn" in GRAPH[f"{NAME}.training.train"]
    assert "torch" in GRAPH[f"{NAME}.training.train"]


def test_no_import_cycles():
    internal = {m: {d for d in deps if d in GRAPH} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(internal[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(internal):
        if m not in state:
            visit(m)


def test_the_core_imports_only_the_core():
    for m in sorted(CORE):
        assert m in GRAPH, m
        inside = {d for d in GRAPH[m] if d.startswith(NAME)}
        assert inside <= CORE, f"{m} imports {sorted(inside - CORE)}, outside the inference core"
        assert not GRAPH[m] & NOT_IN_CORE, f"{m} imports {sorted(GRAPH[m] & NOT_IN_CORE)}"
        assert not GRAPH[m] & NO_JIT_IN_CORE, f"{m} imports {sorted(GRAPH[m] & NO_JIT_IN_CORE)}"


@pytest.mark.parametrize("layer, may_not_import", [
    ("training", ("cli", "server", "ray_engine")),
    ("server", ("cli", "training", "ray_engine")),
    ("ray_engine", ("cli", "training", "server")),
    ("plot", ("cli", "training", "server", "ray_engine")),
    ("collection", ("cli", "training", "server", "ray_engine")),
])
def test_dependencies_point_one_way(layer, may_not_import):
    prefix = f"{NAME}.{layer}"
    banned = tuple(f"{NAME}.{b}" for b in may_not_import)
    for m, deps in GRAPH.items():
        if m == prefix or m.startswith(prefix + "."):
            wrong = sorted(d for d in deps if d.startswith(banned))
            assert not wrong, f"{m} imports {wrong}"


@pytest.mark.slow
def test_each_module_imports_alone():
    """In a fresh interpreter each, so that no module works only because another one ran first."""
    optional = {"ray_engine": "ray", "server": "fastapi", "training": "torch", "collection.tags": "mutagen"}
    names = []
    for m in sorted(GRAPH):
        extra = next((pkg for part, pkg in optional.items() if f".{part}" in m), None)
        if m.endswith(".__main__") or (extra and not _installed(extra)):
            continue  # __main__ runs the command when imported
        names.append(m)
    failed = []
    for i in range(0, len(names), 4):  # a few at a time: each may load torch
        procs = [(m, subprocess.Popen([sys.executable, "-c", f"import {m}"], stderr=subprocess.PIPE,
                                      text=True)) for m in names[i : i + 4]]
        for m, proc in procs:
            _, err = proc.communicate(timeout=300)
            if proc.returncode:
                failed.append(f"{m}: {err.strip().splitlines()[-1]}")
    assert not failed, failed


def test_importing_the_package_loads_no_training_or_app_code():
    code = ("import sys, music2emotion; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{sorted(NOT_IN_CORE)!r} or m.startswith(('music2emotion.training', "
            "'music2emotion.server', 'music2emotion.cli', 'music2emotion.ray_engine')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def _installed(pkg: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(pkg) is not None
