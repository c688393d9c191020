"""`advad report DIR`: the scoreboard of a results store as Markdown and self-contained HTML.

Per paper table (or per protocol for runs outside a preset): our mean ± std (n) beside the paper's
number and the difference; then, per (model, dataset), ROC and precision-recall curves of every seed
and task, the histogram of normal vs anomalous test scores (AMA Fig. 4) and the training losses.
Figures are PNGs (matplotlib, Agg): files next to the Markdown, inlined as data URIs in the HTML.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from advad import __version__
from advad.bench import dataset_label, summarize
from advad.serialization import atomic_write_bytes
from advad.store import ResultStore

METRIC_ORDER = ("f1", "precision", "recall", "auroc", "auprc")


def _references():
    from advad.references import load_references

    return load_references()


def _paper_values(refs, entry: dict, paper_table: str | None, variant: str) -> list[tuple[str, float]]:
    """Published values for one summary row (of the paper's `variant` cell): from its table, else every
    table that has it."""
    if refs is None:
        return []
    rows = refs[(refs["model"] == entry["model"]) & (refs["dataset"] == entry["dataset"])
                & (refs["metric"] == entry["metric"]) & (refs["protocol"] == entry["protocol"])
                & (refs["variant"].fillna("") == variant)
                & (refs["task"].fillna("") == (entry.get("task") or ""))]
    if paper_table:
        paper, table = paper_table.split(":")
        rows = rows[(rows["paper"] == paper) & (rows["table"] == table)]
    return [(f"{r.paper} {r.table_label if isinstance(r.table_label, str) else r.table}", float(r.value))
            for r in rows.itertuples()]


def _effective_params(run: dict) -> dict:
    """A run's model parameters: its recorded ones (and its label's) over the model's defaults."""
    from advad.references import parse_variant

    return {**_model_defaults(run["model"]), **parse_variant(run.get("variant", "")), **(run.get("params") or {})}


def _cell_of(run: dict, params: dict, cells: list[dict]) -> dict | None:
    """The table cell a run measures: same model, data set, protocol, task and protocol settings, and the
    cell's model parameters (the preset's and its variant's) among the run's effective `params`. A run
    with extra settings, e.g. a shorter budget, still measures the cell and keeps its own label; the
    most specific cell (most parameters away from the model's defaults) wins (``penalty=null`` over ``""``).
    A run on a data set loaded with other options than the defaults measures no cell."""
    if run.get("dataset_options"):
        return None
    conventions = run.get("conventions")  # none in a failed run's record: its task decides
    best = None
    for cell in cells:
        if (cell["model"], cell["dataset"], cell["protocol"], cell["task"]) != (
                run["model"], run["dataset"], run["protocol"], run.get("task") or ""):
            continue
        if conventions is not None and any(conventions.get(k) != v for k, v in cell["protocol_params"].items()):
            continue
        if all(k in params and params[k] == v for k, v in cell["params"].items()):
            if best is None or _specificity(cell) > _specificity(best):
                best = cell
    return best


def _specificity(cell: dict) -> int:
    """How many of the cell's parameters differ from the model's defaults (its ablation switches)."""
    defaults = _model_defaults(cell["model"])
    return sum(1 for k, v in cell["params"].items() if k not in defaults or defaults[k] != v)


@lru_cache(maxsize=None)
def _model_defaults(model: str) -> dict:
    from advad.models import get_model_class

    try:
        return get_model_class(model)().get_params()
    except Exception:  # a model this advad does not have: only recorded parameters count
        return {}


def _available(dataset: str) -> bool:
    from advad.data import dataset_status

    try:
        return bool(dataset_status(dataset)["available"])
    except Exception:  # a data set this advad does not know: not runnable here
        return False


