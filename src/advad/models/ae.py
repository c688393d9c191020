"""`ae`: the autoencoder baseline — reconstruction error of a PyTorch autoencoder trained on normal data.

An MLP (tabular) or DCGAN-style convolutional (images) autoencoder trained with mean squared error by
Adam, on the training engine (seeding, batching, checkpoints, NaN guard, batched scoring). The score of
a row is its squared reconstruction error summed over features, in the scaled input space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import InputError
from advad.data import list_datasets
from advad.engine import UpdateStep
from advad.models._torch import TorchDetector
from advad.models.registry import register
from advad.nets import EncoderDecoder, conv_decoder, conv_encoder, init_weights, mlp


@register("ae")
class AutoEncoder(TorchDetector):
    """Autoencoder anomaly detector (reconstruction error).

    Parameters
    ----------
    hidden : widths of the encoder's hidden layers (the decoder mirrors them); images use
        conv layers instead (`hidden` then gives nothing).
    latent_dim : bottleneck width.
    dropout, batch_norm : per hidden layer of the MLP.
    epochs, batch_size, learning_rate, weight_decay : Adam training.
    preprocessing : ``"auto"`` (standardise tabular data; images to [-1, 1]), ``"none"``,
        ``"standard"``, ``"minmax"``, ``"image"``.
    Others as every torch detector (see `advad.models.alad.ALAD`).
    """

    def __init__(self, contamination: float = 0.1, hidden: tuple[int, ...] | list[int] = (64, 32),
                 latent_dim: int = 16, dropout: float = 0.1, batch_norm: bool = True, epochs: int = 100,
                 batch_size: int = 64, learning_rate: float = 1e-3, weight_decay: float = 1e-5,
                 preprocessing: str = "auto", max_train_samples: int | None = None, min_steps: int | None = None,
                 random_state: int | None = None, device: str = "auto", verbose: bool | str = False,
                 checkpoint_dir: str | None = None, checkpoint_every: int = 1, score_batch_size: int = 4096,
                 score_dtype: str = "float32", score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
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

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("latent_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive integer; got {value!r}")

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        shape = tuple(dataset.X.shape)
        big = len(shape) == 2 and shape[0] >= 40_000
        if budget == "smoke":
            return {"epochs": 2, "max_train_samples": 2000}
        if budget == "quick":
            if getattr(dataset, "name", "") in list_datasets(embedded=True):
                return {"epochs": 20}  # the no-argument `advad bench` demo
            return {"epochs": 10, "batch_size": 256} if big else {"epochs": 50 if len(shape) == 2 else 5}
        if budget == "paper":
            return {"epochs": 50, "batch_size": 256} if big else {}
        raise ValueError(f"unknown budget {budget!r}")

    def _network_config(self, X: np.ndarray) -> dict:
        return {"input_shape": list(X.shape[1:]), "conv": X.ndim == 4, "hidden": [int(h) for h in self.hidden],
                "latent_dim": int(self.latent_dim), "dropout": float(self.dropout),
                "batch_norm": bool(self.batch_norm)}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        shape, k = config["input_shape"], config["latent_dim"]
        if config["conv"]:
            widths = (128, 256, 512) if shape[1] >= 32 else (32, 64, 128)
            net = EncoderDecoder(conv_encoder(shape, k, widths), conv_decoder(k, shape, tuple(reversed(widths))))
        else:
            d, hidden = shape[0], config["hidden"]
            kw = {"act": "relu", "batch_norm": config["batch_norm"], "dropout": config["dropout"]}
            net = EncoderDecoder(mlp(d, hidden, k, **kw), mlp(k, list(reversed(hidden)), d, **kw))
        return {"ae": init_weights(net, "xavier")}

    def _schedule(self, config: dict) -> tuple[int, int]:
        return int(self.epochs), int(self.batch_size)

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        ae = nets["ae"]

        def loss(x: torch.Tensor) -> torch.Tensor:
            return (ae(x) - x).pow(2).mean()

        opt = torch.optim.Adam(ae.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        return [UpdateStep("ae", loss, opt, ["ae"])]

    def _reconstruct_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return nets["ae"](x)

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return (nets["ae"](x) - x).pow(2).flatten(1).sum(dim=1)
