"""The compatibility matrix: the wheel a user gets, on every Python and dependency range we claim.

For each supported CPython (pyproject's classifiers) and once more at the lowest versions the
package declares, a fresh venv outside the checkout pip-installs the built wheel with the
``serve`` extra, then: ``predict`` a generated WAV, MP3 and M4A (ALAC) with each bundled model (the numbers
must match this checkout's own), ``serve`` answers its page and API, and the ``golden`` tests
run against the installed package. The wheel is built once, from the sdist (``python -m
build``), so a file missing from either shows up here.

Marked ``slow``. The cells are subprocesses, run two at a time for the 2 cores CI has. The
venvs are made and filled by uv (the ``dev`` extra installs it) from one cache shared by the
cells of the session, or by the venv module and pip where uv is missing. A Python that is not
on the machine skips with the reason, unless MUSIC2EMOTION_REQUIRE_ALL_PYTHONS=1 (set by
``.ci/run``) makes it a failure.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from helpers import MAJOR, MINOR, clicks, tone, write, write_m4a
from music2emotion import EmotionModel
from music2emotion.modelfile import BUNDLED_MODELS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "music2emotion"
REQUIRE_ALL = os.environ.get("MUSIC2EMOTION_REQUIRE_ALL_PYTHONS") == "1"
EXTRAS = ("serve",)
# predict prints 4 decimals; a last-digit flip from float32 rounding on another platform or
# dependency release is the same number, anything more is a change in what users get
TOLERANCE = 1.5e-4


def supported_pythons() -> list[str]:
    classifiers = metadata.metadata("music2emotion").get_all("Classifier") or []
    found = [m.group(1) for c in classifiers if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))]
    return sorted(found, key=Version)


def pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    try:
        return Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return Path.home() / ".pyenv"


def find_python(version: str) -> str | None:
    """An interpreter that really runs CPython ``version``: pyenv's newest patch release, else
    ``pythonX.Y`` on PATH (a pyenv shim for a version not selected refuses, and is passed over)."""
    installed = glob.glob(str(pyenv_root() / "versions" / f"{version}.*" / "bin" / "python"))
    installed.sort(key=lambda p: Version(Path(p).parents[1].name.split("-")[0]), reverse=True)
    for candidate in [*installed, shutil.which(f"python{version}")]:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def require_python(version: str) -> str:
    python = find_python(version)
    if python is None:
        reason = (f"Python {version} not found: no {pyenv_root()}/versions/{version}.*/bin/python "
                  f"and no working python{version} on PATH")
        if REQUIRE_ALL:
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def run(cmd: list, timeout: float = 600, **kw) -> str:
    """Run ``cmd``; its output on success, an assertion naming it and its output's tail on failure."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        out = (done.stdout + done.stderr)[-4000:]
        raise AssertionError(f"{' '.join(map(str, cmd[:6]))} ... exited {done.returncode}:\n{out}")
    return done.stdout


def clean_env(work: Path) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # Bytecode of the venv and of the checkout's tests goes to the job's own folder: compiled
    # once per job instead of in every process (scipy and librosa's imports alone compiled
    # for 4 of a 7 s predict), and nothing of another Python lands in the checkout.
    return {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")}


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and the wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, REPO])
    (wheel,), (sdist,) = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    y = tone(MAJOR, 12.0) + clicks(6, 12.0, amp=0.3)
    # the M4A goes through PyAV (at its lower bound in the lowest-versions cell); ALAC, since
    # FFmpeg's AAC decoder moved predictions by 0.0016 between PyAV 18 and 19 (FFmpeg 7 and 8)
    return [write(d / "song.wav", y), write(d / "song.mp3", 0.5 * tone(MINOR, 12.0)),
            write_m4a(d / "song.m4a", 0.5 * tone(MAJOR, 12.0) + clicks(3, 12.0, amp=0.2), 22_050, "alac")]


@pytest.fixture(scope="session")
def reference(clips: list[Path]) -> dict[tuple[str, str], list[float]]:
    """What this checkout predicts for ``clips``: every installed wheel must say the same."""
    out = {}
    for name in BUNDLED_MODELS:
        model = EmotionModel(name, threads=1)
        for clip in clips:
            p = model.predict_file(clip)
            out[name, clip.name] = [p.valence, p.arousal]
    return out


