"""Figures: the discriminator maps of the RCGAN paper (§5.1, Fig. 3) and ARN's generated outliers (Fig. 6).

`discriminator_maps` trains RCGAN and ALAD with the same networks and hyper-parameters on the normal
points of the 2-D synthetic sets (`loop`, `arc`, `four-dot`) and evaluates D_xz(x, E(x)) and
D_xx(x, G(E(x))) — the probability each discriminator gives that x is normal — on a grid over
[-3, 3]². `plot_discriminator_map` draws them as the paper does (row 1: the normal data; row 2:
RCGAN; row 3: ALAD; per data set D_xz left, D_xx right) and writes the PNG atomically.
`arn_generation_command` fits ARN as the `auc` protocol does and draws normal rows, the outliers ARN
generates from them and real anomalies per attribute (`plot_arn_generation`).

matplotlib is used with the Agg backend (no display needed).
"""

from __future__ import annotations

import io
import os
import time
from typing import Any, Sequence

import numpy as np

SYNTHETIC_SETS = ("loop", "arc", "four-dot")
BOX = 3.0

# Training settings of the figure: the same for both models (the paper: "the same neural structures
# and hyper-parameters"). ALAD's Arrhythmia networks (Table XIII) are used, as for every small
# tabular set; lr 5e-4 instead of 1e-5 so that ~2,300 steps suffice on a CPU.
MAP_PARAMS: dict[str, Any] = {"epochs": 150, "batch_size": 64, "learning_rate": 5e-4, "spectral_norm": False,
                              "ema_warmup": True}


def grid(n: int = 121, box: float = BOX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, points): an n×n grid over [-box, box]², points shaped (n·n, 2), row-major in y."""
    xs = np.linspace(-box, box, n)
    gx, gy = np.meshgrid(xs, xs)
    return xs, xs, np.c_[gx.ravel(), gy.ravel()].astype(np.float32)


def discriminator_maps(datasets: Sequence[str] = SYNTHETIC_SETS, models: Sequence[str] = ("rcgan", "alad"),
                       seed: int = 0, resolution: int = 121, params: dict[str, Any] | None = None,
                       log=None) -> dict[str, Any]:
    """Fit each model on the normal rows of each synthetic set and evaluate its discriminators.

    Returns ``{"xs", "ys", "params", "data": {name: normal points (n, 2)},
    "maps": {(model, name): {"dxz": (res, res), "dxx": (res, res)}}, "seconds": {(model, name): s}}``.
    `params` override `MAP_PARAMS` for every model (e.g. ``{"penalty": "uniform"}`` is passed to
    RCGAN only; keys a model does not have are skipped for it).
    """
    from advad.data import load_dataset
    from advad.models import make_detector

    xs, ys, points = grid(resolution)
    settings = {**MAP_PARAMS, **(params or {})}
    out: dict[str, Any] = {"xs": xs, "ys": ys, "params": settings, "data": {}, "maps": {}, "seconds": {}}
    for name in datasets:
        ds = load_dataset(name)
        normal = ds.X[ds.y == 0]
        out["data"][name] = normal
        for model in models:
            from advad.models import get_model_class

            valid = get_model_class(model)().get_params(deep=False)
            det = make_detector(model, **{k: v for k, v in settings.items() if k in valid}, random_state=seed)
            start = time.perf_counter()
            det.fit(normal)
            out["seconds"][(model, name)] = time.perf_counter() - start
            probs = det.discriminator_outputs(points)
            out["maps"][(model, name)] = {k: v.reshape(resolution, resolution) for k, v in probs.items()}
            if log:
                log(f"{model} on {name}: {out['seconds'][(model, name)]:.1f} s")
    return out


def plot_discriminator_map(maps: dict[str, Any], path: str | os.PathLike, dpi: int = 110) -> str:
    """Draw the result of `discriminator_maps` as the paper's Fig. 3 and write it atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from advad.serialization import atomic_write_bytes

    names = list(maps["data"])
    models = sorted({m for m, _ in maps["maps"]}, key=lambda m: (m != "rcgan", m))
    ncols, nrows = 2 * len(names), 1 + len(models)
    # mosaic: the data plot of each set spans its two columns; one row per model below
    layout = [[f"data:{n}" for n in names for _ in (0, 1)]]
    layout += [[f"{m}:{n}:{k}" for n in names for k in ("dxz", "dxx")] for m in models]
    fig = Figure(figsize=(2.3 * ncols, 2.45 * nrows), layout="constrained")
    axes = fig.subplot_mosaic(layout)
    extent = (maps["xs"][0], maps["xs"][-1], maps["ys"][0], maps["ys"][-1])
    image = None
    for name in names:
        data = maps["data"][name]
        top = axes[f"data:{name}"]
        top.scatter(data[:, 0], data[:, 1], s=2, c="tab:blue")
        top.set_xlim(extent[:2])
        top.set_ylim(extent[2:])
        top.set_aspect("equal")
        top.set_title(f"{name}: normal data (n={len(data)})", fontsize=9)
        top.tick_params(labelsize=7)
        for model in models:
            for key in ("dxz", "dxx"):
                ax = axes[f"{model}:{name}:{key}"]
                image = ax.imshow(maps["maps"][(model, name)][key], origin="lower", extent=extent, vmin=0.0,
                                  vmax=1.0, cmap="viridis", interpolation="nearest")
                label = "D_xz(x, E(x))" if key == "dxz" else "D_xx(x, G(E(x)))"
                ax.set_title(f"{model.upper()} {label}", fontsize=8)
                ax.set_xticks([-3, 0, 3])
                ax.set_yticks([-3, 0, 3])
                ax.tick_params(labelsize=7)
    if image is not None:
        fig.colorbar(image, ax=[a for k, a in axes.items() if not k.startswith("data:")], shrink=0.6,
                     label="P(normal)")
    p = maps.get("params", {})
    fig.suptitle("RCGAN Fig. 3: discriminator outputs on [-3, 3]² (brighter = more confident x is normal); "
                 f"epochs {p.get('epochs')}, batch {p.get('batch_size')}, lr {p.get('learning_rate')}",
                 fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)


