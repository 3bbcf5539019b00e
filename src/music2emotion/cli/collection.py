"""``tag``, ``read-tags`` and ``playlist``: the commands for a music collection, over
:mod:`music2emotion.collection` (tags in the files, moods, playlists).

Each returns the exit status: 0 when everything worked, 1 when some files failed; bad input
raises :class:`~music2emotion.cli.common.UsageError` (one line, status 2). mutagen (the
``tags`` extra) is imported only by the commands that need it, so the rest of the CLI runs
without it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..collection.moods import MOODS, OLD_WORDS, QUADRANT_MOODS, mood_word, parse_point, quadrant_word, to_unit_checked
from ..config import MOOD_COLUMNS, SCALES
from ..music import not_music_kind
from .common import UsageError, add_model, audio_files, check, load_model, no_audio_found, print_skipped

if TYPE_CHECKING:
    from music2emotion import EmotionModel, Prediction

    from ..collection.playlist import Song

PREDICTION_SUFFIXES = (".csv", ".jsonl", ".json", ".ndjson")
DEFAULT_LENGTH = 20


def _require_tags() -> None:
    try:
        import mutagen  # noqa: F401
    except ImportError as exc:
        raise UsageError("this command needs the 'tags' extra: pip install 'music2emotion[tags]'") from exc


def _include_not_music(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--include-not-music", action="store_true",
                   help=f"also {what} files whose prediction says 'not music' (no music heard in most of "
                        "the audio: speech, noise); left out by default")


def _not_music_note(kinds: Counter[str], left_out: str) -> str:
    """The summary line for the files left out as not music, by kind."""
    by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    return (f"{sum(kinds.values())} files {left_out}: not music, no music heard in most of their audio "
            f"({by_kind}); --include-not-music keeps them")


def _model_and_jobs(p: argparse.ArgumentParser) -> None:
    add_model(p)
    p.add_argument("--jobs", type=int, default=None, help="worker processes, one core each (default: all cores)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``tag``, ``read-tags`` and ``playlist`` to the main parser's subcommands."""
    p = sub.add_parser("tag", help="write valence and arousal into audio files' tags",
                       description="Predict and write MUSIC2EMOTION_VALENCE, _AROUSAL, _SCALE and _MODEL "
                                   "into each file's tags (docs/collection.md). Files already tagged by the "
                                   "same model are skipped, so a rerun resumes. The audio is never touched.")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--dry-run", action="store_true", help="predict and show what would be written; change no file")
    p.add_argument("--force", action="store_true", help="also redo files already tagged by this model")
    p.add_argument("--scale", choices=SCALES, default="unit", help="write 0-1 (default) or DEAM's 1-9 values")
    p.add_argument("--mood-tag", action="store_true",
                   help=f"also write a MOOD tag ({', '.join(QUADRANT_MOODS)}), replacing any MOOD the file has")
    _include_not_music(p, "tag")
    _model_and_jobs(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("read-tags", help="show the valence and arousal stored in audio files' tags")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--format", choices=["table", "csv", "jsonl"], default="table", help="output on stdout (default: table)")

    p = sub.add_parser(
        "playlist", help="make an M3U8 playlist by mood, nearness or a journey between moods",
        description="Songs come from prediction files (CSV/JSONL written by predict), from the tags of audio "
                    "files, or are predicted now (files without tags). Choose them by mood (--mood, the "
                    "songs most likely of it by a model's mood head), by region (--valence/--arousal), "
                    "by nearness (--near) or as a journey (--from/--to). Points: "
                    + ", ".join(f"{m.name} {m.point[0]:g},{m.point[1]:g}" for m in MOODS.values())
                    + "; a point is a mood or VALENCE,AROUSAL.")
    p.add_argument("sources", nargs="+", help="prediction CSV/JSONL files, audio files and/or folders")
    p.add_argument("-o", "--output", required=True, help="playlist to write (.m3u8)")
    p.add_argument("--mood", choices=[*QUADRANT_MOODS, *OLD_WORDS],
                   help="the songs most likely of this mood, most likely first (needs values from a model "
                        "with a mood head; --valence/--arousal narrow it)")
    p.add_argument("--valence", metavar="LO:HI", help="songs with valence in this range (either end may be left out)")
    p.add_argument("--arousal", metavar="LO:HI", help="songs with arousal in this range")
    p.add_argument("--near", metavar="POINT", help="the songs nearest this point")
    p.add_argument("--radius", type=float, help="with --near: only songs at most this far away")
    p.add_argument("--from", dest="start", metavar="POINT", help="a journey from this point ...")
    p.add_argument("--to", dest="end", metavar="POINT", help="... to this one, never stepping back along the axis that changes most")
    p.add_argument("--length", type=int, help=f"songs in the playlist (default {DEFAULT_LENGTH} for --near and "
                                              "journeys, every match for regions)")
    p.add_argument("--scale", choices=SCALES, default="unit",
                   help="scale of the numbers given here: 0-1 (default) or DEAM's 1-9")
    p.add_argument("--absolute", action="store_true", help="write absolute paths (default: relative to the playlist)")
    p.add_argument("--no-predict", action="store_true", help="leave out audio files without tags instead of predicting them")
    _include_not_music(p, "place")
    _model_and_jobs(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    for name, run in COMMANDS.items():
        sub.choices[name].set_defaults(run=run)

# --- shared pieces ------------------------------------------------------------------------------

def _predict(files: Sequence[Path], model: EmotionModel, jobs: int | None, progress: bool) -> Iterator[Prediction]:
    """Predictions for ``files`` as each finishes, with a progress bar on a terminal."""
    from tqdm import tqdm

    from music2emotion import predict_files
    from music2emotion.audio import quiet_decoder_messages

    if not files:
        return
    with quiet_decoder_messages():
        results = predict_files(files, model, jobs=jobs, ordered=False)
        show = progress and len(files) > 1 and sys.stderr.isatty()
        yield from tqdm(results, total=len(files), disable=not show, unit="file")


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    cells = [["" if r.get(c) is None else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _print(text: str) -> None:
    if hasattr(sys.stdout, "reconfigure"):
        # file names that are not UTF-8 are printed as their raw bytes, as ls does
        sys.stdout.reconfigure(errors="surrogateescape")
    print(text)


# --- tag ----------------------------------------------------------------------------------------

def cmd_tag(args: argparse.Namespace) -> int:
    _require_tags()
    from ..collection.tags import BadTagValue, EmotionTags, TagError, check_writable, model_id, read_tags, write_tags

    check(jobs=args.jobs)
    skipped: list[str] = []
    files = audio_files(args.paths, skipped)
    if not files:
        raise no_audio_found(args.paths, "; ".join(skipped))
    model = load_model(args.model)
    mid = model_id(model)
    rows: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    not_music: Counter[str] = Counter()

    def row(i: int, status: str, valence: float | None = None, arousal: float | None = None) -> None:
        # shown as written: 4 decimals
        shown = ["" if x is None else f"{x:.4f}" for x in (valence, arousal)]
        rows[i] = {"path": str(files[i]), "valence": shown[0], "arousal": shown[1], "status": status}
        if status.startswith("error: "):
            print(f"error: {files[i]}: {status[7:]}", file=sys.stderr)

    # what needs predicting: only files that can take tags and do not have this model's yet
    for i, f in enumerate(files):
        try:
            current = read_tags(f)
        except BadTagValue:
            current = None  # garbage in our fields: overwrite it
        except TagError as exc:
            row(i, f"error: {exc}")
            continue
        if (current and not args.force and current.model == mid and current.scale == args.scale
                and (current.mood or not args.mood_tag)):
            row(i, "up to date", current.valence, current.arousal)
            continue
        try:
            check_writable(f)
        except TagError as exc:
            row(i, f"error: {exc}")
            continue
        todo.append(i)
    index = {str(files[i]): i for i in todo}
    for pred in _predict([files[i] for i in todo], model, args.jobs, not args.no_progress):
        i = index[pred.path]
        if not pred.ok:
            row(i, f"error: {pred.error}")
            continue
        kind = not_music_kind(pred.warning)
        if kind and not args.include_not_music:
            not_music[kind] += 1
            row(i, f"skipped (not music: {kind})")
            continue
        values = pred.row(args.scale)
        probs = pred.probabilities
        # a model without a mood head: the quadrant of its values as rows write them
        unit = pred.row()
        mood = (values["mood"] or mood_word(unit["valence"], unit["arousal"])) if args.mood_tag else None
        tags = EmotionTags(values["valence"], values["arousal"], mid, args.scale, mood,
                           None if probs is None else tuple(values[c] for c in MOOD_COLUMNS),
                           deam_convention=args.scale == "deam" and pred.deam is not None, warning=pred.warning)
        if args.dry_run:
            row(i, "would tag" + (f" (mood {tags.mood})" if tags.mood else ""), tags.valence, tags.arousal)
            continue
        try:
            write_tags(files[i], tags)
        except TagError as exc:
            row(i, f"error: {exc}")
            continue
        row(i, "tagged" + (f" (mood {tags.mood})" if tags.mood else ""), tags.valence, tags.arousal)
        if pred.warning:
            print(f"warning: {pred.path}: {pred.warning}", file=sys.stderr)
    ordered = [rows[i] for i in sorted(rows)]
    _print(_table(ordered, ["path", "valence", "arousal", "status"]))
    counts: dict[str, int] = {}
    for r in ordered:
        key = r["status"].split(" (")[0].split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    print(f"{len(files)} files with model {mid}: "
          + ", ".join(f"{n} {k}" for k, n in counts.items()), file=sys.stderr)
    if not_music:
        print(f"note: {_not_music_note(not_music, 'not tagged')}", file=sys.stderr)
    print_skipped(skipped)
    return 1 if counts.get("error") else 0


# --- read-tags ----------------------------------------------------------------------------------

# the probabilities and the warning last, after the columns of files tagged before them
READ_COLUMNS = ["path", "valence", "arousal", "scale", "model", "mood", "error", *MOOD_COLUMNS, "warning"]


def cmd_read_tags(args: argparse.Namespace) -> int:
    _require_tags()
    from ..collection.tags import SCALE_TAGS, TagError, read_tags

    skipped: list[str] = []
    files = audio_files(args.paths, skipped)
    if not files:
        raise no_audio_found(args.paths, "; ".join(skipped))
    rows = []
    for f in files:
        row: dict[str, Any] = dict.fromkeys(READ_COLUMNS, "")
        row["path"] = str(f)
        try:
            stored = read_tags(f)
        except TagError as exc:
            row["error"] = str(exc)
            print(f"error: {f}: {exc}", file=sys.stderr)
        else:
            if stored is not None:
                row.update(valence=stored.valence, arousal=stored.arousal, scale=SCALE_TAGS[stored.scale],
                           model=stored.model, mood=stored.mood or "", warning=stored.warning)
                if stored.probabilities is not None:
                    row.update(zip(MOOD_COLUMNS, stored.probabilities))
        rows.append(row)
    if args.format == "csv":
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(errors="surrogateescape")
        w = csv.DictWriter(sys.stdout, fieldnames=READ_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    elif args.format == "jsonl":
        _print("\n".join(json.dumps({k: (v if v != "" else None) for k, v in r.items()}, ensure_ascii=False)
                         for r in rows))
    else:
        shown = [{**r, **{k: f"{r[k]:.4f}" for k in ("valence", "arousal", *MOOD_COLUMNS) if r[k] != ""},
                  "model": r["model"] or ("" if r["error"] or r["valence"] != "" else "(no emotion tags)")}
                 for r in rows]
        probabilities = list(MOOD_COLUMNS) if any(r[MOOD_COLUMNS[0]] != "" for r in rows) else []
        warning = ["warning"] if any(r["warning"] for r in rows) else []
        _print(_table(shown, ["path", "valence", "arousal", "scale", "mood", *probabilities, "model", *warning,
                              "error"]))
    print_skipped(skipped)
    return 1 if any(r["error"] for r in rows) else 0


# --- playlist -----------------------------------------------------------------------------------

def _range(text: str | None, scale: str, what: str) -> tuple[float, float]:
    if text is None:
        return 0.0, 1.0
    lo_text, sep, hi_text = text.partition(":")
    if not sep:
        raise UsageError(f"{what} {text!r}: give a range LO:HI, e.g. 0.6:1 or 0.6:")
    try:
        lo = to_unit_checked(float(lo_text), scale, text) if lo_text.strip() else 0.0
        hi = to_unit_checked(float(hi_text), scale, text) if hi_text.strip() else 1.0
    except ValueError as exc:
        raise UsageError(f"{what} {exc}" if "scale" in str(exc) else f"{what} {text!r}: not a number range") from None
    if lo > hi:
        raise UsageError(f"{what} {text!r}: the low end is above the high end")
    return lo, hi


def _point(text: str, scale: str, what: str) -> tuple[float, float]:
    try:
        return parse_point(text, scale)
    except ValueError as exc:
        raise UsageError(f"{what} {exc}") from None


def _selection(args: argparse.Namespace) -> Callable[[Sequence[Song]], list[Song]]:
    """What the options ask for, as a function from candidate songs to the playlist."""
    from ..collection.playlist import in_region, journey, most_likely, nearest

    region = args.valence or args.arousal
    modes = [name for name, given in (("--mood/--valence/--arousal", args.mood or region), ("--near", args.near),
                                      ("--from/--to", args.start or args.end)) if given]
    if not modes:
        raise UsageError("say which songs: --mood, --valence/--arousal, --near or --from/--to")
    if len(modes) > 1:
        raise UsageError(f"choose one of {' and '.join(modes)}")
    if args.length is not None and args.length < 1:
        raise UsageError("--length must be at least 1")
    if args.radius is not None and not args.near:
        raise UsageError("--radius goes with --near")
    if args.radius is not None and not args.radius > 0:
        raise UsageError("--radius must be positive")
    length = args.length
    valence, arousal = _range(args.valence, args.scale, "--valence"), _range(args.arousal, args.scale, "--arousal")
    if args.mood:
        mood = quadrant_word(args.mood)

        def by_mood(songs: Sequence[Song]) -> list[Song]:
            if not any(s.probabilities is not None for s in songs):
                raise UsageError(f"--mood needs mood probabilities, and none of the {len(songs)} songs has "
                                 "them (their model has no mood head); choose by --valence/--arousal instead")
            inside = in_region(songs, valence, arousal) if region else songs
            return most_likely(inside, mood, length)

        return by_mood
    if region:
        return lambda songs: in_region(songs, valence, arousal, length)
    if args.near:
        point = _point(args.near, args.scale, "--near")
        return lambda songs: nearest(songs, point, length or DEFAULT_LENGTH, args.radius)
    if not (args.start and args.end):
        raise UsageError("a journey needs both --from and --to")
    start, end = _point(args.start, args.scale, "--from"), _point(args.end, args.scale, "--to")
    if start == end:
        raise UsageError("--from and --to are the same point")
    return lambda songs: journey(songs, start, end, length or DEFAULT_LENGTH)


def _file_details(path: str, tags_available: bool) -> tuple[float | None, str | None]:
    """(length in seconds, "Artist - Title") from the file's own tags, when mutagen can tell."""
    if not tags_available:
        return None, None
    from ..collection.tags import describe_file

    return describe_file(path)


def _probabilities(row: dict[str, Any], path: Path) -> tuple[float, ...] | None:
    """A prediction row's quadrant probabilities; ``None`` when it has none (a model without
    a mood head, or a file written before them)."""
    if any(row.get(c) in (None, "") for c in MOOD_COLUMNS):
        return None
    try:
        return tuple(float(row[c]) for c in MOOD_COLUMNS)
    except (TypeError, ValueError):
        raise UsageError(f"{path}: {', '.join(MOOD_COLUMNS)} columns that are not numbers") from None


def _songs_from_predictions(path: Path, tags_available: bool) -> tuple[list[Song], int]:
    """Songs in a predict output file (CSV or JSON Lines, timeline or not), on the 0-1 scale
    whichever scale it was written on; and how many of its files no longer exist."""
    from music2emotion.output import format_for, read_output

    from ..collection.playlist import Song

    try:
        state = read_output(path, format_for(path), repair=False, keep_rows=True)
    except (ValueError, KeyError, OSError) as exc:
        raise UsageError(f"{path}: not a predictions file ({exc})") from None
    rows = [r for r in state.rows if not r.get("error") and r.get("valence") not in (None, "")]
    try:
        values = [(float(r["valence"]), float(r["arousal"])) for r in rows]
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path}: valence/arousal columns that are not numbers") from None
    # predict writes 0-1 unless --scale deam, whose ratings start at 1
    deam = any(v > 1 or a > 1 for v, a in values)
    songs, missing = [], 0
    for r, (v, a) in zip(rows, values):
        if not Path(r["path"]).is_file():
            missing += 1
            continue
        if deam:
            v, a = to_unit_checked(v, "deam", str(path)), to_unit_checked(a, "deam", str(path))
        duration, name = _file_details(r["path"], tags_available)
        if duration is None and r.get("duration") not in (None, ""):
            duration = float(r["duration"])
        songs.append(Song(str(r["path"]), v, a, duration, name, _probabilities(r, path), r.get("warning") or ""))
    return songs, missing


def cmd_playlist(args: argparse.Namespace) -> int:
    from ..collection.playlist import Song, write_m3u8

    select = _selection(args)
    check(jobs=args.jobs)
    tables = [Path(s) for s in args.sources if Path(s).suffix.lower() in PREDICTION_SUFFIXES]
    audio_sources = [s for s in args.sources if Path(s).suffix.lower() not in PREDICTION_SUFFIXES]
    for t in tables:
        if not t.is_file():
            raise UsageError(f"{t}: predictions file not found")
    try:
        import mutagen  # noqa: F401

        tags_available = True
    except ImportError:
        tags_available = False
    if audio_sources and not tags_available:
        _require_tags()
    songs: list[Song] = []
    notes: list[str] = []
    for t in tables:
        found, missing = _songs_from_predictions(t, tags_available)
        songs += found
        if missing:
            notes.append(f"files listed in {t} that no longer exist, left out: {missing}")
    failed = 0
    if audio_sources:
        from ..collection.tags import TagError, read_tags

        skipped: list[str] = []
        files = audio_files(audio_sources, skipped)
        if not files:
            raise no_audio_found(audio_sources, "; ".join(skipped))
        notes += skipped
        untagged, deam_only = [], 0
        for f in files:
            try:
                stored = read_tags(f)
            except TagError:
                stored = None
            if stored is None or stored.answer is None:  # DEAM's convention does not place a song
                untagged.append(f)
                deam_only += stored is not None
                continue
            v, a = stored.answer
            songs.append(Song(str(f), v, a, *_file_details(str(f), True), stored.probabilities, stored.warning))
        if deam_only:
            notes.append(f"{deam_only} files tagged in DEAM's convention alone count as untagged: "
                         "the plane and the words are the one answer's")
        if untagged and args.no_predict:
            notes.append(f"{len(untagged)} files without tags left out (--no-predict)")
        elif untagged:
            model = load_model(args.model)
            for pred in _predict(untagged, model, args.jobs, not args.no_progress):
                if not pred.ok:
                    failed += 1
                    print(f"error: {pred.path}: {pred.error}", file=sys.stderr)
                    continue
                probs = pred.probabilities
                songs.append(Song(pred.path, pred.valence, pred.arousal, *_file_details(pred.path, True),
                                  None if probs is None else tuple(probs.values()), pred.warning))
            notes.append(f"{len(untagged) - failed} of {len(files)} audio files predicted now (no tags)")
    # the same file from two sources counts once: the first source given wins
    seen: set[str] = set()
    unique = []
    for s in songs:
        key = str(Path(s.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(s)
    if not args.include_not_music:
        kinds = Counter(k for s in unique if (k := not_music_kind(s.warning)))
        if kinds:
            unique = [s for s in unique if not not_music_kind(s.warning)]
            notes.append(_not_music_note(kinds, "left out"))
    picked = select(unique)
    unrated = sum(s.probabilities is None for s in unique)
    if args.mood and unrated:
        notes.append(f"songs without mood probabilities (their model has no mood head), left out: {unrated}")
    if not picked:
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
        raise UsageError(f"none of the {len(unique)} songs fits; nothing written")
    out = write_m3u8(picked, args.output, args.absolute)
    shown = [{"path": s.path, "valence": f"{s.valence:.4f}", "arousal": f"{s.arousal:.4f}",
              **({c: f"{p:.4f}" for c, p in zip(MOOD_COLUMNS, s.probabilities)} if s.probabilities else {})}
             for s in picked]
    # with --mood, the probability the songs are ranked by
    _print(_table(shown, ["path", "valence", "arousal", *([f"p_{quadrant_word(args.mood)}"] if args.mood else [])]))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"wrote {out}: {len(picked)} of {len(unique)} songs", file=sys.stderr)
    if args.length and len(picked) < args.length:
        print(f"note: asked for {args.length} songs, {len(picked)} fit", file=sys.stderr)
    return 1 if failed else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tag": cmd_tag, "read-tags": cmd_read_tags, "playlist": cmd_playlist,
}
