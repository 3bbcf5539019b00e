"""Whether a file is music at all, as the AudioSet encoder hears it.

Models whose graph returns the AudioSet encoder's output (:data:`~music2emotion.modelfile.ENCODER_OUTPUT`,
``[n, 384 + 527]``: its embedding, then its logits for AudioSet's 527 classes) say, for
every window, how much they hear music and speech: the graph computes those logits anyway,
so telling costs nothing. A file in which most of the audio has no music (noise, hum, hiss,
a podcast, an audiobook) still gets its values, with a ``not music: ...`` warning
(:func:`not_music`), so that nobody reads a mood into it and playlists and tags leave it
out unless asked (:func:`is_not_music`).

:func:`heard` reduces a window's encoder output to the two logits the rule reads; every
engine gets them from :meth:`music2emotion.EmotionModel.run_windows` and hands them to
:func:`music2emotion.prediction.song_prediction`, which calls :func:`not_music`.
"""

from __future__ import annotations

import numpy as np

# The encoder's output: its pooled embedding, then one logit per AudioSet class (EfficientAT
# mn04_as; the class names, in order, are AudioSet's class_labels_indices.csv).
EMBEDDING_WIDTH, AUDIOSET_CLASSES = 384, 527
ENCODER_WIDTH = EMBEDDING_WIDTH + AUDIOSET_CLASSES
# AudioSet's "Speech" and "Music" classes, by index among the logits.
SPEECH_CLASS, MUSIC_CLASS = 0, 137
# What run_windows returns per window for a model whose graph returns the encoder's output:
# the Music and Speech logits, in this order.
HEARD_OUTPUT = "heard"
HEARD_COLUMNS = ("music", "speech")

# The rule and its thresholds, chosen on 2,072 real songs (DEAM's 1,441 and 4Q's 631 clips
# of 10 s, one window each) and generated non-music (bench/not_music.py measures them again
# on any folders and model). A window hears no music when its Music logit is below
# MUSIC_BELOW, or when its Speech logit exceeds its Music logit by more than
# SPEECH_OVER_MUSIC (speech over a faint music bed); such a window is speech when its Speech
# logit is above SPEECH_ABOVE, else noise. A file is not music when that is so for more than
# NOT_MUSIC_SHARE of its audio. Measured with the accurate and the fast model:
# - songs: 11 of 2,072 flagged by each (0.53 %; the accurate model hears 5 of them as
#   speech, 3 as a boat, a train or insects, 3 as a chant, wind chimes and faint music);
#   the songs' Music logits have their 0.5 % quantile at -1.0 (accurate) and -1.25 (fast);
# - 72 files of 10-60 s of white, pink and brown noise, mains hum, room tone and
#   near-silence with hiss: all flagged as noise (their highest window: -1.1, quiet brown
#   noise); 45 of synthetic speech (espeak-ng, 10 voices), 15 of them in room noise: all
#   flagged as speech;
# - where the line lies: speech over music 30 dB below it is flagged in 11 of 12 files,
#   20 dB below in 2 (accurate) or 3 (fast), 15 dB below in 0 or 1, 10 dB or closer in
#   none; a spoken intro before 40 s of music only when it is longer (60 s: 12 of 12; 10 to
#   40 s: none).
MUSIC_BELOW = -1.0
SPEECH_OVER_MUSIC = 1.0
SPEECH_ABOVE = -1.0
NOT_MUSIC_SHARE = 0.5

NOT_MUSIC = "not music"
SPEECH, NOISE = "speech", "noise"


def heard(encoder: np.ndarray) -> np.ndarray:
    """What the not-music rule reads of the encoder's output.

    Parameters
    ----------
    encoder : numpy.ndarray
        ``[windows, ENCODER_WIDTH]``: each window's embedding, then its AudioSet logits.

    Returns
    -------
    numpy.ndarray
        ``[windows, 2]`` float32: the :data:`HEARD_COLUMNS` logits (Music, Speech).
    """
    logits = np.asarray(encoder, np.float32).reshape(-1, ENCODER_WIDTH)[:, EMBEDDING_WIDTH:]
    return np.ascontiguousarray(logits[:, [MUSIC_CLASS, SPEECH_CLASS]])


def not_music(heard_rows: np.ndarray, weights: np.ndarray) -> str:
    """The ``not music`` warning of a file, or ``""`` when it is music.

    Parameters
    ----------
    heard_rows : numpy.ndarray
        ``[windows, 2]``: each window's :func:`heard` logits.
    weights : numpy.ndarray
        ``[windows]``: the seconds of audio each window stands for (they add up to the
        file's audio; :func:`music2emotion.prediction.time_weights`).

    Returns
    -------
    str
        ``not music: speech (...)`` or ``not music: noise (...)`` when more than
        :data:`NOT_MUSIC_SHARE` of the audio has no music, whichever of speech and noise
        takes more of that audio; else ``""``.
    """
    rows = np.asarray(heard_rows, np.float64).reshape(-1, len(HEARD_COLUMNS))
    w = np.asarray(weights, np.float64)
    total = w.sum()
    if not total > 0:
        return ""
    music, speech = rows.T
    no_music = (music < MUSIC_BELOW) | (speech - music > SPEECH_OVER_MUSIC)
    share = w[no_music].sum() / total
    if not share > NOT_MUSIC_SHARE:
        return ""
    spoken = w[no_music & (speech > SPEECH_ABOVE)].sum()
    kind = SPEECH if spoken >= w[no_music].sum() / 2 else NOISE
    return f"{NOT_MUSIC}: {kind} (no music heard in {100 * share:.0f} % of the audio)"


def not_music_kind(warning: str) -> str | None:
    """``"speech"`` or ``"noise"`` when a row's ``warning`` (its warnings joined by ``"; "``)
    says the file is not music, else ``None``."""
    for part in (warning or "").split("; "):
        head, sep, rest = part.partition(": ")
        if sep and head == NOT_MUSIC:
            return rest.split(" ", 1)[0]
    return None


def is_not_music(warning: str) -> bool:
    """Whether a row's ``warning`` says the file is not music."""
    return not_music_kind(warning) is not None
