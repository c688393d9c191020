"""The papers' GAN and autoencoder baselines: GANomaly, Skip-GANomaly, FenceGAN, DCAE (issue 7)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import advad
from advad.models import get_model_class, make_detector
from advad.models.ae import AutoEncoder

NAMES = ["ganomaly", "skip-ganomaly", "fencegan", "dcae"]
# tiny budgets: ~100-300 optimiser steps (batches of 32)
TABULAR: dict[str, dict] = {
    "ganomaly": dict(epochs=20, batch_size=32),
    "skip-ganomaly": dict(epochs=20, batch_size=32),
    "fencegan": dict(epochs=15, batch_size=32, pretrain_epochs=1),
    "dcae": dict(epochs=20, batch_size=32, learning_rate=1e-3),
}
IMAGES: dict[str, dict] = {
    "ganomaly": dict(epochs=10, batch_size=32),
    "skip-ganomaly": dict(epochs=10, batch_size=32),
    "fencegan": dict(epochs=10, batch_size=32, pretrain_epochs=1, lr_d=1e-4, lr_g=2e-4),
    "dcae": dict(epochs=10, batch_size=32, learning_rate=1e-3),
}
SIZE = 16  # small images: the conv networks take 16×16 to 4×4 in two stride-2 layers


def _tabular(seed: int = 0, n: int = 500, d: int = 8):
    """Normals near a 2-D plane in 8-D; anomalies spread off it."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, d))
    plane = lambda m: rng.normal(size=(m, 2)) @ basis + 0.1 * rng.normal(size=(m, d))  # noqa: E731
    X = plane(n).astype(np.float32)
    X_test = np.vstack([plane(150), rng.normal(0, 3, size=(30, d))]).astype(np.float32)
    return X, X_test, np.r_[np.zeros(150), np.ones(30)]


def _bars(rng: np.random.Generator, n: int, vertical: bool) -> np.ndarray:
    """(n, 1, SIZE, SIZE) noise with one bright bar 3 pixels wide at a random place."""
    X = rng.normal(0, 0.1, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    for i, p in enumerate(rng.integers(0, SIZE - 3, size=n)):
        if vertical:
            X[i, 0, :, p:p + 3] += 1
        else:
            X[i, 0, p:p + 3, :] += 1
    return X


def _images(seed: int = 0):
    """Normal: horizontal bars; anomalies: vertical bars."""
    rng = np.random.default_rng(seed)
    X = _bars(rng, 256, vertical=False)
    X_test = np.concatenate([_bars(rng, 60, vertical=False), _bars(rng, 20, vertical=True)])
    return X, X_test, np.r_[np.zeros(60), np.ones(20)]


DATA = {"tabular": (_tabular, TABULAR), "images": (_images, IMAGES)}


def _fit(name: str, kind: str, seed: int = 0):
    make_data, budgets = DATA[kind]
    return make_detector(name, random_state=seed, device="cpu", **budgets[name]).fit(make_data()[0])


@pytest.fixture(scope="module")
def fitted():
    return {(name, kind): _fit(name, kind) for name in NAMES for kind in DATA}


@pytest.mark.parametrize("kind", list(DATA))
@pytest.mark.parametrize("name", NAMES)
def test_scores_finite_varied_and_rank_anomalies_first(name, kind, fitted):
    _, X_test, y_test = DATA[kind][0]()
    det = fitted[name, kind]
    s = det.decision_function(X_test)
    assert s.shape == (len(X_test),) and np.isfinite(s).all() and s.std() > 0
    assert np.isfinite(det.decision_scores_).all() and det.decision_scores_.std() > 0
    assert roc_auc_score(y_test, s) > 0.75


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_scores(name, fitted):
    _, X_test, _ = _tabular()
    np.testing.assert_array_equal(fitted[name, "tabular"].decision_function(X_test),
                                  _fit(name, "tabular").decision_function(X_test))


@pytest.mark.parametrize("kind", list(DATA))
@pytest.mark.parametrize("name", NAMES)
def test_save_load_same_scores(name, kind, fitted, tmp_path):
    _, X_test, _ = DATA[kind][0]()
    det = fitted[name, kind]
    det.save(tmp_path / "m.advad")
    back = advad.load(tmp_path / "m.advad")
    assert type(back) is type(det) and back.get_params() == det.get_params() and back.threshold_ == det.threshold_
    np.testing.assert_array_equal(back.decision_function(X_test), det.decision_function(X_test))


@pytest.mark.parametrize("name", NAMES)
def test_scored_in_eval_mode(name, fitted):
    """Batch norm on running statistics: a row's score does not depend on the rows scored with it."""
    _, X_test, _ = _images()
    det = fitted[name, "images"]
    whole = det.decision_function(X_test)
    alone = [det.decision_function(X_test[i:i + 1])[0] for i in (0, 1, 70)]
    np.testing.assert_allclose(alone, whole[[0, 1, 70]], rtol=1e-5, atol=1e-7)
    det.set_params(score_batch_size=7)
    try:
        np.testing.assert_allclose(det.decision_function(X_test), whole, rtol=1e-5, atol=1e-7)
    finally:
        det.set_params(score_batch_size=4096)
    assert all(not m.training for net in det.inference_networks_.values() for m in net.modules())


@pytest.mark.parametrize("name", NAMES)
def test_bench_params_are_valid(name):
    class D:
        def __init__(self, shape, name):
            self.X, self.name = np.zeros(shape, np.float32), name

    cls = get_model_class(name)
    sets = [D((494021, 121), "kdd99"), D((452, 274), "arrhythmia"), D((3772, 6), "thyroid"),
            D((70000, 1, 28, 28), "fashion-mnist"), D((60000, 3, 32, 32), "cifar10")]
    for dataset in sets:
        for budget in ("smoke", "quick", "paper"):
            params = cls.bench_params(dataset, budget)
            json.dumps(params)
            make_detector(name, **params)._check_params()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", NAMES)
def test_conv_forms_for_28_and_32_pixel_images(name, shape):
    X = (np.random.default_rng(0).random(size=(8, *shape)) * 255).astype(np.uint8)
    det = make_detector(name, random_state=0, device="cpu", epochs=1, batch_size=8,
                        **({"pretrain_epochs": 0} if name == "fencegan" else {})).fit(X)
    assert any(isinstance(m, torch.nn.Conv2d) for net in det.networks_.values() for m in net.modules())
    assert det.decision_function(X).shape == (8,)
    if name == "fencegan":  # no encoder: nothing to encode or reconstruct with
        with pytest.raises(NotImplementedError):
            det.reconstruct(X)
    else:
        assert det.reconstruct(X).shape == X.shape


def test_ganomaly_score_is_latent_l1_distance(fitted):
    _, X_test, _ = _images()
    det = fitted["ganomaly", "images"]
    nets = det.inference_networks_
    z = det.encode(X_test)
    assert z.shape == (len(X_test), 100)
    x_hat = torch.from_numpy(det._transform(det.reconstruct(X_test)))
    with torch.inference_mode():
        z_hat = nets["E"](x_hat).double().numpy()
    np.testing.assert_allclose(det.decision_function(X_test), np.abs(z - z_hat).sum(axis=1), rtol=1e-3)


def test_skip_ganomaly_lambda_one_is_the_l1_reconstruction_error(fitted):
    _, X_test, _ = _images()
    det = fitted["skip-ganomaly", "images"].set_params(lam=1.0)
    try:
        rec = np.abs(det._transform(X_test) - det._transform(det.reconstruct(X_test))).reshape(len(X_test), -1)
        np.testing.assert_allclose(det.decision_function(X_test), rec.mean(axis=1), rtol=1e-4, atol=1e-6)
    finally:
        det.set_params(lam=0.9)


def test_fencegan_scores_one_minus_discriminator(fitted):
    X_test = _tabular()[1]
    det = fitted["fencegan", "tabular"]
    s = det.decision_function(X_test)
    assert ((s >= 0) & (s <= 1)).all()
    with torch.inference_mode():
        d = torch.sigmoid(det.inference_networks_["D"](torch.from_numpy(det._transform(X_test)))[0]).double().numpy()
    np.testing.assert_allclose(s, 1 - d, atol=1e-6)


def test_dcae_is_ae_on_tabular_rows_and_the_deep_svdd_networks_on_images(fitted):
    X, X_test, _ = _tabular()
    params = dict(latent_dim=16, weight_decay=1e-5, random_state=0, device="cpu", **TABULAR["dcae"])
    np.testing.assert_array_equal(make_detector("dcae", **params).fit(X).decision_function(X_test),
                                  AutoEncoder(**params).fit(X).decision_function(X_test))
    net = fitted["dcae", "images"].networks_["ae"]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:2]] == [8, 4] and all(c.bias is None for c in convs)
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())


