"""Mood words as places on the valence-arousal plane (0-1 scale), defined once for the
``MOOD`` tag, playlist regions and playlist journeys.

The four quadrant words are :data:`music2emotion.config.MOOD_CLASSES`, Russell's circumplex
as the 4Q data set names its quadrants (Q1 happy, Q2 angry, Q3 sad, Q4 tender), the same
words a mood head's probabilities carry: the plane is cut at 0.5 on both axes. Each word's
point is the middle of its quadrant. ``calm``, Q4's word before models had a mood head (and
in ``MOOD`` tags written then), stays a name of the same place (:data:`OLD_WORDS`).
``energetic`` is the top of the plane whatever the valence, the usual end of a
calm-to-energetic journey.
"""

from __future__ import annotations

from dataclasses import dataclass

from music2emotion import to_unit
from music2emotion.config import DEAM_MAX, DEAM_MIN, MOOD_CLASSES, NEUTRAL
from music2emotion.prediction import quadrant_mood

# the two scales values are given on: the model's 0-1, and DEAM's 1-9 ratings
SCALE_RANGES = {"unit": (0.0, 1.0), "deam": (DEAM_MIN, DEAM_MAX)}


@dataclass(frozen=True)
class Mood:
    """A mood word: its ``point`` (valence, arousal) and the ``region`` it covers,
    ``((valence_lo, valence_hi), (arousal_lo, arousal_hi))``, all on the 0-1 scale."""

    name: str
    point: tuple[float, float]
    region: tuple[tuple[float, float], tuple[float, float]]


_LOW, _HIGH = (0.0, NEUTRAL), (NEUTRAL, 1.0)

# the words a song's MOOD tag can take and a mood head's classes: one per quadrant
QUADRANT_MOODS = MOOD_CLASSES
# words of earlier versions, by the quadrant word they stand for now
OLD_WORDS = {"calm": "tender"}
_happy, _angry, _sad, _tender = QUADRANT_MOODS
_QUADRANTS = {_happy: (_HIGH, _HIGH), _angry: (_LOW, _HIGH), _sad: (_LOW, _LOW), _tender: (_HIGH, _LOW)}



def _quadrant(word: str, name: str | None = None) -> Mood:
    (v0, v1), (a0, a1) = _QUADRANTS[word]
    return Mood(name or word, ((v0 + v1) / 2, (a0 + a1) / 2), ((v0, v1), (a0, a1)))


MOODS: dict[str, Mood] = {
    m.name: m
    for m in (
        *(_quadrant(word) for word in QUADRANT_MOODS),
        *(_quadrant(new, old) for old, new in OLD_WORDS.items()),
        Mood("energetic", (0.5, 0.9), ((0.0, 1.0), _HIGH)),
    )
}


def quadrant_word(word: str) -> str:
    """``word`` with an old quadrant word (``calm``, in any case) replaced by today's
    (``tender``); any other word comes back as it is."""
    return OLD_WORDS.get(word.strip().lower(), word)


# The quadrant word for a point on the 0-1 scale: the rule every prediction's word follows
mood_word = quadrant_mood


def parse_point(text: str, scale: str = "unit") -> tuple[float, float]:
    """A mood word or ``VALENCE,AROUSAL`` as a point on the 0-1 scale; with
    ``scale="deam"`` the numbers are DEAM's 1-9 ratings. Raises ``ValueError``."""
    word = text.strip().lower()
    if word in MOODS:
        return MOODS[word].point
    parts = word.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        v, a = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is neither a mood ({', '.join(MOODS)}) "
                         "nor a VALENCE,AROUSAL point such as 0.7,0.3") from None
    return to_unit_checked(v, scale, text), to_unit_checked(a, scale, text)


def to_unit_checked(value: float, scale: str, what: str) -> float:
    """``value`` on ``scale`` ("unit" 0-1 or "deam" 1-9) moved to 0-1, or ``ValueError``
    naming ``what`` when it lies off the scale."""
    lo, hi = SCALE_RANGES[scale]
    if not lo <= value <= hi:
        raise ValueError(f"{what!r}: values on the {lo:g}-{hi:g} scale lie between {lo:g} and {hi:g}")
    return float(to_unit(value)) if scale == "deam" else float(value)
