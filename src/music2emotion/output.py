"""Writing prediction rows to CSV, JSON Lines or Parquet, one flushed file at a time, and
resuming: the one writer of every engine (:class:`Output`).

Output layout (documented for users in docs/usage.md, "Output columns"):

* CSV without a timeline: one row per file, columns :data:`COLUMNS` (the quadrant
  probabilities and intervals last, empty for a model without them; a CSV written before
  they existed is resumed with its own, shorter header).
* CSV with a timeline: columns :data:`TIMELINE_COLUMNS`; each file gives its ``window`` rows
  (``kind=window``, with ``start``/``end``) and then its ``song`` row (``kind=song``), all
  in one write. A row for the song is therefore the mark that the file is complete.
* JSON Lines: one object per file with the :data:`COLUMNS` keys, plus ``timeline`` (a list
  of ``{start, end, valence, arousal}``) when asked for.
* Parquet (by the extension ``.parquet`` / ``.pq``): the :data:`COLUMNS`, typed. A Parquet
  file cannot be appended to, so while a run goes on its rows go to a JSON Lines journal
  beside it (``<output>.partial.jsonl``), which becomes the Parquet file (written whole,
  then renamed into place) when the run ends; a run that dies leaves the journal, and
  ``resume`` picks it up.

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
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from .config import INTERVAL_COLUMNS, MOOD_COLUMNS, Scale
from .prediction import MOOD_FIELDS, Prediction

if TYPE_CHECKING:
    import pyarrow

# The columns every model fills come first, as files written before the mood head and the
# intervals have them; the MOOD_FIELDS follow (empty for a model without them).
COLUMNS = ["path", "valence", "arousal", "duration", "windows", "warning", "error", *MOOD_FIELDS]
TIMELINE_COLUMNS = ["path", "kind", "start", "end", "valence", "arousal", "duration",
                    "windows", "warning", "error", *MOOD_FIELDS]
SONG, WINDOW = "song", "window"
ENCODING, ERRORS = "utf-8", "surrogateescape"
FORMATS = ("csv", "jsonl", "parquet")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
JOURNAL_SUFFIX = ".partial.jsonl"


def format_for(path: str | os.PathLike[str] | None, fmt: str | None = None) -> str:
    """``csv``, ``jsonl`` or ``parquet``: explicit ``fmt`` wins, else the file's extension
    (CSV when it says nothing)."""
    if fmt:
        return fmt
    name = str(path or "").lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "jsonl" if name.endswith(JSONL_SUFFIXES) else "csv"


def columns_for(fmt: str, timeline: bool) -> list[str]:
    """The CSV header :class:`RowWriter` writes (JSON Lines has no header: ``[]``)."""
    if fmt == "jsonl":
        return []
    return TIMELINE_COLUMNS if timeline else COLUMNS


def compatible_header(header: list[str], columns: list[str]) -> bool:
    """Whether rows of ``columns`` may be appended under ``header``: the same columns, or
    the same without the :data:`~music2emotion.prediction.MOOD_FIELDS` (a file written
    before them: its rows go on without them)."""
    return header == columns or header == [c for c in columns if c not in MOOD_FIELDS]


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
    """Read an earlier CSV or JSON Lines output back.

    Parameters
    ----------
    path : str or os.PathLike
        The output (a missing or empty file is an empty state).
    fmt : str, optional
        ``csv`` or ``jsonl`` (default: by the extension).
    repair : bool
        Cut off what a killed run left half-written at the end, so that appended rows
        follow complete ones.
    keep_rows : bool
        Also return the song rows.
    columns : list of str, optional
        The header this run will write: a CSV whose header differs (other than by lacking
        the mood columns, :func:`compatible_header`) raises before anything is changed,
        since appending would make it unreadable.

    Returns
    -------
    OutputState
        The header, the paths already done, the rows if asked for, the bytes cut off.

    Raises
    ------
    ValueError
        Other columns, or a JSON Lines file with a line that is not JSON before its end.
    """
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return OutputState()
    data = p.read_bytes()
    text = data.decode(ENCODING, ERRORS)
    scan = _scan_jsonl if format_for(p, fmt) == "jsonl" else _scan_csv
    state, good_end = scan(text, keep_rows)
    if columns and state.columns and not compatible_header(state.columns, columns):
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


class RowWriter:
    """Appends each :class:`Prediction` as rows (see the module docstring for the layout),
    one write and one flush per file."""

    def __init__(
        self,
        stream: IO[str],
        fmt: str = "csv",
        scale: Scale = "unit",
        timeline: bool = False,
        header: bool = True,
        columns: list[str] | None = None,
    ):
        self.stream, self.fmt, self.scale, self.timeline = stream, fmt, scale, timeline
        # an existing file's header when appending to it (other columns are left out)
        self.columns = columns or columns_for(fmt, timeline)
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
                row["timeline"] = [seg.row(self.scale) for seg in pred.timeline]
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


# --- Parquet ------------------------------------------------------------------------------


def _parquet_schema() -> pyarrow.Schema:
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("valence", pa.float64()), ("arousal", pa.float64()),
                      ("duration", pa.float64()), ("windows", pa.int64()),
                      ("warning", pa.string()), ("error", pa.string()), ("mood", pa.string()),
                      *((c, pa.float64()) for c in (*MOOD_COLUMNS, *INTERVAL_COLUMNS))])


def _with_schema(table: pyarrow.Table, schema: pyarrow.Schema) -> pyarrow.Table:
    """``table`` in ``schema``'s columns and types; columns it lacks (a file written before
    the mood columns) are null."""
    import pyarrow as pa

    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def journal_path(output: str | os.PathLike[str]) -> Path:
    """Where a Parquet output's rows wait until the run ends."""
    return Path(str(output) + JOURNAL_SUFFIX)


