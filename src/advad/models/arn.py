"""ARN — Adversarial Regularized Reconstruction for anomaly detection and generation.

Three networks: a VAE encoder q_ψ(z|x) (reparametrisation trick), a generator g_φ(z) that turns the
code of a normal row x into a *near-copy* x̃, and a classifier p_θ(y|x) (the "discriminator"). The
classifier learns normal rows as y = 0 and their near-copies as y = 1 (Eq. 2); the encoder/generator
learn to make x̃ look normal while staying close to x and keeping q_ψ close to the prior (Eq. 3):

    L_D = BCE(D(x), 0̃) + BCE(D(x̃), 1̃)
    L_G = BCE(D(x̃), 0) + γ · rec(x, x̃) + β · KL[q_ψ(z|x) ‖ N(0, I)]

(0̃, 1̃: soft, noisy labels whose noise decays with the steps, §IV-E). The anomaly score is
p_θ(1|x). Output heads follow the feature metadata: numeric columns are Gaussian (mean + log-variance,
reparametrised); each one-hot categorical group is either a straight-through Gumbel-softmax with an
annealed temperature (``variant="gumbel"``, ARN^G) or treated as numeric (``variant="numeric"``, ARN^N).
Known anomalies can be given to ``fit(X, y)`` (Eq. 4); ``fit(X, validation_data=(X_val, y_val))`` keeps
the epoch with the lowest labelled validation BCE, as the authors' code does. ``generate(X)`` returns
the near-copy outliers of given rows, decoded back to the original columns. ``objective="elbo"`` is the plain-ELBO
ablation ARN^GE (Eq. 1 maximised jointly), ``kl_weight=0`` the ablation without regulariser.
See docs/models/arn.md.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from advad.base import InputError
from advad.engine import Selector, UpdateStep, data_fingerprint, eval_mode
from advad.models._torch import TorchDetector
from advad.models.registry import register
from advad.nets import activation, init_weights, mlp

VARIANTS = ("gumbel", "numeric")
OBJECTIVES = ("adversarial", "elbo")
NUMERIC_HEADS = ("gaussian", "mean")
DISCRIMINATOR_NORMS = ("reference", "batch", "none")
SCORES = ("probability", "logit")

# The authors' per-dataset configurations (arnwg/arn `config/arn_g_*.json`, ARN^G; the ARN^N files agree):
# epochs, lr_D, lr_G, all at batch 1024. Other datasets: 400 epochs at lr_D 1e-4, lr_G 1e-3 (their KDD99).
AUTHORS_CONFIG: dict[str, tuple[int, float, float]] = {
    "kdd99": (400, 1e-4, 1e-3), "kdd99-rev": (400, 1e-5, 1e-4), "kdd99-inv": (400, 1e-4, 1e-3),
    "nsl-kdd": (200, 1e-4, 1e-4), "covertype": (30, 1e-4, 1e-4), "creditcard": (100, 1e-4, 1e-3),
    "bank": (450, 1e-4, 1e-3),
}


# --------------------------------------------------------------------------------------------- networks
class _ReferenceBatchNorm1d(nn.BatchNorm1d):
    """Batch norm that always normalises with its running statistics, which only real rows update.

    In training, a batch of real rows first updates the running mean/variance (momentum 0.1, no
    gradient through them) and is then normalised with them; generated rows (``reference`` flag set)
    are normalised with the same statistics and do not update them. Real and generated rows are thus
    seen through the same transform — the classifier cannot tell them apart by how they were
    normalised — and eval mode (test rows) uses exactly that transform too: a row's score does not
    depend on the other rows of its batch, in training or at test time."""

    reference: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.reference and len(x) > 1:
            with torch.no_grad():
                x32 = x.float()  # (bfloat16 under mixed precision; the statistics stay float32)
                mean, var = x32.mean(dim=0), x32.var(dim=0, unbiased=True)
                if int(self.num_batches_tracked) == 0:
                    self.running_mean.copy_(mean)
                    self.running_var.copy_(var)
                else:
                    self.running_mean.lerp_(mean, self.momentum)
                    self.running_var.lerp_(var, self.momentum)
                self.num_batches_tracked += 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class _Classifier(nn.Module):
    """p_θ(y|x): an MLP to one logit (log-odds of y = 1, "anomalous"). Batch norm on every hidden layer
    but the last `n_plain` ones, which carry dropout instead (the authors' layout). The buffer ``step``
    counts discriminator updates; it drives the temperature, label-noise and KL schedules and is saved
    with the weights, so a resumed fit continues the schedules exactly."""

    def __init__(self, d: int, widths: Sequence[int], norm: str, dropout: float, n_plain: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        prev = d
        n_plain = min(n_plain, max(len(widths) - 1, 0))
        for i, width in enumerate(widths):
            plain = i >= len(widths) - n_plain
            layers.append(nn.Linear(prev, width))
            if not plain and norm != "none":
                layers.append(_ReferenceBatchNorm1d(width) if norm == "reference" else nn.BatchNorm1d(width))
            layers.append(activation("lrelu", 0.2))
            if plain and dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = width
        layers.append(nn.Linear(prev, 1))
        self.main = nn.Sequential(*layers)
        self.register_buffer("step", torch.zeros((), dtype=torch.float32))

    @contextlib.contextmanager
    def reference(self, enabled: bool = True):
        bns = [m for m in self.modules() if isinstance(m, _ReferenceBatchNorm1d)]
        for m in bns:
            m.reference = enabled
        try:
            yield
        finally:
            for m in bns:
                m.reference = False

    def forward(self, x: torch.Tensor, generated: bool = False) -> torch.Tensor:
        if generated:
            with self.reference():
                return self.main(x).squeeze(1)
        return self.main(x).squeeze(1)


class _Generator(nn.Module):
    """Encoder q_ψ(z|x) + generator g_φ(z) with per-column output heads.

    ``numeric``: column indices modelled as Gaussians (mean through a sigmoid when the data are min-max
    scaled, plus a log-variance); ``groups``: one-hot groups modelled as categorical (Gumbel-softmax).
    """

    def __init__(self, d: int, latent_dim: int, enc_hidden: Sequence[int], dec_hidden: Sequence[int],
                 numeric: Sequence[int], groups: Sequence[Sequence[int]], mean_act: str | None,
                 numeric_head: str, dropout: float):
        super().__init__()
        self.d, self.latent_dim = d, latent_dim
        self.numeric = list(numeric)
        self.groups = [list(g) for g in groups]
        self.mean_act = mean_act
        self.gaussian = numeric_head == "gaussian"
        self.encoder = mlp(d, list(enc_hidden), 2 * latent_dim, act="lrelu", batch_norm=True)
        n_dec = len(dec_hidden)
        self.decoder = mlp(latent_dim, list(dec_hidden), act="relu",
                           batch_norm=[i == n_dec - 1 for i in range(n_dec)],
                           dropout=[dropout if i == n_dec - 1 else 0.0 for i in range(n_dec)])
        width = dec_hidden[-1] if dec_hidden else latent_dim
        n_num = len(self.numeric)
        self.num_mean = nn.Linear(width, n_num) if n_num else None
        self.num_logvar = nn.Linear(width, n_num) if (n_num and self.gaussian) else None
        self.cat_logits = nn.Linear(width, sum(len(g) for g in self.groups)) if self.groups else None
        order = self.numeric + [c for g in self.groups for c in g]
        inverse = torch.empty(d, dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(d)
        self.register_buffer("inverse_order", inverse, persistent=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor, tau: torch.Tensor | float, stochastic: bool = True,
               generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """x̃ from z: Gaussian numeric columns (sampled when `stochastic`), one-hot groups (straight-
        through Gumbel-softmax at temperature `tau` when `stochastic`, else the arg-max category).
        Also returns the numeric heads' means and log-variances (None without numeric columns)."""
        h = self.decoder(z)
        parts = []
        mean = logvar = None
        if self.num_mean is not None:
            mean = self.num_mean(h)
            if self.mean_act == "sigmoid":
                mean = torch.sigmoid(mean)
            sample = mean
            if self.num_logvar is not None:
                logvar = self.num_logvar(h).clamp(-14.0, 4.0)
                if stochastic:
                    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
                    sample = mean + torch.exp(0.5 * logvar) * eps
            parts.append(sample)
        if self.cat_logits is not None:
            logits = self.cat_logits(h)
            start = 0
            for g in self.groups:
                lg = logits[:, start:start + len(g)]
                start += len(g)
                if stochastic:
                    parts.append(F.gumbel_softmax(lg, tau=tau, hard=True))
                else:
                    parts.append(F.one_hot(lg.argmax(dim=1), len(g)).to(lg.dtype))
        return torch.cat(parts, dim=1)[:, self.inverse_order], mean, logvar

    def forward(self, x: torch.Tensor, tau: torch.Tensor | float, generator: torch.Generator | None = None,
                stochastic: bool = True):
        """(x̃, μ_z, log σ²_z, numeric means, numeric log-variances)."""
        mu, logvar = self.encode(x)
        if stochastic:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps
        else:
            z = mu
        xt, num_mean, num_logvar = self.decode(z, tau, stochastic, generator)
        return xt, mu, logvar, num_mean, num_logvar


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, exp(logvar)) ‖ N(0, I)], summed over latent dimensions, mean over rows."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1).mean()


