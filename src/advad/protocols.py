"""Evaluation protocols (SPEC §5): named functions of (detector factory, dataset, seed) → run record.

Every convention that moves the numbers (split ratio, whether anomalies stay in train, test-set
resampling, where the top-k threshold comes from, scaling) is an explicit keyword, resolved from the
protocol's defaults, the dataset's paper, the model's paper and the user, and recorded in the run.
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from advad.base import BaseDetector
from advad.data import Dataset, load_dataset

DetectorFactory = Callable[[], BaseDetector]


@dataclass
class _Checkpoints:
    folder: Path
    min_interval: float
    fits: int = 0


_CHECKPOINTS: ContextVar[_Checkpoints | None] = ContextVar("advad_checkpoints", default=None)


@contextlib.contextmanager
def checkpointed_fits(folder: str | Path, min_interval: float = 60.0) -> Iterator[None]:
    """Within this block the protocols' fits of PyTorch detectors write checkpoints to `folder`/<n> (the
    n-th such fit), at most every `min_interval` seconds, and resume from one already there: a run killed
    mid-fit restarts where its last checkpoint left it, with the same result (``advad bench --out``)."""
    token = _CHECKPOINTS.set(_Checkpoints(Path(folder), float(min_interval)))
    try:
        yield
    finally:
        _CHECKPOINTS.reset(token)

# Per-dataset conventions of the papers that defined the tabular top-k protocol (DAGMM / ALAD):
# 50/50 split; KDD99's test set resampled to 20 % anomalies as the ALAD reference code does.
TOPK_DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "kdd99": {"test_anomaly_ratio": 0.2},
}
# ARN's protocols (auc, contamination, weak-supervision): its "KDDCUP99" has the attacks anomalous, the
# opposite of kdd99's topk labels (which ARN calls KDDCUP99_Inv, our kdd99-inv).
ARN_PROTOCOLS = ("auc", "contamination", "weak-supervision")
ARN_DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "kdd99": {"invert_labels": True},
}


@dataclass
class Split:
    """Rows of one run: train (what `fit` sees), test (what is scored) and their labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    fit_labels: np.ndarray | None = None  # labels given to fit (weak supervision)
    X_val: np.ndarray | None = None       # labelled validation rows (ARN's split), for model selection
    y_val: np.ndarray | None = None


# ---------------------------------------------------------------------------------------- metrics
def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC (average precision) of the anomaly class."""
    if len(np.unique(y_true)) < 2:
        raise ValueError("the test set holds a single class: AUROC is undefined")
    return {"auroc": float(roc_auc_score(y_true, scores)), "auprc": float(average_precision_score(y_true, scores))}


def topk_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of the anomaly class for `score >= threshold` (the ALAD code's rule)."""
    y_pred = (scores >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=1, zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), **ranking_metrics(y_true, scores)}


# ---------------------------------------------------------------------------------------- helpers
def _scale(split: Split, scaler: str | None) -> Split:
    if scaler in (None, "none"):
        return split
    if split.X_train.ndim != 2:
        raise ValueError(f"scaler={scaler!r} applies to tabular data only")
    scalers = {"minmax": MinMaxScaler, "standard": StandardScaler}
    if scaler not in scalers:
        raise ValueError(f"unknown scaler {scaler!r}; use none, minmax or standard")
    fitted = scalers[scaler]().fit(split.X_train)
    split.X_train = fitted.transform(split.X_train).astype(np.float32)
    split.X_test = fitted.transform(split.X_test).astype(np.float32)
    if split.X_val is not None:
        split.X_val = fitted.transform(split.X_val).astype(np.float32)
    return split


def _resample_anomaly_ratio(X: np.ndarray, y: np.ndarray, ratio: float, rng: np.random.Generator):
    """Keep every normal row and at most ratio/(1-ratio) anomalies per normal (ALAD `_adapt_ratio`)."""
    normal, anomalous = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    keep = rng.permutation(anomalous)[: int(len(normal) * ratio / (1 - ratio))]
    rows = rng.permutation(np.concatenate([normal, keep]))
    return X[rows], y[rows]


