"""AMA: R- and A-scores, separation, determinism, save/load, ablation switches, semi-supervised fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import advad
from advad.base import InputError
from advad.models.ama import AMA, atypical_latents  # registers "ama" until advad.models imports it

FAST = dict(epochs=6, n_critic=2, batch_size=64)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 6)).astype(np.float32)
    X_test = np.vstack([rng.normal(size=(150, 6)), rng.normal(size=(50, 6)) * 0.5 + 3.5]).astype(np.float32)
    return X, X_test, np.r_[np.zeros(150), np.ones(50)]


def test_scores_finite_varied_and_separate_anomalies():
    X, X_test, y_test = _data()
    det = AMA(random_state=0, **FAST).fit(X)
    s = det.decision_function(X_test)
    assert s.shape == (200,) and np.isfinite(s).all() and s.std() > 0
    assert roc_auc_score(y_test, s) > 0.8
    both = det.score_all(X_test)
    np.testing.assert_allclose(both["neg_log_a"], s, rtol=1e-6)
    # A-score is two-sided: equal distance from the training mean of R gives equal score
    r = both["r"]
    mirrored = det._neg_log_density(2 * det.r_mean_ - r)
    np.testing.assert_allclose(mirrored, s, rtol=1e-6)
    assert roc_auc_score(y_test, AMA(random_state=0, score="r", **FAST).fit(X).decision_function(X_test)) > 0.8


def test_same_seed_same_scores_and_save_load(tmp_path):
    X, X_test, _ = _data()
    a = AMA(random_state=1, **FAST).fit(X)
    b = AMA(random_state=1, **FAST).fit(X)
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))
    a.save(tmp_path / "a.advad")
    c = advad.load(tmp_path / "a.advad")
    np.testing.assert_array_equal(a.decision_function(X_test), c.decision_function(X_test))
    assert c.r_mean_ == a.r_mean_ and c.r_std_ == a.r_std_


@pytest.mark.parametrize("kw", [
    dict(lipschitz="sn"), dict(lipschitz="gp+sn"), dict(mirrored=False), dict(lambda_inter=0.0),
    dict(atypical="outward"), dict(atypical="cube"), dict(atypical="none"), dict(atypical_radius="data"),
    dict(atypical="scaled"),
    dict(selection="feature"), dict(score="r"),
])
def test_options_run(kw):
    X, X_test, _ = _data()
    det = AMA(random_state=0, epochs=2, n_critic=1, batch_size=128, atypical_start=0.0, **kw).fit(X)
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and s.std() > 0


@pytest.mark.parametrize("radius", ["sqrt_d", "data"])
def test_atypical_latents_lie_where_fig3_puts_them(radius):
    z = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) * 3.0
    r0 = 4.0 if radius == "sqrt_d" else float(z.norm(dim=1).mean())
    inward, outward, cube, scaled = (atypical_latents(z, kind, 0.5, radius, torch.Generator().manual_seed(1))
                                     for kind in ("inward", "outward", "cube", "scaled"))
    assert inward.norm(dim=1).min() >= 0.5 * r0 - 1e-4 and inward.norm(dim=1).max() <= r0 + 1e-4
    assert inward.norm(dim=1).std() > 0.1
    assert outward.norm(dim=1).min() >= r0 - 1e-4 and outward.norm(dim=1).max() <= 1.5 * r0 + 1e-4
    assert cube.abs().max() <= 0.5 * r0 / 4.0 + 1e-6 and cube.norm(dim=1).max() <= 0.5 * r0 + 1e-4
    # the authors' code: α·E(x), α ~ U(0, δ) — same direction, at most half the norm
    alpha = scaled.norm(dim=1) / z.norm(dim=1)
    assert alpha.min() >= 0 and alpha.max() <= 0.5 + 1e-6 and alpha.std() > 0.1
    torch.testing.assert_close(scaled, z * alpha[:, None])


def test_semi_supervised_fit_with_known_anomalies():
    X, X_test, y_test = _data()
    rng = np.random.default_rng(5)
    known = (rng.normal(size=(20, 6)) * 0.5 + 3.5).astype(np.float32)
    X_all = np.vstack([X, known])
    y = np.r_[np.zeros(len(X)), np.ones(len(known))].astype(int)
    det = AMA(random_state=0, **FAST).fit(X_all, y)
    assert det.n_known_anomalies_ == 20
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and s.std() > 0
    assert det.decision_scores_.shape == (len(X_all),)
    # known anomalies change the fit
    assert not np.array_equal(s, AMA(random_state=0, **FAST).fit(X_all).decision_function(X_test))


def test_bad_labels_raise():
    X, _, _ = _data()
    with pytest.raises(InputError, match="only 0"):
        AMA(epochs=1).fit(X, np.full(len(X), 2))
    with pytest.raises(InputError, match="labels"):
        AMA(epochs=1).fit(X, np.zeros(3))
    with pytest.raises(InputError, match="normal rows"):
        AMA(epochs=1).fit(X, np.ones(len(X), int))


def test_validation_data_selects_by_auroc():
    X, X_test, y_test = _data()
    det = AMA(random_state=0, epochs=3, n_critic=1, batch_size=128, selection_start=0.0).fit(
        X, validation_data=(X_test[::4], y_test[::4]))
    assert det.selected_by_ == "validation" and det.best_epoch_ is not None
    with pytest.raises(InputError, match="validation_data"):
        AMA(epochs=1).fit(X, validation_data=(X_test, np.zeros(len(X_test))))


def test_images_run():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, size=(32, 1, 28, 28)).astype(np.uint8)
    det = AMA(random_state=0, epochs=1, n_critic=1, batch_size=16, atypical_start=0.0).fit(imgs)
    assert det.config_["architecture"] == "mnist" and np.isfinite(det.decision_scores_).all()
