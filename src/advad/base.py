"""The estimator contract every advad detector follows (SPEC §3).

`BaseDetector` gives PyOD's fitted attributes (`decision_scores_`, `threshold_`, `labels_`) and
scikit-learn's discipline (`__init__` stores parameters, `fit` returns `self`, `clone` works). It owns
input validation — every bad input ends here with one clear message — and the safe model file.
Subclasses implement `_fit`, `_score`, `_fitted_state` and `_restore_fitted_state`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from advad import __version__
from advad.serialization import ModelFileError, write_model_file


class InputError(ValueError):
    """The data given to a detector cannot be used; the message says why and what to do."""


def _as_array(X: Any) -> np.ndarray:
    """numpy view of numpy arrays, lists and torch tensors (torch is imported only if X is one)."""
    if type(X).__module__.startswith("torch"):
        return X.detach().cpu().numpy()
    return np.asarray(X)


def _check_finite(X: np.ndarray, what: str = "X", chunk_rows: int = 65_536) -> None:
    """Raise `InputError` naming the rows with NaN/inf; checks chunk by chunk so memory stays flat."""
    if all(np.isfinite(X[start:start + chunk_rows]).all() for start in range(0, len(X), chunk_rows)):
        return
    bad_rows = np.flatnonzero(~np.isfinite(X).reshape(len(X), -1).all(axis=1))
    kinds = "NaN" if np.isnan(X).any() else "infinite values"
    raise InputError(
        f"{what} contains {kinds} in {len(bad_rows)} row(s) (first: row {bad_rows[0]}), or values too "
        "large for float32. Impute or drop those rows before calling the detector.")


class TabularEncoder:
    """Turns a pandas DataFrame into a float32 matrix: numeric columns as they are, categorical
    (object, string, category, bool-like strings) columns one-hot encoded, in column order.

    Fitted state is plain JSON (column names, kinds, categories), so it survives save/load safely.
    """

    def __init__(self, columns: list[str], categories: dict[str, list[str]]):
        self.columns = columns
        self.categories = categories  # column -> sorted category labels (as strings)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> "TabularEncoder":
        columns = [str(c) for c in frame.columns]
        if len(set(columns)) != len(columns):
            raise InputError("the DataFrame has duplicate column names; make them unique")
        categories = {}
        for name, col in zip(columns, frame.columns):
            series = frame[col]
            if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
                if series.isna().any():
                    raise InputError(f"categorical column {name!r} has missing values; fill them "
                                     "(e.g. with a 'missing' category) before fitting")
                categories[name] = sorted(series.astype(str).unique().tolist())
        return cls(columns, categories)

    @property
    def categorical_groups(self) -> list[list[int]]:
        """Column indices of each one-hot group in the encoded matrix."""
        groups, start = [], 0
        for name in self.columns:
            width = len(self.categories[name]) if name in self.categories else 1
            if name in self.categories:
                groups.append(list(range(start, start + width)))
            start += width
        return groups

    @property
    def n_features_out(self) -> int:
        return sum(len(self.categories.get(c, [None])) for c in self.columns)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        given = [str(c) for c in frame.columns]
        missing = [c for c in self.columns if c not in given]
        extra = [c for c in given if c not in self.columns]
        if missing or extra:
            raise InputError(f"the DataFrame's columns differ from those seen at fit: missing {missing}, "
                             f"unexpected {extra}. Pass the same columns (any order).")
        frame = frame.set_axis(given, axis=1)
        blocks = []
        for name in self.columns:
            series = frame[name]
            if name in self.categories:
                known = self.categories[name]
                codes = pd.Index(known).get_indexer(series.astype(str))
                if (codes < 0).any():
                    unseen = sorted(set(series.astype(str)[codes < 0]))[:5]
                    raise InputError(f"column {name!r} has categories not seen at fit: {unseen}. "
                                     f"Known categories: {known[:10]}{'...' if len(known) > 10 else ''}. "
                                     "Map them to a known category or refit on data that contains them.")
                block = np.zeros((len(frame), len(known)), dtype=np.float32)
                block[np.arange(len(frame)), codes] = 1.0
            else:
                try:
                    block = series.to_numpy(dtype=np.float64)[:, None]
                except (TypeError, ValueError) as err:
                    raise InputError(f"column {name!r} was numeric at fit but is not now ({err})") from err
            blocks.append(block)
        return np.hstack(blocks).astype(np.float64)

    def to_json(self) -> dict:
        return {"columns": self.columns, "categories": self.categories}


# ------------------------------------------------------------------ declarative parameter checks
ParamRule = Callable[[Any], "str | None"]  # a parameter's value -> what is wrong with it, or None


def one_of(*choices: Any) -> ParamRule:
    """The value must be one of `choices`."""
    return lambda value: None if value in choices else f"must be one of {', '.join(map(repr, choices))}"


def positive_int(*, optional: bool = True, minimum: int = 1) -> ParamRule:
    """An integer ≥ `minimum` (or None when `optional`)."""
    def check(value: Any) -> str | None:
        if (value is None and optional) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                                            and value >= minimum):
            return None
        return f"must be an integer >= {minimum}" + (" or None" if optional else "")
    return check


def number_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
              optional: bool = False) -> ParamRule:
    """A real number in the interval [low, high] (ends open as asked; None allowed when `optional`)."""
    text = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"

    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
              and (low < value if low_open else low <= value) and (value < high if high_open else value <= high))
        return None if ok else f"must be a number in {text}" + (" or None" if optional else "")
    return check


class BaseDetector(BaseEstimator):
    """Base class of every advad detector. Higher scores mean more anomalous."""

    model_name: ClassVar[str] = ""      # set by `advad.models.registry.register`
    supports_y: ClassVar[bool] = False  # whether `fit` uses labels of known anomalies
    accepts_validation: ClassVar[bool] = False  # whether `fit` takes validation_data=(X_val, y_val)
    accepts_images: ClassVar[bool] = True
    # Protocol conventions of the model's paper: {protocol: {dataset: {keyword: value}}}, e.g. RCGAN's
    # 80/20 split on KDD99. Applied by the benchmarks; the user's --protocol-param still wins.
    protocol_defaults: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    # What each constructor parameter must be, checked at `fit` (subclasses extend the dict).
    param_rules: ClassVar[dict[str, ParamRule]] = {"contamination": number_in(0, 0.5, low_open=True)}

    def __init__(self, contamination: float = 0.1):
        self.contamination = contamination

    # ------------------------------------------------------------------ hooks for subclasses
    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able metadata and arrays that, with the parameters, reproduce the fitted detector."""
        raise NotImplementedError

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        """Parameters a benchmark run uses on `dataset` at `budget` (smoke | quick | paper)."""
        return {}

    # ------------------------------------------------------------------ public API
    def fit(self, X: Any, y: Any = None, **fit_kwargs: Any) -> "BaseDetector":
        """Fit on X (rows assumed normal unless `y` marks known anomalies, where supported)."""
        self._check_params()
        X = self._validate(X, fitting=True)
        if len(X) < 2:
            raise InputError(f"fit needs at least 2 rows; got {len(X)}")
        if y is not None:
            y = np.asarray(_as_array(y)).ravel()
            if len(y) != len(X):
                raise InputError(f"y has {len(y)} labels but X has {len(X)} rows")
            if not np.isin(y, [0, 1]).all():
                raise InputError("y must contain only 0 (normal / unknown) and 1 (known anomaly)")
            y = y.astype(np.int64) if self.supports_y else None
        self._fit(X, y, **fit_kwargs)
        self.decision_scores_ = self._checked_scores(X, fitting=True)
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - self.contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row of X, shape (n,); higher = more anomalous."""
        self._check_fitted()
        return self._checked_scores(self._validate(X, fitting=False), fitting=False)

    def predict(self, X: Any) -> np.ndarray:
        """1 for rows scored above `threshold_` (set at fit from `contamination`), else 0."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def _validation_pair(self, validation_data: Any) -> tuple[np.ndarray, np.ndarray]:
        """Checked ``(X_val, y_val)`` for epoch selection on labelled data: rows like the training rows,
        labels 0 (normal) and 1 (anomaly), both present."""
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError) as err:
            raise InputError("validation_data must be a pair (X_val, y_val)") from err
        X_val = self._validate(X_val, fitting=False)
        y_val = np.asarray(_as_array(y_val)).ravel()
        if len(y_val) != len(X_val) or not np.isin(y_val, [0, 1]).all() or len(np.unique(y_val)) < 2:
            raise InputError("validation_data must be (X_val, y_val) with y_val of 0 (normal) and 1 "
                             "(anomaly), both present, one label per row")
        return X_val, y_val.astype(np.int64)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted detector to `path` (zip of JSON + safetensors; never a pickle)."""
        self._check_fitted()
        params = self.get_params(deep=False)
        try:
            json.dumps(params)
        except TypeError as err:
            raise ModelFileError(f"cannot save {type(self).__name__}: a parameter is not JSON-serialisable "
                                 f"({err}); use a named option instead of a Python object") from err
        state_meta, state_arrays = self._fitted_state()
        meta = {
            "advad_version": __version__,
            "model": self.model_name,
            "params": params,
            "tuple_params": sorted(k for k, v in params.items() if isinstance(v, tuple)),  # JSON has lists only
            "base": {"threshold": self.threshold_, "input_shape": list(self.input_shape_),
                     "encoder": self.encoder_.to_json() if self.encoder_ else None},
            "state": state_meta,
        }
        arrays = {"base.decision_scores": self.decision_scores_,
                  **{f"state.{k}": np.asarray(v) for k, v in state_arrays.items()}}
        write_model_file(path, meta, arrays)

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Counterpart of `save`, called by `advad.load` on a detector built from the saved params."""
        for key in meta.get("tuple_params", []):
            setattr(self, key, tuple(getattr(self, key)))
        base = meta["base"]
        encoder = base.get("encoder")
        self.encoder_ = TabularEncoder(encoder["columns"], encoder["categories"]) if encoder else None
        self.input_shape_ = tuple(base["input_shape"])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        if self.encoder_ is not None:
            self.feature_names_in_ = np.asarray(self.encoder_.columns, dtype=object)
        self.decision_scores_ = arrays["base.decision_scores"]
        self.threshold_ = float(base["threshold"])
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        state = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
        self._restore_fitted_state(meta["state"], state)

    # ------------------------------------------------------------------ validation
    def _check_params(self, names: Any = None) -> None:
        """Check every parameter (or those in `names`) against `param_rules`; subclasses add checks that
        span parameters."""
        for name in self.param_rules if names is None else names:
            value = getattr(self, name)
            problem = self.param_rules[name](value)
            if problem:
                raise InputError(f"{name} {problem}; got {value!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _validate(self, X: Any, fitting: bool) -> np.ndarray:
        """Return X as float32 (n, d) or (n, C, H, W), or raise one clear `InputError`."""
        name = type(self).__name__
        if X is None:
            raise InputError("X is None; pass an array, DataFrame or tensor of shape (n_samples, n_features)")
        if isinstance(X, pd.Series):
            raise InputError("X is a pandas Series; pass a DataFrame (X.to_frame() for one feature, "
                             "X.to_frame().T for one row)")
        if isinstance(X, pd.DataFrame):
            if X.shape[0] == 0:
                raise InputError("X is empty (0 rows)")
            if X.shape[1] == 0:
                raise InputError(f"X is a DataFrame with no columns (shape {X.shape})")
            if fitting:
                self.encoder_ = TabularEncoder.fit(X)
                self.feature_names_in_ = np.asarray(self.encoder_.columns, dtype=object)
            elif getattr(self, "encoder_", None) is None:
                X = X.to_numpy()  # fitted on an array: accept an all-numeric frame of the same width
            if getattr(self, "encoder_", None) is not None and isinstance(X, pd.DataFrame):
                X = self.encoder_.transform(X)
        elif fitting:
            self.encoder_ = None
        elif getattr(self, "encoder_", None) is not None:
            raise InputError(f"this {name} was fitted on a DataFrame with columns {self.encoder_.columns}; "
                             "pass a DataFrame with those columns")
        if isinstance(X, np.ma.MaskedArray) and np.ma.is_masked(X):
            raise InputError("X is a masked array with masked entries; fill them (X.filled(value)) or drop "
                             "those rows")
        try:
            X = _as_array(X)
        except (TypeError, ValueError) as err:
            raise InputError(f"X could not be read as an array ({err})") from err
        if np.iscomplexobj(X):
            raise InputError(f"X has complex values (dtype {X.dtype}); pass real numbers, e.g. np.abs(X) or "
                             "np.c_[X.real, X.imag]")
        if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise InputError(f"X has non-numeric values (dtype {X.dtype}); pass a DataFrame so categorical "
                             "columns are one-hot encoded, or convert them to numbers")
        if X.ndim < 2:
            raise InputError(f"X must be 2-D (n_samples, n_features) or images (n, H, W) / (n, C, H, W); got "
                             f"{X.ndim}-D shape {X.shape}. Use X.reshape(-1, 1) for one feature or "
                             "X.reshape(1, -1) for one sample.")
        if X.ndim > 4:
            raise InputError(f"X has {X.ndim} dimensions {X.shape}; expected at most 4 (n, C, H, W)")
        if X.ndim == 3:
            X = X[:, None]  # (n, H, W) -> (n, 1, H, W)
        if X.ndim == 4 and not self.accepts_images:
            X = X.reshape(len(X), -1)
        if X.shape[0] == 0:
            raise InputError("X is empty (0 rows)")
        if math.prod(X.shape[1:]) == 0:
            raise InputError(f"X has no features (shape {X.shape})")
        with np.errstate(over="ignore"):
            X = X.astype(np.float32, copy=False)  # no copy of float32 input: the models never write to X
        _check_finite(X)
        if fitting:
            self.input_shape_ = tuple(X.shape[1:])
            self.n_features_in_ = int(math.prod(self.input_shape_))
        elif tuple(X.shape[1:]) != self.input_shape_:
            if X.ndim == 2 and len(self.input_shape_) == 1:
                raise InputError(f"X has {X.shape[1]} features, but this {name} was fitted with "
                                 f"{self.input_shape_[0]} features: pass the columns it was fitted on, in "
                                 "the same order (or refit it on the new columns)")
            raise InputError(f"X has per-sample shape {tuple(X.shape[1:])}, but this {name} was fitted on "
                             f"shape {self.input_shape_}: pass samples of that shape (or refit)")
        return X

    def _checked_scores(self, X: np.ndarray, fitting: bool) -> np.ndarray:
        """Scores of X, or an error: at fit, non-finite training scores mean the model diverged; later,
        non-finite scores of finite input mean rows too far outside the training range (overflow)."""
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, not warned
            scores = np.asarray(self._score(X), dtype=np.float64).reshape(-1)
        bad = ~np.isfinite(scores)
        if not bad.any():
            return scores
        name, rows = type(self).__name__, np.flatnonzero(bad)
        if fitting:
            raise FloatingPointError(
                f"{name} produced {len(rows)} non-finite scores on its training rows: the model diverged. "
                "Refit with a lower learning rate or scale the input.")
        magnitude = float(np.abs(X[rows[0]]).max())
        raise InputError(
            f"{name} cannot score {len(rows)} row(s) (first: row {rows[0]}, largest |value| {magnitude:.3g}): "
            "they are so far outside the training range that the model's arithmetic overflows. Check their "
            "units and scaling, or clip them to a plausible range.")
