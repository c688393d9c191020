"""The five papers' published numbers, as data: every cell of every result table, and one `--paper`
preset per table.

``papers.csv`` (shipped as package data) holds one row per published number::

    paper, table, table_label, protocol, dataset, task, model, variant, metric, value, std, note, printed

- ``paper``: ``alad`` | ``rcgan`` | ``maesi`` | ``ama`` | ``arn``.
- ``table``: ``tableN`` with the paper's number in arabic digits; ``table_label`` keeps the paper's
  form (``II``, ``2``).
- ``protocol``, ``dataset``, ``model``: advad names (``advad.protocols``, SPEC §2, the model registry);
  a data set or method advad does not have keeps the paper's name, lower-cased (``doh``, ``coil-100``,
  ``egbad``, ``waldo``).
- ``task``: empty, ``mean`` (the paper's average over the per-class tasks), or one protocol keyword
  ``normal_class=3`` | ``anomaly_class=3`` | ``against=mnist`` | ``p=0.05`` (MAESI Table 4:
  ``config=1..3``).
- ``variant``: empty for the model with its default parameters, else ``key=value`` parameters (JSON
  scalars: true, false, null, numbers, strings) joined by
  ``;`` (``score=l1``, ``spectral_norm=false;use_dzz=false``, ``variant=numeric;kl_weight=0``; ARN^G is
  the arn default, so its cells have an empty variant);
  `parse_variant` turns it into keyword arguments.
- ``value`` in [0, 1] (percentages divided by 100), ``std`` the printed ± (empty if none), ``note`` what
  is odd about the cell, ``printed`` the cell exactly as the paper text prints it.

This module is the bottom layer: it imports nothing else from advad (the standard library, and pandas
inside `load_references` only).
"""

from __future__ import annotations

import copy
import csv
import io
import re
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["load_references", "reference_value", "reference_entry", "parse_variant", "PAPER_PRESETS",
           "PRESET_NOTES", "list_presets", "get_preset", "preset_runs", "PAPERS", "METRICS", "PROTOCOLS",
           "DATASETS", "MODELS", "COLUMNS"]

PAPERS = ("alad", "rcgan", "maesi", "ama", "arn")
METRICS = ("precision", "recall", "f1", "auroc", "auprc")
PROTOCOLS = ("topk", "one-class", "leave-one-out", "ood", "auc", "contamination", "weak-supervision")
# SPEC §2 data set names (downloadable, then embedded).
DATASETS = ("kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "arrhythmia", "thyroid", "musk", "creditcard", "bank",
            "covertype", "mnist", "fashion-mnist", "cifar10", "svhn", "breast-cancer", "digits", "loop", "arc",
            "four-dot")
# Model names advad has or is building (issues 3-7); presets use only these.
MODELS = ("alad", "rcgan", "maesi", "ama", "arn", "iforest", "ocsvm", "ae", "dagmm", "dsebm-e", "dsebm-r",
          "deepsvdd", "anogan", "ganomaly", "skip-ganomaly", "fencegan", "dcae")
COLUMNS = ("paper", "table", "table_label", "protocol", "dataset", "task", "model", "variant", "metric", "value",
           "std", "note", "printed")

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}


# ----------------------------------------------------------------------------------------- the data
@lru_cache(maxsize=1)
def _rows() -> tuple[dict[str, Any], ...]:
    text = resources.files(__name__).joinpath("papers.csv").read_text(encoding="utf-8")
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(raw)
        row["value"] = float(row["value"])
        row["std"] = float(row["std"]) if row["std"] else None
        rows.append(row)
    return tuple(rows)


def load_references(paper: str | None = None, table: str | int | None = None):
    """Every published number as a pandas DataFrame (columns `COLUMNS`; ``std`` NaN where the paper
    prints none; empty strings, not NaN, in the text columns). Optionally one paper / one table."""
    import pandas as pd

    rows = _select(paper, table)
    frame = pd.DataFrame([{**r, "std": float("nan") if r["std"] is None else r["std"]} for r in rows],
                         columns=list(COLUMNS))
    return frame.astype({"value": "float64", "std": "float64"})


def _table_id(table: str | int) -> str:
    """``2``, ``"2"``, ``"II"``, ``"table2"``, ``"Table II"`` -> ``"table2"``."""
    text = str(table).strip().lower().replace(" ", "")
    text = text[len("table"):] if text.startswith("table") else text
    if text in _ROMAN:
        return f"table{_ROMAN[text]}"
    if text.isdigit():
        return f"table{int(text)}"
    raise ValueError(f"unrecognised table {table!r}; use e.g. 'table2', 2 or 'II'")