def _fit_and_score(factory: DetectorFactory, split: Split) -> tuple[BaseDetector, np.ndarray, dict]:
    """Fit on the train rows, score the test rows; timings, sizes and the report's diagnostics. A split
    with validation rows hands them to detectors that select their epoch on labelled data."""
    detector = factory()
    fit_kwargs: dict[str, Any] = {}
    if split.X_val is not None and detector.accepts_validation:
        fit_kwargs["validation_data"] = (split.X_val, split.y_val)
    checkpoints = _CHECKPOINTS.get()
    if checkpoints is not None and "checkpoint_dir" in detector.get_params(deep=False):
        fit_kwargs.update(checkpoint_dir=str(checkpoints.folder / str(checkpoints.fits)), resume=True,
                          checkpoint_interval=checkpoints.min_interval)
        checkpoints.fits += 1
    start = time.perf_counter()
    detector.fit(split.X_train, split.fit_labels, **fit_kwargs)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.decision_function(split.X_test)
    record = {"fit_seconds": fit_seconds, "score_seconds": time.perf_counter() - start,
              "n_train": int(len(split.X_train)), "n_test": int(len(split.X_test)),
              "diagnostics": {**diagnostics(split.y_test, scores, getattr(detector, "history_", None)),
                              **representations(detector, split.X_test, split.y_test)}}
    return detector, scores, record


def _thin(values: np.ndarray, n_points: int) -> list[float]:
    """At most `n_points` evenly spaced values (first and last kept), rounded for compact storage."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) > n_points:
        values = values[np.linspace(0, len(values) - 1, n_points).round().astype(int)]
    return [round(float(v), 5) for v in values]


def diagnostics(y_test: np.ndarray, scores: np.ndarray, history: list[dict] | None = None,
                n_points: int = 200, n_bins: int = 40) -> dict:
    """What the report plots, kept small: ROC and precision-recall curves (≤ `n_points` points),
    histograms of normal and anomalous test scores on shared bins, and the per-epoch training losses."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    out: dict = {}
    if len(np.unique(y_test)) == 2:
        fpr, tpr, _ = roc_curve(y_test, scores)
        precision, recall, _ = precision_recall_curve(y_test, scores)
        out["roc"] = {"fpr": _thin(fpr, n_points), "tpr": _thin(tpr, n_points)}
        out["pr"] = {"recall": _thin(recall, n_points), "precision": _thin(precision, n_points)}
    low, high = np.percentile(scores, [0.5, 99.5])
    if not high > low:
        low, high = float(scores.min()), float(scores.max()) + 1e-12
    edges = np.linspace(low, high, n_bins + 1)
    clipped = np.clip(scores, low, high)
    out["histogram"] = {"edges": _thin(edges, n_bins + 1),
                        "normal": np.histogram(clipped[y_test == 0], edges)[0].tolist(),
                        "anomaly": np.histogram(clipped[y_test == 1], edges)[0].tolist()}
    if history:
        keep = np.linspace(0, len(history) - 1, min(len(history), n_points)).round().astype(int)
        out["history"] = [{k: round(float(v), 6) for k, v in history[i].items()} | {"epoch": int(i) + 1}
                          for i in keep]
    return out


