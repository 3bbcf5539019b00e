"""A training run's report: ``report.json`` (everything), ``report.md`` (for people) and its
pictures, each written whole (a temporary file renamed into place)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MOOD_CLASSES, TARGETS
from ..modelfile import DEAM_OUTPUT, OUTPUT
from .evaluate import scatter_plot, write_json
from .labels import parse_scale

# The figures a fold can have, in the order reports show them, with their headings.
FIGURES = {
    "valence_auc": "valence AUC", "happy_vs_angry": "happy vs angry", "tender_vs_sad": "tender vs sad",
    "arousal_auc": "arousal AUC", "mood_right": "mood right", "ece": "ECE", "log_loss": "log-loss",
    "valence_r2": "valence R²", "arousal_r2": "arousal R²", "valence_ccc": "valence CCC",
    "arousal_ccc": "arousal CCC", "valence_coverage": "valence interval coverage",
    "arousal_coverage": "arousal interval coverage",
}

# What each figure says, for the report's readers (docs/train-your-own.md says more).
MEANINGS = {
    "valence AUC": "how often a pleasant song (happy, tender) gets a higher valence than an unpleasant one "
                   "(angry, sad); 0.5 is chance, 1 is perfect",
    "happy vs angry": "the same among energetic songs only: what energy cannot tell",
    "tender vs sad": "the same among calm songs only",
    "arousal AUC": "how often an energetic song (happy, angry) gets a higher arousal than a calm one",
    "mood right": "the share of songs whose mood word is their label, or the quadrant their ratings lie in "
                  "(0.25 is chance)",
    "ECE": "calibration: the average gap between a mood's probability and how often it is right (0 is perfect)",
    "log-loss": "the mean surprise of the mood probabilities (log 4 = 1.386 is a guess of 1/4 each)",
    "R²": "the share of the ratings' variance the values explain (0 is a constant guess)",
    "CCC": "agreement of the values with the ratings, bias and scale included (1 is perfect)",
    "interval coverage": "the share of held-out ratings inside the 90 % intervals (0.9 is the target)",
}


def _picture(fn: Any, out: Path, *args: Any, **kwargs: Any) -> str:
    """Draw with ``fn(..., tmp)`` and rename into ``out``; returns the file's name."""
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.png")
    fn(*args, tmp, **kwargs)
    os.replace(tmp, out)
    return out.name


