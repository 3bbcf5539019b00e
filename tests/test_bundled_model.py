"""The model that ships inside the package: loads offline, predicts WAV and MP3, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from conftest import MAJOR, clicks, tone, write
from music2emotion import predict_file
from music2emotion.cli import main
from music2emotion.inference import EmotionModel, bundled_model_path


def test_bundled_model_is_small_and_describes_itself():
    path = bundled_model_path()
    assert path.is_file() and path.stat().st_size < 5 * 2**20
    model = EmotionModel()
    assert model.settings.sample_rate == 22_050 and model.settings.n_mels == 64
    assert "validation" in model.info


def test_predicts_wav_and_mp3_from_the_command_line(tmp_path, capsys):
    y = tone(MAJOR, 12.0) + clicks(6, 12.0, amp=0.3)
    wav, mp3 = write(tmp_path / "song.wav", y), write(tmp_path / "song.mp3", y)
    assert main(["predict", str(wav), str(mp3), "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    values = [[float(v) for v in line.split()[1:3]] for line in lines[1:]]
    assert len(values) == 2 and all(0 <= v <= 1 for pair in values for v in pair)
    # lossy MP3 coding of the same signal barely moves the prediction
    assert np.abs(np.subtract(*values)).max() < 0.05


def test_library_api_without_torch(tmp_path):
    path = write(tmp_path / "x.wav", tone(440, 3.0))
    code = (
        "import sys, json; from music2emotion import predict_file; "
        f"r = predict_file({str(path)!r}); "
        "print(json.dumps([r.valence, r.arousal, r.error, 'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    valence, arousal, error, torch_loaded = json.loads(out.stdout)
    assert error == "" and 0 <= valence <= 1 and 0 <= arousal <= 1
    assert torch_loaded is False
    assert predict_file(path).valence == valence