def finish_parquet(output: str | os.PathLike[str], keep_existing: bool) -> int:
    """Write the journal's rows (after the rows already in ``output`` when
    ``keep_existing``) to ``output`` as Parquet, atomically, and drop the journal.
    Returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out, journal = Path(output), journal_path(output)
    schema = _parquet_schema()
    tables = []
    if keep_existing and out.exists():
        tables.append(_with_schema(pq.read_table(out), schema))
    if journal.exists():
        read_output(journal, "jsonl")  # cuts off a last line a killed run left half-written
        with journal.open(encoding=ENCODING, errors=ERRORS) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        tables.append(pa.Table.from_pylist(rows, schema=schema))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    journal.unlink(missing_ok=True)
    return table.num_rows


def song_rows(path: str | os.PathLike[str], fmt: str | None = None) -> list[dict[str, Any]]:
    """Every file's row in an output, of any format (CSV values stay strings).

    Parameters
    ----------
    path : str or os.PathLike
        A CSV, JSON Lines or Parquet output.
    fmt : str, optional
        Its format (default: by the extension).

    Returns
    -------
    list of dict
        One per file, complete rows only; nothing is repaired.
    """
    if format_for(path, fmt) == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist() if Path(path).exists() else []
    return read_output(path, fmt, repair=False, keep_rows=True).rows


def _parquet_done(output: str | os.PathLike[str]) -> set[str]:
    import pyarrow.parquet as pq

    done = read_output(journal_path(output), "jsonl").done
    if Path(output).exists():
        try:
            done |= {str(p) for p in pq.read_table(output, columns=["path"]).column("path").to_pylist()}
        except Exception as exc:  # pyarrow's ArrowInvalid and kin
            raise ValueError(f"{output}: not a readable Parquet file ({exc})") from exc
    return done


# --- a run's output -----------------------------------------------------------------------


class Output:
    """Where a run's rows go, file by file, for every engine.

    Parameters
    ----------
    path : str or os.PathLike
        The output file: CSV, JSON Lines or Parquet (see :func:`format_for`).
    fmt : str, optional
        ``csv``, ``jsonl`` or ``parquet``, overriding the extension.
    scale : {"unit", "deam"}
        The scale of the values written.
    timeline : bool
        Also write each window's values (CSV and JSON Lines only).
    resume : bool
        Keep what an earlier run wrote (cutting off what a killed one left half-written)
        and append; :attr:`done` then holds the paths already there.

    Raises
    ------
    ValueError
        Options that do not go together, Parquet without pyarrow, or an earlier output
        that cannot be resumed (other columns, unreadable).
    """

    def __init__(self, path: str | os.PathLike[str], *, fmt: str | None = None,
                 scale: Scale = "unit", timeline: bool = False, resume: bool = False):
        self.path, self.resume = Path(path), resume
        self.fmt = format_for(path, fmt)
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown output format {self.fmt!r}; choose from {', '.join(FORMATS)}")
        if format_for(path) == "parquet" and self.fmt != "parquet":
            raise ValueError(f"{path}: a Parquet file name for {self.fmt} rows; name the file "
                             f"after its format")
        self.parquet = self.fmt == "parquet"
        if self.parquet:
            if timeline:
                raise ValueError("a timeline cannot be written to Parquet; use CSV or JSON Lines")
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError as exc:
                raise ValueError("Parquet output needs pyarrow: pip install pyarrow "
                                 "(the 'distributed' extra has it)") from exc
        self._target = journal_path(path) if self.parquet else self.path
        self._row_fmt = "jsonl" if self.parquet else self.fmt
        self.scale, self.timeline = scale, timeline
        self.done: set[str] = set()
        # resuming a CSV: append under its header (it may predate the mood columns)
        self._columns: list[str] | None = None
        if resume and not self.parquet:
            state = read_output(self._target, self._row_fmt,
                                columns=columns_for(self._row_fmt, timeline))
            self.done, self._columns = state.done, state.columns or None
        elif resume:
            self.done = _parquet_done(path)
        self._stream: IO[str] | None = None
        self._writer: RowWriter | None = None

    def open(self) -> Output:
        """Create (or, resuming, append to) the file; :meth:`write` does it when needed."""
        if self._stream is None:
            self._stream, header = open_output(self._target, self.resume)
            self._writer = RowWriter(self._stream, self._row_fmt, self.scale, self.timeline, header,
                                     None if header else self._columns)
        return self

    def write(self, pred: Prediction) -> None:
        """Append one file's rows, in one write, flushed."""
        self.open()
        assert self._writer is not None
        self._writer.write(pred)

    def close(self, complete: bool = True) -> None:
        """Close the file; a complete Parquet run becomes its Parquet file."""
        self.open()  # a run with nothing to write still leaves its (resumed) output
        assert self._stream is not None
        if not self._stream.closed:
            self._stream.close()
            if self.parquet and complete:
                finish_parquet(self.path, keep_existing=self.resume)

    def __enter__(self) -> Output:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # a run that stopped on an error keeps a Parquet journal for --resume
        self.close(complete=exc_type is None)
