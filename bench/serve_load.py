"""Load test of ``music2emotion serve``: bounded concurrent uploads against a real server.

    python bench/serve_load.py [--model MODEL.onnx] [--requests 200] [--concurrency 8] [--seconds 30]

Starts ``music2emotion serve`` on 127.0.0.1 (a free port) in a subprocess, posts the same
generated song ``--requests`` times, ``--concurrency`` at a time, while polling
``/api/health`` to show that the event loop keeps answering during inference. Reports
requests/s, p50/p99 latency, errors (must be 0), the server's peak memory (VmHWM) and any
temporary upload left behind, and compares throughput with predicting the same file
sequentially in this process (the library, no HTTP). Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from music2emotion import EmotionModel
from music2emotion.server import TEMP_PREFIX

SR = 22_050


def song(seconds: float) -> bytes:
    """A generated clip: chords over a beat, as a 16-bit WAV."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    y = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    y = 0.3 * y * np.exp(-1.5 * np.mod(t, 2.0)) + 0.2 * (np.mod(t, 0.5) < 0.02) * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def leftover_uploads() -> int:
    return sum(1 for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(TEMP_PREFIX))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def load(url: str, data: bytes, n: int, concurrency: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    health: list[float] = []
    errors: list[str] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        async def one(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/predict", files={"file": (f"song{i}.wav", data, "audio/wav")})
                    ok = r.status_code == 200 and r.json()["results"][0]["status"] == 200
                    if not ok:
                        errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - t0)

        async def poll_health() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                r = await client.get("/api/health")
                if r.status_code != 200:
                    errors.append(f"health HTTP {r.status_code}")
                health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll_health())
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
        done.set()
        await poller
    return {"wall": wall, "latencies": latencies, "health": health, "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the uploaded song")
    ap.add_argument("--server-concurrency", type=int, help="the server's --concurrency")
    args = ap.parse_args()

    data = song(args.seconds)
    model = EmotionModel(args.model) if args.model else EmotionModel()
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "song.wav"
        p.write_bytes(data)
        model.predict_file(p)  # warm up
        runs = 5
        t0 = time.perf_counter()
        for _ in range(runs):
            model.predict_file(p, timeline=True)
        sequential = runs / (time.perf_counter() - t0)

    port = free_port()
    cmd = [sys.executable, "-m", "music2emotion.cli", "serve", "--port", str(port)]
    if args.model:
        cmd += ["--model", args.model]
    if args.server_concurrency:
        cmd += ["--concurrency", str(args.server_concurrency)]
    before = leftover_uploads()
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                print(f"the server exited: {server.stderr.read()[-2000:]}", file=sys.stderr)
                return 1
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("the server did not start within 120 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        idle_rss = proc_kb(server.pid, "VmRSS")
        res = asyncio.run(load(url, data, args.requests, args.concurrency))
        peak_rss = proc_kb(server.pid, "VmHWM")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    left = leftover_uploads() - before

    lat, health, errors = res["latencies"], res["health"], res["errors"]
    rps = args.requests / res["wall"]
    print(f"music2emotion serve load test: {args.requests} requests, {args.concurrency} at a time, "
          f"{args.seconds:g} s song ({len(data) / 1e6:.2f} MB WAV), {os.cpu_count()} cores, "
          f"window {model.settings.window_seconds:g} s")
    print(f"  throughput        {rps:7.2f} requests/s  ({res['wall']:.1f} s wall)")
    print(f"  library baseline  {sequential:7.2f} files/s sequential in-process "
          f"(server / baseline = {rps / sequential:.2f}x)")
    print(f"  latency           p50 {pct(lat, 50) * 1000:7.0f} ms   p99 {pct(lat, 99) * 1000:7.0f} ms")
    print(f"  /api/health       p50 {pct(health, 50) * 1000:7.1f} ms   p99 {pct(health, 99) * 1000:7.1f} ms"
          f"   ({len(health)} polls during the load)")
    print(f"  server memory     {idle_rss / 1024:7.0f} MB idle, peak {peak_rss / 1024:.0f} MB (VmHWM)")
    print(f"  errors            {len(errors)}")
    print(f"  temp files left   {left}")
    for e in errors[:5]:
        print(f"    {e}")
    return 1 if errors or left else 0


if __name__ == "__main__":
    sys.exit(main())
