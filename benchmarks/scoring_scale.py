"""Scoring at scale (issue 9): millions of KDD99-shaped rows through a fitted ALAD, memory and speed.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/scoring_scale.py --work /tmp/advad_scale \
        --npy-rows 1000000,5000000 --csv-rows 10000,1000000,5000000 --out benchmarks/results/scoring_scale.json

Rows: 121 float32 features shaped like the one-hot-encoded KDD99 of the papers: 38 count-like columns
(integers 0-999) and one-hot groups of 3, 70 and 10 levels (protocol, service, flag); generated in
blocks of 100 000 rows, so no more than one block is held while writing. The model: ALAD
(architecture="kdd", 1 epoch, seed 0) fitted on 20 000 such rows (another seed).

(a) ``decision_function`` on the first N rows of a memory-mapped .npy file (``np.load(mmap_mode="r")``),
    in a fresh process: seconds, rows/s, and memory of the call after a one-chunk warm-up: the peak
    RSS (VmHWM, reset through /proc/self/clear_refs before the call) and, sampled every 10 ms, the
    peak of its two parts: anonymous memory (what the process allocates) and file-backed pages (the
    memory-mapped file's pages read so far: page cache the kernel may drop at any time).
(b) ``advad score --data X.csv --out scores.csv`` (default --chunk-size 100 000) on a CSV of the first N
    rows, as a child process: wall time (start-up and model loading included), rows/s and its peak RSS
    (maximum resident set size from /usr/bin/time).
(c) the largest CSV again with the child's address space capped (RLIMIT_AS, --limit-mb, default 2000 MB):
    `advad score` under the cap, and `pandas.read_csv` of the whole file under the same cap (the data
    cannot be loaded at once under it: 121 float64 columns need 8 bytes × 121 per row).
Both paths score the same rows; the JSON states the largest difference between their scores.
Generated files are kept in --work and reused by later runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

N_FEATURES = 121
BLOCK = 100_000
ONE_HOT = (3, 70, 10)  # protocol, service, flag levels: 38 + 83 = 121 columns


def kdd_block(index: int, rows: int = BLOCK, seed: int = 1) -> np.ndarray:
    """Block `index` of the synthetic KDD99-shaped rows (float32, exact integers); row r of the data is
    row r % BLOCK of block r // BLOCK, whatever the file's length."""
    rng = np.random.default_rng([seed, index])
    counts = N_FEATURES - sum(ONE_HOT)
    X = np.zeros((rows, N_FEATURES), dtype=np.float32)
    X[:, :counts] = rng.integers(0, 1000, size=(rows, counts))
    start = counts
    for levels in ONE_HOT:
        X[np.arange(rows), start + rng.integers(0, levels, rows)] = 1.0
        start += levels
    return X


def status_mb(*fields: str) -> dict[str, float]:
    with open("/proc/self/status") as f:
        values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in f if line.split(":")[0] in fields}
    return {k: values.get(k, float("nan")) for k in fields}


# ------------------------------------------------------------------------------------ preparation
def fit_model(path: Path) -> None:
    from advad.models.alad import ALAD

    X = kdd_block(0, 20_000, seed=0)
    ALAD(architecture="kdd", epochs=1, random_state=0).fit(X).save(path)


def write_npy(path: Path, rows: int) -> None:
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32,
                                    shape=(rows, N_FEATURES))
    for i, start in enumerate(range(0, rows, BLOCK)):
        out[start:start + BLOCK] = kdd_block(i)[:rows - start]
        out.flush()
    del out
    path.with_suffix(".tmp.npy").replace(path)


def write_csv(path: Path, rows: int) -> None:
    import pandas as pd

    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for i, start in enumerate(range(0, rows, BLOCK)):
            block = kdd_block(i)[:rows - start].astype(np.int32)  # exact: every value is an integer
            pd.DataFrame(block, columns=[f"f{j}" for j in range(N_FEATURES)]).to_csv(f, header=i == 0, index=False)
    tmp.replace(path)


# ------------------------------------------------------------------------------------ (a) in a child
def child_score_npy(model: str, npy: str, rows: int, scores_out: str) -> None:
    from advad import load

    det = load(model)
    X = np.load(npy, mmap_mode="r")[:rows]
    det.decision_function(X[:det.score_batch_size])  # warm-up: one full chunk
    with open("/proc/self/clear_refs", "w") as f:  # Linux: reset VmHWM to the current RSS
        f.write("5")
    before = status_mb("VmRSS", "RssAnon", "RssFile")
    peaks = {"RssAnon": 0.0, "RssFile": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = status_mb("RssAnon", "RssFile")
            for k in peaks:
                peaks[k] = max(peaks[k], now[k])
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    scores = det.decision_function(X)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    after = status_mb("VmHWM", "RssAnon", "RssFile")
    np.save(scores_out, scores)
    print(json.dumps({
        "rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
        "rss_before_mb": round(before["VmRSS"], 1), "peak_rss_mb": round(after["VmHWM"], 1),
        "peak_increase_mb": round(after["VmHWM"] - before["VmRSS"], 1),
        "anon_before_mb": round(before["RssAnon"], 1), "peak_anon_mb_sampled": round(max(peaks["RssAnon"], after["RssAnon"]), 1),
        "peak_file_backed_mb_sampled": round(max(peaks["RssFile"], after["RssFile"]), 1),
        "file_mb": round(X.nbytes / 2**20, 1), "score_vector_mb": round(scores.nbytes / 2**20, 1),
        "finite": bool(np.isfinite(scores).all())}))


def run_npy(model: Path, npy: Path, rows: int, scores_out: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-npy", str(model), str(npy), str(rows), str(scores_out)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ (b) the CLI
def address_limit(limit_mb: int | None):
    """preexec_fn capping a child's address space (RLIMIT_AS) at `limit_mb`, or None for no cap."""
    if limit_mb is None:
        return None
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))


