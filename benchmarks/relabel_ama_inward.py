"""One-off (2026-12-03): AMA's default negatives became ``atypical="scaled"`` (the authors' code) in place
of the paper's shell ``"inward"``. Every AMA run stored before ran with ``"inward"`` without saying so;
this script makes each such record what ``--param atypical=inward`` would have written: the parameter
in `params`, and the key, params hash and variant label of that cell, so that neither the scoreboard nor
a re-run of the default command into the same store mistakes them for runs of the new default.
Metrics, timings and everything else stay as written.

Usage: ``python benchmarks/relabel_ama_inward.py STORE_DIR [...] [--dry-run]``. A run is rewritten only
if the cell rebuilt from its labels has exactly its stored key (the others are counted as unmatched)
and it was written before the default changed (runs of the new default carry no ``atypical`` either).
"""
import json
import sqlite3
import sys

from advad.bench import Cell, _label
from advad.protocols import PER_CLASS
from advad.references import parse_variant

DEFAULT_CHANGED_AT = 1796336100  # 2026-12-03 22:15 UTC
dry = "--dry-run" in sys.argv
for folder in [a for a in sys.argv[1:] if a != "--dry-run"]:
    db = sqlite3.connect(f"{folder}/results.sqlite")
    changed = unmatched = 0
    rows = db.execute("SELECT key, record FROM runs WHERE model = 'ama' AND written_at < ?",
                      (DEFAULT_CHANGED_AT,)).fetchall()
    for key, record in rows:
        run = json.loads(record)
        if "atypical" in run.get("params", {}):
            continue
        labelled = parse_variant(run.get("variant"))
        user = {k: v for k, v in labelled.items() if k in run.get("params", {})}  # settings that were defaults then
        task = run.get("task")
        if run["protocol"] in PER_CLASS:  # the class is the task and a convention
            cells = [Cell(run["model"], run["dataset"], run["protocol"], run["seed"], run["budget"], user,
                          parse_variant(task), task=task)]
        else:  # the user's protocol conventions are the task label (a preset's cells also keep it as task)
            cells = [Cell(run["model"], run["dataset"], run["protocol"], run["seed"], run["budget"], user, conv,
                          task=cell_task) for conv in ({}, parse_variant(task)) for cell_task in (None, task)]
        cell = next((c for c in cells if c.key == key), None)
        if cell is None:
            unmatched += 1
            continue
        new_cell = Cell(cell.model, cell.dataset, cell.protocol, cell.seed, cell.budget,
                        {**cell.params, "atypical": "inward"}, cell.conventions, task=cell.task)
        new = {**run, "key": new_cell.key, "params_hash": new_cell.params_hash,
               "params": {**run["params"], "atypical": "inward"},
               "variant": _label({**labelled, "atypical": "inward"})}
        if not dry:
            db.execute("UPDATE runs SET key = ?, params_hash = ?, record = ? WHERE key = ?",
                       (new_cell.key, new_cell.params_hash, json.dumps(new), key))
        changed += 1
    db.commit()
    print(folder, "rewritten" if not dry else "would rewrite", changed, "unmatched", unmatched, "of", len(rows))
