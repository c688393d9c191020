"""Skip-GANomaly (Akçay, Atapour-Abarghouei, Breckon; IJCNN 2019).

The generator G is a U-Net: an encoder of stride-2 convolutions down to a 1×1 bottleneck and a decoder
of transposed convolutions whose every level also receives the encoder's feature map of the same
resolution (skip connections, concatenated along the channels). A DCGAN discriminator D tells x from
x̂ = G(x) and, through f (its layer before the logit), serves as the latent representation. G minimises
(Section III-B)

    L = w_adv · BCE(D(x̂), real) + w_con · ‖x − x̂‖₁ + w_lat · ‖f(x) − f(x̂)‖₂²,   weights 1 / 40 / 1,

each term a mean over its elements; D the usual cross-entropy. The anomaly score (Section III-C) is

    A(x) = λ · R(x) + (1 − λ) · L(x),   R = mean |x − x̂|,   L = mean (f(x) − f(x̂))²,   λ = 0.9,

in eval mode, so a row's score does not depend on its batch (the authors' code scores in training mode
and min-max normalises over the test set). Images are the paper's setting; tabular rows get the same
design with dense layers. See docs/models/baselines.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import number_in, positive_int
from advad.engine import UpdateStep, bce
from advad.models._torch import TorchDetector
from advad.models.ganomaly import GANomaly, conv_widths, dcgan_discriminator, mlp_hidden
from advad.models.registry import register
from advad.nets import FeatureDiscriminator, conv_plan, init_weights, mlp


class UNet(nn.Module):
    """Encoder levels `down`, a `bottleneck`, decoder levels `up` (deepest first); decoder level i gets
    the previous output concatenated (dim 1) with the output of the matching encoder level."""

    def __init__(self, down: list[nn.Module], bottleneck: nn.Module, up: list[nn.Module]):
        super().__init__()
        self.down = nn.ModuleList(down)
        self.bottleneck = bottleneck
        self.up = nn.ModuleList(up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
        x = self.bottleneck(x)
        for level, skip in zip(self.up, reversed(skips)):
            x = level(torch.cat([x, skip], dim=1))
        return x


def conv_unet(shape: list[int], widths: tuple[int, ...], k: int) -> UNet:
    """Encoder: `conv_plan`'s stride-2 convs (BN on all but the first, LeakyReLU 0.2); bottleneck: 4×4
    'valid' conv to k channels at 1×1, ReLU, and back; decoder: transposed convs on [up, skip] with
    BN + ReLU, tanh at the output (images scaled to [-1, 1])."""
    plan = conv_plan(shape[1])
    widths = tuple(widths[min(i, len(widths) - 1)] for i in range(len(plan)))
    down, prev = [], shape[0]
    for i, ((kernel, stride, pad), w) in enumerate(zip(plan, widths)):
        down.append(nn.Sequential(nn.Conv2d(prev, w, kernel, stride, pad),
                                  *([nn.BatchNorm2d(w)] if i > 0 else []), nn.LeakyReLU(0.2)))
        prev = w
    bottleneck = nn.Sequential(nn.Conv2d(prev, k, 4, 1, 0), nn.ReLU(),
                               nn.ConvTranspose2d(k, prev, 4, 1, 0), nn.BatchNorm2d(prev), nn.ReLU())
    up = []
    for i in reversed(range(len(plan))):
        kernel, stride, pad = plan[i]
        out = widths[i - 1] if i > 0 else shape[0]
        tail = [nn.BatchNorm2d(out), nn.ReLU()] if i > 0 else [nn.Tanh()]
        up.append(nn.Sequential(nn.ConvTranspose2d(2 * widths[i], out, kernel, stride, pad), *tail))
    return UNet(down, bottleneck, up)


def dense_unet(d: int, hidden: list[int], k: int) -> UNet:
    """The same design with dense layers: d → hidden → k → hidden (reversed, each on [up, skip]) → d,
    linear output (standardised rows)."""
    down, prev = [], d
    for i, w in enumerate(hidden):
        down.append(nn.Sequential(nn.Linear(prev, w), *([nn.BatchNorm1d(w)] if i > 0 else []), nn.LeakyReLU(0.2)))
        prev = w
    bottleneck = nn.Sequential(nn.Linear(prev, k), nn.ReLU(), nn.Linear(k, prev), nn.BatchNorm1d(prev), nn.ReLU())
    up = []
    for i in reversed(range(len(hidden))):
        out = hidden[i - 1] if i > 0 else d
        tail = [nn.BatchNorm1d(out), nn.ReLU()] if i > 0 else []
        up.append(nn.Sequential(nn.Linear(2 * hidden[i], out), *tail))
    return UNet(down, bottleneck, up)


@register("skip-ganomaly")
class SkipGANomaly(TorchDetector):
    """Skip-GANomaly: U-Net generator with skip connections, discriminator features as the latent space.

    Parameters
    ----------
    latent_dim : bottleneck channels (units for tabular rows); ``None``: 100 for images,
        min(32, max(2, d // 4)) for d features.
    hidden : widths of the tabular U-Net levels; ``None`` as GANomaly's (128-64 / 64-32). Images use
        the DCGAN widths of `advad.models.ganomaly.conv_widths`.
    epochs, batch_size, learning_rate, beta1 : Adam for G and D (15 epochs, batch 64, 2e-4, β1 = 0.5).
    w_adv, w_con, w_lat : loss weights (1, 40, 1).
    lam : λ of the score, the weight of the reconstruction term (0.9).
    Others as `advad.models.ganomaly.GANomaly`.
    """

    param_rules = {**TorchDetector.param_rules, "latent_dim": positive_int(), "epochs": positive_int(optional=False),
                   "batch_size": positive_int(optional=False), "lam": number_in(0, 1)}

    def __init__(self, contamination: float = 0.1, latent_dim: int | None = None,
                 hidden: tuple[int, ...] | list[int] | None = None, epochs: int = 15, batch_size: int = 64,
                 learning_rate: float = 2e-4, beta1: float = 0.5, w_adv: float = 1.0, w_con: float = 40.0,
                 w_lat: float = 1.0, lam: float = 0.9, preprocessing: str = "auto",
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
        self.w_lat = w_lat
        self.lam = lam
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
        """As `GANomaly.bench_params` (same schedule, networks of the same size)."""
        return GANomaly.bench_params(dataset, budget)

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        shape, conv = list(X.shape[1:]), X.ndim == 4
        d = int(np.prod(shape))
        k = self.latent_dim if self.latent_dim is not None else (100 if conv else min(32, max(2, d // 4)))
        hidden = list(self.hidden) if self.hidden is not None else mlp_hidden(d)
        return {"input_shape": shape, "conv": conv, "latent_dim": int(k), "hidden": [int(h) for h in hidden]}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        shape, k, hidden = config["input_shape"], config["latent_dim"], config["hidden"]
        if config["conv"]:
            widths = conv_widths(shape)
            G, D = conv_unet(shape, widths, k), dcgan_discriminator(shape, widths)
            return {"G": init_weights(G, "normal", std=0.02), "D": init_weights(D, "normal", std=0.02)}
        G, D = dense_unet(shape[0], hidden, k), FeatureDiscriminator(mlp(shape[0], hidden, act="lrelu"), hidden[-1])
        return {"G": init_weights(G, "xavier"), "D": init_weights(D, "xavier")}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        G, D = nets["G"], nets["D"]
        cache: dict[str, torch.Tensor] = {}  # x̂ of the G step, reused by the D step on the same batch

        def generator_loss(x: torch.Tensor):
            x_hat = G(x)
            _, f_real = D(x)
            logits_fake, f_fake = D(x_hat)
            adv = bce(logits_fake, 1.0)              # adversarial loss (non-saturating form)
            con = (x - x_hat).abs().mean()           # contextual loss, L1
            lat = (f_real - f_fake).pow(2).mean()    # latent loss on D's features, L2
            cache["fake"] = x_hat.detach()
            loss = self.w_adv * adv + self.w_con * con + self.w_lat * lat
            return loss, {"adv": adv.detach(), "con": con.detach(), "lat": lat.detach()}

        def discriminator_loss(x: torch.Tensor) -> torch.Tensor:
            return bce(D(x)[0], 1.0) + bce(D(cache.pop("fake"))[0], 0.0)

        betas = (float(self.beta1), 0.999)
        return [
            UpdateStep("G", generator_loss, torch.optim.Adam(G.parameters(), lr=self.learning_rate, betas=betas),
                       ["G"]),
            UpdateStep("D", discriminator_loss, torch.optim.Adam(D.parameters(), lr=self.learning_rate, betas=betas),
                       ["D"], new_batch=False),
        ]

    # ------------------------------------------------------------------ scoring
    def _encode_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return nets["D"](x)[1]  # f(x): the latent space of the paper's latent loss and score

    def _reconstruct_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return nets["G"](x)

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        x_hat = nets["G"](x)
        _, f_real = nets["D"](x)
        _, f_fake = nets["D"](x_hat)
        rec = (x - x_hat).abs().flatten(1).mean(dim=1)
        lat = (f_real - f_fake).pow(2).mean(dim=1)
        return self.lam * rec + (1.0 - self.lam) * lat
