"""Files that fight back: every one gets a row with a clear reason, and the others go on."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import truncated_mp3, write_music

from music2emotion.audio import find_audio_files
from music2emotion.cli import main

OK = ""
ODD_NAME = "a name with spaces – ünïcødé ♪.flac"

# name -> (a pattern of the error it must get, or OK; the warning it must get, or OK)
EXPECTED = {
    "good.mp3": (OK, OK),
    "empty.mp3": ("empty file", OK),
    "text.mp3": ("not a supported audio format", OK),
    "truncated.mp3": (r"^truncated: .* missing\), more than the 25 % a prediction may skip$", OK),
    "truncated.flac": (r"^truncated: .* missing\), more than the 25 % a prediction may skip$", OK),
    "cut-short.wav": (OK, "truncated: 3 s of 3.33 s decoded, the rest is missing"),
    "header-only.wav": ("no audio data", OK),
    "short.wav": ("too short: 0.30 s", OK),
    "silence.wav": (OK, "silent"),
    "nan.wav": ("invalid samples", OK),
    "8k-mono.wav": (OK, OK),
    "96k-6ch.wav": (OK, OK),
    ODD_NAME: (OK, OK),
    "fifo.mp3": ("not a regular file", OK),
    "loop.mp3": ("symbolic link loop", OK),
    "dangling.mp3": ("broken symbolic link", OK),
}


@pytest.fixture(scope="module")
def nasty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("nasty")
    write_music(d / "good.mp3", 3.0)
    (d / "empty.mp3").write_bytes(b"")
    (d / "text.mp3").write_text("this is a shopping list, not a song\n" * 40)
    truncated_mp3(d / "truncated.mp3")
    flac = write_music(d / "full.flac", 4.0).read_bytes()
    (d / "full.flac").unlink()
    (d / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    wav = write_music(d / "full.wav", 10 / 3).read_bytes()  # a download stopped at 90 %: 3.0 s left
    (d / "full.wav").unlink()
    (d / "cut-short.wav").write_bytes(wav[: len(wav) * 9 // 10])
    sf.write(d / "header-only.wav", np.zeros((0, 1), np.float32), 22050)
    write_music(d / "short.wav", 0.3)
    sf.write(d / "silence.wav", np.zeros(3 * 22050, np.float32), 22050)
    y = write_music(d / "nan-source.wav", 3.0)
    samples, sr = sf.read(y, dtype="float32")
    samples[1000] = np.nan
    sf.write(d / "nan.wav", samples, sr, subtype="FLOAT")
    y.unlink()
    write_music(d / "8k-mono.wav", 3.0, sr=8000)
    write_music(d / "96k-6ch.wav", 3.0, sr=96000, channels=6)
    write_music(d / ODD_NAME, 3.0)
    os.mkfifo(d / "fifo.mp3")  # unreadable as audio: opening it would block forever
    (d / "loop.mp3").symlink_to("loop.mp3")
    (d / "dangling.mp3").symlink_to("nowhere.mp3")
    (d / "sub").mkdir()
    (d / "sub" / "up").symlink_to("..")  # a folder loop: the walk must still end
    (d / "folder.mp3").mkdir()  # a folder with an audio extension: walked, not read
    return d


def test_the_folder_walk_finds_each_file_once(nasty):
    found = find_audio_files([nasty])
    names = [p.name for p in found]
    assert sorted(names) == sorted(EXPECTED)  # the loop adds no second copy


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gets_its_reason(model, nasty, name):
    error, warning = EXPECTED[name]
    pred = model.predict_file(nasty / name)
    row = pred.row()
    if error:
        assert re.search(error, pred.error), pred.error
        assert "\n" not in pred.error and row["valence"] is None
    else:
        assert pred.ok, pred.error
        assert 0 <= row["valence"] <= 1 and 0 <= row["arousal"] <= 1
        assert pred.duration == pytest.approx(3.0, abs=0.05)
    assert (warning in pred.warning) if warning else pred.warning == ""


def test_a_folder_named_like_audio_is_refused(model, nasty):
    assert model.predict_file(nasty / "folder.mp3").error == "is a directory, not an audio file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission(model, tmp_path):
    path = write_music(tmp_path / "locked.wav", 2.0)
    path.chmod(0)
    assert model.predict_file(path).error == "permission denied"


@pytest.mark.slow
def test_a_mixed_folder_gives_a_row_for_every_file(tiny_model, nasty, tmp_path, capfd):
    out = tmp_path / "out.csv"
    code = main(["predict", str(nasty), "--model", str(tiny_model), "--jobs", "2", "-o", str(out)])
    err = capfd.readouterr().err
    assert code == 1
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_name = {Path(r["path"]).name: r for r in rows}
    assert len(rows) == len(by_name) == len(EXPECTED)
    for name, (error, warning) in EXPECTED.items():
        row = by_name[name]
        assert re.search(error, row["error"]) if error else row["error"] == ""
        assert warning in row["warning"] if warning else row["warning"] == ""
        assert (row["valence"] == "") == bool(error)
    failures = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(failures) == sum(1 for e, _ in EXPECTED.values() if e)
    assert "Traceback" not in err and "Xing" not in err


def test_exit_status(tiny_model, nasty, tmp_path, capfd):
    good = [str(nasty / "good.mp3"), str(nasty / ODD_NAME)]
    assert main(["predict", *good, "--model", str(tiny_model), "--jobs", "1"]) == 0
    assert ODD_NAME in capfd.readouterr().out
    assert main(["predict", *good, str(nasty / "empty.mp3"), "--model", str(tiny_model),
                 "--jobs", "1"]) == 1
    capfd.readouterr()
    (tmp_path / "no-audio").mkdir()
    usage = [
        [*good, "--hop", "0"],
        [*good, "--window", "0.1"],
        [*good, "--jobs", "0"],
        [*good, "--resume"],
        [*good, "--model", str(tmp_path / "missing.onnx")],
        [str(tmp_path / "no-audio")],
    ]
    for args in usage:
        if "--model" not in args:
            args = [*args, "--model", str(tiny_model)]
        assert main(["predict", *args]) == 2, args
        err = capfd.readouterr().err
        assert err.startswith("music2emotion predict: error: ") and err.count("\n") == 1
