"""The choices behind the ``large`` model, on ``train``'s folds: which of musicnn's layers its
heads read, how its two ears meet, and how strongly the heads are regularised.

    python scripts/large_frontier.py --deam ../shared/deam --quadrants ../shared/4q/labels.csv \\
        --out runs/large-frontier [--musicnn-wheel WHL]

Every row is ``train``'s own cross-validation (:func:`music2emotion.training.trainer.cross_validate`:
the 4Q songs in 5 folds grouped by artist, DEAM's in 5, fold k of both held out together) of
a variant of the ``large`` recipe, on the feature rows ``train --arch large`` computes and
caches, so after one such run nothing is decoded again. First the quadrant head (the one
answer: 4Q's figures) with a ridge for DEAM's convention, then DEAM's regressors beside the
recipe's head. ``--seeds`` repeats each row on other fold assignments: a choice that holds
on several is not one fold assignment's luck. Writes ``frontier.md`` and ``frontier.json``
into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from music2emotion.training.arches import ARCHES
from music2emotion.training.features import file_rows
from music2emotion.training.labels import read_labels
from music2emotion.training.trainer import corpus, cross_validate, song_folds

# (name, head groups, C): one group is one head on its blocks side by side; several groups
# are heads of their own whose logits are averaged.
HEADS = [
    ("AudioSet embedding (accurate's head)", (("embedding",),), 0.005),
    ("musicnn penultimate alone", (("msd_penultimate",),), 0.005),
    ("musicnn tags alone", (("msd_tags",),), 0.02),
    ("musicnn pooled alone", (("msd_pooled",),), 0.002),
    *[(f"embedding + penultimate, C {c:g}", (("embedding", "msd_penultimate"),), c)
      for c in (0.002, 0.005, 0.01, 0.02)],
    ("embedding + tags", (("embedding", "msd_tags"),), 0.005),
    ("embedding + penultimate + tags", (("embedding", "msd_penultimate", "msd_tags"),), 0.005),
    ("embedding + pooled", (("embedding", "msd_pooled"),), 0.002),
    ("embedding + penultimate + tags, C 0.003", (("embedding", "msd_penultimate", "msd_tags"),), 0.003),
    ("embedding + penultimate + tags, C 0.01", (("embedding", "msd_penultimate", "msd_tags"),), 0.01),
    ("embedding + penultimate + melstats", (("embedding", "msd_penultimate", "melstats"),), 0.005),
    ("embedding | penultimate, heads averaged", (("embedding",), ("msd_penultimate",)), 0.005),
    ("embedding | penultimate, heads averaged, C 0.01", (("embedding",), ("msd_penultimate",)), 0.01),
    ("embedding | penultimate + tags, heads averaged (large)", (("embedding",), ("msd_penultimate", "msd_tags")),
     0.005),
    ("embedding | penultimate | tags, heads averaged", (("embedding",), ("msd_penultimate",), ("msd_tags",)), 0.005),
]
# DEAM's convention: blocks read by ridge + PCA-SVR + histogram boosting
RATINGS = [
    ("embedding + melstats (accurate's)", ("embedding", "melstats")),
    ("+ penultimate", ("embedding", "melstats", "msd_penultimate")),
    ("+ penultimate + tags", ("embedding", "melstats", "msd_penultimate", "msd_tags")),
    ("+ pooled", ("embedding", "melstats", "msd_pooled")),
    ("+ pooled + penultimate + tags (large)", ("embedding", "melstats", "msd_pooled", "msd_penultimate", "msd_tags")),
]
SHOWN = ("valence_auc", "happy_vs_angry", "tender_vs_sad", "arousal_auc", "mood_right", "valence_r2", "arousal_r2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deam", required=True)
    ap.add_argument("--quadrants", required=True)
    ap.add_argument("--out", default="runs/large-frontier")
    ap.add_argument("--musicnn-wheel")
    ap.add_argument("--cache-dir")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", choices=("heads", "ratings"), help="one of the two stages")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42],
                    help="fold seeds: each row's figures are the mean over them (train's own is 42)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = ARCHES["large"]
    graph, rows = base.ears(args.musicnn_wheel)
    labels = read_labels([args.quadrants], [], Path(args.deam) / "annotations", Path(args.deam) / "audio")
    c = corpus(labels, file_rows([s.path for s in labels.songs], graph, base.kind, base.settings,
                                 cache_dir=args.cache_dir, jobs=args.jobs))
    results = []

    def run(stage: str, name: str, arch) -> None:
        t0 = time.time()
        cvs = [cross_validate(c, arch, rows, song_folds(c.labels, 5, seed), args.jobs, log=lambda _: None)
               for seed in args.seeds]
        row = {"stage": stage, "name": name, "seeds": args.seeds,
               "mean": {k: float(np.mean([cv["mean"][k] for cv in cvs])) for k in cvs[0]["mean"]},
               "std": {k: float(np.mean([cv["std"][k] for cv in cvs])) for k in cvs[0]["std"]},
               "all": {k: float(np.mean([cv["all"][k] for cv in cvs])) for k in cvs[0]["all"]},
               "seconds": round(time.time() - t0, 1)}
        results.append(row)
        print(f"{stage}: {name}: " + ", ".join(f"{k} {row['mean'][k]:.3f}" for k in SHOWN)
              + f", ECE (all) {row['all']['ece']:.3f}", flush=True)
        (out / "frontier.json").write_text(json.dumps(results, indent=1))

    if args.only != "ratings":
        for name, groups, c_ in HEADS:
            run("heads", name, dataclasses.replace(base, head_blocks=groups, head_c=c_, ratings_members=("ridge",)))
    if args.only != "heads":
        for name, blocks in RATINGS:
            run("ratings", name, dataclasses.replace(base, ratings_blocks=blocks))
    lines = [f"Fold seeds {', '.join(map(str, args.seeds))}: mean over them of each figure's fold mean ± std.", "",
             "| stage | variant | " + " | ".join(SHOWN) + " | ECE (all songs) |",
             "|---|---|" + "---|" * (len(SHOWN) + 1)]
    for r in results:
        lines.append(f"| {r['stage']} | {r['name']} | " + " | ".join(
            f"{r['mean'][k]:.3f} ± {r['std'][k]:.3f}" for k in SHOWN) + f" | {r['all']['ece']:.3f} |")
    (out / "frontier.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
