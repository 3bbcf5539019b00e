"""Draw docs/timeline.png: ``music2emotion plot`` on a medley of five DEAM clips.

    python docs/make_timeline.py --deam DEAM_FOLDER [--model accurate] [--out docs/timeline.png]

DEAM_FOLDER holds ``audio/<song_id>.mp3`` and ``annotations/*.csv`` (DEAM's own files). The
five clips are picked by their ratings alone, the clip nearest each of five points of DEAM's
1-9 plane (sad, calm, happy, tense, neutral; ties to the lowest song id), put back to back
and predicted with windows every 2.5 s; their ratings are drawn as dotted steps. The bundled
models were trained on DEAM, these clips included: the picture shows what the plot draws,
not how well the model hears unseen music (MODEL_CARD.md has that).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from music2emotion import EmotionModel, Segment
from music2emotion.audio import load_audio
from music2emotion.config import to_unit
from music2emotion.plot import plot_timeline

# (name, valence, arousal) on DEAM's 1-9 scale, in the medley's order
TARGETS = [("sad", 2.5, 2.5), ("calm", 6.5, 3.0), ("happy", 7.5, 7.5), ("tense", 3.0, 7.5), ("neutral", 5.0, 5.0)]
HOP = 2.5


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deam", required=True, type=Path, help="DEAM folder (audio/ and annotations/)")
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("timeline.png")))
    args = ap.parse_args()
    model = EmotionModel(args.model, threads=1)
    rate = model.settings.sample_rate
    parts, reference, start = [], [], 0.0
    for name, song, valence, arousal in pick(args.deam):
        y = load_audio(args.deam / "audio" / f"{song}.mp3", rate)
        parts.append(y)
        reference.append(Segment(start, start + len(y) / rate, float(to_unit(valence)), float(to_unit(arousal))))
        print(f"{name}: song {song}, rated valence {valence}, arousal {arousal}")
        start += len(y) / rate
    with tempfile.TemporaryDirectory() as tmp:
        medley = Path(tmp) / "medley.wav"
        sf.write(medley, np.concatenate(parts), rate)
        pred = model.predict_file(medley, hop_seconds=HOP, timeline=True)
    out = plot_timeline(pred, args.out, "deam", reference=reference,
                        title="Five DEAM clips back to back (sad, calm, happy, tense, neutral)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
