"""The adversarial training engine: one readable driver for every multi-network method in advad.

A method declares *what* to train — its networks, the update steps (loss function + optimiser +
networks it trains, repeated ``repeat`` times, e.g. ``n_critic`` critic steps), which networks get a
moving average — and `Trainer` does the rest:

- seeding (`seeded`): a ``torch.Generator`` for shuffling and noise, the global RNG (dropout) forked
  and seeded, so the same seed gives the same weights on the same device; device ``"auto"`` → CUDA
  when available (`resolve_device`); CPU threads set once (`configure_threads`);
- batching straight from an in-memory tensor (no DataLoader), reshuffled every epoch with the seeded
  generator; every step draws its own batch unless it says ``new_batch=False`` (same batch as the
  step before);
- exponential moving average of weights (``torch.optim.swa_utils.AveragedModel``), updated after
  every optimiser step of the networks it tracks; buffers (batch-norm statistics, spectral-norm
  vectors) follow the live network;
- losses accumulated as tensors and synchronised with the host once per epoch (and every
  ``progress_every`` steps when a progress bar is shown), so CPU↔GPU syncs do not slow training;
- a guard that stops with `TrainingDiverged` naming the step, its networks and the epoch when a loss
  becomes NaN/inf, or, with ``on_divergence="rollback"``, restores the state at the start of that
  epoch, multiplies every learning rate by ``rollback_lr_factor`` and retries (at most
  ``max_rollbacks`` times, then raises);
- an unsupervised model-selection hook (`Selector`): after each epoch from ``start_epoch`` a
  criterion is computed and the weights with the best value are kept and restored at the end;
- an epoch-level checkpoint (`Checkpoint`), written atomically as safetensors + JSON (no pickle),
  holding networks, optimisers, moving averages, the selector's best weights, history and every RNG
  state, so a fit killed at any point resumes to the same result as an uninterrupted run;
- batched scoring (`batched_inference`) under ``eval()`` + ``inference_mode``, chunk by chunk from a
  NumPy array, so memory stays flat in the number of rows.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from advad.serialization import atomic_write_bytes

__all__ = [
    "TrainingDiverged", "CheckpointError", "UpdateStep", "Selector", "Checkpoint", "Trainer",
    "resolve_device", "configure_threads", "threads", "seeded", "batched_inference", "eval_mode", "data_fingerprint",
    "frozen_copy", "bce",
]

CHECKPOINT_FORMAT = 1
CHECKPOINT_FILE = "checkpoint.safetensors"


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite during training."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used for this fit (other data, other parameters, damaged file)."""


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean sigmoid cross-entropy of `logits` against a constant label (the GAN losses of every method)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# --------------------------------------------------------------------------- device, threads, seeds
def iterations_per_epoch(n_rows: int, batch_size: int) -> int:
    """Batches a `Trainer` epoch runs on `n_rows` rows (by default): n // batch, batches capped at n, at least 1."""
    return max(1, n_rows // max(1, min(batch_size, n_rows)))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None → ``cuda`` when available, else ``cpu``; anything else as torch reads it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def configure_threads(n_threads: int | None = None) -> int:
    """Set torch's CPU intra-op threads: `n_threads`, else $OMP_NUM_THREADS, else the CPUs this process
    may run on (``sched_getaffinity``, which respects container limits). Returns the count."""
    if n_threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        if env and env.isdigit() and int(env) > 0:
            n_threads = int(env)
        else:
            try:
                n_threads = len(os.sched_getaffinity(0))
            except AttributeError:  # macOS / Windows
                n_threads = os.cpu_count() or 1
    n_threads = max(1, int(n_threads))
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    return n_threads


@contextlib.contextmanager
def threads(n_threads: int | None) -> Iterator[int]:
    """Temporarily set torch's CPU threads (`configure_threads`), restoring the previous count."""
    previous = torch.get_num_threads()
    try:
        yield configure_threads(n_threads)
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[torch.Generator]:
    """Fork the global torch RNG (CPU and, on CUDA, that device), seed it, and yield a
    ``torch.Generator`` on `device` seeded from the same seed. The caller's RNG state is restored on
    exit, so fitting a detector never perturbs the user's random streams. ``seed=None`` draws one."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % (2**63))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=True):
        torch.manual_seed(seed)
        gen = torch.Generator(device=device)
        gen.manual_seed(seed + 1)
        yield gen


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put `modules` in eval mode (dropout off, batch norm on running statistics), then restore."""
    previous = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, previous):
            m.train(mode)


