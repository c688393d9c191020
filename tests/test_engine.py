"""The training engine: seeding, batching, EMA, NaN guard, checkpoints + resume, selection, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from advad.engine import (Checkpoint, Selector, Trainer, TrainingDiverged, UpdateStep, batched_inference,
                          load_state, resolve_device, save_state, seeded)
from advad.nets import (JointDiscriminator, PairDiscriminator, apply_spectral_norm, conv_decoder, conv_encoder,
                        conv_features, dense_block, mlp)


def _make(seed: int, *, epochs: int = 3, ckpt: Checkpoint | None = None, selector=None, nan_at: int | None = None,
          lr: float = 1e-2):
    """A tiny two-network adversarial-style setup: an autoencoder step and a critic step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    nets = {"ae": nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.ReLU(), nn.Linear(8, 4)),
            "critic": apply_spectral_norm(mlp(4, [8], 1, batch_norm=True))}
    calls = {"n": 0}

    def ae_loss(x):
        calls["n"] += 1
        loss = (nets["ae"](x) - x).pow(2).mean() - 0.01 * nets["critic"](nets["ae"](x)).mean()
        if nan_at is not None and calls["n"] >= nan_at:
            loss = loss * float("nan")
        return loss, {"mse": (nets["ae"](x) - x).pow(2).mean().detach()}

    def critic_loss(x):
        noise = torch.randn(x.shape, generator=gen)
        return nets["critic"](x).mean() - nets["critic"](x + noise).mean()

    steps = [UpdateStep("critic", critic_loss, torch.optim.Adam(nets["critic"].parameters(), lr=lr), ["critic"], repeat=2),
             UpdateStep("ae", ae_loss, torch.optim.Adam(nets["ae"].parameters(), lr=lr), ["ae"])]
    return Trainer(nets, steps, epochs=epochs, batch_size=16, generator=gen, ema={"ae": 0.9}, checkpoint=ckpt,
                   selector=selector)


def _weights(tr: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for m in (*tr.networks.values(), *tr.averages.values())
                      for p in m.state_dict().values() if p.is_floating_point()])


X = torch.from_numpy(np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32))


def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = _make(0).fit(X), _make(0).fit(X), _make(1).fit(X)
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))
    assert len(a.history) == 3 and set(a.history[0]) == {"critic/loss", "ae/loss", "ae/mse"}


def test_nan_guard_names_step_networks_and_epoch():
    with pytest.raises(TrainingDiverged, match=r"step 'ae' \(networks ae\).*epoch 2 of 3"):
        _make(0, nan_at=7).fit(X)  # 6 iterations per epoch → the 7th ae step is in epoch 2


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    full = _make(0, epochs=4).fit(X)
    _make(0, epochs=2, ckpt=Checkpoint(tmp_path, fingerprint="f")).fit(X)  # "crash" after epoch 2
    resumed = _make(0, epochs=4, ckpt=Checkpoint(tmp_path, resume=True, fingerprint="f")).fit(X)
    assert resumed.epoch == 4
    assert torch.equal(_weights(full), _weights(resumed))
    with pytest.raises(Exception, match="other data or parameters"):
        _make(0, epochs=4, ckpt=Checkpoint(tmp_path, resume=True, fingerprint="g")).fit(X)


def test_checkpoint_min_interval_skips_writes_within_it(tmp_path):
    """`min_interval`: no write sooner than that after the fit's start or the last write (short fits
    write nothing); 0 writes at every epoch."""
    for folder, interval in (("often", 0.0), ("rarely", 3600.0)):
        _make(0, epochs=3, ckpt=Checkpoint(tmp_path / folder, min_interval=interval)).fit(X)
    assert (tmp_path / "often" / "checkpoint.safetensors").is_file()
    assert not (tmp_path / "rarely").exists()


def test_selector_keeps_best_epoch():
    values = iter([3.0, 1.0, 2.0, 5.0])
    seen = {}

    def criterion(tr):
        seen[tr.epoch] = _weights(tr).clone()
        return next(values)

    tr = _make(0, epochs=4, selector=Selector(criterion, start_epoch=1)).fit(X)
    assert tr.best_epoch == 2
    assert torch.equal(_weights(tr), seen[2])


def test_state_roundtrip_without_pickle(tmp_path):
    state = {"a": torch.arange(3), "b": [1, 2.5, None, {"c": torch.ones(2, 2)}], 7: "int key", "t": (1, 2),
             "inf": float("inf")}
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert torch.equal(back["a"], state["a"]) and back[7] == "int key" and back["t"] == (1, 2)
    assert torch.equal(back["b"][3]["c"], torch.ones(2, 2)) and back["inf"] == float("inf")


def test_batched_inference_flat_and_independent_of_chunking():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1))
    net.train()
    Xn = np.random.default_rng(1).normal(size=(1000, 4)).astype(np.float32)
    fn = lambda x: net(x).squeeze(1)  # noqa: E731
    big = batched_inference(fn, Xn, device=torch.device("cpu"), batch_size=1000, modules=[net])
    small = batched_inference(fn, Xn, device=torch.device("cpu"), batch_size=7, modules=[net])
    assert big.dtype == np.float64 and big.shape == (1000,)
    np.testing.assert_allclose(big, small, rtol=1e-5, atol=1e-6)
    assert net.training  # mode restored


def test_seeded_restores_caller_rng_and_device_auto():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    with seeded(5, torch.device("cpu")) as gen:
        torch.rand(10)
        assert gen.initial_seed() == 6
    assert torch.equal(torch.rand(1), expected)
    assert resolve_device("auto").type in ("cpu", "cuda")


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_conv_builders_shapes(shape):
    x = torch.randn(2, *shape)
    enc = conv_encoder(shape, 10)
    dec = conv_decoder(10, shape)
    assert enc(x).shape == (2, 10) and dec(enc(x)).shape == (2, *shape)
    body, n = conv_features((2 * shape[0], *shape[1:]))
    d = PairDiscriminator(body, n)
    logits, feats = d(x, x)
    assert logits.shape == (2,) and feats.shape == (2, n)


def test_joint_discriminator_features():
    d = JointDiscriminator(dense_block(5, 8, batch_norm=True), dense_block(3, 8, dropout=0.5), dense_block(16, 6), 6)
    logits, feats = d(torch.randn(4, 5), torch.randn(4, 3))
    assert logits.shape == (4,) and feats.shape == (4, 6)
