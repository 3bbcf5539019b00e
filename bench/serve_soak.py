"""Soak test of ``music2emotion serve``: good, hostile and stalled clients at once, for minutes.

    python bench/serve_soak.py [--seconds 180] [--model fast] [--workers 2] [--good 2]
                               [--hostile 2] [--stalled 4]

Starts ``music2emotion serve`` on 127.0.0.1 only (a free port, a token, a temp folder of its
own, timeouts of a few seconds). First it times a good client's 10 s song alone, then again
while two hostile clients each upload an hour of audio whose FLAC header hides its length:
nothing can refuse those before decoding, so each holds a worker until decoding passes
``--max-duration`` (422), the most one file can cost; the song must still find a worker.
Then, for ``--seconds``, it runs side by side:

- good clients, each posting a 10 s song with the token, one after another: every answer
  must be 200, and their latency is what the others must not spoil;
- hostile clients, each looping over requests the server must refuse, with the status it
  must answer: an hour of silence in a 90 kB FLAC (413 from its header), seven 19-minute
  files in one request (413), form fields streamed chunked without end (413), no token and
  a wrong one (401), another Host (400), a POST from another origin (403), a malformed body
  (400), GET on the upload route (405), and a client that uploads ten minutes of audio and
  hangs up half a second into its analysis (which must stop);
- stalled clients, each opening a connection and then sending part of the headers, or part
  of a body it promised in full, or nothing, and waiting to be dropped.

Every few seconds it samples the server's resident memory (with its worker processes), its
open file descriptors and the uploads in its temp folder. At the end it stops the clients,
sends SIGTERM and times the shutdown. Prints what each kind of client got, good clients'
latency (p50, p99, max), memory and descriptors at the start and the end, temp files left;
exits 1 if a good client got anything but 200, a hostile one got a status other than the
expected one (an hour-long upload of unknown length: 422), or a temp file is left.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from _serving import open_files, rss_mb, start_server, stop_server  # noqa: E402
from _songs import song_bytes  # noqa: E402

from music2emotion.server import TEMP_PREFIX  # noqa: E402

TOKEN = "soak-test-token"
BOUNDARY = "soakB"


def silence_flac(minutes: float, sr: int = 8_000) -> bytes:
    buf = io.BytesIO()
    zeros = np.zeros(sr * 60, np.int16)
    with sf.SoundFile(buf, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(int(minutes)):
            f.write(zeros)
    return buf.getvalue()


def hide_length(flac: bytes) -> bytes:
    """The same FLAC with STREAMINFO's sample count (and MD5) zeroed: "length unknown", as a
    stream's encoder writes it, so only decoding tells how long it is."""
    b = bytearray(flac)
    if b[:4] != b"fLaC" or b[4] & 0x7F != 0:
        raise ValueError("not a FLAC that starts with STREAMINFO")
    # STREAMINFO's bytes 10-17 pack rate (20 bits), channels (3), depth (5), samples (36)
    packed = int.from_bytes(b[18:26], "big") & ~((1 << 36) - 1)
    b[18:26] = packed.to_bytes(8, "big")
    b[26:42] = bytes(16)
    return bytes(b)


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, data in files:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: audio/flac\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


