"""ALAD on the topk protocol with all four scores from each fit (the score does not change training).

Same split, threshold and metrics as `advad bench --protocol topk` (advad.protocols.topk): a seeded
50/50 split, anomalies removed from train, top r % of the test scores flagged.

    python benchmarks/alad_variants.py arrhythmia --seeds 5 --param use_dzz=false --budget paper
    python benchmarks/alad_variants.py arrhythmia --seed-list 1,2 --keep-train-anomalies

`--keep-train-anomalies` is the protocol's `remove_train_anomalies=false` (the reference code on Arrhythmia).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from advad.data import load_dataset
from advad.models.alad import ALAD
from advad.protocols import ranking_metrics, topk_metrics


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
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", default="paper")
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds)")
    ap.add_argument("--keep-train-anomalies", action="store_true")
    ap.add_argument("--param", action="append", default=[])
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    params = {**ALAD.bench_params(ds, args.budget)}
    for kv in args.param:
        k, v = kv.split("=", 1)
        params[k] = parse_value(v)
    runs = []
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(ds.y))
        cut = int(round(len(ds.y) * 0.5))
        train, test = order[:cut], order[cut:]
        if not args.keep_train_anomalies:
            train = train[ds.y[train] == 0]
        t0 = time.time()
        det = ALAD(random_state=seed, **params).fit(ds.X[train])
        fit_s = time.time() - t0
        scores = det.score_all(ds.X[test])
        y = ds.y[test]
        for kind, s in scores.items():
            thr = float(np.percentile(s, 100 * (1 - ds.anomaly_ratio)))
            m = {**topk_metrics(y, s, thr), **ranking_metrics(y, s)}
            runs.append({"dataset": args.dataset, "seed": seed, "score": kind, "params": params, "keep_train_anomalies": args.keep_train_anomalies,
                         "metrics": m, "fit_seconds": fit_s})
            print(seed, kind, {k: round(v, 3) for k, v in m.items()}, f"{fit_s:.0f}s", file=sys.stderr, flush=True)
    summary = []
    for kind in ("fm", "l1", "l2", "logits"):
        f1 = [r["metrics"]["f1"] for r in runs if r["score"] == kind]
        summary.append({"score": kind, "metric": "f1", "mean": float(np.mean(f1)), "std": float(np.std(f1, ddof=1)), "n": len(f1)})
        print(kind, f"F1 {np.mean(f1):.3f} ± {np.std(f1, ddof=1):.3f}", file=sys.stderr)
    json.dump({"runs": runs, "summary": summary}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
