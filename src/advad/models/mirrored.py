"""The mirrored-autoencoder core shared by MAESI (Wu et al. 2020) and AMA (Somepalli et al.).

Both papers train an encoder E and a generator (decoder) G against a *mirrored* Wasserstein critic
D(x, y) that sees stacked pairs — (x, x) real, (x, x̂ = G(E(x))) fake — instead of single samples
(MAESI Eq. 4, AMA Eq. 1), and score a row by the L1 distance of the critic's penultimate features
R(x) = ‖f(x, x) − f(x, G(E(x)))‖₁ (MAESI §5.2, AMA Eq. 5). This module holds what they share:

- the critic loss with a selectable Lipschitz constraint: gradient penalty (λ = 10, the authors'
  code), spectral norm (MAESI supplement Table 1's D_recon), both, or none;
- the feature score R(x) and the two latent regularisers: MAESI §4.2's hinge
  E[max(‖E(x)‖₂ − √d, 0)] and AMA Eq. 3's plain E‖E(x)‖₂;
- simplex interpolation of latents (m rows of the batch mixed with weights α);
- the architectures of MAESI supplement Tables 1–5 (tabular MLPs for KDD99, Arrhythmia, Thyroid, a
  generic small MLP, the MNIST conv nets and the SN-ResNet for 32×32 colour images);
- `MirroredDetector`, the TorchDetector both models subclass: network config, optimisers, feature
  score, model selection on the training feature loss (MAESI supplement, no labels).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from advad.base import InputError, number_in, one_of, positive_int
from advad.engine import Selector, eval_mode, iterations_per_epoch
from advad.models._torch import TorchDetector, image_budget
from advad.nets import FeatureDiscriminator, PairDiscriminator, View, apply_spectral_norm, init_weights, mlp

LIPSCHITZ = ("gp", "sn", "gp+sn", "none")
SELECTION = ("feature", "last")

# --------------------------------------------------------------------------- architecture tables
# MAESI supplement Tables 2–5 (Table 1: "cifar"). enc/gen/drec/dint: hidden widths of E, G, D_recon and
# D_inter; enc_out_act: the tables end the tabular encoders with LeakyReLU(0.2); dint_act: Thyroid's
# D_inter uses ReLU. Optimiser: betas of Adam for G/critics and for E (E: β1 = 0.5 on images, §6).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "kdd": {"kind": "mlp", "enc": [64], "gen": [64, 128], "drec": [128, 25], "dint": [128, 64],
            "latent_dim": 32, "enc_out_act": "lrelu", "dint_act": "lrelu",
            "optimizer": "adam", "betas": (0.0, 0.5), "enc_betas": (0.0, 0.5),
            "learning_rate": 1e-4, "batch_size": 256, "epochs": 50, "lambda_inter": 0.5},     # Table 3
    "arrhythmia": {"kind": "mlp", "enc": [256, 128], "gen": [128, 256], "drec": [256, 32], "dint": [256, 128, 64],
                   "latent_dim": 64, "enc_out_act": "lrelu", "dint_act": "lrelu",
                   "optimizer": "adam", "betas": (0.0, 0.5), "enc_betas": (0.0, 0.5),
                   "learning_rate": 2e-4, "batch_size": 32, "epochs": 50, "lambda_inter": 0.3},  # Table 4
    "thyroid": {"kind": "mlp", "enc": [12], "gen": [13], "drec": [4], "dint": [6],
                "latent_dim": 4, "enc_out_act": "lrelu", "dint_act": "relu",
                "optimizer": "sgd", "betas": (0.5, 0.0), "enc_betas": (0.5, 0.0),  # SGD momentum 0.5
                "learning_rate": 2e-5, "batch_size": 64, "epochs": 100, "lambda_inter": 1.2},   # Table 5
    # not in the papers: any other small table (d < 64), e.g. the embedded 2-D sets
    "small": {"kind": "mlp", "enc": [64], "gen": [64, 64], "drec": [64, 16], "dint": [64, 32],
              "latent_dim": None, "enc_out_act": None, "dint_act": "lrelu",
              "optimizer": "adam", "betas": (0.0, 0.9), "enc_betas": (0.5, 0.9),
              "learning_rate": 1e-3, "batch_size": 64, "epochs": 100, "lambda_inter": 0.5},
    "mnist": {"kind": "conv", "latent_dim": 64, "optimizer": "adam", "betas": (0.0, 0.999),
              "enc_betas": (0.5, 0.999), "learning_rate": 1e-4, "batch_size": 256, "epochs": 50,
              "lambda_inter": 0.5},                                                            # Table 2
    "cifar": {"kind": "resnet", "latent_dim": 128, "optimizer": "adam", "betas": (0.0, 0.999),
              "enc_betas": (0.5, 0.999), "learning_rate": 3e-4, "batch_size": 256, "epochs": 100,
              "lambda_inter": 0.5},                                                            # Table 1
}


def auto_architecture(shape: tuple[int, ...]) -> str:
    """Table by data shape: 32×32-type colour images → "cifar", other images → "mnist", tabular rows with
    d ≥ 200 → "arrhythmia", d ≥ 64 → "kdd", smaller → "small" (the Thyroid table is picked by name
    in `bench_params`, its 4-unit critic being too narrow for an unknown table)."""
    if len(shape) == 3:
        return "cifar" if shape[0] == 3 and shape[1] % 8 == 0 else "mnist"
    d = shape[0]
    return "arrhythmia" if d >= 200 else ("kdd" if d >= 64 else "small")


# --------------------------------------------------------------------------- losses and scores
def critic_values(critic: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """D(x, y) as a vector (n,)."""
    return critic(x, y)[0].reshape(len(x))


def gradient_penalty(critic: nn.Module, x: torch.Tensor, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al.) on stacked pairs: E[(‖∇D(x, ŷ)‖₂ − 1)²] at ŷ = εy + (1−ε)ŷ_fake on
    the line between the real pair (x, real) and the fake pair (x, fake); the gradient is taken with
    respect to the whole stacked pair, its norm over every feature/pixel of a row."""
    eps = torch.rand((len(x),) + (1,) * (x.dim() - 1), generator=generator, device=generator.device).to(x)
    a = x.detach().requires_grad_(True)
    b = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic_values(critic, a, b)
    grads = torch.autograd.grad(out.sum(), (a, b), create_graph=True, allow_unused=True)
    norm = torch.cat([g.flatten(1) for g in grads if g is not None], dim=1).norm(dim=1)
    return (norm - 1).pow(2).mean()


