"""The HTTP API of ``music2emotion serve``: uploads, results, status codes, the error shape,
the docs.

Refusals that happen before any analysis run against the app alone (FastAPI's test client,
no lifespan, so no worker process starts: quick). Tests that analyse (marked slow) post to
the session's real server (``served`` in conftest.py: one worker process on the tiny model,
2 s windows, so a few seconds of generated audio span several windows).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from helpers import audio_bytes, music, noise, tone, write_video

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
anyio = pytest.importorskip("anyio")
httpx = pytest.importorskip("httpx")

from music2emotion import EmotionModel, server  # noqa: E402
from music2emotion.audio import NO_AUDIO_STREAM, SCAN_EXTENSIONS  # noqa: E402
from music2emotion.cli import main  # noqa: E402
from music2emotion.config import to_deam  # noqa: E402
from music2emotion.server import ServerSettings  # noqa: E402

with warnings.catch_warnings():
    # starlette suggests httpx2 for its test client; httpx still works and is what we ship
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


def bare(model: EmotionModel, **settings: object) -> TestClient:
    """The app alone: its lifespan never runs, so no worker starts. For requests refused
    before analysis (anything that would be analysed gets 503)."""
    return TestClient(server.create_app(model, ServerSettings(**settings)), base_url="http://localhost")


@pytest.fixture()
def client(model: EmotionModel, private_tmp: Path) -> TestClient:
    return bare(model)


@pytest.fixture()
def api(served, private_tmp: Path):
    """An HTTP client of the session's real server, uploads going to ``private_tmp``."""
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def wav_bytes(seconds: float, freq: float = 440.0, fmt: str = "WAV") -> bytes:
    """A noisy tone as the bytes of an audio file."""
    return audio_bytes(tone(freq, seconds) + noise(seconds, seed=int(freq)), fmt=fmt)


def predict_on_disk(model: EmotionModel, data: bytes, tmp_path: Path, name: str = "ref.wav"):
    p = tmp_path / name
    p.write_bytes(data)
    return model.predict_file(p, timeline=True)


def video_bytes(tmp_path: Path, name: str, sound: bool = True, seed: int = 0) -> bytes:
    """A small video in the container ``name``'s suffix names (helpers.write_video), with 3 s
    of stereo music as AAC (Opus in WebM), or no sound at all."""
    audio = music(3.0, 48_000, channels=2, seed=seed) if sound else None
    codec = "libopus" if name.endswith(".webm") else "aac"
    return write_video(tmp_path / "made" / name, 3.0, audio, 48_000, audio_codec=codec).read_bytes()


# ---- without analysis --------------------------------------------------------------------


def test_health_reports_model_settings_limits_and_auth(client: TestClient, model: EmotionModel):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["auth"] is False
    assert body["model"]["file"] == model.path.name
    assert body["model"]["settings"] == model.settings.to_dict()
    assert body["model"]["settings"]["window_seconds"] == 2.0
    limits = body["limits"]
    assert limits["max_upload_bytes"] == 50_000_000 and limits["max_files"] == 64
    assert limits["max_duration"] == 1200 and limits["max_request_duration"] == 7200
    assert limits["workers"] >= 1
    # what a folder scan takes, one list: the page's file picker offers these
    assert limits["audio_extensions"] == sorted(SCAN_EXTENSIONS)
    assert {".wav", ".mkv", ".mov"} <= set(limits["audio_extensions"])


def test_not_audio_is_415_and_never_stored(client, private_tmp):
    r = client.post("/api/predict", files={"file": ("notes.txt", b"just text", "text/plain")})
    assert r.status_code == 415
    body = r.json()
    assert body["error"].startswith("notes.txt: not an audio file")
    assert body["results"][0]["status"] == 415
    assert list(private_tmp.iterdir()) == []


def test_oversized_upload_is_413_while_streaming(model, private_tmp):
    """The server must stop reading at the limit, not after the whole body is in; the body
    comes without a declared length, as a chunked one does."""
    limit = 64 * 1024
    app = server.create_app(model, ServerSettings(max_upload_bytes=limit))
    boundary = "m2eboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode()
    chunk = b"\0" * 16 * 1024
    n_chunks = 200  # 3.2 MB offered, 50 times the limit
    sent = 0

    async def body():
        nonlocal sent
        yield head
        for _ in range(n_chunks):
            sent += 1
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.post("/api/predict", content=body(),
                                headers={"content-type": f"multipart/form-data; boundary={boundary}"})

    r = anyio.run(go)
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert r.json()["error"].startswith("big.wav: larger than the upload limit")
    assert sent <= limit // len(chunk) + 2  # stopped right after the limit
    assert list(private_tmp.iterdir()) == []


