"""The results store and executors: SIGKILL-safe resume, concurrent writers, same metrics everywhere."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from advad.bench import Cell, plan_paper, run_bench
from advad.cli import main
from advad.store import ResultStore

# One model of each family (bidirectional GAN, mirrored autoencoder, ARN, autoencoder, classical), deep
# ones first so the kill lands in a network's training.
SWEEP = ["--models", "alad,maesi,arn,ae,iforest,ocsvm", "--datasets", "breast-cancer", "--seeds", "2",
         "--budget", "smoke", "--no-progress"]


def _bench(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "advad.cli", "bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _rows(folder):
    return sorted((r["key"], json.dumps(r["metrics"], sort_keys=True)) for r in ResultStore(folder).runs())


# The scoreboard issue's check: a paper preset on the real data, cut to the models that run in seconds.
PAPER_SWEEP = ["--paper", "rcgan:table1", "--models", "iforest,ocsvm", "--datasets", "arrhythmia,thyroid",
               "--budget", "quick", "--no-progress"]
needs_data = pytest.mark.skipif(not os.environ.get("ADVAD_DATA"), reason="ADVAD_DATA not set")


@pytest.mark.parametrize("sweep, n_runs", [(SWEEP, 12), pytest.param(PAPER_SWEEP, 20, marks=needs_data)],
                         ids=["embedded", "rcgan-table1"])
def test_sigkilled_sweep_resumes_to_the_uninterrupted_result(tmp_path, sweep, n_runs):
    reference = tmp_path / "reference"
    assert main(["bench", *sweep, "--out", str(reference)]) == 0  # in this process: one import fewer
    killed = tmp_path / "killed"
    process = _bench([*sweep, "--out", str(killed)])
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once some, but not all, runs are stored
        if (killed / "results.sqlite").exists() and 0 < len(ResultStore(killed).runs()):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = len(ResultStore(killed).runs())
    assert 0 < partial < n_runs
    resumed = _bench([*sweep, "--out", str(killed), "--json"])
    out, _ = resumed.communicate()
    assert resumed.returncode == 0
    assert _rows(killed) == _rows(reference)  # every run exactly once, same metrics
    assert len(json.loads(out)["runs"]) == n_runs


def _write_many(folder, worker):
    store = ResultStore(folder)
    for n in range(40):
        store.add({"key": f"{worker}-{n}", "model": "m", "dataset": "d", "protocol": "topk", "seed": n,
                   "budget": "smoke", "params_hash": "x", "metrics": {"f1": 0.5}})


def test_concurrent_writers_lose_no_rows(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(tmp_path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(ResultStore(tmp_path).runs()) == 160


def test_error_rows_are_retried_but_results_never_overwritten(tmp_path):
    store = ResultStore(tmp_path)
    base = {"key": "k", "model": "m", "dataset": "d", "protocol": "topk", "seed": 0, "budget": "smoke",
            "params_hash": "x"}
    store.add({**base, "error": "boom"})
    assert store.done_keys() == set()
    store.add({**base, "metrics": {"f1": 0.9}})
    store.add({**base, "metrics": {"f1": 0.1}})
    assert store.done_keys() == {"k"} and store.runs()[0]["metrics"] == {"f1": 0.9}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.sqlite").write_text("not a database")
    with pytest.raises(ValueError, match="not a usable advad results store"):
        ResultStore(tmp_path / "bad")


def test_jobs_executor_gives_the_same_metrics_as_in_process(tmp_path):
    args = dict(models=["iforest", "ae"], datasets=["loop", "four-dot"], seeds=2, budget="smoke", progress=False)
    serial = run_bench(**args)
    parallel = run_bench(**args, jobs=2, out=tmp_path)
    assert [r["metrics"] for r in serial["runs"]] == [r["metrics"] for r in parallel["runs"]]
    assert serial["summary"] == parallel["summary"]
    host = parallel["runs"][0]["host"]  # results differ between CPU models: every run names its machine
    assert host["cpu"] and host["torch"]


def test_ray_executor_gives_the_same_metrics_as_jobs(tmp_path):
    """The issue's check: one sweep (a network and a classical model) on Ray and on `--jobs 2`."""
    pytest.importorskip("ray")
    args = dict(models=["ae", "iforest"], datasets=["loop"], seeds=2, budget="smoke", progress=False)
    with_jobs = run_bench(**args, jobs=2, out=tmp_path / "jobs")["runs"]
    on_ray = run_bench(**args, executor="ray", out=tmp_path / "ray")["runs"]
    assert len(on_ray) == 4
    assert [r["metrics"] for r in on_ray] == [r["metrics"] for r in with_jobs]


