"""`advad bench`: models × datasets × seeds under one protocol → runs and mean ± std summaries.

A sweep is a list of cells (model, dataset, task, seed, parameters, conventions), planned from the
command line or from a paper preset (`--paper rcgan:table1`), executed in this process, in `jobs` local
processes or as Ray tasks, and returned as the JSON document of SPEC §4. With `out`, every finished run
is stored at once in `out/results.sqlite` (`advad.store`); re-running the same sweep skips the runs
already stored, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import threading
import time
import traceback
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from advad import __version__
from advad.data import dataset_status, list_datasets, load_dataset
from advad.models import check_param_names, get_model_class, list_models, make_detector
from advad.protocols import PER_CLASS, checkpointed_fits, get_protocol, resolve_conventions
from advad.store import ResultStore

BUDGETS = ("smoke", "quick", "paper")
CHECKPOINT_FOLDER = "checkpoints"  # in a sweep's --out folder: the checkpoints of the fits under way
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Cell:
    """One run to make: what is fitted on what, under which conventions, with which seed."""

    model: str
    dataset: str
    protocol: str
    seed: int
    budget: str
    params: dict = field(default_factory=dict)        # the user's / the preset's model parameters
    conventions: dict = field(default_factory=dict)   # protocol keywords given by the user / preset
    task: str | None = None                           # e.g. "normal_class=3" for per-class protocols
    variant: str = ""                                 # a paper's ablation, e.g. "spectral_norm=false"
    paper: str | None = None                          # preset name, e.g. "alad:table2"
    dataset_options: dict = field(default_factory=dict)  # load options, e.g. {"categorical_only": True}

    @property
    def params_hash(self) -> str:
        return _hash(self.params)

    @property
    def key(self) -> str:
        parts = [self.model, self.dataset, self.protocol, self.task, self.seed, self.budget, self.params,
                 self.conventions]
        if self.dataset_options:  # runs on data sets loaded with their defaults keep their keys
            parts.append({"dataset_options": self.dataset_options})
        return _hash(parts)


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- planning
def plan(models: list[str] | None, datasets: list[str] | None, protocol: str, seeds: int | list[int],
         budget: str, params: dict | None = None, protocol_params: dict | None = None,
         dataset_options: dict | None = None) -> list[Cell]:
    """The cells of models × datasets × (classes, for per-class protocols) × seeds; every data set
    loaded with `dataset_options` (`load_dataset(name, **dataset_options)`)."""
    models = list(models) if models else list_models()
    datasets = list(datasets) if datasets else list_datasets(embedded=True)  # ship with advad
    get_protocol(protocol)
    for model in models:
        get_model_class(model)  # fail fast on unknown names
    cells = []
    for model in models:
        for name in datasets:
            conventions = dict(protocol_params or {})
            tasks: list[Any] = [None]
            if protocol in PER_CLASS:
                key = PER_CLASS[protocol]
                if key in conventions:
                    tasks = [conventions.pop(key)]
                else:
                    classes = np.unique(load_dataset(name, **(dataset_options or {})).classes)
                    tasks = [c.item() if isinstance(c, np.generic) else c for c in classes]
            for task in tasks:
                task_conventions = conventions if task is None else {**conventions, PER_CLASS[protocol]: task}
                for seed in _seed_list(seeds):
                    cells.append(Cell(model, name, protocol, seed, budget, dict(params or {}), task_conventions,
                                      task=None if task is None else f"{PER_CLASS[protocol]}={task}",
                                      dataset_options=dict(dataset_options or {})))
    return cells


def plan_paper(preset: str, seeds: int | list[int] | None, budget: str, params: dict | None = None,
               log: Callable[[str], None] = print, models: list[str] | None = None,
               datasets: list[str] | None = None) -> list[Cell]:
    """The cells of one paper table (`advad.references` presets), for the models and data sets this
    installation has and whose files are in the data folder (and, if given, only `models` /
    `datasets`); the others are listed on `log`."""
    from advad.references import get_preset, preset_runs

    spec = get_preset(preset)
    known_models, known_data = set(list_models()), set(list_datasets())
    present = {name: dataset_status(name)["available"] for name in known_data}
    cells, skipped = [], defaultdict(set)
    for run in preset_runs(preset):
        if (models and run["model"] not in models) or (datasets and run["dataset"] not in datasets):
            continue
        if run["model"] not in known_models:
            skipped["models not implemented yet"].add(run["model"])
            continue
        if run["dataset"] not in known_data:
            skipped["data sets advad does not have"].add(run["dataset"])
            continue
        needed = [run["dataset"], *([run["protocol_params"]["against"]] if "against" in run["protocol_params"] else [])]
        missing = [name for name in needed if not present.get(name, False)]
        if missing:
            skipped["data sets not in the data folder (`advad data fetch NAME`)"].update(missing)
            continue
        for seed in _seed_list(spec["seeds"] if seeds is None else seeds):
            cells.append(Cell(run["model"], run["dataset"], run["protocol"], seed, budget,
                              {**run["params"], **(params or {})}, dict(run["protocol_params"]),
                              task=run["task"] or None, variant=run["variant"], paper=preset))
    for reason, names in skipped.items():
        log(f"advad bench --paper {preset}: skipping {reason}: {', '.join(sorted(names))}")
    return cells


def _seed_list(seeds: int | list[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


# ---------------------------------------------------------------------------------------- one run
def _label(settings: dict) -> str:
    """``{"variant": "numeric", "p": 0.01}`` -> ``"p=0.01;variant=numeric"`` (the references' format)."""
    return ";".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(settings.items()))