def test_min_steps_scales_every_training_phase_on_a_small_training_set(monkeypatch, tmp_path):
    """``min_steps``: 256 rows at batch 32 are 8 iterations an epoch, so 2 epochs (16 steps) become 6 for
    48 steps (scale 3); FenceGAN's discriminator pretraining gets the same factor. A training set large
    enough for `min_steps` keeps its epochs, and the scale survives save → load."""
    import advad.models.fencegan as fencegan

    phases = []
    real_trainer = fencegan.Trainer

    def recording_trainer(*args, **kwargs):
        phases.append(kwargs["epochs"])
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(fencegan, "Trainer", recording_trainer)
    X = _images()[0]
    params = dict(epochs=2, pretrain_epochs=1, batch_size=32, random_state=0, device="cpu")
    det = make_detector("fencegan", min_steps=48, **params).fit(X)
    assert det.epoch_scale_ == 3.0 and det.epochs_trained_ == 6 and det.config_["epochs"] == 6
    assert phases == [3]  # pretraining: 1 epoch × 3
    det.save(tmp_path / "m.advad")
    assert advad.load(tmp_path / "m.advad").epoch_scale_ == 3.0
    enough = make_detector("fencegan", min_steps=16, **params).fit(X)
    assert enough.epoch_scale_ == 1.0 and enough.epochs_trained_ == 2 and phases == [3, 1]


def test_image_budgets_keep_their_updates_on_a_small_class():
    """The `quick` image budget of each model asks for the updates of its image count, so a class of
    offline MNIST (~800 training images) is not an untrained model."""
    class D:
        X, name = np.zeros((70000, 1, 28, 28), np.float32), "fashion-mnist"

    for name in ("alad", "anogan", "ama", "maesi", "deepsvdd", *NAMES):
        params = get_model_class(name).bench_params(D(), "quick")
        det = make_detector(name, **params)
        epochs, batch = det._schedule(det._network_config(np.zeros((8, 1, 28, 28), np.float32)))
        assert params["min_steps"] == epochs * (params["max_train_samples"] // batch), name