def representations(detector: BaseDetector, X: np.ndarray, y: np.ndarray, n_latent: int = 300,
                    n_images: int = 4) -> dict:
    """What the report draws of a model's internals, for the models that have them: a 2-D t-SNE of the
    latent codes of up to `n_latent` test rows with their labels (MAESI Fig. 2); on 2-D data the
    discriminators' P(normal) over a 41 × 41 grid around the data (RCGAN Fig. 3); for images
    `n_images` normal and `n_images` anomalous test images beside their reconstructions (ALAD Figs. 5–6)."""
    out: dict = {}
    rows = np.sort(np.random.default_rng(0).permutation(len(X))[:n_latent])
    try:
        codes = detector.encode(X[rows]) if hasattr(detector, "encode") and len(rows) >= 10 else None
    except NotImplementedError:
        codes = None
    if codes is not None:
        from sklearn.manifold import TSNE

        embedded = TSNE(n_components=2, perplexity=min(30.0, (len(rows) - 1) / 3), init="pca",
                        random_state=0).fit_transform(np.asarray(codes, dtype=np.float64).reshape(len(rows), -1))
        out["latent_tsne"] = {"x": _thin(embedded[:, 0], n_latent), "y": _thin(embedded[:, 1], n_latent),
                              "label": y[rows].astype(int).tolist()}
    if X.ndim == 2 and X.shape[1] == 2 and hasattr(detector, "discriminator_outputs"):
        box = float(np.abs(X).max()) * 1.1
        axis = np.linspace(-box, box, 41)
        points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(np.float32)
        probs = detector.discriminator_outputs(points)  # RCGAN Fig. 3 (rows: y, columns: x)
        out["discriminator_map"] = {"extent": [-box, box, -box, box],
                                    **{k: np.round(v.reshape(41, 41), 3).tolist() for k, v in probs.items()}}
    if X.ndim == 4 and hasattr(detector, "reconstruct"):
        picked = np.concatenate([np.flatnonzero(y == label)[:n_images] for label in (0, 1)])
        try:
            rebuilt = detector.reconstruct(X[picked])
        except NotImplementedError:
            return out
        unit = 255.0 if float(X[picked].max()) <= 1.0 else 1.0  # images in [0, 1] or in 0..255
        pixels = lambda a: np.clip(np.rint(np.asarray(a) * unit), 0, 255).astype(np.uint8).tolist()  # noqa: E731
        out["reconstructions"] = {"label": y[picked].astype(int).tolist(), "input": pixels(X[picked]),
                                  "output": pixels(rebuilt)}
    return out


