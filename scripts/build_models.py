"""Rebuild the bundled models with ``music2emotion train``, the way they were made, and
compare each with the one in the package.

    python scripts/build_models.py --deam ../shared/deam --quadrants ../shared/4q/labels.csv \\
        --out runs/bundled [--arch accurate fast large] [--install]

Each arch is one command, printed before it runs::

    music2emotion train --arch ARCH --annotations DEAM/annotations --audio-dir DEAM/audio \\
        --labels 4Q/labels.csv --out OUT/ARCH [--musicnn-wheel WHL]

so the figures of ``OUT/ARCH/report.md`` are the ones the README and the model card quote.
``--install`` copies each ``emotion_model.onnx`` over the bundled file of its name (then
``python tests/golden/make_golden.py`` pins what they output). ``large`` needs musicnn's wheel
until the package carries its ear (``pip download musicnn==0.1.0 --no-deps -d DIR``).
Needs the ``train`` and ``ml`` extras.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from music2emotion.cli import main as cli
from music2emotion.modelfile import BUNDLED_MODELS, bundled_model_path
from music2emotion.training.arches import ARCHES
from music2emotion.training.trainer import MODEL_NAME


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deam", required=True, help="DEAM folder with audio/ and annotations/")
    ap.add_argument("--quadrants", required=True, help="quadrant labels CSV with audio/ beside it (4Q)")
    ap.add_argument("--out", default="runs/bundled")
    ap.add_argument("--arch", nargs="+", default=list(ARCHES), choices=list(ARCHES))
    ap.add_argument("--musicnn-wheel", help="musicnn 0.1.0's wheel, for large")
    ap.add_argument("--cache-dir", help="feature cache (default ~/.cache/music2emotion/features)")
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--install", action="store_true", help="copy the models into the package")
    args = ap.parse_args()
    deam = Path(args.deam)
    for name in args.arch:
        cmd = ["train", "--arch", name, "--annotations", str(deam / "annotations"), "--audio-dir",
               str(deam / "audio"), "--labels", args.quadrants, "--out", str(Path(args.out) / name)]
        if name == "large" and args.musicnn_wheel:
            cmd += ["--musicnn-wheel", args.musicnn_wheel]
        cmd += [*(["--cache-dir", args.cache_dir] if args.cache_dir else []),
                *(["--jobs", str(args.jobs)] if args.jobs else [])]
        print("music2emotion " + " ".join(cmd), flush=True)
        if cli(cmd) != 0:
            return 1
        built = Path(args.out) / name / MODEL_NAME
        bundled = bundled_model_path(name)
        same = bundled.is_file() and built.read_bytes() == bundled.read_bytes()
        mean = json.loads((built.parent / "report.json").read_text())["figures"]["mean"]
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items())
              + ("; identical to the bundled file" if same else "; differs from the bundled file"))
        if args.install and name in BUNDLED_MODELS:
            shutil.copyfile(built, bundled)
            print(f"installed {bundled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
