"""The `advad` command (SPEC §4). Results go to stdout (or --out); progress and logs to stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any


EXIT_USAGE = 2


def _parse_value(text: str) -> Any:
    """`--param` values: JSON where it parses (numbers, true/false/null, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_params(items: list[str] | None, flag: str = "--param") -> dict[str, Any]:
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"advad: {flag} expects key=value, got {item!r}")
        params[key.strip()] = _parse_value(value)
    return params


def _csv_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _seeds(text: str) -> int | list[int]:
    """`--seeds`: ``5`` -> seeds 0..4; ``1,3`` -> seeds 1 and 3; ``2-4`` -> seeds 2, 3, 4 (to add
    seeds to a sweep already in a store, or re-run one)."""
    seeds: list[int] = []
    try:
        if text.strip().isdigit():
            if int(text) > 0:
                return int(text)
        else:
            for part in _csv_list(text) or []:
                low, dash, high = part.partition("-")
                seeds += list(range(int(low), int(high) + 1)) if dash else [int(part)]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected a count ≥ 1 (5), a list (1,3) or a range (2-4) of seeds ≥ 0, "
                                         f"got {text!r}")
    return sorted(set(seeds))


# ---------------------------------------------------------------------------------------- data
def cmd_data(args: argparse.Namespace) -> int:
    from advad import data

    if args.data_command == "list":
        rows = [data.dataset_status(name) for name in data.list_datasets()]
        header = ["dataset", "files", "shape", "anomalies", "source"]
        table = [[r["name"], "present" if r["present"] else "missing", _shape(r.get("shape")),
                  "-" if r.get("anomalies") is None else f"{r['anomalies']:,}", r.get("source", "")] for r in rows]
        _print_table(header, table)
        print(f"\ndata folder: {data.data_home()} (set ADVAD_DATA to change it)")
    elif args.data_command == "info":
        status = data.dataset_status(args.name)
        for key, value in status.items():
            if key == "files":
                print("files:")
                for entry in value:
                    state = "present" if entry["present"] else "MISSING"
                    print(f"  {entry['path']} [{state}{'' if entry['required'] else ', optional'}] "
                          f"{entry['hash']}\n    from {entry['url']}")
            elif key != "shape":
                print(f"{key}: {value}")
            else:
                print(f"shape: {_shape(value)}")
    elif args.data_command == "fetch":
        for path in data.fetch(args.name, folder=args.folder):
            print(path)
    return 0


def _shape(shape: Any) -> str:
    return " × ".join(f"{n:,}" for n in shape) if shape else "?"


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------------------------------- fit / score
def _read_table(path: str, label_column: str | None):
    import pandas as pd

    frame = pd.read_csv(path)
    if label_column:
        if label_column not in frame.columns:
            raise SystemExit(f"advad: {path} has no column {label_column!r} (columns: {list(frame.columns)})")
        return frame.drop(columns=[label_column]), frame[label_column].to_numpy()
    return frame, None


