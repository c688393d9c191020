"""A/B of spectral-norm caching at inference (issue 10): ALAD's KDD99 networks scored with the
parametrizations evaluated once per `decision_function` call (``parametrize.cached()`` in
`advad.engine.batched_inference`, the library's behaviour) against once per network call per chunk
(the context replaced by a no-op), interleaved in one process, rows per CPU second.

    ADVAD_DATA=/work/shared/datasets .venv/bin/python benchmarks/sn_cache_ab.py --out benchmarks/results/sn_cache_ab.json

The model: ALAD (architecture="kdd", spectral norm on, 1 epoch, seed 0) on 20 000 random rows of 121
features; 100 000 rows scored per call, one thread. Also checks that both ways give identical scores.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time

import numpy as np
import torch

import advad.engine as engine
from advad.models.alad import ALAD
from advad.serialization import atomic_write_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/sn_cache_ab.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X_train = rng.random((20_000, 121), dtype=np.float32)
    X = rng.random((100_000, 121), dtype=np.float32)
    det = ALAD(architecture="kdd", epochs=1, random_state=0).fit(X_train)
    cached = engine.parametrize.cached
    modes = {"cached": cached, "per_call": contextlib.nullcontext}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    scores = {}
    for _ in range(args.repeats):
        for mode, context in modes.items():
            engine.parametrize.cached = context
            start = time.process_time()
            scores[mode] = det.decision_function(X)
            rates[mode].append(len(X) / (time.process_time() - start))
    engine.parametrize.cached = cached
    result = {"rows_per_cpu_second": rates, "median": {m: float(np.median(r)) for m, r in rates.items()},
              "speedup": float(np.median(rates["cached"]) / np.median(rates["per_call"])),
              "identical_scores": bool(np.array_equal(scores["cached"], scores["per_call"])),
              "cpu": platform.processor() or platform.machine(), "loadavg": os.getloadavg(),
              "torch": torch.__version__}
    atomic_write_bytes(args.out, json.dumps(result, indent=1).encode())
    print(json.dumps({k: result[k] for k in ("median", "speedup", "identical_scores", "loadavg")}))


if __name__ == "__main__":
    main()
