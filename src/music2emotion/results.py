"""Writing prediction rows to CSV or JSON Lines, one flushed file at a time, and resuming.

Output layout (documented for users in the README, "Output columns"):

* CSV without a timeline: one row per file, columns :data:`COLUMNS`.
* CSV with a timeline: columns :data:`TIMELINE_COLUMNS`; each file gives its ``window`` rows
  (``kind=window``, with ``start``/``end``) and then its ``song`` row (``kind=song``), all
  in one write. A row for the song is therefore the mark that the file is complete.
* JSON Lines: one object per file with the :data:`COLUMNS` keys, plus ``timeline`` (a list
  of ``{start, end, valence, arousal}``) when asked for.

Each file's rows are written and flushed as soon as it finishes, so a run killed midway
leaves every finished file in the output. :func:`read_output` reads such a file back: it
drops whatever a killed run left half-written at the end (a cut-off line, window rows whose
song row never came) and reports the files already done, so a resumed run appends exactly
the rest. Paths are written as given; file names that are not valid UTF-8 keep their raw
bytes (``surrogateescape``), so they round-trip.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .inference import Prediction

COLUMNS = ["path", "valence", "arousal", "duration", "windows", "warning", "error"]
TIMELINE_COLUMNS = ["path", "kind", "start", "end", "valence", "arousal", "duration",
                    "windows", "warning", "error"]
SONG, WINDOW = "song", "window"
ENCODING, ERRORS = "utf-8", "surrogateescape"


def format_for(path: str | os.PathLike[str] | None, fmt: str | None = None) -> str:
    """``csv`` or ``jsonl``: explicit ``fmt`` wins, else the file's extension."""
    if fmt:
        return fmt
    return "jsonl" if path and str(path).lower().endswith((".jsonl", ".json", ".ndjson")) else "csv"


def columns_for(fmt: str, timeline: bool) -> list[str]:
    """The CSV header :class:`RowWriter` writes (JSON Lines has no header: ``[]``)."""
    if fmt == "jsonl":
        return []
    return TIMELINE_COLUMNS if timeline else COLUMNS


@dataclass
class OutputState:
    """What an earlier (possibly killed) run left in an output file."""

    columns: list[str] = field(default_factory=list)  # CSV header; [] for JSONL or no file
    done: set[str] = field(default_factory=set)  # paths with a complete song row
    rows: list[dict[str, Any]] = field(default_factory=list)  # song rows, if asked for
    repaired_bytes: int = 0  # bytes of half-written rows cut off the end


def _lines(text: str) -> Iterator[tuple[str, int]]:
    """Lines of ``text`` with their end offsets, splitting on ``\\n`` only (CSV fields may
    hold ``\\r``)."""
    start = 0
    while start < len(text):
        nl = text.find("\n", start)
        end = len(text) if nl < 0 else nl + 1
        yield text[start:end], end
        start = end


def _scan_csv(text: str, keep_rows: bool) -> tuple[OutputState, int]:
    state = OutputState()
    consumed = 0
    complete = True

    def feed() -> Iterator[str]:
        nonlocal consumed, complete
        for line, end in _lines(text):
            consumed = end
            complete = line.endswith("\n")
            yield line

    reader = csv.reader(feed())
    try:
        state.columns = next(reader)
    except (StopIteration, csv.Error):
        return state, 0
    if not complete:
        return OutputState(), 0
    good_end = consumed
    kind_at = state.columns.index("kind") if "kind" in state.columns else None
    try:
        for record in reader:
            if not complete:
                break  # the last line was cut off by a kill
            if kind_at is not None and kind_at < len(record) and record[kind_at] == WINDOW:
                continue  # complete only once its song row follows
            if len(record) != len(state.columns):
                break
            row = dict(zip(state.columns, record))
            state.done.add(row["path"])
            if keep_rows:
                state.rows.append(row)
            good_end = consumed
    except csv.Error:
        pass  # an unterminated quoted field at the end: also a cut-off row
    return state, good_end


def _scan_jsonl(text: str, keep_rows: bool) -> tuple[OutputState, int]:
    state = OutputState()
    good_end = 0
    for n, (line, end) in enumerate(_lines(text), 1):
        if not line.endswith("\n"):
            break
        if not line.strip():
            good_end = end
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if end == len(text):
                break  # the last line, cut short and then ended by a later newline
            raise ValueError(f"line {n} is not JSON; not an output of music2emotion?") from None
        state.done.add(row["path"])
        if keep_rows:
            state.rows.append(row)
        good_end = end
    return state, good_end


def read_output(
    path: str | os.PathLike[str], fmt: str | None = None, repair: bool = True,
    keep_rows: bool = False, columns: list[str] | None = None,
) -> OutputState:
    """Read an earlier output back; with ``repair``, cut off what a killed run left
    half-written at the end so that appended rows follow complete ones.

    With ``columns`` (what this run will write), a CSV whose header differs raises
    ``ValueError`` before anything is changed: appending would make it unreadable.
    """
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return OutputState()
    data = p.read_bytes()
    text = data.decode(ENCODING, ERRORS)
    scan = _scan_jsonl if format_for(p, fmt) == "jsonl" else _scan_csv
    state, good_end = scan(text, keep_rows)
    if columns and state.columns and state.columns != columns:
        raise ValueError(
            f"{p}: its columns ({','.join(state.columns)}) differ from this run's "
            f"({','.join(columns)}); resume with the same --timeline option, or write a new file"
        )
    if good_end < len(text):
        keep = len(text[:good_end].encode(ENCODING, ERRORS))
        state.repaired_bytes = len(data) - keep
        if repair:
            with p.open("rb+") as f:
                f.truncate(keep)
    return state


def done_paths(path: str | os.PathLike[str], fmt: str | None = None) -> set[str]:
    """Paths already complete in an earlier output (missing file: empty set). Repairs the
    file's end, like :func:`read_output`."""
    return read_output(path, fmt).done


class RowWriter:
    """Appends each :class:`Prediction` as rows (see the module docstring for the layout),
    one write and one flush per file."""

    def __init__(
        self,
        stream: IO[str],
        fmt: str = "csv",
        scale: str = "unit",
        timeline: bool = False,
        header: bool = True,
    ):
        self.stream, self.fmt, self.scale, self.timeline = stream, fmt, scale, timeline
        self.columns = columns_for(fmt, timeline)
        if fmt == "csv" and header:
            self._write([dict(zip(self.columns, self.columns))])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        if self.fmt == "jsonl":
            for row in rows:
                buf.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
            w.writerows(rows)
        self.stream.write(buf.getvalue())
        self.stream.flush()

    def write(self, pred: Prediction) -> None:
        row = pred.row(self.scale)
        if self.fmt == "jsonl":
            if self.timeline:
                row["timeline"] = [
                    {k: v for k, v in seg.items() if k != "path"}
                    for seg in pred.segment_rows(self.scale)
                ]
            self._write([row])
        elif self.timeline:
            windows = [{**seg, "kind": WINDOW} for seg in pred.segment_rows(self.scale)]
            self._write([*windows, {**row, "kind": SONG}])
        else:
            self._write([row])


def open_output(path: str | os.PathLike[str], resume: bool) -> tuple[IO[str], bool]:
    """Open ``path`` for appending (resume) or writing; returns the stream and whether a
    header is still needed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if resume and p.exists() and p.stat().st_size > 0:
        return p.open("a", newline="", encoding=ENCODING, errors=ERRORS), False
    return p.open("w", newline="", encoding=ENCODING, errors=ERRORS), True
