"""The :class:`Dataset` container (contract: docs/architecture.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A loaded benchmark dataset.

    - ``X``: float32 ``(n, d)`` for tabular data; uint8 ``(n, C, H, W)`` for images.
    - ``y``: int64 ``(n,)``, 1 = anomaly under the dataset's default convention.
    - ``classes``: original class labels (digit, attack name, arrhythmia class) or None.
    - ``split``: official split per row (``"train"``/``"test"``) or None.
    - ``feature_names``, ``categorical_groups`` (column indices of each one-hot group),
      ``numeric_columns``.
    - ``anomaly_ratio``: nominal ratio used by the ``topk`` protocol.
    - ``notes``: what the loader did (preprocessing, deviations from the papers).
    - ``kind``: ``"tabular"`` or ``"image"``.

    Arrays returned by :func:`advad.data.load_dataset` are shared read-only views of an in-process
    cache: copy them (``ds.X.copy()``) before modifying them in place.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    classes: np.ndarray | None = None
    split: np.ndarray | None = None
    feature_names: list[str] | None = None
    categorical_groups: list[list[int]] = field(default_factory=list)
    numeric_columns: list[int] = field(default_factory=list)
    anomaly_ratio: float | None = None
    notes: str = ""
    kind: str = "tabular"

    def __post_init__(self):
        X = np.asarray(self.X)
        y = np.asarray(self.y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"Dataset {self.name!r}: y must have shape ({len(X)},), got {y.shape}")
        if y.dtype != np.int64:
            y = y.astype(np.int64)
        if self.kind not in ("tabular", "image"):
            raise ValueError(f"Dataset {self.name!r}: kind must be 'tabular' or 'image', got {self.kind!r}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if self.anomaly_ratio is None:
            object.__setattr__(self, "anomaly_ratio", float(y.mean()) if len(y) else 0.0)

    # -- conveniences -----------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Columns for tabular data; C*H*W for images."""
        return int(np.prod(self.X.shape[1:]))

    @property
    def n_anomalies(self) -> int:
        return int(self.y.sum())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.X.shape)

    def subset(self, index, *, name: str | None = None) -> "Dataset":
        """Rows ``index`` (indices or boolean mask) as a new Dataset with the same metadata."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return dataclasses.replace(
            self,
            name=name or self.name,
            X=self.X[index],
            y=self.y[index],
            classes=None if self.classes is None else self.classes[index],
            split=None if self.split is None else self.split[index],
            feature_names=None if self.feature_names is None else list(self.feature_names),
            categorical_groups=[list(g) for g in self.categorical_groups],
            numeric_columns=list(self.numeric_columns),
        )

    def relabel(self, *, anomaly_classes=None, normal_classes=None, anomaly_ratio: float | None = None,
                note: str | None = None) -> "Dataset":
        """New ``y`` from ``classes``: rows whose class is in ``anomaly_classes`` are anomalies,
        or (``normal_classes``) every row whose class is not normal is an anomaly. Used by the
        one-class / leave-one-out protocols on image data. ``anomaly_ratio`` defaults to the
        actual ratio of the new labels."""
        if self.classes is None:
            raise ValueError(f"Dataset {self.name!r} has no classes to relabel from")
        if (anomaly_classes is None) == (normal_classes is None):
            raise ValueError("give exactly one of anomaly_classes, normal_classes")
        if anomaly_classes is not None:
            vals = np.atleast_1d(np.asarray(anomaly_classes, dtype=self.classes.dtype))
            y = np.isin(self.classes, vals)
            what = f"anomaly = class in {vals.tolist()}"
        else:
            vals = np.atleast_1d(np.asarray(normal_classes, dtype=self.classes.dtype))
            y = ~np.isin(self.classes, vals)
            what = f"normal = class in {vals.tolist()}, every other class anomalous"
        unknown = np.setdiff1d(vals, np.unique(self.classes))
        if unknown.size:
            raise ValueError(f"Dataset {self.name!r}: unknown classes {unknown.tolist()}; "
                             f"known: {np.unique(self.classes).tolist()}")
        y = y.astype(np.int64)
        y.flags.writeable = False
        notes = self.notes + f" Relabelled: {note or what}."
        return dataclasses.replace(self, y=y, anomaly_ratio=anomaly_ratio if anomaly_ratio is not None
                                   else float(y.mean()), notes=notes.strip(),
                                   feature_names=None if self.feature_names is None else list(self.feature_names),
                                   categorical_groups=[list(g) for g in self.categorical_groups],
                                   numeric_columns=list(self.numeric_columns))

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, kind={self.kind!r}, X={self.X.dtype}{list(self.X.shape)}, "
                f"anomalies={self.n_anomalies}, anomaly_ratio={self.anomaly_ratio:.4g}, "
                f"split={'yes' if self.split is not None else 'no'})")
