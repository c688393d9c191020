"""Peak RSS and throughput of ALAD scoring on KDD99-shaped data (121 features).

    python benchmarks/alad_scoring_memory.py fit /tmp/alad_kdd.advad   # once: a KDD-architecture model
    python benchmarks/alad_scoring_memory.py score /tmp/alad_kdd.advad 50000
    python benchmarks/alad_scoring_memory.py score /tmp/alad_kdd.advad 247000

Each `score` runs in its own process so ru_maxrss is that run's peak. Rows are random float32 (memory
and speed do not depend on the values). Prints one JSON line: the first call's
time and memory, and the median rows/s of three calls.
"""
import json
import sys
import time

import numpy as np
from memory_probe import reset_peak, status_mb  # benchmarks/memory_probe.py


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    import advad.models.alad  # noqa: F401
    from advad import load
    from advad.models.alad import ALAD

    if mode == "fit":
        X = np.random.default_rng(0).normal(size=(20_000, 121)).astype(np.float32)
        det = ALAD(architecture="kdd", epochs=1, random_state=0).fit(X)
        det.save(path)
        print(json.dumps({"fit_seconds_per_epoch_20k_rows": det.seconds_per_epoch_}))
        return
    n = int(sys.argv[3])
    det = load(path)
    X = np.random.default_rng(1).standard_normal(size=(n, 121), dtype=np.float32)
    det.decision_function(X[:det.score_batch_size])  # warm-up: one full chunk (oneDNN kernels for its shape)
    reset_peak()
    before = status_mb("VmRSS")
    t0 = time.perf_counter()
    s = det.decision_function(X)
    dt = time.perf_counter() - t0
    peak = status_mb("VmHWM")
    repeats = []  # steady state: the same call twice more (the machine may be shared: take the median)
    for _ in range(2):
        t1 = time.perf_counter()
        det.decision_function(X)
        repeats.append(time.perf_counter() - t1)
    # decision_function = BaseDetector validation (float32 input is not copied; the finiteness check runs
    # chunk by chunk) + ALAD scoring (chunks of score_batch_size rows: flat) + the score vector (8 bytes/row)
    reset_peak()
    before_core = status_mb("VmRSS")
    det._score(X)  # the model's part alone (no validation copy)
    core_increase = status_mb("VmHWM") - before_core
    print(json.dumps({"rows": n, "scoring_only_peak_increase_mb": round(core_increase, 1), "seconds": round(dt, 3), "rows_per_second": round(n / dt),
                      "rows_per_second_median_of_3": round(n / float(np.median([dt, *repeats]))),
                      "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                      "peak_increase_mb": round(peak - before, 1), "data_mb": round(X.nbytes / 2**20, 1),
                      "finite": bool(np.isfinite(s).all())}))


if __name__ == "__main__":
    main()
