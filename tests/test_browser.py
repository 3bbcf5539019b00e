"""End to end: the real server (uvicorn on 127.0.0.1), the page in headless Chromium.

The server wants a token: the page asks for it, a wrong one is refused and asked for again,
the right one is kept for the next visit until "Forget the token". A 503 (busy) is sent again
after its Retry-After. A generated WAV is picked through the file input
and another is dropped on the drop zone; the table, the point on the valence-arousal plane
and the downloaded CSV must show the same numbers as ``music2emotion predict`` on the same
files, and the page and the API docs must load nothing from anywhere but the server. Needs Debian's ``chromium`` and the ``playwright``
Python package (``.ci/run`` installs both): skipped when they are absent, except in CI
(``CI`` set), where their absence is a failure.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import clicks, tone, write

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
pytestmark = pytest.mark.slow


def _need(ok: bool, reason: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs it: see .ci/run)")
        pytest.skip(reason)


try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")

from music2emotion.config import MOOD_CLASSES, MOOD_COLORS  # noqa: E402
from music2emotion.server import ServerSettings, create_app, running  # noqa: E402

TOKEN = "a token for the page"


@pytest.fixture(scope="module")
def model_path(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def browser():
    _need(sync_playwright is not None, "the playwright Python package is not installed")
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def make_wav(path: Path, seconds: float, freq: float) -> Path:
    return write(path, tone(freq, seconds) + clicks(4, seconds, amp=0.2))


def cli_predict(model: Path, files: list[Path]) -> dict[str, dict]:
    """What ``music2emotion predict`` says about ``files``, keyed by file name."""
    out = subprocess.run(
        [sys.executable, "-m", "music2emotion.cli", "predict", "--model", str(model),
         "--format", "jsonl", "--jobs", "1", *map(str, files)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {Path(r["path"]).name: r for r in rows}


def test_drop_a_song_and_see_the_same_numbers_as_predict(browser, model_path, tmp_path):
    picked = make_wav(tmp_path / "picked song.wav", 7.0, 330.0)
    dropped = make_wav(tmp_path / "dropped.wav", 1.5, 660.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    expected = cli_predict(model_path, [picked, dropped])

    with running(create_app(model_path, ServerSettings(workers=1, token=TOKEN))) as url:
        context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        page = context.new_page()
        foreign: list[str] = []
        page.on("request", lambda req: None if req.url.startswith((url, "data:", "blob:")) else foreign.append(req.url))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.wait_for_selector("#model-info a")  # /api/health answered
        # the footer names the model as --model does (a file's stem; a bundled model's name)
        assert page.locator("#model-info").inner_text().startswith(f"Model {model_path.stem} · ")
        page.wait_for_selector("#token-form", state="visible")  # and said a token is needed
        page.fill("#token-input", "not the token")
        page.click("#token-form button[type=submit]")
        assert page.locator("#token-form").is_hidden()

        # pick one file through the input, drop another on the drop zone, pick a non-audio file
        page.set_input_files("#file-input", str(picked))
        page.evaluate(
            """([name, b64]) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, { type: "audio/wav" }));
                const zone = document.getElementById("drop");
                zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
            }""",
            [dropped.name, base64.b64encode(dropped.read_bytes()).decode()],
        )
        page.set_input_files("#file-input", str(notes))
        # the wrong token is refused (401): the page asks again, and sends the files once it has it
        page.wait_for_selector("#token-form", state="visible")
        assert "refused" in page.locator("#token-message").inner_text()

        # the first upload with the right token finds the server busy (503): the page waits
        # the Retry-After it names and sends that file again
        sent: list[tuple[float, str]] = []  # (when, file) of each upload with the right token

        def once_busy(route):
            req = route.request
            if req.method == "POST" and req.headers.get("authorization") == f"Bearer {TOKEN}":
                name = re.search(rb'filename="([^"]*)"', req.post_data_buffer or b"")
                sent.append((time.monotonic(), name.group(1).decode() if name else ""))
                if len(sent) == 1:
                    route.fulfill(status=503, headers={"Retry-After": "2"}, content_type="application/json",
                                  body=json.dumps({"error": "the server is busy", "results": []}))
                    return
            route.continue_()

        page.route("**/api/predict", once_busy)
        page.fill("#token-input", TOKEN)
        page.press("#token-input", "Enter")
        finished = "#results tbody tr[data-state=done], #results tbody tr[data-state=error]"
        page.wait_for_function(f"() => document.querySelectorAll('{finished}').length === 3", timeout=60_000)
        (refused_at, refused), *later = sent
        assert sorted(name for _, name in later) == sorted([picked.name, dropped.name, notes.name])
        again = next(t for t, name in later if name == refused)
        assert again - refused_at >= 1.9  # not before the Retry-After

        for f in (picked, dropped):
            want = expected[f.name]
            row = page.locator(f"#results tbody tr[data-file='{f.name}']")
            assert row.get_attribute("data-state") == "done"
            assert float(row.locator("td.valence").inner_text()) == want["valence"]
            assert float(row.locator("td.arousal").inner_text()) == want["arousal"]
            point = page.locator(f"#plane circle.point[data-file='{f.name}']")
            assert float(point.get_attribute("data-valence")) == want["valence"]
            assert float(point.get_attribute("data-arousal")) == want["arousal"]
            # the point sits where its numbers say on the plot
            area = page.locator("#plane rect.plot-area").bounding_box()
            box = point.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            assert (cx - area["x"]) / area["width"] == pytest.approx(want["valence"], abs=0.01)
            assert 1 - (cy - area["y"]) / area["height"] == pytest.approx(want["arousal"], abs=0.01)

        bad = page.locator("#results tbody tr[data-file='notes.txt']")
        assert bad.get_attribute("data-state") == "error"
        assert "not an audio file" in bad.locator("td.status").inner_text()

        # a model without a mood head or intervals: no bars, no crosses
        assert page.locator("#plane .interval").count() == 0

        # the longer file's emotion-over-time curve: one dot per window and per series
        page.click(f"#results tbody tr[data-file='{picked.name}']")
        assert page.locator("#moods").is_hidden()
        windows = expected[picked.name]["windows"]
        assert windows > 1
        assert page.locator("#timeline path.series").count() == 2
        assert page.locator("#timeline circle.dotpt").count() == 2 * windows
        assert picked.name in page.locator("#timeline-file").inner_text()

        with page.expect_download() as dl:
            page.click("#download")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        by_name = {r["path"]: r for r in rows}
        assert set(by_name) == {picked.name, dropped.name, notes.name}
        for f in (picked, dropped):
            assert float(by_name[f.name]["valence"]) == expected[f.name]["valence"]
            assert float(by_name[f.name]["arousal"]) == expected[f.name]["arousal"]
        assert by_name[notes.name]["error"]

        # phone width: nothing spills sideways outside the table's own scroller
        page.set_viewport_size({"width": 375, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0

        # the token is kept: the next visit does not ask
        page.reload()
        page.wait_for_selector("#model-info a")
        assert page.locator("#token-form").is_hidden() and page.locator("#token-forget").is_visible()
        # until it is forgotten: then the page asks again, and the next visit too
        page.click("#token-forget")
        page.wait_for_selector("#token-form", state="visible")
        assert page.evaluate("() => localStorage.length") == 0
        page.reload()
        page.wait_for_selector("#token-form", state="visible")

        # the API docs render from the package's own copy of Swagger UI
        page.goto(url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert "/api/predict" in page.locator(".swagger-ui").inner_text()
        context.close()

    assert foreign == [], f"the page loaded from elsewhere: {foreign}"
    assert errors == [], f"script errors on the page: {errors}"


def test_moods_and_intervals_on_the_page(browser, mood_model, mood_folder, tmp_path):
    """A model with a mood head and intervals: a cross around each point spans its
    intervals, the selected file shows four bars, the CSV has predict's columns."""
    files = sorted(mood_folder.iterdir())
    expected = cli_predict(mood_model, files)
    with running(create_app(mood_model, ServerSettings(workers=1))) as url:
        context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.wait_for_selector("#model-info a")
        page.set_input_files("#file-input", [str(f) for f in files])
        page.wait_for_function("n => document.querySelectorAll('#results tbody tr[data-state=done]').length === n",
                               arg=len(files), timeout=60_000)
        area = page.locator("#plane rect.plot-area").bounding_box()
        for f in files:
            want = expected[f.name]
            cross = page.locator(f"#plane g.interval[data-file='{f.name}']")
            across, up = (cross.locator(f"line.span-{k}").bounding_box() for k in ("valence", "arousal"))
            # the cross spans the valence interval across and the arousal interval up
            assert (across["x"] - area["x"]) / area["width"] == pytest.approx(want["valence_low"], abs=0.01)
            assert (across["x"] + across["width"] - area["x"]) / area["width"] == pytest.approx(want["valence_high"], abs=0.01)
            assert 1 - (up["y"] + up["height"] - area["y"]) / area["height"] == pytest.approx(want["arousal_low"], abs=0.01)
            assert 1 - (up["y"] - area["y"]) / area["height"] == pytest.approx(want["arousal_high"], abs=0.01)
            # the word the CLI writes, in its colour in the pictures
            mood = page.locator(f"#results tbody tr[data-file='{f.name}'] td.mood")
            assert mood.inner_text() == want["mood"]
            assert mood.evaluate("n => n.style.getPropertyValue('--q')") == MOOD_COLORS[want["mood"]]
        # the plane's quadrants are named by the same words, in the same colours
        words = page.locator("#plane text.quad-label")
        assert sorted(words.nth(i).text_content() for i in range(words.count())) == sorted(MOOD_CLASSES)
        page.click("#results tbody tr[data-file='sad.wav']")
        bars = page.locator("#moods .mood-bar")
        assert bars.count() == 4
        shown = {bars.nth(i).get_attribute("data-mood"): float(bars.nth(i).get_attribute("data-p")) for i in range(4)}
        assert shown == {m: expected["sad.wav"][f"p_{m}"] for m in ("happy", "angry", "sad", "tender")}
        assert page.locator("#moods .mood-bar.likeliest").get_attribute("data-mood") == "sad"
        with page.expect_download() as dl:
            page.click("#download")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        from music2emotion.output import COLUMNS

        assert list(rows[0]) == COLUMNS
        for r in rows:
            want = expected[r["path"]]
            assert r["mood"] == want["mood"] and float(r["p_sad"]) == want["p_sad"]
            assert float(r["arousal_high"]) == want["arousal_high"]
        context.close()
    assert errors == [], f"script errors on the page: {errors}"