def _random_split(n: int, train_ratio: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < train_ratio < 1:
        raise ValueError(f"train_ratio must be in (0, 1); got {train_ratio}")
    order = rng.permutation(n)
    cut = int(round(n * train_ratio))
    return order[:cut], order[cut:]


# ---------------------------------------------------------------------------------------- protocols
def topk_split(dataset: Dataset, seed: int, *, train_ratio: float = 0.5, remove_train_anomalies: bool = True,
               test_anomaly_ratio: float | None = None, scaler: str | None = None) -> tuple[Split, dict]:
    """The `topk` protocol's seeded train/test split (see `topk`) and its conventions for the record."""
    rng = np.random.default_rng(seed)
    if dataset.split is not None and (dataset.split == "train").any() and (dataset.split == "test").any():
        train_rows, test_rows = np.flatnonzero(dataset.split == "train"), np.flatnonzero(dataset.split == "test")
        split_kind = "official"
    else:
        train_rows, test_rows = _random_split(len(dataset.y), train_ratio, rng)
        split_kind = "random"
    if remove_train_anomalies:
        train_rows = train_rows[dataset.y[train_rows] == 0]
    X_test, y_test = dataset.X[test_rows], dataset.y[test_rows]
    if test_anomaly_ratio is not None:
        X_test, y_test = _resample_anomaly_ratio(X_test, y_test, test_anomaly_ratio, rng)
    split = _scale(Split(dataset.X[train_rows], dataset.y[train_rows], X_test, y_test), scaler)
    return split, {"split": split_kind, "train_ratio": train_ratio, "remove_train_anomalies": remove_train_anomalies,
                   "test_anomaly_ratio": test_anomaly_ratio, "scaler": scaler}


def topk(factory: DetectorFactory, dataset: Dataset, seed: int, *, anomaly_ratio: float | None = None,
         threshold_source: str = "test", **split_conventions: Any) -> dict:
    """DAGMM / ALAD / RCGAN / MAESI tabular protocol.

    A seeded random split into train/test (`train_ratio`, default 0.5); anomalies dropped from train
    unless `remove_train_anomalies=False` (the ALAD code keeps them on Arrhythmia); optionally the test
    set resampled to `test_anomaly_ratio` and scaled (`scaler`); the top r % of test scores predicted
    anomalous, r = `anomaly_ratio` (default: the dataset's nominal ratio). `threshold_source="test"`
    takes the percentile of the test scores (the papers' practice); `"train"` that of the training
    scores. A dataset with an official train/test split (NSL-KDD) uses it instead of a random split.
    """
    split, conventions = topk_split(dataset, seed, **split_conventions)
    r = dataset.anomaly_ratio if anomaly_ratio is None else anomaly_ratio
    detector, scores, timing = _fit_and_score(factory, split)
    if threshold_source == "test":
        threshold = float(np.percentile(scores, 100 * (1 - r)))
    elif threshold_source == "train":
        threshold = float(np.percentile(detector.decision_scores_, 100 * (1 - r)))
    else:
        raise ValueError(f"threshold_source must be 'test' or 'train'; got {threshold_source!r}")
    return {"metrics": topk_metrics(split.y_test, scores, threshold), **timing,
            "conventions": {**conventions, "anomaly_ratio": r, "threshold_source": threshold_source}}


def _class_split(dataset: Dataset, seed: int, test_ratio: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Official train/test rows, or (offline MNIST: test set only) a seeded split stratified by class."""
    if dataset.classes is None:
        raise ValueError(f"{dataset.name} has no classes; class protocols need a multi-class data set")
    split = dataset.split
    if split is not None and (split == "train").any() and (split == "test").any():
        return np.flatnonzero(split == "train"), np.flatnonzero(split == "test"), "official"
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(dataset.classes))
    train, test = train_test_split(rows, test_size=test_ratio, random_state=seed, stratify=dataset.classes)
    return np.sort(train), np.sort(test), f"seeded {1 - test_ratio:.0%}/{test_ratio:.0%} split of the available rows"


def _class_protocol(factory: DetectorFactory, dataset: Dataset, seed: int, normal: Callable[[np.ndarray], np.ndarray],
                    test_ratio: float, conventions: dict) -> dict:
    train_rows, test_rows, split_kind = _class_split(dataset, seed, test_ratio)
    is_normal = normal(dataset.classes)
    train_rows = train_rows[is_normal[train_rows]]
    split = Split(dataset.X[train_rows], np.zeros(len(train_rows), dtype=np.int64),
                  dataset.X[test_rows], (~is_normal[test_rows]).astype(np.int64))
    _, scores, timing = _fit_and_score(factory, split)
    return {"metrics": ranking_metrics(split.y_test, scores), **timing,
            "conventions": {"split": split_kind, **conventions}}


def one_class(factory: DetectorFactory, dataset: Dataset, seed: int, *, normal_class: Any,
              test_ratio: float = 0.2, design: str = "split", negative_share: float = 0.5) -> dict:
    """One class normal, all others anomalous; AUROC on a test set.

    ``design="split"`` (default; AMA Table 2, RCGAN Table 2): train on the normal class of the train
    split, test on the whole test split. Without an official split (offline MNIST) the rows are split
    per seed, stratified by class, and the run records it.
    ``design="in-class"`` (MAESI Table 5, after GPND and OCGAN): every row of the normal class, seeded
    ``1 - test_ratio`` / ``test_ratio`` into train and test; negatives drawn at random (seeded) from the
    other classes so that they make ``negative_share`` of the test set."""
    if design == "split":
        return _class_protocol(factory, dataset, seed, lambda c: c == normal_class, test_ratio,
                               {"normal_class": _plain(normal_class), "test_ratio": test_ratio, "design": design})
    if design != "in-class":
        raise ValueError(f"design must be 'split' or 'in-class'; got {design!r}")
    if not 0 < negative_share < 1:
        raise ValueError(f"negative_share must be in (0, 1); got {negative_share!r}")
    if dataset.classes is None:
        raise ValueError(f"{dataset.name} has no classes; class protocols need a multi-class data set")
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(dataset.classes == normal_class))
    others = np.flatnonzero(dataset.classes != normal_class)
    if len(normal) < 2:
        raise ValueError(f"class {normal_class!r} of {dataset.name} has {len(normal)} rows; need at least 2")
    n_test = max(1, int(round(test_ratio * len(normal))))
    train, test_normal = normal[n_test:], normal[:n_test]
    n_negative = min(len(others), int(round(n_test * negative_share / (1 - negative_share))))
    negatives = rng.choice(others, size=n_negative, replace=False)
    test = np.concatenate([test_normal, negatives])
    split = Split(dataset.X[train], np.zeros(len(train), np.int64), dataset.X[test],
                  np.r_[np.zeros(n_test, np.int64), np.ones(n_negative, np.int64)])
    _, scores, timing = _fit_and_score(factory, split)
    return {"metrics": ranking_metrics(split.y_test, scores), **timing,
            "conventions": {"normal_class": _plain(normal_class), "design": design, "test_ratio": test_ratio,
                            "negative_share": negative_share,
                            "split": f"seeded {1 - test_ratio:.0%}/{test_ratio:.0%} split of the normal class, "
                                     f"negatives {negative_share:.0%} of the test set"}}


def leave_one_out(factory: DetectorFactory, dataset: Dataset, seed: int, *, anomaly_class: Any,
                  test_ratio: float = 0.2) -> dict:
    """One class anomalous, the other classes normal (MAESI Tables 1 and 3)."""
    return _class_protocol(factory, dataset, seed, lambda c: c != anomaly_class, test_ratio,
                           {"anomaly_class": _plain(anomaly_class), "test_ratio": test_ratio})


def ood(factory: DetectorFactory, dataset: Dataset, seed: int, *, against: str, test_ratio: float = 0.2) -> dict:
    """Train on `dataset`'s train split; test its test split (normal) against `against`'s test split
    (anomalous): AMA Table 1, FashionMNIST vs MNIST."""
    other = load_dataset(against)
    if other.X.shape[1:] != dataset.X.shape[1:]:
        raise ValueError(f"{against} samples have shape {other.X.shape[1:]}, {dataset.name} {dataset.X.shape[1:]}")
    train_rows, test_rows, split_kind = _class_split(dataset, seed, test_ratio)
    _, other_test, other_kind = _class_split(other, seed, test_ratio)
    X_test = np.concatenate([dataset.X[test_rows], other.X[other_test]])
    y_test = np.concatenate([np.zeros(len(test_rows), np.int64), np.ones(len(other_test), np.int64)])
    split = Split(dataset.X[train_rows], np.zeros(len(train_rows), np.int64), X_test, y_test)
    _, scores, timing = _fit_and_score(factory, split)
    return {"metrics": ranking_metrics(y_test, scores), **timing,
            "conventions": {"against": against, "split": split_kind, "against_split": other_kind}}


def arn_split(dataset: Dataset, seed: int, *, contamination: float = 0.0, labelled: float = 0.0,
              validation: bool = False, invert_labels: bool = False, scaler: str | None = "minmax") -> tuple[Split, dict]:
    """ARN §IV-A: normals 80/15/5 train/test/validation, anomalies 75/25 test/validation. Optional
    anomalies moved into train: `contamination` p = A/N unlabelled, or `labelled` p = A/N labelled.
    `validation=True` keeps the validation rows in the split (for detectors that select their epoch on
    them, as the ARN code does); otherwise they are left out. `invert_labels` swaps normal and anomalous
    (ARN's KDDCUP99 from kdd99). Min-max scaling fitted on the training rows, as the ARN code does
    (`scaler=None` to switch off). The split of the `auc`, `contamination` and `weak-supervision` runs."""
    rng = np.random.default_rng(seed)
    y = 1 - dataset.y if invert_labels else dataset.y
    normal = rng.permutation(np.flatnonzero(y == 0))
    anomalous = rng.permutation(np.flatnonzero(y == 1))
    n_train = int(round(0.80 * len(normal)))
    n_test = int(round(0.15 * len(normal)))
    train, test_normal, val_normal = normal[:n_train], normal[n_train:n_train + n_test], normal[n_train + n_test:]
    n_extra = int(round(max(contamination, labelled) * n_train))
    if n_extra >= len(anomalous):
        raise ValueError(f"{dataset.name} has {len(anomalous)} anomalies; cannot move {n_extra} into train")
    extra, anomalous = anomalous[:n_extra], anomalous[n_extra:]
    n_test_anomalous = int(round(0.75 * len(anomalous)))
    test_anomalous, val_anomalous = anomalous[:n_test_anomalous], anomalous[n_test_anomalous:]
    test = np.concatenate([test_normal, test_anomalous])
    train_rows = np.concatenate([train, extra])
    fit_labels = None
    if labelled:
        fit_labels = np.concatenate([np.zeros(len(train), np.int64), np.ones(len(extra), np.int64)])
    split = Split(dataset.X[train_rows], y[train_rows], dataset.X[test], y[test], fit_labels)
    if validation:
        val = np.concatenate([val_normal, val_anomalous])
        split.X_val, split.y_val = dataset.X[val], y[val].astype(np.int64)
    return _scale(split, scaler), {"split": "arn 80/15/5 normal, 75/25 anomalous", "n_train_anomalies": int(n_extra),
                                   "invert_labels": bool(invert_labels), "scaler": scaler}


def _arn_run(factory: DetectorFactory, split: Split, conventions: dict) -> dict:
    """Fit and score one ARN-protocol split; AUROC/AUPRC and how the epoch was chosen."""
    detector, scores, timing = _fit_and_score(factory, split)
    selection = ("labelled validation split" if split.X_val is not None and detector.accepts_validation
                 else "model default")
    return {"metrics": ranking_metrics(split.y_test, scores), **timing,
            "conventions": {**conventions, "selection": selection}}


def auc(factory: DetectorFactory, dataset: Dataset, seed: int, **split_conventions: Any) -> dict:
    """ARN's protocol: AUROC and AUPRC on the test part of `arn_split` (its keywords: `scaler`,
    `validation` — the labelled validation rows for detectors that choose their epoch on them, ARN's
    default — and `invert_labels`, the default on kdd99: ARN's KDDCUP99, attacks anomalous)."""
    return _arn_run(factory, *arn_split(dataset, seed, **split_conventions))


def contamination(factory: DetectorFactory, dataset: Dataset, seed: int, *, p: float = 0.05,
                  **split_conventions: Any) -> dict:
    """ARN Table III: the `auc` split with anomalies added to train, unlabelled, at p = A/N."""
    split, conventions = arn_split(dataset, seed, contamination=p, **split_conventions)
    return _arn_run(factory, split, {**conventions, "p": p})


def weak_supervision(factory: DetectorFactory, dataset: Dataset, seed: int, *, p: float = 0.01,
                     **split_conventions: Any) -> dict:
    """ARN Table IV: the `auc` split with p = A/N labelled anomalies given to `fit(X, y)`."""
    if not factory().supports_y:
        raise ValueError(f"{type(factory()).__name__} does not use labelled anomalies; weak-supervision "
                         "needs a model whose fit takes y (ama, arn)")
    split, conventions = arn_split(dataset, seed, labelled=p, **split_conventions)
    return _arn_run(factory, split, {**conventions, "p": p})


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


PROTOCOLS: dict[str, Callable[..., dict]] = {
    "topk": topk,
    "one-class": one_class,
    "leave-one-out": leave_one_out,
    "ood": ood,
    "auc": auc,
    "contamination": contamination,
    "weak-supervision": weak_supervision,
}

# Protocols that run once per class of the data set, and the keyword naming that class.
PER_CLASS = {"one-class": "normal_class", "leave-one-out": "anomaly_class"}


def resolve_conventions(protocol: str, dataset: str, model_cls: type[BaseDetector],
                        user: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of one protocol run: dataset paper's, then model paper's, then the user's."""
    conventions = dict(TOPK_DATASET_DEFAULTS.get(dataset, {})) if protocol == "topk" else {}
    if protocol in ARN_PROTOCOLS:
        conventions.update(ARN_DATASET_DEFAULTS.get(dataset, {}))
    model_defaults = model_cls.protocol_defaults.get(protocol, {})
    conventions.update(model_defaults.get("*", {}))  # the model paper's rule for every dataset
    conventions.update(model_defaults.get(dataset, {}))
    conventions.update(user or {})
    return conventions


def get_protocol(name: str) -> Callable[..., dict]:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
