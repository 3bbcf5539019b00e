"""Take docs/screenshot.png: the page with a few analysed clips, in headless Chromium.

    python docs/make_screenshot.py [--model accurate|fast|MODEL.onnx] [--out docs/screenshot.png] [--phone phone.png]

Generates five synthetic clips (the repository ships no music), serves the page on
127.0.0.1, drops the clips through the file input, selects the longest one so its
emotion-over-time curve shows, and saves a full-page screenshot. Needs the ``serve`` extra,
``playwright`` (Python package) and Debian's ``chromium`` at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from music2emotion.server import create_app, running

SR = 22_050
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _chords(t: np.ndarray, chords: list[tuple[float, ...]], beat: float, decay: float) -> np.ndarray:
    y = np.zeros_like(t)
    for i in range(int(np.ceil(t[-1] / beat)) + 1):
        seg = (t >= i * beat) & (t < (i + 1) * beat)
        for f in chords[i % len(chords)]:
            y[seg] += np.sin(2 * np.pi * f * t[seg]) * np.exp(-decay * (t[seg] - i * beat))
    return y / (np.abs(y).max() + 1e-9)


def demo_clips(folder: Path) -> list[Path]:
    """Five short synthetic pieces of different character."""
    rng = np.random.default_rng(7)
    clips: dict[str, np.ndarray] = {}
    t = np.arange(45 * SR) / SR
    major = [(261.6, 329.6, 392.0), (349.2, 440.0, 523.3), (392.0, 493.9, 587.3), (261.6, 329.6, 392.0)]
    beat = (np.mod(t, 0.4) < 0.02) * rng.standard_normal(len(t))
    clips["sunny chords.wav"] = 0.3 * _chords(t, major, 1.6, 1.2) + 0.25 * beat
    t = np.arange(40 * SR) / SR
    pad = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 164.8, 220.0, 277.2))
    clips["slow pad.wav"] = 0.2 * pad / 4 * (0.6 + 0.4 * np.sin(2 * np.pi * t / 20))
    t = np.arange(30 * SR) / SR
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-25 * np.mod(t, 0.2))
    hats = (np.mod(t, 0.1) < 0.015) * rng.standard_normal(len(t))
    clips["fast beats.wav"] = np.tanh(2.5 * (0.6 * kick + 0.4 * hats + 0.1 * rng.standard_normal(len(t))))
    t = np.arange(50 * SR) / SR
    minor = [(110.0, 130.8, 164.8), (98.0, 116.5, 146.8)]
    clips["minor drone.wav"] = 0.25 * _chords(t, minor, 5.0, 0.2)
    t = np.arange(90 * SR) / SR
    ramp = t / t[-1]
    rate = 0.6 - 0.45 * ramp
    phase = np.cumsum(1.0 / rate) / SR
    clicks = (np.mod(phase, 1.0) < 0.05) * rng.standard_normal(len(t))
    clips["build-up.wav"] = (0.05 + 0.5 * ramp) * (0.5 * _chords(t, major, 2.0, 0.8) + ramp * clicks)
    paths = []
    for name, y in clips.items():
        p = folder / name
        sf.write(p, (0.9 * y / (np.abs(y).max() + 1e-9)).astype(np.float32), SR)
        paths.append(p)
    return paths


def shoot(url: str, files: list[Path], out: Path, phone: Path | None, select: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1,
                                    color_scheme="light")
            page.goto(url)
            page.wait_for_selector("#model-info a")
            page.set_input_files("#file-input", [str(f) for f in files])
            page.wait_for_function(
                "n => document.querySelectorAll('#results tbody tr[data-state=done]').length === n",
                arg=len(files), timeout=120_000)
            page.click(f"#results tbody tr[data-file='{select}']")
            page.wait_for_timeout(400)  # let the progress bar's transition settle
            page.screenshot(path=str(out), full_page=True)
            if phone:
                page.set_viewport_size({"width": 390, "height": 844})
                page.wait_for_timeout(300)
                page.screenshot(path=str(phone), full_page=True)
        finally:
            browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="ONNX model file, or a bundled model by name (default: accurate)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("screenshot.png")))
    ap.add_argument("--phone", help="also save a phone-width screenshot here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = demo_clips(Path(tmp))
        with running(create_app(args.model)) as url:
            shoot(url, files, Path(args.out), Path(args.phone) if args.phone else None, "build-up.wav")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