def feature_distance(critic: nn.Module, x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """R(x) = ‖f(x, x) − f(x, x̂)‖₁ on the critic's penultimate layer (MAESI §5.2, AMA Eq. 5), shape (n,)."""
    _, f_real = critic(x, x)
    _, f_fake = critic(x, x_rec)
    return (f_real - f_fake).abs().flatten(1).sum(dim=1)


def latent_hinge(z: torch.Tensor) -> torch.Tensor:
    """MAESI §4.2: R(E) = E[max(‖E(x)‖₂ − √d, 0)], d the latent size."""
    return torch.relu(z.flatten(1).norm(dim=1) - math.sqrt(z[0].numel())).mean()


def latent_norm(z: torch.Tensor) -> torch.Tensor:
    """AMA Eq. 3: E‖E(x)‖₂."""
    return z.flatten(1).norm(dim=1).mean()


def simplex_weights(n: int, m: int, generator: torch.Generator, kind: str = "dirichlet") -> torch.Tensor:
    """(n, m) convex weights. ``"dirichlet"``: uniform on the simplex (MAESI Eq. 3 only asks Σα = 1);
    ``"half-uniform"``: α_i ~ U(0, 0.5), normalised by their sum (AMA §3.2)."""
    u = torch.rand(n, m, generator=generator, device=generator.device)
    if kind == "dirichlet":
        e = -torch.log(u.clamp_min(1e-12))  # Exp(1) → normalised = Dirichlet(1, ..., 1)
        return e / e.sum(dim=1, keepdim=True)
    if kind == "half-uniform":
        a = 0.5 * u.clamp_min(1e-6)
        return a / a.sum(dim=1, keepdim=True)
    raise ValueError(f"unknown simplex weights {kind!r}")


def simplex_mix(z: torch.Tensor, m: int, generator: torch.Generator, kind: str = "dirichlet"):
    """Mix each row's latent with m − 1 other rows of the batch: ẑ = Σ_i α_i z[perm_i] (perm_0 = identity).

    Returns ``(z_mix, alphas (n, m), perms: list of m index tensors)``.
    """
    n = len(z)
    perms = [torch.arange(n, device=z.device)] + [
        torch.randperm(n, generator=generator, device=generator.device).to(z.device) for _ in range(m - 1)]
    alphas = simplex_weights(n, m, generator, kind).to(z)
    shape = (n,) + (1,) * (z.dim() - 1)
    z_mix = sum(alphas[:, i].reshape(shape) * z[p] for i, p in enumerate(perms))
    return z_mix, alphas, perms


# --------------------------------------------------------------------------- networks
def _mlp_networks(d: int, arch: dict, k: int) -> dict[str, nn.Module]:
    """Tabular networks of Tables 3–5: E and G plain MLPs, critics on concatenated pairs (2d inputs)."""
    E = mlp(d, arch["enc"], k, act="lrelu")
    if arch.get("enc_out_act"):
        E.append(nn.LeakyReLU(0.2))
    G = mlp(k, arch["gen"], d, act="relu")
    drec = PairDiscriminator(mlp(2 * d, arch["drec"], act="lrelu"), arch["drec"][-1])
    dint = PairDiscriminator(mlp(2 * d, arch["dint"], act=arch.get("dint_act", "lrelu")), arch["dint"][-1])
    return {"E": E, "G": G, "drec": drec, "dint": dint}


def _conv_critic_body(channels: int, size: int) -> nn.Sequential:
    """Table 2 critic: Conv(4,2,1,64)+lrelu, Conv(4,2,1,128)+lrelu, Dense(1024)+lrelu (then Dense(1))."""
    s = size // 4
    return nn.Sequential(nn.Conv2d(channels, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(128 * s * s, 1024), nn.LeakyReLU(0.2))


def _conv_networks(shape: list[int], k: int) -> dict[str, nn.Module]:
    """MAESI supplement Table 2 (MNIST). The table lists padding 2; 28 → 14 → 7 needs padding 1 (with 2
    the maps would be 15 and 8 and the generator's 7×7 start would not return 28×28), so 1 is used."""
    c, size = shape[0], shape[1]
    if size % 4:
        raise InputError(f"the MNIST-type conv networks need image sides divisible by 4; got {size}")
    s = size // 4
    E = nn.Sequential(_conv_critic_body(c, size), nn.Linear(1024, k))
    G = nn.Sequential(nn.Linear(k, 1024), nn.ReLU(), nn.Linear(1024, 128 * s * s), nn.ReLU(), View(128, s, s),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
                      nn.ConvTranspose2d(64, c, 4, 2, 1), nn.Tanh())
    drec = PairDiscriminator(_conv_critic_body(2 * c, size), 1024)
    dint = PairDiscriminator(_conv_critic_body(2 * c, size), 1024)
    return {"E": E, "G": G, "drec": drec, "dint": dint}


class ResBlock(nn.Module):
    """Pre-activation residual block of SN-GAN (Miyato et al.; MAESI supplement Fig. 1):
    [BN] → ReLU → [up] → conv3×3 → [BN] → ReLU → conv3×3 → [avg-pool down], shortcut 1×1 conv when the
    shape changes. ``first=True`` omits the leading ReLU (the critic's first block sees raw pixels)."""

    def __init__(self, cin: int, cout: int, resample: str | None = None, batch_norm: bool = False,
                 first: bool = False):
        super().__init__()
        self.resample, self.first = resample, first
        self.bn1 = nn.BatchNorm2d(cin) if batch_norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or resample) else None

    def _resample(self, h: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return nn.functional.avg_pool2d(h, 2)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else torch.relu(self.bn1(x))
        if self.resample == "up":
            h = self._resample(h)
        h = self.conv2(torch.relu(self.bn2(self.conv1(h))))
        if self.resample == "down":
            h = self._resample(h)
        s = x
        if self.shortcut is not None:
            s = self.shortcut(self._resample(s))
        return h + s


class _Pool(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = torch.relu(h)
        return h.sum(dim=(2, 3)) if self.how == "sum" else h.mean(dim=(2, 3))


def _resnet_networks(shape: list[int], k: int, ch: int = 128) -> dict[str, nn.Module]:
    """MAESI supplement Table 1 (CIFAR-10; AMA uses the same SN-GAN family): generator Dense 4·4·256 →
    3 ResBlocks up (256) → BN, ReLU, conv3×3, tanh; DCGAN encoder 64-128-256 (BN + LeakyReLU) → 4×4
    valid conv to the latent; D_recon ResBlock down ×2, ResBlock ×2 (128), ReLU, global sum pooling,
    dense → 1 (spectral norm instead of BN); D_inter the same with average pooling and no
    normalisation."""
    c, size = shape[0], shape[1]
    if size % 8:
        raise InputError(f"the ResNet networks need image sides divisible by 8; got {size}")
    base = size // 8
    G = nn.Sequential(nn.Linear(k, base * base * 256), View(256, base, base),
                      ResBlock(256, 256, "up", batch_norm=True), ResBlock(256, 256, "up", batch_norm=True),
                      ResBlock(256, 256, "up", batch_norm=True), nn.BatchNorm2d(256), nn.ReLU(),
                      nn.Conv2d(256, c, 3, 1, 1), nn.Tanh())
    E = nn.Sequential(nn.Conv2d(c, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
                      nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                      nn.Conv2d(128, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
                      nn.Conv2d(256, k, base, 1, 0), nn.Flatten())

    def critic(pool: str) -> PairDiscriminator:
        body = nn.Sequential(ResBlock(2 * c, ch, "down", first=True), ResBlock(ch, ch, "down"),
                             ResBlock(ch, ch), ResBlock(ch, ch), _Pool(pool))
        return PairDiscriminator(body, ch)

    return {"E": E, "G": G, "drec": critic("sum"), "dint": critic("mean")}


def build_networks(config: dict) -> dict[str, nn.Module]:
    """E, G, D_recon (mirrored critic) and D_inter of the configured architecture. With
    ``interpolation="berthelot"`` D_inter judges single samples (Eq. 1), else pairs (Eqs. 2–3)."""
    arch, shape, k = config["arch"], config["input_shape"], config["latent_dim"]
    if arch["kind"] == "mlp":
        nets = _mlp_networks(shape[0], arch, k)
    elif arch["kind"] == "conv":
        nets = _conv_networks(shape, k)
    else:
        nets = _resnet_networks(shape, k)
    if config.get("interpolation") == "berthelot":  # D_inter sees one sample: first half of the pair input
        nets["dint"] = _single_critic(nets["dint"], shape)
    if not config.get("use_dint", True):
        del nets["dint"]
    for net in nets.values():
        init_weights(net, config.get("init", "xavier"), std=0.02)
    if "sn" in config["lipschitz"].split("+"):
        apply_spectral_norm(nets["drec"])
    return nets


class _SingleInput(FeatureDiscriminator):
    """A pair critic re-used for one input: the sample is stacked with zeros (keeps the table's widths)."""

    def forward(self, x: torch.Tensor):  # type: ignore[override]
        return super().forward(torch.cat([x, torch.zeros_like(x)], dim=1))


def _single_critic(pair: PairDiscriminator, shape: list[int]) -> nn.Module:
    single = _SingleInput(pair.body, pair.n_features)
    single.head = pair.head
    return single


# --------------------------------------------------------------------------- the shared detector
class MirroredDetector(TorchDetector):
    """Shared machinery of `MAESI` and `AMA` (not registered itself). Subclasses set their parameters in
    ``__init__`` (scikit-learn style) and implement ``_update_steps``."""

    # architecture values a subclass replaces (AMA's optimiser for images, ...): {arch: {key: value}}
    ARCH_OVERRIDES: ClassVar[dict[str, dict[str, Any]]] = {}
    DEFAULT_SELECTION: ClassVar[str] = "feature"
    param_rules = {**TorchDetector.param_rules, "architecture": one_of("auto", *ARCHITECTURES),
                   "lipschitz": one_of(*LIPSCHITZ), "latent_dim": positive_int(), "epochs": positive_int(),
                   "batch_size": positive_int(), "n_critic": positive_int(), "selection": one_of(*SELECTION),
                   "selection_start": number_in(0, 1), "optimizer": one_of(None, "adam", "sgd")}

    # ------------------------------------------------------------------ parameters
    def _arch_name(self, shape: tuple[int, ...]) -> str:
        name = self.architecture if self.architecture != "auto" else auto_architecture(shape)
        kind = ARCHITECTURES[name]["kind"]
        if (kind == "mlp") != (len(shape) == 1):
            raise InputError(f"architecture {name!r} does not fit data of per-sample shape {shape}")
        return name

    def _network_config(self, X: np.ndarray) -> dict:
        shape = tuple(int(s) for s in X.shape[1:])
        name = self._arch_name(shape)
        arch = {**ARCHITECTURES[name], **self.ARCH_OVERRIDES.get(name, {})}
        pick = lambda key: getattr(self, key) if getattr(self, key, None) is not None else arch[key]  # noqa: E731
        k = pick("latent_dim")
        if k is None:  # "small": half the features, at least 2, at most 16
            k = int(min(16, max(2, shape[0] // 2)))
        return {"architecture": name, "arch": {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in arch.items()},
                "input_shape": list(shape), "latent_dim": int(k), "lipschitz": self.lipschitz,
                "epochs": int(pick("epochs")), "batch_size": int(pick("batch_size")),
                "learning_rate": float(pick("learning_rate")), "optimizer": pick("optimizer"),
                "n_train": int(len(X)), **self._method_config(arch)}

    def _method_config(self, arch: dict) -> dict:
        return {}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        return build_networks(config)

    def _schedule(self, config: dict) -> tuple[int, int]:
        return config["epochs"], config["batch_size"]

    def _iterations_per_epoch(self, config: dict) -> int:
        return iterations_per_epoch(config["n_train"], config["batch_size"])

    def _optimizer(self, groups: list[tuple[list[nn.Parameter], list[float]]], config: dict) -> torch.optim.Optimizer:
        """One optimiser over parameter groups, each with its own betas (Adam) / momentum (SGD)."""
        lr = config["learning_rate"]
        if config["optimizer"] == "sgd":
            return torch.optim.SGD([{"params": p, "momentum": b[0]} for p, b in groups], lr=lr)
        return torch.optim.Adam([{"params": p, "betas": tuple(b)} for p, b in groups], lr=lr)

    def _critic_penalty(self, drec: nn.Module, x: torch.Tensor, fake: torch.Tensor,
                        generator: torch.Generator) -> torch.Tensor:
        if "gp" in self.lipschitz.split("+"):
            return float(self.gp_weight) * gradient_penalty(drec, x, x, fake, generator)
        return x.new_zeros(())

    # ------------------------------------------------------------------ model selection (no labels)
    def _selector(self, config: dict, X: torch.Tensor) -> Selector | None:
        """MAESI supplement: from epoch 60 of 100 (``selection_start`` × epochs) keep the weights with the
        smallest training feature loss mean R(x) — training rows only, no labels."""
        if self.selection == "last":
            return None
        rows = self._selection_rows(X)

        def criterion(trainer) -> float:
            nets = trainer.networks
            with eval_mode(*nets.values()), torch.no_grad():
                total = 0.0
                for start in range(0, len(rows), 2048):
                    xb = rows[start:start + 2048]
                    total += float(feature_distance(nets["drec"], xb, nets["G"](nets["E"](xb))).sum())
            return total / len(rows)

        start = max(1, int(math.ceil(float(self.selection_start) * config["epochs"])))
        return Selector(criterion, start_epoch=min(start, config["epochs"]))

    # ------------------------------------------------------------------ scoring
    def _r_score(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return feature_distance(nets["drec"], x, nets["G"](nets["E"](x)))

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return self._r_score(nets, x)


def budget_params(dataset: Any, budget: str) -> dict:
    """Budget settings shared by MAESI and AMA (see docs/models/maesi.md for measured times).

    - ``paper``: the supplement's table for the data set (epochs, batch size, learning rate, λ).
    - ``quick``: KDD99 on a 50 000-row training subsample, 10 epochs; the small tables at the paper
      settings (they run in about a minute); images 5 epochs with n_critic 2 on ≤ 6 000 rows.
    - ``smoke``: seconds.
    The Thyroid and Arrhythmia tables are chosen by the data set's name.
    """
    shape = tuple(dataset.X.shape[1:])
    name = getattr(dataset, "name", "")
    image = len(shape) >= 2
    params: dict[str, Any] = {}
    if name in ("thyroid", "arrhythmia") or name.startswith("kdd"):
        params["architecture"] = "kdd" if name.startswith("kdd") else name
    embedded = name in ("breast-cancer", "digits", "loop", "arc", "four-dot")
    if budget == "smoke":
        return {**params, "epochs": 2, "n_critic": 1, "max_train_samples": 256 if image else 1000,
                "batch_size": 64}
    if budget == "quick":
        if image:
            return {**params, **image_budget(5, 6000, ARCHITECTURES["mnist"]["batch_size"], n_critic=2)}
        if name.startswith("kdd") or len(dataset.X) > 40_000:
            return {**params, "epochs": 10, "max_train_samples": 50_000}
        if embedded:
            return {**params, "epochs": 20, "n_critic": 2, "batch_size": 128}
        return params
    if budget == "paper":
        return params
    raise ValueError(f"unknown budget {budget!r}")
