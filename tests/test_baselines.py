"""The papers' deep baselines: DAGMM, DSEBM (energy / reconstruction), Deep SVDD, AnoGAN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import advad
from advad.models import make_detector

# tiny budgets: a few hundred optimiser steps at most
TINY: dict[str, dict] = {
    "dagmm": dict(epochs=30, batch_size=128),
    "dsebm-e": dict(epochs=10, batch_size=64),
    "dsebm-r": dict(epochs=10, batch_size=64),
    "deepsvdd": dict(epochs=10, lr_milestone=5, pretrain_epochs=5, pretrain_milestone=None, batch_size=64,
                     learning_rate=1e-3),
    "anogan": dict(epochs=15, batch_size=32, learning_rate=1e-3, ema_warmup=True, search_steps=10, search_lr=0.05),
}
NAMES = list(TINY)


def _data(seed: int = 0, n: int = 500, d: int = 8):
    """Normals near a 2-D plane in 8-D; anomalies spread off it."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, d))
    plane = lambda m: rng.normal(size=(m, 2)) @ basis + 0.1 * rng.normal(size=(m, d))  # noqa: E731
    X = plane(n).astype(np.float32)
    X_test = np.vstack([plane(150), rng.normal(0, 3, size=(30, d))]).astype(np.float32)
    return X, X_test, np.r_[np.zeros(150), np.ones(30)]


def _fit(name: str, X: np.ndarray, seed: int = 0):
    return make_detector(name, random_state=seed, device="cpu", **TINY[name]).fit(X)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def fitted(data):
    X, _, _ = data
    return {name: _fit(name, X) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_scores_finite_varied_and_rank_anomalies_first(name, fitted, data):
    _, X_test, y_test = data
    det = fitted[name]
    s = det.decision_function(X_test)
    assert s.shape == (len(X_test),) and np.isfinite(s).all() and s.std() > 0
    assert np.isfinite(det.decision_scores_).all() and det.decision_scores_.std() > 0
    assert roc_auc_score(y_test, s) > 0.8


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_scores(name, fitted, data):
    X, X_test, _ = data
    np.testing.assert_array_equal(fitted[name].decision_function(X_test), _fit(name, X).decision_function(X_test))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_same_scores(name, fitted, data, tmp_path):
    _, X_test, _ = data
    det = fitted[name]
    det.save(tmp_path / "m.advad")
    back = advad.load(tmp_path / "m.advad")
    assert type(back) is type(det) and back.threshold_ == det.threshold_
    np.testing.assert_array_equal(back.decision_function(X_test), det.decision_function(X_test))


@pytest.mark.parametrize("name", NAMES)
def test_bench_params_are_valid(name):
    class D:
        def __init__(self, shape, name):
            self.X, self.name = np.zeros(shape, np.float32), name

    cls = advad.models.get_model_class(name)
    sets = [D((494021, 121), "kdd99"), D((452, 274), "arrhythmia"), D((3772, 6), "thyroid")]
    if name in ("deepsvdd", "anogan"):
        sets.append(D((70000, 28, 28), "fashion-mnist"))
    for dataset in sets:
        for budget in ("smoke", "quick", "paper"):
            params = cls.bench_params(dataset, budget)
            json.dumps(params)
            make_detector(name, **params)._check_params()


def test_anogan_latent_search_leaves_networks_untouched(fitted, data):
    _, X_test, _ = data
    det = fitted["anogan"]
    nets = [*det.networks_.values(), *det.inference_networks_.values()]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in nets]
    flags = [[p.requires_grad for p in m.parameters()] for m in nets]
    grads = [[None if p.grad is None else p.grad.clone() for p in m.parameters()] for m in nets]
    det.decision_function(X_test)
    for m, state, flag, grad in zip(nets, before, flags, grads):
        for k, v in m.state_dict().items():
            assert torch.equal(v, state[k]), k
        for p, g in zip(m.parameters(), grad):  # no gradient reached G or D (left from training or none)
            assert (p.grad is None and g is None) or torch.equal(p.grad, g)
        assert [p.requires_grad for p in m.parameters()] == flag
    # every row searches from its own start: a row's score does not depend on the rows around it
    part = det.set_params(score_batch_size=7).decision_function(X_test[:20])
    det.set_params(score_batch_size=TINY["anogan"].get("score_batch_size", 1024))
    np.testing.assert_allclose(part, det.decision_function(X_test[:20]), rtol=1e-5)


def test_anogan_search_lowers_the_loss(data):
    X, X_test, _ = data
    params = {**TINY["anogan"], "search_steps": 0}
    no_search = make_detector("anogan", random_state=0, device="cpu", **params).fit(X).decision_function(X_test)
    searched = _fit("anogan", X).decision_function(X_test)
    assert searched.mean() < no_search.mean()


def test_deepsvdd_bias_free_and_centre_away_from_zero(fitted):
    det = fitted["deepsvdd"]
    for m in det.networks_["phi"].modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            assert m.bias is None
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert not m.affine
    assert (np.abs(det.center_) >= det.eps - 1e-7).all()


def test_dagmm_mixture_is_valid(fitted):
    det = fitted["dagmm"]
    assert det.weights_.shape == (det.config_["n_components"],) and abs(det.weights_.sum() - 1) < 1e-6
    assert det.means_.shape == (det.config_["n_components"], det.config_["latent_dim"] + 2)
    assert (np.linalg.eigvalsh(det.covariances_) > 0).all()


def test_dsebm_both_scores_from_one_fit(fitted, data):
    _, X_test, _ = data
    both = fitted["dsebm-e"].score_all(X_test)
    np.testing.assert_allclose(both["energy"], fitted["dsebm-e"].decision_function(X_test), rtol=1e-6)
    np.testing.assert_allclose(both["reconstruction"], fitted["dsebm-r"].decision_function(X_test), rtol=1e-5)


@pytest.mark.parametrize("name", ["deepsvdd", "anogan"])
def test_images_use_conv_networks(name):
    rng = np.random.default_rng(0)
    X = (rng.random(size=(24, 28, 28)) * 255).astype(np.uint8)
    params = {**TINY[name], "epochs": 1, "batch_size": 8}
    if name == "deepsvdd":
        params.update(pretrain_epochs=1, lr_milestone=None)
    det = make_detector(name, random_state=0, device="cpu", **params).fit(X)
    assert all(any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in net.modules())
               for net in det.networks_.values())
    s = det.decision_function(X[:10])
    assert s.shape == (10,) and np.isfinite(s).all() and s.std() > 0
