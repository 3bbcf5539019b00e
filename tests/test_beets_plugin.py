"""The beets plugin against real beets: a temporary library, ``beet import -A`` of generated
files, ``beet emotion``, range queries on the float fields, tags written on request,
analysis on import, and tracks that are not music left without values unless asked."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("beets")
pytest.importorskip("mutagen")

from helpers import band, noise, write  # noqa: E402
from test_tags import audio_bytes, decoded, name_song  # noqa: E402

from music2emotion import EmotionModel, predict_file  # noqa: E402
from music2emotion.collection.tags import EmotionTags, model_id, read_tags, write_tags  # noqa: E402

pytestmark = pytest.mark.slow


def _library(tmp_path: Path, **options: str) -> dict[str, str]:
    """A beets config in its own BEETSDIR (nothing of the user's is read or touched); the
    environment to run ``beet`` with."""
    beetsdir = tmp_path / "beets"
    beetsdir.mkdir()
    plugin = "".join(f"    {k}: {v}\n" for k, v in {"model": "fast", "jobs": "2", **options}.items())
    (beetsdir / "config.yaml").write_text(
        f"directory: {tmp_path / 'library'}\nlibrary: {beetsdir / 'library.db'}\n"
        "plugins: music2emotion\nimport:\n    copy: no\n    write: no\n"
        f"music2emotion:\n{plugin}")
    return {**os.environ, "BEETSDIR": str(beetsdir), "HOME": str(tmp_path)}


def beet(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "beets", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout + proc.stderr


def titles(env: dict[str, str], *query: str) -> set[str]:
    return set(beet(env, "ls", "-f", "$title", *query).split())


@pytest.fixture()
def music(tmp_path) -> Path:
    """Three songs tagged earlier by ``music2emotion tag`` (arousal 0.2, 0.6, 0.9) and one
    that never was, all of them what the encoder hears as music."""
    d = tmp_path / "music"
    mid = model_id(EmotionModel("fast"))
    for name, ext, arousal in [("low", ".flac", 0.2), ("mid", ".mp3", 0.6), ("high", ".ogg", 0.9)]:
        path = write(d / f"{name}{ext}", band(3.0, seed=len(name) % 3))
        name_song(path, "Tester", name)
        write_tags(path, EmotionTags(0.5, arousal, mid))
    fresh = write(d / "fresh.wav", band(3.0, seed=1))
    name_song(fresh, "Tester", "fresh")
    return d


def test_beet_emotion_round_trip(tmp_path, music):
    env = _library(tmp_path)
    beet(env, "import", "-A", "-q", str(music))
    assert titles(env) == {"low", "mid", "high", "fresh"}
    assert titles(env, "arousal:0.5..") == set()  # nothing analysed yet

    out = beet(env, "emotion")
    assert "4 items analysed, 0 failed" in out and out.count("from its tags") == 3
    fresh = predict_file(music / "fresh.wav", "fast")
    values = dict(line.split(" ", 1) for line in beet(env, "ls", "-f", "$title $valence $arousal").splitlines())
    assert values["fresh"] == f"{fresh.valence:.4f} {fresh.arousal:.4f}"
    assert values["high"] == "0.5000 0.9000"
    high = {"mid", "high"} | ({"fresh"} if round(fresh.arousal, 4) >= 0.5 else set())
    assert titles(env, "arousal:0.5..") == high
    assert titles(env, "arousal:0.7..1") == {"high"} | ({"fresh"} if round(fresh.arousal, 4) >= 0.7 else set())
    assert titles(env, "arousal:..0.3") == {"low"} | ({"fresh"} if round(fresh.arousal, 4) <= 0.3 else set())
    assert "fast (music2emotion" in beet(env, "ls", "-f", "$emotion_model", "title:low")
    # files were only read: no tags written without write
    assert read_tags(music / "fresh.wav") is None

    assert "0 items analysed" in beet(env, "emotion")  # nothing missing: nothing to do

    before = {p: (decoded(p), None if p.suffix == ".ogg" else audio_bytes(p)) for p in music.iterdir()}
    out = beet(env, "emotion", "-f", "-w", "-j", "1")
    assert "4 items analysed, 0 failed" in out and "from its tags" not in out
    for line in beet(env, "ls", "-f", "$path|$valence|$arousal").splitlines():
        path, valence, arousal = line.split("|")
        stored = read_tags(path)
        assert (f"{stored.valence:.4f}", f"{stored.arousal:.4f}") == (valence, arousal)
        samples, raw = before[Path(path)]
        assert (decoded(Path(path)) == samples).all()
        if raw is not None:
            assert audio_bytes(Path(path)) == raw
    # beets' record of each file's modification time follows our write, so beets does not
    # take it for an edit made outside beets
    with sqlite3.connect(Path(env["BEETSDIR"]) / "library.db") as db:
        for path, mtime in db.execute("SELECT path, mtime FROM items"):
            assert mtime == pytest.approx(os.stat(os.fsdecode(path)).st_mtime)


def test_auto_on_import_with_write(tmp_path, music):
    env = _library(tmp_path, auto="yes", write="yes")
    beet(env, "import", "-A", "-q", str(music))
    values = dict(line.split(" ", 1) for line in beet(env, "ls", "-f", "$title $arousal").splitlines())
    assert set(values) == {"low", "mid", "high", "fresh"} and values["mid"] == "0.6000"
    stored = read_tags(music / "fresh.wav")
    assert stored is not None and f"{stored.arousal:.4f}" == values["fresh"]
    assert titles(env, "arousal:0.5..") >= {"mid", "high"}


def test_bad_model_is_one_line(tmp_path, music):
    env = _library(tmp_path, model="/no/such/model.onnx")
    beet(env, "import", "-A", "-q", str(music))
    proc = subprocess.run([sys.executable, "-m", "beets", "emotion"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode != 0 and "model file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_mood_fields_from_a_model_with_a_mood_head(tmp_path, mood_model, mood_folder):
    import shutil

    d = tmp_path / "moods"
    shutil.copytree(mood_folder, d)
    for path in d.iterdir():
        name_song(path, "Tester", path.stem)
    env = _library(tmp_path, model=str(mood_model), jobs="1")
    beet(env, "import", "-A", "-q", str(d))
    assert "4 items analysed, 0 failed" in beet(env, "emotion", "-w")
    assert titles(env, "p_sad:0.5..") == {"sad"}
    moods = dict(line.split(" ", 1) for line in beet(env, "ls", "-f", "$title $emotion_mood").splitlines())
    assert moods == {m: m for m in ("happy", "angry", "sad", "tender")}
    stored = read_tags(d / "tender.wav")
    assert stored.probabilities is not None and max(stored.probabilities) == stored.probabilities[3]


def test_tracks_that_are_not_music_get_the_warning_and_no_values(tmp_path):
    d = tmp_path / "music"
    for name, y in (("hiss", noise(12.0, amp=0.1)), ("band", band(12.0))):
        name_song(write(d / f"{name}.flac", y), "Tester", name)
    env = _library(tmp_path)
    beet(env, "import", "-A", "-q", str(d))
    out = beet(env, "emotion")
    assert "1 items analysed, 0 failed" in out and "1 items not music" in out
    warnings = dict(line.split("|") for line in beet(env, "ls", "-f", "$title|$emotion_warning").splitlines())
    assert warnings["hiss"].startswith("not music: noise (") and warnings["band"] in ("", "$emotion_warning")
    assert titles(env, "valence:0..1") == {"band"}  # no values: range queries never find it
    assert "0 items analysed" in beet(env, "emotion")  # known not music: not predicted again
    out = beet(env, "emotion", "--include-not-music", "-w")
    assert "1 items analysed, 0 failed" in out and "not music" not in out
    assert titles(env, "valence:0..1") == {"band", "hiss"}
    assert read_tags(d / "hiss.flac").warning == warnings["hiss"]
