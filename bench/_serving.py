"""What the server benchmarks share: a free port, a ``music2emotion serve`` subprocess started
and stopped, and the resources of a process with its children (the worker processes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(options: list[str], env: dict[str, str] | None = None,
                 timeout: float = 300.0) -> tuple[subprocess.Popen[str], str]:
    """``music2emotion serve OPTIONS`` on a free loopback port, once its health answers;
    returns the process and the base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "music2emotion.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), *options]
    # a file, not a pipe: nobody reads the log while the benchmark runs, and a full pipe
    # would block the server at its next warning, a stall the benchmark would blame on it
    log = tempfile.TemporaryFile("w+")
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read()[-2000:]}")
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the server did not start within {timeout:g} s")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[str], timeout: float = 30.0) -> float:
    """SIGTERM, then the seconds it took to exit (killed after ``timeout``)."""
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return time.monotonic() - t0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (the worker processes, started from several threads)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [int(p) for p in task.read_text().split()]
        except OSError:
            pass
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MB."""
    total = 0
    for p in process_tree(pid):
        try:
            total += next(int(line.split()[1]) for line in Path(f"/proc/{p}/status").read_text().splitlines()
                          if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its children."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def open_files(pid: int) -> int:
    """File descriptors ``pid`` holds open."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1
