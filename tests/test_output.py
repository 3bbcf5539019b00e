"""Nothing lost, and resumable: a killed run keeps its finished rows, --resume does the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import alive, write_music

from music2emotion import EmotionModel, Prediction, Segment
from music2emotion.cli import main
from music2emotion.output import RowWriter, open_output, read_output

N_FILES = 20


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _song_rows(path: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(None not in r and None not in r.values() for r in rows), "ragged CSV rows"
    return [r for r in rows if r["kind"] == "song"], rows


@pytest.mark.slow
def test_kill_midway_then_resume(tiny_model, tmp_path):
    folder = tmp_path / "songs"
    for i in range(N_FILES):
        write_music(folder / f"song {i:02d}.wav", 4.0, seed=i)
    out = tmp_path / "out.csv"
    # a short hop makes each file take a while, so the kill lands midway
    cmd = [sys.executable, "-m", "music2emotion.cli", "predict", str(folder), "-o", str(out),
           "--model", str(tiny_model), "--jobs", "2", "--timeline", "--hop", "0.25",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b",song,") >= 3:
                break
            time.sleep(0.02)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    killed_with = out.read_bytes().count(b",song,")
    assert 3 <= killed_with < N_FILES, "the kill should land midway"
    # the killed run's workers do not linger
    for _ in range(100):
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)

    songs, _ = _song_rows(out)
    assert len(songs) >= killed_with - 1  # the file is valid as it stands

    # one process is enough to finish (and quicker to start than two workers)
    resume = [*cmd[:cmd.index("--jobs")], "--jobs", "1", *cmd[cmd.index("--jobs") + 2:], "--resume"]
    done = subprocess.run(resume, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(songs)} of {N_FILES} files already" in done.stderr
    songs, rows = _song_rows(out)
    counts = Counter(r["path"] for r in songs)
    assert sorted(counts) == sorted(str(p) for p in folder.iterdir())
    assert set(counts.values()) == {1}
    # each file's window rows come right before its song row, once, and match its count
    windows = Counter(r["path"] for r in rows if r["kind"] == "window")
    assert all(windows[r["path"]] == int(r["windows"]) == 9 for r in songs)
    # and the values are what a clean run gives
    first = EmotionModel(tiny_model, threads=1).predict_file(folder / "song 00.wav", hop_seconds=0.25)
    row = next(r for r in songs if r["path"].endswith("song 00.wav"))
    assert float(row["valence"]) == pytest.approx(first.valence, abs=1e-4)


def _pred(path: str, windows: int = 2) -> Prediction:
    segs = [Segment(i * 2.0, i * 2.0 + 2.0, 0.25, 0.75) for i in range(windows)]
    return Prediction(path, valence=0.25, arousal=0.75, duration=2.0 * windows,
                      windows=windows, timeline=segs)


def _written(path: Path, fmt: str, timeline: bool, preds: list[Prediction]) -> bytes:
    stream, header = open_output(path, resume=False)
    with stream:
        w = RowWriter(stream, fmt, timeline=timeline, header=header)
        for p in preds:
            w.write(p)
    return path.read_bytes()


def test_csv_timeline_repair_drops_half_written_file(tmp_path):
    out = tmp_path / "out.csv"
    good = _written(out, "csv", True, [_pred("a.wav"), _pred('b, "odd"\nname.wav')])
    # a killed run: c's window rows made it, its song row did not, and a line was cut
    with out.open("a", encoding="utf-8", newline="") as f:
        f.write("c.wav,window,0.0,2.0,0.25,0.75,,,,\r\nc.wav,window,2.0,4.0,0.2")
    state = read_output(out)
    assert state.done == {"a.wav", 'b, "odd"\nname.wav'}
    assert out.read_bytes() == good and state.repaired_bytes > 0
    # appending after the repair gives a file that parses with one song row per file
    stream, header = open_output(out, resume=True)
    with stream:
        RowWriter(stream, "csv", timeline=True, header=header).write(_pred("c.wav"))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert Counter(r["path"] for r in rows if r["kind"] == "song") == Counter(
        {"a.wav": 1, 'b, "odd"\nname.wav': 1, "c.wav": 1})
    assert len(rows) == 9


def test_csv_repair_drops_a_cut_line_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out.csv"
    good = _written(out, "csv", False, [_pred("a.wav"), _pred("b.wav")])
    out.write_bytes(good + b"c.wav,0.1")
    assert read_output(out).done == {"a.wav", "b.wav"}
    assert out.read_bytes() == good
    # a cut inside a quoted field is cut off too
    out.write_bytes(good + b'"d, still open')
    assert read_output(out).done == {"a.wav", "b.wav"} and out.read_bytes() == good


def test_jsonl_repair(tmp_path):
    out = tmp_path / "out.jsonl"
    good = _written(out, "jsonl", True, [_pred("a.wav"), _pred("b.wav", windows=3)])
    assert len(json.loads(good.splitlines()[1])["timeline"]) == 3
    out.write_bytes(good + b'{"path": "c.wav", "vale')
    state = read_output(out, keep_rows=True)
    assert state.done == {"a.wav", "b.wav"} and out.read_bytes() == good
    assert state.rows[0]["valence"] == 0.25


def test_resume_refuses_other_columns(tiny_model, tmp_path, capfd):
    out = tmp_path / "out.csv"
    before = _written(out, "csv", False, [_pred("a.wav")])
    song = write_music(tmp_path / "x.wav", 2.5)
    code = main(["predict", str(song), "--model", str(tiny_model), "-o", str(out),
                 "--resume", "--timeline", "--jobs", "1"])
    assert code == 2
    assert "differ from this run's" in capfd.readouterr().err
    assert out.read_bytes() == before


def test_names_that_are_not_utf8_round_trip(tiny_model, tmp_path, capfd):
    folder = tmp_path / "odd"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9 \xff.wav")
    write_music(os.fsdecode(raw), 2.5)
    out = tmp_path / "out.csv"
    args = ["predict", str(folder), "--model", str(tiny_model), "-o", str(out), "--jobs", "1"]
    assert main(args) == 0
    assert raw in out.read_bytes()  # the name's own bytes, not a mangled copy
    assert main([*args, "--resume"]) == 0
    assert "1 of 1 files already" in capfd.readouterr().err
    assert out.read_bytes().count(b"\n") == 2


def test_json_lines_write_empty_text_as_empty_strings_and_missing_values_as_null():
    """As docs/usage.md says: ``warning`` and ``error`` are "" when there is none, a failed
    row has ``windows`` 0, every other key without a value is null."""
    from music2emotion.output import COLUMNS

    buf = io.StringIO()
    writer = RowWriter(buf, "jsonl")
    writer.write(Prediction("bad.mp3", error="empty file (0 bytes)"))
    writer.write(Prediction("good.wav", 0.5, 0.25, duration=3.0, windows=1))
    failed, good = (json.loads(line) for line in buf.getvalue().splitlines())
    assert list(failed) == list(good) == COLUMNS
    assert failed["warning"] == "" and failed["error"] == "empty file (0 bytes)" and failed["windows"] == 0
    assert all(failed[k] is None for k in COLUMNS if k not in ("path", "windows", "warning", "error"))
    # a model without mood words or intervals: those keys are null, the text ones empty
    assert good["warning"] == good["error"] == "" and good["valence"] == 0.5
    assert good["mood"] is None and good["p_sad"] is None and good["valence_low"] is None
