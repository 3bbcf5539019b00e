"""Fixtures shared by the test modules. Plain helpers (generated audio) are in ``helpers.py``.

Markers (registered in ``pyproject.toml``): ``slow`` for training, Ray start-up, the browser
and tests that start processes (``pytest -m "not slow"`` is the quick loop; CI runs all),
and ``golden`` for the tests that pin what the bundled models output. This module imports
only what the package itself needs at module level, so ``pytest -m golden`` runs against an
installed wheel with nothing else but pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The tiny test model's window: short files (and tests) still give several windows.
TINY_WINDOW = 2.0


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised small CNN exported with the real exporter, 2 s windows: the real
    ONNX path without a bundled model. Its values mean nothing; tests check plumbing."""
    torch = pytest.importorskip("torch")
    from music2emotion.config import FeatureSettings
    from music2emotion.training.cnn import EmotionCNN
    from music2emotion.training.export import export_onnx

    torch.manual_seed(0)
    return export_onnx(EmotionCNN(channels=(4, 8), hidden=8), FeatureSettings(window_seconds=TINY_WINDOW),
                       tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def model(tiny_model: Path) -> Any:
    """:func:`tiny_model`, loaded on one thread."""
    from music2emotion import EmotionModel

    return EmotionModel(tiny_model, threads=1)


# The test mood model's scales: (valence, arousal) interval half-widths and logistic
# spreads on the 0-1 scale, of its one answer and of its DEAM convention.
MOOD_INTERVALS = (0.15, 0.1)
MOOD_SPREAD = (0.08, 0.06)
DEAM_INTERVALS = (0.2, 0.12)
DEAM_SPREAD = (0.1, 0.07)
# its DEAM convention: valence = (v + 0.5) / 2 + DEAM_BETA (a - 0.5), arousal = a
DEAM_BETA = 0.2


def _mood_graph(tmp_path_factory: pytest.TempPathFactory, legacy: bool) -> Path:
    """A descriptors model of 2 s windows fitted on generated clips whose moods follow the
    sound (helpers.mood_clip): a multinomial logistic on the descriptors, whose
    probabilities make ``output`` (valence = p_happy + p_tender, arousal = p_happy +
    p_angry), written with onnx.helper. As models are made from 0.4 on, it has DEAM's
    convention as a second output (``deam``) and both scales' spreads and intervals in its
    metadata (``legacy=False``); as 0.3 made them, the probabilities are an output of their
    own (``moods``) and the intervals sit at the top of the metadata."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from helpers import MOOD_SOUNDS, mood_clip
    from onnx import TensorProto, helper, numpy_helper

    from music2emotion.config import DESCRIPTOR_RATE, FeatureSettings
    from music2emotion.frontends import window_inputs
    from music2emotion.modelfile import (
        CONVENTIONS_KEY,
        DEAM_OUTPUT,
        DESCRIPTORS,
        DESCRIPTORS_INPUT,
        INTERVALS_KEY,
        MOODS_OUTPUT,
        OUTPUT,
        SPREAD_KEY,
        metadata,
    )
    from music2emotion.training.onnx_format import save_onnx

    settings = FeatureSettings(window_seconds=TINY_WINDOW, descriptor_rate=DESCRIPTOR_RATE)
    x, y = [], []
    for k, mood in enumerate(MOOD_SOUNDS):
        for seed in range(1, 6):
            clip = mood_clip(mood, TINY_WINDOW, seed)
            x.append(window_inputs(DESCRIPTORS, clip, settings)[DESCRIPTORS_INPUT])
            y.append(k)
    x, y = np.array(x, np.float64), np.eye(len(MOOD_SOUNDS))[y]
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w, b = np.zeros((x.shape[1], len(MOOD_SOUNDS))), np.zeros(len(MOOD_SOUNDS))
    for _ in range(300):  # softmax regression, a little L2
        logits = z @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * (z.T @ (p - y) / len(z) + 1e-2 * w)
        b -= 0.5 * (p - y).mean(0)
    # the standardisation folded into the weights
    w_raw, b_raw = w / std[:, None], b - (mean / std) @ w
    to_values = np.array([[1, 1], [0, 1], [0, 0], [1, 0]], np.float64)  # happy, angry, sad, tender
    to_deam = np.array([[0.5, 0], [DEAM_BETA, 1]], np.float64)  # [v, a] @ to_deam + deam_shift

    def const(name: str, a: np.ndarray) -> Any:
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    probabilities = MOODS_OUTPUT if legacy else "probabilities"
    nodes = [helper.make_node("MatMul", [DESCRIPTORS_INPUT, "w"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], [probabilities], axis=1),
             helper.make_node("MatMul", [probabilities, "to_values"], [OUTPUT])]
    inits = [const("w", w_raw), const("b", b_raw), const("to_values", to_values)]
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", 2])]
    hv, ha = MOOD_INTERVALS
    if legacy:
        outputs.append(helper.make_tensor_value_info(MOODS_OUTPUT, TensorProto.FLOAT, ["n", len(MOOD_SOUNDS)]))
        about = {INTERVALS_KEY: {"valence": hv, "arousal": ha, "coverage": 0.9, "method": "test: fixed half-widths"}}
    else:
        nodes += [helper.make_node("MatMul", [OUTPUT, "to_deam"], ["deam_raw"]),
                  helper.make_node("Add", ["deam_raw", "deam_shift"], [DEAM_OUTPUT])]
        inits += [const("to_deam", to_deam), const("deam_shift", np.array([0.25 - DEAM_BETA / 2, 0.0]))]
        outputs.append(helper.make_tensor_value_info(DEAM_OUTPUT, TensorProto.FLOAT, ["n", 2]))

        def scale(output: str, spread: tuple[float, float], half: tuple[float, float]) -> dict[str, Any]:
            return {"output": output, SPREAD_KEY: dict(zip(("valence", "arousal"), spread)),
                    INTERVALS_KEY: {"valence": half[0], "arousal": half[1], "coverage": 0.9,
                                    "method": "test: fixed half-widths"}}

        about = {CONVENTIONS_KEY: {"unit": scale(OUTPUT, MOOD_SPREAD, MOOD_INTERVALS),
                                   "deam": scale(DEAM_OUTPUT, DEAM_SPREAD, DEAM_INTERVALS)}}
    graph = helper.make_graph(nodes, "mood_test",
                              [helper.make_tensor_value_info(DESCRIPTORS_INPUT, TensorProto.FLOAT, ["n", x.shape[1]])],
                              outputs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert onnx is not None
    name = "moods_0.3" if legacy else "moods"
    return save_onnx(proto, tmp_path_factory.mktemp("mood_model") / f"{name}.onnx",
                     metadata(DESCRIPTORS, settings, **about))


@pytest.fixture(scope="session")
def mood_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model as 0.4 makes them (:func:`_mood_graph`): one answer whose mood word,
    probabilities and intervals derive from its values, and DEAM's convention beside it."""
    return _mood_graph(tmp_path_factory, legacy=False)


@pytest.fixture(scope="session")
def legacy_mood_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model as 0.3 made them (:func:`_mood_graph`): a quadrant head of its own."""
    return _mood_graph(tmp_path_factory, legacy=True)


@pytest.fixture(scope="session")
def mood_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip per mood (``happy.wav``, ...), 4.8 s (two 2 s windows and an end-aligned
    third), seeds the mood model was not fitted on."""
    from helpers import MOOD_SOUNDS, mood_clip, write

    d = tmp_path_factory.mktemp("moods") / "songs"
    for mood in MOOD_SOUNDS:
        write(d / f"{mood}.wav", mood_clip(mood, 4.8, seed=11))
    return d


@pytest.fixture()
def audio_dir(tmp_path: Path) -> Path:
    """A few good files in a folder (WAV and MP3, stereo and mono, odd sample rates)."""
    import numpy as np
    from helpers import MAJOR, MINOR, clicks, tone, write

    d = tmp_path / "songs"
    write(d / "a.wav", tone(MAJOR, 3.0))
    write(d / "b.mp3", tone(MINOR, 2.5) + clicks(4, 2.5, amp=0.3))
    write(d / "sub" / "c.flac", np.stack([tone(440, 4.0, 48_000)] * 2, 1), 48_000)
    return d


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good and bad files together: several lengths (one window, several, an end-aligned
    last one), formats and rates, a silent file, and three that cannot be predicted."""
    import numpy as np
    from helpers import MAJOR, MINOR, clicks, tone, write

    d = tmp_path_factory.mktemp("mixed") / "songs"
    for i, seconds in enumerate((1.3, 2.0, 3.1, 4.6, 7.25)):
        y = tone(MAJOR if i % 2 else MINOR, seconds) + clicks(1 + 3 * i, seconds, amp=0.4)
        write(d / f"t{i}.wav", y)
    write(d / "mp3" / "song.mp3", tone(MINOR, 3.5) + clicks(6, 3.5, amp=0.3))
    write(d / "hi-rate.flac", np.stack([tone(440, 2.7, 48_000), tone(660, 2.7, 48_000)], 1), 48_000)
    write(d / "silence.wav", np.zeros(int(2.5 * 22_050), np.float32))
    write(d / "short.wav", tone(440, 0.2))
    (d / "broken.mp3").write_bytes(b"this is not audio " * 20)
    (d / "empty.wav").write_bytes(b"")
    return d


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the server's temp files (``tempfile``'s folder) at an empty folder to inspect."""
    import tempfile

    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# Limits of the served test server: timeouts of a second, so that the tests of stalls and
# slow clients take about that long.
QUICK_SERVER = {"workers": 1, "header_timeout": 1.0, "idle_timeout": 1.0, "body_timeout": 3.0,
                "keepalive_timeout": 1.0, "shutdown_timeout": 1.0, "max_requests": 6, "retry_after": 2}


@pytest.fixture(scope="session")
def served(tiny_model: Path) -> Iterator[tuple[str, Any]]:
    """One real server for the session: uvicorn on 127.0.0.1 in a thread, the tiny model, one
    worker process and :data:`QUICK_SERVER`'s limits. Yields ``(url, app)``."""
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from music2emotion.server import ServerSettings, create_app, running

    app = create_app(tiny_model, ServerSettings(**QUICK_SERVER))
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray instance of 2 CPUs for the whole session (starting one takes 10-20 s)."""
    pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from music2emotion import ray_engine

    started = ray_engine.init_ray(num_cpus=2)
    yield
    if started:
        import ray

        ray.shutdown()


@pytest.fixture(scope="session")
def deam_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 48-song DEAM-layout folder whose labels follow the sound (see helpers.make_deam_like)."""
    from helpers import make_deam_like

    return make_deam_like(tmp_path_factory.mktemp("deam"))


@pytest.fixture(scope="session")
def quadrant_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-song 4Q-layout set whose quadrants follow the sound (see helpers.make_quadrant_like);
    returns its labels.csv."""
    from helpers import make_quadrant_like

    return make_quadrant_like(tmp_path_factory.mktemp("quadrants"))


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def train_config(deam_like: tuple[Path, Path], feature_cache: Path) -> Callable[..., Any]:
    """Makes a TrainConfig for quick runs on ``deam_like`` (3 s windows): ``train_config(out,
    **overrides)``."""
    pytest.importorskip("torch")
    from music2emotion.training.train import TrainConfig

    audio, ann = deam_like

    def make(out: Path, **overrides: Any) -> Any:
        base = dict(audio_dir=str(audio), annotations=str(ann), out=str(out), window_seconds=3.0,
                    epochs=14, batch_size=8, lr=3e-3, patience=8, val_fraction=0.25, seed=0,
                    cache_dir=str(feature_cache), jobs=1)
        return TrainConfig(**{**base, **overrides})

    return make


@pytest.fixture(scope="session")
def trained_run(train_config: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, dict[str, Any]]:
    """One short training run on ``deam_like``, shared by the tests that need a real
    checkpoint: returns the run folder and train()'s result."""
    from music2emotion.training.train import train

    out = tmp_path_factory.mktemp("train") / "run"
    return out, train(train_config(out), log=lambda _: None)


@pytest.fixture()
def song_folder(tmp_path: Path) -> Path:
    """One short clip in each container libsndfile both writes and decodes (MP3, FLAC, Ogg
    Vorbis, Opus, WAV, AIFF)."""
    from helpers import SOUNDFILE_FORMATS, make_song

    d = tmp_path / "music"
    for i, ext in enumerate(SOUNDFILE_FORMATS):
        make_song(d / f"song{i}{ext}", seed=i)
    return d
