"""The tests' one set of generated audio (tones, chords, clicks, noise, "music"; never real
recordings), and the small functions the worker-pool tests send to spawned processes.

Fixtures live in ``conftest.py``; this module holds plain functions the tests call with
their own arguments.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22_050
MAJOR = (261.6, 329.6, 392.0)
MINOR = (261.6, 311.1, 392.0)


def tone(freqs: tuple[float, ...] | float, seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A sine, or the mean of several (a chord)."""
    t = np.arange(int(seconds * sr)) / sr
    freqs = (freqs,) if np.isscalar(freqs) else freqs
    y = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    return (amp * y / len(freqs)).astype(np.float32)


def clicks(rate: float, seconds: float, sr: int = SR, amp: float = 0.8) -> np.ndarray:
    """A click train: ``rate`` short noise bursts per second."""
    y = np.zeros(int(seconds * sr), np.float32)
    burst = np.random.default_rng(0).standard_normal(int(0.01 * sr)).astype(np.float32) * amp
    for start in np.arange(0, seconds, 1.0 / rate):
        i = int(start * sr)
        y[i : i + len(burst)] += burst[: len(y) - i]
    return y


def noise(seconds: float, amp: float = 0.05, seed: int = 0, sr: int = SR) -> np.ndarray:
    """White noise."""
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def music(seconds: float, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Something with structure: a few drifting tones plus noise bursts, ``[n, channels]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    y = np.zeros_like(t)
    for k, f in enumerate(rng.uniform(110, 880, size=3)):
        y += np.sin(2 * np.pi * f * t * (1 + 0.01 * k * t)) / 3
    y += 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0.5)
    y = 0.3 * y / np.abs(y).max()
    out = np.stack([np.roll(y, 13 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


def write(path: str | os.PathLike[str], y: np.ndarray, sr: int = SR, **kwargs: object) -> Path:
    """Write audio; the format follows the extension (``.mp3`` needs libsndfile 1.1 or newer,
    which the soundfile wheels bundle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # bytes: soundfile cannot encode names that are not valid UTF-8 itself; 30 s at a time,
    # since libsndfile's Vorbis encoder crashed (SIGSEGV) on one write of a minute
    y = np.asarray(y)
    with sf.SoundFile(os.fsencode(path), "w", sr, 1 if y.ndim == 1 else y.shape[1], **kwargs) as f:
        for i in range(0, max(len(y), 1), 30 * sr):
            f.write(y[i : i + 30 * sr])
    return path


def write_music(path: str | os.PathLike[str], seconds: float, sr: int = SR, channels: int = 1,
                seed: int = 0, **kwargs: object) -> Path:
    """:func:`music` written to ``path``."""
    return write(path, music(seconds, sr, channels, seed), sr, **kwargs)


def audio_bytes(y: np.ndarray, sr: int = SR, fmt: str = "WAV") -> bytes:
    """Audio as the bytes of a file, for uploads."""
    import io

    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt)
    return buf.getvalue()


# soundfile's arguments per extension (libsndfile >= 1.1 writes MP3 too)
SOUNDFILE_FORMATS = {
    ".wav": {}, ".aiff": {}, ".flac": {}, ".ogg": {}, ".mp3": {},
    ".opus": {"format": "OGG", "subtype": "OPUS"},
}


# PyAV's (FFmpeg's) encoders by extension: the container and the codec a test file gets
AV_FORMATS = {
    ".m4a": ("mp4", "aac"), ".alac.m4a": ("mp4", "alac"), ".mp4": ("mp4", "aac"),
    ".webm": ("webm", "libopus"), ".mka": ("matroska", "libopus"), ".mkv": ("matroska", "flac"),
    ".wma": ("asf", "wmav2"), ".aac": ("adts", "aac"),
    ".opus": ("ogg", "libopus"), ".mp3": ("mp3", "libmp3lame"), ".flac": ("flac", "flac"),
    ".wav": ("wav", "pcm_s16le"),
}


def av_suffix(path: Path) -> str:
    return ".alac.m4a" if path.name.endswith(".alac.m4a") else path.suffix


def write_av(path: Path, y: np.ndarray, sr: int = 44_100, codec: str | None = None,
             container: str | None = None, bitrate: int | None = None,
             options: dict[str, str] | None = None) -> Path:
    """Audio ``[n]`` or ``[n, channels]`` encoded by PyAV's bundled FFmpeg (there is no ffmpeg
    program here, and libsndfile writes no MP4, WebM or WMA); the container and codec follow
    the extension (:data:`AV_FORMATS`) unless given, ``options`` go to the muxer. Opus is
    encoded at 48 kHz, as it must be."""
    import pytest

    av = pytest.importorskip("av")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt, default_codec = AV_FORMATS[av_suffix(path)]
    codec, fmt = codec or default_codec, container or fmt
    y = np.asarray(y, np.float32)
    y = y[:, None] if y.ndim == 1 else y
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[y.shape[1]]
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        if bitrate or codec == "wmav2":  # wmav2 has no default bitrate
            stream.bit_rate = bitrate or 128_000
        # 16-bit where the codec takes it (ALAC: the same samples as a 16-bit WAV)
        offered = [f.name for f in stream.codec_context.codec.audio_formats]
        wanted = next((f for f in offered if f.rstrip("p") == "s16"), offered[0])
        planar = wanted.endswith("p")
        kind = wanted.rstrip("p")
        step = stream.codec_context.frame_size or 1024
        packets = []
        for i in range(0, len(y), step):
            chunk = y[i : i + step]
            if kind == "s16":
                data = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            elif kind == "s32":
                data = (np.clip(chunk.astype(np.float64), -1, 1) * (2**31 - 1)).astype(np.int32)
            else:
                data = chunk
            data = data.T.copy() if planar else data.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format=wanted, layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            packets += stream.encode(frame)
        for packet in [*packets, *stream.encode(None)]:
            out.mux(packet)
    return path


def write_music_as(path: Path, seconds: float, channels: int = 2, seed: int = 0) -> Path:
    """:func:`music` in the format its extension names: soundfile writes what it can
    (:data:`SOUNDFILE_FORMATS`), PyAV the rest (:data:`AV_FORMATS`); Opus (also in WebM and
    Matroska) at 48 kHz, as it must be, everything else at 44.1 kHz."""
    path = Path(path)
    opus = path.suffix in (".opus", ".webm", ".mka")
    rate = 48_000 if opus else 44_100
    y = music(seconds, rate, channels, seed)
    if path.suffix in SOUNDFILE_FORMATS and not path.name.endswith(".alac.m4a"):
        return write(path, y, rate, **SOUNDFILE_FORMATS[path.suffix])
    return write_av(path, y, rate)


def write_m4a(path: Path, y: np.ndarray, sr: int = 44_100, codec: str = "aac") -> Path:
    """A real MP4 audio file (AAC or ALAC) made with PyAV's bundled FFmpeg."""
    return write_av(path, y, sr, codec, "mp4")


# PyAV's video encoder and container by extension, for video files with and without sound
VIDEO_FORMATS = {".mp4": ("mp4", "mpeg4"), ".mkv": ("matroska", "mpeg4"), ".mov": ("mov", "mpeg4"),
                 ".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx")}


def write_video(path: Path, seconds: float = 2.0, audio: np.ndarray | None = None, sr: int = 48_000,
                audio_codec: str = "aac") -> Path:
    """A small video (grey frames that brighten, 10 per second) made with PyAV, in the
    container its extension names (:data:`VIDEO_FORMATS`); with ``audio`` ``[n]`` or
    ``[n, channels]`` at ``sr`` as its second stream, else no sound at all."""
    import pytest

    av = pytest.importorskip("av")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt, video_codec = VIDEO_FORMATS[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(video_codec, rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = None
        if audio is not None:
            y = np.asarray(audio, np.float32)
            y = y[:, None] if y.ndim == 1 else y
            layout = {1: "mono", 2: "stereo"}[y.shape[1]]
            sound = out.add_stream(audio_codec, rate=sr, layout=layout)
        for i in range(int(seconds * 10)):
            grey = np.full((48, 64, 3), 40 + (2 * i) % 200, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(grey, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            step = sound.codec_context.frame_size or 1024
            for i in range(0, len(y), step):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[i : i + step].T), format="fltp",
                                                   layout=layout)
                frame.sample_rate, frame.pts = sr, i
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def damage(path: Path, out: Path, at: float = 1 / 3, size: int = 3000, seed: int = 0) -> Path:
    """A copy of ``path`` at ``out`` with ``size`` bytes, ``at`` this fraction of the file,
    overwritten by random bytes (seeded), as a bad sector or an interrupted copy leaves it."""
    data = bytearray(Path(path).read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    Path(out).write_bytes(bytes(data))
    return Path(out)


def cut(path: Path, out: Path, head: float = 0.0, tail: float = 0.0) -> Path:
    """A copy of ``path`` at ``out`` without the first ``head`` and the last ``tail`` of its
    bytes (fractions): a download that resumed at the wrong place, or stopped early."""
    data = Path(path).read_bytes()
    Path(out).write_bytes(data[int(len(data) * head) : len(data) - int(len(data) * tail)])
    return Path(out)


# --- the damage campaign ----------------------------------------------------------------------

# The containers the damage campaign mutates (the extension names each, as in
# write_music_as): an MP3 with a Xing header (libsndfile's LAME writes one) and one without
# (PyAV's), an M4A with its index (moov) last as FFmpeg writes it and one with it first.
DAMAGE_CONTAINERS = ("song.wav", "song.aiff", "song.flac", "song.mp3", "noxing.mp3", "song.ogg",
                     "song.opus", "song.m4a", "faststart.m4a", "song.webm", "song.aac")


def write_damage_source(path: Path, seconds: float, seed: int = 0) -> Path:
    """Stereo :func:`music` in the container its name says (:data:`DAMAGE_CONTAINERS`)."""
    path = Path(path)
    if path.name.endswith("noxing.mp3"):
        return write_av(path, music(seconds, 44_100, 2, seed), 44_100, options={"write_xing": "0"})
    if path.name.endswith("faststart.m4a"):
        return write_av(path, music(seconds, 44_100, 2, seed), 44_100, options={"movflags": "faststart"})
    return write_music_as(path, seconds, seed=seed)


# How the campaign damages a file: bits flipped all over it, stretches zeroed or written
# twice, its header overwritten, and cut at its head or at several points of its tail.
MUTATIONS = ("flip", "zero", "zero64", "dup", "header", "head", "cut10", "cut50", "cut90", "cut99")


def mutate(data: bytes, kind: str, seed: int = 0) -> bytes:
    """``data`` (a file's bytes) damaged as :data:`MUTATIONS` names, at seeded places:

    ``flip``: one bit flipped in 0.1 % of the bytes; ``zero``: a sixteenth of the bytes, at
    most 64 kB, zeroed, as a bad sector leaves it; ``zero64``: 64 kB zeroed (a quarter of a
    file under 256 kB); ``dup``: a stretch of 16 kB (a fiftieth of a smaller file) written
    twice, as a resumed copy leaves it; ``header``: bytes 8 to 72 overwritten by random
    ones; ``head``: the first tenth gone; ``cutN``: only the first N % kept, as an
    interrupted download leaves it.
    """
    rng = np.random.default_rng(seed)
    n = len(data)
    out = bytearray(data)
    if kind == "flip":
        where = rng.choice(n, max(1, n // 1000), replace=False)
        for i, bit in zip(where, rng.integers(0, 8, len(where))):
            out[i] ^= 1 << int(bit)
    elif kind in ("zero", "zero64"):
        size = min(64 * 1024, n // 16) if kind == "zero" else min(64 * 1024, n // 4)
        start = int(rng.integers(n // 4, max(n // 4 + 1, 3 * n // 4 - size)))
        out[start : start + size] = bytes(size)
    elif kind == "dup":
        size = min(16 * 1024, max(64, n // 50))
        start = int(rng.integers(n // 4, 3 * n // 4))
        out[start:start] = data[start : start + size]
    elif kind == "header":
        out[8:72] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    elif kind == "head":
        del out[: n // 10]
    elif kind.startswith("cut"):
        del out[n * int(kind[3:]) // 100 :]
    else:
        raise ValueError(kind)
    return bytes(out)


# Every reason a damaged file may get, by the name of its outcome: the one-line errors and
# warnings users are told of (README, docs/usage.md). A length is format_seconds' ("0.0929 s",
# "2.08 min", "1 h 30 min").
_S = r"(\d[\d.e+-]* (s|min)|\d+ h( \d+ min)?)"
_PAST = r"more than the 25 % a prediction may skip"
DOCUMENTED_ERRORS = {
    "truncated": rf"truncated: {_S} of {_S} decoded \(\d+ % missing\), {_PAST}"
                 rf"|truncated: \d+ % of the audio is missing \({_S} could not be decoded, {_S} cut off, of {_S}\), {_PAST}"
                 r"|truncated: the file stops before any of its audio \(it holds a header and no samples\)",
    "damaged": rf"damaged: \d+ % of the audio could not be decoded \({_S} of {_S}\), {_PAST}"
               rf"|damaged: \d+ % of the audio is missing \({_S} could not be decoded, {_S} cut off, of {_S}\), {_PAST}",
    "container unreadable": r"truncated or damaged [\w/ ()]+ file: FFmpeg cannot read it \(.+\)",
    "decoding failed": r"decoding failed after \d+\.\d s of audio: .+",
    "not audio": r"not a supported audio format \(neither libsndfile nor FFmpeg recognise it\)",
    "no audio data": r"no audio data \(the file holds a header but no samples\)",
    "invalid header": r"invalid header \((no sample rate or channels|implausible sample rate \d+ Hz)\)",
    "no decoder": r"no decoder for its audio \(an unknown codec, or a damaged header\)",
    "no audio stream": r"no audio stream \(the file holds only video or data\)",
    "too short": r"too short: \d+\.\d+ s of audio, at least \d+(\.\d+)? s needed",
    "invalid samples": r"invalid samples: the audio holds NaN or infinite values",
}
DOCUMENTED_WARNINGS = {
    "damaged": rf"damaged: {_S} of audio could not be decoded and was skipped \((at \d+\.\d s|in \d+ stretches, "
               rf"the first at \d+\.\d s|the decoder does not say where)\)(, and {_S} of audio was decoded from "
               rf"data that fails its checksum)?|damaged: {_S} of audio was decoded from data that fails its checksum",
    "truncated": rf"truncated: {_S} of {_S} decoded, the rest is missing"
                 rf"|truncated: {_S} decoded, then the file stops short \(it does not state its full length\)",
    "silent": r"silent: .+",
}


def outcome(error: str, warning: str) -> str:
    """What a row's ``error`` and ``warning`` say, by name: ``"clean"``, the warnings'
    names (``"damaged + truncated"``), ``"error: truncated"``, ...; ``"UNDOCUMENTED: ..."``
    for a reason outside :data:`DOCUMENTED_ERRORS` and :data:`DOCUMENTED_WARNINGS`."""
    import re

    if error:
        name = next((k for k, p in DOCUMENTED_ERRORS.items() if re.fullmatch(p, error)), None)
        return f"error: {name}" if name else f"UNDOCUMENTED: {error}"
    names = []
    for part in filter(None, warning.split("; ")):
        name = next((k for k, p in DOCUMENTED_WARNINGS.items() if re.fullmatch(p, part)), None)
        if name is None:
            return f"UNDOCUMENTED: {part}"
        names.append(name)
    return " + ".join(names) or "clean"


def make_library(root: Path) -> Path:
    """An album of formats only FFmpeg reads (AAC, ALAC, Opus in WebM), two broken M4A
    files, and the files that lie beside songs (covers, a cue sheet, a playlist, a rip log,
    macOS's ``.DS_Store`` and ``._`` files): 5 files a scan takes, 7 it skips."""
    album = root / "Artist" / "Album"
    write_m4a(album / "01 aac.m4a", music(3.0, 44_100)[:, 0])
    write_m4a(album / "02 alac.m4a", music(3.0, 44_100, seed=1)[:, 0], codec="alac")
    write_av(album / "03 opus.webm", music(3.0, 48_000, seed=2), 48_000)
    cut = write_m4a(album / "04 cut.m4a", music(3.0, 44_100)[:, 0])
    cut.write_bytes(cut.read_bytes()[:2000])
    (album / "05 corrupt.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(3000))
    for name in ("cover.jpg", "back.jpg", "album.cue", "album.m3u8", "rip.log", ".DS_Store", "._01 aac.m4a"):
        (album / name).write_bytes(b"\x00" * 10)
    return root


def make_song(path: Path, seconds: float = 2.0, seed: int = 0) -> Path:
    """A short song-like clip (a chord, clicks, a little noise) in the container its
    extension names; ``.m4a`` is AAC, ``.alac.m4a`` is ALAC."""
    rng = np.random.default_rng(seed)
    sr = 48_000 if path.suffix == ".opus" else SR
    y = tone((MAJOR, MINOR)[seed % 2], seconds, sr, amp=0.25) + clicks(2 + seed, seconds, sr, amp=0.2)
    y = np.clip(y + rng.normal(0, 0.01, len(y)).astype(np.float32), -1, 1)
    if path.suffix == ".m4a":
        return write_m4a(path, y, sr, "alac" if path.name.endswith(".alac.m4a") else "aac")
    return write(path, y, sr, **SOUNDFILE_FORMATS[path.suffix])


def long_silence_flac(path: str | os.PathLike[str], minutes: float = 60.0, sr: int = 8_000) -> Path:
    """Digital silence as FLAC: an hour is about 90 kB on disk, written in a third of a
    second, so a small upload can declare hours of audio."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    zeros = np.zeros(sr * 60, np.int16)
    whole, rest = divmod(int(round(minutes * 60 * sr)), len(zeros))
    with sf.SoundFile(path, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(whole):
            f.write(zeros)
        f.write(zeros[:rest])
    return path


def truncated_mp3(path: str | os.PathLike[str], seconds: float = 6.0, keep: float = 0.4) -> Path:
    """An MP3 cut to ``keep`` of its bytes, as a broken download leaves it."""
    path = Path(path)
    full = write_music(path.with_name(path.stem + "-full.mp3"), seconds)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_deam_like(root: Path, n: int = 48, seconds: float = 3.0, seed: int = 0,
                   valence_follows: str = "mode") -> tuple[Path, Path]:
    """A DEAM-layout folder whose labels follow the sound: arousal rises with click rate and
    loudness, valence with a major (vs minor) chord, or with ``valence_follows="energy"``
    with the energy too, as in DEAM's own ratings. Annotations copy DEAM's CSV quirks."""
    rng = np.random.default_rng(seed)
    audio = root / "audio"
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sid = i + 1
        major = i % 2 == 0
        energy = rng.uniform(0, 1)
        y = tone(MAJOR if major else MINOR, seconds, amp=0.2)
        y = y + clicks(1 + 15 * energy, seconds, amp=0.1 + 0.8 * energy)
        write(audio / f"{sid}.mp3" if i % 3 == 0 else audio / f"{sid}.wav", y)
        if valence_follows == "energy":
            valence = 1 + 8 * (0.2 + 0.6 * energy + rng.normal(0, 0.03))
        else:
            valence = 1 + 8 * ((0.75 if major else 0.25) + rng.normal(0, 0.03))
        arousal = 1 + 8 * (0.15 + 0.7 * energy)
        rows.append((sid, valence, arousal))
    with (ann / "static_annotations_averaged_songs_1_2000.csv").open("w") as f:
        f.write("song_id, valence_mean, valence_std, arousal_mean, arousal_std\n")
        for sid, v, a in rows[:-4]:
            f.write(f"{sid},{v:.2f},1.0,{a:.2f},1.1\n")
    with (ann / "static_annotations_averaged_songs_2000_2058.csv").open("w") as f:
        f.write("song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, "
                "valence_min_mean, valence_min_std, arousal_mean, arousal_std, arousal_max_mean, "
                "arousal_max_std, arousal_min_mean, arousal_min_std\n")
        for sid, v, a in rows[-4:]:
            f.write(f"{sid},{v:.2f},0.5,8.0,1.0,2.0,1.0,{a:.2f},0.6,7.0,1.0,2.0,1.0\n")
    return audio, ann


def make_quadrant_like(root: Path, per_quadrant: int = 8, seconds: float = 3.0, seed: int = 0) -> Path:
    """A 4Q-layout folder (``audio/``, ``labels.csv``) whose quadrants follow the sound:
    energetic songs are loud with fast clicks, calm ones quiet and sparse; happy (Q1) and
    tender (Q4) ones are major triads, angry (Q2) ones minor with a dissonant semitone cluster
    and noise, sad (Q3) ones minor. Two songs per artist. Returns the labels file."""
    rng = np.random.default_rng(seed)
    rows = ["song_id,quadrant,valence_high,arousal_high,artist,title,moods,genres"]
    for q in (1, 2, 3, 4):
        for k in range(per_quadrant):
            sid = f"Q{q}S{k:02d}"
            energetic, positive = q in (1, 2), q in (1, 4)
            root_hz = rng.uniform(180, 320)
            chord = [root_hz, root_hz * (2 ** (4 / 12) if positive else 2 ** (3 / 12)), root_hz * 1.5]
            if q == 2:
                chord += [root_hz * 2 ** (1 / 12), root_hz * 2 ** (6 / 12)]
            y = tone(tuple(chord), seconds, amp=0.4 if energetic else 0.06)
            y = y + clicks(rng.uniform(8, 12) if energetic else rng.uniform(0.5, 1.5), seconds,
                           amp=0.7 if energetic else 0.05)
            if q == 2:
                y = y + noise(seconds, amp=0.15, seed=int(rng.integers(1 << 30)))
            write(root / "audio" / f"{sid}.mp3", np.clip(y, -1, 1))
            rows.append(f"{sid},Q{q},{int(positive)},{int(energetic)},artist {q}-{k // 2},song {k},,")
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return labels


# --- processes -------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether a process is still running (a zombie awaiting its parent's wait() is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def square_or_die(x: int) -> int:
    """A task for the process-pool tests: item 3 kills its worker as a decoder crash would."""
    if x == 3:
        os._exit(70)
    return x * x


def failed_item(x: int, reason: str) -> int:
    return -1


def broken_initializer() -> None:
    raise RuntimeError("this worker cannot start")


def square_slowly(x: int) -> int:
    """A task for the early-stop test: every item after the first takes a minute."""
    if x:
        time.sleep(60)
    return x * x


def segfault(x: int) -> int:
    """A task for the process-pool tests: every item crashes its worker by SIGSEGV, as a
    broken native library would."""
    os.kill(os.getpid(), signal.SIGSEGV)
    return x


def square_or_segfault(x: int) -> int:
    """A task for the process-pool tests: item 3 crashes its worker by SIGSEGV, the rest work."""
    if x == 3:
        os.kill(os.getpid(), signal.SIGSEGV)
    return x * x


# Clips "whose moods follow the sound", one per quadrant of MOOD_CLASSES (happy, angry, sad,
# tender): the test mood model is fitted on them, so each should come out as its own mood.
MOOD_SOUNDS = ("happy", "angry", "sad", "tender")


def mood_clip(mood: str, seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A generated clip of one quadrant: ``happy`` a bright major chord with fast clicks,
    ``angry`` loud fast clicks over noise, ``sad`` a slow, quiet, low minor chord, ``tender``
    a soft, slow major chord high up; ``seed`` moves the pitch and the tempo a little."""
    rng = np.random.default_rng(seed)
    shift = float(rng.uniform(0.94, 1.06))
    rate = float(rng.uniform(0.9, 1.1))
    if mood == "happy":
        y = tone(tuple(2 * f * shift for f in MAJOR), seconds, sr, 0.3) + clicks(8 * rate, seconds, sr, 0.4)
    elif mood == "angry":
        y = clicks(12 * rate, seconds, sr, 0.9) + noise(seconds, 0.25, seed, sr)
    elif mood == "sad":
        y = tone(tuple(f * shift / 2 for f in MINOR), seconds, sr, 0.08) + clicks(1 * rate, seconds, sr, 0.05)
    elif mood == "tender":
        y = tone(tuple(f * shift for f in MAJOR), seconds, sr, 0.1) + clicks(1.5 * rate, seconds, sr, 0.03)
    else:
        raise ValueError(mood)
    return np.clip(y, -1, 1).astype(np.float32)


def _note(freq: float, seconds: float, sr: int, amp: float, harmonics: int = 8, decay: float = 3.0) -> np.ndarray:
    """A plucked harmonic tone: ``harmonics`` partials falling as 1/k^1.2, the higher ones
    dying away faster, with a 5 ms attack."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k**1.2 * np.exp(-decay * np.sqrt(k) * t)
            for k in range(1, harmonics + 1) if freq * k < sr / 2)
    return amp * y * np.minimum(1.0, t / 0.005)


def band(seconds: float, sr: int = SR, seed: int = 0, bpm: float = 120.0) -> np.ndarray:
    """What the AudioSet encoder hears as music (the other generators here it hears as sine
    waves, clicks or noise): chords of harmonic tones changing every bar (I-IV-V-vi), a
    bass, a melody of eighth notes and a kick, snare and hi-hat beat at ``bpm``. The bundled
    models' encoder gives it a Music logit of 0.4-2.2 on 3-10 s (seeds 0-2; real songs'
    median is 1.8, and the not-music threshold -1.0)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n + sr)
    beat = 60.0 / bpm
    root = 220.0 * 2 ** (rng.integers(0, 5) / 12)
    scale = (0, 2, 4, 5, 7, 9, 11, 12)
    t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) / sr) * np.exp(-t * 12)

    def add(x: np.ndarray, at: float) -> None:
        i = int(at * sr)
        y[i : i + len(x)] += x[: len(y) - i]

    for b in range(int(np.ceil(seconds / beat))):
        at, chord = b * beat, (0, 5, 7, 9)[(b // 4) % 4]
        if b % 4 == 0:
            for step in (0, 4, 7):
                add(_note(root * 2 ** ((chord + step) / 12), 4 * beat, sr, 0.12, decay=1.0), at)
            add(_note(root / 2 * 2 ** (chord / 12), 4 * beat, sr, 0.25, harmonics=5, decay=1.5), at)
        if b % 2 == 0:
            add(0.7 * kick, at)
        else:
            s = np.arange(int(0.18 * sr)) / sr
            add(0.4 * (0.6 * rng.standard_normal(len(s)) + 0.5 * np.sin(2 * np.pi * 190 * s)) * np.exp(-s * 25), at)
        for half, hat, tune in ((0.0, 0.25, 0.15), (0.5, 0.15, 0.12)):  # on the beat, and off it
            h = np.arange(int(0.04 * sr)) / sr
            add(hat * np.diff(rng.standard_normal(len(h) + 1)) * np.exp(-h * 90), at + half * beat)
            melody = 2 * root * 2 ** ((chord + scale[rng.integers(0, len(scale))]) / 12)
            add(_note(melody, beat / 2, sr, tune, decay=4.0), at + half * beat)
    y = y[:n]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)
