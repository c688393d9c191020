"""FenceGAN (Ngo, Winarto, Kou, Park, Akram, Lee; ICTAI 2019, arXiv 1904.01209).

A GAN whose generator does not imitate the data but encloses it: its samples should lie on the
boundary of the normal data, where the discriminator is unsure. The generator minimises (Section 3)

    L_G = L_encirclement + β · L_dispersion,
    L_encirclement: pulls D(G(z)) to the target α, here the cross-entropy of D(G(z)) against the soft
                    label α (minimal exactly at D(G(z)) = α, as in the authors' implementation);
    L_dispersion  = 1 / mean_i ‖G(z_i) − μ‖₂,  μ the centre of the generated batch (spreads the samples
                    around the data instead of collapsing onto one boundary point);

the discriminator minimises −mean log D(x) − γ · mean log(1 − D(G(z))): γ < 1 lets generated samples
near the data count less than real ones. The anomaly score is the discriminator's: 1 − D(x). Before the
adversarial training D is pretrained for `pretrain_epochs` against the untrained generator (the
authors' procedure). See docs/models/baselines.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import InputError, number_in, one_of, positive_int
from advad.data import list_datasets
from advad.engine import Trainer, UpdateStep, bce
from advad.models._torch import TorchDetector, image_budget
from advad.models.ganomaly import BIG_ROWS, conv_widths, dcgan_discriminator
from advad.models.registry import register
from advad.nets import FeatureDiscriminator, conv_decoder, init_weights, mlp

ARCHITECTURES = ("auto", "mlp", "conv28", "conv32")
# The paper's settings (Section 4): MNIST-sized images (conv28), CIFAR-10 (conv32). No tabular settings
# are published: tabular rows (mlp) take the CIFAR-10 weights α = γ = 0.5, β = 10 and Adam at 1e-3 / 2e-3.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"alpha": 0.5, "beta": 10.0, "gamma": 0.5, "latent_dim": 32, "batch_size": 64,
            "lr_d": 1e-3, "lr_g": 2e-3, "epochs": 100},
    "conv28": {"alpha": 0.1, "beta": 30.0, "gamma": 0.1, "latent_dim": 200, "batch_size": 200,
               "lr_d": 1e-5, "lr_g": 2e-5, "epochs": 100},
    "conv32": {"alpha": 0.5, "beta": 10.0, "gamma": 0.5, "latent_dim": 256, "batch_size": 128,
               "lr_d": 1e-4, "lr_g": 1e-3, "epochs": 150},
}


@register("fencegan")
class FenceGAN(TorchDetector):
    """FenceGAN: boundary-seeking generator with the dispersion loss; score 1 − D(x).

    Parameters
    ----------
    architecture : ``"auto"`` (tabular → ``"mlp"``; images smaller than 32×32 → ``"conv28"``, others
        ``"conv32"``) or one of those. It picks the networks and the defaults of every ``None`` below.
    alpha, beta, gamma : target of D(G(z)), weight of the dispersion loss, weight of the generated
        samples in D's loss (conv28 0.1 / 30 / 0.1; conv32 and mlp 0.5 / 10 / 0.5).
    latent_dim, batch_size, epochs : (mlp 32 / 64 / 100; conv28 200 / 200 / 100; conv32 256 / 128 / 150).
    lr_d, lr_g, beta1 : Adam of D and G (mlp 1e-3 / 2e-3; conv28 1e-5 / 2e-5; conv32 1e-4 / 1e-3;
        β1 = 0.5).
    pretrain_epochs : epochs of discriminator-only training first (15).
    preprocessing : ``"auto"`` (tabular rows min-max scaled to [0, 1]; images to [-1, 1] for the tanh
        generator) or as every torch detector.
    Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    param_rules = {**TorchDetector.param_rules, "architecture": one_of(*ARCHITECTURES),
                   "alpha": number_in(0, 1, low_open=True, high_open=True, optional=True),
                   "gamma": number_in(0, float("inf"), optional=True),
                   "beta": number_in(0, float("inf"), optional=True),
                   "latent_dim": positive_int(), "epochs": positive_int(), "batch_size": positive_int(minimum=2),
                   "pretrain_epochs": positive_int(optional=False, minimum=0)}

    def __init__(self, contamination: float = 0.1, architecture: str = "auto", alpha: float | None = None,
                 beta: float | None = None, gamma: float | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int | None = None, lr_d: float | None = None,
                 lr_g: float | None = None, beta1: float = 0.5, pretrain_epochs: int = 15,
                 preprocessing: str = "auto", max_train_samples: int | None = None,
                 min_steps: int | None = None, random_state: int | None = None,
                 device: str = "auto", verbose: bool | str = False, checkpoint_dir: str | None = None,
                 checkpoint_every: int = 1, score_batch_size: int = 4096,
                 score_dtype: str = "float32", score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.architecture = architecture
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr_d = lr_d
        self.lr_g = lr_g
        self.beta1 = beta1
        self.pretrain_epochs = pretrain_epochs
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
        """``paper``: the architecture's settings; smaller tabular sets 3 000 optimiser steps (at least
        100 epochs). ``quick`` (pretraining + training epochs): images 2 + 5 on 2 000 training images at
        batch 64 and 10× the paper's learning rates (made for far more steps than a quick run has);
        KDD99-sized sets 1 + 3 on a 50 000-row subsample; smaller tabular sets as ``paper``.
        ``smoke``: seconds."""
        shape = tuple(dataset.X.shape)
        image = len(shape) >= 3
        big = not image and shape[0] >= BIG_ROWS
        if budget == "smoke":
            return {"epochs": 2, "pretrain_epochs": 1, "max_train_samples": 512 if image else 2000}
        small = {"epochs": max(100, round(3000 * 64 / (shape[0] / 2)))}
        if budget == "quick":
            if getattr(dataset, "name", "") in list_datasets(embedded=True) or not (image or big):
                return small
            if image:
                size = "conv28" if shape[-1] < 32 else "conv32"
                lrs = {k: 10 * ARCH_DEFAULTS[size][k] for k in ("lr_d", "lr_g")}
                return image_budget(5, 2000, 64, pretrain_epochs=2, batch_size=64, **lrs)
            return {"epochs": 3, "pretrain_epochs": 1, "max_train_samples": 50_000}
        if budget == "paper":
            return {} if image or big else small
        raise ValueError(f"unknown budget {budget!r}")

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        image = X.ndim == 4
        arch = self.architecture
        if arch == "auto":
            arch = ("conv28" if X.shape[-1] < 32 else "conv32") if image else "mlp"
        if (arch != "mlp") != image:
            raise InputError(f"architecture {arch!r} does not fit data of per-sample shape {X.shape[1:]}")
        table = ARCH_DEFAULTS[arch]
        pick = lambda name: getattr(self, name) if getattr(self, name) is not None else table[name]  # noqa: E731
        return {"architecture": arch, "input_shape": list(X.shape[1:]), "latent_dim": int(pick("latent_dim")),
                "epochs": int(pick("epochs")), "batch_size": int(pick("batch_size")),
                **{name: float(pick(name)) for name in ("alpha", "beta", "gamma", "lr_d", "lr_g")}}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        shape, k = config["input_shape"], config["latent_dim"]
        if config["architecture"] != "mlp":  # DCGAN (GANomaly's widths and discriminator)
            widths = conv_widths(shape)
            G = conv_decoder(k, shape, tuple(reversed(widths)), out_act="tanh")
            return {"G": init_weights(G, "normal", std=0.02),
                    "D": init_weights(dcgan_discriminator(shape, widths), "normal", std=0.02)}
        d = shape[0]
        G = mlp(k, [64, 128], d, act="relu", batch_norm=True)
        D = FeatureDiscriminator(mlp(d, [128, 64], act="lrelu", dropout=0.2), 64)
        return {"G": init_weights(G, "xavier"), "D": init_weights(D, "xavier")}

    def _fit_preprocessing(self, X: np.ndarray) -> None:
        """``preprocessing="auto"`` min-max scales tabular rows to [0, 1] instead of standardising them:
        the generator has to enclose the data, and standardised one-hot columns of rare categories
        stretch the space to hundreds of units (KDD99 AUROC 0.56 standardised, 0.98 min-max;
        docs/models/baselines.md)."""
        if self.preprocessing != "auto" or X.ndim == 4:
            super()._fit_preprocessing(X)
            return
        lo, hi = X.min(axis=0, keepdims=True), X.max(axis=0, keepdims=True)
        span = hi - lo
        span[span < 1e-8] = 1.0  # constant columns stay as they are
        self.preprocessing_, self.shift_, self.scale_ = "minmax", lo.astype(np.float32), span.astype(np.float32)

    def _schedule(self, config: dict) -> tuple[int, int]:
        return config["epochs"], config["batch_size"]

    def _losses(self, nets: dict[str, nn.Module], generator: torch.Generator,
                config: dict) -> tuple[Callable, Callable]:
        """(discriminator loss, generator loss) of one batch."""
        G, D = nets["G"], nets["D"]
        k, alpha, beta, gamma = config["latent_dim"], config["alpha"], config["beta"], config["gamma"]

        def noise(n: int, like: torch.Tensor) -> torch.Tensor:
            return torch.randn(n, k, generator=generator, device=generator.device).to(like.device)

        def discriminator_loss(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                fake = G(noise(len(x), x))
            return bce(D(x)[0], 1.0) + gamma * bce(D(fake)[0], 0.0)

        def generator_loss(x: torch.Tensor):
            fake = G(noise(len(x), x))
            encirclement = bce(D(fake)[0], alpha)
            flat = fake.flatten(1)
            dispersion = 1.0 / (flat - flat.mean(dim=0, keepdim=True)).norm(dim=1).mean()
            return encirclement + beta * dispersion, {"encirclement": encirclement.detach(),
                                                      "dispersion": dispersion.detach()}

        return discriminator_loss, generator_loss

    def _prepare(self, nets: dict[str, nn.Module], X: torch.Tensor, generator: torch.Generator) -> None:
        """Discriminator pretraining against the untrained generator."""
        if self.pretrain_epochs == 0:
            return
        config = self._network_config(X[:1].cpu().numpy())
        d_loss, _ = self._losses(nets, generator, config)
        opt = torch.optim.Adam(nets["D"].parameters(), lr=config["lr_d"], betas=(float(self.beta1), 0.999))
        Trainer(networks=nets, steps=[UpdateStep("pretrain_D", d_loss, opt, ["D"])],
                epochs=self._scaled_epochs(int(self.pretrain_epochs)), batch_size=config["batch_size"],
                generator=generator, progress=self._progress(),
                description="FenceGAN discriminator pretraining").fit(X)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        d_loss, g_loss = self._losses(nets, generator, config)
        betas = (float(self.beta1), 0.999)
        opt_d = torch.optim.Adam(nets["D"].parameters(), lr=config["lr_d"], betas=betas)
        opt_g = torch.optim.Adam(nets["G"].parameters(), lr=config["lr_g"], betas=betas)
        return [UpdateStep("D", d_loss, opt_d, ["D"]), UpdateStep("G", g_loss, opt_g, ["G"])]

    # ------------------------------------------------------------------ scoring
    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-nets["D"](x)[0].double())  # 1 − D(x), in float64 (no rounding to 0 or 1)
