"""Bench runs on a data set loaded with non-default options, which `advad bench` cannot express.

    python benchmarks/dataset_option_runs.py --model arn --dataset bank --option categorical_only=true \
        --protocol auc --seeds 0-4 [--param variant=numeric] > benchmarks/results/FILE.json

Each run is `advad.bench.run_cell` on the optioned data set (same splits, bench parameters and record
format as `advad bench --budget quick`); the records carry `dataset_options`. Prints the JSON list and
the mean ± std of each metric on stderr."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import advad.bench as bench
from advad.cli import _parse_params, _seeds
from advad.data.registry import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--option", action="append", default=[], help="load option KEY=VALUE (JSON value)")
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--seeds", default="5")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--param", action="append", default=[], help="model parameter KEY=VALUE (JSON value)")
    args = ap.parse_args()
    options, params = _parse_params(args.option, "--option"), _parse_params(args.param)
    optioned = load_dataset(args.dataset, **options)
    bench.load_dataset = lambda name, **kw: optioned if name == args.dataset and not kw else load_dataset(name, **kw)
    runs = []
    for seed in bench._seed_list(_seeds(args.seeds)):
        cell = bench.Cell(model=args.model, dataset=args.dataset, protocol=args.protocol, seed=seed,
                          budget=args.budget, params=params)
        run = bench.run_cell(cell)
        run["dataset_options"] = options
        runs.append(run)
        print(seed, run.get("metrics", run.get("error")), file=sys.stderr, flush=True)
    json.dump(runs, sys.stdout, indent=1, default=str)
    for metric in runs[0].get("metrics", {}):
        values = [r["metrics"][metric] for r in runs if "metrics" in r]
        print(f"{metric}: {np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
