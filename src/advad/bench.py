"""`advad bench`: models × datasets × seeds under one protocol → runs and mean ± std summaries.

The result is the JSON document of SPEC §4. With `out`, every finished run is written at once
(atomically) to `out/results.json`; re-running the same command skips the runs already there, so a
killed sweep resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from advad import __version__
from advad.data import list_datasets, load_dataset
from advad.models import get_model_class, list_models, make_detector
from advad.protocols import PER_CLASS, get_protocol, resolve_conventions
from advad.serialization import atomic_write_bytes

BUDGETS = ("smoke", "quick", "paper")


def _params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _run_key(run: dict) -> tuple:
    return (run["model"], run["dataset"], run["protocol"], run.get("task"), run["seed"], run["budget"],
            _params_hash(run["params"]), _params_hash(run["conventions_requested"]))


def _load_previous(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        return [r for r in json.loads(path.read_text())["runs"] if "error" not in r]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a results file written by advad bench ({err}); "
                         "move it away or choose another --out folder") from err


def run_bench(models: list[str] | None = None, datasets: list[str] | None = None, protocol: str = "topk",
              seeds: int | list[int] = 5, budget: str = "quick", params: dict[str, Any] | None = None,
              protocol_params: dict[str, Any] | None = None, out: str | Path | None = None,
              progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Run every (model, dataset, task, seed) and return {"runs": [...], "summary": [...]}.

    `params` override model parameters in every run (after the model's budget defaults);
    `protocol_params` override protocol conventions. A failing run is recorded with its error and
    the sweep goes on; `summary` covers the successful runs.
    """
    models = list(models) if models else list_models()
    datasets = list(datasets) if datasets else list_datasets(embedded=True)  # ship with advad
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {', '.join(BUDGETS)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    protocol_fn = get_protocol(protocol)
    classes = {name: get_model_class(name) for name in models}  # fails fast on unknown names
    log = log or (lambda message: print(message, file=sys.stderr))
    loaded = {name: load_dataset(name) for name in datasets}  # fails fast on missing files

    results_path = Path(out) / "results.json" if out else None
    runs: list[dict] = _load_previous(results_path) if results_path else []
    done = {_run_key(r) for r in runs}

    plan = []
    for model in models:
        for name, dataset in loaded.items():
            user_conventions = dict(protocol_params or {})
            tasks: list[Any] = [None]
            if protocol in PER_CLASS:
                key = PER_CLASS[protocol]
                tasks = [user_conventions.pop(key)] if key in user_conventions else [
                    c.item() if isinstance(c, np.generic) else c for c in np.unique(dataset.classes)]
            for task in tasks:
                for seed in seed_list:
                    plan.append((model, name, task, seed, user_conventions))

    bar = tqdm(plan, desc="bench", unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for model, name, task, seed, user_conventions in bar:
        cls, dataset = classes[model], loaded[name]
        run_params = {**cls.bench_params(dataset, budget), **(params or {})}
        if "random_state" in cls().get_params(deep=False):
            run_params["random_state"] = seed
        conventions = resolve_conventions(protocol, name, cls, user_conventions)
        if task is not None:
            conventions[PER_CLASS[protocol]] = task
        run = {"model": model, "dataset": name, "protocol": protocol, "seed": seed, "budget": budget,
               "params": run_params, "conventions_requested": conventions}
        if task is not None:
            run["task"] = f"{PER_CLASS[protocol]}={task}"
        if _run_key(run) in done:
            continue
        bar.set_postfix_str(f"{model} {name}{' ' + run['task'] if task is not None else ''} seed {seed}")
        try:
            record = protocol_fn(lambda: make_detector(model, **run_params), dataset, seed, **conventions)
            run.update(record)
        except Exception as err:  # one failing run must not lose the sweep
            run["error"] = f"{type(err).__name__}: {err}"
            log(f"advad bench: {model} on {name} seed {seed} failed: {run['error']}")
            if progress:
                log(traceback.format_exc(limit=3))
        run["advad_version"] = __version__
        runs.append(run)
        if results_path:
            _write(results_path, runs)
    result = {"runs": runs, "summary": summarize(runs)}
    if results_path:
        _write(results_path, runs)
    return result


def _write(path: Path, runs: list[dict]) -> None:
    document = {"runs": runs, "summary": summarize(runs)}
    atomic_write_bytes(path, json.dumps(document, indent=1).encode())


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summarize(runs: list[dict]) -> list[dict]:
    """Mean ± sample standard deviation over seeds, per (model, dataset, protocol, task, metric).

    Per-class protocols also get a task "mean": each seed's mean over classes, then mean ± std over seeds.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if "error" not in run:
            groups[(run["model"], run["dataset"], run["protocol"], run.get("task"))].append(run)
    summary = []
    for (model, dataset, protocol, task), members in groups.items():
        for metric in members[0]["metrics"]:
            mean, std = _mean_std([r["metrics"][metric] for r in members])
            row = {"model": model, "dataset": dataset, "protocol": protocol, "metric": metric,
                   "mean": mean, "std": std, "n": len(members)}
            if task is not None:
                row["task"] = task
            summary.append(row)
    per_class = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if "error" not in run and run.get("task") is not None:
            for metric, value in run["metrics"].items():
                per_class[(run["model"], run["dataset"], run["protocol"], metric)][run["seed"]].append(value)
    for (model, dataset, protocol, metric), by_seed in per_class.items():
        mean, std = _mean_std([float(np.mean(v)) for v in by_seed.values()])
        summary.append({"model": model, "dataset": dataset, "protocol": protocol, "metric": metric,
                        "mean": mean, "std": std, "n": len(by_seed), "task": "mean"})
    return summary


def format_table(result: dict, metrics: list[str] | None = None) -> str:
    """A readable table: one row per (model, dataset, task), mean ± std (n) per metric, fit time."""
    rows: dict[tuple, dict[str, str]] = defaultdict(dict)
    seen_metrics: list[str] = []
    for entry in result["summary"]:
        key = (entry["model"], entry["dataset"], entry.get("task") or "")
        rows[key][entry["metric"]] = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
        rows[key]["n"] = str(entry["n"])
        if entry["metric"] not in seen_metrics:
            seen_metrics.append(entry["metric"])
    fit_times: dict[tuple, list[float]] = defaultdict(list)
    for run in result["runs"]:
        if "error" not in run:
            fit_times[(run["model"], run["dataset"], run.get("task") or "")].append(run["fit_seconds"])
    metrics = metrics or seen_metrics
    header = ["model", "dataset", "task", *metrics, "n", "fit s"]
    body = [[*key, *(values.get(m, "-") for m in metrics), values.get("n", "-"),
             f"{np.mean(fit_times[key]):.1f}" if fit_times.get(key) else "-"]
            for key, values in sorted(rows.items())]
    if not any(key[2] for key in rows):
        header.remove("task")
        body = [row[:2] + row[3:] for row in body]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)) for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [r for r in result["runs"] if "error" in r]
    if failures:
        lines.append(f"\n{len(failures)} run(s) failed: " + "; ".join(
            f"{r['model']}/{r['dataset']} seed {r['seed']}: {r['error']}" for r in failures[:5]))
    return "\n".join(lines)

