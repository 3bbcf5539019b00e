"""Draw the pictures of docs/usage.md from real clips (the repository ships no music).

    python docs/make_pictures.py --deam DEAM_FOLDER --4q 4Q_FOLDER [--model accurate] [--out docs]

``timeline.png``: ``music2emotion plot`` on a medley of five DEAM clips. DEAM_FOLDER holds
``audio/<song_id>.mp3`` and ``annotations/*.csv`` (DEAM's own files). The five clips are
picked by their ratings alone, the clip nearest each of five points of DEAM's 1-9 plane
(sad, calm, happy, tense, neutral; ties to the lowest song id), put back to back and
predicted with windows every 2.5 s; their ratings are drawn as dotted steps.

``plane.png``: ``music2emotion predict --plot`` on a folder of 4Q clips named "Artist -
Title" as a music library names its files: the first clips of each labelled quadrant, by song
id. 4Q_FOLDER holds ``audio/<song_id>.mp3`` and ``labels.csv``.

The bundled models were trained on DEAM and 4Q, these clips included: the pictures show what
the commands draw, not how well the model hears unseen music (MODEL_CARD.md has that).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from music2emotion import EmotionModel, Segment
from music2emotion.audio import load_audio
from music2emotion.config import to_unit
from music2emotion.cli import main as cli
from music2emotion.plot import plot_timeline

# (name, valence, arousal) on DEAM's 1-9 scale, in the medley's order
TARGETS = [("sad", 2.5, 2.5), ("calm", 6.5, 3.0), ("happy", 7.5, 7.5), ("tense", 3.0, 7.5), ("neutral", 5.0, 5.0)]
HOP = 2.5
PER_QUADRANT = 6


def ratings(folder: Path) -> dict[int, tuple[float, float]]:
    """Each song's mean (valence, arousal) rating, from DEAM's static annotation files."""
    out = {}
    for path in sorted((folder / "annotations").glob("static_annotations_averaged_songs_*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f, skipinitialspace=True):
                row = {k.strip(): v for k, v in row.items()}
                out[int(row["song_id"])] = (float(row["valence_mean"]), float(row["arousal_mean"]))
    return out


def pick(folder: Path) -> list[tuple[str, int, float, float]]:
    """The clip nearest each target: ``(name, song id, valence, arousal)``."""
    rated = {k: v for k, v in ratings(folder).items() if (folder / "audio" / f"{k}.mp3").exists()}
    chosen = []
    for name, tv, ta in TARGETS:
        song = min(sorted(rated), key=lambda k: (rated[k][0] - tv) ** 2 + (rated[k][1] - ta) ** 2)
        chosen.append((name, song, *rated.pop(song)))
    return chosen


def timeline(deam: Path, model: EmotionModel, out: Path) -> None:
    rate = model.settings.sample_rate
    parts, reference, start = [], [], 0.0
    for name, song, valence, arousal in pick(deam):
        y = load_audio(deam / "audio" / f"{song}.mp3", rate)
        parts.append(y)
        reference.append(Segment(start, start + len(y) / rate, float(to_unit(valence)), float(to_unit(arousal))))
        print(f"{name}: song {song}, rated valence {valence}, arousal {arousal}")
        start += len(y) / rate
    with tempfile.TemporaryDirectory() as tmp:
        medley = Path(tmp) / "medley.wav"
        sf.write(medley, np.concatenate(parts), rate)
        pred = model.predict_file(medley, hop_seconds=HOP, timeline=True)
    plot_timeline(pred, out, "deam", reference=reference,
                  title="Five DEAM clips back to back (sad, calm, happy, tense, neutral)")
    print(f"wrote {out}")


def plane(quadrants: Path, model: str | None, out: Path) -> None:
    with (quadrants / "labels.csv").open(newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["song_id"])
    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        music.mkdir()
        for q in ("Q1", "Q2", "Q3", "Q4"):
            chosen = [r for r in rows if r["quadrant"] == q
                      and (quadrants / "audio" / f"{r['song_id']}.mp3").exists()][:PER_QUADRANT]
            for r in chosen:
                name = re.sub(r'[/\\:*?"<>|]', "_", f"{r['artist']} - {r['title']}")
                shutil.copy(quadrants / "audio" / f"{r['song_id']}.mp3", music / f"{name}.mp3")
        cli(["predict", str(music), "-o", str(Path(tmp) / "rows.csv"), "--plot", str(out), "--no-progress",
             *(["--model", model] if model else [])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deam", required=True, type=Path, help="DEAM folder (audio/ and annotations/)")
    ap.add_argument("--4q", dest="quadrants", required=True, type=Path, help="4Q folder (audio/ and labels.csv)")
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder of the pictures")
    args = ap.parse_args()
    timeline(args.deam, EmotionModel(args.model, threads=1), args.out / "timeline.png")
    plane(args.quadrants, args.model, args.out / "plane.png")


if __name__ == "__main__":
    main()