def dataset_label(name: str, options: dict | None = None) -> str:
    """``"bank"``, or ``"bank[categorical_only=true]"`` for a data set loaded with options."""
    return f"{name}[{_label(options)}]" if options else name


def setting_labels(cell: Cell) -> tuple[str, str | None]:
    """(variant, task) of a run as summaries and the scoreboard group it. A preset's cells carry their
    own (unless the preset or the user sets parameters beyond the cell's variant: then all of them);
    otherwise the user's model parameters (``--param``) are the variant and the user's protocol
    conventions (``--protocol-param``, e.g. ``p=0.01``) the task, so runs of one model with other
    settings never share a row. Per-class protocols keep their class as the task; other conventions
    of theirs join the variant."""
    if cell.paper:
        from advad.references import parse_variant

        return (cell.variant if cell.params == parse_variant(cell.variant) else _label(cell.params)), cell.task
    extra = dict(cell.conventions)
    task = cell.task
    if task is not None:
        extra.pop(task.split("=")[0], None)
    elif extra and cell.protocol not in PER_CLASS:
        task, extra = _label(extra), {}
    return _label({**cell.params, **extra}), task


def run_cell(cell: Cell, checkpoints: tuple[str, float] | None = None) -> dict:
    """Fit and score one cell; the run record of SPEC §4 (with `error` instead of metrics on failure).
    With `checkpoints` (folder, seconds), its PyTorch fits checkpoint to and resume from folder/<cell key>,
    writing at most every that many seconds."""
    cls = get_model_class(cell.model)
    run = {"model": cell.model, "dataset": cell.dataset, "protocol": cell.protocol, "seed": cell.seed,
           "budget": cell.budget, "key": cell.key, "params_hash": cell.params_hash}
    variant, task = setting_labels(cell)
    if task is not None:
        run["task"] = task
    if variant:
        run["variant"] = variant
    if cell.paper:
        run["paper"] = cell.paper
    if cell.dataset_options:
        run["dataset_options"] = dict(cell.dataset_options)
    try:
        dataset = load_dataset(cell.dataset, **cell.dataset_options)
        params = {**cls.bench_params(dataset, cell.budget), **cell.params}
        if "random_state" in cls().get_params(deep=False):
            params["random_state"] = cell.seed
        run["params"] = params
        conventions = resolve_conventions(cell.protocol, cell.dataset, cls, cell.conventions)
        detectors = []

        def factory():
            detectors.append(make_detector(cell.model, **params))
            return detectors[-1]

        resumable = checkpointed_fits(Path(checkpoints[0]) / cell.key, checkpoints[1]) if checkpoints else None
        with resumable or contextlib.nullcontext():
            run.update(get_protocol(cell.protocol)(factory, dataset, cell.seed, **conventions))
        device = getattr(detectors[-1], "device_", None) if detectors else None
        run["device"] = str(device) if device is not None else "cpu"
    except Exception as err:  # one failing run must not lose the sweep
        run.setdefault("params", dict(cell.params))
        run["error"] = f"{type(err).__name__}: {err}"
        run["traceback"] = traceback.format_exc(limit=4)
    run["advad_version"] = __version__
    run["host"] = host_description()
    return run