def _coverage(cells: list[dict], measured: set[tuple], failed: dict[tuple, str]) -> dict:
    """How much of a paper table the runs cover: cells measured, cells whose every run failed (`failed`:
    cell key → error), cells whose data is not on this machine, cells not run yet (per model and data
    set; per-class tables count classes)."""
    missing: dict[tuple, list[dict]] = defaultdict(list)
    unavailable: dict[tuple, list[dict]] = defaultdict(list)
    errored: dict[tuple, list[dict]] = defaultdict(list)
    available = {name: _available(name) for name in {cell["dataset"] for cell in cells}}
    for cell in cells:
        key = _cell_key(cell)
        if key in measured:
            continue
        group = (cell["model"], cell["variant"], cell["dataset"])
        if key in failed:
            errored[group + (failed[key],)].append(cell)
        else:
            (missing if available[cell["dataset"]] else unavailable)[group].append(cell)

    def labels(groups: dict[tuple, list[dict]]) -> list[str]:
        out = []
        for (model, variant, dataset, *error), members in groups.items():
            label = f"{model}{f' [{variant}]' if variant else ''} on {dataset}"
            per_class = [c for c in members if "_class=" in c["task"]]
            if per_class:
                label += f" ({len(per_class)} classes)"
            elif any(c["task"] for c in members):
                label += f" ({', '.join(c['task'] for c in members)})"
            out.append(label + "".join(f" — {message}" for message in error))
        return out

    return {"cells": len(cells), "measured": len(measured),
            "failed": sum(map(len, errored.values())), "failed_labels": labels(errored),
            "unavailable": sum(map(len, unavailable.values())), "unavailable_labels": labels(unavailable),
            "missing": sum(map(len, missing.values())), "missing_labels": labels(missing)}


def _cell_key(cell: dict) -> tuple:
    return cell["model"], cell["variant"], cell["dataset"], cell["task"]


def scoreboard(runs: list[dict]) -> list[dict]:
    """Sections of summary rows with the papers' values: [{"title", "rows": [{...}], "coverage"}].

    If any run measures a paper table, one section per table (`advad.references` presets; rows from every
    run whose most specific matching cell, over all tables, is one of the table's — whichever command
    made it, so a default run may appear in several tables; no rows if none does) with the table's
    coverage (cells measured, cells whose data is not on this machine, cells not run yet); then one
    section per protocol for the runs no table has a cell for."""
    from advad.references import list_presets, preset_runs

    try:
        refs = _references()
    except Exception:  # the references ship with advad; a broken install still gets our numbers
        refs = None
    done = [run for run in runs if "error" not in run]
    failures = [(run, _effective_params(run)) for run in runs if "error" in run]
    in_a_table: set[int] = set()
    sections = []
    table_cells = {table: preset_runs(table) for table in list_presets()}
    params = {id(run): _effective_params(run) for run in done}
    matched = {table: [(run, _cell_of(run, params[id(run)], cells)) for run in done]
               for table, cells in table_cells.items()}
    # a run measures the most specific cell of any table: an ablation run (ALAD Table V without D_zz) is
    # not also Table II's ALAD, whose cell fixes no parameter; a default run measures every default cell
    specificity: dict[int, int] = defaultdict(lambda: -1)
    for pairs in matched.values():
        for run, cell in pairs:
            if cell is not None:
                specificity[id(run)] = max(specificity[id(run)], _specificity(cell))
    for table, pairs in matched.items():
        members, cell_variant, measured = [], {}, set()
        failed = {_cell_key(cell): run["error"] for run, run_params in failures
                  if (cell := _cell_of(run, run_params, table_cells[table])) is not None}
        for run, cell in pairs:
            if cell is None or _specificity(cell) < specificity[id(run)]:
                continue
            members.append(run)
            in_a_table.add(id(run))
            measured.add(_cell_key(cell))
            cell_variant[(run["model"], run.get("variant") or "", run["dataset"])] = cell["variant"]
        sections.append({"title": table, "rows": _summary_rows(members, refs, table, cell_variant) if members else [],
                         "coverage": _coverage(table_cells[table], measured, failed)})
    if not in_a_table:  # no run measures a paper table: no table overview
        sections = []
    by_protocol: dict[str, list[dict]] = defaultdict(list)
    for run in done:
        if id(run) not in in_a_table:
            by_protocol[run["protocol"]].append(run)
    for protocol, members in sorted(by_protocol.items()):
        sections.append({"title": f"protocol {protocol} (runs outside the papers' tables)",
                         "rows": _summary_rows(members, refs, None, {}), "coverage": None})
    return sections


def _summary_rows(runs: list[dict], refs, table: str | None, cell_variant: dict[tuple, str]) -> list[dict]:
    rows = []
    for entry in sorted(summarize(runs), key=lambda e: (e["dataset"], e.get("task") or "", e["model"],
                                                        e.get("variant", ""), e.get("budget") or "",
                                                        _metric_rank(e["metric"]))):
        variant = cell_variant.get((entry["model"], entry.get("variant", ""), entry["dataset"]),
                                   entry.get("variant", ""))
        papers = _paper_values(refs, entry, table, variant)
        rows.append({**entry, "papers": papers, "diff": entry["mean"] - papers[0][1] if papers else None})
    return rows


