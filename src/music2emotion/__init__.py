"""music2emotion: valence and arousal of music, from audio, offline.

    >>> from music2emotion import predict_file
    >>> result = predict_file("song.mp3")
    >>> result.valence, result.arousal          # both in [0, 1]

Importing this package never imports torch: inference runs on ONNX Runtime.
"""

__version__ = "0.1.0"

from .audio import AudioError, load_audio  # noqa: E402
from .config import FeatureSettings, to_deam, to_unit  # noqa: E402
from .inference import EmotionModel, Prediction, predict_file, predict_files  # noqa: E402

__all__ = [
    "AudioError",
    "EmotionModel",
    "FeatureSettings",
    "Prediction",
    "__version__",
    "load_audio",
    "predict_file",
    "predict_files",
    "to_deam",
    "to_unit",
]
