"""The same songs in every format: do the predictions agree, and what does decoding cost?

    python bench/formats.py --clips /path/deam/audio /path/4q/audio [--n 5] [--model accurate]
    python bench/formats.py --memory [--minutes 60]

For ``--n`` clips of each folder, upsampled to 44.1 kHz stereo (soxr), PyAV's encoders make
WAV, FLAC, ALAC (M4A), AAC 256 kbit/s (M4A), Opus 128 kbit/s (WebM) and MP3 192 kbit/s
copies. Each copy is predicted with the model; the table gives the largest |difference| from
the WAV's prediction per format and axis (targets: lossless 1e-3, lossy 0.02). Then the CPU
seconds of decoding (``stream_audio``: decoding, mixing, resampling) per 10 s window of the
AAC copies against the MP3 copies of the same songs, measured in one run, as a ratio.

``--memory`` writes an hour-long AAC M4A and FLAC of the same generated audio and reads, in a
fresh process each, the peak resident set size of streaming each file through
``stream_audio`` whole (the decoding ``predict`` does).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 44_100
# extension, container, codec, bit rate: the copies of each song
COPIES = {
    "WAV": ("wav", "wav", "pcm_s16le", None),
    "FLAC": ("flac", "flac", "flac", None),
    "ALAC": ("alac.m4a", "mp4", "alac", None),
    "AAC 256k": ("m4a", "mp4", "aac", 256_000),
    "Opus 128k": ("webm", "webm", "libopus", 128_000),
    "MP3 192k": ("mp3", "mp3", "libmp3lame", 192_000),
}
LOSSLESS = {"WAV", "FLAC", "ALAC"}


def encode(path: Path, y: np.ndarray, rate: int, fmt: str, codec: str, bit_rate: int | None) -> Path:
    """``y`` ``[n, channels]`` float32 encoded by PyAV into ``path``."""
    import av

    layout = {1: "mono", 2: "stereo"}[y.shape[1]]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=48_000 if codec == "libopus" else rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        if codec == "libopus" and rate != 48_000:  # Opus runs at 48 kHz: resampled here, as an encoder would
            import soxr

            y = soxr.resample(y, rate, 48_000, quality="HQ").astype(np.float32)
            rate = 48_000
        # 16-bit where the codec takes it (ALAC: the same samples as the 16-bit WAV)
        offered = [f.name for f in stream.codec_context.codec.audio_formats]
        wanted = next((f for f in offered if f.rstrip("p") == "s16"), offered[0])
        step = stream.codec_context.frame_size or 4096
        packets = []
        for i in range(0, len(y), step):
            chunk = y[i : i + step]
            if wanted.rstrip("p") == "s16":
                chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            elif wanted.rstrip("p") == "s32":
                chunk = (np.clip(chunk.astype(np.float64), -1, 1) * (2**31 - 1)).astype(np.int32)
            data = chunk.T.copy() if wanted.endswith("p") else chunk.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=wanted, layout=layout)
            frame.sample_rate, frame.pts = rate, i
            packets += stream.encode(frame)
        for packet in [*packets, *stream.encode(None)]:
            out.mux(packet)
    return path


def song(path: str) -> np.ndarray:
    """A clip as 44.1 kHz stereo float32."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != RATE:
        y = soxr.resample(y, sr, RATE, quality="VHQ").astype(np.float32)
    return np.repeat(y, 2, axis=1) if y.shape[1] == 1 else y[:, :2]


def decode_cpu(paths: list[Path], repeats: int = 3) -> float:
    """CPU seconds to stream every file once, the best of ``repeats``."""
    from music2emotion.audio import stream_audio

    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for p in paths:
            for _block in stream_audio(p):
                pass
        best = min(best, time.process_time() - t0)
    return best