def _select(paper: str | None, table: str | int | None) -> list[dict[str, Any]]:
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; papers: {', '.join(PAPERS)}")
    tid = None if table is None else _table_id(table)
    return [dict(r) for r in _rows() if (paper is None or r["paper"] == paper) and (tid is None or r["table"] == tid)]


def _task_text(task: Any) -> str:
    """None -> ""; {"normal_class": 3} -> "normal_class=3"; "normal_class=3" unchanged."""
    if task is None:
        return ""
    if isinstance(task, dict):
        return ";".join(f"{k}={_fmt(v)}" for k, v in task.items())
    return str(task)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "null" if value is None else str(value)


def _variant_text(variant: Any) -> str:
    if variant is None:
        return ""
    if isinstance(variant, dict):
        return ";".join(f"{k}={_fmt(v)}" for k, v in variant.items())
    return str(variant)


def reference_entry(paper: str, table: str | int, dataset: str, model: str, metric: str,
                    task: Any = None, variant: Any = None) -> dict[str, Any] | None:
    """The whole CSV row of one published number (value, std, note, printed ...), or None.

    `task` None means the table's untasked cell; per-class tables have ``normal_class=k`` /
    ``anomaly_class=k`` cells and a ``mean`` cell. `variant` None means the default model; else a
    string as in the CSV or a dict of parameters (``{"score": "l1"}``). Task strings compare
    numerically (``p=0.10`` finds ``p=0.1``)."""
    want_task, want_variant = _canonical(_task_text(task)), _canonical(_variant_text(variant))
    hits = [r for r in _select(paper, table)
            if r["dataset"] == dataset and r["model"] == model and r["metric"] == metric
            and _canonical(r["task"]) == want_task and _canonical(r["variant"]) == want_variant]
    if len(hits) > 1:  # the CSV is unique on these keys (tested); guard anyway
        raise ValueError(f"{len(hits)} references match {paper} {table} {dataset} {model} {metric} {task} {variant}")
    return hits[0] if hits else None


def reference_value(paper: str, table: str | int, dataset: str, model: str, metric: str,
                    task: Any = None, variant: Any = None) -> float | None:
    """The published number for one cell, in [0, 1], or None when the paper has no such cell.

    >>> reference_value("alad", "table2", "kdd99", "alad", "f1")
    0.9501
    >>> reference_value("arn", "table2", "kdd99-rev", "arn", "auroc", variant="variant=numeric")  # ARN^N
    0.99
    >>> reference_value("arn", "table2", "kdd99-rev", "arn", "auroc")  # ARN^G, the default
    0.97
    """
    row = reference_entry(paper, table, dataset, model, metric, task=task, variant=variant)
    return None if row is None else row["value"]


def _canonical(text: str) -> tuple:
    """'b=2;a=0.10' and 'a=0.1;b=2' compare equal; order-free, numbers compared as numbers."""
    if not text:
        return ()
    parts = []
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        parts.append((key.strip(), _coerce(value.strip()) if sep else None))
    return tuple(sorted(parts, key=lambda kv: (kv[0], repr(kv[1]))))