def save_maps(maps: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the arrays of `discriminator_maps` to an .npz (re-plot without refitting)."""
    arrays = {"xs": maps["xs"], "ys": maps["ys"]}
    arrays.update({f"data/{n}": v for n, v in maps["data"].items()})
    arrays.update({f"map/{m}/{n}/{k}": v for (m, n), d in maps["maps"].items() for k, v in d.items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    from advad.serialization import atomic_write_bytes

    atomic_write_bytes(path, buffer.getvalue())


def load_maps(path: str | os.PathLike) -> dict[str, Any]:
    """Counterpart of `save_maps` (plain arrays; no pickle)."""
    with np.load(path, allow_pickle=False) as f:
        out: dict[str, Any] = {"xs": f["xs"], "ys": f["ys"], "data": {}, "maps": {}, "params": {}}
        for key in f.files:
            parts = key.split("/")
            if parts[0] == "data":
                out["data"][parts[1]] = f[key]
            elif parts[0] == "map":
                out["maps"].setdefault((parts[1], parts[2]), {})[parts[3]] = f[key]
    return out


def gap_contrast(maps: dict[str, Any], model: str = "rcgan", key: str = "dxz") -> tuple[float, float]:
    """On `four-dot`: mean P(normal) of `key` near the dots (within 0.3) and in the gaps between
    them (the points at least 0.75 from every dot inside the square the dots span)."""
    from advad.data._embedded import DOT_CENTERS

    _, _, points = grid(len(maps["xs"]), BOX)
    dist = np.min(np.linalg.norm(points[:, None, :] - DOT_CENTERS[None], axis=2), axis=1)
    values = maps["maps"][(model, "four-dot")][key].ravel()
    inside = np.all(np.abs(points) <= 1.5, axis=1)
    return float(values[dist <= 0.3].mean()), float(values[(dist >= 0.75) & inside].mean())


def discriminator_map_command(out: str | os.PathLike = "docs/img/rcgan_discriminator_map.png",
                              datasets: Sequence[str] = SYNTHETIC_SETS, seed: int = 0, epochs: int | None = None,
                              resolution: int = 121, params: dict[str, Any] | None = None, log=None) -> dict:
    """What ``advad plot discriminator-map`` runs: fit, evaluate, write the PNG; returns a summary
    (path, seconds per fit, four-dot contrast dots vs gaps for both models and both discriminators)."""
    settings = dict(params or {})
    if epochs is not None:
        settings["epochs"] = int(epochs)
    maps = discriminator_maps(datasets, seed=seed, resolution=resolution, params=settings, log=log)
    path = plot_discriminator_map(maps, out)
    save_maps(maps, os.path.splitext(str(out))[0] + ".npz")
    summary: dict[str, Any] = {"path": path, "params": maps["params"],
                               "fit_seconds": {f"{m}/{d}": round(s, 2) for (m, d), s in maps["seconds"].items()}}
    if "four-dot" in maps["data"]:
        summary["four_dot_dots_vs_gaps"] = {
            f"{m}/{k}": [round(v, 4) for v in gap_contrast(maps, m, k)]
            for m in sorted({m for m, _ in maps["maps"]}) for k in ("dxz", "dxx")}
    return summary


# --------------------------------------------------------------------------------------------- ARN Fig. 6
def plot_arn_generation(detector: Any, X_normal: np.ndarray, X_anomalous: np.ndarray, path: str | os.PathLike, *,
                        n_rows: int = 200, feature_names: Sequence[str] | None = None,
                        columns: Sequence[int] | None = None, random_state: int = 0, dpi: int = 130) -> dict:
    """ARN's Fig. 6: per attribute (x axis), the values of normal rows (red dots), of the outliers ARN
    generates from them (blue stars) and of real anomalies (yellow crosses), on the detector's [0, 1]
    min-max scale. `X_*` are in the fitted detector's input space. Writes the PNG atomically; returns
    the median score p(1|x) of each group."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from advad.serialization import atomic_write_bytes

    rng = np.random.default_rng(random_state)
    normal = X_normal[rng.choice(len(X_normal), size=min(n_rows, len(X_normal)), replace=False)]
    anomalous = X_anomalous[rng.choice(len(X_anomalous), size=min(n_rows, len(X_anomalous)), replace=False)]
    generated = detector.generate(normal, random_state=random_state)
    lo, span = detector.shift_.reshape(-1), detector.scale_.reshape(-1)
    cols = list(range(normal.shape[1])) if columns is None else list(columns)
    groups = {"normal": normal, "generated": generated, "anomalous": anomalous}
    medians = {name: float(np.median(detector.decision_function(rows))) for name, rows in groups.items()}

    fig = Figure(figsize=(max(8.0, 0.22 * len(cols)), 4.8), layout="constrained")
    ax = fig.subplots()
    xs = np.arange(len(cols))
    styles = {"normal": dict(c="red", marker=".", s=14, label="normal"),
              "generated": dict(c="blue", marker="*", s=18, label="generated outliers"),
              "anomalous": dict(c="gold", marker="x", s=16, label="real anomalies")}
    for name, rows in groups.items():
        values = np.clip(((rows - lo) / span)[:, cols], -0.05, 1.05)
        jitter = rng.uniform(-0.18, 0.18, size=(len(values), 1))
        ax.scatter((xs[None, :] + jitter).ravel(), values.ravel(), alpha=0.35, linewidths=0.8, **styles[name])
    ax.set_xticks(xs)
    ax.set_xticklabels([feature_names[c] for c in cols] if feature_names else [str(c) for c in cols],
                       rotation=90, fontsize=6)
    ax.set_ylabel("min-max scaled value")
    ax.set_xlabel("attribute")
    ax.set_title(f"ARN generated outliers — median score p(1|x): normal {medians['normal']:.3f}, "
                 f"generated {medians['generated']:.3f}, real anomalies {medians['anomalous']:.3f}", fontsize=9)
    ax.legend(loc="upper right", fontsize=8, markerscale=1.5)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return medians


def arn_generation_command(out: str | os.PathLike, dataset: str = "kdd99-rev", seed: int = 0,
                           budget: str = "quick", params: dict[str, Any] | None = None, rows: int = 200,
                           numeric_only: bool = False, log=None) -> dict:
    """What ``advad plot arn-generation`` runs: ARN fitted exactly as in ``advad bench --protocol auc``
    (the split of ARN §IV-A for `seed`, min-max scaling, the epoch chosen on the labelled validation
    rows, the data set's protocol defaults), then Fig. 6 from the *test* normals and anomalies."""
    from advad.data import load_dataset
    from advad.models import get_model_class
    from advad.protocols import arn_split, resolve_conventions

    ds = load_dataset(dataset)
    arn = get_model_class("arn")
    split, _ = arn_split(ds, seed, **resolve_conventions("auc", dataset, arn))
    settings = {**arn.bench_params(ds, budget), **(params or {})}
    det = arn(random_state=seed, **settings)
    start = time.perf_counter()
    det.fit(split.X_train, validation_data=(split.X_val, split.y_val))  # ARN's auc default: validation=True
    seconds = time.perf_counter() - start
    if log:
        log(f"arn on {dataset}: fit {seconds:.0f} s, epoch chosen by {det.selected_by_}")
    medians = plot_arn_generation(det, split.X_test[split.y_test == 0], split.X_test[split.y_test == 1], out,
                                  n_rows=rows, feature_names=ds.feature_names,
                                  columns=ds.numeric_columns if numeric_only else None, random_state=seed)
    return {"path": str(out), "dataset": dataset, "seed": seed, "budget": budget, "params": settings,
            "fit_seconds": round(seconds, 1), "median_scores": {k: round(v, 4) for k, v in medians.items()}}
