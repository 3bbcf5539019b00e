"""Scoring against Russell-quadrant labels: the scores, the labels file, artist folds, the
evaluate command on a quadrant set, and a model that learns valence from one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from music2emotion.training import quadrants as qd


def test_perfect_predictions_score_one_and_fall_in_their_quadrant():
    q = np.array([1, 2, 3, 4] * 5)
    pred = np.array([[0.8, 0.8], [0.2, 0.9], [0.3, 0.1], [0.7, 0.3]] * 5)
    s = qd.quadrant_scores(q, pred)
    for key in ("valence_auc", "arousal_auc", "valence_auc_energetic", "valence_auc_calm",
                "quadrant_accuracy", "valence_accuracy", "arousal_accuracy"):
        assert s[key] == 1.0, key
    assert np.array_equal(np.array(s["confusion"]), 5 * np.eye(4, dtype=int))
    assert s["n"] == 20


def test_valence_read_off_energy_is_at_chance_within_each_arousal_half():
    # a model whose valence is its arousal: perfect arousal, valence AUC 0.5 overall and
    # within each half, and it calls every energetic song happy and every calm song sad
    rng = np.random.default_rng(0)
    q = np.repeat([1, 2, 3, 4], 50)
    arousal = np.where(np.isin(q, (1, 2)), rng.uniform(0.6, 0.9, len(q)), rng.uniform(0.1, 0.4, len(q)))
    s = qd.quadrant_scores(q, np.column_stack([arousal, arousal]))
    assert s["arousal_auc"] == 1.0
    assert s["valence_auc"] == pytest.approx(0.5, abs=0.1)
    assert s["valence_auc_energetic"] == pytest.approx(0.5, abs=0.15)
    assert s["valence_auc_calm"] == pytest.approx(0.5, abs=0.15)
    assert s["valence_arousal_r"] == pytest.approx(1.0)
    confusion = np.array(s["confusion"])
    assert confusion[:, 0].sum() == 100 and confusion[:, 2].sum() == 100  # Q1 and Q3 columns only
    assert s["quadrant_accuracy"] == 0.5


def test_auc_counts_ties_half_and_needs_both_classes():
    assert qd.auc(np.array([True, False]), np.array([0.5, 0.5])) == 0.5
    assert qd.auc(np.array([True, True, False]), np.array([0.9, 0.1, 0.5])) == 0.5
    assert np.isnan(qd.auc(np.array([True, True]), np.array([0.1, 0.2])))


def test_the_threshold_is_inclusive_as_for_the_mood_words():
    assert qd.quadrant_of(np.array([[0.5, 0.5], [0.4999, 0.5], [0.5, 0.4999], [0.1, 0.1]])).tolist() == [1, 2, 4, 3]


def test_independence_separates_valence_that_is_arousal_from_valence_of_its_own():
    rng = np.random.default_rng(1)
    t = rng.standard_normal((2000, 2))
    t[:, 0] += 0.8 * t[:, 1]  # labels correlated like DEAM's
    energy = t[:, 1] + rng.normal(0, 0.3, len(t))
    energy_only = qd.independence(t, np.column_stack([energy, energy]))
    assert energy_only["partial_valence_r"] == pytest.approx(0.0, abs=0.05)
    assert energy_only["pred_valence_arousal_r"] == pytest.approx(1.0)
    own = qd.independence(t, t + rng.normal(0, 0.1, t.shape))
    assert own["partial_valence_r"] > 0.95
    assert own["true_valence_arousal_r"] == pytest.approx(np.corrcoef(t.T)[0, 1])


def test_pseudo_ratings_sit_on_the_labelled_side():
    r = qd.pseudo_ratings(np.array([1, 2, 3, 4]), (0.15, 0.2))
    assert np.allclose(r, [[0.65, 0.7], [0.35, 0.7], [0.35, 0.3], [0.65, 0.3]])


def test_a_labels_file_pairs_songs_with_audio(quadrant_like):
    data = qd.load_quadrants(quadrant_like)
    assert len(data.ids) == 32 and sorted(set(data.quadrants.tolist())) == [1, 2, 3, 4]
    assert all(p.stem == i for p, i in zip(data.paths, data.ids))
    assert data.high[data.quadrants == 2].tolist() == [[False, True]] * 8
    assert "Q1 8" in data.report() and "16 artists" in data.report()


@pytest.mark.parametrize("text, message", [
    ("song,quadrant\nA,Q1\n", "missing column(s) song_id"),
    ("song_id,quadrant\nA,Q5\n", "line 2: quadrant must be Q1-Q4"),
    ("song_id,quadrant\nA,Q1\nA,2\n", "line 3: song A listed twice"),
    ("song_id,quadrant\nnothing,Q1\n", "no audio file matches"),
])
def test_a_bad_labels_file_is_refused_naming_the_line(tmp_path, text, message):
    from helpers import noise, write

    write(tmp_path / "audio" / "A.wav", noise(1.0))
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        qd.load_quadrants(tmp_path / "labels.csv")


def test_songs_without_audio_are_counted_not_dropped_silently(tmp_path):
    from helpers import noise, write

    write(tmp_path / "clips" / "A.flac", noise(1.0))
    (tmp_path / "l.csv").write_text("song_id,quadrant,artist\nA,1,x\nB,q3,y\n")
    data = qd.load_quadrants(tmp_path / "l.csv", tmp_path / "clips")
    assert data.ids == ["A"] and data.labels_without_audio == ["B"] and data.artists == ["x"]


def test_folds_never_split_an_artist_and_balance_the_quadrants(quadrant_like):
    data = qd.load_quadrants(quadrant_like)
    folds = qd.group_folds(data, 4, seed=3)
    assert sorted(s for f in folds for s in f) == sorted(data.ids)
    artist = dict(zip(data.ids, data.artists))
    quadrant = dict(zip(data.ids, data.quadrants.tolist()))
    for i, f in enumerate(folds):
        others = {artist[s] for j, g in enumerate(folds) if j != i for s in g}
        assert not {artist[s] for s in f} & others
        assert {quadrant[s] for s in f} == {1, 2, 3, 4}
    assert folds == qd.group_folds(data, 4, seed=3)


def test_a_quadrant_rarer_than_the_folds_still_splits_quietly(recwarn):
    """A small labels file (3 sad songs, 5 folds) gets valid folds and no warning on stderr."""
    q = [1] * 8 + [2] * 8 + [3] * 3 + [4] * 8
    ids = [f"s{i}" for i in range(len(q))]
    data = qd.QuadrantSet(ids, [], np.array(q), [f"a{i}" for i in range(len(q))], [])
    folds = qd.group_folds(data, 5, seed=0)
    assert sorted(s for f in folds for s in f) == sorted(ids) and all(folds)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_the_quadrant_picture_is_written(tmp_path):
    q = np.repeat([1, 2, 3, 4], 5)
    out = qd.quadrant_plot(q, np.random.default_rng(0).uniform(size=(20, 2)), tmp_path / "q.png", "t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_scores_a_model_on_quadrant_labels(quadrant_like, tmp_path, capsys):
    from music2emotion.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", "fast", "--quadrants", str(quadrant_like), "--folds", "4",
                 "--out", str(out), "--jobs", "1"]) == 0
    report = json.loads((out / "evaluation.json").read_text())["quadrants"]
    assert report["songs"] == 32 and len(report["model_fold_scores"]) == 4
    for block in (report["model_score"], report["baselines"]["quadrants only: logistic on descriptors"]):
        assert 0 <= block["quadrant_accuracy"] <= 1 and 0 <= block["valence_auc"] <= 1
        assert np.array(block["confusion"]).sum() == 32
    # loud, busy songs are energetic to the bundled model too
    assert report["model_score"]["arousal_auc"] > 0.8
    lines = (out / "quadrant_predictions.csv").read_text().splitlines()
    assert lines[0] == "song_id,quadrant,valence_pred,arousal_pred,quadrant_pred" and len(lines) == 33
    assert (out / "quadrants.png").is_file()
    assert "V AUC Q1/Q2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "fast"], "give --audio-dir and --annotations, --quadrants, or both"),
    (["--quadrant-audio", "."], "--quadrant-audio needs --quadrants"),
    (["--quadrants", "missing.csv"], "file not found"),
    ([], "cross-validation needs DEAM-rated songs"),
])
def test_evaluate_explains_what_it_needs(tmp_path, capsys, argv, message):
    from music2emotion.cli import main

    assert main(["evaluate", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_quadrant_labels_teach_the_valence_that_energy_rated_songs_cannot(tmp_path_factory, quadrant_like):
    """DEAM-like ratings whose valence follows energy teach a model that loud means pleasant;
    trained beside quadrant labels that follow mode and dissonance, the same candidate tells
    happy from angry songs at equal energy."""
    from helpers import make_deam_like

    from music2emotion.cli import main

    audio, ann = make_deam_like(tmp_path_factory.mktemp("energy"), n=100, valence_follows="energy")
    out = tmp_path_factory.mktemp("cv")
    deam_only, joint = "descriptors: ridge+pca-svr+hgb on DEAM", "descriptors: ridge+pca-svr+hgb on DEAM+quadrants"
    assert main(["evaluate", "--audio-dir", str(audio), "--annotations", str(ann), "--quadrants",
                 str(quadrant_like), "--folds", "4", "--out", str(out), "--jobs", "2",
                 "--candidates", f"{deam_only},{joint}"]) == 0
    results = {r["name"]: r for r in json.loads((out / "cv.json").read_text())["results"]}
    q_only = results["quadrants only: logistic on descriptors"]
    assert "mean" not in q_only  # it rates no DEAM song
    before, after = results[deam_only]["quadrants"]["mean"], results[joint]["quadrants"]["mean"]
    # on ratings alone the noisy, dissonant songs are the most pleasant of the energetic ones
    assert before["valence_auc_energetic"] < 0.3
    assert after["valence_auc_energetic"] > before["valence_auc_energetic"] + 0.3
    assert after["valence_auc"] > before["valence_auc"] + 0.1
    assert after["quadrant_accuracy"] > before["quadrant_accuracy"] + 0.05
    # and the rated songs are still fitted
    for dim in ("valence", "arousal"):
        assert results[joint]["mean"][dim]["r2"] > results[deam_only]["mean"][dim]["r2"] - 0.02
    table = (out / "cv_table.md").read_text()
    assert "| quadrants only: logistic on descriptors | — |" in table and "V AUC Q1/Q2" in table
    folds = json.loads((out / "folds.json").read_text())
    assert len(folds["quadrant_folds"]) == 4
    assert (out / "oof_quadrants.csv").read_text().count("\n") == 33
    assert (out / "quadrants_descriptors-ridge-pca-svr-hgb-on-deam-quadrants.png").is_file()
