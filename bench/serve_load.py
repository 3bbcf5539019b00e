"""Load test of ``music2emotion serve``: how requests per second grow with ``--workers``.

    python bench/serve_load.py [--model accurate --model fast] [--workers 1 2] [--requests 100]
                               [--concurrency 8] [--seconds 30] [--repeat 1]

For each model and each worker count, starts ``music2emotion serve`` on 127.0.0.1 (a free
port) in a subprocess, posts the same generated song ``--requests`` times, ``--concurrency``
at a time, while polling ``/api/health`` to show that the server keeps answering during
analysis. Reports requests/s, p50/p99 latency, errors (must be 0), the peak memory of the
server and its worker processes together, any temporary upload left behind, and the
speed-up of each worker count over the first (target: 2 workers at least 1.7x of 1). The
load average before and after each run is printed too, with the CPU seconds the server and
its workers spent per request and the cores they got on average: on a shared machine a
neighbour's work takes cores from the run, which shows there rather than as a mystery in the
ratios; ``--repeat`` runs the worker counts in turn that many times and compares the medians. Exits 1 on any error or leftover temp file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _serving import cpu_seconds, rss_mb, start_server, stop_server  # noqa: E402
from _songs import song_bytes  # noqa: E402

from music2emotion import EmotionModel  # noqa: E402
from music2emotion.server import TEMP_PREFIX  # noqa: E402

TARGET = 1.7  # 2 workers against 1


def leftover_uploads() -> int:
    return sum(1 for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(TEMP_PREFIX))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def load(url: str, data: bytes, n: int, concurrency: int, server_pid: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    health: list[float] = []
    errors: list[str] = []
    peak = [0.0]
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
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

        async def poll() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                r = await client.get("/api/health")
                if r.status_code != 200:
                    errors.append(f"health HTTP {r.status_code}")
                health.append(time.perf_counter() - t0)
                peak[0] = max(peak[0], rss_mb(server_pid))
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll())
        cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall, cpu = time.perf_counter() - t0, cpu_seconds(server_pid) - cpu0
        done.set()
        await poller
    return {"wall": wall, "cpu": cpu, "latencies": latencies, "health": health, "errors": errors,
            "peak_mb": peak[0]}


def run_server(model: str, workers: int, data: bytes, requests: int, concurrency: int) -> dict:
    server, url = start_server(["--model", model, "--workers", str(workers)])
    try:
        load_before = os.getloadavg()[0]
        res = asyncio.run(load(url, data, requests, concurrency, server.pid))
        res["load"] = (load_before, os.getloadavg()[0])
    finally:
        stop_server(server)
    return res


def baseline(model: str, data: bytes) -> float:
    """Files per second of the library predicting the same file in this process, sequentially."""
    m = EmotionModel(model)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "song.wav"
        p.write_bytes(data)
        m.predict_file(p)  # warm up
        runs = 5
        t0 = time.perf_counter()
        for _ in range(runs):
            m.predict_file(p, timeline=True)
        return runs / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="bundled model name or ONNX file (repeatable; "
                                                     "default: accurate and fast)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the uploaded song")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all worker counts, in turn")
    args = ap.parse_args()

    data = song_bytes(args.seconds)
    models = args.model or ["accurate", "fast"]
    print(f"music2emotion serve load test: {args.requests} requests per run, {args.concurrency} at a time, "
          f"{args.seconds:g} s song ({len(data) / 1e6:.2f} MB WAV, 22.05 kHz stereo), {os.cpu_count()} cores")
    print(f"{'model':>10} {'workers':>7} {'req/s':>7} {'speed-up':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'health p99':>10} {'errors':>6} {'peak MB':>7} {'CPU s/req':>9} {'cores used':>10} "
          f"{'load before/after':>18}")
    before = leftover_uploads()
    failed = False
    for model in models:
        base = baseline(model, data)
        speed: dict[int, list[float]] = {w: [] for w in args.workers}
        for _ in range(args.repeat):
            for workers in args.workers:
                res = run_server(model, workers, data, args.requests, args.concurrency)
                rps = args.requests / res["wall"]
                speed[workers].append(rps)
                lat = res["latencies"]
                first = float(np.median(speed[args.workers[0]]))
                print(f"{model:>10} {workers:>7} {rps:7.2f} {rps / first:7.2f}x {pct(lat, 50) * 1000:7.0f} "
                      f"{pct(lat, 99) * 1000:7.0f} {pct(res['health'], 99) * 1000:8.1f}ms {len(res['errors']):>6} "
                      f"{res['peak_mb']:7.0f} {res['cpu'] / args.requests:9.3f} {res['cpu'] / res['wall']:10.2f} "
                      f"{res['load'][0]:8.2f} / {res['load'][1]:<7.2f}", flush=True)
                for e in res["errors"][:5]:
                    print(f"    {e}")
                failed |= bool(res["errors"])
        median = {w: float(np.median(v)) for w, v in speed.items()}
        if 1 in median and 2 in median:
            ratio = median[2] / median[1]
            print(f"{'':>10} 2 workers: {ratio:.2f}x the requests/s of 1 (medians of {args.repeat}; "
                  f"target {TARGET}x: {'met' if ratio >= TARGET else 'missed'})")
        print(f"{'':>10} library, sequential in this process: {base:.2f} files/s")
    left = leftover_uploads() - before
    print(f"temp files left: {left}")
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