def batched_inference(fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray, *, device: torch.device,
                      batch_size: int = 4096, modules: Sequence[nn.Module] = (), pad: bool = False) -> np.ndarray:
    """Apply `fn` to `X` chunk by chunk under ``eval()`` and ``inference_mode`` and return a float64
    NumPy array of the per-row outputs. Only one chunk lives on the device at a time, so memory does
    not grow with the number of rows; a row's output does not depend on the other rows of its chunk.
    `pad` fills a short chunk up to `batch_size` rows with zeros (outputs dropped), so that a compiled
    `fn` always sees the one shape it was compiled for."""
    n = len(X)
    out: np.ndarray | None = None
    with eval_mode(*modules), torch.inference_mode(), parametrize.cached():  # spectral norms once per call
        for start in range(0, n, batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size])).to(device, torch.float32)
            rows = len(chunk)
            if pad and rows < batch_size:
                chunk = torch.cat([chunk, chunk.new_zeros((batch_size - rows, *chunk.shape[1:]))])
            res = fn(chunk)[:rows].detach().to("cpu", torch.float64).numpy()
            if out is None:
                out = np.empty((n, *res.shape[1:]), dtype=np.float64)
            out[start:start + len(res)] = res
    if out is None:
        return np.empty(0, dtype=np.float64)
    return out


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """`value` with every floating-point tensor in it (also inside tuples, lists, dicts) cast to `dtype`."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    return value


def _cast_inputs(_module: nn.Module, args: tuple, kwargs: dict, *, dtype: torch.dtype) -> tuple[tuple, dict]:
    return _cast_floats(args, dtype), _cast_floats(kwargs, dtype)


def _outputs_to_float32(_module: nn.Module, _args: tuple, output: Any) -> Any:
    return _cast_floats(output, torch.float32)


def frozen_copy(net: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of `net` for scoring: parametrized weights (spectral norm) evaluated once, in
    float32, and frozen in as plain weights (nothing left for `torch.compile` to guard on), computing in
    `dtype` (bfloat16 scoring) but taking and returning float32 — floating inputs are cast on the way in
    and floating outputs back, so a method's score arithmetic on the outputs stays in float32. `net`
    itself is not changed."""
    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        for module in [m for m in net.modules() if parametrize.is_parametrized(m)]:
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
            # what parametrize.remove_parametrizations does, except deleting the property from the
            # parametrized class, which the copy shares with `net`
            module.__class__ = module.__class__.__bases__[0]
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    net.to(dtype)
    net.register_forward_pre_hook(functools.partial(_cast_inputs, dtype=dtype), with_kwargs=True)
    net.register_forward_hook(_outputs_to_float32)
    return net


def data_fingerprint(X: np.ndarray | torch.Tensor) -> str:
    """Short hash of an array's shape and bytes (checkpoints refuse to resume on other data)."""
    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    h = hashlib.sha256(str((arr.shape, str(arr.dtype))).encode())
    h.update(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:24]


# --------------------------------------------------------------------------- declarations
@dataclass
class UpdateStep:
    """One optimiser update a method declares.

    ``loss(batch)`` returns the scalar loss to minimise, or ``(loss, {name: tensor})`` with extra
    values to log. Before calling it the engine enables gradients only for `networks` (the others are
    frozen, so no gradient is computed for them), zeroes `optimizer`'s gradients, and afterwards
    back-propagates and steps. `repeat` runs the step that many times per iteration (n_critic), each
    on a new batch; ``new_batch=False`` reuses the batch of the previous step (same rows for e.g. a
    discriminator step and the generator step after it).
    """

    name: str
    loss: Callable[[torch.Tensor], Any]
    optimizer: torch.optim.Optimizer
    networks: Sequence[str]
    repeat: int = 1
    new_batch: bool = True
    clip_grad_norm: float | None = None