def _coerce(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":  # JSON's spelling; "none" stays the string "none" (AMA's atypical="none")
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_variant(variant: str | None) -> dict[str, Any]:
    """``"spectral_norm=false;use_dzz=false"`` -> ``{"spectral_norm": False, "use_dzz": False}``;
    ``""`` -> ``{}``. Values as JSON scalars: true/false -> bool, null -> None (``penalty=null``),
    integers, floats, anything else a string (``atypical=none`` -> ``"none"``)."""
    params: dict[str, Any] = {}
    for item in (variant or "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"variant part {item!r} is not key=value")
        params[key.strip()] = _coerce(value.strip())
    return params


# ------------------------------------------------------------------------------------------ presets
# What `advad bench --paper NAME` runs. Keys:
#   models, datasets, protocol, seeds, protocol_params (every run), params (model parameters, every run),
#   tasks: None (the protocol's default: every class for one-class / leave-one-out, one run otherwise)
#          or a list of dicts of protocol keywords, one task each; a task's optional "datasets" list
#          restricts it to those data sets (AMA Table 1: each training set has its own OOD sets),
#   variants: {model: [variant strings as in the CSV]}; a model not listed runs once with its
#          defaults ("" = defaults). `parse_variant` gives the parameters.
# models x variants x datasets x tasks x seeds may include a few cells the paper left empty (e.g.
# GANomaly on the lower half of ARN Table III); `preset_runs` lists exactly the paper's cells.
# Only advad models (`MODELS`) and SPEC data sets appear: rows for DoH, Coil-100, EGBAD, WALDO ...
# stay in the CSV for reference but are not run. Seeds: 5, or the paper's count when smaller.
def _p(models, datasets, protocol, *, seeds=5, tasks=None, variants=None, protocol_params=None, params=None):
    return {"models": list(models), "datasets": list(datasets), "protocol": protocol, "seeds": seeds,
            "protocol_params": dict(protocol_params or {}), "tasks": tasks, "params": dict(params or {}),
            "variants": {k: list(v) for k, v in (variants or {}).items()}}


_ALAD_ABLATION = ["spectral_norm=false;use_dzz=false", "spectral_norm=false", "use_dzz=false", ""]
_ALAD_SCORES = ["score=l1", "score=l2", "score=logits", ""]
_ALAD_FULL = {"spectral_norm": True, "use_dzz": True, "score": "fm"}
_ARN_BOTH = ["", "variant=numeric"]  # ARN^G (the arn default, Gumbel heads) and ARN^N
_P_TASKS = [{"p": 0.0}, {"p": 0.01}, {"p": 0.05}]

PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "alad:table2": _p(["ocsvm", "iforest", "dsebm-r", "dsebm-e", "dagmm", "anogan", "alad"],
                      ["kdd99", "arrhythmia"], "topk"),
    "alad:table3": _p(["ocsvm", "iforest", "dsebm-r", "dsebm-e", "anogan", "alad"], ["svhn", "cifar10"],
                      "one-class", seeds=3),
    # Tables V and VII vary one switch of the full model with the feature-matching score; the benchmark
    # default on Arrhythmia-sized sets (no D_zz, l1 score: Table V's best row, Table VII's best score)
    # must not leak into the other cells.
    "alad:table5": _p(["alad"], ["kdd99", "arrhythmia"], "topk", variants={"alad": _ALAD_ABLATION},
                      params=_ALAD_FULL),
    "alad:table6": _p(["alad"], ["svhn", "cifar10"], "one-class", seeds=3, variants={"alad": _ALAD_ABLATION}),
    "alad:table7": _p(["alad"], ["kdd99", "arrhythmia"], "topk", variants={"alad": _ALAD_SCORES},
                      params=_ALAD_FULL),
    "alad:table8": _p(["alad"], ["svhn", "cifar10"], "one-class", seeds=3, variants={"alad": _ALAD_SCORES}),
    "rcgan:table1": _p(["iforest", "ocsvm", "dsebm-r", "dsebm-e", "anogan", "dagmm", "alad", "deepsvdd", "rcgan"],
                       ["kdd99", "arrhythmia", "thyroid", "musk"], "topk"),
    "rcgan:table2": _p(["dcae", "dsebm-e", "dagmm", "iforest", "anogan", "alad", "rcgan"], ["cifar10"], "one-class"),
    "rcgan:table3": _p(["rcgan"], ["arrhythmia", "thyroid"], "topk", variants={"rcgan": ["penalty=null", ""]}),
    "rcgan:table4": _p(["rcgan"], ["kdd99", "thyroid"], "topk",
                       variants={"rcgan": ["", "penalty=normal2", "penalty=uniform"]}),
    "maesi:table1": _p(["fencegan", "anogan", "skip-ganomaly", "maesi"], ["cifar10"], "leave-one-out",
                       variants={"maesi": ["m=2", ""]}),
    "maesi:table2": _p(["iforest", "dsebm-r", "dsebm-e", "dagmm", "anogan", "alad", "maesi"],
                       ["kdd99", "arrhythmia", "thyroid"], "topk"),
    "maesi:table3": _p(["fencegan", "anogan", "ganomaly", "maesi"], ["mnist"], "leave-one-out"),
    "maesi:table5": _p(["dcae", "maesi"], ["fashion-mnist"], "one-class", protocol_params={"design": "in-class"}),
    "ama:table1": _p(["deepsvdd", "ama"], ["fashion-mnist", "cifar10", "svhn"], "ood",
                     tasks=[{"datasets": ["fashion-mnist"], "against": "mnist"},
                            {"datasets": ["cifar10"], "against": "svhn"},
                            {"datasets": ["svhn"], "against": "cifar10"}],
                     variants={"ama": ["mirrored=false", "lambda_inter=0", "atypical=none", "score=r", ""]}),
    "ama:table2": _p(["fencegan", "alad", "anogan", "skip-ganomaly", "deepsvdd", "ama"], ["mnist", "cifar10"],
                     "one-class"),
    "arn:table2": _p(["arn", "fencegan", "ganomaly", "ocsvm", "ae"],
                     ["kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "covertype", "creditcard", "bank"], "auc",
                     variants={"arn": _ARN_BOTH}),
    "arn:table3": _p(["arn", "ganomaly"], ["kdd99-rev", "kdd99-inv", "covertype", "kdd99", "nsl-kdd"],
                     "contamination",
                     tasks=_P_TASKS + [{"datasets": ["kdd99", "nsl-kdd"], "p": p} for p in (0.1, 0.25, 0.5)],
                     variants={"arn": _ARN_BOTH}),
    "arn:table4": _p(["arn"], ["kdd99-rev", "bank"], "weak-supervision",
                     tasks=[{"p": 0.0}, {"p": 0.01}, {"p": 0.03}], variants={"arn": _ARN_BOTH}),
    "arn:table5": _p(["arn"], ["kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "covertype", "creditcard"], "auc",
                     variants={"arn": ["", "variant=numeric", "kl_weight=0", "variant=numeric;kl_weight=0",
                                       "objective=elbo"]}),
}

PRESET_NOTES: dict[str, str] = {
    "alad:table2": "Paper: 10 runs (OC-SVM, DSEBM, DAGMM quoted from their papers). 50/50 split, KDD99 test 20 % anomalies.",
    "alad:table3": "Paper: 3 runs; ALAD splits the whole official data 80/20 per task, advad's one-class uses the "
                   "official split. The paper's ± is most likely the spread across tasks: compare means.",
    "alad:table5": "Ablation: spectral norm (SN) and the latent discriminator D_zz (DL); '' = full ALAD. Paper: 10 runs.",
    "alad:table6": "Ablation of Table V on images, mean over the 10 one-class tasks. Paper: 3 runs.",
    "alad:table7": "Anomaly scores L1, L2, logits, features ('' = features, the default). Paper: 10 runs.",
    "alad:table8": "Anomaly scores on images, mean over the 10 one-class tasks. Paper: 3 runs.",
    "rcgan:table1": "Paper: RCGAN 10 runs with 80/20 splits on KDD99/Arrhythmia and 50/50 on Thyroid (the rcgan "
                    "model's protocol_defaults); the baselines' numbers come from the DAGMM/ALAD papers (50/50).",
    "rcgan:table2": "CIFAR-10 one-class, official split, RCGAN with the feature score (Eq. 12). Paper: 10 runs. "
                    "The paper's 'ADGAN' column is AnoGAN and 'DSEBM' is taken as dsebm-e.",
    "rcgan:table3": "With and without the penalty distribution t(x) ('penalty=null'); one cell (w/o t(x), "
                    "Arrhythmia F1) is missing from the paper text.",
    "rcgan:table4": "Penalty distributions N(0, I) (''), N(0, 2I), U(-1, 1).",
    "maesi:table1": "Leave-one-out on CIFAR-10; 2-point ('m=2') and 3-point ('') simplex interpolation. "
                    "EGBAD is not an advad model.",
    "maesi:table2": "topk, 50/50 split. PAE-GMM (Thyroid) is not an advad model.",
    "maesi:table3": "Leave-one-out on MNIST (offline MNIST: seeded 80/20 split of the test set). EGBAD not run.",
    "maesi:table5": "MAESI's FashionMNIST protocol (one-class design=in-class): a seeded 80/20 split of all rows "
                    "of the normal class, negatives drawn to be 50 % of the test set. ALOCC, GPND, OCGAN are not "
                    "advad models.",
    "ama:table1": "OOD: FashionMNIST vs MNIST, CIFAR-10 vs SVHN, SVHN vs CIFAR-10 (Omniglot, ImageNet, CIFAR-100 "
                  "are not advad data sets). Ablations: mirrored=false, lambda_inter=0, atypical=none, score=r.",
    "ama:table2": "One-class on MNIST and CIFAR-10; FGAN = fencegan; DeepSVDD without global contrast normalisation.",
    "arn:table2": "ARN protocol, paper 20 runs. DoH / DoH_Inv are not advad data sets; no ARN^G cell on CreditCard.",
    "arn:table3": "Contamination p = A/N (p = 0 is the 'No contamination' row): upper half ARN^N on kdd99-rev, "
                  "ARN^G on kdd99-inv and covertype, each vs GANomaly; lower half ARN^G alone on kdd99, nsl-kdd "
                  "(and DoH) up to p = 0.5. Metric AUROC (inferred).",
    "arn:table4": "Weak supervision with p = 0, 1 %, 3 % labelled anomalies; WALDO is not an advad model. Metric AUROC (inferred).",
    "arn:table5": "Ablation: ARN^G (''), ARN^N, each without KL ('kl_weight=0'), and the plain-ELBO ARN^GE ('objective=elbo').",
}


def _preset_name(name: str) -> str:
    paper, sep, table = str(name).partition(":")
    if not sep:
        raise ValueError(f"preset names look like 'alad:table2'; got {name!r}. Presets: {', '.join(list_presets())}")
    try:
        return f"{paper.strip().lower()}:{_table_id(table)}"
    except ValueError:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(list_presets())}") from None


def list_presets() -> list[str]:
    """Every `--paper` preset name, in paper order (alad, rcgan, maesi, ama, arn) then table order."""
    return sorted(PAPER_PRESETS, key=lambda n: (PAPERS.index(n.split(":")[0]), int(n.split("table")[1])))


def get_preset(name: str) -> dict[str, Any]:
    """A copy of one preset; accepts ``"alad:table2"``, ``"alad:2"``, ``"alad:II"``."""
    key = _preset_name(name)
    if key not in PAPER_PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(list_presets())}")
    return copy.deepcopy(PAPER_PRESETS[key])


def preset_runs(name: str) -> list[dict[str, Any]]:
    """Exactly the (model, variant, dataset, task) combinations the paper's table has cells for, restricted
    to the preset's models and data sets (and, for `ood`, to `against` sets advad has), in CSV order. Each item: ``model``, ``variant``, ``params``
    (from the variant, over the preset's params), ``dataset``, ``protocol``, ``task`` (the CSV's task
    string, "" if none), ``protocol_params`` (the preset's, plus the task's keyword). A ``mean`` cell
    is a summary of per-class runs, not a run of its own: a table that prints only the mean gets one
    run per class (0-9). Seeds are not expanded: use the preset's ``seeds``."""
    preset = get_preset(name)
    paper, table = _preset_name(name).split(":")
    rows = [r for r in _select(paper, table) if r["model"] in preset["models"] and r["dataset"] in preset["datasets"]
            and not (r["task"].startswith("against=") and r["task"].split("=", 1)[1] not in DATASETS)]
    # an OOD set advad does not have (Omniglot, ImageNet, CIFAR-100) is skipped above
    per_class = {(r["model"], r["variant"], r["dataset"]) for r in rows if "_class=" in r["task"]}
    seen, runs = set(), []
    for row in rows:
        tasks = [row["task"]]
        if row["task"] == "mean":
            # A table printing only the mean over classes (ALAD III, VI, VIII; MAESI 5): run every class.
            if (row["model"], row["variant"], row["dataset"]) in per_class:
                continue
            keyword = _PER_CLASS[preset["protocol"]]
            tasks = [f"{keyword}={c}" for c in _CLASSES[row["dataset"]]]
        for task in tasks:
            key = (row["model"], row["variant"], row["dataset"], task)
            if key in seen:
                continue
            seen.add(key)
            runs.append({"model": row["model"], "variant": row["variant"],
                         "params": {**preset["params"], **parse_variant(row["variant"])},
                         "dataset": row["dataset"], "protocol": preset["protocol"], "task": task,
                         "protocol_params": {**preset["protocol_params"], **parse_variant(task)}})
    return runs


# The per-class keyword of each per-class protocol (as advad.protocols.PER_CLASS) and the classes of the
# image data sets (advad.data: integer labels 0-9; CIFAR-10 0 = airplane ... 9 = truck, SVHN '10' -> 0).
_PER_CLASS = {"one-class": "normal_class", "leave-one-out": "anomaly_class"}
_CLASSES = {name: tuple(range(10)) for name in ("mnist", "fashion-mnist", "cifar10", "svhn")}
