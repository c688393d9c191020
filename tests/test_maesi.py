"""MAESI: scores, separation on an easy set, determinism, save/load, every critic / interpolation option."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import advad
from advad.base import InputError
from advad.models.maesi import MAESI  # registers "maesi" until advad.models imports it
from advad.models.ama import AMA

FAST = dict(epochs=4, n_critic=2, batch_size=64)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 6)).astype(np.float32)
    test_normal = rng.normal(size=(150, 6)).astype(np.float32)
    test_anom = (rng.normal(size=(50, 6)) * 0.5 + 3.5).astype(np.float32)
    X_test = np.vstack([test_normal, test_anom])
    y_test = np.r_[np.zeros(150), np.ones(50)]
    return X, X_test, y_test


def test_scores_finite_varied_and_separate_anomalies():
    X, X_test, y_test = _data()
    det = MAESI(random_state=0, **FAST).fit(X)
    s = det.decision_function(X_test)
    assert s.shape == (200,) and np.isfinite(s).all() and s.std() > 0
    assert roc_auc_score(y_test, s) > 0.8
    assert det.predict(X_test).shape == (200,)
    assert det.best_epoch_ is not None and det.best_epoch_ >= 3  # selection from epoch ceil(0.6 · 4) = 3


def test_same_seed_same_scores_and_save_load(tmp_path):
    X, X_test, _ = _data()
    a = MAESI(random_state=3, **FAST).fit(X)
    b = MAESI(random_state=3, **FAST).fit(X)
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))
    a.save(tmp_path / "m.advad")
    c = advad.load(tmp_path / "m.advad")
    assert type(c) is MAESI
    np.testing.assert_array_equal(a.decision_function(X_test), c.decision_function(X_test))


@pytest.mark.parametrize("kw", [
    dict(lipschitz="gp"), dict(lipschitz="sn"), dict(lipschitz="gp+sn"),
    dict(interpolation="simplex", m=2), dict(interpolation="berthelot"), dict(interpolation="none"),
    dict(latent_reg_kind="norm", selection="last"), dict(architecture="thyroid"), dict(optimizer="sgd"),
])
def test_options_run(kw, tmp_path):
    X, X_test, _ = _data()
    det = MAESI(random_state=0, epochs=2, n_critic=1, batch_size=128, **kw).fit(X)
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and s.std() > 0
    det.save(tmp_path / "m.advad")
    np.testing.assert_array_equal(s, advad.load(tmp_path / "m.advad").decision_function(X_test))


def test_images_conv_and_resnet():
    rng = np.random.default_rng(0)
    mnist_like = rng.integers(0, 255, size=(32, 28, 28)).astype(np.uint8)
    det = MAESI(random_state=0, epochs=1, n_critic=1, batch_size=16).fit(mnist_like)
    assert det.config_["architecture"] == "mnist" and np.isfinite(det.decision_scores_).all()
    cifar_like = rng.random(size=(8, 3, 32, 32)).astype(np.float32)
    det = MAESI(random_state=0, epochs=1, n_critic=1, batch_size=8, lipschitz="sn").fit(cifar_like)
    assert det.config_["architecture"] == "cifar" and np.isfinite(det.decision_scores_).all()
    assert det.reconstruct(cifar_like[:2]).shape == (2, 3, 32, 32)


def test_bad_parameters_raise():
    X, _, _ = _data()
    with pytest.raises(InputError, match="interpolation"):
        MAESI(interpolation="linear").fit(X)
    with pytest.raises(InputError, match="lipschitz"):
        MAESI(lipschitz="clip").fit(X)
    with pytest.raises(InputError, match="architecture"):
        MAESI(architecture="mnist", epochs=1).fit(X)


def test_bench_params_budgets():
    for name, shape in [("thyroid", (100, 6)), ("arrhythmia", (100, 274)), ("kdd99", (50_000, 121)),
                        ("fashion-mnist", (10, 1, 28, 28)), ("loop", (100, 2))]:
        ds = SimpleNamespace(name=name, X=np.zeros(shape, np.float32))
        for budget in ("smoke", "quick", "paper"):
            assert isinstance(MAESI.bench_params(ds, budget), dict)
    assert MAESI.bench_params(SimpleNamespace(name="thyroid", X=np.zeros((9, 6))), "paper") == {"architecture": "thyroid"}
    kdd = SimpleNamespace(name="kdd99", X=np.zeros((9, 121)))
    for budget in ("quick", "paper"):  # KDD99: min-max, not z-scores (training rows are attacks only); SN critic
        assert MAESI.bench_params(kdd, budget)["preprocessing"] == "minmax"
        assert MAESI.bench_params(kdd, budget)["lipschitz"] == "sn"
        assert "lipschitz" not in AMA.bench_params(kdd, budget)
        assert "preprocessing" not in AMA.bench_params(kdd, budget)  # AMA collapses with min-max
