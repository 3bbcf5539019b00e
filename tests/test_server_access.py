"""Who may call ``music2emotion serve``: the Host allow-list (DNS rebinding), cross-origin
POSTs, the bearer token, and the command line's rules for listening beyond loopback.

Every refusal here happens before any analysis, so the app runs alone (no lifespan, no
worker process): quick.
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")

from music2emotion import server  # noqa: E402
from music2emotion.cli import main  # noqa: E402
from music2emotion.server import ServerSettings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

TOKEN = "correct horse battery staple"
NOT_AUDIO = {"f": ("notes.txt", b"text", "text/plain")}  # passes the guard, then 415: no worker needed


def app_client(model, host: str = "localhost", **settings: object) -> TestClient:
    return TestClient(server.create_app(model, ServerSettings(**settings)), base_url=f"http://{host}")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "localhost:8000", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_are_served(model, host):
    c = app_client(model, host=host)
    assert c.get("/").status_code == 200
    assert c.get("/api/health").status_code == 200


def test_other_host_names_are_refused_everywhere(model):
    """A page on evil.example whose name resolves to 127.0.0.1 sends Host: evil.example."""
    c = app_client(model, host="evil.example:8000")
    for r in (c.get("/"), c.get("/api/health"), c.post("/api/predict", files=NOT_AUDIO)):
        assert r.status_code == 400 and r.headers["connection"] == "close"
        assert r.json()["error"].startswith("this server does not answer to the host name 'evil.example'")
        assert "--allow-host evil.example" in r.json()["error"]
    assert app_client(model, host="evil.example", allowed_hosts=("evil.example",)).get("/").status_code == 200
    wide = ("localhost", "*.music.example")
    assert app_client(model, host="a.music.example", allowed_hosts=wide).get("/").status_code == 200
    assert app_client(model, host="music.example.evil", allowed_hosts=wide).get("/").status_code == 400
    assert app_client(model, host="anything", allowed_hosts=("*",)).get("/").status_code == 200


def test_a_post_from_another_origin_is_refused(model, private_tmp):
    c = app_client(model)
    for origin in ("http://evil.example", "null", "http://localhost:9999"):
        r = c.post("/api/predict", files=NOT_AUDIO, headers={"Origin": origin})
        assert r.status_code == 403, origin
        assert r.json()["error"] == (f"requests from pages of {origin} are refused (start the server "
                                     f"with --cors-origin {origin} to allow them)")
        assert "access-control-allow-origin" not in r.headers
    # the page's own origin, and clients that send none (curl, scripts), pass
    assert c.post("/api/predict", files=NOT_AUDIO, headers={"Origin": "http://localhost"}).status_code == 415
    assert c.post("/api/predict", files=NOT_AUDIO).status_code == 415
    # reading is not spending: a cross-origin GET of the health passes (no CORS header: unreadable)
    r = c.get("/api/health", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert list(private_tmp.iterdir()) == []


def test_cors_origins_are_let_in_with_their_headers(model):
    c = app_client(model, cors_origins=("https://app.example",))
    r = c.post("/api/predict", files=NOT_AUDIO, headers={"Origin": "https://app.example"})
    assert r.status_code == 415 and r.headers["access-control-allow-origin"] == "https://app.example"
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    r = c.options("/api/predict", headers=preflight)
    assert r.status_code == 200 and "authorization" in r.headers["access-control-allow-headers"].lower()
    r = c.options("/api/predict", headers={**preflight, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "https://evil.example" in r.json()["error"]


def test_a_token_guards_the_api_but_not_the_page(model):
    c = app_client(model, token=TOKEN)
    r = c.post("/api/predict", files=NOT_AUDIO)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="music2emotion"'
    assert r.json()["error"] == "this server needs a token: send the header 'Authorization: Bearer <token>'"
    for wrong in ("Bearer nope", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
        r = c.post("/api/predict", files=NOT_AUDIO, headers={"Authorization": wrong})
        assert r.status_code == 401, wrong
    r = c.post("/api/predict", files=NOT_AUDIO, headers={"Authorization": "Bearer nope"})
    assert r.json()["error"] == "wrong token" and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert c.post("/api/predict", files=NOT_AUDIO, headers={"Authorization": f"bearer {TOKEN}"}).status_code == 415
    # open: the page, its files, the docs, and the health, which tells the page to ask
    for path in ("/", "/static/app.js", "/docs", "/openapi.json"):
        assert c.get(path).status_code == 200, path
    health = c.get("/api/health").json()
    assert health["auth"] is True and TOKEN not in str(health)
    assert app_client(model).get("/api/health").json()["auth"] is False


def test_settings_refuse_what_cannot_work():
    with pytest.raises(ValueError, match="max_duration must be a positive number"):
        ServerSettings(max_duration=0)
    with pytest.raises(ValueError, match="max_temp_bytes must be at least max_upload_bytes"):
        ServerSettings(max_temp_bytes=10, max_upload_bytes=100)
    with pytest.raises(ValueError, match="token must not be empty"):
        ServerSettings(token=" ")
    with pytest.raises(TypeError, match="unknown server settings: max_duraton"):
        ServerSettings().with_changes(max_duraton=5)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_listening_beyond_loopback_needs_a_token(host, capsys, monkeypatch):
    monkeypatch.delenv(server.TOKEN_ENV, raising=False)
    assert main(["serve", "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"--host {host} lets other machines upload files: set a token" in err
    assert "--no-token" in err and err.count("\n") == 1
    assert main(["serve", "--host", host, "--token", "x", "--no-token"]) == 2
    assert "contradict" in capsys.readouterr().err
    monkeypatch.setenv(server.TOKEN_ENV, " ")
    assert main(["serve", "--host", host]) == 2
    assert "--token must not be empty" in capsys.readouterr().err