def cmd_fit(args: argparse.Namespace) -> int:
    from advad import make_detector
    from advad.data import list_datasets, load_dataset

    if args.data in list_datasets():
        dataset = load_dataset(args.data)
        X, y = dataset.X, dataset.y
        if args.normal_only:
            X, y = X[y == 0], None
        else:
            y = None  # labels are never given to an unsupervised fit by accident
    elif Path(args.data).is_file():
        X, y = _read_table(args.data, args.label_column)
        if args.normal_only:
            if y is None:
                raise SystemExit("advad: --normal-only needs --label-column on a CSV file")
            X, y = X[y == 0], None
    else:
        raise SystemExit(f"advad: --data {args.data!r} is neither a dataset name (advad data list) nor a file")
    params = _parse_params(args.param)
    detector = make_detector(args.model, **params)
    if args.progress and "verbose" in detector.get_params():
        detector.set_params(verbose=True)
    detector.fit(X, y if y is not None and detector.supports_y else None)
    detector.save(args.out)
    print(f"advad: fitted {args.model} on {len(X)} rows; threshold {detector.threshold_:.6g}; saved {args.out}",
          file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import pandas as pd

    from advad import load
    from advad.base import InputError
    from advad.serialization import atomic_writer

    detector = load(args.model_file)
    runtime = {k: v for k, v in (("score_dtype", args.score_dtype), ("score_compile", args.compile or None)) if v}
    if runtime:
        if "score_dtype" not in detector.get_params(deep=False):
            raise InputError(f"--score-dtype/--compile: {args.model_file} holds a model of class "
                             f"{type(detector).__name__}, which has no networks to run that way; leave the option out")
        detector.set_params(**runtime)
    rows = 0
    # each chunk's scores are written as soon as they are computed: memory does not grow with the rows
    with contextlib.nullcontext(sys.stdout) if args.out == "-" else atomic_writer(args.out, "w") as output:
        for n, chunk in enumerate(pd.read_csv(args.data, chunksize=args.chunk_size)):
            if args.label_column and args.label_column in chunk.columns:
                chunk = chunk.drop(columns=[args.label_column])
            X = chunk if getattr(detector, "encoder_", None) is not None else chunk.to_numpy()
            scores = detector.decision_function(X)
            pd.DataFrame({"score": scores, "anomaly": (scores > detector.threshold_).astype(int)}).to_csv(
                output, header=n == 0, index=False)
            rows += len(chunk)
    if args.out != "-":
        print(f"advad: scored {rows} rows; wrote {args.out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from advad.bench import format_table, run_bench

    seeds = args.seeds if args.seeds is not None else (None if args.paper else 3)
    result = run_bench(models=_csv_list(args.models), datasets=_csv_list(args.datasets), protocol=args.protocol,
                       seeds=seeds, budget=args.budget, params=_parse_params(args.param),
                       protocol_params=_parse_params(args.protocol_param, "--protocol-param"),
                       dataset_options=_parse_params(args.dataset_param, "--dataset-param"),
                       out=args.out, progress=not args.no_progress, paper=args.paper,
                       executor=args.executor, jobs=args.jobs, ray_address=args.ray_address, ray_gpus=args.ray_gpus)
    if args.json:  # the report's curves and histograms stay in the store (--out), not on stdout
        runs = [{k: v for k, v in run.items() if k != "diagnostics"} for run in result["runs"]]
        json.dump({**result, "runs": runs}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        seeds = sorted({run["seed"] for run in result["runs"]})
        what = f"paper preset {args.paper}" if args.paper else f"protocol {args.protocol}"
        print(f"{what}, budget {args.budget}, seeds {seeds}: mean ± std over seeds\n")
        print(format_table(result))
    return 1 if any("error" in run for run in result["runs"]) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from advad.report import write_report

    md_path, html_path = write_report(args.folders, args.out)
    print(f"advad: wrote {md_path} and {html_path}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- plot
def cmd_plot(args: argparse.Namespace) -> int:
    from advad.plots import SYNTHETIC_SETS, arn_generation_command, discriminator_map_command

    log = (lambda text: print(f"advad: {text}", file=sys.stderr))
    if args.plot_command == "arn-generation":
        summary = arn_generation_command(args.out, args.dataset, seed=args.seed, budget=args.budget,
                                         params=_parse_params(args.param), rows=args.rows,
                                         numeric_only=args.numeric_only, log=log)
        print(json.dumps(summary))
        print(f"advad: wrote {summary['path']}", file=sys.stderr)
        return 0
    datasets = _csv_list(args.datasets) or list(SYNTHETIC_SETS)
    unknown = sorted(set(datasets) - set(SYNTHETIC_SETS))
    if unknown:
        raise ValueError(f"discriminator maps need 2-D data: {', '.join(unknown)} is not one of "
                         f"{', '.join(SYNTHETIC_SETS)}")
    summary = discriminator_map_command(args.out, datasets, seed=args.seed, epochs=args.epochs,
                                        resolution=args.resolution, params=_parse_params(args.param), log=log)
    print(json.dumps(summary, indent=1))
    print(f"advad: wrote {summary['path']}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advad", description="Adversarial anomaly detection: models, data, benchmarks.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="list, describe and fetch benchmark data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    data_sub.add_parser("list", help="every data set, whether its files are present, its shape")
    info = data_sub.add_parser("info", help="everything known about one data set")
    info.add_argument("name")
    fetch = data_sub.add_parser("fetch", help="download a data set's files and verify their sha256")
    fetch.add_argument("name")
    fetch.add_argument("--folder", help="where to put the files (default: $ADVAD_DATA or ~/.cache/advad)")
    data.set_defaults(func=cmd_data)

    fit = sub.add_parser("fit", help="fit a detector and save it to a model file")
    fit.add_argument("--model", required=True, help="model name (advad.list_models()) or pyod:<Class>")
    fit.add_argument("--data", required=True, help="data set name or CSV file")
    fit.add_argument("--label-column", help="CSV column holding labels (dropped from the features)")
    fit.add_argument("--normal-only", action="store_true", help="fit on the rows labelled normal only")
    fit.add_argument("--param", action="append", metavar="KEY=VALUE", help="model parameter (repeatable)")
    fit.add_argument("--out", required=True, help="model file to write (.advad)")
    fit.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    fit.set_defaults(func=cmd_fit)

    score = sub.add_parser("score", help="score a CSV file with a saved model")
    score.add_argument("--model-file", required=True)
    score.add_argument("--data", required=True, help="CSV file with the features used at fit")
    score.add_argument("--label-column", help="a column to drop before scoring")
    score.add_argument("--chunk-size", type=int, default=100_000, help="rows read and scored at a time")
    score.add_argument("--score-dtype", choices=("float32", "bfloat16"),
                       help="precision of a PyTorch model's networks while scoring (default: the model file's; "
                            "bfloat16 is faster on CPUs with AMX and on GPUs, see docs/performance.md)")
    score.add_argument("--compile", action="store_true",
                       help="score a PyTorch model through torch.compile (compiles once, 5-30 s; pays off on "
                            "many rows)")
    score.add_argument("--out", default="-", help="CSV of score,anomaly per row (default: stdout), written chunk by "
                                                  "chunk; a file appears only once every row is scored")
    score.set_defaults(func=cmd_score)

    bench = sub.add_parser("bench", help="benchmark models on data sets under a protocol (no arguments: "
                                         "the embedded suite)")
    bench.add_argument("--models", help="comma-separated model names (default: every registered model)")
    bench.add_argument("--datasets", help="comma-separated data sets (default: the embedded ones)")
    bench.add_argument("--protocol", default="topk",
                       help="topk | one-class | leave-one-out | ood | auc | contamination | weak-supervision")
    bench.add_argument("--seeds", type=_seeds, metavar="N|LIST|RANGE",
                       help="N runs seeds 0..N-1 (default 3; a --paper preset's own count); "
                            "1,3 or 2-4 runs exactly those seeds (one seed: 4-4)")
    bench.add_argument("--paper", help="run paper tables: alad:table2, several comma-separated, or all (advad.references)")
    bench.add_argument("--budget", default="quick", choices=["smoke", "quick", "paper"])
    bench.add_argument("--param", action="append", metavar="KEY=VALUE", help="model parameter for every run")
    bench.add_argument("--protocol-param", action="append", metavar="KEY=VALUE",
                       help="protocol convention, e.g. train_ratio=0.8, threshold_source=train, normal_class=3")
    bench.add_argument("--dataset-param", action="append", metavar="KEY=VALUE",
                       help="load option of every data set, e.g. categorical_only=true (`advad data info NAME` lists them)")
    bench.add_argument("--out", help="folder of the results store results.sqlite (re-running skips stored runs)")
    bench.add_argument("--executor", default="local", choices=["local", "ray"], help="where runs execute")
    bench.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1: this process)")
    bench.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local one)")
    bench.add_argument("--ray-gpus", type=float, default=0.0,
                       help="GPUs (or a fraction) each Ray task asks for, e.g. 0.25 to share a GPU among four runs")
    bench.add_argument("--json", action="store_true", help="print the JSON document (SPEC §4) on stdout")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    bench.set_defaults(func=cmd_bench)

    report = sub.add_parser("report", help="Markdown + HTML scoreboard of results folders (bench --out)")
    report.add_argument("folders", nargs="+", metavar="SOURCE",
                        help="folder(s) holding results.sqlite, or `advad bench --json` output files")
    report.add_argument("--out", help="where to write report.md, report.html (default: the first folder)")
    report.set_defaults(func=cmd_report)

    plot = sub.add_parser("plot", help="paper figures")
    plot_sub = plot.add_subparsers(dest="plot_command", metavar="FIGURE", required=True)
    dmap = plot_sub.add_parser("discriminator-map", help="RCGAN Fig. 3: D_xz and D_xx of RCGAN and ALAD on the "
                                                         "2-D synthetic sets, over [-3, 3]²")
    dmap.add_argument("--out", default="discriminator_map.png", help="PNG to write (the arrays go beside it, .npz)")
    dmap.add_argument("--datasets", help="comma-separated: loop, arc, four-dot (default: all three)")
    dmap.add_argument("--seed", type=int, default=0)
    dmap.add_argument("--epochs", type=int, help="training epochs of both models (default 150)")
    dmap.add_argument("--resolution", type=int, default=121, help="grid points per axis")
    dmap.add_argument("--param", action="append", metavar="KEY=VALUE",
                      help="parameter for both models where they have it (e.g. penalty=uniform)")
    agen = plot_sub.add_parser("arn-generation", help="ARN Fig. 6: normal rows, the outliers ARN generates from "
                                                      "them and real anomalies, per attribute")
    agen.add_argument("--dataset", default="kdd99-rev")
    agen.add_argument("--budget", default="quick", choices=("smoke", "quick", "paper"))
    agen.add_argument("--seed", type=int, default=0, help="split and model seed, as in `advad bench --protocol auc`")
    agen.add_argument("--rows", type=int, default=200, help="rows of each group drawn")
    agen.add_argument("--numeric-only", action="store_true", help="draw only the numeric attributes")
    agen.add_argument("--param", action="append", metavar="KEY=VALUE", help="ARN parameter")
    agen.add_argument("--out", default="arn_generation.png", help="PNG to write")
    plot.set_defaults(func=cmd_plot)
    return parser


def _version() -> str:
    from advad import __version__

    return f"advad {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from advad.base import InputError
    from advad.data import DatasetNotFoundError
    from advad.serialization import ModelFileError

    try:
        return args.func(args)
    except (InputError, ModelFileError, DatasetNotFoundError, ValueError, ImportError, FileNotFoundError) as err:
        print(f"advad: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `advad data list | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("advad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
