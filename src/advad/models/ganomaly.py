"""GANomaly (Akçay, Atapour-Abarghouei, Breckon; ACCV 2018).

The generator is an encoder-decoder-encoder: G_E maps x to z, G_D maps z back to x̂ = G_D(z), and a
second encoder E (same architecture, own weights) maps x̂ to ẑ = E(x̂). A discriminator D tells x from
x̂ (sigmoid cross-entropy). The generator minimises (Section 3.2)

    L = w_adv · ‖f(x) − f(x̂)‖₂² + w_con · ‖x − x̂‖₁ + w_enc · ‖G_E(x) − E(x̂)‖₂²,

with f the layer of D before its logit (feature matching), weights 1 / 50 / 1, each term a mean over
its elements. The anomaly score is the latent distance A(x) = ‖G_E(x) − E(G_D(G_E(x)))‖₁ (Section 3.3).

Scoring runs in eval mode (batch norm on its running statistics), so a row's score does not depend on
the rows scored with it. The authors' code scores with the networks in training mode — batch
statistics of the test batch — and min-max normalises the scores over the test set; neither is done
here. See docs/models/baselines.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import one_of, positive_int
from advad.data import list_datasets
from advad.engine import UpdateStep, bce
from advad.models._torch import TorchDetector, image_budget
from advad.models.registry import register
from advad.nets import (FeatureDiscriminator, conv_decoder, conv_encoder, conv_encoder_features, conv_plan,
                        init_weights, mlp)

DISTANCES = ("l1", "mse")
BIG_ROWS = 40_000  # tabular sets at least this large (KDD99) train on a subsample in the `quick` budget


def conv_widths(shape: list[int]) -> tuple[int, ...]:
    """DCGAN channel widths: 64-128-256 for 32×32 images (the papers' ngf = ndf = 64); half of that
    for 28×28 (a quarter of the compute, as ALAD's 28×28 networks)."""
    return (64, 128, 256) if shape[1] >= 32 else (32, 64, 128)


def dcgan_discriminator(shape: list[int], widths: tuple[int, ...]) -> FeatureDiscriminator:
    """DCGAN discriminator: stride-2 convs (batch norm on all but the first), LeakyReLU 0.2; the flat
    4×4 feature map is f(x), a linear head gives the logit."""
    return FeatureDiscriminator(conv_encoder(shape, None, widths, batch_norm=_first_without_bn(shape)),
                                conv_encoder_features(shape, widths))


def mlp_hidden(d: int) -> list[int]:
    """Hidden widths of the tabular networks: 128-64 for ≥ 64 features, else 64-32."""
    return [128, 64] if d >= 64 else [64, 32]


def _first_without_bn(shape: list[int]) -> list[bool]:
    n = len(conv_plan(shape[1]))
    return [False] + [True] * (n - 1)


def _encoder(shape: list[int], k: int, conv: bool, hidden: list[int]) -> nn.Module:
    if conv:  # conv + BN + LeakyReLU down to 4×4, a 4×4 'valid' conv to k channels
        return conv_encoder(shape, k, conv_widths(shape), batch_norm=_first_without_bn(shape))
    return mlp(shape[0], hidden, k, act="lrelu", batch_norm=True)


def _networks(shape: list[int], k: int, conv: bool, hidden: list[int]) -> dict[str, nn.Module]:
    if conv:
        widths = conv_widths(shape)
        GD = conv_decoder(k, shape, tuple(reversed(widths)), out_act="tanh")
        D: nn.Module = dcgan_discriminator(shape, widths)
    else:
        GD = mlp(k, list(reversed(hidden)), shape[0], act="relu", batch_norm=True)
        D = FeatureDiscriminator(mlp(shape[0], hidden, act="lrelu"), hidden[-1])
    nets = {"GE": _encoder(shape, k, conv, hidden), "GD": GD, "E": _encoder(shape, k, conv, hidden), "D": D}
    scheme = "normal" if conv else "xavier"  # DCGAN: N(0, 0.02²)
    return {name: init_weights(net, scheme, std=0.02) for name, net in nets.items()}


@register("ganomaly")
class GANomaly(TorchDetector):
    """GANomaly: encoder-decoder-encoder generator, latent-distance score (tabular rows or images).

    Parameters
    ----------
    latent_dim : size of z; ``None``: 100 for images (the paper), min(32, max(2, d // 4)) for d features.
    hidden : widths of the tabular encoders (the decoder mirrors them); ``None``: 128-64 for ≥ 64
        features, else 64-32. Images use DCGAN conv networks (`conv_widths`).
    epochs, batch_size, learning_rate, beta1 : Adam for G (G_E, G_D, E) and D; the paper's 15 epochs,
        batch 64, lr 2e-4, β1 = 0.5.
    w_adv, w_con, w_enc : loss weights (1, 50, 1).
    distance : score ``"l1"`` (‖G_E(x) − E(x̂)‖₁, the paper) or ``"mse"`` (mean squared difference,
        the authors' code).
    preprocessing : ``"auto"`` (tabular: standardise; images: [-1, 1] for the tanh decoder) or as every
        torch detector. Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    param_rules = {**TorchDetector.param_rules, "latent_dim": positive_int(), "epochs": positive_int(optional=False),
                   "batch_size": positive_int(optional=False), "distance": one_of(*DISTANCES)}

    def __init__(self, contamination: float = 0.1, latent_dim: int | None = None,
                 hidden: tuple[int, ...] | list[int] | None = None, epochs: int = 15, batch_size: int = 64,
                 learning_rate: float = 2e-4, beta1: float = 0.5, w_adv: float = 1.0, w_con: float = 50.0,
                 w_enc: float = 1.0, distance: str = "l1", preprocessing: str = "auto",
                 max_train_samples: int | None = None,
                 min_steps: int | None = None, random_state: int | None = None, device: str = "auto",
                 verbose: bool | str = False, checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                 score_batch_size: int = 4096, score_dtype: str = "float32",
                 score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_enc = w_enc
        self.distance = distance
        self.preprocessing = preprocessing
        self.max_train_samples = max_train_samples
        self.min_steps = min_steps
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.score_batch_size = score_batch_size
        self.score_dtype = score_dtype
        self.score_compile = score_compile
        self.train_dtype = train_dtype

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        """``paper``: the defaults (15 epochs, batch 64) for images and KDD99-sized sets; smaller tabular
        sets 2 000 optimiser steps (at least 15 epochs). ``quick``: 3 000 training images, 10 epochs
        (28×28) or 5 (32×32: 4× the compute per step); KDD99-sized sets 3 epochs on a 50 000-row
        subsample; smaller tabular sets as ``paper`` (seconds to a minute). ``smoke``: seconds."""
        shape = tuple(dataset.X.shape)
        image = len(shape) >= 3
        big = not image and shape[0] >= BIG_ROWS
        if budget == "smoke":
            return {"epochs": 2, "max_train_samples": 512 if image else 2000}
        small = {"epochs": max(15, round(2000 * 64 / (shape[0] / 2)))}  # ~2 000 steps on the train half
        if budget == "quick":
            if getattr(dataset, "name", "") in list_datasets(embedded=True) or not (image or big):
                return small
            if image:
                return image_budget(10 if shape[-1] < 32 else 5, 3000, 64)
            return {"epochs": 3, "max_train_samples": 50_000}
        if budget == "paper":
            return {} if image or big else small
        raise ValueError(f"unknown budget {budget!r}")

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        shape, conv = list(X.shape[1:]), X.ndim == 4
        d = int(np.prod(shape))
        k = self.latent_dim if self.latent_dim is not None else (100 if conv else min(32, max(2, d // 4)))
        hidden = list(self.hidden) if self.hidden is not None else mlp_hidden(d)
        return {"input_shape": shape, "conv": conv, "latent_dim": int(k), "hidden": [int(h) for h in hidden]}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        return _networks(config["input_shape"], config["latent_dim"], config["conv"], config["hidden"])

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        GE, GD, E, D = nets["GE"], nets["GD"], nets["E"], nets["D"]
        cache: dict[str, torch.Tensor] = {}  # x̂ of the G step, reused by the D step on the same batch

        def generator_loss(x: torch.Tensor):
            z = GE(x)
            x_hat = GD(z)
            _, f_real = D(x)
            _, f_fake = D(x_hat)
            adv = (f_real - f_fake).pow(2).mean()      # feature matching on D's last hidden layer
            con = (x - x_hat).abs().mean()              # contextual loss, L1
            enc = (z - E(x_hat)).pow(2).mean()          # encoder loss, L2
            cache["fake"] = x_hat.detach()
            loss = self.w_adv * adv + self.w_con * con + self.w_enc * enc
            return loss, {"adv": adv.detach(), "con": con.detach(), "enc": enc.detach()}

        def discriminator_loss(x: torch.Tensor) -> torch.Tensor:
            return bce(D(x)[0], 1.0) + bce(D(cache.pop("fake"))[0], 0.0)

        betas = (float(self.beta1), 0.999)
        g_params = [p for name in ("GE", "GD", "E") for p in nets[name].parameters()]
        return [
            UpdateStep("G", generator_loss, torch.optim.Adam(g_params, lr=self.learning_rate, betas=betas),
                       ["GE", "GD", "E"]),
            UpdateStep("D", discriminator_loss, torch.optim.Adam(D.parameters(), lr=self.learning_rate, betas=betas),
                       ["D"], new_batch=False),
        ]

    # ------------------------------------------------------------------ scoring
    def _encode_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return nets["GE"](x)

    def _reconstruct_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return nets["GD"](nets["GE"](x))

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        z = nets["GE"](x)
        diff = z - nets["E"](nets["GD"](z))
        return diff.abs().sum(dim=1) if self.distance == "l1" else diff.pow(2).mean(dim=1)
