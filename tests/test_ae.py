"""The `ae` baseline on the engine."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

import advad
from advad.models.ae import AutoEncoder


def _data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 8))
    X = (rng.normal(size=(500, 2)) @ basis + 0.05 * rng.normal(size=(500, 8))).astype(np.float32)
    X_test = np.vstack([rng.normal(size=(100, 2)) @ basis, rng.normal(0, 2, size=(20, 8))]).astype(np.float32)
    return X, X_test, np.r_[np.zeros(100), np.ones(20)]


def test_ae_detects_seeded_and_roundtrips(tmp_path):
    X, X_test, y = _data()
    det = AutoEncoder(random_state=0, epochs=15).fit(X)
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and roc_auc_score(y, s) > 0.9
    np.testing.assert_array_equal(s, AutoEncoder(random_state=0, epochs=15).fit(X).decision_function(X_test))
    det.save(tmp_path / "ae.advad")
    np.testing.assert_array_equal(advad.load(tmp_path / "ae.advad").decision_function(X_test), s)


def test_ae_images():
    X = (np.random.default_rng(0).random(size=(32, 1, 28, 28)) * 255).astype(np.uint8)
    det = AutoEncoder(random_state=0, epochs=1, batch_size=8).fit(X)
    assert det.decision_function(X).shape == (32,)
