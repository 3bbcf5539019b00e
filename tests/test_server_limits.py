"""What one request, or one client, may cost ``music2emotion serve``: audio per file and per
request, disk, time, connections, worker processes, and how it stops.

The clients here misbehave on purpose, over raw sockets where an HTTP library would not
(stalls, trickles, lies about lengths, disconnects mid-analysis). Most run against the
session's real server (``served`` in conftest.py: one worker process, timeouts of a second)
and are marked slow; the fair queue and the shared upload space are checked without one.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import audio_bytes, long_silence_flac, tone

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
anyio = pytest.importorskip("anyio")
httpx = pytest.importorskip("httpx")

from music2emotion import server  # noqa: E402
from music2emotion.engine import WORKER_DIED  # noqa: E402
from music2emotion.server import ServerSettings  # noqa: E402
from music2emotion.server.analysis import FairQueue, QueuedFile  # noqa: E402

BOUNDARY = "m2eB"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- raw clients -----------------------------------------------------------------------------


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def request_head(url: str, length: int | None, path: str = "/api/predict") -> bytes:
    netloc = urlsplit(url).netloc
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{size}\r\n\r\n").encode()


def part_head(filename: str, ctype: str = "audio/wav") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode()


def body_of(files: list[tuple[str, bytes]]) -> bytes:
    return b"".join(part_head(n) + data + b"\r\n" for n, data in files) + f"--{BOUNDARY}--\r\n".encode()


def stalled_upload(url: str, name: str = "song.wav", sent: int = 100_000) -> socket.socket:
    """Promises 10 MB, sends ``sent`` bytes of a file, then nothing."""
    s = connect(url)
    s.sendall(request_head(url, 10_000_000) + part_head(name) + b"\0" * sent)
    return s


def read_response(s: socket.socket, timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """Status, JSON body and raw bytes of the one response the server sends before it closes."""
    import json

    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
            if length and len(body) >= int(length[0].split(b":")[1]):
                break
    except ConnectionResetError:
        pass
    if not data:
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else {}, head


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def wait_until(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def uploads_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(server.TEMP_PREFIX)]


@pytest.fixture(scope="module")
def silences(tmp_path_factory) -> dict[str, bytes]:
    """Digital silence as small FLACs: an hour (over the 20-minute limit), 19 minutes (under
    it, so seven make a request of over two hours), 10 minutes (seconds of work for the tiny
    model), 1 minute."""
    d = tmp_path_factory.mktemp("silence")
    return {f"{m}min": long_silence_flac(d / f"{m}.flac", minutes=m).read_bytes() for m in (60, 19, 10, 1)}


@pytest.fixture()
def worker(served) -> int:
    _, app = served
    assert wait_until(lambda: len(app.state.m2e.analysis.pids()) == 1, 30)  # after a kill test
    return app.state.m2e.analysis.pids()[0]


# ---- work per request --------------------------------------------------------------------------


@pytest.mark.slow
def test_an_hour_of_silence_is_refused_from_its_header_at_once(served, worker, silences, private_tmp):
    url, _ = served
    assert len(silences["60min"]) < 200_000
    before, t0 = cpu_seconds(worker), time.monotonic()
    r = httpx.post(url + "/api/predict", files={"f": ("hour.flac", silences["60min"], "audio/flac")})
    assert r.status_code == 413
    assert r.json()["error"] == "hour.flac: too long: 1 h of audio, over the limit of 20 min"
    assert time.monotonic() - t0 < 2.0
    assert cpu_seconds(worker) - before < 0.2  # the worker never decoded it
    assert uploads_in(private_tmp) == []


@pytest.mark.slow
def test_a_request_over_its_total_audio_is_refused_before_analysis(served, worker, silences):
    url, _ = served
    before = cpu_seconds(worker)
    files = [("files", (f"{i}.flac", silences["19min"], "audio/flac")) for i in range(7)]  # 133 min
    r = httpx.post(url + "/api/predict", files=files, timeout=30)
    assert r.status_code == 413
    assert r.json()["error"] == ("the files hold 2 h 13 min of audio, over the limit of 2 h per request; "
                                 "send them in several requests")
    assert cpu_seconds(worker) - before < 0.2


@pytest.mark.slow
def test_a_client_that_leaves_mid_analysis_stops_its_worker(served, worker, silences, private_tmp):
    url, _ = served
    s = connect(url)
    body = body_of([("ten.flac", silences["10min"])])
    start = cpu_seconds(worker)
    s.sendall(request_head(url, len(body)) + body)
    assert wait_until(lambda: cpu_seconds(worker) - start > 0.3, 20), "the analysis did not start"
    s.close()  # the client goes away
    time.sleep(0.5)  # the signal lands within milliseconds; this leaves room on a busy machine
    stopped_at = cpu_seconds(worker)
    time.sleep(1.0)
    assert cpu_seconds(worker) - stopped_at < 0.15, "the worker kept analysing after the client left"
    assert wait_until(lambda: uploads_in(private_tmp) == [], 2)
    # the same worker, stopped rather than killed, answers the next request at once
    r = httpx.post(url + "/api/predict", files={"f": ("a.wav", audio_bytes(tone(440, 3.0)), "audio/wav")})
    assert r.status_code == 200 and served[1].state.m2e.analysis.pids() == [worker]


@pytest.mark.slow
def test_a_worker_that_dies_costs_only_its_file(served, worker, silences):
    url, app = served
    result: dict = {}
    files = [("files", ("ten.flac", silences["10min"], "audio/flac")),
             ("files", ("short.wav", audio_bytes(tone(440, 3.0)), "audio/wav"))]
    start = cpu_seconds(worker)
    t = threading.Thread(target=lambda: result.update(r=httpx.post(url + "/api/predict", files=files, timeout=60)))
    t.start()
    assert wait_until(lambda: cpu_seconds(worker) - start > 0.3, 20)
    os.kill(worker, signal.SIGKILL)  # as the out-of-memory killer would
    t.join(60)
    r = result["r"]
    assert r.status_code == 200
    assert [(x["file"], x["status"]) for x in r.json()["results"]] == [("ten.flac", 500), ("short.wav", 200)]
    assert r.json()["results"][0]["error"] == WORKER_DIED
    assert app.state.m2e.analysis.pids() != [worker]  # replaced


@pytest.mark.slow
def test_a_short_file_does_not_wait_for_a_batch(served, worker, silences):
    """A request of one file takes its turn beside a batch, not after it."""
    url, _ = served
    done: list[str] = []
    # files of seconds of work each, so the single file arrives while the batch's first one is
    # still being analysed even on a loaded machine (with 1-minute files, a whole batch once
    # finished before the single file's upload did)
    batch = [("files", (f"{i}.flac", silences["10min"], "audio/flac")) for i in range(3)]

    def post(name: str, files: list) -> None:
        r = httpx.post(url + "/api/predict", files=files, timeout=120)
        assert r.status_code == 200
        done.append(name)

    first = threading.Thread(target=post, args=("batch", batch))
    first.start()
    start = cpu_seconds(worker)
    assert wait_until(lambda: cpu_seconds(worker) - start > 0.1, 20)
    post("single", [("files", ("one.wav", audio_bytes(tone(330, 3.0)), "audio/wav"))])
    first.join(120)
    assert done == ["single", "batch"]


def test_the_fair_queue_takes_requests_in_turn_and_keeps_a_worker_for_short_files():
    q = FairQueue(workers=3)
    mixes = [QueuedFile(f"mix{i}", long=True) for i in range(3)]
    batch = [QueuedFile(f"b{i}", long=False) for i in range(4)]
    q.add(mixes)
    q.add(batch)
    taken = {f.path: f for f in (q.take(), q.take(), q.take())}
    assert list(taken) == ["mix0", "b0", "mix1"]  # one file per request in turn
    assert q.take() is None and q.waiting == 4  # every worker busy
    q.finished(taken["b0"])
    b1 = q.take()
    assert b1.path == "b1"
    q.finished(b1)
    # the mixes' turn, but a third long file would leave no worker for short ones
    assert q.take().path == "b2"
    q.add([QueuedFile("single", long=False)])
    q.finished(taken["mix0"])
    assert q.take().path == "mix2"  # two long ones at most, and now there is room
    q.remove(batch)
    assert q.waiting == 1
    one = FairQueue(workers=1)
    one.add([QueuedFile("long", long=True)])
    assert one.take().path == "long"  # with one worker, long files still run


# ---- disk and time -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_stalled_upload_is_dropped_and_its_temp_file_removed(served, private_tmp):
    """A body that promises more than it sends (Content-Length) and stops. Its temp file is
    private while it exists (mode 0600, a random name, never the client's)."""
    url, _ = served
    t0 = time.monotonic()
    s = stalled_upload(url, name="../../evil.wav")
    assert wait_until(lambda: len(uploads_in(private_tmp)) == 1, 5)
    (temp,) = uploads_in(private_tmp)
    assert temp.suffix == ".wav" and "evil" not in temp.name
    assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    status, body, head = read_response(s)
    assert status == 408 and body["error"] == "the upload stalled: nothing received for 1 s"
    assert b"connection: close" in head.lower()
    assert time.monotonic() - t0 < 4.0
    assert uploads_in(private_tmp) == [] and not (private_tmp.parent / "evil.wav").exists()


@pytest.mark.slow
def test_a_trickled_upload_meets_the_whole_body_timeout(served, private_tmp):
    url, _ = served
    s = stalled_upload(url, sent=1000)
    t0 = time.monotonic()
    s.settimeout(0.4)
    status = 0
    while time.monotonic() - t0 < 10 and not status:
        try:
            s.sendall(b"\0")  # a byte now and then: never idle long enough for the idle timeout
            status, body, _ = read_response(s, timeout=0.4)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass
    assert status == 408 and body["error"] == "the upload took longer than the 3 s allowed"
    assert 2.5 < time.monotonic() - t0 < 6
    assert wait_until(lambda: uploads_in(private_tmp) == [], 2)


@pytest.mark.slow
def test_slow_or_silent_connections_are_closed(served):
    url, _ = served
    silent, slow = connect(url), connect(url)
    slow.sendall(b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\n")  # and the rest never comes
    status, body, _ = read_response(slow, timeout=5)
    assert status == 408 and body["error"] == "the request headers did not arrive within 1 s"
    assert closed_by_server(silent, timeout=3)


@pytest.mark.slow
def test_chunked_bodies_are_bounded_as_they_arrive(served, private_tmp):
    """No Content-Length to check up front: form fields (3.3 GB of them once got through)
    are cut at 64 kB, and the server stops reading there."""
    url, _ = served
    s = connect(url)
    s.sendall(request_head(url, None))
    field = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n".encode() + b"a" * 8192 + b"\r\n")
    chunk = f"{len(field):x}\r\n".encode() + field + b"\r\n"
    sent = 0
    s.settimeout(0.05)
    try:
        while sent < 20_000_000:
            s.sendall(chunk)
            sent += len(field)
            try:
                if s.recv(1, socket.MSG_PEEK):
                    break  # the server answered
            except TimeoutError:
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, body, _ = read_response(s, timeout=5)
    assert status == 413 and body["error"] == "form fields other than files hold more than 64 kB"
    assert sent < 2_000_000
    assert uploads_in(private_tmp) == []


@pytest.mark.slow
def test_a_refusal_before_the_body_is_read_still_reaches_the_client(served):
    """Closing on unread data sends a reset, which can destroy the answer on its way: the
    server lingers, dropping what still comes, so the client reads why it was refused."""
    url, _ = served
    for _ in range(3):
        s = connect(url)
        head = request_head(url, 20_000_000).replace(urlsplit(url).netloc.encode(), b"evil.example")
        s.sendall(head + part_head("a.wav") + b"\0" * 20_000_000)  # all of it, as a naive client does
        status, body, _ = read_response(s, timeout=5)
        assert status == 400 and "evil.example" in body["error"]
        assert closed_by_server(s, timeout=4)


@pytest.mark.slow
def test_too_many_requests_at_once_get_503_and_never_wait(served, private_tmp):
    url, app = served
    stalled = [stalled_upload(url, sent=10) for _ in range(6)]  # max_requests of the test server
    assert wait_until(lambda: app.state.m2e.in_progress == 6, 5)
    t0 = time.monotonic()
    r = httpx.post(url + "/api/predict", files={"f": ("a.wav", audio_bytes(tone(440, 3.0)), "audio/wav")})
    assert r.status_code == 503 and time.monotonic() - t0 < 1.0
    assert r.headers["retry-after"] == "2" and "the server is busy (6 requests in progress)" in r.json()["error"]
    for s in stalled:
        assert read_response(s)[0] == 408  # dropped by the idle timeout, a second later
    r = httpx.post(url + "/api/predict", files={"f": ("a.wav", audio_bytes(tone(440, 3.0)), "audio/wav")})
    assert r.status_code == 200
    assert wait_until(lambda: uploads_in(private_tmp) == [], 2)


def test_uploads_share_one_space_on_disk(model, private_tmp):
    """Two uploads together may not hold more than max_temp_bytes: the second gets 503 while
    the first, stalled, holds its share; one larger than all of it gets 413."""
    app = server.create_app(model, ServerSettings(max_upload_bytes=150_000, max_temp_bytes=200_000))
    release = anyio.Event()

    async def stalling_body():
        yield part_head("first.wav") + b"\0" * 120_000
        await release.wait()
        yield b"\r\n" + f"--{BOUNDARY}--\r\n".encode()

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            async with anyio.create_task_group() as tg:
                first: list[httpx.Response] = []

                async def post_first() -> None:
                    first.append(await c.post("/api/predict", content=stalling_body(), headers=headers))

                tg.start_soon(post_first)
                while app.state.m2e.space.used < 120_000:
                    await anyio.sleep(0.01)
                second = await c.post("/api/predict", headers=headers,
                                      content=body_of([("second.wav", b"\0" * 100_000)]))
                release.set()
            alone = await c.post("/api/predict", headers=headers,
                                 content=body_of([(f"{i}.wav", b"\0" * 120_000) for i in range(2)]))
        return first[0], second, alone

    first, second, alone = anyio.run(go)
    assert second.status_code == 503 and second.headers["retry-after"] == "5"
    assert second.json()["error"] == "the server's space for uploads is full; retry shortly"
    assert first.status_code == 503  # stored, then no worker to analyse it in this app alone
    assert alone.status_code == 413 and "larger than the 200 kB this server stores at once" in alone.json()["error"]
    assert app.state.m2e.space.used == 0 and uploads_in(private_tmp) == []


# ---- stopping ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_ends_the_server_in_seconds_whatever_clients_do(tiny_model, tmp_path):
    """A stalled upload, a half-sent request and an idle connection do not hold it up, and
    the stalled upload's temp file is removed."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "music2emotion.cli", "serve", "--model", str(tiny_model), "--workers", "1",
         "--port", str(port)],
        env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(url), 90, step=0.2), "the server did not start"
        clients = [stalled_upload(url), connect(url), connect(url)]
        clients[1].sendall(b"GET /api/health HTTP/1.1\r\n")
        assert wait_until(lambda: len(uploads_in(temp)) == 1, 5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        assert time.monotonic() - t0 < 5.0
        # uvicorn ends by re-raising the signal it caught, so the parent sees a SIGTERM exit
        assert proc.returncode in (0, -signal.SIGTERM), proc.stdout.read()
        assert "Application shutdown complete" in proc.stdout.read()
        assert uploads_in(temp) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
