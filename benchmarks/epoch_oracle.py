"""ARN (`auc` protocol, AUROC) or RCGAN (`topk` protocol, F1) with the test metric of every epoch: how
far the epoch the detector keeps (ARN: lowest labelled validation BCE, the authors' rule; RCGAN on
KDD99: its `selection` criterion; otherwise the last epoch) is from the best epoch *on the test labels*
— an upper bound for any epoch-selection rule with rows scored one by one.

Same split, conventions, parameters and seeds as `advad bench --models MODEL --protocol auc|topk`
(seed s = the run of seed s), so the metric at the kept epoch must equal the benchmark's.

    python benchmarks/epoch_oracle.py arn kdd99-rev --seed-list 0,1,2,3,4 > trace.json
    python benchmarks/epoch_oracle.py rcgan kdd99 --seed-list 5,6,7,8,9 --param learning_rate=3e-5 > trace.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from advad.cli import _parse_params
from advad.data import load_dataset
from advad.engine import Selector, eval_mode
from advad.models import get_model_class
from advad.protocols import arn_split, resolve_conventions, topk_metrics, topk_split

PROTOCOL = {"arn": "auc", "rcgan": "topk"}
# the detector's test score from its inference networks, as `decision_function` ranks rows
TEST_SCORES = {
    "arn": lambda det, nets, x: nets["D"](x),  # logits: the same ranking as p(1|x)
    "rcgan": lambda det, nets, x: det._scores_tensor(nets, x, (det._resolved_score(x.dim() > 2),))[0],
}


def traced(model: type, test_scores: Callable, X_test: np.ndarray, metric: Callable[[np.ndarray], float],
           trace: list[dict]) -> type:
    """`model` whose epoch-selection criterion also records `metric` of the test scores after every
    epoch in `trace` (without a criterion of its own: one that keeps the last epoch, as training does)."""

    class Traced(model):
        def _selector(self, config, X):
            selector = super()._selector(config, X)
            X_t = torch.from_numpy(self._transform(X_test)).to(X.device)

            def criterion(trainer) -> float:
                value = selector.criterion(trainer) if selector is not None else -float(trainer.epoch)
                nets = {name: trainer.inference_network(name) for name in trainer.networks}
                with eval_mode(*nets.values()), torch.no_grad():
                    scores = torch.cat([test_scores(self, nets, X_t[i:i + 4096]) for i in range(0, len(X_t), 4096)])
                trace.append({"epoch": trainer.epoch, "criterion": value,
                              "test_metric": metric(scores.double().cpu().numpy().ravel())})
                return value

            return Selector(criterion, start_epoch=selector.start_epoch if selector else 1,
                            mode=selector.mode if selector else "min")

    Traced.__name__ = model.__name__
    return Traced


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(PROTOCOL))
    ap.add_argument("dataset")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--seed-list", default="0,1,2,3,4")
    ap.add_argument("--param", action="append", default=[], help="key=value on top of the benchmark's (JSON values)")
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    model = get_model_class(args.model)
    protocol = PROTOCOL[args.model]
    params = {**model.bench_params(ds, args.budget), **_parse_params(args.param)}
    conventions = resolve_conventions(protocol, args.dataset, model, {})
    name = "auroc" if protocol == "auc" else "f1"
    runs = []
    for seed in [int(s) for s in args.seed_list.split(",")]:
        if protocol == "auc":
            split, _ = arn_split(ds, seed, **conventions)

            def metric(s, y=split.y_test):
                return float(roc_auc_score(y, s))
            fit_kwargs = {"validation_data": (split.X_val, split.y_val)}
        else:
            topk = dict(conventions)
            ratio = topk.pop("anomaly_ratio", ds.anomaly_ratio)
            topk.pop("threshold_source", None)
            split, _ = topk_split(ds, seed, **topk)

            def metric(s, y=split.y_test, ratio=ratio):
                return topk_metrics(y, s, float(np.percentile(s, 100 * (1 - ratio))))["f1"]
            fit_kwargs = {}
        trace: list[dict] = []
        t0 = time.time()
        det = traced(model, TEST_SCORES[args.model], split.X_test, metric, trace)(random_state=seed, **params)
        det.fit(split.X_train, **fit_kwargs)
        kept = metric(det.decision_function(split.X_test))
        best = max(trace, key=lambda r: r["test_metric"])
        run = {"model": args.model, "dataset": args.dataset, "seed": seed, "budget": args.budget, "metric": name,
               "params": params, "fit_seconds": time.time() - t0, "kept": kept, "epoch_kept": det.best_epoch_,
               "oracle": best["test_metric"], "epoch_oracle": best["epoch"],
               "last": trace[-1]["test_metric"], "trace": trace}
        runs.append(run)
        print(seed, {k: run[k] for k in ("kept", "oracle", "epoch_oracle", "last")}, f"{run['fit_seconds']:.0f}s",
              file=sys.stderr, flush=True)
    summary = {key: {"mean": float(np.mean([r[key] for r in runs])), "n": len(runs),
                     "std": float(np.std([r[key] for r in runs], ddof=1)) if len(runs) > 1 else 0.0}
               for key in ("kept", "oracle", "last")}
    print(json.dumps({"metric": name, **summary}), file=sys.stderr)
    json.dump({"runs": runs, "summary": summary}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
