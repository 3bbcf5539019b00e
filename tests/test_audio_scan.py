"""Folder scans: what a walk takes as audio (video containers too), what it counts as left
out, and the same count for object-storage listings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from helpers import make_library, music, tone, write, write_av, write_video
from music2emotion.audio import SCAN_EXTENSIONS, VIDEO_EXTENSIONS, find_audio_files, scan_audio_files, skipped_kind
from music2emotion.cli import main
from music2emotion.config import AUDIO_EXTENSIONS


def test_find_audio_files_recurses_and_survives_symlink_loops(tmp_path):
    write(tmp_path / "a.wav", tone(440, 0.6))
    write(tmp_path / "sub" / "b.FLAC", tone(440, 0.6))
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    found = find_audio_files([tmp_path])
    assert [p.name for p in found] == ["a.wav", "b.FLAC"]
    # an explicitly named file is kept even with a foreign extension, so it gets reported
    assert find_audio_files([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]


def test_folder_scan_finds_m4a_and_webm_and_counts_what_it_skips(tmp_path):
    scan = scan_audio_files([make_library(tmp_path)])
    assert [p.name for p in scan.files] == ["01 aac.m4a", "02 alac.m4a", "03 opus.webm", "04 cut.m4a",
                                          "05 corrupt.m4a"]
    assert scan.summary() == ("skipped 7 files that are not audio "
                              "(2 .jpg, 1 .DS_Store, 1 ._*, 1 .cue, 1 .log, 1 .m3u8)")


def test_video_containers_are_scanned_as_audio_may_hide_in_them():
    assert {".mkv", ".mov", ".avi", ".m4v"} <= VIDEO_EXTENSIONS
    assert SCAN_EXTENSIONS == AUDIO_EXTENSIONS | VIDEO_EXTENSIONS
    for name in ("live.mkv", "clip.MOV", "song.mp4", "stream.webm", "old.avi"):
        assert skipped_kind(name) is None, name
    assert skipped_kind("cover.jpg") == ".jpg" and skipped_kind("._live.mkv") == "._*"


def test_a_folder_of_videos_gives_every_file_its_row(tmp_path, tiny_model):
    """A Matroska file of FLAC alone is predicted, a video with sound is, and a video without
    sound gets its one-line error instead of being skipped."""
    folder = tmp_path / "videos"
    write_av(folder / "flac only.mkv", music(4.0, 44_100), 44_100)
    write_video(folder / "with sound.mov", 4.0, music(4.0, 48_000, 2))
    write_video(folder / "silent film.mp4", 2.0)
    (folder / "poster.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    out = tmp_path / "rows.jsonl"
    code = main(["predict", str(folder), "--model", str(tiny_model), "--jobs", "1", "-o", str(out),
                 "--no-progress"])
    assert code == 1
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"flac only.mkv", "with sound.mov", "silent film.mp4"}
    for ok in ("flac only.mkv", "with sound.mov"):
        assert rows[ok]["error"] == "" and rows[ok]["duration"] == pytest.approx(4.0, abs=0.05), rows[ok]
    assert rows["silent film.mp4"]["error"] == "no audio stream (the file holds only video or data)"


def test_object_storage_listings_count_what_they_skip_as_local_scans_do(tmp_path):
    pytest.importorskip("pyarrow")
    from music2emotion import ray_engine
    from music2emotion.cli.predict import _input_files

    root = make_library(tmp_path / "bucket")
    local = scan_audio_files([root])
    skipped: Counter[str] = Counter()
    uris = ray_engine.expand_uris([root.as_uri()], skipped=skipped)
    assert [u.rsplit("/", 1)[1] for u in uris] == [p.name for p in local.files]
    assert skipped == local.skipped
    # the command's summary line counts the listing's and the folders' skips together
    lines: list[str] = []
    files = _input_files([root.as_uri(), str(root)], True, lines)
    assert len(files) == 2 * len(local.files)
    assert lines == ["skipped 14 files that are not audio (4 .jpg, 2 .DS_Store, 2 ._*, 2 .cue, 2 .log, 2 .m3u8)"]