# --------------------------------------------------------------------------------------------- detector
class ARN(TorchDetector):
    """Adversarial Regularized Reconstruction (ARN) — anomaly detection and near-copy outlier generation.

    Parameters
    ----------
    contamination : expected anomaly share, sets ``threshold_`` (PyOD convention).
    variant : ``"gumbel"`` (ARN^G: each categorical one-hot group is a straight-through Gumbel-softmax
        head with annealed temperature) or ``"numeric"`` (ARN^N: every column is a Gaussian head).
    categorical_groups : column indices (of the encoded matrix) of each one-hot group. ``None`` takes
        them from the DataFrame given to ``fit`` (its categorical columns) or, for arrays, means "no
        categorical columns". Benchmarks fill it from the dataset's metadata. Groups of one column, or
        whose training rows are not one-hot, are modelled as numeric (``categorical_groups_`` tells).
    objective : ``"adversarial"`` (Eq. 2/3, alternating updates) or ``"elbo"`` (ARN^GE: Eq. 1
        maximised jointly by every network with one optimiser — the Table V ablation).
    latent_dim, encoder_hidden, decoder_hidden, discriminator_hidden : architecture (authors': 16;
        (64, 32); (32, 64); (128, 256, 512, 128, 64, 32, 16)).
    discriminator_norm : ``"reference"`` (batch norm; generated rows normalised with the running
        statistics of the real rows), ``"batch"`` (every forward with its own batch statistics, as the
        authors' code trains), ``"none"``. Scoring always uses eval mode (running statistics).
    dropout : dropout of the classifier's last hidden layers and of the generator's last layer (0.2).
    numeric_head : ``"gaussian"`` (mean + log-variance, reparametrised; the paper) or ``"mean"``
        (deterministic output, the authors' code).
    gamma : weight γ of the reconstruction term −γ‖x − x̃‖² relative to the adversarial term; the
        reconstruction is the mean squared error over numeric columns plus ``categorical_weight`` times
        the mean over groups of each group's mean squared error (100 = the authors' 1e-2 adversarial weight).
    kl_weight : weight β of KL[q(z|x) ‖ N(0, I)] (summed over latent dimensions); 0 = ARN^{X-KLD}.
    kl_anneal : multiply β by ``temperature_decay ** step`` (the authors' code ties β to the temperature).
    temperature, temperature_decay, min_temperature : Gumbel-softmax temperature τ = max(min, τ0·decay^step).
    label_noise, label_noise_decay : soft labels (normal in [0, a], generated in [1 − a, 1]) and label
        flips with probability a, a = label_noise · decay^step (§IV-E; 0 switches them off).
    lr_d, lr_g, beta1 : Adam learning rates of the classifier and of the encoder/generator, Adam β1.
    epochs, batch_size : training schedule (authors: 400 epochs of 1024 rows).
    labelled_batch_size : labelled anomalies drawn (with replacement) into every batch when ``fit`` is
        given ``y`` (``None`` → ``batch_size // 8``).
    score : ``"probability"`` (p_θ(1|x), default) or ``"logit"`` (its log-odds: same ranking, no
        saturation at 0/1).
    preprocessing : ``"minmax"`` (default; the paper's scaling, fitted on the training rows) or any of
        ``"none"``, ``"standard"``, ``"auto"``. One-hot columns are never rescaled.
    init : ``"xavier"`` or ``"normal"`` (N(0, 0.01²), the authors').
    ema_decay : score (and generate) with exponential moving averages of the weights (e.g. 0.999);
        ``None`` (default, the paper) uses the last weights.
    n_threads : CPU threads for training (1: these small MLPs train fastest on one thread of a shared
        machine; ``None``: every CPU, or $OMP_NUM_THREADS).
    max_train_samples, random_state, device, verbose, checkpoint_dir, checkpoint_every,
    score_batch_size, score_dtype, score_compile, train_dtype : as every torch detector (see `advad.models.alad.ALAD`).
    """

    supports_y: ClassVar[bool] = True
    accepts_validation: ClassVar[bool] = True
    accepts_images: ClassVar[bool] = False
    # The ARN protocols hand over their labelled validation rows: the authors keep the epoch with the
    # lowest validation BCE (REFERENCE-NOTES). `--protocol-param validation=false` switches it off.
    protocol_defaults: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {
        protocol: {"*": {"validation": True}} for protocol in ("auc", "contamination", "weak-supervision")}

    def __init__(self, contamination: float = 0.1, variant: str = "gumbel",
                 categorical_groups: list[list[int]] | None = None, objective: str = "adversarial",
                 latent_dim: int = 16, encoder_hidden: tuple[int, ...] | list[int] = (64, 32),
                 decoder_hidden: tuple[int, ...] | list[int] = (32, 64),
                 discriminator_hidden: tuple[int, ...] | list[int] = (128, 256, 512, 128, 64, 32, 16),
                 discriminator_norm: str = "reference", dropout: float = 0.2, numeric_head: str = "gaussian",
                 gamma: float = 100.0, categorical_weight: float = 0.5, variance_weight: float = 1.0,
                 kl_weight: float = 1.0,
                 kl_anneal: bool = False, temperature: float = 1.0, temperature_decay: float = 0.9995,
                 min_temperature: float = 0.1, label_noise: float = 0.3, label_noise_decay: float = 0.9995,
                 lr_d: float = 1e-4, lr_g: float = 1e-3, beta1: float = 0.9, epochs: int = 100,
                 batch_size: int = 1024, labelled_batch_size: int | None = None, score: str = "probability",
                 preprocessing: str = "minmax", init: str = "xavier", max_train_samples: int | None = None,
                 min_steps: int | None = None,
                 ema_decay: float | None = None, n_threads: int | None = 1, random_state: int | None = None, device: str = "auto",
                 verbose: bool | str = False, checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                 score_batch_size: int = 4096, score_dtype: str = "float32",
                 score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.variant = variant
        self.categorical_groups = categorical_groups
        self.objective = objective
        self.latent_dim = latent_dim
        self.encoder_hidden = encoder_hidden
        self.decoder_hidden = decoder_hidden
        self.discriminator_hidden = discriminator_hidden
        self.discriminator_norm = discriminator_norm
        self.dropout = dropout
        self.numeric_head = numeric_head
        self.gamma = gamma
        self.categorical_weight = categorical_weight
        self.variance_weight = variance_weight
        self.kl_weight = kl_weight
        self.kl_anneal = kl_anneal
        self.temperature = temperature
        self.temperature_decay = temperature_decay
        self.min_temperature = min_temperature
        self.label_noise = label_noise
        self.label_noise_decay = label_noise_decay
        self.lr_d = lr_d
        self.lr_g = lr_g
        self.beta1 = beta1
        self.epochs = epochs
        self.batch_size = batch_size
        self.labelled_batch_size = labelled_batch_size
        self.score = score
        self.preprocessing = preprocessing
        self.init = init
        self.max_train_samples = max_train_samples
        self.min_steps = min_steps
        self.n_threads = n_threads
        self.ema_decay = ema_decay
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.score_batch_size = score_batch_size
        self.score_dtype = score_dtype
        self.score_compile = score_compile
        self.train_dtype = train_dtype

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        super()._check_params()
        choices = {"variant": VARIANTS, "objective": OBJECTIVES, "numeric_head": NUMERIC_HEADS,
                   "discriminator_norm": DISCRIMINATOR_NORMS, "score": SCORES, "init": ("xavier", "normal")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("latent_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive integer; got {value!r}")
        if self.labelled_batch_size is not None and (
                not isinstance(self.labelled_batch_size, (int, np.integer)) or self.labelled_batch_size < 1):
            raise InputError(f"labelled_batch_size must be a positive integer or None; got {self.labelled_batch_size!r}")
        for name in ("gamma", "categorical_weight", "variance_weight", "kl_weight", "label_noise", "min_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise InputError(f"{name} must be a number >= 0; got {value!r}")
        if not 0 <= self.label_noise < 0.5:
            raise InputError(f"label_noise must be in [0, 0.5); got {self.label_noise!r}")
        for name in ("temperature_decay", "label_noise_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise InputError(f"{name} must be in (0, 1]; got {value!r}")
        for name in ("lr_d", "lr_g", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name} must be a positive number; got {value!r}")
        if not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be in [0, 1); got {self.dropout!r}")

    # ------------------------------------------------------------------ benchmarks
    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        """Budgets (measured on 2 busy CPU cores, see docs/models/arn.md):

        - ``smoke``: 2 epochs on at most 2,000 rows (seconds);
        - ``quick``: ≤ ~10 min on KDD99-sized sets (a seeded subsample of the training rows and fewer
          epochs), ≤ ~1 min on sets of tens of thousands of rows, a few seconds on the embedded sets;
        - ``paper``: the authors' configuration of the dataset (`AUTHORS_CONFIG`: epochs and learning
          rates, batch 1024) on every training row.
        Both ``quick`` and ``paper`` use the authors' learning rates of the dataset (kdd99-rev: 10× lower
        than their KDD99 ones). The dataset's one-hot groups become ``categorical_groups`` (the output heads).
        """
        X = dataset.X
        params: dict[str, Any] = {}
        groups = [list(map(int, g)) for g in (getattr(dataset, "categorical_groups", None) or [])]
        if groups:
            params["categorical_groups"] = groups
        n_train = int(0.8 * int(X.shape[0]))  # upper bound: the ARN split trains on 80 % of the normal rows
        name = getattr(dataset, "name", None)
        epochs, lr_d, lr_g = AUTHORS_CONFIG.get(name, (400, 1e-4, 1e-3))
        if budget == "smoke":
            params.update(epochs=2, batch_size=256, max_train_samples=2000)
        elif budget == "quick":
            # A narrower classifier (the authors' 512-unit layer dominates the cost) and no label noise:
            # the authors' noise decays by 0.9995 per step over ~30,000 steps; in the few thousand steps
            # of a quick run it would never decay. Test AUROC rises and then falls with the steps
            # (docs/models/arn.md): the ARN protocols pick the epoch on their labelled validation rows,
            # as the authors do; without them the last epoch is scored.
            params.update(discriminator_hidden=[128, 128, 64, 32, 16], label_noise=0.0, lr_d=lr_d, lr_g=lr_g)
            if n_train <= 5_000:      # embedded sets: a few seconds
                params.update(epochs=40, batch_size=256)
            elif n_train <= 60_000:   # bank, nsl-kdd 20 %: well under a minute
                params.update(epochs=20 if name == "bank" else 10, batch_size=512)
            else:                     # kdd99 variants, covertype: 30,000-row subsample, a few minutes
                params.update(epochs=60 if name == "kdd99-rev" else 20, batch_size=512, max_train_samples=30_000)
        elif budget == "paper":
            params.update(epochs=epochs, batch_size=1024, lr_d=lr_d, lr_g=lr_g)
        else:
            raise ValueError(f"unknown budget {budget!r}")
        return params

    # ------------------------------------------------------------------ fit
    def _resolve_groups(self, d: int) -> list[list[int]]:
        groups = self.categorical_groups
        if groups is None:
            encoder = getattr(self, "encoder_", None)
            groups = encoder.categorical_groups if encoder is not None else []
        try:
            groups = [[int(c) for c in g] for g in groups]
        except (TypeError, ValueError) as err:
            raise InputError(f"categorical_groups must be a list of lists of column indices; got {groups!r}") from err
        seen: set[int] = set()
        for g in groups:
            for c in g:
                if not 0 <= c < d:
                    raise InputError(f"categorical_groups names column {c}, but X has {d} columns")
                if c in seen:
                    raise InputError(f"column {c} appears in more than one categorical group")
                seen.add(c)
        return groups

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, validation_data: tuple | None = None,
             **fit_kwargs: Any) -> None:
        """``validation_data=(X_val, y_val)`` (labelled, both classes): keep the epoch whose classifier
        has the lowest binary cross-entropy on it, as the authors' code does; ``selected_by_`` records it."""
        if X.ndim != 2:
            raise InputError(f"ARN takes tabular rows (n, d); got shape {X.shape}")
        self._requested_groups = self._resolve_groups(X.shape[1])
        self._labelled_raw = None
        if y is not None and y.any():
            if y.all():
                raise InputError("y marks every row as a known anomaly; ARN needs normal rows (y = 0) to learn "
                                 "from and a few known anomalies (y = 1)")
            self._labelled_raw = np.ascontiguousarray(X[y == 1])
            X = np.ascontiguousarray(X[y == 0])
        self.n_labelled_ = 0 if self._labelled_raw is None else int(len(self._labelled_raw))
        self._validation_raw = None if validation_data is None else self._validation_pair(validation_data)
        try:
            super()._fit(X, None, **fit_kwargs)
        finally:
            del self._labelled_raw, self._validation_raw
        self.selected_by_ = "last epoch" if validation_data is None else "validation BCE"

    def _selector(self, config: dict, X: torch.Tensor) -> Selector | None:
        if self._validation_raw is None:
            return None
        X_val = torch.from_numpy(self._transform(self._validation_raw[0])).to(X.device)
        y_val = torch.from_numpy(self._validation_raw[1]).to(X.device, torch.float32)

        def validation_bce(trainer) -> float:
            D = trainer.inference_network("D")
            with eval_mode(D), torch.no_grad():
                logits = torch.cat([D(X_val[i:i + 4096]) for i in range(0, len(X_val), 4096)])
            return float(F.binary_cross_entropy_with_logits(logits.float(), y_val))

        return Selector(validation_bce, start_epoch=1, mode="min")

    def _fingerprint(self, X: np.ndarray, device: torch.device) -> str:
        base = super()._fingerprint(X, device)
        labelled, validation = getattr(self, "_labelled_raw", None), getattr(self, "_validation_raw", None)
        extras = ([] if labelled is None else [labelled]) + ([] if validation is None else list(validation))
        return "-".join([base, *map(data_fingerprint, extras)])

    def _fit_preprocessing(self, X: np.ndarray) -> None:
        super()._fit_preprocessing(X)
        cat_cols = [c for g in self._requested_groups for c in g]
        if cat_cols and self.preprocessing_ != "none":  # one-hot columns stay exactly 0/1
            self.shift_ = np.broadcast_to(self.shift_, (1, X.shape[1])).astype(np.float32).copy()
            self.scale_ = np.broadcast_to(self.scale_, (1, X.shape[1])).astype(np.float32).copy()
            self.shift_[0, cat_cols] = 0.0
            self.scale_[0, cat_cols] = 1.0

    def _network_config(self, X: np.ndarray) -> dict:
        d = X.shape[1]
        heads, demoted = [], []
        for g in self._requested_groups:
            block = X[:, g]
            one_hot = len(g) >= 2 and np.isin(block, (0.0, 1.0)).all() and np.all(block.sum(axis=1) == 1.0)
            (heads if one_hot else demoted).append(g)
        if demoted:
            warnings.warn(f"ARN: {len(demoted)} categorical group(s) have a single column or rows that are not "
                          f"one-hot in the training data ({demoted[:3]}...); they are modelled as numeric columns",
                          RuntimeWarning, stacklevel=4)
        if self.variant == "numeric":
            heads = []
        in_heads = {c for g in heads for c in g}
        numeric = [c for c in range(d) if c not in in_heads]
        return {"input_shape": [d], "groups": heads, "all_groups": self._requested_groups, "numeric": numeric,
                "latent_dim": int(self.latent_dim), "encoder_hidden": [int(w) for w in self.encoder_hidden],
                "decoder_hidden": [int(w) for w in self.decoder_hidden],
                "discriminator_hidden": [int(w) for w in self.discriminator_hidden],
                "discriminator_norm": self.discriminator_norm, "dropout": float(self.dropout),
                "numeric_head": self.numeric_head, "init": self.init,
                "mean_act": "sigmoid" if self.preprocessing_ == "minmax" else None}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        d = config["input_shape"][0]
        gen = _Generator(d, config["latent_dim"], config["encoder_hidden"], config["decoder_hidden"],
                         config["numeric"], config["groups"], config["mean_act"], config["numeric_head"],
                         config["dropout"])
        disc = _Classifier(d, config["discriminator_hidden"], config["discriminator_norm"], config["dropout"])
        scheme, std = ("normal", 0.01) if config["init"] == "normal" else ("xavier", 0.02)
        init_weights(gen, scheme, std)
        init_weights(disc, scheme, std)
        if gen.num_logvar is not None:  # start with small output noise (σ ≈ 0.05 on [0, 1] columns)
            nn.init.constant_(gen.num_logvar.bias, -6.0)
        return {"G": gen, "D": disc}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _ema(self, config: dict) -> dict[str, float]:
        return {} if self.ema_decay is None else {"D": float(self.ema_decay), "G": float(self.ema_decay)}

    def _n_threads(self, config: dict, batch_size: int) -> int | None:
        return None if self.n_threads is None else int(self.n_threads)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        G, D = nets["G"], nets["D"]
        device = D.step.device
        groups, numeric = config["groups"], config["numeric"]
        num_idx = torch.tensor(numeric, dtype=torch.long, device=device)
        group_idx = [torch.tensor(g, dtype=torch.long, device=device) for g in groups]
        gamma, cat_w, kl_w = float(self.gamma), float(self.categorical_weight), float(self.kl_weight)
        variance_weight = float(self.variance_weight) / max(gamma, 1e-12)
        noise, noise_decay = float(self.label_noise), float(self.label_noise_decay)
        tau0, tau_decay, tau_min = float(self.temperature), float(self.temperature_decay), float(self.min_temperature)
        kl_anneal = bool(self.kl_anneal)

        labelled = None
        if getattr(self, "_labelled_raw", None) is not None:
            labelled = torch.from_numpy(self._transform(self._labelled_raw)).to(device)
        k_labelled = int(self.labelled_batch_size or max(1, int(self.batch_size) // 8))
        state: dict[str, torch.Tensor] = {}

        def schedules() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            step = D.step
            tau = torch.clamp(tau0 * torch.pow(torch.tensor(tau_decay, device=device), step), min=max(tau_min, 1e-6))
            amp = noise * torch.pow(torch.tensor(noise_decay, device=device), step)
            beta = kl_w * (torch.pow(torch.tensor(tau_decay, device=device), step) if kl_anneal else 1.0)
            return tau, amp, beta

        def targets(labels: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
            """Soft, noisy versions of 0/1 anomaly labels (§IV-E)."""
            if noise == 0:
                return labels
            u = torch.rand(labels.shape, generator=generator, device=device) * amp
            soft = labels * (1.0 - u) + (1.0 - labels) * u
            flip = torch.rand(labels.shape, generator=generator, device=device) < amp
            return torch.where(flip, 1.0 - soft, soft)

        def with_labelled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.zeros(len(x), device=device)
            if labelled is None:
                return x, y
            pick = torch.randint(len(labelled), (k_labelled,), generator=generator, device=device)
            return torch.cat([x, labelled[pick]]), torch.cat([y, torch.ones(k_labelled, device=device)])

        gaussian = self.numeric_head == "gaussian"

        def reconstruction(x: torch.Tensor, xt: torch.Tensor, num_mean, num_logvar) -> torch.Tensor:
            """γ-weighted part: squared error of the numeric means (of the sample for ``"mean"`` heads)
            and of the one-hot groups; plus, for Gaussian heads, the Gaussian negative log-likelihood
            of x that fits their variances (the means held fixed), so the sampled x̃ spreads around
            the reconstruction as the data spread around it."""
            rec = x.new_zeros(())
            if len(numeric):
                target = x[:, num_idx]
                rec = rec + (target - (num_mean if num_mean is not None else xt[:, num_idx])).pow(2).mean()
                if gaussian and num_logvar is not None:
                    resid = (target - num_mean.detach()).pow(2)
                    rec = rec + variance_weight * 0.5 * (num_logvar + resid * torch.exp(-num_logvar)).mean()
            if group_idx:
                rec = rec + cat_w * sum((x[:, g] - xt[:, g]).pow(2).mean() for g in group_idx) / len(group_idx)
            return rec

        def d_loss(x: torch.Tensor):
            with torch.no_grad():
                D.step += 1
            tau, amp, _ = schedules()
            x, y = with_labelled(x)
            state["x"], state["y"] = x, y
            with torch.no_grad():
                xt = G(x, tau, generator)[0]
            loss_real = F.binary_cross_entropy_with_logits(D(x), targets(y, amp))
            loss_fake = F.binary_cross_entropy_with_logits(D(xt, generated=True), targets(1.0 - y, amp))
            return loss_real + loss_fake, {"real": loss_real.detach(), "fake": loss_fake.detach()}

        def g_loss(_: torch.Tensor):
            tau, _, beta = schedules()
            x, y = state.pop("x"), state.pop("y")
            xt, mu, logvar, num_mean, num_logvar = G(x, tau, generator)
            adv = F.binary_cross_entropy_with_logits(D(xt, generated=True), y)
            rec = reconstruction(x, xt, num_mean, num_logvar)
            kl = _kl(mu, logvar)
            return adv + gamma * rec + beta * kl, {"adv": adv.detach(), "rec": rec.detach(), "kl": kl.detach()}

        def elbo_loss(x: torch.Tensor):
            with torch.no_grad():
                D.step += 1
            tau, amp, beta = schedules()
            x, y = with_labelled(x)
            xt, mu, logvar, num_mean, num_logvar = G(x, tau, generator)
            loss_real = F.binary_cross_entropy_with_logits(D(x), targets(y, amp))
            loss_fake = F.binary_cross_entropy_with_logits(D(xt, generated=True), targets(1.0 - y, amp))
            rec = reconstruction(x, xt, num_mean, num_logvar)
            kl = _kl(mu, logvar)
            return (loss_real + loss_fake + gamma * rec + beta * kl,
                    {"real": loss_real.detach(), "fake": loss_fake.detach(), "rec": rec.detach(), "kl": kl.detach()})

        betas = (float(self.beta1), 0.999)
        if self.objective == "elbo":
            opt = torch.optim.Adam([{"params": D.parameters(), "lr": float(self.lr_d)},
                                    {"params": G.parameters(), "lr": float(self.lr_g)}], betas=betas)
            return [UpdateStep("elbo", elbo_loss, opt, ["D", "G"])]
        opt_d = torch.optim.Adam(D.parameters(), lr=float(self.lr_d), betas=betas)
        opt_g = torch.optim.Adam(G.parameters(), lr=float(self.lr_g), betas=betas)
        return [UpdateStep("D", d_loss, opt_d, ["D"]),
                UpdateStep("G", g_loss, opt_g, ["G"], new_batch=False)]

    # ------------------------------------------------------------------ score
    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        logit = nets["D"](x)
        if self.score == "logit":
            return logit
        return torch.sigmoid(logit.double()) if x.device.type != "mps" else torch.sigmoid(logit)

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = super()._fitted_state()
        meta.update({"selected_by": self.selected_by_, "n_labelled": self.n_labelled_})
        return meta, arrays

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._restore_fitted_state(meta, arrays)
        self.selected_by_ = meta.get("selected_by", "last epoch")
        self.n_labelled_ = int(meta.get("n_labelled", 0))

    # ------------------------------------------------------------------ generation
    @property
    def categorical_groups_(self) -> list[list[int]]:
        """The one-hot groups modelled as categorical heads (after demoting single-column groups)."""
        self._check_fitted()
        return [list(g) for g in self.config_["groups"]]

    def generate(self, X: Any, *, sample: bool = True, random_state: int | None = None,
                 decode: bool = True) -> np.ndarray | pd.DataFrame:
        """Near-copy outliers x̃ ~ g_φ(z), z ~ q_ψ(z|x), one per row of X (normally normal rows).

        Returned in X's original units: a DataFrame with the fitted columns (categoricals as categories)
        when the detector was fitted on a DataFrame, else an array. ``sample=False`` uses the means
        (z = μ(x), Gaussian means, arg-max categories); ``random_state`` seeds the sampling (default:
        the detector's). ``decode=False`` returns the raw generated matrix (encoded columns, original
        scale) without snapping one-hot groups to their arg-max category.
        """
        self._check_fitted()
        Xv = self._validate(X, fitting=False)
        G = self.inference_networks_["G"]
        seed = self.random_state if random_state is None else random_state
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        device = self.device_
        out = np.empty(Xv.shape, dtype=np.float32)
        bs = int(self.score_batch_size)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), eval_mode(G), torch.inference_mode():
            torch.manual_seed(int(seed))
            gen = torch.Generator(device=device)
            gen.manual_seed(int(seed) + 1)
            for start in range(0, len(Xv), bs):
                xb = torch.from_numpy(self._transform(Xv[start:start + bs])).to(device)
                xt = G(xb, float(self.min_temperature) or 1.0, gen, stochastic=sample)[0]
                out[start:start + bs] = xt.float().cpu().numpy()
        raw = out * self.scale_ + self.shift_ if self.preprocessing_ != "none" else out
        raw = raw.astype(np.float32)
        if not decode:
            return raw
        groups = self.config_["all_groups"]
        if self.encoder_ is not None:
            columns: dict[str, Any] = {}
            pos = 0
            for name in self.encoder_.columns:
                if name in self.encoder_.categories:
                    cats = self.encoder_.categories[name]
                    codes = raw[:, pos:pos + len(cats)].argmax(axis=1)
                    columns[name] = pd.Categorical.from_codes(codes, categories=cats)
                    pos += len(cats)
                else:
                    columns[name] = raw[:, pos].astype(np.float64)
                    pos += 1
            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(columns, index=index)
        for g in groups:
            if len(g) >= 2:
                block = np.zeros((len(raw), len(g)), dtype=np.float32)
                block[np.arange(len(raw)), raw[:, g].argmax(axis=1)] = 1.0
                raw[:, g] = block
        return raw


if __name__ != "__main__":  # `python -m advad.models.arn` re-executes this file; register once
    register("arn")(ARN)


# --------------------------------------------------------------------------------------------- the authors' scoring
def batch_statistics_auroc(dataset: str = "kdd99-rev", seed: int = 0, budget: str = "quick", batch_size: int = 1024,
                           params: dict | None = None) -> dict[str, float]:
    """What the authors' scoring adds (docs/models/arn.md, "Why the paper's figures are not reached").

    Fits ARN with ``discriminator_norm="batch"`` (every forward pass normalised with its own batch's
    statistics, real and generated rows in separate passes: the authors' training) on the `auc`
    protocol's split of `dataset` (seed `seed`) and returns the test AUROC with the rows scored
    ``per_row`` (running statistics: advad's scoring), ``batch_sorted`` (each batch of `batch_size`
    normalised with its own statistics, batches in the authors' test order: every test normal first,
    then the test anomalies, as their unshuffled loader reads their concatenated test set) and
    ``batch_shuffled`` (the same with the test rows shuffled first)."""
    from sklearn.metrics import roc_auc_score

    from advad.data import load_dataset
    from advad.protocols import arn_split

    ds = load_dataset(dataset)
    split, _ = arn_split(ds, seed)  # test rows: normals, then anomalies; min-max scaled
    det = ARN(random_state=seed, **{**ARN.bench_params(ds, budget), **(params or {}), "discriminator_norm": "batch"})
    det.fit(split.X_train)
    net = copy.deepcopy(det.inference_networks_["D"].main).eval()  # eval: no dropout
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):  # without running statistics, eval mode uses the batch's own
            m.running_mean = m.running_var = None
    X = torch.from_numpy(det._transform(split.X_test)).to(det.device_)
    y = split.y_test

    def batch_scores(order: np.ndarray) -> np.ndarray:
        starts = list(range(0, len(order), batch_size))
        if len(order) - starts[-1] == 1 and len(starts) > 1:  # a batch of one row has no statistics
            starts.pop()
        out = np.empty(len(order))
        with torch.inference_mode():
            for a, b in zip(starts, starts[1:] + [len(order)]):
                idx = order[a:b]
                out[idx] = net(X[torch.from_numpy(idx).to(X.device)]).squeeze(1).double().cpu().numpy()
        return out

    shuffled = np.random.default_rng(seed).permutation(len(y))
    return {"per_row": float(roc_auc_score(y, det.decision_function(split.X_test))),
            "batch_sorted": float(roc_auc_score(y, batch_scores(np.arange(len(y))))),
            "batch_shuffled": float(roc_auc_score(y, batch_scores(shuffled)))}


def _main(argv: list[str] | None = None) -> int:
    """``python -m advad.models.arn batch-stats --dataset kdd99-rev --seed 0`` (`batch_statistics_auroc`).
    Fig. 6 is ``advad plot arn-generation``."""
    import argparse
    import json
    import time

    parser = argparse.ArgumentParser(prog="python -m advad.models.arn")
    sub = parser.add_subparsers(dest="command", required=True)
    bst = sub.add_parser("batch-stats", help="test AUROC per row vs with the authors' batch-statistic scoring")
    bst.add_argument("--dataset", default="kdd99-rev")
    bst.add_argument("--budget", default="quick", choices=("smoke", "quick", "paper"))
    bst.add_argument("--seed", type=int, default=0)
    bst.add_argument("--batch-size", type=int, default=1024)
    bst.add_argument("--param", action="append", default=[], help="key=value model parameter (JSON values)")
    args = parser.parse_args(argv)

    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    t0 = time.perf_counter()
    result = batch_statistics_auroc(args.dataset, args.seed, args.budget, args.batch_size, params)
    print(json.dumps({"dataset": args.dataset, "seed": args.seed, "budget": args.budget, "auroc": result,
                      "seconds": round(time.perf_counter() - t0)}))
    return 0


if __name__ == "__main__":
    from advad.models.arn import _main as _registered_main  # the package's module, whose ARN is registered

    raise SystemExit(_registered_main())
