"""DSEBM — Deep Structured Energy Based Models (Zhai, Cheng, Lu, Zhang; ICML 2016), fully connected form.

The energy of a row is (Section 3.1, the deep generalisation of the Gaussian-Bernoulli RBM's free energy)

    E(x) = ½‖x − b'‖₂² − Σ_j h_L,j(x),   h_l = softplus(W_l h_{l−1} + b_l),  h_0 = x,

so p(x) ∝ exp(−E(x)). It is trained by denoising score matching (Section 3.3): with x̃ = x + ε,
ε ~ N(0, σ²I), and the "reconstruction" ξ(x) = x − ∇_x E(x), minimise mean ‖x − ξ(x̃)‖₂² — the
regularised-autoencoder view of score matching. Two decision criteria (Section 4): the energy score
E(x) (`dsebm-e`) and the reconstruction error ‖x − ξ(x)‖₂ = ‖∇_x E(x)‖₂ (`dsebm-r`). One fit gives both
(`score_all`). See docs/models/baselines.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from advad.base import number_in, one_of, positive_int
from advad.data import list_datasets
from advad.engine import UpdateStep, eval_mode
from advad.models._torch import TorchDetector
from advad.models.registry import register
from advad.nets import init_weights

SCORES = ("energy", "reconstruction")


class _EnergyNet(nn.Module):
    """E(x) = ½‖x − b'‖² − Σ_j h_L,j(x) with softplus layers h_l (one value per row)."""

    def __init__(self, d: int, hidden: list[int]):
        super().__init__()
        widths = [d, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.b_prime = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = F.softplus(layer(h))
        return 0.5 * (x - self.b_prime).pow(2).flatten(1).sum(dim=1) - h.sum(dim=1)


def _energy_and_grad(net: nn.Module, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """E(x) per row and ∇_x E(x) (rows are independent, so the gradient of the sum is per row)."""
    x = x.detach().requires_grad_(True)
    energy = net(x)
    (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=create_graph)
    return energy, grad


class _DSEBM(TorchDetector):
    """Deep Structured Energy Based Model (tabular data). Registered as `dsebm-e` (`DSEBMEnergy`, energy
    score) and `dsebm-r` (`DSEBMReconstruction`, reconstruction-error score); both fit the same model.

    Parameters
    ----------
    hidden : widths of the softplus layers of the energy network (128, 512: the networks behind the
        ALAD paper's DSEBM runs on KDD99).
    noise_std : σ of the denoising score-matching corruption (in the scaled input space).
    epochs, batch_size, learning_rate : Adam training (100 / 100 / 1e-4).
    preprocessing : ``"auto"`` (standardise), ``"none"``, ``"standard"``, ``"minmax"``.
    Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    accepts_images = False
    score_kind: ClassVar[str] = "energy"
    param_rules = {**TorchDetector.param_rules, "epochs": positive_int(optional=False),
                   "batch_size": positive_int(optional=False), "noise_std": number_in(0, float("inf"), low_open=True),
                   "score_dtype": one_of("float32"), "score_compile": one_of(False)}  # the scores need ∇_x E

    def __init__(self, contamination: float = 0.1, hidden: tuple[int, ...] | list[int] = (128, 512),
                 noise_std: float = 1.0, epochs: int = 100, batch_size: int = 100, learning_rate: float = 1e-4,
                 preprocessing: str = "auto", max_train_samples: int | None = None,
                 min_steps: int | None = None, random_state: int | None = None,
                 device: str = "auto", verbose: bool | str = False, checkpoint_dir: str | None = None,
                 checkpoint_every: int = 1, score_batch_size: int = 4096,
                 score_dtype: str = "float32", score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.hidden = hidden
        self.noise_std = noise_std
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
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
        """``paper``: the defaults (100 epochs; Arrhythmia with the 10-2 network and batch 26 of the ALAD
        authors' baseline code). ``quick``: KDD99-sized sets on a 50 000-row subsample for 10 epochs; the small
        sets as ``paper``. ``smoke``: seconds."""
        shape = tuple(dataset.X.shape)
        name = getattr(dataset, "name", "")
        big = len(shape) == 2 and shape[0] >= 40_000
        params: dict[str, Any] = {"hidden": [10, 2], "batch_size": 26} if name == "arrhythmia" else {}
        if budget == "smoke":
            return {**params, "epochs": 2, "max_train_samples": 2000}
        if budget == "quick":
            if name in list_datasets(embedded=True):
                return {**params, "epochs": 30}
            return {**params, "epochs": 10, "max_train_samples": 50_000} if big else params
        if budget == "paper":
            return params
        raise ValueError(f"unknown budget {budget!r}")

    def _network_config(self, X: np.ndarray) -> dict:
        return {"input_shape": list(X.shape[1:]), "hidden": [int(h) for h in self.hidden]}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        return {"ebm": init_weights(_EnergyNet(config["input_shape"][0], config["hidden"]), "xavier")}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        ebm = nets["ebm"]

        def loss(x: torch.Tensor) -> torch.Tensor:
            noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
            x_noisy = x + self.noise_std * noise
            _, grad = _energy_and_grad(ebm, x_noisy, create_graph=True)
            # denoising score matching: ‖x − ξ(x̃)‖², ξ(x̃) = x̃ − ∇E(x̃)
            return (x - (x_noisy - grad)).pow(2).sum(dim=1).mean()

        opt = torch.optim.Adam(ebm.parameters(), lr=self.learning_rate)
        return [UpdateStep("ebm", loss, opt, ["ebm"])]

    # ------------------------------------------------------------------ scoring (needs ∇_x E)
    def _both_scores(self, X: np.ndarray) -> np.ndarray:
        ebm = self._scoring_networks()["ebm"]  # float32: `score_dtype` allows nothing else here
        out = np.empty((len(X), 2))
        bs = int(self.score_batch_size)
        with eval_mode(ebm), torch.inference_mode(False), torch.enable_grad():
            for start in range(0, len(X), bs):
                x = torch.from_numpy(self._transform(X[start:start + bs])).to(self.device_)
                energy, grad = _energy_and_grad(ebm, x, create_graph=False)
                both = torch.stack([energy.detach(), grad.norm(dim=1)], dim=1)
                out[start:start + len(x)] = both.to("cpu", torch.float64).numpy()
        return out

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._both_scores(X)[:, SCORES.index(self.score_kind)]

    def score_all(self, X: Any) -> dict[str, np.ndarray]:
        """Both criteria in one pass: ``{"energy": E(x), "reconstruction": ‖x − ξ(x)‖₂}``."""
        self._check_fitted()
        both = self._both_scores(self._validate(X, fitting=False))
        return {kind: both[:, i] for i, kind in enumerate(SCORES)}


@register("dsebm-e")
class DSEBMEnergy(_DSEBM):
    __doc__ = _DSEBM.__doc__
    score_kind = "energy"


@register("dsebm-r")
class DSEBMReconstruction(_DSEBM):
    __doc__ = _DSEBM.__doc__
    score_kind = "reconstruction"
