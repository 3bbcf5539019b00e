"""Predicting compiles no JIT kernel and writes no kernel cache, so processes that start at
once cannot corrupt one (librosa's numba kernels, cached in its ``__pycache__``, once did, and
every later prediction in that environment segfaulted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import music, write

from music2emotion.modelfile import BUNDLED_MODELS

PREDICT_EACH = """
import json, sys
import music2emotion
out = {}
for name in sys.argv[2:]:
    p = music2emotion.predict_file(sys.argv[1], model=name)
    out[name] = [p.valence, p.arousal, p.error]
out["loaded"] = sorted(m for m in ("numba", "librosa") if m in sys.modules)
print(json.dumps(out))
"""


def _env(cache: Path) -> dict[str, str]:
    # NUMBA_CACHE_DIR takes every cache numba would write, wherever the package lives
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("cold") / "song.wav", music(12.0)[:, 0])


def test_predicting_loads_no_jit_and_writes_no_kernel_cache(song, tmp_path):
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    out = subprocess.run([sys.executable, "-c", PREDICT_EACH, str(song), *BUNDLED_MODELS], env=_env(cache),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got.pop("loaded") == []
    for name, (valence, arousal, error) in got.items():
        assert error == "" and 0 <= valence <= 1 and 0 <= arousal <= 1, name
    assert list(cache.rglob("*")) == []


@pytest.mark.slow
def test_processes_starting_at_once_all_predict(song, tmp_path):
    """Rounds of 4 processes on one fresh cache dir at once, then one more on the same dir."""
    code = ("import sys, math, music2emotion; p = music2emotion.predict_file(sys.argv[1], model='fast'); "
            "assert not p.error and math.isfinite(p.valence) and math.isfinite(p.arousal), p; print(p.valence)")
    for round_ in range(3):
        cache = tmp_path / f"cache-{round_}"
        cache.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", code, str(song)], env=_env(cache),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        after = subprocess.run([sys.executable, "-c", code, str(song)], env=_env(cache),
                               capture_output=True, text=True, timeout=300)
        for rc, out, err in [*results, (after.returncode, after.stdout, after.stderr)]:
            assert rc == 0, f"round {round_}: exit {rc}: {err[-2000:]}"
            assert float(out) == float(results[0][1])
