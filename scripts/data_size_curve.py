"""How many songs are enough: ``music2emotion train``'s recipe on subsets of a mood-labelled
set, its fold figures against the number of songs, and a model of N songs scored on the
songs of other artists.

    python scripts/data_size_curve.py --labels ../shared/4q/labels.csv --out runs/data-size

For each size N (``--sizes``, default 50 100 200 400) and each of ``--repeats`` seeds, N
songs are drawn from the labels (balanced by mood, whole artists at a time), ``train``'s
cross-validation runs on them (5 folds grouped by artist), and a model fitted on all N is
scored on every song of an artist it never heard. The features come from the same cache
``train`` uses, so after one ``train`` run on the set nothing is decoded again.

Writes ``data_size.json`` (every figure of every run) and ``data_size.png`` (the mean and
the spread over repeats, per size) into ``--out``. Needs the ``ml`` and ``train`` extras.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from music2emotion.training.arches import ARCHES
from music2emotion.training.features import file_rows
from music2emotion.training.labels import Labels, read_label_csv
from music2emotion.training.quadrants import quadrant_scores
from music2emotion.training.trainer import Heads, corpus, cross_validate, song_folds

SHOWN = {"valence_auc": "valence AUC", "arousal_auc": "arousal AUC", "tender_vs_sad": "tender vs sad",
         "mood_right": "mood right"}


def draw(labels: Labels, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Song numbers of ``n`` songs, about ``n / 4`` per mood, whole artists at a time, and
    the songs of every other artist."""
    rng = np.random.default_rng(seed)
    artists: dict[str, list[int]] = {}
    for i, s in enumerate(labels.songs):
        artists.setdefault(s.artist or f"\0{i}", []).append(i)
    moods = labels.moods
    per_mood = {q: 0 for q in range(1, 5)}
    chosen: list[int] = []
    for a in rng.permutation(sorted(artists)):
        songs = artists[a]
        if len(chosen) + len(songs) > n or any(per_mood[moods[i]] + 1 > n / 4 + 1 for i in songs):
            continue
        chosen += songs
        for i in songs:
            per_mood[moods[i]] += 1
    picked = np.array(sorted(chosen))
    return picked, np.setdiff1d(np.arange(len(labels.songs)), picked)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labels", required=True, help="a mood-labelled CSV (the 4Q set's labels.csv)")
    ap.add_argument("--out", default="runs/data-size")
    ap.add_argument("--arch", default="accurate", choices=list(ARCHES))
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache-dir")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arch = ARCHES[args.arch]
    graph, rows = arch.ears()
    labels = read_label_csv(args.labels)
    c = corpus(labels, file_rows([s.path for s in labels.songs], graph, arch.kind, arch.settings,
                                 cache_dir=args.cache_dir, jobs=args.jobs))
    runs = []
    for n in args.sizes:
        for seed in range(args.repeats):
            train, others = draw(c.labels, n, seed)
            sub, rest = c.subset(train), c.subset(others)
            cv = cross_validate(sub, arch, rows, song_folds(sub.labels, 5, seed), args.jobs, log=lambda _: None)
            heads = Heads(arch, rows, True, False).fit(sub, np.arange(sub.n))
            held = quadrant_scores(rest.moods, heads.song_values(rest, np.arange(rest.n))["output"])
            runs.append({"size": n, "songs": int(sub.n), "seed": seed, "folds": cv["mean"],
                         "other_artists": {"songs": int(rest.n), "valence_auc": held["valence_auc"],
                                           "arousal_auc": held["arousal_auc"],
                                           "tender_vs_sad": held["valence_auc_calm"],
                                           "mood_right": held["quadrant_accuracy"]}})
            print(f"{sub.n} songs (seed {seed}): folds " + ", ".join(f"{SHOWN[k]} {cv['mean'][k]:.3f}" for k in SHOWN)
                  + f"; {rest.n} songs of other artists: " + ", ".join(
                      f"{SHOWN[k]} {runs[-1]['other_artists'][k]:.3f}" for k in SHOWN), flush=True)
    (out / "data_size.json").write_text(json.dumps(runs, indent=1))
    plot(runs, out / "data_size.png")
    return 0


def plot(runs: list[dict], path: Path) -> None:
    """The figures against N, mean over repeats with a band of one standard deviation."""
    from music2emotion.plot import new_figure

    sizes = sorted({r["size"] for r in runs})
    fig = new_figure(10, 4.4, dpi=110)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, where, title in zip(axes, ("folds", "other_artists"),
                                ("cross-validated on the N songs (5 folds by artist)",
                                 "a model of N songs, on every other artist's songs")):
        for key, label in SHOWN.items():
            by: dict[int, list[float]] = {}
            for r in runs:
                by.setdefault(r["size"], []).append(r[where][key])
            mean = np.array([np.mean(by[x]) for x in sizes])
            spread = np.array([np.std(by[x]) for x in sizes])
            (line,) = ax.plot(sizes, mean, "o-", label=label)
            ax.fill_between(sizes, mean - spread, mean + spread, color=line.get_color(), alpha=0.15, lw=0)
        for level, what in ((0.5, "chance: AUC"), (0.25, "chance: mood right")):
            ax.axhline(level, color="0.5", lw=0.8, ls=":")
            ax.text(sizes[-1], level + 0.01, what, ha="right", va="bottom", fontsize=7, color="0.4")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("songs labelled by mood (N)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score")
    axes[0].set_ylim(0.2, 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(SHOWN), fontsize=8, frameon=False)
    fig.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
