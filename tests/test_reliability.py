"""Reliability over every registered detector (issue 9): behaviour on an easy set, determinism, clone,
save/load, predict vs threshold; fuzzed bad input; damaged and malicious model files; divergence.

The model list comes from the registry at collection time, so a newly registered model is covered
without editing this file. `docs/reliability.md` tabulates what is tried here and the outcome.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

import advad
from advad.data import Dataset
from advad.models import get_model_class, list_models, make_detector

MODELS = list_models()
MIN_AUROC = 0.75  # chance is 0.5; every model measured ≥ 0.78 on seeds 0–4 of `_easy_set`

# The one per-model deviation from the generic recipe in `tiny_params`. RCGAN's default tabular score
# 1 − D_xx(x, G(E(x))) saturates on points far outside the training range, to 0 or 1 depending on
# the seed (AUROC 0.00–1.00 over seeds 0–4 here); its feature-distance score (Eq. 12) is stable.
RANKING_OVERRIDES: dict[str, dict] = {"rcgan": {"score": "features"}}


def _easy_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """300 Gaussian training normals in 4-D; test: 100 normals + 30 anomalies centred at (8, 8, 8, 8)."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(400, 4)).astype(np.float32)
    anomalies = rng.normal(loc=8.0, size=(30, 4)).astype(np.float32)
    return normal[:300], np.vstack([normal[300:], anomalies]), np.r_[np.zeros(100), np.ones(30)]


def tiny_params(name: str, X: np.ndarray) -> dict:
    """The model's `smoke` budget, with batches of 32 and at least 10 epochs where it has those
    parameters (300 rows at the smoke batch sizes are 1–2 optimiser steps an epoch: too few to learn)."""
    cls = get_model_class(name)
    params = dict(cls.bench_params(Dataset(name="easy", X=X, y=np.zeros(len(X))), "smoke"))
    names = cls().get_params(deep=False)
    if "batch_size" in names:
        params["batch_size"] = 32
    if "epochs" in names:
        params["epochs"] = max(int(params.get("epochs") or 1), 10)
    if "device" in names:
        params["device"] = "cpu"
    return {**params, **RANKING_OVERRIDES.get(name, {})}


def fit_tiny(name: str, X: np.ndarray, seed: int = 0, y: np.ndarray | None = None, **extra):
    return make_detector(name, random_state=seed, **{**tiny_params(name, X), **extra}).fit(X, y)


@pytest.fixture(scope="module")
def easy():
    return _easy_set()


@pytest.fixture(scope="module")
def fitted(easy):
    """One detector per registered model, fitted once on the easy set (seed 0)."""
    X, _, _ = easy
    return {name: fit_tiny(name, X) for name in MODELS}


# ============================================================================ 1. every model
@pytest.mark.parametrize("name", MODELS)
def test_scores_finite_varied_and_rank_anomalies_first(name, fitted, easy):
    _, X_test, y_test = easy
    det = fitted[name]
    s = det.decision_function(X_test)
    assert s.shape == (len(X_test),) and s.dtype == np.float64
    assert np.isfinite(s).all() and np.isfinite(det.decision_scores_).all()
    assert np.ptp(s) > 0 and np.ptp(det.decision_scores_) > 0
    auroc = roc_auc_score(y_test, s)
    assert auroc > MIN_AUROC, f"{name}: AUROC {auroc:.3f} on the easy set"


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(name, fitted, easy):
    X, X_test, _ = easy
    again = fit_tiny(name, X, seed=0)
    np.testing.assert_array_equal(again.decision_function(X_test), fitted[name].decision_function(X_test))
    np.testing.assert_array_equal(again.decision_scores_, fitted[name].decision_scores_)


@pytest.mark.parametrize("name", MODELS)
def test_clone_gives_same_parameters_unfitted(name, fitted):
    det = fitted[name]
    copy = clone(det)
    assert type(copy) is type(det) and copy.get_params() == det.get_params()
    assert not hasattr(copy, "threshold_")


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_scores(name, fitted, easy, tmp_path):
    _, X_test, _ = easy
    det = fitted[name]
    det.save(tmp_path / "m.advad")
    loaded = advad.load(tmp_path / "m.advad")
    assert type(loaded) is type(det) and loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.decision_function(X_test), det.decision_function(X_test))
    np.testing.assert_array_equal(loaded.decision_scores_, det.decision_scores_)
    assert loaded.threshold_ == det.threshold_
    np.testing.assert_array_equal(loaded.predict(X_test), det.predict(X_test))


@pytest.mark.parametrize("name", MODELS)
def test_predict_and_labels_follow_threshold(name, fitted, easy):
    _, X_test, _ = easy
    det = fitted[name]
    expected = (det.decision_function(X_test) > det.threshold_).astype(np.int64)
    np.testing.assert_array_equal(det.predict(X_test), expected)
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(np.int64))
    assert set(np.unique(det.predict(X_test))) <= {0, 1}
    # threshold_ is the (1 - contamination) quantile of the training scores
    assert abs(det.labels_.mean() - det.contamination) <= 0.02 + 1 / len(det.labels_)


# Known finding (docs/reliability.md): on the easy set AMA with 6 labelled anomalies ranks *worse* than
# without them (AUROC 0.19 / 0.76 / 0.80 / 0.37 on seeds 0–3 vs 0.87–1.00 unlabelled, also at 30 epochs).
KNOWN_Y_FAILURES = {"ama": "labelled anomalies lower AMA's AUROC on the easy set (see docs/reliability.md)"}


@pytest.mark.parametrize("name", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=KNOWN_Y_FAILURES[m])) if m in KNOWN_Y_FAILURES else m
    for m in MODELS if get_model_class(m).supports_y])
def test_known_anomalies_in_y_are_used(name, easy):
    X, X_test, y_test = easy
    rng = np.random.default_rng(1)
    known = rng.normal(loc=8.0, size=(6, 4)).astype(np.float32)
    det = fit_tiny(name, np.vstack([X, known]), y=np.r_[np.zeros(len(X)), np.ones(6)])
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and roc_auc_score(y_test, s) > MIN_AUROC