def test_oversized_in_a_batch_refuses_the_request_and_cleans_up(model, private_tmp):
    c = bare(model, max_upload_bytes=100_000)
    files = [("files", ("ok.wav", wav_bytes(1.0), "audio/wav")),  # 44 kB
             ("files", ("big.wav", wav_bytes(5.0), "audio/wav"))]  # 220 kB
    r = c.post("/api/predict", files=files)
    assert r.status_code == 413 and "big.wav" in r.json()["error"]
    assert list(private_tmp.iterdir()) == []
    # a declared Content-Length beyond anything acceptable is refused before reading
    r = c.post("/api/predict", content=b"x" * (server.MAX_FILES * 120_000),
               headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413


def test_request_level_errors(client):
    r = client.post("/api/predict", json={"file": "song.wav"})
    assert r.status_code == 415 and "multipart" in r.json()["error"]
    r = client.post("/api/predict", data={"note": "no file here"}, files={"x": ("", b"", "application/octet-stream")})
    assert r.status_code == 400 and "no file" in r.json()["error"]
    r = client.post("/api/predict", content=b"--b\r\nthis is not multipart",
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed multipart body")
    r = client.post("/api/predict", content=b"", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400


def test_too_many_files(model):
    c = bare(model, max_files=3)
    files = [("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(4)]
    r = c.post("/api/predict", files=files)
    assert r.status_code == 413 and r.json()["error"] == "too many files: at most 3 per request"


def test_every_error_is_json_with_an_error_field(client):
    """FastAPI's own answers (404, 405, a bad query parameter) included; a bad parameter is
    400, never 422, which means a file that cannot be decoded."""
    cases = [
        (client.get("/nowhere"), 404, "no such page: /nowhere"),
        (client.get("/api/predict"), 405, "GET is not allowed on /api/predict (use POST)"),
        (client.post("/api/predict?scale=bogus", files={"f": ("a.wav", b"x", "audio/wav")}), 400,
         "bad parameter scale: Input should be 'unit' or 'deam'"),
        (client.post("/api/predict", content=b"{}", headers={"content-type": "application/json"}), 415,
         "send the audio as multipart/form-data file fields"),
        (client.post("/api/predict", files={"f": ("x.doc", b"abc", "application/msword")}), 415,
         "x.doc: not an audio file (sent as application/msword): expected one of"),
    ]
    for r, status, error in cases:
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/json"
        body = json.loads(r.text)
        assert body["error"].startswith(error), body
        if status in (415,):  # /api/predict's own refusals also carry the results
            assert set(body) == {"results", "error"}
    assert client.get("/api/predict").headers["allow"] == "POST"


def test_a_file_name_thousands_of_characters_long(client):
    name = "x" * 5000 + ".txt"
    r = client.post("/api/predict", files={"f": (name, b"abc", "text/plain")})
    # python-multipart bounds one part header line; the reason says what grew it
    assert r.status_code in (400, 415)
    if r.status_code == 400:
        assert "a file name that long?" in r.json()["error"]
    else:
        assert len(r.json()["results"][0]["file"]) == 200


def test_page_docs_and_openapi_work_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css", "favicon.svg"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and "content-security-policy" in r.headers
    # nothing on the page or in the docs comes from another host
    texts = [page.text, client.get("/static/app.js").text, client.get("/static/style.css").text,
             client.get("/docs").text, client.get("/redoc").text]
    assert not any("http://" in t.replace("http://www.w3.org/2000/svg", "") or "https://" in t for t in texts)
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert {"400", "401", "403", "408", "413", "415", "422", "503"} <= set(
        spec["paths"]["/api/predict"]["post"]["responses"])
    assert "/api/health" in spec["paths"]


def test_helpers_never_keep_a_client_path():
    assert server.display_name(b"C:\\Users\\me\\song.mp3") == "song.mp3"
    assert server.display_name(b"../../etc/passwd\x00\n") == "passwd"
    assert server.display_name(b"/") == "upload"
    assert server.audio_suffix("song.MP3", "") == ".mp3"
    assert server.audio_suffix("song.exe", "application/octet-stream") is None
    assert server.audio_suffix("song", "audio/mpeg") == ".mp3"
    assert server.audio_suffix("song.m4a", "audio/mp4") == ".m4a"
    assert server.audio_suffix("song", "audio/x-no-such-type") == ""  # tried; the decoder decides


def test_uploads_are_taken_by_the_suffixes_a_folder_scan_takes():
    """Video containers often hold only a song; by their name they are taken whatever type a
    browser sends them as (video/x-matroska, video/quicktime), as a folder scan takes them."""
    for suffix in SCAN_EXTENSIONS:
        assert server.audio_suffix(f"clip{suffix.upper()}", "application/octet-stream") == suffix
    assert server.audio_suffix("concert.mkv", "video/x-matroska") == ".mkv"
    assert server.audio_suffix("phone.mov", "video/quicktime") == ".mov"
    assert server.audio_suffix("song.mp4", "video/mp4") == ".mp4"
    assert server.audio_suffix("cover.jpg", "image/jpeg") is None
    assert server.audio_suffix("subtitles.srt", "application/x-subrip") is None


def test_a_video_container_is_stored_for_analysis_and_what_is_not_audio_is_refused(model, private_tmp):
    """Without workers, a file taken for analysis gets 503 (starting or stopping), one
    refused as not audio its 415 with the list of suffixes, which names the video
    containers too; neither is left on disk."""
    c = bare(model)
    r = c.post("/api/predict", files={"file": ("clip.mkv", b"\x1aE\xdf\xa3" + bytes(100), "video/x-matroska")})
    assert r.status_code == 503 and "starting or stopping" in r.json()["error"]
    r = c.post("/api/predict", files={"file": ("clip.srt", b"1\n00:00:01,000 --> 00:00:02,000\n", "video/x-matroska")})
    assert r.status_code == 415
    error = r.json()["error"]
    assert error.startswith("clip.srt: not an audio file (sent as video/x-matroska): expected one of .3g2 .3gp")
    assert all(f" {suffix}" in error for suffix in SCAN_EXTENSIONS) and "\n" not in error
    assert list(private_tmp.iterdir()) == []


def test_cli_serve_reports_bad_options_in_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("music2emotion serve: error:") and "model file not found" in err
    assert "\n" not in err
    for bad in (["--port", "70000"], ["--max-upload-mb", "0"], ["--workers", "0"],
                ["--max-duration", "-1"], ["--idle-timeout", "0"]):
        assert main(["serve", *bad]) == 2, bad
        assert capsys.readouterr().err.count("\n") == 1


def test_no_worker_no_analysis(model, private_tmp):
    """Before start-up ends, or once shutdown began, a file is refused (503), never lost."""
    r = bare(model).post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "starting or stopping" in r.json()["error"]
    assert list(private_tmp.iterdir()) == []


# ---- with analysis (the session's server) ----------------------------------------------------


@pytest.mark.slow
def test_one_good_file_matches_the_library_with_timeline(api, model, tmp_path, private_tmp):
    data = wav_bytes(7.0)
    r = api.post("/api/predict", files={"file": ("song.wav", data, "audio/wav")})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    ref = predict_on_disk(model, data, tmp_path).row()
    assert res["status"] == 200 and res["error"] == ""
    assert res["file"] == "song.wav"
    assert (res["valence"], res["arousal"], res["windows"]) == (ref["valence"], ref["arousal"], ref["windows"])
    assert res["windows"] >= 3
    assert len(res["timeline"]) == res["windows"]
    assert res["timeline"][0]["start"] == 0.0 and res["timeline"][-1]["end"] == pytest.approx(7.0)
    assert all(0.0 <= s["valence"] <= 1.0 and 0.0 <= s["arousal"] <= 1.0 for s in res["timeline"])
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_file_within_one_window_has_no_timeline_and_deam_scale(api, model, tmp_path):
    r = api.post("/api/predict", files={"file": ("short.flac", wav_bytes(1.5, fmt="FLAC"), "audio/flac")})
    assert r.status_code == 200
    (res,) = r.json()["results"]
    assert res["windows"] == 1 and res["timeline"] == []
    assert 0.0 <= res["valence"] <= 1.0
    data = wav_bytes(3.0)
    r = api.post("/api/predict?scale=deam", files={"file": ("a.wav", data, "audio/wav")})
    ref = predict_on_disk(model, data, tmp_path)
    assert r.json()["results"][0]["valence"] == round(float(to_deam(round(ref.valence, 4))), 4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("garbage.wav", b"RIFF\x00\x00not really a wave file" * 50, "not a supported audio format"),
        ("empty.wav", b"", "empty file"),
        ("blip.wav", None, "too short"),
    ],
)
def test_undecodable_single_file_is_422(api, name, data, reason):
    data = wav_bytes(0.2) if data is None else data
    r = api.post("/api/predict", files={"file": (name, data, "audio/wav")})
    assert r.status_code == 422
    body = r.json()
    assert reason in body["error"] and body["error"].startswith(f"{name}: ")
    assert body["results"][0]["valence"] is None


@pytest.mark.slow
def test_many_files_at_once_keep_order_and_per_file_errors(api, model, tmp_path, private_tmp):
    good = [wav_bytes(3.0 + i, freq=220.0 * (i + 1)) for i in range(4)]
    files = [
        ("files", ("a.wav", good[0], "audio/wav")),
        ("files", ("bad.mp3", b"\xff\xfb" + os.urandom(3000), "audio/mpeg")),
        ("files", ("b.wav", good[1], "audio/x-wav")),
        ("files", ("image.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")),
        ("files", ("c.wav", good[2], "application/octet-stream")),
        ("files", ("d", good[3], "audio/wav")),  # no suffix: the audio/* type is trusted
    ]
    r = api.post("/api/predict", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["a.wav", "bad.mp3", "b.wav", "image.png", "c.wav", "d"]
    assert [x["status"] for x in results] == [200, 422, 200, 415, 200, 200]
    for res, data in zip([results[0], results[2], results[4], results[5]], good, strict=True):
        ref = predict_on_disk(model, data, tmp_path).row()
        assert (res["valence"], res["arousal"]) == (ref["valence"], ref["arousal"])
    assert results[1]["error"] and results[3]["error"]
    assert list(private_tmp.iterdir()) == []  # every temp file is gone
    assert api.get("/api/health").status_code == 200  # and the server is still fine


@pytest.mark.slow
def test_video_containers_with_sound_give_the_library_values(api, model, tmp_path, private_tmp):
    """Sent as the video/* types browsers use, not audio/*: accepted by the name's suffix."""
    files = [("clip.mkv", "video/x-matroska"), ("clip.mp4", "video/mp4"), ("clip.webm", "video/webm")]
    made = {name: video_bytes(tmp_path, name, seed=i) for i, (name, _) in enumerate(files)}
    r = api.post("/api/predict", files=[("files", (name, made[name], ctype)) for name, ctype in files])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 200, 200], results
    for res, (name, _) in zip(results, files, strict=True):
        ref = predict_on_disk(model, made[name], tmp_path, name).row()
        assert res["file"] == name and res["error"] == ""
        assert (res["valence"], res["arousal"], res["windows"]) == (ref["valence"], ref["arousal"], ref["windows"])
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_a_video_without_sound_gets_the_error_row_of_a_local_scan(api, model, tmp_path, private_tmp):
    from music2emotion import predict_files
    from music2emotion.audio import find_audio_files

    silent_film = video_bytes(tmp_path, "film.mkv", sound=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "film.mkv").write_bytes(silent_film)
    (local,) = predict_files(find_audio_files([folder]), model=model.path, jobs=1)
    assert local.error == NO_AUDIO_STREAM  # one line, no path in it
    # alone: the file's status and error, the whole answer's error naming it
    r = api.post("/api/predict", files={"file": ("film.mkv", silent_film, "video/x-matroska")})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == f"film.mkv: {local.error}"
    assert body["results"][0]["error"] == local.error and body["results"][0]["valence"] is None
    # in a batch: its row, the others analysed
    r = api.post("/api/predict", files=[("files", ("film.mkv", silent_film, "video/x-matroska")),
                                        ("files", ("song.wav", wav_bytes(3.0), "audio/wav"))])
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["file"], x["status"], x["error"]) for x in results] == [
        ("film.mkv", 422, local.error), ("song.wav", 200, "")]
    assert list(private_tmp.iterdir()) == []


@pytest.mark.slow
def test_unwritable_temp_dir_is_503_not_a_crash(api, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    r = api.post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
    assert r.status_code == 503 and "cannot store uploads" in r.json()["error"]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = api.post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
    assert r.status_code == 200


@pytest.mark.slow
def test_the_workers_start_with_the_app(served, model):
    url, app = served
    assert server.create_app(model).state.m2e.analysis is None  # nothing runs before start-up
    pids = app.state.m2e.analysis.pids()
    assert len(pids) == 1 and all(Path(f"/proc/{p}").exists() for p in pids)


def test_health_says_failing_while_the_workers_keep_crashing(client: TestClient):
    from music2emotion.engine import keeps_dying_message

    class Crashing:  # the analysis, as it reports workers that die on every file
        crashing = keeps_dying_message(11)

    state = client.app.state.m2e
    state.analysis = Crashing()
    try:
        r = client.get("/api/health")
    finally:
        state.analysis = None
    assert r.status_code == 503
    assert r.json()["status"] == "failing" and "SIGSEGV" in r.json()["problem"]
