"""``EmotionModel``: one ONNX model file run by ONNX Runtime, on files or arrays. No torch.

Audio is streamed in blocks, cut into the model's windows (:mod:`music2emotion.windows`),
each window becomes the model's inputs (:mod:`music2emotion.frontends`), and the windows
run through ONNX Runtime in batches, so memory stays bounded by ``batch_size`` windows
whatever the audio's length. :func:`~music2emotion.prediction.song_prediction` makes the
result. A file or array that fails gives a :class:`~music2emotion.prediction.Prediction`
with ``error`` set: nothing here raises for bad audio, only for bad arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .audio import LevelMeter, stream_array, stream_audio
from .config import FeatureSettings
from .frontends import window_inputs
from .modelfile import (
    AUDIOSET,
    ENCODER_OUTPUT,
    FUSION,
    INPUTS,
    KIND,
    LOG_MEL_INPUT,
    MEL,
    MEL_PATCHES,
    METADATA_KEY,
    MOODS_OUTPUT,
    SETTINGS,
    Convention,
    output_width,
    read_conventions,
    read_metadata,
    resolve_model,
)
from .music import ENCODER_WIDTH, HEARD_COLUMNS, HEARD_OUTPUT, heard
from .prediction import Prediction, failure_reason, song_prediction
from .windows import DEFAULT_BATCH, check_options, iter_windows, with_window

ARRAY_NAME = "<audio>"


class EmotionModel:
    """An ONNX emotion model and the :class:`~music2emotion.config.FeatureSettings` it
    was trained with.

    Parameters
    ----------
    model : str or os.PathLike, optional
        A model file, or the name of a bundled one (``"accurate"``, the default;
        ``"fast"``; ``"large"``; ``"seed"``).
    threads : int
        ONNX Runtime threads; 0 lets it use every core.

    Attributes
    ----------
    path : pathlib.Path
        The model file.
    kind : str
        One of :data:`~music2emotion.modelfile.KINDS` (``"mel"`` for the bundled ``accurate``
        and ``fast``, ``"mel-patches"`` for ``large``, ``"cnn"`` for ``seed``).
    settings : FeatureSettings
        Sample rate, mel settings and window length the model was trained with.
    info : dict
        The file's metadata: settings, validation figures, provenance.
    conventions : dict of str to Convention
        The output scales the file defines (:func:`~music2emotion.modelfile.read_conventions`):
        ``"unit"``, the one answer, and ``"deam"`` for a model with DEAM's convention as an
        output of its own.
    mood_head : bool
        Whether predictions carry a mood word and quadrant probabilities (derived from the
        values, or from a 0.3 model's own head).
    intervals : tuple of float, or None
        The ``(valence, arousal)`` half-widths of the unit values' intervals on the 0-1
        scale, when the file has them.
    window_outputs : tuple of str
        The graph outputs each window's values are read from (:meth:`run_windows`).
    hears : bool
        Whether the graph also returns the AudioSet encoder's output (``encoder``, its
        embedding and 527 logits), from which every prediction tells whether the audio
        is music (:mod:`music2emotion.music`).
    window_widths : dict of str to int
        What :meth:`run_windows` returns per window, by name: each of
        :attr:`window_outputs`, then ``heard`` when :attr:`hears`; its values per window.

    Raises
    ------
    FileNotFoundError
        No such file or bundled model.
    ValueError
        The file is not a music2emotion model this version runs.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, threads: int = 0):
        self.path: Path = resolve_model(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # ONNX Runtime's memory patterns keep one more arena block per batch shape seen
        # (36 MB more for a batch of 16 ten-second windows, allocated on the second batch),
        # so a long file peaked higher than a short one; without them memory is flat and,
        # measured on this model, inference is no slower
        opts.enable_mem_pattern = False
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model ({exc})") from exc
        self.info: dict[str, Any] = read_metadata(
            self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), self.path)
        self.kind: str = self.info[KIND]
        self.settings = FeatureSettings.from_dict(self.info[SETTINGS])
        self.input_names = [i.name for i in self.session.get_inputs()]
        if sorted(self.input_names) != sorted(INPUTS[self.kind]):
            raise ValueError(f"{self.path}: a {self.kind} model takes {', '.join(INPUTS[self.kind])}, "
                             f"this file {', '.join(self.input_names)}")
        self.conventions: dict[str, Convention] = read_conventions(self.info, self.path)
        graph_outputs = {o.name for o in self.session.get_outputs()}
        legacy_head = MOODS_OUTPUT in graph_outputs and self.conventions["unit"].spread is None
        self.window_outputs: tuple[str, ...] = tuple(dict.fromkeys(
            [c.output for c in self.conventions.values()] + ([MOODS_OUTPUT] if legacy_head else [])))
        missing = [o for o in self.window_outputs if o not in graph_outputs]
        if missing:
            raise ValueError(f"{self.path}: its metadata names graph outputs it lacks: {', '.join(missing)}")
        encoder = next((o for o in self.session.get_outputs() if o.name == ENCODER_OUTPUT), None)
        # by the output's layout, not the model's kind: any graph that returns the encoder's
        # embedding and logits tells music from speech and noise at no extra cost
        self.hears: bool = encoder is not None and list(encoder.shape[1:]) == [ENCODER_WIDTH]
        self.window_widths: dict[str, int] = {name: output_width(name) for name in self.window_outputs}
        if self.hears:
            self.window_widths[HEARD_OUTPUT] = len(HEARD_COLUMNS)
        self.mood_head: bool = legacy_head or self.conventions["unit"].spread is not None
        self.intervals: tuple[float, float] | None = self.conventions["unit"].intervals
        # Windows per ONNX Runtime call (None: all that are given). A fusion window is six
        # tagger passes whose convolution activations take about 80 MB: 16 windows at once
        # peaked at 1.7 GB against 0.45 GB for one, and ran no faster per window (0.28 s
        # against 0.32 s, within noise), so its windows go one at a time; so do the models
        # with the AudioSet encoder, whose activations grow with the batch in the same way.
        self.session_batch: int | None = 1 if self.kind in (FUSION, AUDIOSET, MEL, MEL_PATCHES) else None

    def __repr__(self) -> str:
        return f"EmotionModel({str(self.path)!r}, kind={self.kind!r})"

    def window_settings(self, window_seconds: float | None = None) -> FeatureSettings:
        """The model's settings with another window length (``None``: the model's own).

        Raises
        ------
        OptionError
            A window shorter than ``MIN_AUDIO_SECONDS``.
        """
        return with_window(self.settings, window_seconds)

    def window_inputs(self, samples: np.ndarray, settings: FeatureSettings | None = None
                      ) -> dict[str, np.ndarray]:
        """This model's inputs for one window (:func:`music2emotion.frontends.window_inputs`)."""
        return window_inputs(self.kind, samples, settings or self.settings)

    def predict_windows(self, windows: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Run windows' inputs through the model.

        Parameters
        ----------
        windows : list of dict
            Each window's inputs, as :meth:`window_inputs` makes them.

        Returns
        -------
        numpy.ndarray
            ``[len(windows), 2]`` valence and arousal in [0, 1] (the unit scale's), float32.
        """
        return self.run_windows(windows)[self.conventions["unit"].output]

    def run_windows(self, windows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Run windows' inputs through the model: every output a prediction reads, from one
        session call per batch.

        Parameters
        ----------
        windows : list of dict
            Each window's inputs, as :meth:`window_inputs` makes them.

        Returns
        -------
        dict of str to numpy.ndarray
            By name of :attr:`window_widths`: ``[len(windows), 2]`` valence and arousal in
            [0, 1] for each convention's output, a 0.3 model's ``moods``
            ``[len(windows), 4]`` quadrant probabilities (``MOOD_CLASSES`` order, each row
            summing to 1), and when the model :attr:`hears`, ``heard`` ``[len(windows), 2]``
            (:func:`music2emotion.music.heard`); float32.
        """
        if not windows:
            return {name: np.zeros((0, w), np.float32) for name, w in self.window_widths.items()}
        fetch = [*self.window_outputs, *([ENCODER_OUTPUT] if self.hears else [])]
        step = self.session_batch or len(windows)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.window_widths}
        for i in range(0, len(windows), step):
            feed = {name: np.ascontiguousarray(np.stack([w[name] for w in windows[i : i + step]]),
                                               np.float32)
                    for name in self.input_names}
            got = dict(zip(fetch, self.session.run(fetch, feed)))
            for name in self.window_outputs:
                parts[name].append(np.asarray(got[name], np.float32).reshape(-1, self.window_widths[name]))
            if self.hears:
                parts[HEARD_OUTPUT].append(heard(got[ENCODER_OUTPUT]))
        result = {name: np.concatenate(v) for name, v in parts.items()}
        for name in self.window_outputs:
            result[name] = np.clip(result[name], 0.0, 1.0)
        if MOODS_OUTPUT in result:
            p = result[MOODS_OUTPUT]
            # a graph's softmax sums to 1 within float32 rounding; make it exact
            result[MOODS_OUTPUT] = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
        return result

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """CNN models: the seed's contract, ``[batch, 1, n_mels, frames] -> [batch, 2]``.

        Parameters
        ----------
        x : numpy.ndarray
            Log-mel windows as :func:`music2emotion.frontends.window_features` makes them.

        Returns
        -------
        numpy.ndarray
            ``[batch, 2]`` valence and arousal in [0, 1].
        """
        return self.predict_windows([{LOG_MEL_INPUT: w} for w in np.asarray(x, np.float32)])

    def predict_file(
        self,
        path: str | os.PathLike[str],
        *,
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        timeline: bool = False,
        max_duration: float | None = None,
    ) -> Prediction:
        """Predict one audio file.

        Parameters
        ----------
        path : str or os.PathLike
            Any audio file libsndfile or FFmpeg decodes (WAV, FLAC, MP3, M4A, Opus, WMA, ...).
        window_seconds : float, optional
            Window length (default: the model's).
        hop_seconds : float, optional
            Seconds between window starts (default: the window length).
        batch_size : int
            Windows per ONNX Runtime call.
        timeline : bool
            Also keep each window's values in ``Prediction.timeline``.
        max_duration : float, optional
            Seconds of audio at most: a longer file fails (``error`` says so) after reading
            its header, or, when the header does not tell, as soon as decoding passes the
            limit, so its cost is bounded (:func:`music2emotion.audio.stream_audio`).

        Returns
        -------
        Prediction
            With ``error`` set, and no values, when the file cannot be predicted.

        Raises
        ------
        OptionError
            An option out of range (a ``ValueError``).
        """
        check_options(max_duration=max_duration)
        return self._predict(str(path),
                             lambda rate: stream_audio(path, rate, max_seconds=max_duration),
                             window_seconds, hop_seconds, batch_size, timeline)

    def predict_audio(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        window_seconds: float | None = None,
        hop_seconds: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        timeline: bool = False,
    ) -> Prediction:
        """Predict audio held in memory, exactly as a lossless file of it.

        Parameters
        ----------
        samples : numpy.ndarray
            1-D mono, or ``[frames, channels]`` (as soundfile returns it; librosa's
            ``[channels, frames]`` is ``samples.T``). Floating-point with full scale 1.0,
            or integer PCM.
        sample_rate : int
            Of ``samples``, in Hz; resampled to the model's rate.
        window_seconds, hop_seconds, batch_size, timeline
            As for :meth:`predict_file`.

        Returns
        -------
        Prediction
            ``path`` is ``"<audio>"``; ``error`` is set for audio that cannot be predicted
            (too short, not finite).

        Raises
        ------
        ValueError
            An option out of range, a sample rate outside 1-1536 kHz, or an array of the
            wrong shape or type.
        """
        blocks = stream_array(samples, sample_rate, self.settings.sample_rate)
        return self._predict(ARRAY_NAME, lambda rate: blocks, window_seconds, hop_seconds,
                             batch_size, timeline)

    def _predict(self, name: str, source: Callable[[int], Iterable[np.ndarray]],
                 window_seconds: float | None,
                 hop_seconds: float | None, batch_size: int, timeline: bool) -> Prediction:
        """The shared loop: ``source(sample_rate)`` gives the blocks; windows go through
        the session ``batch_size`` at a time; the result comes from ``song_prediction``."""
        check_options(window_seconds=window_seconds, hop_seconds=hop_seconds, batch_size=batch_size)
        settings = self.window_settings(window_seconds)
        spans: list[tuple[float, float]] = []
        outputs: list[dict[str, np.ndarray]] = []
        pending: list[dict[str, np.ndarray]] = []
        try:
            meter = LevelMeter(source(settings.sample_rate))
            for w in iter_windows(meter, settings, hop_seconds):
                spans.append((w.start, w.end))
                pending.append(self.window_inputs(w.samples, settings))
                if len(pending) >= batch_size:
                    outputs.append(self.run_windows(pending))
                    pending.clear()
            outputs.append(self.run_windows(pending))
        except Exception as exc:  # a decoder or feature bug must not take other files down
            return Prediction(name, error=failure_reason(exc))
        return song_prediction(name, spans, {k: np.concatenate([o[k] for o in outputs]) for k in self.window_widths},
                               conventions=self.conventions, duration=meter.samples / settings.sample_rate,
                               silent=meter.silent, damage=meter.damage, timeline=timeline)


_models: dict[str, EmotionModel] = {}


def load(model: EmotionModel | str | os.PathLike[str] | None = None) -> EmotionModel:
    """``model`` itself when loaded, else the model it names, loaded once per process."""
    if isinstance(model, EmotionModel):
        return model
    key = str(resolve_model(model))
    if key not in _models:
        _models[key] = EmotionModel(key)
    return _models[key]


def predict_file(
    path: str | os.PathLike[str],
    model: EmotionModel | str | os.PathLike[str] | None = None,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
) -> Prediction:
    """Valence and arousal of one audio file.

    Parameters
    ----------
    path : str or os.PathLike
        Any audio file libsndfile or FFmpeg decodes.
    model : EmotionModel, str or os.PathLike, optional
        A loaded model, a bundled model's name (``"accurate"``, the default; ``"fast"``;
        ``"large"``; ``"seed"``) or a model file; loaded once per process and kept. It may also come
        second, by position, as in ``predict_file("song.mp3", "fast")``; every other
        option is keyword-only.
    window_seconds, hop_seconds, batch_size, timeline
        As for :meth:`EmotionModel.predict_file`.

    Returns
    -------
    Prediction
        ``error`` is set, and the values are ``None``, when the file cannot be predicted.
    """
    return load(model).predict_file(path, window_seconds=window_seconds, hop_seconds=hop_seconds,
                                    batch_size=batch_size, timeline=timeline)


def predict_audio(
    samples: np.ndarray,
    sample_rate: int,
    model: EmotionModel | str | os.PathLike[str] | None = None,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    timeline: bool = False,
) -> Prediction:
    """Valence and arousal of audio held in memory (a notebook, a stream).

    Parameters
    ----------
    samples : numpy.ndarray
        1-D mono, or ``[frames, channels]``; see :meth:`EmotionModel.predict_audio`.
    sample_rate : int
        Of ``samples``, in Hz.
    model, window_seconds, hop_seconds, batch_size, timeline
        As for :func:`predict_file`.

    Returns
    -------
    Prediction
        The same values a lossless file of this audio gives.
    """
    return load(model).predict_audio(samples, sample_rate, window_seconds=window_seconds,
                                     hop_seconds=hop_seconds, batch_size=batch_size,
                                     timeline=timeline)

