"""The models that ship inside the package: load offline by name, predict WAV and MP3, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import MAJOR, clicks, tone, write

from music2emotion import EmotionModel, predict_file
from music2emotion.cli import main
from music2emotion.modelfile import BUNDLED_MODELS, bundled_model_path, resolve_model

# what the shipped models do, checked against every installed wheel by the compatibility matrix
pytestmark = pytest.mark.golden


@pytest.mark.parametrize("name, kind", [("accurate", "mel"), ("fast", "mel"), ("large", "mel-patches"), ("seed", "cnn")])
def test_bundled_models_are_small_and_describe_themselves(name, kind):
    path = bundled_model_path(name)
    # the mel models are the 4.4 MB encoder and their heads (accurate's 1.6 MB of regressors,
    # mostly support vectors); large adds musicnn (1.6 MB in float16) and wider regressors
    assert path.is_file() and path.stat().st_size < 9 * 2**20
    model = EmotionModel(name)
    assert model.path == path and model.kind == kind
    assert model.settings.sample_rate == 22_050 and model.settings.n_mels == 64
    # each was validated and says so: the seed on its DEAM split, the others on train's folds
    validation = model.info["validation"]
    assert set(validation) >= ({"valence", "arousal"} if kind == "cnn" else {"folds", "mean", "std", "all"})


@pytest.mark.parametrize("name, deam_r2", [("accurate", 0.52), ("fast", 0.45), ("large", 0.55)])
def test_both_scales_learnt_from_their_datasets_and_say_how_they_did(name, deam_r2):
    """The one answer comes from the songs labelled by mood, DEAM's convention from DEAM's
    ratings; both hear the window at 16 kHz (so an MP3's lowpass does not move them), and the
    file carries what it was trained on and the cross-validated figures of each."""
    model = EmotionModel(name)
    info = model.info
    assert info["settings"]["descriptor_rate"] == 16_000 and info["arch"] == name
    trained = info["trained_on"]
    assert trained["labels"] == ["moods", "ratings"] and trained["rated"] == 1441
    assert trained["moods"] == {"happy": 157, "angry": 158, "sad": 158, "tender": 158}
    assert trained["rating_scale"] == "1-9" and trained["sources"] == ["labels.csv", "annotations"]
    assert set(model.conventions) == {"unit", "deam"} and model.window_outputs == ("output", "deam")
    mean = info["validation"]["mean"]
    assert mean["valence_auc"] > 0.8 and mean["arousal_auc"] > 0.94
    assert mean["happy_vs_angry"] > mean["tender_vs_sad"] > 0.65
    # DEAM's convention explains about half of DEAM's ratings (MODEL_CARD.md, "Two
    # conventions"): 0.522 / 0.546 for the accurate model, 0.461 / 0.485 for the fast one's
    # ridge, 0.555 / 0.589 for large
    assert mean["valence_r2"] > deam_r2 and mean["arousal_r2"] > deam_r2
    # the panel's valence is the one answer's plus about half the energy
    assert 0.3 < info["conventions"]["unit"]["deam_relation"]["beta"] < 0.6


@pytest.mark.parametrize("name", ["accurate", "large"])
def test_the_default_and_large_say_how_sure_they_are(name):
    """Both scales carry calibrated spreads and 90 % intervals, with the out-of-fold figures
    that chose them."""
    model = EmotionModel(name)
    assert model.mood_head and model.intervals is not None
    for conv in model.conventions.values():
        assert all(0.1 < w < 0.25 for w in conv.intervals) and all(0.01 < s < 0.1 for s in conv.spread)
    everything = model.info["validation"]["all"]
    assert everything["mood_right"] > 0.7 and everything["ece"] < 0.05
    assert all(0.88 <= everything[f"{d}_coverage"] <= 0.92 for d in ("valence", "arousal"))


def test_the_seed_model_keeps_the_seeds_onnx_contract():
    """The seed's emotion_model_improved.onnx took [1, 1, 64, 1292] (30 s of log-mels);
    the bundled seed CNN takes any batch and any number of frames."""
    import onnxruntime as ort

    path = bundled_model_path("seed")
    assert path.stat().st_size < 0.2 * 2**20  # the 3-block CNN, about 0.1 MB
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 1, 64, 1292)).astype(np.float32)
    (out,) = session.run(None, {"input": x})
    assert out.shape == (3, 2) and ((out >= 0) & (out <= 1)).all()
    assert EmotionModel("seed").predict_features(x) == pytest.approx(out, abs=1e-6)
    assert session.run(None, {"input": x[:1, :, :, :431]})[0].shape == (1, 2)  # a 10 s window


def test_model_names_and_paths_resolve(tmp_path, monkeypatch):
    assert set(BUNDLED_MODELS) == {"accurate", "fast", "large", "seed"}
    assert resolve_model(None) == bundled_model_path("accurate") == EmotionModel().path
    with pytest.raises(FileNotFoundError, match="accurate, fast, large, seed"):
        resolve_model("quick")
    with pytest.raises(ValueError, match="no bundled model"):
        bundled_model_path("quick")
    # a file that happens to be called like a bundled model is that file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"not a model")
    assert resolve_model("fast").resolve() == tmp_path / "fast"


def test_every_bundled_model_hears_energy_as_arousal(tmp_path, capsys):
    calm = write(tmp_path / "calm.wav", 0.05 * tone(MAJOR, 10.0))
    busy = write(tmp_path / "busy.wav", 0.5 * tone(MAJOR, 10.0) + clicks(8, 10.0, amp=0.9))
    for name in BUNDLED_MODELS:
        model = EmotionModel(name, threads=1)
        quiet, loud = model.predict_file(calm), model.predict_file(busy)
        assert loud.arousal > quiet.arousal + 0.05, name


def test_the_fast_model_from_the_command_line(tmp_path, capsys):
    wav = write(tmp_path / "song.wav", tone(MAJOR, 12.0) + clicks(6, 12.0, amp=0.3))
    assert main(["predict", str(wav), "--jobs", "1", "--model", "fast"]) == 0
    fast = [float(v) for v in capsys.readouterr().out.splitlines()[1].split()[1:3]]
    direct = predict_file(wav, model="fast")
    assert fast == pytest.approx([direct.valence, direct.arousal], abs=1e-4)
    assert main(["predict", str(wav), "--model", "quick"]) == 2
    assert "accurate, fast, large, seed" in capsys.readouterr().err


def test_predicts_wav_and_mp3_from_the_command_line(tmp_path, capsys):
    y = tone(MAJOR, 12.0) + clicks(6, 12.0, amp=0.3)
    wav, mp3 = write(tmp_path / "song.wav", y), write(tmp_path / "song.mp3", y)
    assert main(["predict", str(wav), str(mp3), "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    values = [[float(v) for v in line.split()[1:3]] for line in lines[1:]]
    assert len(values) == 2 and all(0 <= v <= 1 for pair in values for v in pair)
    # lossy MP3 coding of the same signal barely moves the prediction. Ideal clicks on a pure
    # chord are the worst case (the coder smears every impulse, and the quadrant head hears the
    # smear as mood): valence moves 0.11 here, against at most 0.0015 for ten real songs
    # re-encoded as MP3 at 192 kbit/s (bench/formats.py; MODEL_CARD.md, "Robustness")
    assert np.abs(np.subtract(*values)).max() < 0.15


@pytest.mark.slow
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
