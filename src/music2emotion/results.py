"""Writing prediction rows to CSV or JSON Lines, one flushed row at a time, and resuming.

Rows are appended and flushed as each file finishes, so a run killed midway leaves a valid
file holding every finished row; :func:`done_paths` reads such a file back so a resumed
run can skip what is already there.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO, Any

from .inference import Prediction

COLUMNS = ["path", "valence", "arousal", "duration", "windows", "warning", "error"]
TIMELINE_COLUMNS = ["path", "start", "end", "valence", "arousal"]


def format_for(path: str | os.PathLike[str] | None, fmt: str | None = None) -> str:
    """``csv`` or ``jsonl``: explicit ``fmt`` wins, else the file's extension."""
    if fmt:
        return fmt
    return "jsonl" if path and str(path).lower().endswith((".jsonl", ".json", ".ndjson")) else "csv"


def _repair_tail(path: Path) -> None:
    """Drop a last line cut off by a killed run, so appended rows start on a fresh line."""
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.seek(data.rfind(b"\n") + 1)
        f.truncate()


def done_paths(path: str | os.PathLike[str], fmt: str | None = None) -> set[str]:
    """Paths already present in an earlier output (missing file: empty set)."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return set()
    _repair_tail(p)
    with p.open(newline="", encoding="utf-8") as f:
        if format_for(p, fmt) == "jsonl":
            return {json.loads(line)["path"] for line in f if line.strip()}
        return {row["path"] for row in csv.DictReader(f)}


class RowWriter:
    """Appends one row per :class:`Prediction` (and, with ``timeline``, per window)."""

    def __init__(
        self,
        stream: IO[str],
        fmt: str = "csv",
        scale: str = "unit",
        timeline: bool = False,
        header: bool = True,
    ):
        self.stream, self.fmt, self.scale, self.timeline = stream, fmt, scale, timeline
        self._csv = None
        if fmt == "csv":
            cols = COLUMNS + (["start", "end"] if timeline else [])
            self._csv = csv.DictWriter(stream, fieldnames=cols, extrasaction="ignore")
            if header:
                self._csv.writeheader()

    def write(self, pred: Prediction) -> None:
        row = pred.row(self.scale)
        if self.fmt == "jsonl":
            if self.timeline:
                row["timeline"] = [self._segment(s) for s in pred.timeline]
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            assert self._csv is not None
            self._csv.writerow({**row, "start": "", "end": ""} if self.timeline else row)
            if self.timeline:
                for s in pred.timeline:
                    seg = self._segment(s)
                    self._csv.writerow({"path": pred.path, **seg, "windows": 1})
        self.stream.flush()

    def _segment(self, s: Any) -> dict[str, Any]:
        conv = Prediction(path="", valence=s.valence, arousal=s.arousal).row(self.scale)
        return {"start": s.start, "end": s.end, "valence": conv["valence"], "arousal": conv["arousal"]}


def open_output(path: str | os.PathLike[str], resume: bool) -> tuple[IO[str], bool]:
    """Open ``path`` for appending (resume) or writing; returns the stream and whether a
    header is still needed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if resume and p.exists() and p.stat().st_size > 0:
        return p.open("a", newline="", encoding="utf-8"), False
    return p.open("w", newline="", encoding="utf-8"), True
