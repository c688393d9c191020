"""Run any installed PyOD detector under advad's protocols: model name `pyod:<ClassName>`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np

from advad.base import BaseDetector
from advad.serialization import ModelFileError


class PyODDetector(BaseDetector):
    """Adapter for `pyod.models.*` detectors, e.g. `make_detector("pyod:LOF", params={"n_neighbors": 20})`.

    PyOD models can only be pickled, so `save` refuses them rather than write an unsafe file.
    """

    accepts_images = False

    def __init__(self, detector: str = "IForest", contamination: float = 0.1, params: dict | None = None,
                 random_state: int | None = None):
        self.detector = detector
        self.contamination = contamination
        self.params = params
        self.random_state = random_state

    def _pyod_class(self) -> type:
        try:
            pyod_models = importlib.import_module("pyod.models")
        except ImportError:
            raise ImportError("PyOD is not installed; install it with `pip install 'advad[pyod]'` "
                              f"to use pyod:{self.detector}") from None
        # PyOD keeps each detector in a module named after it (IForest → iforest, DeepSVDD → deep_svdd);
        # try that module first, then every other module whose optional dependencies are installed.
        snake = "".join(f"_{c.lower()}" if c.isupper() and i and not self.detector[i - 1].isupper() else c.lower()
                        for i, c in enumerate(self.detector))
        names = [self.detector.lower(), snake] + [m.name for m in pkgutil.iter_modules(pyod_models.__path__)]
        for name in dict.fromkeys(names):
            try:
                module = importlib.import_module(f"pyod.models.{name}")
            except ImportError:
                continue
            cls = getattr(module, self.detector, None)
            if isinstance(cls, type) and hasattr(cls, "decision_function"):
                return cls
        raise ValueError(f"PyOD has no detector class named {self.detector!r} (or its module needs a "
                         "package that is not installed)")

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        cls = self._pyod_class()
        accepted = inspect.signature(cls.__init__).parameters
        params = dict(self.params or {})
        if self.random_state is not None and "random_state" in accepted:
            params.setdefault("random_state", self.random_state)
        if "n_features" in accepted:  # e.g. DeepSVDD builds its network in __init__
            params.setdefault("n_features", X.shape[1])
        self.estimator_ = cls(contamination=self.contamination, **params).fit(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.decision_function(X), dtype=np.float64)

    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        raise ModelFileError(f"pyod:{self.detector} cannot be saved: PyOD models exist only as pickles, "
                             "which advad never writes or loads")

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        raise ModelFileError("PyOD detectors are never stored in model files")
