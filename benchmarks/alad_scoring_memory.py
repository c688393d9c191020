"""Peak RSS and throughput of ALAD scoring on KDD99-shaped data (121 features).

    python benchmarks/alad_scoring_memory.py fit /tmp/alad_kdd.advad   # once: a KDD-architecture model
    python benchmarks/alad_scoring_memory.py score /tmp/alad_kdd.advad 50000
    python benchmarks/alad_scoring_memory.py score /tmp/alad_kdd.advad 247000

Each `score` runs in its own process so ru_maxrss is that run's peak. Rows are random float32 (memory
and speed do not depend on the values). Prints one JSON line.
"""
import json
import resource
import sys
import time

import numpy as np


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    X = np.random.default_rng(1).normal(size=(n, 121)).astype(np.float32)
    det.decision_function(X[:100])  # warm-up
    before = rss_mb()
    t0 = time.perf_counter()
    s = det.decision_function(X)
    dt = time.perf_counter() - t0
    print(json.dumps({"rows": n, "seconds": round(dt, 3), "rows_per_second": round(n / dt),
                      "peak_rss_mb": round(rss_mb(), 1), "rss_before_scoring_mb": round(before, 1),
                      "data_mb": round(X.nbytes / 2**20, 1), "finite": bool(np.isfinite(s).all())}))


if __name__ == "__main__":
    main()
