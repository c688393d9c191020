"""One-off (2026-11-23): give runs stored before commit "Runs label their user settings" the variant/task
labels `advad.bench.run_cell` now writes. Usage: `python benchmarks/relabel_runs.py STORE_DIR [...]`.

Each run's cell is rebuilt from candidate settings (`--param variant`, or `epochs` + `max_train_samples`;
`--protocol-param p` or `against`) and accepted only if its key equals the stored key; the labels then
come from `advad.bench.setting_labels`. Applied to arn_store_v3 (60 runs) and mirrored_store_images.
Only the labels change; metrics and every other field stay as written.
"""
import json
import sqlite3
import sys

from advad.bench import Cell, setting_labels
from advad.protocols import PER_CLASS

for folder in sys.argv[1:]:
    db = sqlite3.connect(f"{folder}/results.sqlite")
    changed = unmatched = 0
    for key, record in db.execute("SELECT key, record FROM runs").fetchall():
        run = json.loads(record)
        if run.get("paper"):
            continue
        params, conv = run.get("params", {}), run.get("conventions", {})
        per_class_task = run.get("task")
        if per_class_task and per_class_task.split("=")[0] not in PER_CLASS.values():
            per_class_task = None  # a label this script (or run_cell) wrote, not a class
        cand_params = [{}, {k: params[k] for k in ("variant",) if k in params},
                       {k: params[k] for k in ("epochs", "max_train_samples") if k in params}]
        cand_conv = [{}] + [{k: conv[k]} for k in ("p", "against") if k in conv]
        found = None
        for U in cand_params:
            for C in cand_conv:
                if per_class_task:
                    name, _, value = per_class_task.partition("=")
                    C = {**C, name: json.loads(value) if value[:1].isdigit() or value[:1] == "-" else value}
                cell = Cell(run["model"], run["dataset"], run["protocol"], run["seed"], run["budget"], U, C,
                            task=per_class_task)
                if cell.key == key:
                    found = cell
        if found is None:
            unmatched += 1
            continue
        variant, task = setting_labels(found)
        new = dict(run)
        new.pop("variant", None)
        new.pop("task", None)
        if task is not None:
            new["task"] = task
        if variant:
            new["variant"] = variant
        if new != run:
            db.execute("UPDATE runs SET record = ? WHERE key = ?", (json.dumps(new), key))
            changed += 1
    db.commit()
    print(folder, "relabelled", changed, "unmatched", unmatched)