@needs_data
def test_paper_preset_expands_to_the_tables_cells():
    messages = []
    cells = plan_paper("rcgan:table1", 2, "smoke", log=messages.append)
    assert all(isinstance(c, Cell) and c.protocol == "topk" and c.paper == "rcgan:table1" for c in cells)
    assert {("iforest", "kdd99"), ("iforest", "musk"), ("alad", "arrhythmia")} <= {(c.model, c.dataset) for c in cells}
    assert {c.seed for c in cells} == {0, 1}
    assert any("not implemented yet" in m and "dagmm" in m for m in messages) or "dagmm" in {c.model for c in cells}
    only = plan_paper("rcgan:table1", 1, "smoke", log=messages.append, models=["iforest"], datasets=["musk"])
    assert [(c.model, c.dataset) for c in only] == [("iforest", "musk")]


def test_preset_runs_with_settings_beyond_their_variant_carry_them_in_the_label():
    from advad.bench import setting_labels

    ablation = Cell("rcgan", "thyroid", "topk", 0, "paper", {"penalty": None}, variant="penalty=null", paper="rcgan:table3")
    assert setting_labels(ablation) == ("penalty=null", None)
    full = Cell("alad", "arrhythmia", "topk", 0, "paper", {"spectral_norm": True, "use_dzz": True, "score": "fm"},
                variant="", paper="alad:table5")  # the preset's params: not the benchmark default
    assert setting_labels(full)[0] == "score=fm;spectral_norm=true;use_dzz=true"
    shorter = Cell("iforest", "kdd99", "topk", 0, "quick", {"n_estimators": 10}, paper="alad:table2")  # --param
    assert setting_labels(shorter)[0] == "n_estimators=10"


@needs_data
def test_several_presets_share_their_common_runs(tmp_path):
    messages = []
    both = run_bench(paper="alad:table2,maesi:table2", models=["iforest"], datasets=["arrhythmia"], seeds=1,
                     budget="smoke", out=tmp_path, progress=False, log=messages.append)
    assert [(r["model"], r["dataset"], r["paper"]) for r in both["runs"]] == [("iforest", "arrhythmia", "alad:table2")]


def _killable_sweep(folder):  # a child process: checkpoints after every epoch of the one long fit
    run_bench(**LONG_FIT, out=folder, progress=False, checkpoint_interval=0)


LONG_FIT = dict(models=["ae"], datasets=["breast-cancer"], seeds=1, budget="smoke", params={"epochs": 400})


def test_sweep_killed_mid_fit_resumes_that_fit(tmp_path, monkeypatch):
    """`advad bench --out` SIGKILLed inside a fit: the fit's checkpoint is left under out/checkpoints/<key>,
    the rerun resumes it (not a fresh fit) to the metrics of an uninterrupted sweep, then deletes it."""
    import advad.engine

    reference = run_bench(**LONG_FIT, out=tmp_path / "reference", progress=False)
    assert not (tmp_path / "reference" / "checkpoints").exists()
    killed = tmp_path / "killed"
    child = multiprocessing.get_context("spawn").Process(target=_killable_sweep, args=(killed,))
    child.start()
    deadline = time.time() + 120
    while time.time() < deadline and not list(killed.glob("checkpoints/*/0/checkpoint.safetensors")):
        time.sleep(0.05)
    time.sleep(0.5)  # a few epochs more
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert list(killed.glob("checkpoints/*/0/checkpoint.safetensors")) and not ResultStore(killed).runs()
    resumed = []
    original = advad.engine.Trainer._try_resume
    monkeypatch.setattr(advad.engine.Trainer, "_try_resume", lambda self: resumed.append(original(self)) or resumed[-1])
    rerun = run_bench(**LONG_FIT, out=killed, progress=False)
    assert resumed == [True]
    assert [r["metrics"] for r in rerun["runs"]] == [r["metrics"] for r in reference["runs"]]
    assert not (killed / "checkpoints").exists()


def _pool_workers(pid: int) -> set[int]:
    """Live process-pool workers started by `pid` (Linux /proc)."""
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, parent = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[:2]
            command = open(f"/proc/{entry}/cmdline").read()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(parent) == pid and state != "Z" and "spawn_main" in command:
            found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_when_the_sweep_is_killed():
    """`advad bench --jobs 2` SIGKILLed mid-fit: its worker processes stop too, instead of fitting on as
    orphans beside the rerun."""
    sweep = _bench(["--models", "ae", "--datasets", "breast-cancer", "--seeds", "2", "--budget", "smoke",
                    "--param", "epochs=1000000", "--jobs", "2", "--no-progress"])
    workers: set[int] = set()
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(workers) < 2:
            workers = _pool_workers(sweep.pid)
            time.sleep(0.1)
        assert len(workers) == 2
        time.sleep(3)  # both inside their fits
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        deadline = time.time() + 20
        while time.time() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)]
    finally:  # never leave a million-epoch fit running, whatever failed
        for pid in [sweep.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        sweep.wait()