class Soak:
    def __init__(self, url: str, deadline: float):
        self.url, self.deadline = url, deadline
        self.netloc = url.split("//", 1)[1]
        self.good_latency: list[float] = []
        self.good_errors: list[str] = []
        self.refused: Counter[tuple[str, int]] = Counter()
        self.unexpected: list[str] = []
        self.dropped: Counter[str] = Counter()
        self.drop_seconds: list[float] = []
        self.song = song_bytes(10.0)
        self.hour = silence_flac(60)
        self.nineteen = silence_flac(19)
        self.ten = silence_flac(10)

    # ---- raw HTTP over asyncio streams ----

    async def raw(self, head: str, body: bytes = b"", *, hang_up_after: float | None = None,
                  timeout: float = 60.0) -> int:
        """Send a request as bytes, the body in pieces so that an early answer (a refusal
        before the body is read) stops the sending; the status of the answer (0: none)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", int(self.netloc.rsplit(":", 1)[1]))
        answer = asyncio.ensure_future(reader.readline())
        try:
            data = head.encode() + body
            for i in range(0, len(data), 16_384):
                if answer.done():
                    break
                writer.write(data[i : i + 16_384])
                await writer.drain()
                await asyncio.sleep(0)  # let the answer in, as an HTTP client watching for one does
            if hang_up_after is not None:
                await asyncio.sleep(hang_up_after)
                return -1
            line = await asyncio.wait_for(answer, timeout)
            return int(line.split()[1]) if line else 0
        except ConnectionError:
            # the server refused before reading everything and closed: its answer is in
            line = await asyncio.wait_for(answer, timeout)
            return int(line.split()[1]) if line else 0
        finally:
            answer.cancel()
            writer.close()

    def head(self, length: int | None, *, host: str | None = None, extra: str = "",
             method: str = "POST", token: str | None = TOKEN) -> str:
        size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return (f"{method} /api/predict HTTP/1.1\r\nHost: {host or self.netloc}\r\n{auth}{extra}"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{size}\r\n\r\n")

    # ---- clients ----

    async def good(self, i: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=120,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            while time.monotonic() < self.deadline:
                t0 = time.perf_counter()
                try:
                    r = await c.post("/api/predict", files={"f": (f"good{i}.wav", self.song, "audio/wav")})
                    if r.status_code != 200:
                        self.good_errors.append(f"HTTP {r.status_code}: {r.text[:160]}")
                except httpx.HTTPError as exc:
                    self.good_errors.append(f"{type(exc).__name__}: {exc}")
                self.good_latency.append(time.perf_counter() - t0)
                await asyncio.sleep(random.uniform(0.0, 0.5))

    async def hostile(self, i: int) -> None:
        fields = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n".encode()
                  + b"a" * 60_000 + b"\r\n")
        chunked = b"".join(f"{len(fields):x}\r\n".encode() + fields + b"\r\n" for _ in range(100))
        attacks = {
            "hour of silence": (413, lambda: self.raw(self.head(len(b := multipart([("hour.flac", self.hour)]))), b)),
            "2 h 13 min in one request": (413, lambda: self.raw(
                self.head(len(b := multipart([(f"{k}.flac", self.nineteen) for k in range(7)]))), b)),
            "chunked form fields": (413, lambda: self.raw(self.head(None), chunked)),
            "no token": (401, lambda: self.raw(self.head(len(b := multipart([("a.flac", self.ten)])),
                                                         token=None), b)),
            "wrong token": (401, lambda: self.raw(self.head(len(b := multipart([("a.flac", self.ten)])),
                                                            token="guess"), b)),
            "other host": (400, lambda: self.raw(self.head(10, host="evil.example"), b"0123456789")),
            "cross-origin POST": (403, lambda: self.raw(self.head(10, extra="Origin: http://evil.example\r\n"),
                                                        b"0123456789")),
            "malformed body": (400, lambda: self.raw(self.head(30), b"--soakB\r\nnot a part at all\r\n\r\n")),
            "GET the upload route": (405, lambda: self.raw(f"GET /api/predict HTTP/1.1\r\nHost: {self.netloc}\r\n"
                                                           f"Authorization: Bearer {TOKEN}\r\n\r\n")),
            "hang up mid-analysis": (-1, lambda: self.raw(self.head(len(b := multipart([("ten.flac", self.ten)]))), b,
                                                          hang_up_after=0.5)),
        }
        names = list(attacks)
        while time.monotonic() < self.deadline:
            name = random.choice(names)
            expected, attack = attacks[name]
            try:
                status = await attack()
            except (ConnectionError, asyncio.TimeoutError) as exc:
                status = 0 if expected != -1 else -1
                if expected != -1:
                    self.unexpected.append(f"{name}: {type(exc).__name__}")
            self.refused[name, status] += 1
            if status != expected:
                self.unexpected.append(f"{name}: {status} instead of {expected}")
            await asyncio.sleep(random.uniform(0.0, 0.3))

    async def stalled(self, i: int) -> None:
        kinds = ["half the headers", "a body that stops", "nothing at all"]
        while time.monotonic() < self.deadline:
            kind = kinds[(i + int(time.monotonic())) % len(kinds)]
            reader, writer = await asyncio.open_connection("127.0.0.1", int(self.netloc.rsplit(":", 1)[1]))
            if kind == "half the headers":
                writer.write(f"POST /api/predict HTTP/1.1\r\nHost: {self.netloc}\r\n".encode())
            elif kind == "a body that stops":
                writer.write(self.head(5_000_000).encode() + multipart([("big.flac", b"\0" * 200_000)])[:200_100])
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(reader.read(), 60)  # until the server closes
                self.dropped[kind] += 1
                self.drop_seconds.append(time.monotonic() - t0)
            except asyncio.TimeoutError:
                self.dropped[f"{kind}: not dropped within 60 s"] += 1
            finally:
                writer.close()


async def soak(url: str, seconds: float, good: int, hostile: int, stalled: int, server_pid: int,
               temp: Path, every: float) -> tuple[Soak, list[tuple[float, float, int, int]]]:
    s = Soak(url, time.monotonic() + seconds)
    samples: list[tuple[float, float, int, int]] = []
    t0 = time.monotonic()

    async def sample() -> None:
        while time.monotonic() < s.deadline:
            uploads = sum(1 for p in temp.iterdir() if p.name.startswith(TEMP_PREFIX))
            samples.append((time.monotonic() - t0, rss_mb(server_pid), open_files(server_pid), uploads))
            await asyncio.sleep(every)

    await asyncio.gather(sample(), *(s.good(i) for i in range(good)), *(s.hostile(i) for i in range(hostile)),
                         *(s.stalled(i) for i in range(stalled)))
    return s, samples


async def beside_hidden_hours(url: str, song: bytes, hour: bytes, rounds: int = 2
                               ) -> tuple[list[float], list[tuple[int, float]]]:
    """The song's latency, posted again and again while two clients each upload an hour of
    audio of unknown length; and what those two got (status, seconds)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=600) as c:
        async def hostile(k: int) -> tuple[int, float]:
            t0 = time.perf_counter()
            r = await c.post("/api/predict", files={"files": (f"hidden{k}.flac", hour, "audio/flac")})
            return r.status_code, time.perf_counter() - t0

        tasks = [asyncio.create_task(hostile(k)) for k in range(rounds)]
        await asyncio.sleep(1.0)  # both uploaded; one is being decoded, the other waits for it
        latency: list[float] = []
        while not all(t.done() for t in tasks):
            t0 = time.perf_counter()
            r = await c.post("/api/predict", files={"f": ("beside.wav", song, "audio/wav")})
            r.raise_for_status()
            latency.append(time.perf_counter() - t0)
        return latency, list(await asyncio.gather(*tasks))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--good", type=int, default=2)
    ap.add_argument("--hostile", type=int, default=2)
    ap.add_argument("--stalled", type=int, default=4)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="m2e-soak-") as tmp:
        temp = Path(tmp)
        env = {**os.environ, "TMPDIR": tmp, "MUSIC2EMOTION_TOKEN": TOKEN}
        server, url = start_server(["--model", args.model, "--workers", str(args.workers), "--header-timeout", "3",
                                    "--idle-timeout", "3", "--body-timeout", "20"], env=env)
        try:
            # a good client alone first: the latency the others must not spoil
            alone = []
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
                song = song_bytes(10.0)
                for _ in range(5):
                    t0 = time.perf_counter()
                    c.post("/api/predict", files={"f": ("alone.wav", song, "audio/wav")}).raise_for_status()
                    alone.append(time.perf_counter() - t0)
            load_beside = os.getloadavg()[0]
            beside, hidden = asyncio.run(beside_hidden_hours(url, song, hide_length(silence_flac(60))))
            load_before = os.getloadavg()[0]
            s, samples = asyncio.run(soak(url, args.seconds, args.good, args.hostile, args.stalled,
                                          server.pid, temp, args.every))
            time.sleep(4)  # the last stalled connections are dropped
            end = (rss_mb(server.pid), open_files(server.pid),
                   sum(1 for p in temp.iterdir() if p.name.startswith(TEMP_PREFIX)))
            load_after = os.getloadavg()[0]
            shutdown = stop_server(server)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        left = sum(1 for p in temp.iterdir() if p.name.startswith(TEMP_PREFIX))

    lat = np.array(s.good_latency)
    print(f"music2emotion serve soak: model {args.model}, {args.workers} workers, {os.cpu_count()} cores")
    print(f"  10 s song      alone: median {np.median(alone):.2f} s; while two hour-long uploads of unknown "
          f"length are analysed: {len(beside)} requests, median {np.median(beside):.2f} s, max {max(beside):.2f} s "
          f"(load {load_beside:.1f} -> {load_before:.1f}); the hour-long uploads got "
          + ", ".join(f"{st} after {sec:.1f} s" for st, sec in hidden))
    print(f"then {args.seconds:g} s of {args.good} good / {args.hostile} hostile / {args.stalled} stalled clients, "
          f"load {load_before:.1f} -> {load_after:.1f}")
    print(f"  good clients   {len(lat)} requests, {len(s.good_errors)} errors; latency p50 "
          f"{np.percentile(lat, 50):.2f} s, p99 {np.percentile(lat, 99):.2f} s, max {lat.max():.2f} s "
          f"(alone beforehand: median {np.median(alone):.2f} s)")
    for e in s.good_errors[:5]:
        print(f"    {e}")
    print(f"  hostile        {sum(s.refused.values())} requests, {len(s.unexpected)} unexpected answers")
    for (name, status), n in sorted(s.refused.items()):
        print(f"    {name:28s} {'hung up' if status == -1 else status:>7}  x{n}")
    for e in s.unexpected[:5]:
        print(f"    unexpected: {e}")
    drops = np.array(s.drop_seconds) if s.drop_seconds else np.array([np.nan])
    print(f"  stalled        {sum(s.dropped.values())} connections dropped after median "
          f"{np.median(drops):.1f} s, max {np.max(drops):.1f} s: "
          + ", ".join(f"{k} x{n}" for k, n in sorted(s.dropped.items())))
    first = samples[min(2, len(samples) - 1)]  # after the first clients warmed things up
    print(f"  server RSS     {first[1]:.0f} MB at {first[0]:.0f} s, max {max(x[1] for x in samples):.0f} MB, "
          f"{end[0]:.0f} MB at the end (server and workers)")
    print(f"  open files     {first[2]} at {first[0]:.0f} s, max {max(x[2] for x in samples)}, {end[1]} at the end")
    print(f"  temp uploads   max {max(x[3] for x in samples)} at once during the run, {end[2]} after it, "
          f"{left} after shutdown")
    print(f"  shutdown       {shutdown:.1f} s after SIGTERM")
    refused = all(st == 422 for st, _ in hidden)
    return 1 if s.good_errors or s.unexpected or left or end[2] or not refused else 0


if __name__ == "__main__":
    sys.exit(main())
