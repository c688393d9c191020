"""Classical baselines the papers compare against: Isolation Forest and one-class SVM (scikit-learn).

Saved through skops with a fixed allow-list of types, so a model file cannot smuggle in code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM

from advad.base import BaseDetector
from advad.models.registry import register
from advad.serialization import ModelFileError

# Types skops does not trust by default but our own estimators contain.
_SKOPS_ALLOWED = {"sklearn.tree._tree.Tree"}


class SklearnDetector(BaseDetector):
    """A scikit-learn outlier estimator behind the advad contract; images are flattened."""

    accepts_images = False

    def _estimator(self) -> Any:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self.estimator_ = self._estimator().fit(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(X)  # scikit-learn: higher = more normal

    def _fitted_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {"skops": np.frombuffer(sio.dumps(self.estimator_), dtype=np.uint8)}

    def _restore_fitted_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        data = arrays["skops"].tobytes()
        try:
            untrusted = set(sio.get_untrusted_types(data=data))
        except Exception as err:  # skops raises assorted errors on damaged content
            raise ModelFileError(f"the scikit-learn part of the model file is damaged ({err})") from err
        if untrusted - _SKOPS_ALLOWED:
            raise ModelFileError(f"the model file holds types advad does not trust: {sorted(untrusted - _SKOPS_ALLOWED)}")
        self.estimator_ = sio.loads(data, trusted=sorted(untrusted))
        if type(self.estimator_) is not type(self._estimator()):
            raise ModelFileError(f"the model file holds a {type(self.estimator_).__name__}, "
                                 f"not the estimator of {type(self).__name__}")


@register("iforest")
class IForest(SklearnDetector):
    """Isolation Forest (Liu et al. 2008); scikit-learn defaults, as in the papers' baseline rows."""

    def __init__(self, contamination: float = 0.1, n_estimators: int = 100, max_samples: Any = "auto",
                 max_features: float = 1.0, bootstrap: bool = False, n_jobs: int | None = None,
                 random_state: int | None = None):
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _estimator(self) -> IsolationForest:
        return IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                               max_features=self.max_features, bootstrap=self.bootstrap,
                               n_jobs=self.n_jobs, random_state=self.random_state)


@register("ocsvm")
class OCSVM(SklearnDetector):
    """One-class SVM (Schölkopf et al. 2001), RBF kernel.

    Kernel SVMs scale quadratically with the number of training rows: `max_train_samples` fits on a
    random subsample (seeded by `random_state`) — the benchmark budgets set it for large data sets.
    """

    def __init__(self, contamination: float = 0.1, kernel: str = "rbf", nu: float = 0.5,
                 gamma: Any = "scale", max_train_samples: int | None = None,
                 random_state: int | None = None):
        self.contamination = contamination
        self.kernel = kernel
        self.nu = nu
        self.gamma = gamma
        self.max_train_samples = max_train_samples
        self.random_state = random_state

    def _estimator(self) -> OneClassSVM:
        return OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=self.gamma)

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        if self.max_train_samples is not None and len(X) > self.max_train_samples:
            rows = np.random.default_rng(self.random_state).choice(len(X), self.max_train_samples, replace=False)
            X = X[rows]
        super()._fit(X, y)

    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        return {"max_train_samples": {"smoke": 500, "quick": 10_000, "paper": 20_000}[budget]}
