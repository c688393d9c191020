"""ARN on the `auc` protocol with the test AUROC of every epoch: how far the validation-BCE epoch (the
authors' rule, advad's default in the ARN protocols) is from the best epoch *on the test labels* — an
upper bound for any epoch-selection rule with rows scored one by one.

Same split, conventions, parameters and seeds as `advad bench --models arn --protocol auc` (seed s =
`--seeds s+1`'s last run), so the AUROC at the validation-selected epoch must equal the benchmark's.

    python benchmarks/arn_epoch_oracle.py kdd99-rev --seed-list 0,1,2,3,4 > trace.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from advad.data import load_dataset
from advad.engine import Selector, eval_mode
from advad.models import get_model_class
from advad.protocols import arn_split, resolve_conventions


def traced_arn(X_test: np.ndarray, y_test: np.ndarray, trace: list[dict]) -> type:
    """ARN whose epoch-selection criterion also records the test AUROC of every epoch in `trace`."""
    base = get_model_class("arn")

    class TracedARN(base):
        def _selector(self, config, X):
            selector = super()._selector(config, X)
            X_t = torch.from_numpy(self._transform(X_test)).to(X.device)

            def criterion(trainer) -> float:
                value = selector.criterion(trainer)
                D = trainer.inference_network("D")
                with eval_mode(D), torch.no_grad():
                    logits = torch.cat([D(X_t[i:i + 4096]) for i in range(0, len(X_t), 4096)])
                trace.append({"epoch": trainer.epoch, "validation_bce": value,
                              "test_auroc": float(roc_auc_score(y_test, logits.double().cpu().numpy().ravel()))})
                return value

            return Selector(criterion, start_epoch=selector.start_epoch, mode=selector.mode)

    return TracedARN


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--seed-list", default="0,1,2,3,4")
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    model = get_model_class("arn")
    params = model.bench_params(ds, args.budget)
    conventions = resolve_conventions("auc", args.dataset, model, {})
    runs = []
    for seed in [int(s) for s in args.seed_list.split(",")]:
        split, _ = arn_split(ds, seed, **{k: v for k, v in conventions.items() if k in ("validation", "invert_labels", "scaler")})
        trace: list[dict] = []
        t0 = time.time()
        det = traced_arn(split.X_test, split.y_test, trace)(random_state=seed, **params)
        det.fit(split.X_train, validation_data=(split.X_val, split.y_val))
        benchmark_auroc = float(roc_auc_score(split.y_test, det.decision_function(split.X_test)))
        chosen = min(trace, key=lambda r: r["validation_bce"])
        best = max(trace, key=lambda r: r["test_auroc"])
        run = {"dataset": args.dataset, "seed": seed, "budget": args.budget, "params": params,
               "fit_seconds": time.time() - t0, "auroc_selected": benchmark_auroc, "epoch_selected": chosen["epoch"],
               "auroc_oracle": best["test_auroc"], "epoch_oracle": best["epoch"], "auroc_last": trace[-1]["test_auroc"],
               "trace": trace}
        runs.append(run)
        print(seed, {k: run[k] for k in ("auroc_selected", "epoch_selected", "auroc_oracle", "epoch_oracle", "auroc_last")},
              f"{run['fit_seconds']:.0f}s", file=sys.stderr, flush=True)
    summary = {key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs], ddof=1))
                     if len(runs) > 1 else 0.0, "n": len(runs)} for key in ("auroc_selected", "auroc_oracle", "auroc_last")}
    print(json.dumps(summary), file=sys.stderr)
    json.dump({"runs": runs, "summary": summary}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
