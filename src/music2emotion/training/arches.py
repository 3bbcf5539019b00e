"""What ``music2emotion train --arch NAME`` builds: each bundled model's recipe, by name.

An :class:`Arch` says which ears a model has (its kind and settings:
:mod:`~music2emotion.training.graph`), which blocks of the feature row its quadrant head
reads and how strongly it is regularised, and which blocks and regressors make a ratings
convention. ``accurate``, ``fast`` and ``large`` are the bundled models of those names, made
by ``train`` with these recipes (docs/training.md has the commands); the seed's CNN is
``--arch seed``, trained by :mod:`~music2emotion.training.train` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import FeatureSettings
from ..modelfile import BUNDLED_MODELS, ENCODER_OUTPUT, MEL, MEL_PATCHES, bundled_model_path
from .clips import AUDIOSET_SETTINGS, FAST_SETTINGS
from .graph import MUSICNN_OUTPUT, Layout, ears_from_model, feature_graph, musicnn_ear


@dataclass(frozen=True)
class Arch:
    """A model's recipe.

    Attributes
    ----------
    name : str
        ``--arch``'s name, the bundled model it makes.
    kind : str
        The model file's kind (what each window feeds the graph).
    settings : FeatureSettings
        Windows and front ends.
    head_blocks : tuple of tuple of str
        The feature blocks the quadrant head reads (:func:`~music2emotion.training.graph.layout`),
        one group per head: several groups make several heads whose logits are averaged.
    head_c : float
        The heads' inverse L2 strength.
    ratings_blocks : tuple of str
        The blocks a ratings convention's regressors read.
    ratings_members : tuple of str
        Those regressors (:func:`~music2emotion.training.regressors.ensemble`).
    about : str
        One line for ``--help`` and the report.
    """

    name: str
    kind: str
    settings: FeatureSettings
    head_blocks: tuple[tuple[str, ...], ...]
    head_c: float
    ratings_blocks: tuple[str, ...]
    ratings_members: tuple[str, ...]
    about: str = ""

    def ears(self, musicnn_wheel: str | os.PathLike[str] | None = None) -> tuple[Any, Layout]:
        """The feature graph and its layout, with the ears taken from the bundled models:
        the AudioSet encoder from this arch's bundled model (``accurate``'s where it has
        none), musicnn's from the bundled ``large`` or, where there is none yet, from
        ``musicnn_wheel``.

        Raises
        ------
        FileNotFoundError
            A ``mel-patches`` model is asked for without a bundled ``large`` or the wheel.
        """
        def bundled(name: str) -> Path | None:
            path = bundled_model_path(name) if name in BUNDLED_MODELS else None
            return path if path is not None and path.is_file() else None

        ears = [ears_from_model(bundled(self.name) or bundled_model_path("accurate"), ENCODER_OUTPUT)]
        if self.kind == MEL_PATCHES:
            large = bundled("large")
            if musicnn_wheel is not None:
                ears.append(musicnn_ear(musicnn_wheel))
            elif large is not None:
                ears.append(ears_from_model(large, MUSICNN_OUTPUT))
            else:
                raise FileNotFoundError("no musicnn ear in the package yet: give --musicnn-wheel "
                                        "(pip download musicnn==0.1.0 --no-deps)")
        return feature_graph(self.kind, self.settings, ears)


# On the artist-grouped 4Q folds, C = 0.005 gave 0.855 valence AUC, 0.767 tender vs sad and
# 0.702 moods right (C 0.002-0.02 within 0.01; with the mel statistics beside the embedding
# 0.847, 0.753, 0.685): MODEL_CARD.md. DEAM's convention reads the embedding and the mel
# bands' level and spread (DEAM R² 0.526 / 0.552 against 0.501 / 0.539 for the embedding
# alone).
ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch("accurate", MEL, AUDIOSET_SETTINGS, (("embedding",),), 0.005, ("embedding", "melstats"),
         ("ridge", "pca-svr", "hgb"),
         "the AudioSet encoder on each 10 s window (the default)"),
    # the encoder hears the middle 5 s of each window: half its cost, for 0.021 of valence AUC
    Arch("fast", MEL, FAST_SETTINGS, (("embedding",),), 0.005, ("embedding",), ("ridge",),
         "the AudioSet encoder on the middle 5 s of each window: less CPU"),
    # Each ear its own quadrant head, their logits averaged: on the folds of 4 seeds, 0.875
    # valence AUC, 0.782 tender vs sad, 0.721 moods right and 0.034 ECE, against 0.846,
    # 0.753, 0.693, 0.033 for the AudioSet embedding alone and 0.875, 0.782, 0.716, 0.043 for
    # one head on both ears (scripts/large_frontier.py, MODEL_CARD.md has the frontier).
    # DEAM's convention reads every block: 0.554 / 0.592 R², against 0.522 / 0.546 with the
    # accurate model's blocks and 0.547 / 0.581 with musicnn's pooled features alone beside them.
    Arch("large", MEL_PATCHES, AUDIOSET_SETTINGS, (("embedding",), ("msd_penultimate", "msd_tags")), 0.005,
         ("embedding", "melstats", "msd_pooled", "msd_penultimate", "msd_tags"), ("ridge", "pca-svr", "hgb"),
         "the AudioSet encoder and musicnn's MSD tagger side by side: the most accurate, several times the CPU"),
)}
DEFAULT_ARCH = "accurate"


def arch(name: str) -> Arch:
    """The recipe called ``name``.

    Raises
    ------
    ValueError
        No such recipe.
    """
    if name not in ARCHES:
        raise ValueError(f"no architecture {name!r}; choose from {', '.join(ARCHES)} or seed")
    return ARCHES[name]

