"""ALAD (or RCGAN: `--model rcgan`) on the topk protocol with every score from each fit (the score does
not change training): ALAD's fm/l1/l2/logits, RCGAN's dxx/features/l1/l2.

The split is `advad.protocols.topk_split` with the conventions `advad bench --protocol topk` resolves
for the model and data set (ALAD 50/50; RCGAN 80/20 on KDD99 and Arrhythmia; KDD99's test part at 20 %
anomalies), and the same threshold (top r % of the test scores flagged) and metrics.

    python benchmarks/alad_variants.py arrhythmia --seeds 5 --param use_dzz=false --budget paper
    python benchmarks/alad_variants.py arrhythmia --seed-list 1,2 --keep-train-anomalies
    python benchmarks/alad_variants.py kdd99 --model rcgan --seed-list 3,4 --budget quick

`--keep-train-anomalies` is the protocol's `remove_train_anomalies=false` (the reference code on Arrhythmia).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import advad.models.alad  # noqa: F401  (registers "alad")
import advad.models.rcgan  # noqa: F401  (registers "rcgan")
from advad.data import load_dataset
from advad.models import get_model_class
from advad.protocols import resolve_conventions, topk_metrics, topk_split


def parse_value(text: str):
    for conv in (json.loads,):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--model", default="alad", choices=("alad", "rcgan"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds)")
    ap.add_argument("--keep-train-anomalies", action="store_true")
    ap.add_argument("--param", action="append", default=[])
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    model = get_model_class(args.model)
    params = {**model.bench_params(ds, args.budget)}
    # the conventions `advad bench --protocol topk` would use for this model and data set
    conventions = resolve_conventions("topk", args.dataset, model,
                                      {"remove_train_anomalies": False} if args.keep_train_anomalies else {})
    ratio = conventions.pop("anomaly_ratio", ds.anomaly_ratio)
    conventions.pop("threshold_source", None)  # always the test scores' percentile, as the protocol's default
    for kv in args.param:
        k, v = kv.split("=", 1)
        params[k] = parse_value(v)
    runs = []
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    for seed in seeds:
        split, recorded = topk_split(ds, seed, **conventions)
        t0 = time.time()
        det = model(random_state=seed, **params).fit(split.X_train)
        fit_s = time.time() - t0
        for kind, s in det.score_all(split.X_test).items():
            m = topk_metrics(split.y_test, s, float(np.percentile(s, 100 * (1 - ratio))))
            runs.append({"model": args.model, "dataset": args.dataset, "seed": seed, "score": kind, "params": params,
                         "conventions": recorded, "metrics": m, "fit_seconds": fit_s})
            print(seed, kind, {k: round(v, 3) for k, v in m.items()}, f"{fit_s:.0f}s", file=sys.stderr, flush=True)
    summary = []
    for kind in dict.fromkeys(r["score"] for r in runs):
        f1 = [r["metrics"]["f1"] for r in runs if r["score"] == kind]
        summary.append({"score": kind, "metric": "f1", "mean": float(np.mean(f1)), "std": float(np.std(f1, ddof=1)), "n": len(f1)})
        print(kind, f"F1 {np.mean(f1):.3f} ± {np.std(f1, ddof=1):.3f}", file=sys.stderr)
    json.dump({"runs": runs, "summary": summary}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
