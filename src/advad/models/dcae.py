"""`dcae`: the deep convolutional autoencoder baseline — the `ae` baseline's image form with the
networks of the papers' DCAE column.

RCGAN's Table 2 DCAE numbers on CIFAR-10 are those of the Deep SVDD paper (Ruff et al., ICML 2018,
Table 1), whose DCAE is the autoencoder Deep SVDD pretrains with: the LeNet-type encoder of Section 4.1
(28×28: two 5×5 conv modules of 8 and 4 channels, 32 output units; 32×32: three modules of 32, 64 and
128 channels, 128 units; bias-free, batch norm without affine parameters, LeakyReLU, 2×2 max-pooling)
and a symmetric decoder (upsampling + 5×5 convs). Those networks come from `advad.models.deepsvdd`;
training (MSE, Adam with weight decay) and the score (squared reconstruction error, ranked as its L2
norm) are `ae`'s. Tabular rows get `ae`'s MLP. See docs/models/baselines.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from advad.base import positive_int
from advad.models._torch import TorchDetector, image_budget
from advad.models.ae import AutoEncoder
from advad.models.registry import register
from advad.nets import EncoderDecoder, lenet_architecture, lenet_decoder, lenet_encoder

TABULAR_LATENT = 16  # `ae`'s default bottleneck for tabular rows


@register("dcae")
class DCAE(AutoEncoder):
    """Deep convolutional autoencoder (reconstruction error), the Deep SVDD paper's DCAE for images.

    Parameters as `advad.models.ae.AutoEncoder`, with the DCAE paper's training defaults (Adam lr 1e-4,
    weight decay 5e-7, batch 200, 350 epochs: its 250 + 100 without the ten-fold learning-rate drop);
    ``latent_dim=None`` takes the paper's code size for images (32 for 28×28, 128 for 32×32) and `ae`'s
    16 for tabular rows; `hidden`, `dropout`, `batch_norm` concern tabular rows only.
    """

    param_rules = {**TorchDetector.param_rules, "latent_dim": positive_int(), "epochs": positive_int(optional=False),
                   "batch_size": positive_int(optional=False)}

    def __init__(self, contamination: float = 0.1, hidden: tuple[int, ...] | list[int] = (64, 32),
                 latent_dim: int | None = None, dropout: float = 0.1, batch_norm: bool = True, epochs: int = 350,
                 batch_size: int = 200, learning_rate: float = 1e-4, weight_decay: float = 5e-7,
                 preprocessing: str = "auto", max_train_samples: int | None = None, min_steps: int | None = None,
                 random_state: int | None = None, device: str = "auto", verbose: bool | str = False,
                 checkpoint_dir: str | None = None, checkpoint_every: int = 1, score_batch_size: int = 4096,
                 score_dtype: str = "float32", score_compile: bool = False, train_dtype: str = "float32"):
        super().__init__(contamination=contamination, hidden=hidden, latent_dim=latent_dim, dropout=dropout,
                         batch_norm=batch_norm, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         weight_decay=weight_decay, preprocessing=preprocessing, max_train_samples=max_train_samples,
                         min_steps=min_steps,
                         random_state=random_state, device=device, verbose=verbose, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, score_batch_size=score_batch_size,
                         score_dtype=score_dtype, score_compile=score_compile,
                         train_dtype=train_dtype)

    def _check_params(self) -> None:
        TorchDetector._check_params(self)  # AutoEncoder's own check wants an integer latent_dim

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        """Images: ``paper`` the defaults (350 epochs, batch 200); ``quick`` 20 epochs on 3 000 training
        images at batch 64 (the small networks take seconds an epoch); ``smoke`` 2 epochs. Tabular rows:
        `ae`'s budgets."""
        if len(dataset.X.shape) < 3:
            return AutoEncoder.bench_params(dataset, budget)
        if budget == "smoke":
            return {"epochs": 2, "max_train_samples": 512}
        if budget == "quick":
            return image_budget(20, 3000, 64, batch_size=64)
        if budget == "paper":
            return {}
        raise ValueError(f"unknown budget {budget!r}")

    def _network_config(self, X: np.ndarray) -> dict:
        shape = list(X.shape[1:])
        image = X.ndim == 4
        arch = lenet_architecture(shape) if image else {"widths": [], "rep_dim": TABULAR_LATENT}
        latent = self.latent_dim if self.latent_dim is not None else arch["rep_dim"]
        return {"input_shape": shape, "conv": image, "hidden": [int(h) for h in self.hidden],
                "latent_dim": int(latent), "dropout": float(self.dropout), "batch_norm": bool(self.batch_norm),
                "widths": arch["widths"]}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        if not config["conv"]:
            return super()._build_networks(config)
        shape, widths, k = config["input_shape"], config["widths"], config["latent_dim"]
        encoder, sizes = lenet_encoder(shape, widths, k)
        return {"ae": EncoderDecoder(encoder, lenet_decoder(shape, widths, k, sizes))}
