"""music2emotion: valence and arousal of music, from audio, offline.

    >>> from music2emotion import predict_file, predict_audio
    >>> result = predict_file("song.mp3")
    >>> result.valence, result.arousal          # both in [0, 1]
    >>> predict_audio(samples, 44_100, model="fast").arousal

Inference runs on ONNX Runtime and never imports torch; importing this package imports
neither torch nor scikit-learn, and predicting imports neither librosa nor numba (the
features are computed by ``dsp``, numpy and scipy only, with no compiled-kernel cache on disk).
The modules of the inference core are ``audio`` (decoding), ``windows`` (cutting audio into
the model's windows), ``frontends`` and ``descriptors`` (each model kind's inputs, on ``dsp``),
``modelfile`` (what a model file holds), ``model`` (:class:`EmotionModel`), ``prediction``
(:class:`Prediction` and the song-level rule), ``engine`` (worker processes) and ``output``
(CSV, JSON Lines, Parquet). ``training``, ``server``, ``ray_engine`` and ``cli`` build on it.
"""

from ._version import __version__
from .audio import AudioError, load_audio
from .config import FeatureSettings, to_deam, to_unit
from .engine import predict_files
from .model import EmotionModel, predict_audio, predict_file
from .prediction import Prediction, Segment

__all__ = [
    "AudioError",
    "EmotionModel",
    "FeatureSettings",
    "Prediction",
    "Segment",
    "__version__",
    "load_audio",
    "predict_audio",
    "predict_file",
    "predict_files",
    "to_deam",
    "to_unit",
]
