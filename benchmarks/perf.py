"""Training and scoring throughput of every registered PyTorch model, side by side (issue 10).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/perf.py [--models alad,rcgan] [--quick]

For each torch model in the registry (iforest, ocsvm and ``pyod:*`` are skipped), on KDD99-shaped
rows (random float32, 121 features; the models' KDD99 networks — ``architecture="kdd"`` where a model
has that parameter — and batch sizes) and, for models that take images, on 28×28 single-channel
images, in one process. An untimed warm-up fit sets the length of the timed fits: about
``--train-seconds`` (at least one batch), in epochs of at most 20 000 rows / 2 048 images, the
same for every run of that model. Then:

(a) ``ours``: training samples/s of ``fit``, from the trainer's ``seconds_per_epoch_`` (setup,
    pretraining, model selection and the scoring of the training rows for ``threshold_`` excluded);
(b) ``minimal``: the same networks and losses (the model's ``_build_networks(config_)``, ``_prepare``
    where defined, ``_update_steps``: its own ``fit`` with the engine's `Trainer` swapped for
    `MinimalLoop`) in a hand-written loop over shuffled batches: per declared step zero_grad, loss,
    backward, step — no engine, EMA, progress bar or finiteness check. Spectral-norm weights are
    computed once per step (``parametrize.cached``) and ``backward`` computes only the gradients of the
    step's own networks (``inputs=``), i.e. the arithmetic our engine does;
(c) scoring rows/s of ``decision_function`` (the model's default ``score_batch_size``) on up to
    200 000 rows (20 000 images; fewer for slow scorers: about ``--score-seconds`` a call), and the
    peak RSS of the first call (VmHWM, reset through /proc/self/clear_refs); for the models that allow
    it, the same fitted model again with ``score_dtype="bfloat16"``, then also ``score_compile=True``;
(d) PyOD's ALAD, AnoGAN and DeepSVDD (when installed) on the same KDD99-shaped rows with layer widths
    and batch sizes matched to ours: training samples/s (the training loop only, not the scoring of
    the training rows that PyOD's ``fit`` ends with) and scoring rows/s. PyOD's ALAD shuffles its whole
    training array before every batch, so its rate falls as the training set grows: ``--pyod-rows N``
    also times it, and one epoch of ours, on N rows (317 000 ≈ KDD99's attack rows in an 80 % split).

Samples/s = iterations × batch size / seconds, where one iteration runs every declared update step
once (ALAD: one discriminator and one generator/encoder step, each on its own batch). PyOD's ALAD
"epoch" is ONE such iteration on one batch, so it is compared per sample.

The two cores are shared with long jobs, so every rate is measured per CPU second of this process
(``process_time``; run single-threaded, ``OMP_NUM_THREADS=1``) as well as per wall second: the
engine's clock is swapped for `EngineClock` during a fit. Ours, minimal (and PyOD) runs are
interleaved; ratios are medians of the back-to-back pairs. The JSON holds every repeat, the medians
and ``os.getloadavg()``; the table shows CPU-second figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

import advad.models  # noqa: F401  (registers every model)
import advad.models._torch as torch_module
from advad import engine
from advad.base import InputError
from advad.models._torch import TorchDetector
from advad.models.registry import get_model_class, list_models, make_detector
from memory_probe import reset_peak, status_mb  # benchmarks/memory_probe.py

KDD_FEATURES = 121
PYOD_OF = {"alad": "ALAD", "anogan": "AnoGAN", "deepsvdd": "DeepSVDD"}


# --------------------------------------------------------------------------- clocks
class Timer:
    """CPU seconds of this process (``process_time``: little affected by other jobs on the shared cores)
    and wall seconds of the same interval."""

    def __init__(self) -> None:
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def rate(self, items: float) -> dict[str, float]:
        return {"cpu": items / (time.process_time() - self.cpu0), "wall": items / (time.perf_counter() - self.wall0)}


class EngineClock:
    """Stands in for the ``time`` module inside `advad.engine` during a fit: every ``perf_counter()`` the
    trainer reads returns the process's CPU time and records the wall time of that moment, so one epoch
    gives both its CPU seconds (``seconds_per_epoch_``) and its wall seconds."""

    def __init__(self) -> None:
        self.wall: list[float] = []

    def perf_counter(self) -> float:
        self.wall.append(time.perf_counter())
        return time.process_time()


# --------------------------------------------------------------------------- (a) ours, (b) minimal
def fit_ours(name: str, kind: str, X: np.ndarray, epochs: int = 1,
             train_dtype: str = "float32") -> tuple[TorchDetector, dict[str, float], int, int]:
    """Fit for `epochs`; returns the detector, samples/s (per CPU second and per wall second of the
    epochs), iterations per epoch and batch size. On KDD99-shaped rows a model with an ``architecture``
    parameter gets its ``"kdd"`` networks whatever the row count."""
    params = {"random_state": 0, "device": "cpu", "epochs": epochs, "verbose": False, "train_dtype": train_dtype}
    if "pretrain_epochs" in get_model_class(name)().get_params(deep=False):
        params["pretrain_epochs"] = 0  # pretraining (Deep SVDD, FenceGAN) runs before the timed epoch anyway
    det = make_detector(name, **params)
    if kind == "kdd" and "architecture" in det.get_params(deep=False):
        try:
            make_detector(name, **params, architecture="kdd")._check_params()
            det = make_detector(name, **params, architecture="kdd")
        except InputError:  # the model has no "kdd" networks
            pass
    # fit ends by scoring its training rows for threshold_: scoring, measured in (c), and slow for some
    # models (AnoGAN's latent search): skipped here
    checked_scores = det._checked_scores
    det._checked_scores = lambda X, fitting: np.zeros(len(X)) if fitting else checked_scores(X, fitting=fitting)
    clock = EngineClock()
    saved_time, engine.time = engine.time, clock
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            det.fit(X)
    finally:
        engine.time = saved_time
    del det._checked_scores
    bs = min(det._schedule(det.config_)[1], det.n_train_rows_)
    iters = max(1, det.n_train_rows_ // bs)
    wall = sum(end - start for start, end in zip(clock.wall[::2], clock.wall[1::2]))  # two readings an epoch
    rate = {"cpu": iters * bs / det.seconds_per_epoch_, "wall": epochs * iters * bs / wall}
    return det, rate, iters, bs


class MinimalLoop:
    """Stands in for `advad.engine.Trainer` inside the detector's own ``_fit`` (so networks, ``_prepare``,
    update steps and the state they read are the model's own): `epochs` epochs of the plain loop."""

    def __init__(self, networks: dict, steps: list, epochs: int, batch_size: int, generator: torch.Generator,
                 autocast_dtype: torch.dtype | None = None, **_ignored) -> None:
        self.networks, self.steps, self.epochs, self.batch_size = networks, steps, epochs, batch_size
        self.autocast_dtype = autocast_dtype
        self.generator, self.history, self.rollbacks, self.epoch, self.best_epoch = generator, [], [], epochs, None
        self.seconds_per_epoch: list[float] = []

    def inference_network(self, name: str) -> torch.nn.Module:
        return self.networks[name]

    def fit(self, X: torch.Tensor) -> "MinimalLoop":
        n, gen = len(X), self.generator
        bs = min(self.batch_size, n)
        params = [[p for k in s.networks for p in self.networks[k].parameters()] for s in self.steps]
        for m in self.networks.values():
            m.train()
        for _ in range(self.epochs):
            t0 = engine.time.perf_counter()  # the clock fit_ours reads (EngineClock)
            perm, pos, batch = torch.randperm(n, generator=gen, device=gen.device), 0, None
            for _ in range(max(1, n // bs)):
                for step, ps in zip(self.steps, params):
                    for _ in range(step.repeat):
                        if step.new_batch or batch is None:
                            if pos + bs > n:
                                perm, pos = torch.randperm(n, generator=gen, device=gen.device), 0
                            batch, pos = X[perm[pos:pos + bs]], pos + bs
                        step.optimizer.zero_grad(set_to_none=True)
                        with parametrize.cached():
                            with torch.autocast("cpu", dtype=self.autocast_dtype,
                                                enabled=self.autocast_dtype is not None):
                                out = step.loss(batch)
                            (out[0] if isinstance(out, tuple) else out).backward(inputs=ps)
                        if step.clip_grad_norm is not None:
                            torch.nn.utils.clip_grad_norm_(ps, step.clip_grad_norm)
                        step.optimizer.step()
            self.seconds_per_epoch.append(engine.time.perf_counter() - t0)
        for m in self.networks.values():
            m.eval()
        return self


def fit_minimal(name: str, kind: str, X: np.ndarray, epochs: int, train_dtype: str = "float32") -> dict[str, float]:
    """Samples/s of the plain loop: the model's ``fit`` with `MinimalLoop` in place of the engine."""
    saved, torch_module.Trainer = torch_module.Trainer, MinimalLoop
    try:
        return fit_ours(name, kind, X, epochs, train_dtype)[1]
    finally:
        torch_module.Trainer = saved


# --------------------------------------------------------------------------- (c) scoring
def measure_scoring(score, make_rows, max_rows: int, target_s: float, probe_rows: int, repeats: int) -> dict:
    """Rows/s of ``score(X)`` (medians of `repeats` calls, per CPU and per wall second) on as many rows
    as take about `target_s` (at most `max_rows`; the rate is estimated by warm-up calls on 8, 32, ...
    rows, up to `probe_rows` or a quarter of `target_s`), and the first call's peak RSS."""
    rows = 8
    while True:
        t0 = time.perf_counter()
        score(make_rows(rows))
        seconds = time.perf_counter() - t0
        if rows >= probe_rows or seconds >= target_s / 4:
            break
        rows *= 4
    n = int(min(max_rows, max(rows, rows / seconds * target_s)))
    X = make_rows(n)
    reset_peak()
    before = status_mb("VmRSS")
    rates = []
    for i in range(repeats):
        timer = Timer()
        s = score(X)
        rates.append(timer.rate(n))
        if i == 0:
            peak = status_mb("VmHWM")
    assert len(s) == n
    return {"rows": n, **medians(rates), "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "peak_increase_mb": round(peak - before, 1), "data_mb": round(X.nbytes / 2**20, 1)}


def medians(rates: list[dict[str, float]]) -> dict:
    """{"cpu": median, "wall": median, "all": rates} of per-run rates."""
    return {"cpu": statistics.median(r["cpu"] for r in rates), "wall": statistics.median(r["wall"] for r in rates),
            "all": rates}


# --------------------------------------------------------------------------- (d) PyOD
class _Stop(Exception):
    pass


def pyod_fit(name: str, X: np.ndarray, iters: int, bs: int, latent: int) -> dict[str, float]:
    """Samples/s of PyOD's training loop (without the scoring of the training rows its fit ends with)."""
    if name == "ALAD":
        from pyod.models.alad import ALAD

        # widths of ALAD's KDD99 networks (Table XI); PyOD's "epoch" is one batch
        det = ALAD(latent_dim=latent, enc_layers=[64], dec_layers=[64, 128], disc_xx_layers=[128],
                   disc_zz_layers=[32], disc_xz_layers=[256, 128], spectral_normalization=True,
                   batch_size=bs, epochs=iters, device=torch.device("cpu"))
        det.get_outlier_scores = _raise_stop  # fit's last act: scoring the training rows
    elif name == "AnoGAN":
        import pyod.models.anogan as mod

        det = mod.AnoGAN(latent_dim_G=latent, G_layers=[64, 128], D_layers=[256, 128, 128], batch_size=bs,
                         epochs=1, device=torch.device("cpu"))
        X = X[:iters * bs]
        original, mod.QueryModel = mod.QueryModel, _raise_stop  # the per-row latent search after training
    else:
        from pyod.models.deep_svdd import DeepSVDD

        det = DeepSVDD(n_features=X.shape[1], hidden_neurons=[128, 64, 32], batch_size=bs, epochs=1, verbose=0,
                       random_state=0)
        X = X[:iters * bs]
        det.decision_function = _raise_stop
    timer = Timer()
    try:
        det.fit(X)
    except _Stop:
        pass
    finally:
        if name == "AnoGAN":
            mod.QueryModel = original
    return timer.rate(iters * bs)


def _raise_stop(*args, **kwargs):
    raise _Stop


def pyod_scorer(name: str, X: np.ndarray, bs: int, latent: int):
    """A fitted PyOD detector (short training: scoring speed does not depend on the weights)."""
    from pyod.models.alad import ALAD
    from pyod.models.anogan import AnoGAN
    from pyod.models.deep_svdd import DeepSVDD

    small = X[:2000]
    if name == "ALAD":
        det = ALAD(latent_dim=latent, enc_layers=[64], dec_layers=[64, 128], disc_xx_layers=[128],
                   disc_zz_layers=[32], disc_xz_layers=[256, 128], spectral_normalization=True,
                   batch_size=bs, epochs=5, device=torch.device("cpu"))
    elif name == "AnoGAN":
        det = AnoGAN(latent_dim_G=latent, G_layers=[64, 128], D_layers=[256, 128, 128], batch_size=bs,
                     epochs=1, epochs_query=1, device=torch.device("cpu"))
        small = X[:200]
    else:
        det = DeepSVDD(n_features=X.shape[1], hidden_neurons=[128, 64, 32], batch_size=bs, epochs=1, verbose=0)
    det.fit(small)
    return det.decision_function


# --------------------------------------------------------------------------- driver
def torch_models(selected: list[str] | None) -> list[str]:
    names = [m for m in list_models() if issubclass(get_model_class(m), TorchDetector)]
    if selected:
        unknown = sorted(set(selected) - set(names))
        if unknown:
            raise SystemExit(f"not registered torch models: {unknown}; known: {names}")
        names = [m for m in names if m in selected]
    return names


def bench_model(name: str, kind: str, X: np.ndarray, make_rows, args, pyod: bool) -> dict:
    load = [round(v, 2) for v in os.getloadavg()]
    t_start = time.perf_counter()
    warm_rows = args.warmup_rows if kind == "kdd" else args.image_warmup_rows
    det, warm, _, _ = fit_ours(name, kind, X[:warm_rows], train_dtype=args.train_dtype)  # untimed: warm-up
    bs = min(det._schedule(det.config_)[1], len(X))
    per_sample = 1 / warm["wall"]
    # each timed fit: about --train-seconds (wall, so that the run's length does not grow with the load),
    # in epochs of at most --rows rows; slow cases get fewer repeats: ours + minimal ≈ --case-seconds
    target = max(1, round(args.train_seconds / (per_sample * bs)))
    iters = min(target, len(X) // bs)
    epochs = -(-target // iters)
    repeats = int(np.clip(args.case_seconds // (2 * epochs * iters * bs * per_sample), 1, args.repeats))
    X = X[:iters * bs]
    pyod_name = PYOD_OF.get(name) if pyod and kind == "kdd" else None
    latent = det.config_.get("latent_dim", 32)
    ours, minimal, pyod_train = [], [], []
    for _ in range(repeats):
        det, rate, iters, bs = fit_ours(name, kind, X, epochs, args.train_dtype)
        ours.append(rate)
        minimal.append(fit_minimal(name, kind, X, epochs, args.train_dtype))
        if pyod_name:
            pyod_train.append(pyod_fit(pyod_name, X, min(iters, args.pyod_iterations), bs, latent))
    row = {"model": name, "data": kind, "train_dtype": args.train_dtype, "train_rows": int(det.n_train_rows_),
           "batch_size": bs,
           "iterations": iters, "epochs": epochs, "repeats": repeats, "loadavg": load,
           "threads": det._n_threads(det.config_, bs) or torch.get_num_threads(),
           "ours": medians(ours), "minimal": medians(minimal)}
    row["ours_over_minimal"] = paired_ratios(ours, minimal)
    row["train_wall_seconds"] = round(time.perf_counter() - t_start, 1)
    max_rows = args.score_rows if kind == "kdd" else args.image_score_rows
    row["scoring"] = measure_scoring(det.decision_function, make_rows, max_rows, args.score_seconds,
                                     args.probe_rows, repeats)
    row["scoring"]["score_batch_size"] = int(det.score_batch_size)
    if det.param_rules["score_dtype"]("bfloat16") is None:  # the same fitted model in bfloat16, then compiled
        for key, compiled in (("scoring_bfloat16", False), ("scoring_bfloat16_compiled", True)):
            det.set_params(score_dtype="bfloat16", score_compile=compiled)
            t0 = time.perf_counter()
            det.decision_function(make_rows(8))  # builds the bfloat16 copies (and compiles)
            first = time.perf_counter() - t0
            row[key] = measure_scoring(det.decision_function, make_rows, max_rows, args.score_seconds,
                                       args.probe_rows, repeats)
            row[key]["first_call_seconds"] = round(first, 2)
        det.set_params(score_dtype="float32", score_compile=False)
    if pyod_name == "ALAD" and args.pyod_rows:
        # PyOD's ALAD shuffles its whole training array before every batch, so its per-sample cost grows
        # with the training set; ours draws one permutation per epoch. Both once on a KDD99-sized array.
        X_full = np.random.default_rng(2).standard_normal((args.pyod_rows, X.shape[1]), dtype=np.float32)
        full = {"rows": args.pyod_rows, "ours": fit_ours(name, kind, X_full, 1, args.train_dtype)[1],
                "pyod": pyod_fit("ALAD", X_full, args.pyod_iterations, bs, latent)}
        row["full_training_set"] = {**full, "ours_over_pyod": ratios(full["ours"], full["pyod"])}
        del X_full
    if pyod_name:
        scorer = pyod_scorer(pyod_name, X, bs, latent)
        row["pyod"] = {"model": f"pyod.{pyod_name}", "train": medians(pyod_train),
                       "train_iterations": min(iters, args.pyod_iterations),
                       "scoring": measure_scoring(scorer, make_rows, max_rows, args.score_seconds,
                                                  args.probe_rows, repeats)}
        row["ours_over_pyod"] = {"train": paired_ratios(ours, pyod_train),
                                 "scoring": ratios(row["scoring"], row["pyod"]["scoring"])}
        for key in ("scoring_bfloat16", "scoring_bfloat16_compiled"):
            if key in row:
                row["ours_over_pyod"][key] = ratios(row[key], row["pyod"]["scoring"])
    row["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    return row


def ratios(a: dict, b: dict) -> dict[str, float]:
    return {k: a[k] / b[k] for k in ("cpu", "wall")}


def paired_ratios(a: list[dict], b: list[dict]) -> dict[str, float]:
    """Median over repeats of a/b, each pair run back to back (robust to the load drifting between pairs)."""
    return {k: statistics.median(x[k] / y[k] for x, y in zip(a, b)) for k in ("cpu", "wall")}


def fmt(v: float | None, spec: str = ",.0f") -> str:
    return "—" if v is None else format(v, spec)


def print_table(rows: list[dict]) -> None:
    head = (f"{'model':<14}{'data':<6}{'bs':>5}{'ours/s':>9}{'min/s':>9}{'o/min':>7}{'(wall)':>7}{'score/s':>10}"
            f"{'peak MB':>8}{'+MB':>6}{'PyOD/s':>8}{'o/PyOD':>7}{'PyOD sc/s':>10}{'o/PyOD':>7}{'bf16 sc/s':>10}"
            f"{'o/PyOD':>7}{'+compile':>10}{'o/PyOD':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<14}{r['data']:<6}failed: {r['error']}")
            continue
        p, o = r.get("pyod"), r.get("ours_over_pyod")
        sc = r["scoring"]
        print(f"{r['model']:<14}{r['data']:<6}{r['batch_size']:>5}{fmt(r['ours']['cpu']):>9}"
              f"{fmt(r['minimal']['cpu']):>9}{fmt(r['ours_over_minimal']['cpu'], '.2f'):>7}"
              f"{fmt(r['ours_over_minimal']['wall'], '.2f'):>7}{fmt(sc['cpu']):>10}{fmt(sc['peak_rss_mb']):>8}"
              f"{fmt(sc['peak_increase_mb']):>6}{fmt(p and p['train']['cpu']):>8}"
              f"{fmt(o and o['train']['cpu'], '.1f'):>7}{fmt(p and p['scoring']['cpu']):>10}"
              f"{fmt(o and o['scoring']['cpu'], '.1f'):>7}{fmt(r.get('scoring_bfloat16', {}).get('cpu')):>10}"
              f"{fmt(o and o.get('scoring_bfloat16', {}).get('cpu'), '.1f'):>7}"
              f"{fmt(r.get('scoring_bfloat16_compiled', {}).get('cpu')):>10}"
              f"{fmt(o and o.get('scoring_bfloat16_compiled', {}).get('cpu'), '.1f'):>7}")
    print("Rates per CPU second of this process, medians of interleaved repeats; o/min: median of the back-to-back "
          "pairs' ratios, (wall): the same per wall second. bf16 sc/s: the same fitted model with "
          "score_dtype='bfloat16', +compile: and score_compile=True. samples/s = iterations × batch / s, "
          "an iteration = every update step once; PyOD's ALAD "
          "'epoch' is one such iteration. peak MB: VmHWM in the first scoring call, +MB: over the RSS before it.")
    for r in rows:
        if "full_training_set" in r:
            f = r["full_training_set"]
            print(f"{r['model']} trained on {f['rows']:,} rows (one epoch of ours; PyOD shuffles them before "
                  f"every batch): ours {fmt(f['ours']['cpu'])}/s, PyOD {fmt(f['pyod']['cpu'])}/s, "
                  f"ours/PyOD {f['ours_over_pyod']['cpu']:.1f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated registry names (default: every torch model)")
    ap.add_argument("--train-dtype", default="float32", choices=("float32", "bfloat16"),
                    help="train_dtype of our fits and the minimal loop's (bfloat16: torch.autocast mixed precision)")
    ap.add_argument("--quick", action="store_true", help="one repeat of 1-second fits and scoring calls (smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per measurement (median)")
    ap.add_argument("--train-seconds", type=float, default=2.5, help="about this many seconds per timed fit")
    ap.add_argument("--rows", type=int, default=20_000, help="most KDD99-shaped training rows (one epoch)")
    ap.add_argument("--image-rows", type=int, default=2048, help="most 28×28 training images (one epoch)")
    ap.add_argument("--warmup-rows", type=int, default=1024, help="rows of the untimed warm-up fit")
    ap.add_argument("--image-warmup-rows", type=int, default=256, help="images of the untimed warm-up fit")
    ap.add_argument("--case-seconds", type=float, default=35.0, help="fewer repeats when ours + minimal take longer")
    ap.add_argument("--pyod-iterations", type=int, default=100, help="PyOD training iterations (batches)")
    ap.add_argument("--pyod-rows", type=int, default=0,
                    help="also train ours (one epoch) and PyOD's ALAD on this many rows, e.g. 317000 ≈ the attack "
                         "rows of KDD99's 80 %% training split (PyOD's per-sample cost grows with it)")
    ap.add_argument("--score-rows", type=int, default=200_000, help="most rows to score (KDD99-shaped)")
    ap.add_argument("--image-score-rows", type=int, default=20_000, help="most images to score")
    ap.add_argument("--score-seconds", type=float, default=2.0, help="fewer rows for slow scorers: about this long")
    ap.add_argument("--probe-rows", type=int, default=4096, help="most rows of a warm-up scoring call")
    ap.add_argument("--no-images", action="store_true")
    ap.add_argument("--no-pyod", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/perf.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.train_seconds, args.score_seconds = 1, 1.0, 1.0
    try:
        import pyod  # noqa: F401
        pyod_version = pyod.__version__
    except ImportError:
        pyod_version = None
    use_pyod = pyod_version is not None and not args.no_pyod
    names = torch_models(args.models.split(",") if args.models else None)
    rng = np.random.default_rng(0)
    X_kdd = rng.standard_normal((args.rows, KDD_FEATURES), dtype=np.float32)
    X_img = rng.random((args.image_rows, 1, 28, 28), dtype=np.float32)
    score_rng = np.random.default_rng(1)
    kdd_rows = lambda n: score_rng.standard_normal((n, KDD_FEATURES), dtype=np.float32)  # noqa: E731
    img_rows = lambda n: score_rng.random((n, 1, 28, 28), dtype=np.float32)  # noqa: E731
    t0 = time.perf_counter()
    result = {"command": " ".join([f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}", "python",
                                   *sys.argv]),
              "loadavg_start": [round(v, 2) for v in os.getloadavg()], "torch": torch.__version__,
              "pyod": pyod_version, "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
              "torch_threads": torch.get_num_threads(),
              "settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        cases = [("kdd", X_kdd, kdd_rows)]
        if get_model_class(name).accepts_images and not args.no_images:
            cases.append(("28x28", X_img, img_rows))
        for kind, X, make_rows in cases:
            try:
                row = bench_model(name, kind, X, make_rows, args, use_pyod)
            except Exception as err:  # one model's failure must not lose the others' figures
                row = {"model": name, "data": kind, "error": f"{type(err).__name__}: {err}"}
            result["results"].append(row)
            print(f"# {name} {kind}: {row.get('wall_seconds', row.get('error'))}", file=sys.stderr, flush=True)
            result.update(wall_seconds=round(time.perf_counter() - t0, 1),
                          loadavg_end=[round(v, 2) for v in os.getloadavg()])
            out.write_text(json.dumps(result, indent=1) + "\n")  # after every case: partial runs keep figures
    print_table(result["results"])
    print(f"wall time {result['wall_seconds']:.0f} s; load average {result['loadavg_start']} → "
          f"{result['loadavg_end']}")

if __name__ == "__main__":
    main()