OVERVIEW_HEADER = ("table", "cells measured", "not run yet", "every run failed", "data not on this machine")


def _overview_row(table: dict) -> list[str]:
    """A paper table's line in the report's overview (columns of `OVERVIEW_HEADER`)."""
    c = table["coverage"]
    return [table["title"], f"{c['measured']} of {c['cells']}", str(c["missing"]), str(c["failed"]),
            str(c["unavailable"])]


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _html_row(cells: Sequence[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"


def _coverage_line(coverage: dict) -> str:
    line = f"Cells measured: {coverage['measured']} of {coverage['cells']}."
    if coverage["missing"]:
        line += f" Not run yet ({coverage['missing']}): " + "; ".join(coverage["missing_labels"]) + "."
    if coverage["failed"]:
        line += f" Every run failed ({coverage['failed']}): " + "; ".join(coverage["failed_labels"]) + "."
    if coverage["unavailable"]:
        line += (f" Data not on this machine ({coverage['unavailable']}): "
                 + "; ".join(coverage["unavailable_labels"]) + ".")
    return line


def _metric_rank(metric: str) -> int:
    return METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)


# ---------------------------------------------------------------------------------------- figures
def _figure_png(runs: list[dict]) -> bytes | None:
    """ROC, precision-recall, score histogram (first seed) and training losses of one (model, dataset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_diag = [r for r in runs if r.get("diagnostics")]
    if not with_diag:
        return None
    tsne = next((r["diagnostics"]["latent_tsne"] for r in with_diag if "latent_tsne" in r["diagnostics"]), None)
    images = next((r["diagnostics"]["reconstructions"] for r in with_diag
                   if "reconstructions" in r["diagnostics"]), None)
    maps = next((r["diagnostics"]["discriminator_map"] for r in with_diag
                 if "discriminator_map" in r["diagnostics"]), None)
    ncols = 4 + bool(tsne) + 2 * bool(maps)
    fig = plt.figure(figsize=(4 * ncols, 3.6 + (2.6 if images else 0)))
    grid = fig.add_gridspec(2 if images else 1, ncols, height_ratios=[3.6, 2.6] if images else None)
    axes = [fig.add_subplot(grid[0, i]) for i in range(ncols)]
    roc_ax, pr_ax, hist_ax, loss_ax = axes[:4]
    extra = iter(axes[4:])
    if tsne:
        ax = next(extra)
        labels = np.asarray(tsne["label"])
        for value, color, name in ((0, "tab:blue", "normal"), (1, "tab:red", "anomaly")):
            mask = labels == value
            ax.scatter(np.asarray(tsne["x"])[mask], np.asarray(tsne["y"])[mask], s=5, c=color, label=name)
        ax.set(title="t-SNE of latent codes (test rows)", xticks=[], yticks=[])
        ax.legend(fontsize=7)
    if maps:
        for key, label in (("dxz", "D_xz(x, E(x))"), ("dxx", "D_xx(x, G(E(x)))")):
            ax = next(extra)
            image = ax.imshow(np.asarray(maps[key]), origin="lower", extent=maps["extent"], vmin=0, vmax=1,
                              cmap="viridis", interpolation="nearest")
            ax.set_title(f"P(normal) of {label}", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
    if images:
        image_ax = fig.add_subplot(grid[1, :])
        image_ax.imshow(_image_grid(images), cmap="gray", vmin=0, vmax=255)
        image_ax.set_title("test images (top: input; bottom: reconstruction; left normal, right anomalous)",
                           fontsize=9)
        image_ax.set_axis_off()
    for run in with_diag:
        diag, label = run["diagnostics"], f"seed {run['seed']}" + (f" {run['task']}" if run.get("task") else "")
        if "roc" in diag:
            roc_ax.plot(diag["roc"]["fpr"], diag["roc"]["tpr"], lw=1, alpha=0.7, label=label)
            pr_ax.plot(diag["pr"]["recall"], diag["pr"]["precision"], lw=1, alpha=0.7)
    roc_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    roc_ax.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title="precision-recall", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    if len(with_diag) <= 6 and roc_ax.lines[:-1]:
        roc_ax.legend(fontsize=7, loc="lower right")
    first = with_diag[0]["diagnostics"]["histogram"]
    edges = np.asarray(first["edges"])
    widths = np.diff(edges)
    for key, color in (("normal", "tab:blue"), ("anomaly", "tab:red")):
        counts = np.asarray(first[key], dtype=float)
        density = counts / max(counts.sum(), 1) / np.where(widths > 0, widths, 1)
        hist_ax.bar(edges[:-1], density, width=widths, align="edge", alpha=0.55, color=color, label=key)
    hist_ax.set(title=f"test scores (seed {with_diag[0]['seed']})", xlabel="anomaly score", ylabel="density")
    hist_ax.legend(fontsize=8)
    history = with_diag[0]["diagnostics"].get("history")
    if history:
        epochs = [h["epoch"] for h in history]
        for name in [k for k in history[0] if k not in ("epoch", "selection")]:
            loss_ax.plot(epochs, [h.get(name, math.nan) for h in history], lw=1, label=name)
        loss_ax.set(title="training losses", xlabel="epoch")
        loss_ax.legend(fontsize=7)
    else:
        loss_ax.text(0.5, 0.5, "no training losses\n(not a neural model)", ha="center", va="center")
        loss_ax.set_axis_off()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _image_grid(images: dict) -> np.ndarray:
    """Inputs above their reconstructions, side by side: an (2H, N·W) or (2H, N·W, 3) uint8 array."""
    rows = []
    for key in ("input", "output"):
        batch = np.asarray(images[key], dtype=np.uint8)  # (N, C, H, W)
        batch = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=255)
        rows.append(np.concatenate(list(batch.transpose(0, 2, 3, 1)), axis=1))  # (H, N·W, C)
    grid = np.concatenate(rows, axis=0)
    return grid[..., 0] if grid.shape[-1] == 1 else grid


# ---------------------------------------------------------------------------------------- writers
def _fmt(entry: dict) -> list[str]:
    ours = f"{entry['mean']:.3f} ± {entry['std']:.3f} ({entry['n']})"
    papers = "; ".join(f"{value:.3f} ({where})" for where, value in entry["papers"]) or "–"
    diff = f"{entry['diff']:+.3f}" if entry["diff"] is not None else "–"
    model = entry["model"] + (f" [{entry['variant']}]" if entry.get("variant") else "")
    dataset = dataset_label(entry["dataset"], entry.get("dataset_options"))
    return [dataset, entry.get("task") or "", model, entry.get("budget") or "", entry["metric"], ours, papers, diff]


HEADER = ["dataset", "task", "model", "budget", "metric", "ours: mean ± std (n)", "paper", "ours − paper"]


def _run_identity(run: dict) -> str:
    """What makes two records the same run, whichever file they come from: the settings as applied (older
    `--json` files also hold the conventions as requested, which a store's copy of the run does not)."""
    fields = [run.get(k) for k in ("model", "dataset", "protocol", "seed", "budget", "params", "conventions",
                                   "dataset_options")]
    return json.dumps([*fields, run.get("variant") or "", run.get("task") or ""], sort_keys=True, default=str)


def load_runs(sources: Sequence[str | Path]) -> tuple[list[dict], int]:
    """Run records of results folders (``results.sqlite``) and ``advad bench --json`` files, in order;
    a run found in several sources is kept once. Returns the runs and the number of duplicates dropped."""
    runs, seen, duplicates = [], set(), 0
    for source in map(Path, sources):
        if source.suffix == ".json" and source.is_file():
            try:
                records = json.loads(source.read_text())["runs"]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{source} is not the output of `advad bench --json` (no 'runs' list)") from err
        elif (source / "results.sqlite").is_file():
            records = ResultStore(source).runs()
        else:
            raise FileNotFoundError(f"{source} holds no results store (results.sqlite; run `advad bench ... "
                                    f"--out {source}` first) and is not an `advad bench --json` file")
        for run in records:
            identity = _run_identity(run)
            if identity in seen:
                duplicates += 1
                continue
            seen.add(identity)
            runs.append(run)
    return runs, duplicates


def write_report(folders: str | Path | Sequence[str | Path], out: str | Path | None = None) -> tuple[Path, Path]:
    """Write `report.md` (with PNGs in `report_files/`) and a self-contained `report.html` of the runs
    in one or several results folders or `advad bench --json` files (default output folder: the first
    folder). Runs from JSON files have no curves (the JSON leaves them out); the tables include them."""
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    if not folders:
        raise ValueError("no results folder given")
    runs, duplicates = load_runs(folders)
    out = Path(out) if out else next((f for f in folders if f.suffix != ".json"), folders[0].parent)
    source = ", ".join(str(f) for f in folders)
    sections = scoreboard(runs)
    figures_dir = out / "report_files"
    figures_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if "error" not in run:
            dataset = dataset_label(run["dataset"], run.get("dataset_options"))
            groups[(run["model"], run.get("variant", ""), dataset, run["protocol"])].append(run)
    figures = []
    for (model, variant, dataset, protocol), members in sorted(groups.items()):
        png = _figure_png(members)
        if png is None:
            continue
        name = "_".join(part for part in (model, variant, dataset, protocol) if part)
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) + ".png"
        atomic_write_bytes(figures_dir / name, png)
        title = f"{model}{f' [{variant}]' if variant else ''} on {dataset} ({protocol}, {len(members)} runs)"
        figures.append((title, name, png))
    failures = [run for run in runs if "error" in run]

    dropped = f" ({duplicates} duplicate records of the same runs left out)" if duplicates else ""
    md = ["# advad scoreboard\n", f"{len(runs)} runs from `{source}`{dropped} (advad {__version__}). Ours: "
          "mean ± sample std over seeds (n). Paper: the published value of the table cell the row measures (a "
          "row with extra settings in brackets, e.g. a shorter budget, is compared with the cell without "
          "them); the difference is ours minus the first published value.\n"]
    tables = [section for section in sections if section["coverage"]]
    if tables:
        md += ["\n## The papers' tables\n", *_md_table(OVERVIEW_HEADER, map(_overview_row, tables))]
    for section in sections:
        if not section["rows"]:
            continue
        md.append(f"\n## {section['title']}\n")
        if section["coverage"]:
            md.append(_coverage_line(section["coverage"]) + "\n")
        md += _md_table(HEADER, map(_fmt, section["rows"]))
    if failures:
        md += ["\n## Failed runs\n"] + [f"- {r['model']} on {r['dataset']} seed {r['seed']}: {r['error']}"
                                         for r in failures]
    md.append("\n## Figures\n")
    md += [f"### {title}\n\n![{title}](report_files/{name})\n" for title, name, _ in figures]
    md_path = out / "report.md"
    atomic_write_bytes(md_path, "\n".join(md).encode())

    parts = [f"<h1>advad scoreboard</h1><p>{len(runs)} runs from <code>{html.escape(source)}</code> "
             f"(advad {__version__}). Ours: mean ± sample std over seeds (n); difference = ours − paper.</p>"]
    if tables:
        parts.append("<h2>The papers' tables</h2><table>" + _html_row(OVERVIEW_HEADER, "th")
                     + "".join(_html_row(_overview_row(t)) for t in tables) + "</table>")
    for section in sections:
        if not section["rows"]:
            continue
        parts.append(f"<h2>{html.escape(section['title'])}</h2>")
        if section["coverage"]:
            parts.append(f"<p class='coverage'>{html.escape(_coverage_line(section['coverage']))}</p>")
        parts.append("<table>" + _html_row(HEADER, "th"))
        for entry in section["rows"]:
            cells = _fmt(entry)
            cls = "" if entry["diff"] is None else (" class='below'" if entry["diff"] < -0.02 else " class='ok'")
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[:-1])
                         + f"<td{cls}>{html.escape(cells[-1])}</td></tr>")
        parts.append("</table>")
    if failures:
        parts.append("<h2>Failed runs</h2><ul>" + "".join(
            f"<li>{html.escape(r['model'])} on {html.escape(r['dataset'])} seed {r['seed']}: "
            f"{html.escape(r['error'])}</li>" for r in failures) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for title, _, png in figures:
        data = base64.b64encode(png).decode()
        parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(title)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
             "th{background:#f3f3f3}.below{background:#fde2e2}.ok{background:#e2f5e2}img{max-width:100%}"
             "figcaption{font-size:13px;color:#555}")
    document = (f"<!doctype html><html><head><meta charset='utf-8'><title>advad scoreboard</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    html_path = out / "report.html"
    atomic_write_bytes(html_path, document.encode())
    return md_path, html_path


__all__ = ["scoreboard", "write_report"]
