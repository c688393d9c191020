"""`TorchDetector`: the bridge between the estimator contract (`advad.base`) and the training engine
(`advad.engine`). Every PyTorch detector subclasses it and declares, without writing loops:

- ``_network_config(X) -> dict``: a JSON-able description of the networks chosen for this data
  (architecture, dimensions); saved in the model file so the networks can be rebuilt;
- ``_build_networks(config) -> dict[str, nn.Module]``: the networks, a pure function of the config;
- ``_update_steps(nets, generator, config) -> list[UpdateStep]``: optimisers and losses, in order;
- ``_schedule(config) -> (epochs, batch_size)``; ``_ema(config) -> {network: decay}`` (default none);
  ``_selector(config) -> Selector | None`` (default none);
- ``_score_tensor(nets, x) -> Tensor (n,)``: anomaly score of a batch with the inference networks
  (moving averages when kept), already in eval mode under ``inference_mode``;
- ``_prepare(nets, X, generator)`` (optional): work before training, e.g. pretraining.

It owns input scaling (fitted on the training rows and saved), the optional training subsample, the
seeded and device-placed fit, checkpoints and resume (``fit(X, resume=True)``), batched scoring (chunks
of ``score_batch_size`` rows, on CPU at most ``CPU_CHUNK_VALUES`` input values), and saving every
network's weights (and their moving averages) to the safe model file.
"""

from __future__ import annotations

import hashlib
import json
import math
import types
from typing import Any

import numpy as np
import torch
from torch import nn

from advad.base import BaseDetector, InputError, one_of, positive_int
from advad.engine import (Checkpoint, Selector, Trainer, UpdateStep, batched_inference,
                          data_fingerprint, frozen_copy, iterations_per_epoch, resolve_device, seeded, threads)

PREPROCESSING = ("auto", "none", "standard", "minmax", "image")
# Scoring on CPU in chunks of at most this many input values (KDD99: ~1 000 rows, 28×28 images: ~170)
# is faster than in 4 096-row chunks that spill the cache — 1.0–1.2× on tabular rows, 2.3–3.4× on
# images, with a fraction of the memory (docs/performance.md). bfloat16 networks (oneDNN on AMX) want
# larger chunks: ALAD's KDD99 `decision_function`, one thread, 0.42 M rows/s at 1 024 rows, 0.52 M at
# 2 048, 0.57–0.61 M at 4 096, 0.45–0.47 M at 8 192 (float32: 0.36–0.40 M at 1 024–1 083).
CPU_CHUNK_VALUES = {"float32": 2**17, "bfloat16": 2**19}
# ``score_dtype``: the precision the networks score in; ``train_dtype``: that of the losses' operations
# during training (torch.autocast; weights, gradients and optimiser states stay float32)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def image_budget(epochs: int, rows: int, batch: int, **params: Any) -> dict:
    """Bench parameters of an image budget: `epochs` over a seeded subsample of `rows` training images,
    and on a smaller training split (a class of offline MNIST: ~800 images) as many updates as `rows`
    images give in batches of `batch` (``min_steps``)."""
    return {"epochs": epochs, "max_train_samples": rows, "min_steps": epochs * iterations_per_epoch(rows, batch), **params}


