"""The command line: predict end to end (with a broken file among good ones), export, test.py."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_music

from music2emotion.prediction import MOOD_FIELDS
from music2emotion.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_predict_folder_to_csv_with_a_broken_file(tmp_path, audio_dir, tiny_model, capsys):
    (audio_dir / "broken.mp3").write_text("definitely not an mp3")
    out = tmp_path / "out.csv"
    code = main(["predict", str(audio_dir), "-o", str(out), "--model", str(tiny_model), "--jobs", "1"])
    assert code == 1  # some files failed
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert set(rows) == {"a.wav", "b.mp3", "c.flac", "broken.mp3"}
    assert {"path", "valence", "arousal", "error"} <= set(next(iter(rows.values())))
    for name in ("a.wav", "b.mp3", "c.flac"):
        assert rows[name]["error"] == ""
        assert 0 <= float(rows[name]["valence"]) <= 1 and 0 <= float(rows[name]["arousal"]) <= 1
    assert "not a supported audio format" in rows["broken.mp3"]["error"]
    assert rows["broken.mp3"]["valence"] == ""
    err = capsys.readouterr().err
    assert "broken.mp3" in err and "Traceback" not in err


def test_predict_prints_a_table_and_exits_zero(audio_dir, tiny_model, capsys):
    code = main(["predict", str(audio_dir / "a.wav"), "--model", str(tiny_model)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["path", "valence", "arousal", "error"]
    assert out[1].startswith(str(audio_dir / "a.wav"))


def test_the_table_has_a_warning_column_apart_from_the_error(tiny_model, tmp_path, capsys):
    import numpy as np
    from helpers import write

    song = write_music(tmp_path / "song.wav", 3.0)
    silent = write(tmp_path / "silent.wav", np.zeros(3 * 22_050, np.float32))
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    code = main(["predict", str(song), str(silent), str(bad), "--model", str(tiny_model), "--jobs", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    header = out[0].split()
    assert header == ["path", "valence", "arousal", "warning", "error"]
    warning_at, error_at = out[0].index("warning"), out[0].index("error")
    rows = {Path(line.split()[0]).name: line for line in out[1:]}
    assert rows["silent.wav"][warning_at:].startswith("silent: ")
    assert rows["silent.wav"][error_at:].strip() == ""
    assert rows["bad.mp3"][warning_at:error_at].strip() == ""
    assert rows["bad.mp3"][error_at:].startswith("not a supported audio format")
    assert rows["song.wav"][warning_at:].strip() == ""


def test_predict_deam_scale(audio_dir, tiny_model, tmp_path):
    unit, deam = tmp_path / "u.csv", tmp_path / "d.csv"
    main(["predict", str(audio_dir / "a.wav"), "-o", str(unit), "--model", str(tiny_model)])
    main(["predict", str(audio_dir / "a.wav"), "-o", str(deam), "--model", str(tiny_model), "--scale", "deam"])
    u, d = _rows(unit)[0], _rows(deam)[0]
    assert float(d["valence"]) == pytest.approx(1 + 8 * float(u["valence"]), abs=1e-3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{empty}"], "no audio files found"),
        (["predict", "{audio}", "--model", "/nonexistent.onnx"], "model file not found"),
        (["predict", "{audio}", "--resume"], "--resume needs --output"),
        (["export", "/nonexistent.pt", "-o", "x.onnx"], "checkpoint not found"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, audio_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main([a.replace("{audio}", str(audio_dir)).replace("{empty}", str(tmp_path / "empty")) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_export_command_and_seed_script(tmp_path, audio_dir, trained_run):
    torch = pytest.importorskip("torch")
    from music2emotion.training.export import (
        load_checkpoint,
        max_abs_difference,
        model_from_checkpoint,
    )
    from music2emotion.training.train import BEST

    out, _ = trained_run
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(out / BEST), "-o", str(onnx_path)]) == 0
    model, settings = model_from_checkpoint(load_checkpoint(out / BEST))
    x = torch.randn(2, 1, 64, settings.n_frames).numpy()
    assert max_abs_difference(model, onnx_path, x) < 1e-4

    # the seed's test.py runs the same prediction through ONNX
    proc = subprocess.run([sys.executable, str(ROOT / "test.py"), "--model", str(onnx_path),
                           str(audio_dir / "a.wav"), str(audio_dir / "b.mp3")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and "a.wav" in lines[1] and "b.mp3" in lines[2]


@pytest.mark.slow
def test_the_seed_script_runs_the_bundled_seed_model(audio_dir):
    from music2emotion import predict_file

    proc = subprocess.run([sys.executable, str(ROOT / "test.py"), str(audio_dir / "a.wav")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    values = [float(v) for v in proc.stdout.splitlines()[1].split()[1:3]]
    seed = predict_file(audio_dir / "a.wav", "seed")
    assert values == pytest.approx([seed.valence, seed.arousal], abs=1e-4)


def test_output_formats_on_stdout(tiny_model, tmp_path, capfd):
    songs = [write_music(tmp_path / "b.wav", 5.0), write_music(tmp_path / "a.wav", 3.0, seed=1)]
    base = ["predict", *map(str, songs), "--model", str(tiny_model), "--jobs", "1"]
    assert main([*base, "--timeline", "--format", "jsonl", "--scale", "deam"]) == 0
    objs = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [Path(o["path"]).name for o in objs] == ["b.wav", "a.wav"]  # input order
    assert [len(o["timeline"]) for o in objs] == [o["windows"] for o in objs] == [3, 2]
    assert all(1 <= s["valence"] <= 9 and set(s) == {"start", "end", "valence", "arousal", *MOOD_FIELDS}
               for o in objs for s in o["timeline"])
    assert main([*base, "--timeline"]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [r["kind"] for r in rows] == ["window"] * 3 + ["song"] + ["window"] * 2 + ["song"]
    assert all(0 <= float(r["valence"]) <= 1 for r in rows)


def test_workers_that_keep_crashing_are_one_line_and_a_failing_status(tmp_path, monkeypatch, capsys):
    import signal

    from music2emotion import engine

    def crashing(paths, **options):
        raise engine.WorkersKeepDying(engine.keeps_dying_message(signal.SIGSEGV))
        yield  # a generator, as the engine's results are

    monkeypatch.setattr(engine, "predict_files", crashing)
    files = [str(write_music(tmp_path / f"{i}.wav", 1.0, seed=i)) for i in range(3)]
    code = main(["predict", *files, "--jobs", "2", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "SIGSEGV" in err[0] and "Traceback" not in err[0]
