"""AnoGAN (Schlegl, Seeböck, Waldstein, Schmidt-Erfurth, Langs; IPMI 2017).

A GAN — DCGAN for images, fully connected networks for tabular rows (as the ALAD paper adapted it) —
is trained on normal data with the standard (non-saturating) GAN losses. At scoring, each sample x is
mapped to the latent space by an iterative search (Section 2.2): z is drawn afresh from the prior
for every sample and updated for Γ steps by Adam on the loss

    L(z) = (1 − λ) · L_R(z) + λ · L_D(z),   L_R = ‖x − G(z)‖₁,   L_D = ‖f(x) − f(G(z))‖₁

(f: the discriminator's intermediate layer, the "feature matching" variant the paper found best),
with G and D frozen; the anomaly score is A(x) = L(z_Γ), λ = 0.1 (Eq. 5 onward). The search is batched
over samples: every row has its own z and the loss is a sum over rows, and Adam's update is per
coordinate, so each row's search is exactly the search it would get alone. As in the ALAD paper's
runs, scoring uses exponential-moving-average weights (decay 0.999). See docs/models/baselines.md.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import number_in, one_of, positive_int
from advad.data import list_datasets
from advad.engine import UpdateStep, bce, eval_mode
from advad.models._torch import TorchDetector, image_budget
from advad.models.alad import KDD_MIN_ROWS, choose_architecture
from advad.models.registry import register
from advad.nets import FeatureDiscriminator, conv_decoder, conv_encoder, conv_encoder_features, init_weights, mlp

ARCHITECTURES = ("auto", "kdd", "arrhythmia", "conv")
# The ALAD paper's AnoGAN runs: its tabular GANs (KDD99, Arrhythmia) and the DCGAN settings for images.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "kdd": {"latent_dim": 32, "batch_size": 50, "learning_rate": 1e-5, "epochs": 100},
    "arrhythmia": {"latent_dim": 64, "batch_size": 32, "learning_rate": 1e-5, "epochs": 1000},
    "conv": {"latent_dim": 100, "batch_size": 64, "learning_rate": 2e-4, "epochs": 100},
}


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter of `modules` requires gradients inside the block (restored afterwards)."""
    params = [p for m in modules for p in m.parameters()]
    previous = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, previous):
            p.requires_grad_(flag)