class TorchDetector(BaseDetector):
    """Base of the PyTorch detectors. Subclasses must accept (at least) these keyword parameters:
    ``contamination, random_state, device, verbose, preprocessing, max_train_samples, min_steps, checkpoint_dir,
    checkpoint_every, score_batch_size, score_dtype, score_compile, train_dtype``."""

    # parameters that do not change the fitted result (left out of the checkpoint fingerprint)
    _RUNTIME_PARAMS = ("verbose", "checkpoint_dir", "checkpoint_every", "score_batch_size", "score_dtype",
                       "score_compile", "device")
    param_rules = {**BaseDetector.param_rules, "score_dtype": one_of(*DTYPES),
                   "score_compile": one_of(False, True), "train_dtype": one_of(*DTYPES), "min_steps": positive_int()}
    # made on first use from the fitted networks; never saved, pickled or copied
    _SCORING_CACHES = ("_frozen_networks", "_compiled_score")

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k not in self._SCORING_CACHES}

    # ------------------------------------------------------------------ hooks
    def _network_config(self, X: np.ndarray) -> dict:
        raise NotImplementedError

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        raise NotImplementedError

    def _schedule(self, config: dict) -> tuple[int, int]:
        raise NotImplementedError

    def _ema(self, config: dict) -> dict[str, float]:
        return {}

    def _selector(self, config: dict, X: torch.Tensor) -> Selector | None:
        return None

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _selection_rows(self, X: torch.Tensor) -> torch.Tensor:
        """The training rows an unsupervised selection criterion is computed on: all of them, or a
        seeded sample of ``selection_samples`` (a parameter of the detectors that select epochs)."""
        n = min(len(X), int(self.selection_samples))
        if n == len(X):
            return X
        rng = np.random.default_rng(self.random_state)
        idx = torch.from_numpy(np.sort(rng.choice(len(X), size=n, replace=False))).to(X.device)
        return X[idx]

    def _prepare(self, nets: dict[str, nn.Module], X: torch.Tensor, generator: torch.Generator) -> None:
        """Runs once the networks are built and the scaled training rows `X` are on the device, before
        the update steps are declared and training (or a resumed checkpoint) starts: pretraining,
        statistics of an initial forward pass (Deep SVDD's centre). Default: nothing."""

    # ------------------------------------------------------------------ preprocessing
    def _fit_preprocessing(self, X: np.ndarray) -> None:
        how = getattr(self, "preprocessing", "auto")
        if how not in PREPROCESSING:
            raise InputError(f"preprocessing must be one of {PREPROCESSING}; got {how!r}")
        if how == "auto":
            how = "image" if X.ndim == 4 else "standard"
        shape = (1, *X.shape[1:])
        if how == "none":
            shift, scale = np.zeros(1, np.float32), np.ones(1, np.float32)
        elif how == "image":  # one global range → [-1, 1] (the DCGAN/tanh convention of the papers)
            lo, hi = float(X.min()), float(X.max())
            shift, scale = np.asarray([(hi + lo) / 2], np.float32), np.asarray([max((hi - lo) / 2, 1e-12)], np.float32)
        elif how == "standard":
            shift = X.mean(axis=0, dtype=np.float64).reshape(shape)
            scale = X.std(axis=0, dtype=np.float64).reshape(shape)
            scale[scale < 1e-8] = 1.0  # constant columns (e.g. a one-hot level never seen) stay as they are
        else:  # minmax → [0, 1]
            lo, hi = X.min(axis=0).reshape(shape), X.max(axis=0).reshape(shape)
            shift, scale = lo, hi - lo
            scale[scale < 1e-8] = 1.0
        self.preprocessing_ = how
        self.shift_ = np.asarray(shift, np.float32)
        self.scale_ = np.asarray(scale, np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if self.preprocessing_ == "none":
            return np.ascontiguousarray(X, dtype=np.float32)
        return ((X - self.shift_) / self.scale_).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ fit
    def _fingerprint(self, X: np.ndarray, device: torch.device) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in self._RUNTIME_PARAMS}
        text = json.dumps({"params": params, "class": type(self).__name__, "device": device.type},
                          sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16] + "-" + data_fingerprint(X)

    def _n_threads(self, config: dict, batch_size: int) -> int | None:
        """CPU threads for training. Small MLPs on small batches are fastest on one thread (the
        per-op threading overhead exceeds the work, measured on 2 cores); other models use every CPU
        this process may run on (or $OMP_NUM_THREADS)."""
        if len(config.get("input_shape", [])) == 1 and batch_size <= 256:
            return 1
        return None

    def _epoch_scale(self, epochs: int, batch_size: int, n_rows: int) -> float:
        """How many times more epochs ``min_steps`` asks for on `n_rows` training rows (≥ 1)."""
        min_steps = getattr(self, "min_steps", None)
        if min_steps is None:
            return 1.0
        return max(1.0, int(min_steps) / max(1, epochs * iterations_per_epoch(n_rows, batch_size)))

    def _scaled_epochs(self, epochs: int) -> int:
        """`epochs` of a training phase (pretraining too) times the fit's ``epoch_scale_``."""
        return int(math.ceil(epochs * self.epoch_scale_ - 1e-9))

    def _progress(self) -> bool:
        verbose = getattr(self, "verbose", False)
        if verbose == "auto":
            import sys

            return sys.stderr.isatty()
        return bool(verbose)

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, resume: bool = False,
             checkpoint_dir: str | None = None, checkpoint_interval: float = 0.0,
             on_divergence: str | None = None) -> None:
        """``on_divergence`` (a fit keyword, or a detector parameter of that name): ``"raise"`` (default)
        stops at a NaN/inf loss; ``"rollback"`` restores the last good epoch and halves the learning rates
        (at most 3 times, then raises). The rollbacks made are listed in ``rollbacks_``.
        ``checkpoint_interval``: seconds between checkpoint writes at the least (0: every
        ``checkpoint_every`` epochs; ``advad bench`` uses 60, so short fits write none)."""
        on_divergence = on_divergence or getattr(self, "on_divergence", "raise")
        if on_divergence not in ("raise", "rollback"):
            raise InputError(f"on_divergence must be 'raise' or 'rollback'; got {on_divergence!r}")
        device = resolve_device(getattr(self, "device", "auto"))
        max_rows = getattr(self, "max_train_samples", None)
        if max_rows is not None and len(X) > int(max_rows):
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(len(X), size=int(max_rows), replace=False))]
        self.n_train_rows_ = len(X)
        self._fit_preprocessing(X)
        Xp = self._transform(X)
        config = self._network_config(Xp)
        epochs, batch_size = self._schedule(config)
        self.epoch_scale_ = self._epoch_scale(epochs, batch_size, len(Xp))
        if self.epoch_scale_ > 1:
            epochs = self._scaled_epochs(epochs)
            if "epochs" in config:  # schedules tied to the epoch count (selection, AMA's atypical start) follow
                config["epochs"] = epochs
        checkpoint_dir = checkpoint_dir or getattr(self, "checkpoint_dir", None)
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = Checkpoint(checkpoint_dir, every=int(getattr(self, "checkpoint_every", 1) or 1),
                                    resume=resume, fingerprint=self._fingerprint(Xp, device),
                                    min_interval=float(checkpoint_interval))
        elif resume:
            raise InputError("fit(resume=True) needs a checkpoint folder: set checkpoint_dir=... on the "
                             "detector or pass fit(X, resume=True, checkpoint_dir=...)")
        with threads(self._n_threads(config, batch_size)), seeded(self.random_state, device) as generator:
            nets = {k: m.to(device) for k, m in self._build_networks(config).items()}
            Xt = torch.from_numpy(Xp).to(device)
            self._prepare(nets, Xt, generator)
            trainer = Trainer(
                networks=nets, steps=self._update_steps(nets, generator, config), epochs=epochs,
                batch_size=batch_size, generator=generator, ema=self._ema(config),
                ema_warmup=bool(getattr(self, "ema_warmup", False)), selector=self._selector(config, Xt),
                checkpoint=checkpoint, progress=self._progress(), description=type(self).__name__,
                on_divergence=on_divergence,
                autocast_dtype=None if self.train_dtype == "float32" else DTYPES[self.train_dtype])
            trainer.fit(Xt)
            del Xt
        self.device_ = device
        self.config_ = config
        self.networks_ = nets
        self.inference_networks_ = {k: trainer.inference_network(k) for k in nets}
        self.history_ = trainer.history
        self.rollbacks_ = trainer.rollbacks
        self.epochs_trained_ = trainer.epoch
        self.best_epoch_ = trainer.best_epoch
        self.seconds_per_epoch_ = (float(np.mean(trainer.seconds_per_epoch)) if trainer.seconds_per_epoch else None)

    # ------------------------------------------------------------------ score
    def _chunk_rows(self) -> int:
        """Rows per scoring chunk: ``score_batch_size``, on CPU at most ``CPU_CHUNK_VALUES`` input values."""
        rows = int(self.score_batch_size)
        if self.device_.type == "cpu":
            rows = min(rows, max(1, CPU_CHUNK_VALUES[self.score_dtype] // self.n_features_in_))
        return rows

    def _scoring_networks(self) -> dict[str, nn.Module]:
        """The networks scores are computed with: the inference networks, or with ``score_dtype="bfloat16"``
        or ``score_compile=True`` their frozen copies in ``score_dtype`` (float32 in and out, spectral
        norms baked in; made once per fitted or loaded model)."""
        BaseDetector._check_params(self, ("score_dtype", "score_compile"))  # runtime: may change after fit
        nets = self.inference_networks_
        if self.score_dtype == "float32" and not self.score_compile:
            return nets
        cached = self.__dict__.get("_frozen_networks")
        if cached is None or cached[0] is not nets or cached[1] != self.score_dtype:
            dtype = DTYPES[self.score_dtype]
            self._frozen_networks = (nets, self.score_dtype, {k: frozen_copy(v, dtype) for k, v in nets.items()})
        return self._frozen_networks[2]

    def _score(self, X: np.ndarray) -> np.ndarray:
        nets = self._scoring_networks()
        fn = self._compiled(nets) if self.score_compile else (lambda xb: self._score_tensor(nets, xb))
        return batched_inference(fn, self._transform_lazy(X), device=self.device_, batch_size=self._chunk_rows(),
                                 modules=list(nets.values()), pad=self.score_compile)

    def _compiled(self, nets: dict[str, nn.Module]):
        """``_score_tensor`` on `nets` through `torch.compile` (``score_compile=True``): compiled at the first
        call for one chunk shape (`batched_inference` pads the last chunk) and kept until the networks change."""
        cached = self.__dict__.get("_compiled_score")
        if cached is None or cached[0] is not nets:
            def score(xb: torch.Tensor) -> torch.Tensor:
                return self._score_tensor(nets, xb)

            # torch keeps compiled code per code object, at most `cache_size_limit` (8) variants, then
            # silently runs eager: a copy of the code per model keeps one model's variants from using up
            # another's (a benchmark scores many models in one process)
            score = types.FunctionType(score.__code__.replace(), score.__globals__, "score", None, score.__closure__)
            compiled = torch.compile(score, dynamic=False)

            def first_call(xb: torch.Tensor) -> torch.Tensor:
                try:
                    out = compiled(xb)
                except Exception as err:  # a missing C++ compiler, an unsupported operation...
                    raise RuntimeError(f"score_compile=True: torch.compile could not compile {type(self).__name__}'s "
                                       f"score here ({type(err).__name__}); set score_compile=False") from err
                self._compiled_score = (nets, compiled)
                return out

            self._compiled_score = (nets, first_call)
        return self._compiled_score[1]

    def _transform_lazy(self, X: np.ndarray) -> "_Lazy":
        return _Lazy(X, self._transform)

    # ------------------------------------------------------------------ latents and reconstructions
    def _encode_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Latent code of a batch: E(x) for the methods with an encoder network ``E``."""
        if "E" not in nets:
            raise NotImplementedError(f"{type(self).__name__} has no encoder network")
        return nets["E"](x)

    def _reconstruct_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of a batch: G(E(x)) for the methods with an encoder ``E`` and generator ``G``."""
        if "G" not in nets:
            raise NotImplementedError(f"{type(self).__name__} does not reconstruct its input")
        return nets["G"](self._encode_tensor(nets, x))

    def _apply(self, X: Any, fn) -> np.ndarray:
        self._check_fitted()
        X = self._validate(X, fitting=False)
        nets = self._scoring_networks()
        return batched_inference(lambda xb: fn(nets, xb).flatten(1), self._transform_lazy(X), device=self.device_,
                                 batch_size=self._chunk_rows(), modules=list(nets.values()))

    def encode(self, X: Any) -> np.ndarray:
        """Latent code of each row, shape (n, latent_dim) (NotImplementedError for methods without one)."""
        return self._apply(X, self._encode_tensor)

    def reconstruct(self, X: Any) -> np.ndarray:
        """The method's reconstruction of each row, in the input's units and shape (the fitted scaling
        undone); NotImplementedError for methods that do not reconstruct."""
        out = self._apply(X, self._reconstruct_tensor).reshape((-1, *self.input_shape_)).astype(np.float32)
        return out if self.preprocessing_ == "none" else out * self.scale_ + self.shift_

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {"pre.shift": self.shift_, "pre.scale": self.scale_}
        ema_names = []
        for name, net in self.networks_.items():
            for k, t in net.state_dict().items():
                arrays[f"net.{name}.{k}"] = t.detach().cpu().numpy()
            if self.inference_networks_[name] is not net:
                ema_names.append(name)
                for k, t in self.inference_networks_[name].state_dict().items():
                    arrays[f"ema.{name}.{k}"] = t.detach().cpu().numpy()
        meta = {"config": self.config_, "preprocessing": self.preprocessing_, "ema": ema_names,
                "history": self.history_, "epochs_trained": self.epochs_trained_, "best_epoch": self.best_epoch_,
                "n_train_rows": self.n_train_rows_, "seconds_per_epoch": self.seconds_per_epoch_,
                "epoch_scale": self.epoch_scale_}
        return meta, arrays

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.device_ = resolve_device(getattr(self, "device", "auto"))
        self.config_ = meta["config"]
        self.preprocessing_ = meta["preprocessing"]
        self.shift_, self.scale_ = arrays["pre.shift"], arrays["pre.scale"]
        self.history_ = meta.get("history", [])
        self.epochs_trained_ = meta.get("epochs_trained")
        self.best_epoch_ = meta.get("best_epoch")
        self.n_train_rows_ = meta.get("n_train_rows")
        self.seconds_per_epoch_ = meta.get("seconds_per_epoch")
        self.epoch_scale_ = meta.get("epoch_scale", 1.0)

        def load(prefix: str) -> dict[str, nn.Module]:
            nets = self._build_networks(self.config_)
            for name, net in nets.items():
                pre = f"{prefix}.{name}."
                state = {k[len(pre):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(pre)}
                net.load_state_dict(state, strict=True)
                net.to(self.device_).eval()
            return nets

        self.networks_ = load("net")
        ema = set(meta.get("ema", []))
        averaged = load("ema") if ema else {}
        self.inference_networks_ = {k: (averaged[k] if k in ema else v) for k, v in self.networks_.items()}


class _Lazy:
    """Row-sliceable view that applies the input scaling chunk by chunk (no full scaled copy)."""

    def __init__(self, X: np.ndarray, fn):
        self.X, self.fn = X, fn

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx: slice) -> np.ndarray:
        return self.fn(self.X[idx])
