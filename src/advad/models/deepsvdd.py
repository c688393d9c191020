"""Deep SVDD — Deep Support Vector Data Description (Ruff, Vandermeulen, Görnitz, Deecke, Siddiqui,
Binder, Müller, Kloft; ICML 2018), one-class objective.

A network φ(·; W) without bias terms (and batch norm without affine parameters, so no constant
output is reachable by training the centre away: Section 3.3, Propositions 2-3) maps x into a
hypersphere around a fixed centre c. One-Class Deep SVDD minimises (Eq. 4)

    1/n Σ ‖φ(x_i; W) − c‖² + λ/2 Σ_l ‖W^l‖²_F

(the weight decay λ through Adam's `weight_decay`) and scores s(x) = ‖φ(x; W*) − c‖² (Eq. 5). As in the
paper, φ is first pretrained as the encoder of an autoencoder, c is the mean of φ over the training
rows after that initial pass (Section 3.3: fixing c avoids the trivial solution), and coordinates of c
too close to 0 are pushed to ±`eps`; the learning rate drops ten-fold after `lr_milestone` epochs
(the "searching + fine-tuning" schedule of Section 4.1). See docs/models/baselines.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import number_in, positive_int
from advad.data import list_datasets
from advad.engine import Trainer, UpdateStep, eval_mode, iterations_per_epoch
from advad.models._torch import TorchDetector, image_budget
from advad.models.registry import register
from advad.nets import lenet_architecture, lenet_decoder, lenet_encoder

class _OneClassNet(nn.Module):
    """φ with the hypersphere centre c kept as a buffer (saved and checkpointed with the weights)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.encoder, _ = lenet_encoder(config["input_shape"], config["widths"], config["rep_dim"])
        self.register_buffer("center", torch.zeros(config["rep_dim"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def _set_lr_phase(opt: torch.optim.Optimizer, lr: float, milestone_step: int | None) -> None:
    """Two-phase learning rate: `lr` until `milestone_step` optimiser steps, then lr/10. Read from Adam's
    own step count, so a fit resumed from a checkpoint continues in the right phase."""
    if milestone_step is None:
        return
    state = opt.state.get(opt.param_groups[0]["params"][0], {})
    done = int(state["step"]) if "step" in state else 0
    for group in opt.param_groups:
        group["lr"] = lr if done < milestone_step else lr / 10


@register("deepsvdd")
class DeepSVDD(TorchDetector):
    """One-Class Deep SVDD (tabular rows or images).

    Parameters
    ----------
    widths, rep_dim : hidden widths (conv channels for images) and output size of φ; ``None`` picks the
        paper's networks by data shape (28×28: 8-4 → 32; 32×32: 32-64-128 → 128; tabular: 128-64 → 32
        with ≥ 100 features, else 32-16 → 8).
    epochs, lr_milestone : training epochs, and the epoch after which the learning rate drops ten-fold
        (``None``: never). The paper: 150 + 100 epochs.
    pretrain_epochs, pretrain_milestone : autoencoder pretraining of φ (0 = none). The paper: 250 + 100.
        With ``min_steps`` every epoch count here is scaled by the same ``epoch_scale_``.
    batch_size, learning_rate, weight_decay : Adam (200, 1e-4, λ = 1e-6).
    eps : coordinates of c with |c_j| < eps are set to ±eps.
    preprocessing : ``"auto"`` (tabular: standardise; images: [-1, 1]) or as every torch detector.
    Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    param_rules = {**TorchDetector.param_rules, "epochs": positive_int(optional=False),
                   "batch_size": positive_int(optional=False), "rep_dim": positive_int(),
                   "pretrain_epochs": positive_int(optional=False, minimum=0), "lr_milestone": positive_int(minimum=0),
                   "pretrain_milestone": positive_int(minimum=0), "eps": number_in(0, float("inf"), low_open=True)}

    def __init__(self, contamination: float = 0.1, widths: list[int] | None = None, rep_dim: int | None = None,
                 epochs: int = 250, lr_milestone: int | None = 150, pretrain_epochs: int = 350,
                 pretrain_milestone: int | None = 250, batch_size: int = 200, learning_rate: float = 1e-4,
                 weight_decay: float = 1e-6, eps: float = 0.1, preprocessing: str = "auto",
                 max_train_samples: int | None = None,
                 min_steps: int | None = None, random_state: int | None = None, device: str = "auto",
                 verbose: bool | str = False, checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                 score_batch_size: int = 4096, score_dtype: str = "float32",
                 score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.widths = widths
        self.rep_dim = rep_dim
        self.epochs = epochs
        self.lr_milestone = lr_milestone
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_milestone = pretrain_milestone
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.eps = eps
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
        """``paper``: the defaults (pretraining 250 + 100 epochs, Deep SVDD 150 + 100). ``quick``: small
        tabular sets as ``paper`` (seconds); KDD99-sized sets 20 + 20 epochs on a 50 000-row subsample;
        images 5 + 5 epochs on 3 000 training images. ``smoke``: seconds."""
        shape = tuple(dataset.X.shape)
        name = getattr(dataset, "name", "")
        image = len(shape) >= 3
        big = not image and shape[0] >= 40_000
        short = lambda n, extra=None: {"epochs": n, "lr_milestone": None, "pretrain_epochs": n,  # noqa: E731
                                       "pretrain_milestone": None, **(extra or {})}
        if budget == "smoke":
            return short(2, {"max_train_samples": 512 if image else 2000})
        if budget == "quick":
            if name in list_datasets(embedded=True):
                return short(30)
            if image:
                return short(5, image_budget(5, 3000, 200))
            return short(20, {"max_train_samples": 50_000}) if big else {}
        if budget == "paper":
            return {}
        raise ValueError(f"unknown budget {budget!r}")

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        shape = list(X.shape[1:])
        arch = lenet_architecture(shape)
        widths = [int(w) for w in (self.widths if self.widths is not None else arch["widths"])]
        return {"input_shape": shape, "widths": widths,
                "rep_dim": int(self.rep_dim if self.rep_dim is not None else arch["rep_dim"])}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        return {"phi": _OneClassNet(config)}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _steps_per_epoch(self, n: int) -> int:
        return iterations_per_epoch(n, int(self.batch_size))

    def _prepare(self, nets: dict[str, nn.Module], X: torch.Tensor, generator: torch.Generator) -> None:
        phi = nets["phi"]
        self._milestone_step = (None if self.lr_milestone is None
                                else self._scaled_epochs(int(self.lr_milestone)) * self._steps_per_epoch(len(X)))
        if self.pretrain_epochs > 0:
            self._pretrain(phi, X, generator)
        # c: mean of φ over the training rows after the initial pass (eval mode: running statistics)
        with eval_mode(phi), torch.no_grad():
            c = torch.cat([phi(X[i:i + 4096]) for i in range(0, len(X), 4096)]).mean(dim=0)
        near = c.abs() < self.eps
        c[near & (c < 0)] = -self.eps
        c[near & (c >= 0)] = self.eps
        phi.center.copy_(c)

    def _pretrain(self, phi: "_OneClassNet", X: torch.Tensor, generator: torch.Generator) -> None:
        """Autoencoder pretraining of φ (MSE), on the engine like any other training."""
        shape, widths, rep_dim = phi.config["input_shape"], phi.config["widths"], phi.config["rep_dim"]
        _, sizes = lenet_encoder(shape, widths, rep_dim)
        ae = nn.Sequential(phi.encoder, lenet_decoder(shape, widths, rep_dim, sizes).to(X.device))
        milestone = (None if self.pretrain_milestone is None
                     else self._scaled_epochs(int(self.pretrain_milestone)) * self._steps_per_epoch(len(X)))
        opt = torch.optim.Adam(ae.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)

        def loss(x: torch.Tensor) -> torch.Tensor:
            _set_lr_phase(opt, self.learning_rate, milestone)
            return (ae(x) - x).pow(2).flatten(1).sum(dim=1).mean()

        Trainer(networks={"ae": ae}, steps=[UpdateStep("pretrain", loss, opt, ["ae"])],
                epochs=self._scaled_epochs(int(self.pretrain_epochs)), batch_size=int(self.batch_size),
                generator=generator, progress=self._progress(), description="DeepSVDD pretraining").fit(X)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        phi = nets["phi"]
        opt = torch.optim.Adam(phi.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        milestone = self._milestone_step

        def loss(x: torch.Tensor) -> torch.Tensor:
            _set_lr_phase(opt, self.learning_rate, milestone)
            return (phi(x) - phi.center).pow(2).sum(dim=1).mean()  # Eq. 4 (weight decay in Adam)

        return [UpdateStep("svdd", loss, opt, ["phi"])]

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        phi = nets["phi"]
        return (phi(x) - phi.center).pow(2).sum(dim=1)  # Eq. 5

    # ------------------------------------------------------------------ fitted centre
    def _fit(self, X: np.ndarray, y: np.ndarray | None, **kwargs: Any) -> None:
        try:
            super()._fit(X, None, **kwargs)
        finally:
            self.__dict__.pop("_milestone_step", None)
        self.center_ = self.networks_["phi"].center.cpu().numpy().copy()

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._restore_fitted_state(meta, arrays)
        self.center_ = self.networks_["phi"].center.cpu().numpy().copy()