def parity(folders: list[str], n: int, model_name: str) -> None:
    from music2emotion import EmotionModel

    model = EmotionModel(model_name, threads=1)
    clips = [c for folder in folders for c in sorted(glob.glob(os.path.join(folder, "*.mp3")))[:n]]
    diffs: dict[str, list[tuple[float, float]]] = {name: [] for name in COPIES}
    made: dict[str, list[Path]] = {name: [] for name in COPIES}
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="m2e-formats-") as tmp:
        for k, clip in enumerate(clips):
            y = song(clip)
            seconds += len(y) / RATE
            values = {}
            for name, (ext, fmt, codec, bit_rate) in COPIES.items():
                p = encode(Path(tmp) / f"{k}.{ext}", y, RATE, fmt, codec, bit_rate)
                made[name].append(p)
                pred = model.predict_file(p)
                if not pred.ok:
                    sys.exit(f"{clip} as {name}: {pred.error}")
                values[name] = (pred.valence, pred.arousal)
            for name in COPIES:
                diffs[name].append(tuple(abs(a - b) for a, b in zip(values[name], values["WAV"])))
        print(f"{len(clips)} clips ({', '.join(folders)}), model {model_name}, 44.1 kHz stereo copies\n")
        print("| format | decoder | largest abs(valence diff) | largest abs(arousal diff) | target |")
        print("|---|---|---|---|---|")
        for name, rows in diffs.items():
            dv, da = (max(r[i] for r in rows) for i in (0, 1))
            target = 1e-3 if name in LOSSLESS else 0.02
            ok = "ok" if max(dv, da) <= target else "MISSED"
            decoder = "FFmpeg" if name in ("ALAC", "AAC 256k", "Opus 128k") else "libsndfile"
            print(f"| {name} | {decoder} | {dv:.5f} | {da:.5f} | {target:g} {ok} |")
        windows = seconds / model.settings.window_seconds
        aac, mp3 = decode_cpu(made["AAC 256k"]), decode_cpu(made["MP3 192k"])
        print(f"\ndecoding CPU per {model.settings.window_seconds:g} s window: AAC {1000 * aac / windows:.1f} ms, "
              f"MP3 {1000 * mp3 / windows:.1f} ms: AAC/MP3 = {aac / mp3:.2f}")


def _hwm_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ``ru_maxrss``, it does not carry
    the peak of the parent that forked it (which held the hour of audio it encoded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_child(path: str) -> None:
    from music2emotion.audio import stream_audio

    import av  # noqa: F401 - both children load both decoders before the baseline

    baseline = _hwm_mb()
    t0 = time.process_time()
    samples = sum(len(b) for b in stream_audio(path))
    peak = _hwm_mb()
    print(json.dumps({"baseline": baseline, "peak": peak, "samples": samples,
                      "cpu": time.process_time() - t0}))


def memory(minutes: float) -> None:
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="m2e-memory-") as tmp:
        rng = np.random.default_rng(0)
        minute = (0.1 * rng.standard_normal((RATE * 60, 2))).astype(np.float32)
        minute += 0.2 * np.sin(2 * np.pi * 220 * np.arange(RATE * 60) / RATE)[:, None].astype(np.float32)
        flac = Path(tmp) / "hour.flac"
        with sf.SoundFile(flac, "w", RATE, 2, format="FLAC", subtype="PCM_16") as f:
            for _ in range(int(minutes)):
                f.write(minute)
        m4a = encode(Path(tmp) / "hour.m4a", np.tile(minute, (int(minutes), 1)), RATE, "mp4", "aac", 256_000)
        print(f"| {minutes:g} min, 44.1 kHz stereo | size | peak RSS | baseline | decoding CPU |")
        print("|---|---|---|---|---|")
        for p in (flac, m4a):
            out = subprocess.run([sys.executable, __file__, "--child", str(p)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"| {p.suffix} | {p.stat().st_size / 2**20:.0f} MB | {r['peak']:.0f} MB | {r['baseline']:.0f} MB | "
                  f"{r['cpu']:.0f} s |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", nargs="+", help="folders of MP3 clips")
    ap.add_argument("--n", type=int, default=5, help="clips per folder (default 5)")
    ap.add_argument("--model", default="accurate")
    ap.add_argument("--memory", action="store_true", help="peak memory of an hour-long M4A and FLAC")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _peak_child(args.child)
    if args.clips:
        parity(args.clips, args.n, args.model)
    if args.memory:
        memory(args.minutes)
    if not (args.clips or args.memory):
        ap.error("give --clips FOLDERS and/or --memory")


if __name__ == "__main__":
    main()
