"""Evaluation: metrics on both scales, folds kept as song ids, honest cross-validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from music2emotion.training import evaluate as ev


def noisy_linear(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    y = np.stack([0.5 + 0.1 * x[:, 0], 0.5 - 0.1 * x[:, 1] + 0.05 * x[:, 3]], 1)
    return x, y + rng.normal(0, 0.02, y.shape)


def test_score_reports_both_scales_and_an_interval():
    rng = np.random.default_rng(1)
    y = rng.uniform(0.2, 0.8, (100, 2))
    p = y + rng.normal(0, 0.05, y.shape)
    s = ev.score(y, p, n_boot=200)
    assert s["n"] == 100
    for dim in ("valence", "arousal"):
        unit, deam = s["unit"][dim], s["deam"][dim]
        assert deam["rmse"] == pytest.approx(8 * unit["rmse"])
        assert deam["mae"] == pytest.approx(8 * unit["mae"])
        for m in ("r2", "pearson_r", "ccc"):
            assert deam[m] == pytest.approx(unit[m])
        lo, hi = unit["r2_ci95"]
        assert lo < unit["r2"] < hi
    assert "valence" in ev.format_score(s, "demo")


def test_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        ev.score(np.zeros((4, 2)), np.zeros((3, 2)))


def test_folds_partition_the_ids_and_survive_a_round_trip(tmp_path):
    ids = list(range(100, 153))
    folds = ev.kfold(ids, 5, seed=7)
    assert sorted(i for f in folds for i in f) == ids
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert ev.kfold(ids, 5, seed=7) == folds and ev.kfold(ids, 5, seed=8) != folds
    path = ev.save_folds(tmp_path / "folds.json", folds, seed=7)
    assert ev.load_folds(path) == folds
    assert json.loads(path.read_text())["seed"] == 7


def test_overlapping_folds_are_refused(tmp_path):
    (tmp_path / "f.json").write_text(json.dumps({"seed": 0, "folds": [[1, 2], [2, 3]]}))
    with pytest.raises(ValueError, match="two folds"):
        ev.load_folds(tmp_path / "f.json")


def test_read_ids_accepts_lines_and_commas(tmp_path):
    (tmp_path / "ids.txt").write_text("3\n1, 2\n")
    assert ev.read_ids(tmp_path / "ids.txt") == [1, 2, 3]
    (tmp_path / "bad.txt").write_text("1 two")
    with pytest.raises(ValueError, match="bad.txt"):
        ev.read_ids(tmp_path / "bad.txt")


def test_cross_validation_separates_a_real_model_from_the_mean():
    x, y = noisy_linear()
    ids = list(range(len(x)))
    folds = ev.kfold(ids, 4, seed=0)
    names = ["mel0_mean", "mfcc0_mean", "tempo", "chroma0_mean", "key_mode"]
    mean = ev.cross_validate("mean", ev.MeanPredictor, x, y, ids, folds)
    ridge = ev.cross_validate("ridge-summary", lambda: ev.summary_ridge(names), x, y, ids, folds)
    assert len(mean.fold_scores) == 4
    # the mean of the training folds is not the test fold's mean, so R² is at or just below 0
    assert -0.1 < mean.stat("valence", "r2")[0] <= 0.0
    assert ridge.stat("valence", "r2")[0] > 0.9
    # the summary ridge sees only mel/mfcc/tempo columns: x[:, 1] (arousal's main cause) is in,
    # x[:, 3] and x[:, 4] are not, so arousal is predicted but not perfectly
    assert 0.5 < ridge.stat("arousal", "r2")[0] < 0.95
    table = ev.format_table([mean, ridge])
    assert table.count("\n") == 3 and "ridge-summary" in table and "±" in table
    summary = ridge.summary()
    assert summary["mean"]["valence"]["r2"] == pytest.approx(ridge.stat("valence", "r2")[0])


def test_out_of_fold_predictions_never_see_their_own_label():
    x, y = noisy_linear(60)
    ids = list(range(60))
    folds = ev.kfold(ids, 3, seed=0)

    class Memorizer:
        """Perfect on songs it trained on, mean elsewhere: leakage would show as R² 1."""

        def fit(self, x, y):
            self.table = {tuple(r): t for r, t in zip(x, y)}
            self.mean = y.mean(0)
            return self

        def predict(self, x):
            return np.array([self.table.get(tuple(r), self.mean) for r in x])

    res = ev.cross_validate("memorizer", Memorizer, x, y, ids, folds)
    assert res.stat("valence", "r2")[0] <= 0.0


def test_folds_must_match_the_data():
    with pytest.raises(ValueError, match="not in the data"):
        ev.fold_indices([1, 2, 3], [[1, 2], [4]])
    with pytest.raises(ValueError, match="exactly once"):
        ev.fold_indices([1, 2, 3], [[1], [2]])


def test_fixed_predictions_are_scored_per_fold():
    x, y = noisy_linear(40)
    ids = list(range(40))
    res = ev.fixed_predictions("oracle", y, y, ids, ev.kfold(ids, 2, 0))
    assert res.stat("arousal", "r2") == (pytest.approx(1.0), pytest.approx(0.0))


def test_scatter_plot_writes_a_png(tmp_path):
    x, y = noisy_linear(30)
    out = ev.scatter_plot(y, y + 0.01, tmp_path / "s.png", "demo")
    assert out.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- the evaluate command

@pytest.fixture(scope="module")
def tiny_deam(tmp_path_factory):
    """12 short labelled clips: louder and busier clips get higher arousal and valence."""
    from helpers import noise, tone, write

    root = tmp_path_factory.mktemp("deam")
    rows = ["song_id, valence_mean, valence_std, arousal_mean, arousal_std"]
    for sid in range(1, 13):
        level = sid / 12
        write(root / "audio" / f"{sid}.wav",
              tone(200 + 40 * sid, 1.5, amp=0.05) + noise(1.5, amp=level * 0.3, seed=sid))
        rows.append(f"{sid},{2 + 5 * level:.2f},1.0,{1.5 + 6 * level:.2f},1.1")
    (root / "ann.csv").write_text("\n".join(rows) + "\n")
    return root


def run_cli(*argv: str) -> int:
    from music2emotion.cli import main

    return main(list(argv))


@pytest.mark.slow
def test_evaluate_cross_validates_candidates_beside_baselines(tiny_deam, tmp_path, capsys):
    out = tmp_path / "cv"
    rc = run_cli("evaluate", "--audio-dir", str(tiny_deam / "audio"), "--annotations", str(tiny_deam / "ann.csv"),
                 "--folds", "3", "--out", str(out), "--jobs", "1", "--candidates", "descriptors: ridge+pca-svr+hgb on DEAM")
    assert rc == 0
    table = (out / "cv_table.md").read_text()
    for name in ("mean", "ridge-summary", "descriptors: ridge+pca-svr+hgb on DEAM"):
        assert f"| {name} |" in table
    folds = ev.load_folds(out / "folds.json")
    assert sorted(i for f in folds for i in f) == list(range(1, 13)) and len(folds) == 3
    cv = json.loads((out / "cv.json").read_text())
    assert [r["name"] for r in cv["results"]] == ["mean", "ridge-summary", "descriptors: ridge+pca-svr+hgb on DEAM"]
    assert (out / "scatter_best.png").is_file()
    assert (out / "oof_predictions.csv").read_text().count("\n") == 13
    # the same folds again, from the file: same table
    again = tmp_path / "cv2"
    assert run_cli("evaluate", "--audio-dir", str(tiny_deam / "audio"), "--annotations", str(tiny_deam / "ann.csv"),
                   "--folds-file", str(out / "folds.json"), "--out", str(again), "--jobs", "1",
                   "--candidates", "descriptors: ridge+pca-svr+hgb on DEAM") == 0
    assert (again / "cv_table.md").read_text() == table


@pytest.mark.slow
def test_evaluate_scores_a_model_on_a_split(tiny_deam, tmp_path):
    torch = pytest.importorskip("torch")
    from music2emotion.config import FeatureSettings
    from music2emotion.training.cnn import build_model
    from music2emotion.training.export import export_onnx

    torch.manual_seed(0)
    model = export_onnx(build_model("seed"), FeatureSettings(window_seconds=1.0), tmp_path / "m.onnx")
    (tmp_path / "split.txt").write_text("2 5 8 11\n")
    out = tmp_path / "eval"
    rc = run_cli("evaluate", "--model", str(model), "--audio-dir", str(tiny_deam / "audio"),
                 "--annotations", str(tiny_deam / "ann.csv"), "--split", str(tmp_path / "split.txt"),
                 "--out", str(out), "--jobs", "1")
    assert rc == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["songs"] == 4
    for block in (report["model_score"], *report["baselines"].values()):
        assert set(block["unit"]) == {"valence", "arousal"} and "r2_ci95" in block["unit"]["valence"]
        assert block["deam"]["arousal"]["rmse"] == pytest.approx(8 * block["unit"]["arousal"]["rmse"])
    assert "outside the split" in report["baselines"]["ridge-summary"]["how"]
    assert (out / "predictions.csv").read_text().splitlines()[0].startswith("song_id,")
    assert (out / "scatter.png").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--folds", "1"], "--folds"),
    (["--model", "missing.onnx"], "file not found"),
    (["--split", "ids.txt"], "--split"),
])
def test_evaluate_usage_errors_exit_2(tiny_deam, tmp_path, capsys, extra, message):
    (tmp_path / "ids.txt").write_text("1\n")
    extra = [str(tmp_path / e) if e.endswith((".txt", ".onnx")) else e for e in extra]
    rc = run_cli("evaluate", "--audio-dir", str(tiny_deam / "audio"), "--annotations",
                 str(tiny_deam / "ann.csv"), "--out", str(tmp_path / "o"), *extra)
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
