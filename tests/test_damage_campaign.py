"""The damage campaign: tiny generated files in every container the package reads
(``helpers.DAMAGE_CONTAINERS``), damaged every way files get damaged (``helpers.MUTATIONS``:
bits flipped, stretches zeroed or doubled, headers overwritten, heads and tails cut off),
each predicted in a worker process as ``predict`` predicts it. Every file gets exactly one
row, within a time bound, whose reason is one of the documented ones (``helpers.outcome``);
the quick part also holds each container to the one policy on missing audio (a tail cut
short is a ``truncated`` warning, or past a quarter an error); the wide sweep (slow) places
every mutation at several places of every container. ``bench/damage.py`` runs the same
campaign on songs of minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest

from helpers import DAMAGE_CONTAINERS, MUTATIONS, mutate, outcome, write_damage_source
from music2emotion.engine import WorkerPool, init_model_worker, predict_in_worker

pytest.importorskip("av")

SECONDS = 4.0
# Seconds a damaged 4 s file may take to get its row: a tiny file decodes in well under a
# second, so only a decoder that hangs or loops on damage (or a machine that stalls) passes it
BOUND = 60.0

# What the one policy gives each container cut to 90 % and to 50 % of its bytes: a
# ``truncated`` warning while at most a quarter of the audio is missing, an error past it;
# an Ogg file, an MP3 without a Xing header and raw AAC state no length, so their warning
# says what was decoded and no bound applies; an MP4 whose index (written last) is cut off
# cannot be read at all.
CUT = {
    "song.wav": ("truncated", "error: truncated"),
    "song.aiff": ("truncated", "error: truncated"),
    "song.flac": ("truncated", "error: truncated"),
    "song.mp3": ("truncated", "error: truncated"),
    "noxing.mp3": ("truncated", "truncated"),
    "song.ogg": ("truncated", "truncated"),
    "song.opus": ("truncated", "truncated"),
    "song.m4a": ("error: container unreadable", "error: container unreadable"),
    "faststart.m4a": ("truncated", "error: truncated"),
    "song.webm": ("truncated", "error: truncated"),
    "song.aac": ("truncated", "truncated"),
}
# What a zeroed stretch (a sixteenth of a 4 s file) gives: PCM, and AAC frames whose headers
# survive, decode the zeros as silence; the rest skip what they cannot decode, which in Opus
# (a page of about 1 s) and Matroska (a cluster of about 5 s) is more than a quarter of so
# short a file
ZEROED = {
    "song.wav": "clean", "song.aiff": "clean", "song.flac": "damaged", "song.mp3": "damaged",
    "noxing.mp3": "damaged", "song.ogg": "damaged", "song.opus": "error: damaged",
    "song.m4a": "damaged", "faststart.m4a": "damaged", "song.webm": "error: damaged",
    "song.aac": "clean",
}


@pytest.fixture(scope="module")
def campaign(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[WorkerPool[Any, Any], dict[str, Path]]]:
    """One worker process predicting as ``predict`` does (the engine's own functions), and
    the intact files, written while it starts."""
    pool: WorkerPool[Any, Any] = WorkerPool(predict_in_worker, 1, initializer=init_model_worker,
                                            initargs=(str(tiny_model),))
    try:
        folder = tmp_path_factory.mktemp("sources")
        sources = {name: write_damage_source(folder / name, SECONDS) for name in DAMAGE_CONTAINERS}
        pool.wait_ready(timeout=120)
        yield pool, sources
    finally:
        pool.close(kill=True)


def row_of(campaign: tuple[WorkerPool[Any, Any], dict[str, Path]], tmp_path: Path, container: str,
           mutation: str, seed: int = 0) -> tuple[dict[str, Any], str]:
    """The row of ``container`` damaged by ``mutation``, and its outcome's name."""
    worker, sources = campaign
    path = tmp_path / f"{mutation}{seed}-{container}"
    path.write_bytes(mutate(sources[container].read_bytes(), mutation, seed))
    future = worker.submit((str(path), {}))
    try:
        pred = future.result(timeout=BOUND)
    except FutureTimeout:
        worker.cancel(future)
        pytest.fail(f"{path.name}: no row within {BOUND:g} s")
    row = pred.row()
    kind = outcome(row["error"], row["warning"])
    assert not kind.startswith("UNDOCUMENTED"), f"{path.name}: {kind}"
    assert "\n" not in row["error"] + row["warning"]
    assert (row["valence"] is None) == bool(row["error"])
    return row, kind


@pytest.mark.parametrize("container", DAMAGE_CONTAINERS)
def test_a_cut_tail_gets_the_one_policy(campaign, tmp_path, container):
    (_, at90), (_, at50) = (row_of(campaign, tmp_path, container, m) for m in ("cut90", "cut50"))
    assert (at90, at50) == CUT[container]


@pytest.mark.parametrize("container", DAMAGE_CONTAINERS)
def test_a_zeroed_stretch_is_skipped_or_refused_by_the_bound(campaign, tmp_path, container):
    row, kind = row_of(campaign, tmp_path, container, "zero")
    assert kind == ZEROED[container], row


@pytest.mark.parametrize("container", DAMAGE_CONTAINERS)
@pytest.mark.parametrize("mutation", ["flip", "header"])
def test_flipped_bits_and_a_damaged_header_get_a_documented_row(campaign, tmp_path, container, mutation):
    row_of(campaign, tmp_path, container, mutation)


@pytest.mark.slow
@pytest.mark.parametrize("container", DAMAGE_CONTAINERS)
@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_damage_anywhere_gets_a_documented_row(campaign, tmp_path, container, mutation, seed):
    row_of(campaign, tmp_path, container, mutation, seed)