def host_description() -> dict:
    """What besides the code decides a run's last digits: the processor (float kernels differ between
    CPU models, and GAN training amplifies the difference to a seed's worth) and the torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "torch": torch.__version__}


# ---------------------------------------------------------------------------------------- executors
def _start_worker(jobs: int, parent: int) -> None:
    """Worker start-up: share the cores between `jobs` processes instead of oversubscribing them, and
    stop when the sweep's process is gone (SIGTERM, SIGKILL): an orphan would go on fitting for minutes
    beside the rerun that resumes its fit from the checkpoint."""
    threads = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) // jobs)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="advad-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _execute_local(cells: list[Cell], jobs: int, checkpoints: tuple[str, float] | None = None) -> Iterator[dict]:
    if jobs <= 1:
        for cell in cells:
            yield run_cell(cell, checkpoints)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no forked torch / OpenMP state
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(jobs, os.getpid())) as pool:
        futures = [pool.submit(run_cell, cell, checkpoints) for cell in cells]
        for future in as_completed(futures):
            yield future.result()


def _execute_ray(cells: list[Cell], address: str | None, gpus: float = 0.0) -> Iterator[dict]:
    try:
        import ray
    except ImportError:
        raise ImportError("--executor ray needs Ray: pip install 'advad[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(run_cell)  # a run with a GPU share sees device "auto" = CUDA
    pending = [remote.remote(cell) for cell in cells]
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        yield ray.get(finished[0])


def execute(cells: list[Cell], executor: str = "local", jobs: int = 1, ray_address: str | None = None,
            ray_gpus: float = 0.0, checkpoints: tuple[str, float] | None = None) -> Iterable[dict]:
    """The run records of `cells`, in the order they finish. `checkpoints` (local executor only: Ray
    workers may not share this file system): where fits checkpoint and resume, and how often (seconds)."""
    if executor == "local":
        return _execute_local(cells, jobs, checkpoints)
    if executor == "ray":
        return _execute_ray(cells, ray_address, ray_gpus)
    raise ValueError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")


# ---------------------------------------------------------------------------------------- the sweep
def run_bench(models: list[str] | None = None, datasets: list[str] | None = None, protocol: str = "topk",
              seeds: int | list[int] | None = 5, budget: str = "quick", params: dict[str, Any] | None = None,
              protocol_params: dict[str, Any] | None = None, out: str | Path | None = None,
              progress: bool = True, log: Callable[[str], None] | None = None, paper: str | None = None,
              executor: str = "local", jobs: int = 1, ray_address: str | None = None, ray_gpus: float = 0.0,
              checkpoint_interval: float = 60.0, dataset_options: dict[str, Any] | None = None) -> dict:
    """Run a sweep and return {"runs": [...], "summary": [...]}.

    `params` override model parameters in every run (after the model's budget defaults);
    `protocol_params` override protocol conventions; `dataset_options` are load options of every data set
    (``{"categorical_only": True}``: `load_dataset(name, **dataset_options)`; recorded in each run, part
    of its key, shown beside the data set's name); `paper` runs paper tables' presets instead
    (``"alad:table2"``, several comma-separated, or ``"all"``; restricted to `models` / `datasets` when
    they are given). A failing run is recorded with its error and the sweep goes on; `summary`
    covers the successful runs. With `out`, the runs already stored there are not run again, and (local
    executor) PyTorch fits checkpoint every `checkpoint_interval` seconds to `out`/checkpoints/<run key>
    (shorter fits write none): a sweep killed mid-fit resumes that fit, to the same result; a run's
    checkpoints are deleted once it ends.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {', '.join(BUDGETS)}")
    if paper:
        from advad.references import list_presets

        presets = list_presets() if paper == "all" else [p.strip() for p in paper.split(",") if p.strip()]
        planned = [dataclasses.replace(cell, dataset_options=dict(dataset_options or {}))
                   for preset in presets for cell in plan_paper(preset, seeds, budget, params, log, models, datasets)]
        unique: dict[str, Cell] = {}
        for cell in planned:  # a run that two tables share runs once (filed under the first table)
            unique.setdefault(cell.key, cell)
        cells = list(unique.values())
    else:
        cells = plan(models, datasets, protocol, 5 if seeds is None else seeds, budget, params, protocol_params,
                     dataset_options)
    for model, names in sorted({(cell.model, tuple(sorted(cell.params))) for cell in cells}):
        try:  # fail fast on a misspelt --param, before any training
            check_param_names(model, names)
        except ValueError as err:
            raise ValueError(f"{err}. Model parameters apply to every model of the sweep: run the models "
                             "that lack one in a sweep of their own") from None
    for name in sorted({cell.dataset for cell in cells}):
        try:  # fail fast, with the missing-file message, before any training
            load_dataset(name, **(dataset_options or {}))
        except TypeError as err:  # an option this data set does not have
            raise ValueError(f"{err}. Data set options apply to every data set of the sweep: run the data sets "
                             "that lack one in a sweep of their own") from None
    store = ResultStore(out) if out else None
    done = store.done_keys() if store else set()
    todo = [cell for cell in cells if cell.key not in done]
    wanted = {cell.key for cell in cells}
    runs = [run for run in store.runs() if run["key"] in wanted and "error" not in run] if store else []
    bar = tqdm(total=len(todo), desc="bench", unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    checkpoints = Path(out) / CHECKPOINT_FOLDER if out and executor == "local" else None
    plan_checkpoints = (str(checkpoints), float(checkpoint_interval)) if checkpoints else None
    for run in execute(todo, executor, jobs, ray_address, ray_gpus, plan_checkpoints):
        if store:
            store.add(run)
        if checkpoints:  # only a killed run leaves checkpoints: a failed one starts afresh next time
            shutil.rmtree(checkpoints / run["key"], ignore_errors=True)
        runs.append(run)
        if "error" in run:
            log(f"advad bench: {run['model']} on {run['dataset']} seed {run['seed']} failed: {run['error']}")
        bar.set_postfix_str(f"{run['model']} {run['dataset']} {run.get('task') or ''} seed {run['seed']}".replace("  ", " "))
        bar.update()
    bar.close()
    if checkpoints:
        with contextlib.suppress(OSError):  # not empty: another sweep on this store is writing to it
            checkpoints.rmdir()
    order = {cell.key: n for n, cell in enumerate(cells)}
    runs.sort(key=lambda run: order[run["key"]])
    return {"runs": runs, "summary": summarize(runs)}


# ---------------------------------------------------------------------------------------- summaries
def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def _group(run: dict) -> tuple:
    options = json.dumps(run.get("dataset_options") or {}, sort_keys=True)
    return run["model"], run.get("variant", ""), run["dataset"], run["protocol"], run.get("budget"), options


def summarize(runs: list[dict]) -> list[dict]:
    """Mean ± sample standard deviation over seeds, per (model, variant, dataset, protocol, budget, data set
    options, task, metric): runs of different budgets are never averaged together.

    Per-class protocols also get a task "mean": each seed's mean over classes, then mean ± std over seeds.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    per_class: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if "error" in run:
            continue
        groups[(*_group(run), run.get("task"))].append(run)
        if run.get("task") is not None and "=" in run["task"] and run["task"].split("=")[0] in PER_CLASS.values():
            for metric, value in run["metrics"].items():
                per_class[(*_group(run), metric)][run["seed"]].append(value)
    summary = []
    for (*group, task), members in groups.items():
        for metric in members[0]["metrics"]:
            mean, std = _mean_std([r["metrics"][metric] for r in members])
            summary.append(_row(*group, task, metric, mean, std, len(members)))
    for (*group, metric), by_seed in per_class.items():
        mean, std = _mean_std([float(np.mean(v)) for v in by_seed.values()])
        summary.append(_row(*group, "mean", metric, mean, std, len(by_seed)))
    return summary


def _row(model, variant, dataset, protocol, budget, options, task, metric, mean, std, n) -> dict:
    row = {"model": model, "dataset": dataset, "protocol": protocol, "budget": budget, "metric": metric, "mean": mean,
           "std": std, "n": n}
    if variant:
        row["variant"] = variant
    if options != "{}":
        row["dataset_options"] = json.loads(options)
    if task is not None:
        row["task"] = task
    return row


def format_table(result: dict, metrics: list[str] | None = None) -> str:
    """A readable table: one row per (model, dataset, task), mean ± std per metric, n, mean fit time."""
    rows: dict[tuple, dict[str, str]] = defaultdict(dict)
    seen_metrics: list[str] = []
    for entry in result["summary"]:
        model = entry["model"] + (f" [{entry['variant']}]" if entry.get("variant") else "")
        key = (model, dataset_label(entry["dataset"], entry.get("dataset_options")), entry.get("task") or "")
        rows[key][entry["metric"]] = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
        rows[key]["n"] = str(entry["n"])
        if entry["metric"] not in seen_metrics:
            seen_metrics.append(entry["metric"])
    fit_times: dict[tuple, list[float]] = defaultdict(list)
    for run in result["runs"]:
        if "error" not in run:
            model = run["model"] + (f" [{run['variant']}]" if run.get("variant") else "")
            fit_times[(model, dataset_label(run["dataset"], run.get("dataset_options")), run.get("task") or "")].append(
                run["fit_seconds"])
    metrics = metrics or seen_metrics
    header = ["model", "dataset", "task", *metrics, "n", "fit s"]
    body = [[*key, *(values.get(m, "-") for m in metrics), values.get("n", "-"),
             f"{np.mean(fit_times[key]):.1f}" if fit_times.get(key) else "-"]
            for key, values in sorted(rows.items())]
    if not any(key[2] for key in rows):
        header.remove("task")
        body = [row[:2] + row[3:] for row in body]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [r for r in result["runs"] if "error" in r]
    if failures:
        lines.append(f"\n{len(failures)} run(s) failed: " + "; ".join(
            f"{r['model']}/{r['dataset']} seed {r['seed']}: {r['error']}" for r in failures[:5]))
    return "\n".join(lines)


__all__ = ["BUDGETS", "Cell", "EXECUTORS", "dataset_label", "execute", "format_table", "plan", "plan_paper",
           "run_bench", "run_cell", "summarize"]