def _cell(mean: float, std: float | None = None) -> str:
    if mean is None or np.isnan(mean):
        return "—"
    return f"{mean:.3f}" if std is None or np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def write_report(out: Path, report: dict[str, Any], cv: dict[str, Any], c: Any) -> None:
    """Write ``report.json``, the pictures and ``report.md`` into the run folder ``out``.

    Parameters
    ----------
    out : pathlib.Path
        The run folder.
    report : dict
        What :func:`~music2emotion.training.trainer.train_model` measured.
    cv : dict
        Its cross-validation (:func:`~music2emotion.training.trainer.cross_validate`).
    c : Corpus
        The songs.
    """
    from .calibration import reliability_plot
    from .quadrants import quadrant_plot

    pictures = []
    scored = cv["scored"]
    unit = cv["oof"][OUTPUT][scored]
    by_mood = "moods" in report["trained_on"]["labels"]
    what = "labelled mood" if by_mood else "quadrant of the ratings"
    pictures.append(_picture(quadrant_plot, out / "quadrants.png", cv["truth"], unit,
                             title=f"out of fold: the one answer against the {what}"))
    pictures.append(_picture(reliability_plot, out / "reliability.png", cv["probabilities"], cv["truth"],
                             title=f"mood probabilities against the {what}, out of fold"))
    scale = report["trained_on"]["rating_scale"]
    if scale:
        rated = np.flatnonzero(~np.isnan(c.ratings[:, 0]))
        pred = cv["oof"][DEAM_OUTPUT if report["outputs"]["deam"] else OUTPUT][rated]
        pictures.append(_picture(scatter_plot, out / "ratings.png", c.ratings[rated], pred,
                                 title="the ratings' convention, out of fold", scale=parse_scale(scale)))
    report["pictures"] = pictures
    write_json(out / "report.json", report)

    t = report["trained_on"]
    lines = [f"# music2emotion model `{report['arch']}`: {t['songs']} songs", ""]
    lines.append(f"- Model: `{Path(report['model']).name}` (kind `{report['kind']}`, music2emotion "
                 f"{report['music2emotion']}), trained in {report['seconds']['total']:.0f} s "
                 f"({report['seconds']['features']:.0f} s of features).")
    given = []
    if sum(t["moods"].values()):
        given.append(f"{sum(t['moods'].values())} songs by mood ("
                     + ", ".join(f"{t['moods'][w]} {w}" for w in MOOD_CLASSES) + ")")
    if t["rated"]:
        given.append(f"{t['rated']} rated songs (scale {t['rating_scale']})")
    lines.append(f"- Labels: {'; '.join(given)}; {t['windows']} windows; {t['artists'] or 'no'} artists.")
    o = report["outputs"]
    lines.append(f"- Its values: from the {o['unit']}" + ("; beside them the ratings' convention "
                                                          "(`--scale deam`)" if o["deam"] else "")
                 + "; moods derived from the values" + ("; 90 % intervals." if o["intervals"]
                                                        else "; no intervals (they need ratings)."))
    f = report["folds"]
    lines += ["", f"## Cross-validation: {f['k']} folds"
              + (", each artist's songs on one side" if f["grouped_by_artist"] else "") + f", seed {f['seed']}", ""]
    keys = [k for k in FIGURES if k in report["figures"]["mean"]]
    lines.append("| fold | songs | " + " | ".join(FIGURES[k] for k in keys) + " |")
    lines.append("|---|---|" + "---|" * len(keys))
    for i, (fold, songs) in enumerate(zip(report["figures"]["per_fold"], f["songs"]), start=1):
        lines.append(f"| {i} | {len(songs)} | " + " | ".join(_cell(fold.get(k, np.nan)) for k in keys) + " |")
    m, s, a = report["figures"]["mean"], report["figures"]["std"], report["figures"]["all"]
    lines.append("| mean ± std | | " + " | ".join(_cell(m[k], s[k]) for k in keys) + " |")
    lines.append(f"| all songs | {sum(len(x) for x in f['songs'])} | "
                 + " | ".join(_cell(a.get(k, np.nan)) for k in keys) + " |")
    lines += ["", "Each fold's songs are scored by a model fitted on the other folds; \"all songs\" scores "
              "every song's out-of-fold values at once (ECE is steadier there: a fold holds few songs per "
              "bin). What the figures mean:", ""]
    headings = {FIGURES[k] for k in keys}
    for name, meaning in MEANINGS.items():
        if any(h.endswith(name) or h == name for h in headings):
            lines.append(f"- **{name}**: {meaning}.")
    lines += ["", *[f"![{p}]({p})" for p in pictures], "", "## Calibration, fitted out of fold", ""]
    for scale_name, cal in report["calibration"].items():
        line = f"- `{scale_name}`: logistic spread " + " / ".join(f"{v:.4f}" for v in cal["spread"])
        if cal["half_width"]:
            line += "; 90 % intervals ± " + " / ".join(f"{v:.3f}" for v in cal["half_width"])
            line += ", covering " + " / ".join(f"{v:.3f}" for v in cal["coverage"]) + " of held-out ratings"
        lines.append(line + f" ({' / '.join(TARGETS)}).")
    lines.append(f"- The most probable mood is the quadrant of the values for "
                 f"{100 * report['figures']['all']['coherent']:.1f} % of the songs, out of fold.")
    if report["relation"]:
        r = report["relation"]
        lines.append(f"- The ratings' valence ≈ the answer's valence + {r['beta']:.3f} (arousal − 0.5) + {r['c']:.3f}.")
    diff = report["export_check"]["max_abs_diff"]
    lines.append("- The written file, run as `predict` runs it on training files, agrees with the fitted heads "
                 "to " + ", ".join(f"{v:.1e} ({k})" for k, v in diff.items()) + ".")
    if report["skipped"] or report["notes"]:
        lines += ["", "## Left out", ""] + [f"- {x}" for x in report["skipped"] + report["notes"]]
    if report["warnings"]:
        lines += ["", "## Kept, with a warning", ""] + [f"- {x}" for x in report["warnings"]]
    tmp = out / f".report.{os.getpid()}.tmp.md"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / "report.md")