def run_cli(model: Path, csv: Path, rows: int, out_csv: Path, limit_mb: int | None = None) -> dict:
    """Peak RSS through /usr/bin/time (%M), not this process's wait4: a child started by vfork from a
    process with a large RSS inherits that process's high-water mark in ru_maxrss."""
    command = [sys.executable, "-m", "advad.cli", "score", "--model-file", str(model), "--data", str(csv),
               "--out", str(out_csv)]
    measured = out_csv.with_suffix(".time")
    done = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", str(measured), *command], capture_output=True,
                          text=True, preexec_fn=address_limit(limit_mb))
    if done.returncode != 0:
        raise RuntimeError(f"advad score failed ({done.returncode}): {done.stderr}")
    max_rss_kb, seconds = measured.read_text().split()[-2:]
    return {"rows": rows, "command": " ".join(["advad", *command[3:]]), "seconds": float(seconds),
            "rows_per_second": round(rows / float(seconds)), "peak_rss_mb": round(int(max_rss_kb) / 1024, 1),
            "csv_mb": round(csv.stat().st_size / 2**20, 1), "stderr": done.stderr.strip()}


def load_at_once(csv: Path, limit_mb: int) -> str:
    """What `pd.read_csv(csv)` (the whole file at once) does under the address-space cap."""
    done = subprocess.run([sys.executable, "-c", "import sys, pandas as pd; print(pd.read_csv(sys.argv[1]).shape)",
                           str(csv)], capture_output=True, text=True, preexec_fn=address_limit(limit_mb))
    return done.stdout.strip() if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-npy":
        child_score_npy(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/advad_scale", help="folder for the model, .npy and CSV files")
    parser.add_argument("--npy-rows", default="1000000,5000000", help="comma-separated row counts for (a)")
    parser.add_argument("--csv-rows", default="10000,1000000,5000000", help="comma-separated row counts for (b)")
    parser.add_argument("--limit-mb", type=int, default=2000,
                        help="(c) address-space cap (RLIMIT_AS, MB) for the largest CSV: advad score under it, and "
                             "pandas loading the whole file under it (0: skip)")
    parser.add_argument("--out", help="JSON to write (default: stdout only)")
    args = parser.parse_args()
    npy_rows = [int(n) for n in args.npy_rows.split(",") if n]
    csv_rows = [int(n) for n in args.csv_rows.split(",") if n]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)  # noqa: E731

    t_start = time.perf_counter()
    model = work / "alad_kdd.advad"
    if not model.exists():
        log("fitting ALAD (kdd, 1 epoch, 20 000 rows)")
        fit_model(model)
    npy = work / f"kdd_{max(npy_rows + csv_rows)}.npy"
    if not npy.exists():
        log(f"writing {npy}")
        write_npy(npy, max(npy_rows + csv_rows))
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
                               f"{os.environ.get('OMP_NUM_THREADS', 'unset')}", "model": "ALAD(architecture='kdd', "
                    "epochs=1, random_state=0) on 20 000 rows", "n_features": N_FEATURES,
                    "decision_function_on_memmap": [], "cli_score_csv": []}
    for rows in npy_rows:
        log(f"(a) decision_function on {rows:,} memory-mapped rows")
        result["decision_function_on_memmap"].append(run_npy(model, npy, rows, work / f"scores_npy_{rows}.npy"))
        log(json.dumps(result["decision_function_on_memmap"][-1]))
    for rows in csv_rows:
        csv = work / f"kdd_{rows}.csv"
        if not csv.exists():
            log(f"writing {csv}")
            write_csv(csv, rows)
        log(f"(b) advad score on {rows:,} CSV rows")
        run = run_cli(model, csv, rows, work / f"scores_cli_{rows}.csv")
        import pandas as pd

        cli_scores = pd.read_csv(work / f"scores_cli_{rows}.csv")["score"].to_numpy()
        reference = np.load(work / f"scores_npy_{max(npy_rows)}.npy", mmap_mode="r")[:rows] \
            if max(npy_rows) >= rows else None
        run["rows_written"] = int(len(cli_scores))
        if reference is not None:
            run["max_abs_difference_to_memmap_scores"] = float(np.abs(cli_scores - reference).max())
            run["max_relative_difference_to_memmap_scores"] = float(
                (np.abs(cli_scores - reference) / np.maximum(np.abs(reference), 1e-12)).max())
        result["cli_score_csv"].append(run)
        log(json.dumps(run))
    if args.limit_mb and csv_rows:
        rows = max(csv_rows)
        csv = work / f"kdd_{rows}.csv"
        log(f"(c) advad score on {rows:,} CSV rows with the address space capped at {args.limit_mb} MB")
        capped = run_cli(model, csv, rows, work / f"scores_cli_capped_{rows}.csv", args.limit_mb)
        log("(c) pandas.read_csv of the whole file under the same cap")
        result["address_space_cap"] = {
            "limit_mb": args.limit_mb, "csv_rows": rows, "float64_frame_mb": round(rows * N_FEATURES * 8 / 2**20, 1),
            "advad_score": capped, "pandas_read_csv_whole_file": load_at_once(csv, args.limit_mb),
            "same_scores_as_uncapped": (work / f"scores_cli_capped_{rows}.csv").read_bytes()
            == (work / f"scores_cli_{rows}.csv").read_bytes()}
        log(json.dumps(result["address_space_cap"]))
    result["total_seconds"] = round(time.perf_counter() - t_start)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
