"""DEAM annotations as distributed, dataset pairing, splits and the feature cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import tone, write

from music2emotion.config import FeatureSettings, to_deam, to_unit
from music2emotion.training.data import (
    FeatureCache,
    kfold_ids,
    load_dataset,
    read_annotations,
    split_ids,
)


def test_label_scale_round_trip():
    assert to_unit(1) == 0 and to_unit(9) == 1 and to_unit(5) == 0.5
    assert float(to_deam(to_unit(3.7))) == pytest.approx(3.7)


def test_reads_both_deam_files_with_their_quirks(deam_like):
    _, ann = deam_like
    labels = read_annotations(ann)
    assert len(labels) == 48
    first = labels[1]  # from the 1-2000 file
    last = labels[48]  # from the 2015 file with extra, oddly spaced columns
    assert 0 <= first.valence <= 1 and 0 <= last.arousal <= 1
    assert first.valence_std == pytest.approx(1.0 / 8) and last.arousal_std == pytest.approx(0.6 / 8)


def test_real_deam_header_with_spaces(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("song_id, valence_mean, valence_std, arousal_mean, arousal_std\n2,3.1,0.94,3,0.63\n")
    lab = read_annotations(f)[2]
    assert lab.valence == pytest.approx((3.1 - 1) / 8) and lab.arousal == pytest.approx(0.25)


def test_missing_column_names_the_file(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("song_id, valence_mean\n1,5\n")
    with pytest.raises(ValueError, match=r"bad\.csv: missing column\(s\) arousal_mean"):
        read_annotations(f)


def test_conflicting_duplicates_are_an_error(tmp_path):
    header = "song_id, valence_mean, arousal_mean\n"
    (tmp_path / "a.csv").write_text(header + "7,5,5\n")
    (tmp_path / "b.csv").write_text(header + "7,6,5\n")
    with pytest.raises(ValueError, match="song 7 labelled twice"):
        read_annotations(tmp_path)


def test_missing_std_is_nan(tmp_path):
    (tmp_path / "a.csv").write_text("song_id,valence_mean,arousal_mean\n1,5,5\n")
    assert math.isnan(read_annotations(tmp_path)[1].valence_std)


def test_dataset_reports_unmatched_songs(tmp_path, deam_like):
    audio, ann = deam_like
    d = tmp_path / "audio"
    for p in sorted(audio.iterdir())[:5]:
        (d / p.name).parent.mkdir(exist_ok=True)
        (d / p.name).symlink_to(p)
    write(d / "9999.wav", tone(440, 1.0))
    write(d / "intro.wav", tone(440, 1.0))
    ds = load_dataset(d, ann)
    assert len(ds.ids) == 5 and ds.targets.shape == (5, 2)
    assert {p.name for p in ds.audio_without_labels} == {"9999.wav", "intro.wav"}
    assert len(ds.labels_without_audio) == 43
    assert "5 songs with audio and labels" in ds.report()


def test_splits_are_seeded_disjoint_and_complete():
    ids = list(range(100))
    tr, va = split_ids(ids, 0.2, seed=1)
    assert (tr, va) == split_ids(ids, 0.2, seed=1) and len(va) == 20
    assert not set(tr) & set(va) and set(tr) | set(va) == set(ids)
    assert split_ids(ids, 0.2, seed=2)[1] != va
    folds = kfold_ids(ids, 5, seed=0)
    assert sorted(sum(folds, [])) == ids and {len(f) for f in folds} == {20}


def test_feature_cache_hits_and_invalidates(tmp_path):
    path = write(tmp_path / "x.wav", tone(440, 2.0))
    s = FeatureSettings(window_seconds=2.0)
    cache = FeatureCache(tmp_path / "cache", s)
    first = cache.get(path)
    entry = next((tmp_path / "cache").glob("*.npy"))
    np.save(entry, np.full_like(first, 7.0))  # prove the second read comes from disk
    assert (cache.get(path) == 7.0).all()
    write(path, tone(880, 2.0))  # a changed file gets a new key
    assert not (cache.get(path) == 7.0).all()
    other = FeatureCache(tmp_path / "cache", FeatureSettings(window_seconds=1.0)).get(path)
    assert other.shape[-1] != first.shape[-1]
