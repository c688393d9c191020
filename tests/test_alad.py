"""ALAD: scores, determinism, save/load, resume after SIGKILL, NaN guard, eval-mode scoring, images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import advad
from advad.engine import TrainingDiverged
from advad.models.alad import ALAD

FAST = dict(epochs=8, learning_rate=1e-3, ema_warmup=True)


def _data(seed: int = 0, n: int = 600, d: int = 10):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, d))
    normal = (rng.normal(size=(n, 3)) @ basis + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
    test_normal = (rng.normal(size=(200, 3)) @ basis + 0.1 * rng.normal(size=(200, d))).astype(np.float32)
    anomalies = rng.normal(0, 3, size=(40, d)).astype(np.float32)
    X_test = np.vstack([test_normal, anomalies])
    y_test = np.r_[np.zeros(200), np.ones(40)]
    return normal, X_test, y_test


@pytest.fixture(scope="module")
def fitted():
    X, X_test, y_test = _data()
    return ALAD(random_state=0, **FAST).fit(X), X, X_test, y_test


def test_scores_finite_informative_and_all_variants(fitted):
    det, X, X_test, y_test = fitted
    s = det.decision_function(X_test)
    assert s.shape == (240,) and np.isfinite(s).all() and s.std() > 0
    assert roc_auc_score(y_test, s) > 0.9
    allscores = det.score_all(X_test)
    np.testing.assert_allclose(allscores["fm"], s, rtol=1e-6)
    for kind in ("l1", "l2"):
        assert roc_auc_score(y_test, allscores[kind]) > 0.9
        np.testing.assert_allclose(det.decision_function(X_test, score=kind), allscores[kind], rtol=1e-6)
    assert np.isfinite(allscores["logits"]).all() and allscores["logits"].std() > 0
    assert det.predict(X_test).mean() > 0.1  # threshold from the training scores at contamination 0.1
    assert det.config_["architecture"] == "arrhythmia" and set(det.networks_) == {"E", "G", "dxz", "dxx", "dzz"}


def test_same_seed_identical_scores_other_seed_differs(fitted):
    det, X, X_test, _ = fitted
    again = ALAD(random_state=0, **FAST).fit(X)
    np.testing.assert_array_equal(det.decision_function(X_test), again.decision_function(X_test))
    other = ALAD(random_state=1, **FAST).fit(X)
    assert not np.array_equal(det.decision_function(X_test), other.decision_function(X_test))


def test_save_load_identical_scores(fitted, tmp_path):
    det, X, X_test, _ = fitted
    det.save(tmp_path / "m.advad")
    back = advad.load(tmp_path / "m.advad")
    assert isinstance(back, ALAD)
    np.testing.assert_array_equal(det.decision_function(X_test), back.decision_function(X_test))
    for kind in ("l1", "logits"):
        np.testing.assert_array_equal(det.decision_function(X_test, score=kind),
                                      back.decision_function(X_test, score=kind))
    assert back.threshold_ == det.threshold_


def test_scoring_in_eval_mode_row_independent(fitted):
    det, X, X_test, _ = fitted
    full = det.decision_function(X_test)
    one_by_one = ALAD(**{**det.get_params(), "score_batch_size": 1})
    det_small = det.set_params(score_batch_size=7)
    try:
        shuffled = np.random.default_rng(3).permutation(len(X_test))
        np.testing.assert_allclose(det_small.decision_function(X_test[shuffled]), full[shuffled], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(det.decision_function(X_test[:1]), full[:1], rtol=1e-5, atol=1e-6)
    finally:
        det.set_params(score_batch_size=4096)
    assert one_by_one.score_batch_size == 1


def test_ablation_switches_and_no_ema():
    X, X_test, y_test = _data(1, n=300)
    det = ALAD(random_state=0, spectral_norm=False, use_dzz=False, ema_decay=None, score="l2", epochs=3,
               learning_rate=1e-3).fit(X)
    assert "dzz" not in det.networks_ and np.isfinite(det.decision_function(X_test)).all()
    assert not any("parametrizations" in k for k in det.networks_["dxx"].state_dict())


def test_selection_keeps_epoch_with_lowest_training_score(fitted, tmp_path):
    """selection="l2": the kept epoch is the argmin of the logged criterion (mean l2 score of the
    moving-average networks on training rows), and the scores are those of that epoch's weights."""
    _, X, X_test, _ = fitted
    det = ALAD(random_state=0, selection="l2", selection_samples=300, **FAST).fit(X)
    values = [h["selection"] for h in det.history_]
    assert len(values) == FAST["epochs"] and det.best_epoch_ == 1 + int(np.argmin(values))
    again = ALAD(random_state=0, selection="l2", selection_samples=300,
                 **{**FAST, "epochs": det.best_epoch_}).fit(X)  # stopping there gives the same networks
    assert np.allclose(det.decision_function(X_test), again.decision_function(X_test), rtol=1e-5, atol=1e-6)
    det.save(tmp_path / "m.advad")
    assert advad.load(tmp_path / "m.advad").best_epoch_ == det.best_epoch_