def find_uv() -> str | None:
    """The uv executable: the ``uv`` package's (the ``dev`` extra), else one on PATH, else None."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


UV = find_uv()


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the session's cells: each wheel is fetched once, then linked."""
    return tmp_path_factory.mktemp("uv-cache")


def make_venv(python: str, work: Path, requirements: list, constraints: Path | None, uv_cache: Path) -> Path:
    """A fresh venv in ``work`` on ``python`` with ``requirements`` (and ``constraints``): uv's
    where uv is found (pip took 15-60 s a cell here, resolving and unpacking; uv 2-5 s), else
    the venv module's and its own pip's."""
    venv = work / "venv"
    pins = ["--constraint", constraints] if constraints else []
    # neither quiet: that hides why a resolution failed
    if UV:
        # --python names the interpreter itself: uv never picks or downloads another one
        run([UV, "venv", "--quiet", "--python", python, venv], env=clean_env(work))
        run([UV, "pip", "install", "--python", venv / "bin" / "python", "--cache-dir", uv_cache, *pins,
             *requirements], env=clean_env(work))
    else:
        run([python, "-m", "venv", venv])
        run([venv / "bin" / "python", "-m", "pip", "install", "--progress-bar", "off", "--no-compile",
             "--disable-pip-version-check", *pins, *requirements], env=clean_env(work))
    return venv / "bin" / "python"


def installed_versions(python: Path, names: list[str]) -> dict[str, str]:
    code = ("import json, sys; from importlib.metadata import version; "
            "print(json.dumps({n: version(n) for n in sys.argv[1:]}))")
    return json.loads(run([python, "-c", code, *names]))