@dataclass
class Selector:
    """Unsupervised model selection: after every `every`-th epoch from `start_epoch` (1-based),
    ``criterion(trainer)`` is computed (lower is better if ``mode="min"``); the networks and moving
    averages with the best value are kept and restored when training ends (MAESI's feature-loss rule)."""

    criterion: Callable[["Trainer"], float]
    start_epoch: int = 1
    every: int = 1
    mode: str = "min"


@dataclass
class Checkpoint:
    """Where and how often the engine saves its state: every `every` epochs and at the last, but not
    within `min_interval` seconds of the fit's start or the previous save (so short fits write nothing).
    `fingerprint` ties a checkpoint to the data and parameters: resuming with another one raises
    `CheckpointError` instead of mixing runs."""

    directory: str | os.PathLike
    every: int = 1
    resume: bool = False
    fingerprint: str = ""
    min_interval: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self.directory) / CHECKPOINT_FILE


# --------------------------------------------------------------------------- state (de)serialisation
def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON tree of `obj` with every tensor moved into `tensors` under a path key."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().to("cpu").clone().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        return {"__dict__": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot checkpoint a value of type {type(obj).__name__} at {prefix}")


def _unflatten(tree: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__dict__" in tree:
            return {k: _unflatten(v, tensors) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [_unflatten(v, tensors) for v in tree["__list__"]]
            return tuple(items) if tree.get("tuple") else items
        if "__float__" in tree:
            return float(tree["__float__"])
    return tree


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write a nested dict of tensors and JSON values as safetensors (data only)."""
    from safetensors.torch import save as st_save

    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, "s", tensors)
    data = st_save(tensors, metadata={"advad_state": json.dumps(tree)})
    atomic_write_bytes(path, data)


def load_state(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a `save_state` file. Never unpickles."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tree = json.loads((f.metadata() or {})["advad_state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # damaged / foreign file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); delete it "
                              "to start afresh") from err
    return _unflatten(tree, tensors)


# --------------------------------------------------------------------------- moving averages
def _ema_with_warmup(decay: float) -> Callable:
    """Like ``get_ema_multi_avg_fn`` but with TensorFlow's ``num_updates`` warm-up: the decay used at
    update n is min(decay, (1 + n) / (10 + n)), so short runs are not dominated by the initial weights."""

    @torch.no_grad()
    def update(ema_params, params, n_averaged) -> None:
        n = float(n_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(ema_params, params, 1.0 - d)

    return update


def make_ema(module: nn.Module, decay: float, warmup: bool = False) -> AveragedModel:
    fn = _ema_with_warmup(decay) if warmup else get_ema_multi_avg_fn(decay)
    return AveragedModel(module, multi_avg_fn=fn, use_buffers=False)


class _AverageUpdate:
    """``AveragedModel.update_parameters(live)`` (``use_buffers=False``) without its per-call cost: the
    parameter and buffer lists are built once and the update count is kept on the host, so an update is
    a ``_foreach`` call per tensor group and never a host-device sync. Same arithmetic, same state."""

    def __init__(self, average: AveragedModel, live: nn.Module) -> None:
        self.average = average
        groups: dict[tuple, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for a, p in zip(average.module.parameters(), live.parameters(), strict=True):
            pair = groups.setdefault((a.device, a.dtype), ([], []))
            pair[0].append(a.detach())
            pair[1].append(p.detach())
        self.groups = list(groups.values())
        self.buffers = ([b.detach() for b in average.module.buffers()], [b.detach() for b in live.buffers()])
        self.count: int | None = None  # None: read n_averaged (after a load)

    @torch.no_grad()
    def __call__(self) -> None:
        if self.count is None:
            self.count = int(self.average.n_averaged)
        for ema, live in self.groups:
            if self.count == 0:
                torch._foreach_copy_(ema, live)
            else:
                self.average.multi_avg_fn(ema, live, self.count)
        if self.buffers[0]:
            torch._foreach_copy_(*self.buffers)
        self.average.n_averaged.add_(1)
        self.count += 1


# --------------------------------------------------------------------------- the trainer
@dataclass
class Trainer:
    """Runs the declared update steps for `epochs` epochs over an in-memory tensor.

    One *iteration* runs every step in order (each `repeat` times); an epoch has ``n // batch_size``
    iterations (at least one; the last partial batch is dropped as the reference code does, while the
    shuffling changes every epoch so every row is seen).
    """

    networks: dict[str, nn.Module]
    steps: list[UpdateStep]
    epochs: int
    batch_size: int
    generator: torch.Generator
    ema: Mapping[str, float] = field(default_factory=dict)   # network name -> decay
    ema_warmup: bool = False
    selector: Selector | None = None
    checkpoint: Checkpoint | None = None
    progress: bool = False
    progress_every: int = 50
    description: str = "fit"
    on_epoch_end: Callable[["Trainer", int], None] | None = None
    iterations_per_epoch: int | None = None
    on_divergence: str = "raise"  # or "rollback"
    autocast_dtype: torch.dtype | None = None  # mixed precision: losses under torch.autocast in this dtype
    max_rollbacks: int = 3
    rollback_lr_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.on_divergence not in ("raise", "rollback"):
            raise ValueError(f"on_divergence must be 'raise' or 'rollback'; got {self.on_divergence!r}")
        unknown = {n for s in self.steps for n in s.networks} - set(self.networks)
        if unknown:
            raise ValueError(f"update steps train unknown networks {sorted(unknown)}")
        self.averages: dict[str, AveragedModel] = {
            name: make_ema(self.networks[name], decay, self.ema_warmup) for name, decay in self.ema.items()}
        self._average_updates = {name: _AverageUpdate(avg, self.networks[name]) for name, avg in self.averages.items()}
        self.history: list[dict[str, float]] = []
        self.epoch = 0  # epochs completed
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict[str, Any] | None = None
        self.seconds_per_epoch: list[float] = []
        self.rollbacks: list[dict[str, Any]] = []  # {"epoch", "lr_factor"} per rollback
        self.lr_scale = 1.0  # product of the rollbacks' learning-rate factors

    # ------------------------------------------------------------------ inference networks
    def inference_network(self, name: str) -> nn.Module:
        """The moving-average copy of `name` when one is kept, else the live network."""
        return self.averages[name].module if name in self.averages else self.networks[name]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "networks": {k: m.state_dict() for k, m in self.networks.items()},
            "averages": {k: m.state_dict() for k, m in self.averages.items()},
            "optimizers": {s.name: s.optimizer.state_dict() for s in self.steps},
            "history": self.history,
            "seconds_per_epoch": self.seconds_per_epoch,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_state": self._best_state,
            "rng_cpu": torch.get_rng_state(),
            "rng_generator": self.generator.get_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["rng_cuda"] = list(torch.cuda.get_rng_state_all())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        for k, m in self.networks.items():
            m.load_state_dict(state["networks"][k])
        for k, m in self.averages.items():
            m.load_state_dict(state["averages"][k])
            self._average_updates[k].count = None
        for s in self.steps:
            s.optimizer.load_state_dict(state["optimizers"][s.name])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.seconds_per_epoch = list(state.get("seconds_per_epoch", []))
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self._best_state = state["best_state"]
        torch.set_rng_state(state["rng_cpu"])
        self.generator.set_state(state["rng_generator"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    def _snapshot(self) -> dict[str, Any]:
        return {"networks": {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                             for k, m in self.networks.items()},
                "averages": {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                             for k, m in self.averages.items()}}

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        for k, m in self.networks.items():
            m.load_state_dict(snap["networks"][k])
        for k, m in self.averages.items():
            m.load_state_dict(snap["averages"][k])
            self._average_updates[k].count = None

    def _save_checkpoint(self) -> None:
        ck = self.checkpoint
        assert ck is not None
        state = self.state_dict()
        state["fingerprint"] = ck.fingerprint
        state["complete"] = self.epoch >= self.epochs
        save_state(ck.path, state)

    def _try_resume(self) -> bool:
        ck = self.checkpoint
        if ck is None or not ck.resume or not ck.path.is_file():
            return False
        state = load_state(ck.path)
        if state.get("fingerprint") != ck.fingerprint:
            raise CheckpointError(
                f"the checkpoint in {ck.directory} was written for other data or parameters "
                f"(fingerprint {state.get('fingerprint')!r}, this fit {ck.fingerprint!r}); delete it or "
                "use another checkpoint_dir")
        if int(state["epoch"]) > self.epochs:
            raise CheckpointError(f"the checkpoint in {ck.directory} is at epoch {state['epoch']}, beyond "
                                  f"this fit's {self.epochs} epochs")
        self.load_state_dict(state)
        return True

    # ------------------------------------------------------------------ training
    def _set_trainable(self, names: Sequence[str]) -> None:
        wanted = frozenset(names)
        if wanted == getattr(self, "_trainable", None):
            return
        if not hasattr(self, "_params"):
            self._params = {k: list(m.parameters()) for k, m in self.networks.items()}
        for name, params in self._params.items():
            flag = name in wanted
            for p in params:
                p.requires_grad_(flag)
        self._trainable = wanted

    def _check_finite(self, sums: dict[str, torch.Tensor], epoch: int, where: str) -> dict[str, float]:
        values = {k: float(v) for k, v in sums.items()}  # the one host sync
        for key, value in values.items():
            if not math.isfinite(value):
                step_name = key.split("/")[0]
                nets = next((s.networks for s in self.steps if s.name == step_name), ())
                raise TrainingDiverged(
                    f"training diverged: loss {key!r} of step {step_name!r} (networks {', '.join(nets)}) became "
                    f"{value} in epoch {epoch} of {self.epochs}{where}. Lower the learning rate, scale the "
                    "input, or enable spectral norm / gradient clipping.")
        return values

    def fit(self, X: torch.Tensor) -> "Trainer":
        n = len(X)
        if n == 0:
            raise ValueError("no training rows")
        bs = max(1, min(self.batch_size, n))
        iters = self.iterations_per_epoch or iterations_per_epoch(n, self.batch_size)
        resumed = self._try_resume()
        self._last_save = time.monotonic()
        if self.epoch >= self.epochs:  # a complete checkpoint: the result is already there
            self._finish()
            return self
        for m in self.networks.values():
            m.train()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs * iters, initial=self.epoch * iters, file=sys.stderr,
                       desc=self.description + (" (resumed)" if resumed else ""), dynamic_ncols=True,
                       leave=False)
        try:
            while self.epoch < self.epochs:
                epoch = self.epoch + 1
                good = self._rollback_point() if self.on_divergence == "rollback" else None
                try:
                    self._run_epoch(X, epoch, bs, iters, bar)
                except TrainingDiverged as err:
                    if good is None:
                        raise
                    self._roll_back(good, epoch, err)
        finally:
            if bar is not None:
                bar.close()
        self._finish()
        return self

    def _run_epoch(self, X: torch.Tensor, epoch: int, bs: int, iters: int, bar: Any) -> None:
        """One epoch of every update step, then history, selection, callback and checkpoint."""
        n = len(X)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=self.generator, device=self.generator.device)
        pos = 0
        sums: dict[str, torch.Tensor] = {}
        batch = X[:0]
        for it in range(iters):
            for step in self.steps:
                for _ in range(step.repeat):
                    if step.new_batch or batch.shape[0] == 0:
                        if pos + bs > n:
                            perm = torch.randperm(n, generator=self.generator, device=self.generator.device)
                            pos = 0
                        idx = perm[pos:pos + bs]
                        pos += bs
                        batch = X[idx.to(X.device)]
                    try:
                        self._run_step(step, batch, sums)
                    except RuntimeError as err:  # e.g. a Cholesky of NaN covariances after a NaN update
                        self._check_finite(sums, epoch, f", iteration {it + 1} (then {type(err).__name__})")
                        raise
            if bar is not None:
                bar.update(1)
                if (it + 1) % self.progress_every == 0:
                    vals = self._check_finite(sums, epoch, f", iteration {it + 1}")
                    bar.set_postfix({k: f"{v / (it + 1):.4g}" for k, v in vals.items()}, refresh=False)
        values = self._check_finite(sums, epoch, "")
        record = {k: v / iters for k, v in values.items()}
        self.epoch = epoch
        self.seconds_per_epoch.append(time.perf_counter() - t0)
        if self.selector is not None and epoch >= self.selector.start_epoch and \
                (epoch - self.selector.start_epoch) % self.selector.every == 0:
            value = float(self.selector.criterion(self))
            for m in self.networks.values():
                m.train()
            record["selection"] = value
            better = (self.best_value is None or
                      (value < self.best_value if self.selector.mode == "min" else value > self.best_value))
            if math.isfinite(value) and better:
                self.best_value, self.best_epoch = value, epoch
                self._best_state = self._snapshot()
        self.history.append(record)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self, epoch)
        ck = self.checkpoint
        if ck is not None and (epoch % ck.every == 0 or epoch == self.epochs) and \
                time.monotonic() - self._last_save >= ck.min_interval:
            self._save_checkpoint()
            self._last_save = time.monotonic()

    def _rollback_point(self) -> dict[str, Any]:
        """What a rollback restores: networks, moving averages and optimiser states (incl. learning rates)."""
        return {**self._snapshot(), "optimizers": [copy.deepcopy(s.optimizer.state_dict()) for s in self.steps],
                "lr_scale": self.lr_scale}

    def _roll_back(self, good: dict[str, Any], epoch: int, err: TrainingDiverged) -> None:
        """Restore `good` and scale every learning rate by `rollback_lr_factor`; re-raise `err` when
        `max_rollbacks` are used up."""
        if len(self.rollbacks) >= self.max_rollbacks:
            raise TrainingDiverged(f"{err} Still diverging after {len(self.rollbacks)} rollback(s) with the "
                                   f"learning rate scaled down to x{self.rollbacks[-1]['lr_factor']:g}.") from err
        self.lr_scale *= self.rollback_lr_factor
        self._restore_snapshot(good)
        for step, state in zip(self.steps, good["optimizers"]):
            step.optimizer.load_state_dict(state)
            for group in step.optimizer.param_groups:
                group["lr"] *= self.lr_scale / good["lr_scale"]
        self.rollbacks.append({"epoch": epoch, "lr_factor": self.lr_scale})
        warnings.warn(f"{err} Rolled back to the end of epoch {epoch - 1}; learning rates x{self.lr_scale:g} "
                      f"(rollback {len(self.rollbacks)} of at most {self.max_rollbacks}).", RuntimeWarning,
                      stacklevel=2)


    def _run_step(self, step: UpdateStep, batch: torch.Tensor, sums: dict[str, torch.Tensor]) -> None:
        self._set_trainable(step.networks)
        step.optimizer.zero_grad(set_to_none=True)
        # parametrizations (spectral norm) are computed once per step, not once per network call
        with parametrize.cached():
            # no autocast context at all in float32: entering a disabled one costs ~3 µs per step
            with (contextlib.nullcontext() if self.autocast_dtype is None
                  else torch.autocast(batch.device.type, dtype=self.autocast_dtype)):
                out = step.loss(batch)
            loss, extra = (out if isinstance(out, tuple) else (out, {}))
            loss.backward()
        if step.clip_grad_norm is not None:
            params = [p for name in step.networks for p in self.networks[name].parameters()]
            torch.nn.utils.clip_grad_norm_(params, step.clip_grad_norm)
        step.optimizer.step()
        for name in step.networks:
            if name in self._average_updates:
                self._average_updates[name]()
        for key, value in (("loss", loss), *extra.items()):
            k = f"{step.name}/{key}"
            v = value.detach().float()
            sums[k] = sums[k] + v if k in sums else v.clone()

    def _finish(self) -> None:
        self._set_trainable(list(self.networks))
        self.__dict__.pop("_params", None)
        if self._best_state is not None:
            self._restore_snapshot(self._best_state)
        for m in self.networks.values():
            m.eval()
        for m in self.averages.values():
            m.eval()