def test_nan_guard_clear_message(monkeypatch):
    import advad.models.alad as alad_mod

    real = alad_mod.bce
    monkeypatch.setattr(alad_mod, "bce", lambda logits, target: real(logits, target) * float("nan"))
    X, _, _ = _data(2, n=100)
    with pytest.raises(TrainingDiverged, match=r"step 'D' \(networks dxz, dxx, dzz\).*epoch 1 of 2"):
        ALAD(random_state=0, epochs=2).fit(X)


def test_bad_params_rejected():
    X, _, _ = _data(2, n=50)
    with pytest.raises(ValueError, match="score must be one of"):
        ALAD(score="nope").fit(X)
    with pytest.raises(ValueError, match="architecture"):
        ALAD(architecture="conv", epochs=1).fit(X)
    with pytest.raises(ValueError, match="selection must be one of"):
        ALAD(selection="auroc").fit(X)


CHILD = textwrap.dedent("""
    import os, signal, sys, numpy as np
    import advad.engine as engine
    from advad.models.alad import ALAD
    X = np.load(sys.argv[1])
    kill_at = int(sys.argv[3])
    real = engine.Trainer._run_step
    count = {"n": 0}
    def run_step(self, *a, **k):
        count["n"] += 1
        if kill_at and count["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)   # crash mid-epoch, no clean-up of any kind
        return real(self, *a, **k)
    engine.Trainer._run_step = run_step
    det = ALAD(random_state=0, epochs=4, learning_rate=1e-3, checkpoint_dir=sys.argv[2])
    det.fit(X, resume=True)
    np.save(sys.argv[4], det.decision_function(X))
""")


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    X, _, _ = _data(4, n=200)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "child.py").write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = lambda ck, kill, out: subprocess.run(  # noqa: E731
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "X.npy"), str(tmp_path / ck), str(kill),
         str(tmp_path / out)], env=env, capture_output=True, text=True, timeout=300)
    # 200 rows / batch 32 = 6 iterations × 2 steps per epoch: step 30 is inside epoch 3
    killed = run("ck", 30, "never.npy")
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "ck" / "checkpoint.safetensors").is_file() and not (tmp_path / "never.npy").exists()
    resumed = run("ck", 0, "resumed.npy")
    assert resumed.returncode == 0, resumed.stderr
    det = ALAD(random_state=0, epochs=4, learning_rate=1e-3).fit(X)
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npy"), det.decision_function(X))


def test_images_conv_architecture():
    rng = np.random.default_rng(0)
    X = (rng.random(size=(16, 28, 28)) * 255).astype(np.uint8)
    det = ALAD(random_state=0, epochs=1, batch_size=8, ema_warmup=True).fit(X)
    assert det.config_["architecture"] == "conv" and det.config_["input_shape"] == [1, 28, 28]
    s = det.decision_function(X[:10])
    assert np.isfinite(s).all() and s.std() > 0


def test_bench_params_budgets():
    class D:
        def __init__(self, shape, name):
            self.X, self.name = np.zeros(shape, np.float32), name
    # Arrhythmia: Table XIII as is, in the paper's Table II configuration (no D_zz), L1 score
    assert ALAD.bench_params(D((452, 274), "arrhythmia"), "paper") == {"use_dzz": False, "score": "l1"}
    assert ALAD.bench_params(D((494021, 121), "kdd99"), "paper") == {"preprocessing": "minmax"}
    quick = ALAD.bench_params(D((494021, 121), "kdd99"), "quick")
    # quick: KDD99's whole training half (198 300 rows), larger sets capped
    assert quick["max_train_samples"] == 200_000 and quick["preprocessing"] == "minmax" and quick["selection"] == "fm"
    for budget in ("quick", "paper"):
        ALAD(**ALAD.bench_params(D((3772, 6), "thyroid"), budget))._check_params()
    assert ALAD.bench_params(D((10, 28, 28), "fashion-mnist"), "smoke")["epochs"] <= 2
    json.dumps(quick)