def check_predictions(python: Path, clips: list[Path], reference: dict, work: Path) -> None:
    where = run([python, "-c", "import music2emotion; print(music2emotion.__file__)"], cwd=work, env=clean_env(work))
    assert Path(where.strip()).is_relative_to(python.parents[1]), f"imported {where} instead of the wheel"
    for name in BUNDLED_MODELS:
        out = run([python.parent / "music2emotion", "predict", *clips, "--model", name, "--format", "jsonl",
                   "--jobs", "1", "--no-progress"], cwd=work, env=clean_env(work))
        rows = [json.loads(line) for line in out.splitlines()]
        assert [Path(r["path"]).name for r in rows] == [c.name for c in clips]
        for row in rows:
            assert row["error"] == "", row
            want = reference[name, Path(row["path"]).name]
            assert [row["valence"], row["arousal"]] == pytest.approx(want, abs=TOLERANCE), (name, row)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def check_serving(python: Path, work: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([python.parent / "music2emotion", "serve", "--port", str(port), "--model", "fast",
                               "--workers", "1"], cwd=work, env=clean_env(work),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"serve exited {server.returncode}: {server.stdout.read()[-3000:]}"
            try:
                status, body = get(f"{base}/api/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer /api/health within 90 s"
                time.sleep(0.5)
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok"
        assert health["model"]["file"] == BUNDLED_MODELS["fast"]
        status, page = get(f"{base}/")
        assert status == 200 and "<title>music2emotion" in page
        # the page's own files and the offline API docs come from package data too
        for path in ("/static/app.js", "/static/style.css", "/static/favicon.svg", "/docs"):
            assert get(base + path)[0] == 200, path
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_golden_tests(python: Path, work: Path) -> str:
    """The ``golden`` tests of this checkout against the installed package: only the modules
    that use the marker are collected, since the others may import what the wheel lacks."""
    modules = [p for p in sorted((REPO / "tests").glob("test_*.py")) if "mark.golden" in p.read_text()]
    assert modules, "no golden tests found"
    out = run([python, "-m", "pytest", "-q", "-m", "golden", "-p", "no:cacheprovider", *modules],
              cwd=work, env=clean_env(work))
    assert re.search(r"\d+ passed", out), out
    return out


def lowest_declared(extras: tuple[str, ...]) -> dict[str, str]:
    """Each direct requirement (core and ``extras``) at its lower bound: ``{name: version}``."""
    lowest = {}
    for line in metadata.requires("music2emotion") or []:
        req = Requirement(line)
        if req.name == "music2emotion" or (req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras)):
            continue
        bounds = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert len(bounds) == 1, f"{line}: declare one lower bound"
        lowest[req.name] = bounds[0]
    return lowest


def job(version: str, work: Path, dist: dict[str, Path], clips: list[Path], reference: dict, uv_cache: Path,
        lowest: dict[str, str] | None = None) -> str:
    """One cell of the matrix on CPython ``version``; ``lowest`` pins the direct requirements.
    Returns the interpreter, the time each step took and what was installed, for the report."""
    python = require_python(version)
    took: dict[str, float] = {}

    def step(name: str, check: Callable[..., Any], *args: Any) -> Any:
        start = time.monotonic()
        result = check(*args)
        took[name] = time.monotonic() - start
        return result

    constraints = None
    if lowest:
        constraints = work / "lowest.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in lowest.items()))
    try:
        venv_python = step("install", make_venv, python, work, [f"{dist['wheel']}[{','.join(EXTRAS)}]", "pytest"],
                           constraints, uv_cache)
        names = list(lowest or lowest_declared(EXTRAS))
        got = installed_versions(venv_python, names)
        if lowest:
            assert {n: Version(v) for n, v in got.items()} == {n: Version(v) for n, v in lowest.items()}
        step("predict", check_predictions, venv_python, clips, reference, work)
        step("serve", check_serving, venv_python, work)
        step("golden", run_golden_tests, venv_python, work)
        steps = ", ".join(f"{name} {seconds:.0f}" for name, seconds in took.items())
        return (f"{Path(python).parents[1].name} in {sum(took.values()):.0f} s ({steps}; "
                f"{'uv' if UV else 'pip'}): " + ", ".join(f"{n} {v}" for n, v in got.items()))
    finally:
        shutil.rmtree(work / "venv", ignore_errors=True)


@pytest.fixture(scope="session")
def matrix(request, dist, clips, reference, uv_cache, tmp_path_factory) -> Iterator[dict[str, Future]]:
    """The cells this session selected, started at once and run two at a time; each test
    waits for its own."""
    selected = {item.callspec.params.get("version", "lowest") if hasattr(item, "callspec") else "lowest"
                for item in request.session.items if "matrix" in getattr(item, "fixturenames", ())}
    lowest = lowest_declared(EXTRAS)
    # the lower bounds together on the oldest Python, the one they were chosen for
    cells = {name: (version, tmp_path_factory.mktemp(f"matrix-{name}"), lowest if name == "lowest" else None)
             for name, version in [*((v, v) for v in supported_pythons()), ("lowest", supported_pythons()[0])]
             if name in selected}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job, version, work, dist, clips, reference, uv_cache, pins)
                   for name, (version, work, pins) in cells.items()}
        yield futures
        for f in futures.values():
            f.cancel()


@pytest.mark.parametrize("version", supported_pythons())
def test_wheel_works_on_every_supported_python(version, matrix):
    print(matrix[version].result())


def test_lowest_declared_versions_work(matrix):
    """The lower bounds of the core and ``serve`` requirements, installed together."""
    print(matrix["lowest"].result())


def test_wheel_and_sdist_hold_every_package_file(dist):
    package_files = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".tmp"))}
    assert {"music2emotion/server/web/index.html", *(f"music2emotion/models/{f}" for f in BUNDLED_MODELS.values())} <= package_files
    with zipfile.ZipFile(dist["wheel"]) as whl:
        in_wheel = {n for n in whl.namelist() if n.startswith("music2emotion/")}
        assert package_files <= in_wheel, sorted(package_files - in_wheel)
        for f in BUNDLED_MODELS.values():  # the real files, not Git LFS pointers or truncated copies
            assert whl.getinfo(f"music2emotion/models/{f}").file_size == (PACKAGE / "models" / f).stat().st_size
    with tarfile.open(dist["sdist"]) as sdist:
        root = sdist.getnames()[0].split("/")[0]
        in_sdist = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    wanted = {"README.md", "pyproject.toml", *(f"src/{f}" for f in package_files)}
    assert wanted <= in_sdist, (root, sorted(wanted - in_sdist))
