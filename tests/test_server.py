"""The HTTP API of ``music2emotion serve``: uploads, status codes, limits, safety, docs.

Runs against a tiny randomly initialised model exported in a fixture (2 s windows, so a
few seconds of generated audio already spans several windows) and audio made in tmp dirs.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import warnings
from pathlib import Path

import pytest
from helpers import audio_bytes, noise, tone

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
anyio = pytest.importorskip("anyio")
httpx = pytest.importorskip("httpx")

from music2emotion import (
    EmotionModel,  # noqa: E402
    server,  # noqa: E402
)
from music2emotion.cli import main  # noqa: E402
from music2emotion.config import to_deam  # noqa: E402

with warnings.catch_warnings():
    # starlette suggests httpx2 for its test client; httpx still works and is what we ship
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def model_path(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the server's temp files at an empty folder we can inspect."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture()
def client(model: EmotionModel, private_tmp: Path):
    with TestClient(server.create_app(model)) as c:
        yield c


def wav_bytes(seconds: float, freq: float = 440.0, fmt: str = "WAV") -> bytes:
    """A noisy tone as the bytes of an audio file."""
    return audio_bytes(tone(freq, seconds) + noise(seconds, seed=int(freq)), fmt=fmt)


def predict_on_disk(model: EmotionModel, data: bytes, tmp_path: Path, name: str = "ref.wav"):
    p = tmp_path / name
    p.write_bytes(data)
    return model.predict_file(p, timeline=True)


def test_health_reports_model_settings_and_limits(client: TestClient, model: EmotionModel):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"]["file"] == model.path.name
    assert body["model"]["settings"] == model.settings.to_dict()
    assert body["model"]["settings"]["window_seconds"] == 2.0
    assert body["limits"]["max_upload_bytes"] == 50_000_000
    assert ".wav" in body["limits"]["audio_extensions"]


def test_one_good_file_matches_the_library_with_timeline(client, model, tmp_path):
    data = wav_bytes(7.0)
    r = client.post("/api/predict", files={"file": ("song.wav", data, "audio/wav")})
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


def test_file_within_one_window_has_no_timeline(client):
    r = client.post("/api/predict", files={"file": ("short.flac", wav_bytes(1.5, fmt="FLAC"), "audio/flac")})
    assert r.status_code == 200
    (res,) = r.json()["results"]
    assert res["windows"] == 1 and res["timeline"] == []
    assert 0.0 <= res["valence"] <= 1.0


def test_deam_scale(client, model, tmp_path):
    data = wav_bytes(3.0)
    r = client.post("/api/predict?scale=deam", files={"file": ("a.wav", data, "audio/wav")})
    ref = predict_on_disk(model, data, tmp_path)
    assert r.json()["results"][0]["valence"] == round(float(to_deam(ref.valence)), 4)


def test_not_audio_is_415_and_never_stored(client, private_tmp):
    r = client.post("/api/predict", files={"file": ("notes.txt", b"just text", "text/plain")})
    assert r.status_code == 415
    body = r.json()
    assert body["error"].startswith("notes.txt: not an audio file")
    assert body["results"][0]["status"] == 415
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("garbage.wav", b"RIFF\x00\x00not really a wave file" * 50, "not a supported audio format"),
        ("empty.wav", b"", "empty file"),
        ("blip.wav", None, "too short"),
    ],
)
def test_undecodable_single_file_is_422(client, name, data, reason):
    data = wav_bytes(0.2) if data is None else data
    r = client.post("/api/predict", files={"file": (name, data, "audio/wav")})
    assert r.status_code == 422
    body = r.json()
    assert reason in body["error"] and body["error"].startswith(f"{name}: ")
    assert body["results"][0]["valence"] is None


def test_many_files_at_once_keep_order_and_per_file_errors(client, model, tmp_path, private_tmp):
    good = [wav_bytes(3.0 + i, freq=220.0 * (i + 1)) for i in range(4)]
    files = [
        ("files", ("a.wav", good[0], "audio/wav")),
        ("files", ("bad.mp3", b"\xff\xfb" + os.urandom(3000), "audio/mpeg")),
        ("files", ("b.wav", good[1], "audio/x-wav")),
        ("files", ("image.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")),
        ("files", ("c.wav", good[2], "application/octet-stream")),
        ("files", ("d", good[3], "audio/wav")),  # no suffix: the audio/* type is trusted
    ]
    r = client.post("/api/predict", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["a.wav", "bad.mp3", "b.wav", "image.png", "c.wav", "d"]
    assert [x["status"] for x in results] == [200, 422, 200, 415, 200, 200]
    for res, data in zip([results[0], results[2], results[4], results[5]], good, strict=True):
        ref = predict_on_disk(model, data, tmp_path).row()
        assert (res["valence"], res["arousal"]) == (ref["valence"], ref["arousal"])
    assert results[1]["error"] and results[3]["error"]
    assert list(private_tmp.iterdir()) == []  # every temp file is gone
    assert client.get("/api/health").status_code == 200  # and the server is still fine


def test_temp_files_are_private_and_never_named_by_the_client(model, private_tmp, tmp_path):
    seen: list[tuple[Path, int]] = []

    class Recording(EmotionModel):
        """The real model, noting which file it was asked to read and its mode."""

        def predict_file(self, path, *args, **kwargs):
            seen.append((Path(path), stat.S_IMODE(os.stat(path).st_mode)))
            return super().predict_file(path, *args, **kwargs)

    outside = tmp_path / "evil.wav"
    with TestClient(server.create_app(Recording(model.path))) as c:
        r = c.post("/api/predict", files={"file": ("../../evil.wav", wav_bytes(2.5), "audio/wav")})
    assert r.status_code == 200
    assert r.json()["results"][0]["file"] == "evil.wav"
    ((path, mode),) = seen
    assert path.parent == private_tmp and path.name.startswith(server.TEMP_PREFIX)
    assert path.suffix == ".wav" and "evil" not in path.name
    assert mode == 0o600
    assert not path.exists() and not outside.exists()


def test_oversized_upload_is_413_while_streaming(model, private_tmp):
    """The server must stop reading at the limit, not after the whole body is in."""
    limit = 64 * 1024
    app = server.create_app(model, max_upload_bytes=limit)
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
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post("/api/predict", content=body(),
                                headers={"content-type": f"multipart/form-data; boundary={boundary}"})

    r = anyio.run(go)
    assert r.status_code == 413
    assert r.json()["error"].startswith("big.wav: larger than the upload limit")
    assert sent <= limit // len(chunk) + 2  # stopped right after the limit
    assert list(private_tmp.iterdir()) == []


def test_oversized_in_a_batch_refuses_the_request_and_cleans_up(model, private_tmp):
    with TestClient(server.create_app(model, max_upload_bytes=100_000)) as c:
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


def test_unwritable_temp_dir_is_503_not_a_crash(model, tmp_path, monkeypatch):
    with TestClient(server.create_app(model)) as c:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
        r = c.post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
        assert r.status_code == 503 and "cannot store uploads" in r.json()["error"]
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        r = c.post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
        assert r.status_code == 200


def test_too_many_files(client):
    files = [("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(server.MAX_FILES + 1)]
    r = client.post("/api/predict", files=files)
    assert r.status_code == 413 and "too many files" in r.json()["error"]


def test_model_is_loaded_once_at_startup(model_path):
    app = server.create_app(model_path)
    assert app.state.m2e.model is None
    with TestClient(app) as c:
        loaded = app.state.m2e.model
        assert isinstance(loaded, EmotionModel)  # loaded before any request
        c.post("/api/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")})
        assert app.state.m2e.model is loaded


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
    assert {"413", "415", "422"} <= set(spec["paths"]["/api/predict"]["post"]["responses"])
    assert "/api/health" in spec["paths"]


def test_no_cors_unless_asked(model):
    headers = {"Origin": "http://elsewhere.test"}
    with TestClient(server.create_app(model)) as c:
        assert "access-control-allow-origin" not in c.get("/api/health", headers=headers).headers
    with TestClient(server.create_app(model, cors_origins=["http://elsewhere.test"])) as c:
        r = c.get("/api/health", headers=headers)
        assert r.headers["access-control-allow-origin"] == "http://elsewhere.test"


def test_helpers_never_keep_a_client_path():
    assert server.display_name(b"C:\\Users\\me\\song.mp3") == "song.mp3"
    assert server.display_name(b"../../etc/passwd\x00\n") == "passwd"
    assert server.display_name(b"/") == "upload"
    assert server.audio_suffix("song.MP3", "") == ".mp3"
    assert server.audio_suffix("song.exe", "application/octet-stream") is None
    assert server.audio_suffix("song", "audio/mpeg") == ".mp3"
    assert server.audio_suffix("song.m4a", "audio/mp4") == ""  # tried; the decoder decides


def test_cli_serve_reports_bad_options_in_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("music2emotion serve: error:") and "model file not found" in err
    assert "\n" not in err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--max-upload-mb", "0"]) == 2


def test_error_body_is_json_on_every_refusal(client):
    for r in (client.post("/api/predict", content=b"{}", headers={"content-type": "application/json"}),
              client.post("/api/predict", files={"f": ("x.doc", b"abc", "application/msword")})):
        body = json.loads(r.text)
        assert set(body) == {"results", "error"} and body["error"]