@register("anogan")
class AnoGAN(TorchDetector):
    """AnoGAN: a GAN plus a per-sample latent search at scoring.

    Parameters
    ----------
    architecture : ``"auto"`` (images → ``"conv"``: DCGAN; tabular training sets with ≥ 20 000 rows →
        ``"kdd"``, smaller → ``"arrhythmia"``) or one of those.
    latent_dim, batch_size, learning_rate, epochs : ``None`` takes the architecture's values
        (kdd 32/50/1e-5/100; arrhythmia 64/32/1e-5/1000; conv 100/64/2e-4/100). Adam β1 = `beta1`.
    ema_decay, ema_warmup : moving average of G and D used for scoring (``None``: raw weights).
    lam : λ of the score (0.1).
    search_steps, search_lr : Γ Adam steps of the latent search (500) and their learning rate.
    score_batch_size : rows searched together (memory grows with it; the result does not).
    score_dtype, score_compile : ``"float32"`` and ``False`` only: the score searches the latent space with
        float32 gradients.
    Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    param_rules = {**TorchDetector.param_rules, "architecture": one_of(*ARCHITECTURES), "latent_dim": positive_int(),
                   "epochs": positive_int(), "batch_size": positive_int(), "lam": number_in(0, 1),
                   "search_steps": positive_int(optional=False, minimum=0),
                   "ema_decay": number_in(0, 1, high_open=True, optional=True), "score_dtype": one_of("float32"),
                   "score_compile": one_of(False)}

    def __init__(self, contamination: float = 0.1, architecture: str = "auto", latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
                 beta1: float = 0.5, ema_decay: float | None = 0.999, ema_warmup: bool = False, lam: float = 0.1,
                 search_steps: int = 500, search_lr: float = 0.01, preprocessing: str = "auto",
                 max_train_samples: int | None = None,
                 min_steps: int | None = None, random_state: int | None = None, device: str = "auto",
                 verbose: bool | str = False, checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                 score_batch_size: int = 1024, score_dtype: str = "float32",
                 score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.ema_decay = ema_decay
        self.ema_warmup = ema_warmup
        self.lam = lam
        self.search_steps = search_steps
        self.search_lr = search_lr
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
        """``paper``: the architecture's table and Γ = 500. ``quick``: KDD99-sized sets on a 50 000-row
        subsample, 10 epochs at lr 1e-4, Γ = 20 at search_lr 0.05 (the search over every train and test
        row is most of the run); Arrhythmia-sized sets as ``paper`` with Γ = 100 at 0.02; images 3 epochs
        on 1 500 images, Γ = 20 at 0.05. ``smoke``: seconds."""
        shape = tuple(dataset.X.shape)
        name = getattr(dataset, "name", "")
        image = len(shape) >= 3
        big = not image and shape[0] >= 2 * KDD_MIN_ROWS
        fast_search = {"search_steps": 20, "search_lr": 0.05}
        if budget == "smoke":
            return {"epochs": 2, "max_train_samples": 512 if image else 2000, "ema_warmup": True,
                    "search_steps": 5, "search_lr": 0.05}
        if budget == "quick":
            if name in list_datasets(embedded=True):
                return {"epochs": max(1, round(300 * 32 / (shape[0] / 2))), "ema_warmup": True, **fast_search}
            if image:
                return image_budget(3, 1500, ARCH_DEFAULTS["conv"]["batch_size"], ema_warmup=True, **fast_search)
            if big:
                return {"epochs": 10, "max_train_samples": 50_000, "learning_rate": 1e-4, "ema_warmup": True,
                        **fast_search}
            if name == "arrhythmia" or shape[0] < 1000:
                return {"search_steps": 100, "search_lr": 0.02}
            return {"epochs": 100, "ema_warmup": True, "search_steps": 100, "search_lr": 0.02}
        if budget == "paper":
            return {} if image or big or name == "arrhythmia" or shape[0] < 1000 else {"epochs": 100}
        raise ValueError(f"unknown budget {budget!r}")

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        arch = choose_architecture(self.architecture, X)
        table = ARCH_DEFAULTS[arch]
        pick = lambda name: getattr(self, name) if getattr(self, name) is not None else table[name]  # noqa: E731
        return {"architecture": arch, "input_shape": list(X.shape[1:]), "latent_dim": int(pick("latent_dim")),
                "epochs": int(pick("epochs")), "batch_size": int(pick("batch_size")),
                "learning_rate": float(pick("learning_rate"))}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        arch, shape, k = config["architecture"], config["input_shape"], config["latent_dim"]
        if arch == "conv":
            # DCGAN: strided (transposed) convs, batch norm (not on D's first layer), ReLU in G, LeakyReLU
            # 0.2 in D, tanh output; f = D's last 4×4 feature map. Widths as ALAD's conv networks.
            widths = (128, 256, 512) if shape[1] >= 32 else (32, 64, 128)
            G = conv_decoder(k, shape, tuple(reversed(widths)), out_act="tanh")
            D = FeatureDiscriminator(conv_encoder(shape, None, widths, batch_norm=[False, True, True]),
                                     conv_encoder_features(shape, widths))
            return {"G": init_weights(G, "normal", std=0.02), "D": init_weights(D, "normal", std=0.02)}
        d = shape[0]
        if arch == "kdd":   # G k→64→128→d (ReLU); D d→256→128→128 (LeakyReLU, dropout .2) → 1
            G = mlp(k, [64, 128], d, act="relu")
            D = FeatureDiscriminator(mlp(d, [256, 128, 128], act="lrelu", dropout=0.2), 128)
        else:               # G k→128→256→d; D d→256 (dropout .2)→128 (dropout .5) → 1
            G = mlp(k, [128, 256], d, act="relu")
            D = FeatureDiscriminator(mlp(d, [256, 128], act="lrelu", dropout=[0.2, 0.5]), 128)
        return {"G": init_weights(G, "xavier"), "D": init_weights(D, "xavier")}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return config["epochs"], config["batch_size"]

    def _ema(self, config: dict) -> dict[str, float]:
        return {} if self.ema_decay is None else {"G": float(self.ema_decay), "D": float(self.ema_decay)}

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        G, D = nets["G"], nets["D"]
        k, lr, betas = config["latent_dim"], config["learning_rate"], (self.beta1, 0.999)

        def noise(n: int, like: torch.Tensor) -> torch.Tensor:
            return torch.randn(n, k, generator=generator, device=generator.device).to(like.device)

        def d_loss(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                fake = G(noise(len(x), x))
            return bce(D(x)[0], 1.0) + bce(D(fake)[0], 0.0)

        def g_loss(x: torch.Tensor) -> torch.Tensor:
            return bce(D(G(noise(len(x), x)))[0], 1.0)  # non-saturating

        return [UpdateStep("D", d_loss, torch.optim.Adam(D.parameters(), lr=lr, betas=betas), ["D"]),
                UpdateStep("G", g_loss, torch.optim.Adam(G.parameters(), lr=lr, betas=betas), ["G"])]

    # ------------------------------------------------------------------ scoring: latent search
    def _fit(self, X: np.ndarray, y: np.ndarray | None, **kwargs: Any) -> None:
        super()._fit(X, None, **kwargs)
        # the latent search draws its starting points from this seed: same model ⇒ same scores
        seed = self.random_state
        self.search_seed_ = int(np.random.SeedSequence(seed).generate_state(1)[0])

    def _search(self, G: nn.Module, D: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Γ Adam steps on every row's own z (G and D frozen by the caller); returns A(x) per row."""
        lam = float(self.lam)
        with torch.no_grad():
            _, f_x = D(x)

        def loss_per_row(z: torch.Tensor) -> torch.Tensor:
            x_gen = G(z)
            _, f_gen = D(x_gen)
            residual = (x - x_gen).abs().flatten(1).sum(dim=1)
            feature = (f_x - f_gen).abs().sum(dim=1)
            return (1.0 - lam) * residual + lam * feature

        z = z.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=float(self.search_lr))
        for _ in range(int(self.search_steps)):
            opt.zero_grad(set_to_none=True)
            loss_per_row(z).sum().backward()
            opt.step()
        with torch.no_grad():
            return loss_per_row(z)

    def _score(self, X: np.ndarray) -> np.ndarray:
        nets = self._scoring_networks()  # float32: `score_dtype` allows nothing else here
        G, D = nets["G"], nets["D"]
        k = self.config_["latent_dim"]
        out = np.empty(len(X))
        bs = int(self.score_batch_size)
        with eval_mode(G, D), frozen(G, D), torch.inference_mode(False), torch.enable_grad():
            for start in range(0, len(X), bs):
                x = torch.from_numpy(self._transform(X[start:start + bs])).to(self.device_)
                z0 = torch.from_numpy(self._start_points(X[start:start + bs], k)).to(self.device_)
                out[start:start + len(x)] = self._search(G, D, x, z0).to("cpu", torch.float64).numpy()
        return out

    def _start_points(self, rows: np.ndarray, k: int) -> np.ndarray:
        """z₀ of each row, drawn from a generator seeded by the model's search seed and the row's bytes:
        a row starts from the same z whatever else is scored with it, in whichever chunk."""
        digests = (hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8).digest() for row in rows)
        return np.stack([np.random.default_rng([self.search_seed_, int.from_bytes(d, "little")])
                         .standard_normal(k, dtype=np.float32) for d in digests]) if len(rows) else \
            np.empty((0, k), np.float32)

    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = super()._fitted_state()
        meta["search_seed"] = self.search_seed_
        return meta, arrays

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._restore_fitted_state(meta, arrays)
        self.search_seed_ = int(meta["search_seed"])
