"""The Ray engine (``predict --engine ray``) against the local engine, on conftest's local Ray
instance with 2 CPUs shared by the whole session (starting Ray costs 10-20 s)."""

from __future__ import annotations

import csv
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")

from music2emotion import (  # noqa: E402
    EmotionModel,  # noqa: E402
    cli,
    ray_engine,
)
from music2emotion.config import INTERVAL_COLUMNS, MOOD_COLUMNS  # noqa: E402
from music2emotion.output import COLUMNS, TIMELINE_COLUMNS, journal_path  # noqa: E402
from music2emotion.prediction import MOOD_FIELDS  # noqa: E402

FLOAT_COLUMNS = ("valence", "arousal", "duration", "start", "end", *MOOD_COLUMNS, *INTERVAL_COLUMNS)
# Ray Data's execution touches its own deprecated settings; nothing this project sets
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def model_path(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def songs(mixed_folder: Path) -> Path:
    return mixed_folder


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a file appears twice"
    return by_path


@pytest.fixture(scope="module")
def local_rows(songs: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("local") / "local.csv"
    rc = cli.main(["predict", str(songs), "--model", str(model_path), "--jobs", "1", "-o", str(out)])
    assert rc == 1  # the bad files
    return read_csv(out)


def assert_same(row: dict[str, object], ref: dict[str, str]) -> None:
    """Equal up to float tolerance (values are written rounded to 4 decimals, so a last
    digit may differ when two sums of the same numbers round differently)."""
    for col in COLUMNS:
        a, b = row[col], ref[col]
        a = "" if a is None or (isinstance(a, float) and math.isnan(a)) else a
        if col in FLOAT_COLUMNS and b != "":
            assert float(a) == pytest.approx(float(b), abs=2e-4), (ref["path"], col)
        else:
            assert str(a) == b, (ref["path"], col)


@pytest.mark.slow
def test_ray_engine_carries_moods_and_intervals(mood_model, mood_folder, ray_instance, tmp_path):
    """A model with a mood head: the same probabilities and intervals, per song and per
    window, as the local engine."""
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.csv"
        assert cli.main(["predict", str(mood_folder), "--model", str(mood_model), "--engine", engine,
                         "--jobs", "1", "--timeline", "-o", str(out)]) == 0
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
        outputs[engine] = {(r["path"], r["kind"], r["start"]): r for r in rows}
    assert outputs["ray"].keys() == outputs["local"].keys() and len(outputs["ray"]) == 4 * 4
    for key, ref in outputs["local"].items():
        row = outputs["ray"][key]
        assert ref["p_sad"] != "" and row["mood"] == ref["mood"]
        for col in TIMELINE_COLUMNS:
            if col in FLOAT_COLUMNS and ref[col] != "":
                assert float(row[col]) == pytest.approx(float(ref[col]), abs=2e-4), (key, col)


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_rows(songs, model_path, local_rows, ray_instance,
                                                 tmp_path, capfd):
    out = tmp_path / "ray.csv"
    rc = cli.main(["predict", str(songs), "--model", str(model_path), "--engine", "ray",
                   "-o", str(out)])
    assert rc == 1
    rows = read_csv(out)
    assert rows.keys() == local_rows.keys()
    for path, ref in local_rows.items():
        assert_same(rows[path], ref)
    # the comparison means something: real values, real errors, real differences
    good = [r for r in rows.values() if not r["error"]]
    assert len(good) == 8 and len({r["valence"] for r in good}) > 1
    assert {int(r["windows"]) for r in good} >= {1, 2, 4}
    assert "silent" in rows[str(songs / "silence.wav")]["warning"]
    for bad in ("short.wav", "broken.mp3", "empty.wav"):
        assert rows[str(songs / bad)]["error"]
    captured = capfd.readouterr()
    assert captured.out == ""
    # the local engine's lines: one per failed file, one per warning, and the count
    lines = captured.err.splitlines()
    errors = [f"error: {p}: {r['error']}" for p, r in rows.items() if r["error"]]
    warnings = [f"warning: {p}: {r['warning']}" for p, r in rows.items() if r["warning"]]
    assert sorted(lines) == sorted([*errors, *warnings, f"3 of {len(rows)} files failed"])


@pytest.mark.slow
def test_resume_keeps_finished_rows_and_does_the_rest(songs, model_path, local_rows,
                                                      ray_instance, tmp_path, capfd):
    out = tmp_path / "ray.csv"
    paths = sorted(local_rows)
    kept = paths[:3]
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for p in kept:
            # a value no model computes: had it been recomputed, it would be gone
            w.writerow({**local_rows[p], "valence": "0.123"})
        f.write(paths[3] + ",0.5")  # the half-written row of a killed run
    rc = cli.main(["predict", str(songs), "--model", str(model_path), "--engine", "ray",
                   "--resume", "-o", str(out)])
    assert rc == 1
    rows = read_csv(out)  # also checks that no file appears twice
    assert rows.keys() == local_rows.keys()
    for p in kept:
        assert rows[p]["valence"] == "0.123"
    for p in paths[3:]:
        assert_same(rows[p], local_rows[p])
    assert f"resuming: 3 of {len(paths)} files already in {out}" in capfd.readouterr().err


@pytest.mark.slow
def test_object_storage_paths_in_parquet_out(songs, model_path, local_rows, ray_instance,
                                             tmp_path):
    """``file://`` goes through the same pyarrow filesystem layer as ``s3://``; the Parquet
    file is finished from a journal that a killed run left behind."""
    out = tmp_path / "rows.parquet"
    uri = songs.as_uri()
    earlier = str(songs.as_uri()) + "/t0.wav"
    journal = journal_path(out)
    # a JSON Lines row as the writer makes it: the empty columns as null, not the CSV's ""
    journal.write_text(json.dumps({**local_rows[str(songs / "t0.wav")], **dict.fromkeys(MOOD_FIELDS),
                                   "path": earlier, "valence": 0.123, "arousal": 0.5, "duration": 1.3,
                                   "windows": 1}) + "\n" + '{"path": "cut', encoding="utf-8")
    rc = cli.main(["predict", uri, "--model", str(model_path), "--engine", "ray", "--resume",
                   "-o", str(out)])
    assert rc == 1
    assert not journal.exists()
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    rows = table.to_pylist()
    assert len({r["path"] for r in rows}) == len(rows) == len(local_rows)
    by_local = {str(songs / r["path"][len(uri) + 1:]): r for r in rows}
    assert by_local.keys() == local_rows.keys()
    assert by_local[str(songs / "t0.wav")]["valence"] == 0.123
    for path, ref in local_rows.items():
        if not path.endswith("t0.wav"):
            assert_same({**by_local[path], "path": path}, ref)


# --- without Ray running -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "ray"], "needs --output"),
        (["--engine", "ray", "-o", "x.parquet", "--timeline"], "timeline cannot be written to Parquet"),
        (["--engine", "ray", "-o", "x.parquet", "--format", "csv"], "a Parquet file name for csv rows"),
        (["--ray-address", "auto", "-o", "x.csv"], "--ray-address is for --engine ray"),
        (["--engine", "ray", "-o", "x.csv", "--ray-address", "ray://head:10001"], "Ray Client"),
        (["--engine", "ray", "-o", "x.csv", "--ray-address", "127.0.0.1:1"], "cannot reach"),
    ],
)
def test_usage_errors(songs, model_path, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["predict", str(songs), "--model", str(model_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1


def test_file_rows_stream_windows_then_a_summary(songs, model_path):
    model = EmotionModel(model_path)
    batches = list(ray_engine._file_rows(str(songs / "t4.wav"), model.kind, model.settings, None, 2))
    rows = {k: sum((b[k] for b in batches), []) for k in batches[0]}
    n = len(rows["index"]) - 1
    assert [len(b["index"]) for b in batches] == [2, 2, 1]  # 4 windows by 2, then the summary
    assert rows["index"] == [*range(n), -1] and rows["windows"][-1] == n == 4
    assert rows["end"][n - 1] == pytest.approx(7.25, abs=1e-3)  # the last window is end-aligned
    x = pickle.loads(rows["features"][0])["input"]
    assert x.shape == (1, 64, model.settings.n_frames) and np.isfinite(x).all()
    assert rows["features"][-1] == b""

    broken = list(ray_engine._file_rows(str(songs / "broken.mp3"), model.kind, model.settings, None, 2))
    assert len(broken) == 1 and broken[0]["index"] == [-1] and broken[0]["error"][0]


def _batch(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_gatherer_waits_for_every_window_and_counts_each_once():
    def window(i, v):
        return {"path": "a", "index": i, "start": 2.0 * i, "end": 2.0 * i + 2, "windows": 0,
                "duration": np.nan, "silent": False, "damage": "", "error": "", "output:0": v, "output:1": 1 - v}

    summary = {**window(-1, np.nan), "windows": 3, "duration": 6.0}
    g = ray_engine._Gatherer()
    # the summary may overtake windows that went to another actor; a retried task repeats one
    assert g.add(_batch([window(0, 0.2), summary])) == []
    assert g.add(_batch([window(0, 0.2), window(1, 0.4)])) == []
    [pred] = g.add(_batch([window(2, 0.6)]))
    assert (pred.path, pred.windows, pred.duration) == ("a", 3, 6.0)
    assert pred.valence == pytest.approx(0.4) and pred.arousal == pytest.approx(0.6)
    assert g.add(_batch([window(2, 0.9)])) == []  # a late duplicate of a finished file

    failed = {**summary, "path": "b", "windows": 0, "error": "decoding failed after 1.0 s: x"}
    [bad] = g.add(_batch([{**window(0, 0.5), "path": "b"}, failed]))
    assert bad.error == failed["error"] and bad.valence is None and bad.windows == 0


def test_cluster_yaml_of_the_docs_is_a_valid_ray_cluster_config():
    """``ray up docs/ray-cluster.yaml`` checks the file against this schema first."""
    from importlib import resources

    import jsonschema
    import yaml

    schema = json.loads((resources.files("ray.autoscaler") / "ray-schema.json").read_text())
    config = yaml.safe_load((Path(__file__).parents[1] / "docs" / "ray-cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    assert "music2emotion[distributed]" in " ".join(config["setup_commands"])


def test_uri_detection():
    assert ray_engine.is_uri("s3://bucket/a.mp3") and ray_engine.is_uri("gs://b/x")
    assert ray_engine.is_uri("file:///tmp/a.wav")
    assert not ray_engine.is_uri("/music/a.mp3") and not ray_engine.is_uri(r"C:\music\a.mp3")
    assert not ray_engine.is_uri("odd name: ://.wav")


@pytest.mark.parametrize("options", [{"window_seconds": 0.1}, {"hop_seconds": 0}, {"batch_size": 0}])
def test_the_local_engines_option_checks_before_anything_runs(model, options):
    from music2emotion.windows import OptionError

    with pytest.raises(OptionError):
        ray_engine.predict(["a.wav"], model=model, **options)  # no Ray needed to refuse
