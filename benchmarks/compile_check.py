"""Every PyTorch model's scoring through `torch.compile` (``score_compile=True``), in float32 and bfloat16,
against eager scoring on the reliability suite's easy set (tests/test_reliability.py):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compile_check.py

prints per model and dtype whether it compiled (or which option the model refuses), the first compiled
call's seconds and the largest relative difference from the eager scores."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_reliability import TORCH_MODELS, _easy_set, fit_tiny  # noqa: E402

from advad.models import get_model_class  # noqa: E402


def main() -> None:
    warnings.simplefilter("ignore")
    X, X_test, _ = _easy_set()
    for name in TORCH_MODELS:
        rules = get_model_class(name).param_rules
        det = fit_tiny(name, X)
        for dtype in ("float32", "bfloat16"):
            refused = [p for p, v in (("score_dtype", dtype), ("score_compile", True)) if rules[p](v) is not None]
            if refused:
                print(f"{name:14s} {dtype:9s} refused by the model ({', '.join(refused)})")
                continue
            eager = det.set_params(score_dtype=dtype, score_compile=False).decision_function(X_test)
            start = time.perf_counter()
            compiled = det.set_params(score_compile=True).decision_function(X_test)
            seconds = time.perf_counter() - start
            diff = float(np.max(np.abs(compiled - eager) / np.maximum(np.abs(eager), 1e-6)))
            print(f"{name:14s} {dtype:9s} compiled, first call {seconds:4.1f} s, max relative difference {diff:.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
