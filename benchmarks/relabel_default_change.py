"""Relabel stored runs when a benchmark default changes, so that old and new runs never share a label or key.

    python benchmarks/relabel_default_change.py --model rcgan --datasets kdd99 --budgets quick,paper \
        --param spectral_norm=false STORE_DIR [...]

A run's key hashes the user's parameters, not `bench_params`, so after a default changes a re-run would
find the old run under its old key. Every matching run that does not set the parameter itself gets it
added to its user parameters (`params` of the record too): variant label, key and params hash are
recomputed for that cell (`advad.bench.Cell`, `setting_labels`); a run is changed only if its stored
key is reproduced first. Metrics and every other field stay as written.
"""
from __future__ import annotations

import argparse
import json
import sqlite3

from advad.bench import Cell, setting_labels
from advad.cli import _parse_params
from advad.references import parse_variant


def relabel(folder: str, model: str, datasets: set[str], budgets: set[str], added: dict) -> tuple[int, int]:
    db = sqlite3.connect(f"{folder}/results.sqlite")
    changed = unmatched = 0
    for key, record in db.execute("SELECT key, record FROM runs WHERE model = ?", (model,)).fetchall():
        run = json.loads(record)
        if run["dataset"] not in datasets or run["budget"] not in budgets:
            continue
        user = parse_variant(run.get("variant"))
        if set(added) & set(user):
            continue
        task = run.get("task")
        old = Cell(model, run["dataset"], run["protocol"], run["seed"], run["budget"], user,
                   parse_variant(task), task=task, variant=run.get("variant", ""), paper=run.get("paper"),
                   dataset_options=run.get("dataset_options") or {})
        if old.key != key:
            unmatched += 1
            continue
        new_cell = Cell(old.model, old.dataset, old.protocol, old.seed, old.budget, {**user, **added},
                        old.conventions, task=old.task, variant=old.variant, paper=old.paper,
                        dataset_options=old.dataset_options)
        variant, _ = setting_labels(new_cell)
        run.update(key=new_cell.key, params_hash=new_cell.params_hash, variant=variant,
                   params={**run.get("params", {}), **added})
        db.execute("UPDATE runs SET key = ?, params_hash = ?, record = ? WHERE key = ?",
                   (new_cell.key, new_cell.params_hash, json.dumps(run), key))
        changed += 1
    db.commit()
    return changed, unmatched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--budgets", required=True)
    ap.add_argument("--param", action="append", required=True, help="the former default, KEY=VALUE")
    ap.add_argument("stores", nargs="+")
    args = ap.parse_args()
    added = _parse_params(args.param)
    for folder in args.stores:
        changed, unmatched = relabel(folder, args.model, set(args.datasets.split(",")),
                                     set(args.budgets.split(",")), added)
        print(f"{folder}: relabelled {changed}, key not reproduced (left alone) {unmatched}")


if __name__ == "__main__":
    main()
