"""One prediction core: the local engine, the Ray engine and the server, fed the same folder
of good and broken files, give the same results (they all reach them through
``music2emotion.prediction.song_prediction``), and both engines write through one writer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("fastapi")
pq = pytest.importorskip("pyarrow.parquet")
httpx = pytest.importorskip("httpx")

from music2emotion.audio import find_audio_files  # noqa: E402
from music2emotion.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow,  # Ray start-up and worker processes
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]
COMPARED = ("valence", "arousal", "duration", "windows", "warning", "error")


def _csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {Path(r["path"]).name: r for r in csv.DictReader(f)}


def _same(a: object, b: object) -> bool:
    if a in (None, "") or b in (None, ""):
        return a in (None, "") and b in (None, "")
    try:
        return abs(float(a) - float(b)) <= 1e-4  # type: ignore[arg-type]
    except ValueError:
        return str(a) == str(b)


def test_local_ray_and_server_give_the_same_results(mixed_folder, tiny_model, ray_instance, served, tmp_path):
    common = ["predict", str(mixed_folder), "--model", str(tiny_model)]
    assert main([*common, "--jobs", "2", "-o", str(tmp_path / "local.csv")]) == 1
    assert main([*common, "--engine", "ray", "-o", str(tmp_path / "ray.csv")]) == 1
    local, ray = _csv(tmp_path / "local.csv"), _csv(tmp_path / "ray.csv")

    files = find_audio_files([mixed_folder])
    url, _ = served  # the server's worker process runs the tiny model too
    r = httpx.post(url + "/api/predict", timeout=120,
                   files=[("files", (f.name, f.read_bytes(), "audio/wav")) for f in files])
    assert r.status_code == 200  # several files: each carries its own status
    served = {res["file"]: res for res in r.json()["results"]}

    assert local.keys() == ray.keys() == served.keys() == {f.name for f in files}
    failed = {name for name, row in local.items() if row["error"]}
    assert failed == {"short.wav", "broken.mp3", "empty.wav"}
    assert "silent" in local["silence.wav"]["warning"]
    for name, row in local.items():
        for col in COMPARED:
            assert _same(ray[name][col], row[col]), (name, col, ray[name][col], row[col])
            assert _same(served[name][col], row[col]), (name, col, served[name][col], row[col])
        assert served[name]["status"] == (422 if name in failed else 200)


def test_both_engines_write_timelines_and_parquet_alike(mixed_folder, tiny_model, ray_instance, tmp_path):
    common = ["predict", str(mixed_folder), "--model", str(tiny_model), "--jobs", "1"]
    for engine in ("local", "ray"):
        assert main([*common, "--engine", engine, "--timeline", "--format", "jsonl",
                     "-o", str(tmp_path / f"{engine}.jsonl")]) == 1
        assert main([*common, "--engine", engine, "-o", str(tmp_path / f"{engine}.parquet")]) == 1
    timelines = []
    for engine in ("local", "ray"):
        with (tmp_path / f"{engine}.jsonl").open(encoding="utf-8") as f:
            rows = {json.loads(line)["path"]: json.loads(line) for line in f}
        timelines.append(rows)
    local, ray = timelines
    assert local.keys() == ray.keys()
    for path, row in local.items():
        assert len(row["timeline"]) == len(ray[path]["timeline"]) == row["windows"]
        for a, b in zip(row["timeline"], ray[path]["timeline"]):
            assert (a["start"], a["end"]) == (b["start"], b["end"])
            assert a["valence"] == pytest.approx(b["valence"], abs=1e-4)
    tables = [pq.read_table(tmp_path / f"{engine}.parquet").to_pylist() for engine in ("local", "ray")]
    assert sorted(r["path"] for r in tables[0]) == sorted(r["path"] for r in tables[1])
    assert not (tmp_path / "local.parquet.partial.jsonl").exists()
