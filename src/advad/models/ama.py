"""AMA — Unsupervised Anomaly Detection with Adversarial Mirrored AutoEncoders (Somepalli, Wu, Balaji,
Vinzamuri, Feizi; UAI 2021).

An encoder E and generator G trained against one mirrored Wasserstein critic D (Eq. 1) by the
min-max objective of Eq. 2: min_{E,G} max_{D ∈ Lip-1} L_normal − λ_neg L_neg, with

    L_normal = E_x[ D(x, x) − D(x, x̂) + λ_inter (D(x, x) − D(x, x̂_inter)) + λ_reg ‖E(x)‖ ]     (Eq. 3)
    L_neg    = E_{x ~ Q}[ D(x, x) − D(x, x̂_neg) ]                                               (Eq. 4)

x̂_inter = G(Σ α_i E(x_i) / Σ α_i), α_i ~ U(0, 0.5), k = 3 rows (§3.2 "Simplex Interpolation"), judged
by the same critic against each of x_1..x_k. Q (§3.2 "Atypical Selection", Fig. 3): images G(z_neg) of
shrunk codes α·E(x), α ~ U(0, δ) (the default: the authors' code, which calls it "inward"), or
latents drawn between the spheres of radii √d and √d − δ ("inward", the paper's text) or √d + δ
("outward"), or in a cube around the origin (Sipple's variant); with known anomalies (`fit(X, y)`,
y = 1) Q is the real anomalies instead (§3.3 "Semi-Supervised case").

Scores: the R-score R(x) = ‖f(x, x) − f(x, G(E(x)))‖₁ (Eq. 5) and the A-score (Eq. 6), the density of
R(x) under a Gaussian fitted to the training R-scores. Low density is anomalous on *both* sides (R far
below the training R-scores counts as much as far above: CIFAR-10 vs SVHN in Fig. 4), so advad reports
the negative log-density, higher = more anomalous.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import InputError, number_in, one_of, positive_int
from advad.engine import Selector, UpdateStep, batched_inference, eval_mode
from advad.models.mirrored import (MirroredDetector, budget_params, feature_distance, gradient_penalty, latent_norm,
                                   simplex_mix)
from advad.models.registry import register

ATYPICAL = ("inward", "outward", "cube", "scaled", "none")
SCORES = ("a", "r")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# The authors' optimiser for images (their code: Adam 3e-4, betas (0, 0.9); encoder (0.5, 0.9)). The
# paper runs no tabular data; its tabular networks and optimisers come from MAESI's supplement (same
# group, same core).
_IMAGE_OPT = {"learning_rate": 3e-4, "betas": (0.0, 0.9), "enc_betas": (0.5, 0.9)}


def atypical_latents(z: torch.Tensor, kind: str, delta: float, radius: str, generator: torch.Generator) -> torch.Tensor:
    """Synthetic negative latents of Atypical Selection (§3.2, Fig. 3) for the codes ``z`` of n rows.

    r₀ is √d (``radius="sqrt_d"``, the paper) or the codes' mean norm (``"data"``). ``"inward"`` /
    ``"outward"``: radius uniform in [(1 − δ)r₀, r₀] / [r₀, (1 + δ)r₀] along each code's direction
    (Fig. 3 b, c); ``"cube"``: uniform in the cube of half-width (1 − δ)r₀/√d, whose corners touch the
    inner sphere (Fig. 3 a, Sipple); ``"scaled"``: α·z with α ~ U(0, δ) per row (the authors' code).
    """
    n, dim = z.shape
    u = torch.rand(n, 1, generator=generator, device=generator.device).to(z)
    if kind == "scaled":
        return z * (u * delta)
    r0 = math.sqrt(dim) if radius == "sqrt_d" else float(z.norm(dim=1).mean())
    if kind == "cube":
        uniform = torch.rand(z.shape, generator=generator, device=generator.device).to(z)
        return (2 * uniform - 1) * (1.0 - delta) * r0 / math.sqrt(dim)
    lo, hi = ((1 - delta) * r0, r0) if kind == "inward" else (r0, (1 + delta) * r0)
    direction = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return direction * (lo + u * (hi - lo))


@register("ama")
class AMA(MirroredDetector):
    """Adversarial Mirrored AutoEncoder (AMA).

    Parameters
    ----------
    contamination : expected anomaly share, sets ``threshold_``.
    architecture, latent_dim, epochs, batch_size, learning_rate, optimizer : as `MAESI` (tables of the
        MAESI supplement; images use the AMA code's Adam 3e-4, β = (0, 0.9), encoder (0.5, 0.9)).
    mirrored : critic on stacked pairs (x, ·) (Eq. 1); ``False`` = a regular Wasserstein critic that
        sees only the second element (the "w/o Mirrored Wass. loss" ablation of Table 1).
    lambda_inter : weight of the simplex interpolation term (0.2, the authors' code); 0 switches it off.
    k : rows mixed by the simplex interpolation (3).
    lambda_reg : weight of ‖E(x)‖ (1).
    lambda_neg : weight λ_neg of L_neg in Eq. 2 (0.5: the authors' *effective* weight — their README's 5
        applies to the 10 % of each batch that are negatives, averaged with the 90 % normal rows, so
        5 · 0.1 / 0.9 ≈ 0.56 against L_normal; 5 taken literally let L_neg dominate the autoencoder's
        loss, see docs/models/ama.md).
    atypical : ``"scaled"`` (default: α·E(x), α ~ U(0, δ), what the authors' code samples; the paper's
        shell lies far outside the codes that λ_reg ‖E(x)‖ shrinks, see docs/models/ama.md),
        ``"inward"`` (the paper's shell between √d − δ and √d), ``"outward"`` (√d to √d + δ),
        ``"cube"`` (uniform in a cube whose corners touch the inner sphere), ``"none"``. See
        `atypical_latents`.
    atypical_delta : δ as a fraction of √d (0.5); for ``"scaled"`` the largest α.
    atypical_radius : ``"sqrt_d"`` (the paper's √d) or ``"data"`` (the batch's mean ‖E(x)‖ in place of
        √d: the shell follows where the encodings really are).
    atypical_fraction : negatives per batch as a fraction of the batch (0.1, the authors' code).
    atypical_start : fraction of the epochs before synthetic negatives start (0.1: epoch 10 of 100).
    score : ``"a"`` (A-score as −log density, Eq. 6; two-sided) or ``"r"`` (R-score, Eq. 5).
    lipschitz, gp_weight, n_critic : critic constraint (gradient penalty λ = 10 by default) and steps.
    selection : ``"last"`` (default: no labels) or ``"feature"`` (MAESI's training feature loss from
        `selection_start` on). ``fit(X, validation_data=(X_val, y_val))`` instead picks the epoch with the
        best validation AUROC of the A-score (the authors' practice, ≈ 50 labelled anomalies);
        ``selected_by_`` records which rule was used.
    Others as every torch detector (see `advad.models.alad.ALAD`).

    ``fit(X, y)``: rows with y = 1 are known anomalies; they replace the synthetic negatives in L_neg
    from the first epoch and are left out of the normal terms and the Gaussian fit.
    """

    supports_y = True
    accepts_validation = True
    ARCH_OVERRIDES = {"mnist": _IMAGE_OPT, "cifar": _IMAGE_OPT}
    DEFAULT_SELECTION = "last"
    param_rules = {**MirroredDetector.param_rules, "atypical": one_of(*ATYPICAL),
                   "atypical_radius": one_of("sqrt_d", "data"), "score": one_of(*SCORES),
                   "k": positive_int(optional=False, minimum=2),
                   "atypical_fraction": number_in(0, 1, low_open=True)}

    def __init__(self, contamination: float = 0.1, architecture: str = "auto", latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
                 optimizer: str | None = None, mirrored: bool = True, lambda_inter: float = 0.2, k: int = 3,
                 lambda_reg: float = 1.0, lambda_neg: float = 0.5, atypical: str = "scaled",
                 atypical_delta: float = 0.5, atypical_radius: str = "sqrt_d", atypical_fraction: float = 0.1,
                 atypical_start: float = 0.1, score: str = "a", lipschitz: str = "gp", gp_weight: float = 10.0,
                 n_critic: int = 5, selection: str = "last", selection_start: float = 0.6,
                 selection_samples: int = 10_000, preprocessing: str = "auto", max_train_samples: int | None = None,
                 min_steps: int | None = None,
                 init: str = "xavier", random_state: int | None = None, device: str = "auto",
                 verbose: bool | str = False, checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                 score_batch_size: int = 4096, score_dtype: str = "float32",
                 score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.mirrored = mirrored
        self.lambda_inter = lambda_inter
        self.k = k
        self.lambda_reg = lambda_reg
        self.lambda_neg = lambda_neg
        self.atypical = atypical
        self.atypical_delta = atypical_delta
        self.atypical_radius = atypical_radius
        self.atypical_fraction = atypical_fraction
        self.atypical_start = atypical_start
        self.score = score
        self.lipschitz = lipschitz
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.selection = selection
        self.selection_start = selection_start
        self.selection_samples = selection_samples
        self.preprocessing = preprocessing
        self.max_train_samples = max_train_samples
        self.min_steps = min_steps
        self.init = init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.score_batch_size = score_batch_size
        self.score_dtype = score_dtype
        self.score_compile = score_compile
        self.train_dtype = train_dtype

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        super()._check_params()
        if not 0.0 < float(self.atypical_delta) <= 1.0 and self.atypical != "none":
            raise InputError(f"atypical_delta (δ as a fraction of √d, or the largest α of 'scaled') must be in (0, 1]; "
                             f"got {self.atypical_delta!r}")

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        return budget_params(dataset, budget)

    def _method_config(self, arch: dict) -> dict:
        return {"interpolation": "none", "use_dint": False, "init": self.init, "mirrored": bool(self.mirrored)}

    # ------------------------------------------------------------------ fit
    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, validation_data: tuple | None = None, **kwargs) -> None:
        known = None
        if y is not None and y.any():
            known, X = X[y == 1], X[y == 0]
            if len(X) < 2:
                raise InputError(f"fit(X, y) needs at least 2 normal rows (y = 0); got {len(X)}")
        self._known_raw = known
        self._validation_raw = None if validation_data is None else self._validation_pair(validation_data)
        try:
            super()._fit(X, None, **kwargs)
        finally:
            del self._known_raw, self._validation_raw
        self.n_known_anomalies_ = 0 if known is None else int(len(known))
        self.selected_by_ = ("validation" if validation_data is not None else self.selection)
        # Eq. 6: Gaussian of the training R-scores (maximum likelihood, as scipy.stats.norm.fit)
        rng = np.random.default_rng(self.random_state)
        rows = X if len(X) <= 20_000 else X[np.sort(rng.choice(len(X), size=20_000, replace=False))]
        r = self._r_scores(rows, self.inference_networks_)  # float32, whatever `score_dtype` is
        self.r_mean_, self.r_std_ = float(r.mean()), float(max(r.std(), 1e-12))

    def _r_scores(self, X: np.ndarray, nets: dict[str, nn.Module]) -> np.ndarray:
        return batched_inference(lambda xb: self._r_score(nets, xb), self._transform_lazy(X), device=self.device_,
                                 batch_size=int(self.score_batch_size), modules=list(nets.values()))

    def _selector(self, config: dict, X: torch.Tensor) -> Selector | None:
        if self._validation_raw is None:
            return super()._selector(config, X)
        from sklearn.metrics import roc_auc_score

        X_val = torch.from_numpy(self._transform(self._validation_raw[0])).to(X.device)
        y_val = self._validation_raw[1]
        rows = self._selection_rows(X)

        def r_of(nets, data: torch.Tensor) -> np.ndarray:
            return np.concatenate([self._r_score(nets, data[i:i + 2048]).cpu().numpy()
                                   for i in range(0, len(data), 2048)])

        def criterion(trainer) -> float:
            nets = trainer.networks
            with eval_mode(*nets.values()), torch.no_grad():
                r_train, r_val = r_of(nets, rows), r_of(nets, X_val)
            mu, sd = r_train.mean(), max(r_train.std(), 1e-12)
            return float(roc_auc_score(y_val, np.abs(r_val - mu) / sd))

        start = max(1, int(math.ceil(float(self.selection_start) * config["epochs"])))
        return Selector(criterion, start_epoch=min(start, config["epochs"]), mode="max")

    # ------------------------------------------------------------------ training (Eqs. 2–4)
    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        E, G, D = nets["E"], nets["G"], nets["drec"]
        k, lam_i, lam_r, lam_n = int(self.k), float(self.lambda_inter), float(self.lambda_reg), float(self.lambda_neg)
        mirrored = bool(self.mirrored)
        known = None
        if self._known_raw is not None:
            known = torch.from_numpy(self._transform(self._known_raw)).to(generator.device)
        iters = self._iterations_per_epoch(config)
        start_epoch = int(round(float(self.atypical_start) * config["epochs"]))
        state = {"ae_steps": 0}
        delta = float(self.atypical_delta)

        def d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            """D on the stacked pair (a, b) — or on (b, b) without the mirrored loss."""
            return D(a, b)[0].reshape(len(a)) if mirrored else D(b, b)[0].reshape(len(b))

        def negatives(x: torch.Tensor) -> torch.Tensor | None:
            """Q of Eq. 4: known anomalies, else synthetic ones by Atypical Selection (after its start epoch)."""
            n_neg = max(1, int(round(float(self.atypical_fraction) * len(x))))
            if known is not None:
                idx = torch.randint(len(known), (n_neg,), generator=generator, device=generator.device)
                return known[idx.to(known.device)]
            if self.atypical == "none" or state["ae_steps"] // iters < start_epoch:
                return None
            with torch.no_grad():
                z_neg = atypical_latents(E(x[:n_neg]).flatten(1), self.atypical, delta, self.atypical_radius, generator)
                return G(z_neg).detach()

        def interpolated(x: torch.Tensor, z: torch.Tensor):
            """x̂_inter = G(Σ α_i z_i / Σ α_i), α_i ~ U(0, 0.5) (§3.2); and the rows x_i it is judged against."""
            z_mix, _, perms = simplex_mix(z, k, generator, "half-uniform")
            return G(z_mix), perms

        def critic_loss(x: torch.Tensor):
            with torch.no_grad():
                z = E(x)
                x_rec = G(z)
            real = d(x, x).mean()
            l_normal = real - d(x, x_rec).mean()  # Eq. 3, first term
            if lam_i > 0:
                with torch.no_grad():
                    x_int, perms = interpolated(x, z)
                l_normal = l_normal + lam_i * (real - sum(d(x[p], x_int).mean() for p in perms) / k)
            loss = -l_normal  # D maximises L_normal − λ_neg L_neg
            logs = {"l_normal": l_normal.detach()}
            xn = negatives(x)
            gp_x, gp_fake = x, x_rec
            if xn is not None:
                with torch.no_grad():
                    xn_rec = G(E(xn))
                l_neg = d(xn, xn).mean() - d(xn, xn_rec).mean()  # Eq. 4
                loss = loss + lam_n * l_neg
                logs["l_neg"] = l_neg.detach()
                gp_x, gp_fake = torch.cat([x, xn]), torch.cat([x_rec, xn_rec])
            if mirrored:
                loss = loss + self._critic_penalty(D, gp_x, gp_fake, generator)
            elif "gp" in self.lipschitz.split("+"):  # regular critic D(b, b): penalty along b only
                loss = loss + float(self.gp_weight) * gradient_penalty(_SecondOnly(D), gp_x, gp_x, gp_fake, generator)
            return loss, logs

        def autoencoder_loss(x: torch.Tensor):
            z = E(x)
            x_rec = G(z)
            adv = -d(x, x_rec).mean()
            loss = adv + lam_r * latent_norm(z)
            logs = {"adv": adv.detach()}
            if lam_i > 0:
                x_int, perms = interpolated(x, z)
                inter = -sum(d(x[p], x_int).mean() for p in perms) / k
                loss = loss + lam_i * inter
                logs["inter"] = inter.detach()
            xn = negatives(x)
            if xn is not None:  # −λ_neg L_neg: make anomalies' reconstructions look fake to D
                l_neg_ae = d(xn, G(E(xn))).mean()
                loss = loss + lam_n * l_neg_ae
                logs["neg"] = l_neg_ae.detach()
            state["ae_steps"] += 1
            return loss, logs

        arch = config["arch"]
        d_opt = self._optimizer([(list(D.parameters()), arch["betas"])], config)
        ge_opt = self._optimizer([(list(G.parameters()), arch["betas"]), (list(E.parameters()), arch["enc_betas"])],
                                 config)
        return [UpdateStep("critic", critic_loss, d_opt, ["drec"], repeat=int(self.n_critic)),
                UpdateStep("ae", autoencoder_loss, ge_opt, ["E", "G"])]

    # ------------------------------------------------------------------ scores (Eqs. 5–6)
    def _r_score(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        x_rec = nets["G"](nets["E"](x))
        if self.mirrored:
            return feature_distance(nets["drec"], x, x_rec)
        _, f_real = nets["drec"](x, x)
        _, f_fake = nets["drec"](x_rec, x_rec)
        return (f_real - f_fake).abs().flatten(1).sum(dim=1)

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        r = self._r_score(nets, x)
        if self.score == "r" or not hasattr(self, "r_mean_"):  # (no Gaussian yet while fit runs)
            return r
        return self._neg_log_density(r)

    def _neg_log_density(self, r):
        """−log N(R; μ, σ²) of Eq. 6 — higher = more anomalous, on both sides of μ."""
        return 0.5 * ((r - self.r_mean_) / self.r_std_) ** 2 + math.log(self.r_std_) + _HALF_LOG_2PI

    def score_all(self, X: Any) -> dict[str, np.ndarray]:
        """``{"r": R-score (Eq. 5), "a": A-score density (Eq. 6, lower = anomalous), "neg_log_a": −log A}``."""
        self._check_fitted()
        r = self._r_scores(self._validate(X, fitting=False), self._scoring_networks())
        nll = self._neg_log_density(r)
        return {"r": r, "a": np.exp(-nll), "neg_log_a": nll}

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = super()._fitted_state()
        meta.update({"r_mean": self.r_mean_, "r_std": self.r_std_, "n_known_anomalies": self.n_known_anomalies_,
                     "selected_by": self.selected_by_})
        return meta, arrays

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._restore_fitted_state(meta, arrays)
        self.r_mean_, self.r_std_ = float(meta["r_mean"]), float(meta["r_std"])
        self.n_known_anomalies_ = int(meta.get("n_known_anomalies", 0))
        self.selected_by_ = meta.get("selected_by", self.selection)


class _SecondOnly(nn.Module):
    """The critic as the "w/o mirrored loss" ablation sees it: D(b, b), a function of b alone."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return self.critic(b, b)
