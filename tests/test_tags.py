"""Emotion tags in every container: round trips, other tags kept, and the music itself
untouched to the last sample and the last audio byte; files that cannot take tags are left
exactly as they were."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("mutagen")

import mutagen  # noqa: E402
import mutagen.id3  # noqa: E402
from helpers import make_song  # noqa: E402

from music2emotion.collection import tags as tagmod  # noqa: E402
from music2emotion.collection.tags import (  # noqa: E402
    FIELD_AROUSAL,
    FIELD_MODEL,
    FIELD_VALENCE,
    FIELD_WARNING,
    BadTagValue,
    EmotionTags,
    TagError,
    describe_file,
    read_tags,
    remove_stale_temps,
    write_tags,
)

VALUES = EmotionTags(0.6235, 0.1875, "test-model (music2emotion 0.1.0, sha256 00000000)", "unit", "tender")
EXTENSIONS = [".mp3", ".flac", ".ogg", ".opus", ".wav", ".aiff", ".m4a", ".alac.m4a"]


# --- what "the audio" is, per container ---------------------------------------------------

def _id3v2_size(data: bytes) -> int:
    if data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | b
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _chunks(data: bytes, start: int, big_endian: bool) -> dict[bytes, bytes]:
    out, pos = {}, start
    fmt = ">I" if big_endian else "<I"
    while pos + 8 <= len(data):
        cid, (size,) = data[pos:pos + 4], struct.unpack(fmt, data[pos + 4:pos + 8])
        out[cid] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return out


def _mp4_atoms(data: bytes) -> dict[bytes, bytes]:
    out, pos = {}, 0
    while pos + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        out[name] = data[pos + header:pos + size]
        pos += size
    return out


def audio_bytes(path: Path) -> bytes:
    """The bytes that hold the music, without any tag: MP3 frames (between ID3v2 and
    ID3v1), FLAC frames (after the metadata blocks), the WAV ``data`` and AIFF ``SSND``
    chunks, the MP4 ``mdat`` atom. Ogg pages carry a sequence number that changes when the
    comment header grows, so Ogg is compared by decoded samples only."""
    data = path.read_bytes()
    name = path.name
    if name.endswith(".mp3"):
        body = data[_id3v2_size(data):]
        return body[:-128] if body[-128:-125] == b"TAG" else body
    if name.endswith(".flac"):
        pos, last = 4, False
        while not last:
            last, size = data[pos] & 0x80, int.from_bytes(data[pos + 1:pos + 4], "big")
            pos += 4 + size
        return data[pos:]
    if name.endswith(".wav"):
        return _chunks(data, 12, False)[b"data"]
    if name.endswith(".aiff"):
        return _chunks(data, 12, True)[b"SSND"]
    if name.endswith(".m4a"):
        return _mp4_atoms(data)[b"mdat"]
    raise ValueError(name)


def decoded(path: Path) -> np.ndarray:
    """Every sample, as the decoders give them (PyAV for MP4, libsndfile otherwise)."""
    if path.name.endswith(".m4a"):
        import av

        with av.open(str(path)) as f:
            return np.concatenate([fr.to_ndarray().ravel() for fr in f.decode(audio=0)])
    return sf.read(str(path), dtype="float32", always_2d=True)[0]


def name_song(path: Path, artist: str, title: str) -> None:
    """Give the file ordinary artist and title tags, as a tagger would."""
    f = mutagen.File(path, easy=True)
    if f.tags is None:
        f.add_tags()
    if isinstance(f.tags, mutagen.id3.ID3):  # WAV and AIFF have no "easy" ID3 wrapper
        f.tags.add(mutagen.id3.TPE1(encoding=3, text=[artist]))
        f.tags.add(mutagen.id3.TIT2(encoding=3, text=[title]))
    else:
        f.tags["artist"], f.tags["title"] = [artist], [title]
    f.save()


def song(tmp_path: Path, ext: str, seed: int = 0) -> Path:
    return make_song(tmp_path / f"song{ext}", seed=seed)


# --- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("ext", EXTENSIONS)
def test_write_read_round_trip_keeps_every_sample(tmp_path, ext):
    path = song(tmp_path, ext)
    name_song(path, "Schumann", "Träumerei")
    samples = decoded(path)
    raw = None if ext in (".ogg", ".opus") else audio_bytes(path)
    assert read_tags(path) is None
    write_tags(path, VALUES)
    assert read_tags(path) == VALUES
    np.testing.assert_array_equal(decoded(path), samples)
    if raw is not None:
        assert audio_bytes(path) == raw
    assert describe_file(path) == (pytest.approx(2.0, abs=0.06), "Schumann - Träumerei")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary copy left behind


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".m4a"])
def test_rewriting_replaces_the_fields(tmp_path, ext):
    path = song(tmp_path, ext)
    write_tags(path, VALUES)
    newer = EmotionTags(0.9, 0.8, "other (music2emotion 0.2.0, sha256 11111111)", "deam")
    write_tags(path, newer)
    stored = read_tags(path)
    assert (stored.valence, stored.arousal, stored.model, stored.scale) == (0.9, 0.8, newer.model, "deam")
    assert stored.mood == "tender"  # a MOOD written earlier stays unless a new one is given
    assert stored.unit() == pytest.approx(((0.9 - 1) / 8, (0.8 - 1) / 8))


def test_field_names_are_the_documented_ones(tmp_path):
    mp3, flac, m4a = song(tmp_path, ".mp3"), song(tmp_path, ".flac"), song(tmp_path, ".m4a")
    for p in (mp3, flac, m4a):
        write_tags(p, VALUES)
    id3 = mutagen.File(mp3).tags
    assert id3.getall(f"TXXX:{FIELD_VALENCE}")[0].text == ["0.6235"]
    assert id3.getall(f"TXXX:{FIELD_AROUSAL}")[0].text == ["0.1875"]
    assert id3.getall("TMOO")[0].text == ["tender"]  # ID3v2.4's mood frame
    assert mutagen.File(flac).tags[FIELD_MODEL] == [VALUES.model]
    assert bytes(mutagen.File(m4a).tags[f"----:com.apple.iTunes:{FIELD_VALENCE}"][0]) == b"0.6235"


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".m4a"])
def test_a_warning_is_stored_and_dropped_when_a_new_prediction_has_none(tmp_path, ext):
    path = song(tmp_path, ext)
    warned = EmotionTags(0.4, 0.6, VALUES.model, warning="not music: speech (no music heard in 92 % of the audio)")
    write_tags(path, warned)
    assert read_tags(path).warning == warned.warning and warned.fields()[FIELD_WARNING] == warned.warning
    write_tags(path, VALUES)
    assert read_tags(path).warning == "" and FIELD_WARNING not in VALUES.fields()


def test_id3v23_stays_v23(tmp_path):
    """Rewriting a v2.3 tag as v2.4 would hide its frames from v2.3-only players."""
    path = song(tmp_path, ".mp3")
    f = mutagen.File(path)
    f.add_tags()
    f.tags.add(mutagen.id3.TIT2(encoding=1, text=["Old"]))
    f.save(v2_version=3)
    write_tags(path, VALUES)
    tags = mutagen.id3.ID3(path)
    assert tags.version[:2] == (2, 3)
    assert tags.getall("TXXX:MOOD")[0].text == ["tender"]  # no TMOO frame in v2.3
    assert read_tags(path) == VALUES


# --- files that must be left alone ----------------------------------------------------------

def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), os.stat(path).st_mode


def test_read_only_file_is_refused_and_unchanged(tmp_path):
    path = song(tmp_path, ".flac")
    path.chmod(0o444)
    before = _snapshot(path)
    with pytest.raises(TagError, match="read-only"):
        write_tags(path, VALUES)
    assert _snapshot(path) == before


@pytest.mark.parametrize("name, content, reason", [
    ("noise.au", None, "cannot store tags"),             # libsndfile plays it, mutagen cannot tag it
    ("fake.mp3", b"definitely not an mp3" * 10, "unreadable"),
    ("empty.flac", b"", "unreadable"),
    ("cut.flac", "half", "unreadable"),
])
def test_unsupported_and_broken_files_are_refused_and_unchanged(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is None:
        sf.write(str(path), np.zeros(22_050, np.float32), 22_050, format="AU")
    elif content == "half":
        full = song(tmp_path, ".flac").read_bytes()
        path.write_bytes(full[:30])  # the header stops mid-block
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(TagError, match=reason):
        write_tags(path, VALUES)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_hard_linked_file_is_refused(tmp_path):
    path = song(tmp_path, ".mp3")
    os.link(path, tmp_path / "seed-copy.mp3")
    with pytest.raises(TagError, match="hard links"):
        write_tags(path, VALUES)
    assert read_tags(path) is None


def test_a_failed_save_leaves_the_original_and_no_temp(tmp_path, monkeypatch):
    path = song(tmp_path, ".flac")
    before = path.read_bytes()

    def full_disk(f, target):
        with open(target, "r+b") as out:
            out.truncate(100)  # what a write stopped by a full disk leaves
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tagmod, "_save", full_disk)
    with pytest.raises(TagError, match="no space left"):
        write_tags(path, VALUES)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*"))


def test_symlink_is_followed_and_kept(tmp_path):
    real = song(tmp_path, ".ogg")
    link = tmp_path / "link.ogg"
    link.symlink_to(real)
    write_tags(link, VALUES)
    assert link.is_symlink() and read_tags(real) == VALUES


def test_mode_and_extended_attributes_are_kept(tmp_path):
    path = song(tmp_path, ".wav")
    path.chmod(0o640)
    try:
        os.setxattr(path, "user.origin", b"ripped 2009")
    except (AttributeError, OSError):
        xattrs = False  # not Linux, or a file system without user attributes
    else:
        xattrs = True
    write_tags(path, VALUES)
    assert os.stat(path).st_mode & 0o777 == 0o640
    if xattrs:
        assert os.getxattr(path, "user.origin") == b"ripped 2009"


def test_stale_temp_of_a_killed_run_is_removed(tmp_path):
    path = song(tmp_path, ".mp3")
    dead = tmp_path / f".{path.name}.m2e-999999999.tmp"  # no such process
    live = tmp_path / f".{path.name}.m2e-{os.getppid()}.tmp"  # a running process's copy
    dead.write_bytes(b"half a song")
    live.write_bytes(b"being written")
    assert remove_stale_temps(path) == [dead]
    write_tags(path, VALUES)
    assert not dead.exists() and live.exists()


def test_garbage_in_our_fields_is_reported(tmp_path):
    path = song(tmp_path, ".flac")
    f = mutagen.File(path)
    f.tags[FIELD_VALENCE], f.tags[FIELD_AROUSAL] = ["high"], ["0.5"]
    f.save()
    with pytest.raises(BadTagValue, match="not a number"):
        read_tags(path)
    write_tags(path, VALUES)  # and overwritten
    assert read_tags(path) == VALUES
