"""Diagnostic: ALAD on KDD99 (`topk` split of `advad bench`), after every epoch the test F1/AUROC of each
score beside the mean score on 20 000 training rows — does an unsupervised training criterion tell
the good epochs from the bad ones? The trace runs as an engine `Selector` whose criterion only
records (the fit's final weights are irrelevant here).

    python benchmarks/alad_epoch_trace.py 3 > trace_s3.json     # seed 3, `quick` settings
    python benchmarks/alad_epoch_trace.py 2 --param selection='"last"'
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from advad.data import load_dataset
from advad.engine import Selector, eval_mode
from advad.models.alad import ALAD, SCORES
from advad.protocols import resolve_conventions, topk_metrics, topk_split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("seed", type=int)
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--param", action="append", default=[], help="KEY=JSON model parameter")
    args = ap.parse_args()
    ds = load_dataset("kdd99")
    conventions = resolve_conventions("topk", "kdd99", ALAD, {})
    ratio = conventions.pop("anomaly_ratio", ds.anomaly_ratio)
    conventions.pop("threshold_source", None)
    split, _ = topk_split(ds, args.seed, **conventions)
    probe = split.X_train[np.random.default_rng(123).choice(len(split.X_train), 20_000, replace=False)]
    params = {**ALAD.bench_params(ds, args.budget), "selection": "last"}
    params.update({k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.param)})
    trace = []

    class Traced(ALAD):
        def _selector(self, config, X):
            def record(trainer) -> float:
                nets = {k: trainer.inference_network(k) for k in trainer.networks}

                def scores(rows: np.ndarray) -> np.ndarray:
                    x = torch.from_numpy(self._transform(rows))
                    with eval_mode(*nets.values()), torch.inference_mode():
                        return torch.cat([torch.stack(self._scores_tensor(nets, x[i:i + 4096], SCORES), 1)
                                          for i in range(0, len(x), 4096)]).double().numpy()

                train, test = scores(probe), scores(split.X_test)
                row = {"epoch": trainer.epoch}
                for j, kind in enumerate(SCORES):
                    s = test[:, j]
                    m = topk_metrics(split.y_test, s, float(np.percentile(s, 100 * (1 - ratio))))
                    row[kind] = {"test_f1": m["f1"], "test_auroc": m["auroc"], "train_mean": float(train[:, j].mean())}
                trace.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                return 0.0
            return Selector(record)

    t0 = time.time()
    Traced(random_state=args.seed, **params).fit(split.X_train)
    json.dump({"seed": args.seed, "params": params, "fit_seconds": time.time() - t0, "trace": trace}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
