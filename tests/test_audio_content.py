"""Decoding by content: a file's bytes choose its decoder, never its name, so a mislabelled
file gives the samples, and the prediction, of the correctly named one; junk before an
MP3's first frame, an MP3 cut at the head, what the first bytes of each format say, and what
each container's bytes say of where it should end (the evidence the one policy on missing
audio goes by)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import cut, damage, music, mutate, write, write_av, write_damage_source, write_m4a, write_music_as
from music2emotion import EmotionModel
from music2emotion.audio import AudioError, Ending, load_audio, stream_audio
from music2emotion.audio.content import (
    ADTS,
    AIFF,
    FLAC,
    MATROSKA,
    MP4,
    MPEG,
    OGG,
    WAV,
    FileView,
    flac_last_frame_cut,
    mp4_ending,
    ogg_scan,
    pcm_ending,
    sniff,
)
from music2emotion.audio.mpeg import last_frame_cut, length_header, tlen_seconds

pytest.importorskip("av")

SECONDS = 6.0


@pytest.fixture(scope="module")
def fast() -> EmotionModel:
    return EmotionModel("fast", threads=1)


@pytest.mark.slow  # twelve pairs through the fast model
@pytest.mark.parametrize("name, wrong", [
    ("aac.m4a", ".mp3"), ("mp3.mp3", ".m4a"), ("flac.flac", ".ogg"), ("vorbis.ogg", ".wav"),
    ("opus.webm", ".mp3"), ("raw.aac", ".mp3"), ("pcm.wav", ".flac"), ("flac.mkv", ".m4a"),
    ("mp3.mp3", ""), ("aac.m4a", ""), ("opus.opus", ".webm"), ("wma.wma", ".mp3"),
])
def test_a_mislabelled_file_predicts_what_the_correctly_named_one_does(tmp_path, fast, name, wrong):
    right = write_music_as(tmp_path / name, SECONDS)
    mislabelled = tmp_path / f"mislabelled{wrong}"
    shutil.copy(right, mislabelled)
    a, b = load_audio(right), load_audio(mislabelled)
    assert a.shape == b.shape and np.array_equal(a, b)
    pa, pb = fast.predict_file(right), fast.predict_file(mislabelled)
    assert pa.ok and pb.ok, pb.error
    assert abs(pa.valence - pb.valence) <= 1e-6 and abs(pa.arousal - pb.arousal) <= 1e-6
    # the same warning (helpers.music is heard as noise, not music), and no damage
    assert pb.warning == pa.warning and "damaged" not in pb.warning


def test_aac_named_mp3_is_never_taken_for_mpeg_audio(tmp_path):
    """Given a name ending in .mp3, libsndfile lets its MP3 decoder try any content it does
    not recognise; on 0.3.0 this loop of short clips (mono AAC in MP4 and raw) gave 47 errors
    in 120 ("truncated: the audio stops at 0.1 s ...", "Unspecified internal error")."""
    for seed in range(40, 52):
        y = music(2.6 + seed % 5, 44_100, seed=seed)
        for made in (write_m4a(tmp_path / f"{seed}.m4a", y, 44_100), write_av(tmp_path / f"{seed}.aac", y)):
            named = made.with_suffix(".mp3")
            shutil.copy(made, named)
            assert np.array_equal(load_audio(named), load_audio(made)), named


def test_mp3_with_junk_before_its_first_frame_reads_like_the_clean_file(tmp_path):
    clean = write(tmp_path / "clean.mp3", music(6.0)[:, 0])
    # bytes of 0x00 and 0xFF hold many false frame headers: libsndfile alone gave up on it
    junk = np.random.default_rng(0).choice([0, 255], 5000).astype(np.uint8).tobytes()
    dirty = tmp_path / "dirty.mp3"
    dirty.write_bytes(junk + clean.read_bytes())
    a, b = load_audio(clean), load_audio(dirty)
    assert a.shape == b.shape and np.array_equal(a, b)


def test_an_mp3_cut_at_the_head_gives_all_the_audio_that_remains(tmp_path):
    """Its first frame, which states the length, is gone: libsndfile would estimate the
    length from a later frame and stop there (9.5 s of the 15 s left); FFmpeg reads on."""
    whole = write(tmp_path / "whole.mp3", music(30.0, 44_100, 2), 44_100)
    assert length_header(whole) == (True, True)
    for head, left in ((0.5, 15.0), (0.05, 28.5)):
        headless = cut(whole, tmp_path / f"headless{head}.mp3", head=head)
        assert length_header(headless, 0)[0] is False
        assert len(load_audio(headless)) / 22_050 == pytest.approx(left, abs=0.5)


def test_text_named_like_audio_is_refused_by_both_decoders(tmp_path):
    text = tmp_path / "notes.m4a"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(AudioError, match=r"^not a supported audio format \(neither libsndfile nor FFmpeg"):
        load_audio(text)


@pytest.mark.parametrize("name, content", [
    ("a.mp3", MPEG), ("a.m4a", MP4), ("a.flac", FLAC), ("a.ogg", OGG), ("a.opus", OGG),
    ("a.webm", MATROSKA), ("a.mkv", MATROSKA), ("a.aac", ADTS), ("a.wav", WAV),
])
def test_the_first_bytes_tell_the_content(tmp_path, name, content):
    path = write_music_as(tmp_path / name, 2.0)
    assert sniff(path) is content
    tagged = tmp_path / ("tagged" + path.suffix)  # an ID3v2 tag in front changes nothing
    tagged.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + path.read_bytes())
    assert sniff(tagged) is content


def test_text_and_cut_heads_tell_nothing(tmp_path):
    text = tmp_path / "x"
    text.write_text("hello " * 100)
    assert sniff(text) is None
    assert sniff(cut(write_music_as(tmp_path / "a.m4a", SECONDS), tmp_path / "cut", head=0.3)) is None


def test_a_damaged_ogg_page_is_found_and_a_cut_last_page_is_not_damage(tmp_path):
    whole = write_music_as(tmp_path / "a.ogg", 20.0)
    def ogg_damaged(path):
        scan = ogg_scan(path)
        return bool(scan.damaged or scan.gaps)

    assert not ogg_damaged(whole)
    assert ogg_damaged(damage(whole, tmp_path / "damaged.ogg"))
    assert not ogg_damaged(cut(whole, tmp_path / "cut.ogg", tail=0.3))
    tagged = tmp_path / "tagged.ogg"  # tagging tools put an ID3v2 tag in front of any format
    tagged.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + whole.read_bytes())
    assert not ogg_damaged(tagged)
    assert ogg_damaged(damage(tagged, tmp_path / "tagged_damaged.ogg"))


def test_an_ogg_scan_tells_damaged_pages_stretches_that_are_none_and_a_cut_end(tmp_path):
    whole = write_music_as(tmp_path / "a.opus", 20.0)
    scan = ogg_scan(whole)
    assert scan.pages > 10 and not scan.damaged and not scan.gaps and not scan.cut
    flipped = tmp_path / "flip.opus"
    flipped.write_bytes(mutate(whole.read_bytes(), "flip"))
    f = ogg_scan(flipped)
    # bits flipped all over: most pages fail their checksum, and are kept, headers included
    assert len(f.damaged) > scan.pages / 2 and f.kept > 0.5 and f.headers
    zeroed = tmp_path / "zero.opus"
    zeroed.write_bytes(mutate(whole.read_bytes(), "zero"))
    z = ogg_scan(zeroed)
    # a zeroed stretch is no page at all: left out, and the pages around it are skipped
    assert len(z.gaps) == 1 and z.kept == 0 and not z.cut
    assert ogg_scan(cut(whole, tmp_path / "cut.opus", tail=0.3)).cut


def test_a_file_view_leaves_out_gaps_and_mends_bytes(tmp_path):
    path = tmp_path / "bytes"
    path.write_bytes(bytes(range(100)))
    view = FileView(path, 10, {20: b"\xff\xff", 61: b"\xee"}, [(30, 60)])
    assert view.read() == bytes(range(10, 20)) + b"\xff\xff" + bytes(range(22, 30)) + bytes([60, 0xEE]) + \
        bytes(range(62, 100))
    view.seek(19)
    assert view.read(3) == bytes([29, 60, 0xEE])
    assert view.seek(0, 2) == 20 + 40  # bytes 10-30 and 60-100
    view.close()


@pytest.mark.parametrize("name, content", [("a.wav", WAV), ("a.aiff", AIFF)])
def test_a_pcm_header_states_the_length_a_cut_file_should_have(tmp_path, name, content):
    whole = write_music_as(tmp_path / name, 4.0)
    assert pcm_ending(whole, content) == Ending()
    ending = pcm_ending(cut(whole, tmp_path / ("cut" + name), tail=0.5), content)
    assert ending.cut and ending.seconds == pytest.approx(4.0, abs=1e-3)


def test_mp4_boxes_tell_a_cut_file_from_a_whole_one(tmp_path):
    whole = write_damage_source(tmp_path / "faststart.m4a", 4.0)
    assert mp4_ending(whole) == Ending(complete=True)
    assert mp4_ending(cut(whole, tmp_path / "cut.m4a", tail=0.3)) == Ending(cut=True)
    for tail in (b"\x00" * 5, b"not a box, but bytes added after the boxes"):  # none missing
        padded = tmp_path / "padded.m4a"
        padded.write_bytes(whole.read_bytes() + tail)
        assert mp4_ending(padded) == Ending(complete=True)


@pytest.mark.parametrize("name", ["song.flac", "song.mp3", "noxing.mp3", "song.aac"])
def test_the_last_frame_tells_a_cut_file(tmp_path, name):
    whole = write_damage_source(tmp_path / name, 6.0)
    cut_at = {"song.flac": flac_last_frame_cut, "song.aac": lambda p: last_frame_cut(p, adts=True)}.get(
        name, last_frame_cut)
    assert not cut_at(whole)
    for point in ("cut50", "cut90", "cut99"):
        broken = tmp_path / f"{point}-{name}"
        broken.write_bytes(mutate(whole.read_bytes(), point))
        assert cut_at(broken), point


def test_an_id3_tlen_states_the_length_of_an_mp3_without_a_xing_header(tmp_path):
    whole = write_damage_source(tmp_path / "noxing.mp3", 6.0)
    assert length_header(whole) == (False, False) and tlen_seconds(whole) is None
    data = whole.read_bytes()
    frame = b"TLEN" + (6).to_bytes(4, "big") + b"\x00\x00" + b"\x006000\x00"
    tag = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame
    start = 10 + int.from_bytes(data[6:10], "big")  # past the tag PyAV's muxer wrote (syncsafe, small)
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(tag + data[start:])
    assert tlen_seconds(tagged) == 6.0
    halved = tmp_path / "halved.mp3"  # cut at a frame boundary: only TLEN tells
    halved.write_bytes(mutate(tagged.read_bytes(), "cut50"))
    blocks = stream_audio(halved)
    with pytest.raises(AudioError, match=r"^truncated: \d(\.\d+)? s of 6 s decoded \(\d\d % missing\)"):
        list(blocks)


def test_a_xing_frame_count_that_cannot_go_with_its_bytes_states_nothing(tmp_path):
    """One flipped bit in a 3 s file's Xing frame count declared 121 hours, and the file was
    refused as 100 % damaged; such a count is damage, and FFmpeg decodes the file."""
    whole = write(tmp_path / "whole.mp3", music(3.0, 44_100, 2), 44_100)
    data = bytearray(whole.read_bytes())
    at = data.find(b"Xing") if b"Xing" in data else data.find(b"Info")
    assert length_header(whole) == (True, True)
    data[at + 8] ^= 0x40  # the frame count's top byte
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(bytes(data))
    assert length_header(bad) == (False, False)
    assert len(load_audio(bad)) / 22_050 == pytest.approx(3.0, abs=0.1)
