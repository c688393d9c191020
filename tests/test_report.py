"""`advad report`: the scoreboard's Markdown and HTML, checked in headless Chromium when present."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from advad.bench import run_bench
from advad.cli import main
from advad.report import _fmt, load_runs, scoreboard
from advad.store import ResultStore

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    run_bench(models=["iforest", "ae"], datasets=["loop", "four-dot"], seeds=2, budget="smoke", out=folder,
              progress=False)
    return folder


def test_scoreboard_puts_the_papers_value_beside_ours():
    runs = [{"model": "iforest", "dataset": "kdd99", "protocol": "topk", "seed": s, "metrics": {"f1": f1}}
            for s, f1 in enumerate([0.92, 0.93])]
    sections = {section["title"]: section for section in scoreboard(runs)}
    # the same runs measure a cell of every table with Isolation Forest on KDD99, whatever command made them
    for table in ("alad:table2", "rcgan:table1", "maesi:table2"):
        (row,) = sections[table]["rows"]
        assert row["n"] == 2 and row["papers"] and row["papers"][0][0].startswith(table.split(":")[0])
        assert row["diff"] == pytest.approx(0.925 - row["papers"][0][1])
    assert sections["alad:table3"]["rows"] == [] and sections["alad:table3"]["coverage"]["measured"] == 0
    coverage = sections["rcgan:table1"]["coverage"]
    assert coverage["measured"] == 1 and coverage["missing"] + coverage["unavailable"] == coverage["cells"] - 1


def test_runs_on_optioned_data_sets_measure_no_table_cell():
    """KDD99 loaded with other options than the tables' is not the tables' data set: its runs get a row of
    their own, labelled with the options, outside the tables."""
    runs = [{"model": "iforest", "dataset": "kdd99", "protocol": "topk", "seed": s, "metrics": {"f1": f1},
             **({"dataset_options": {"scale": "minmax"}} if s else {})} for s, f1 in enumerate([0.92, 0.50])]
    sections = {section["title"]: section for section in scoreboard(runs)}
    (row,) = sections["rcgan:table1"]["rows"]
    assert row["n"] == 1 and row["mean"] == pytest.approx(0.92) and "dataset_options" not in row
    (outside,) = sections["protocol topk (runs outside the papers' tables)"]["rows"]
    assert outside["mean"] == pytest.approx(0.50) and outside["dataset_options"] == {"scale": "minmax"}
    assert _fmt(outside)[0] == "kdd99[scale=minmax]"


def test_scoreboard_tells_failed_cells_from_cells_not_run():
    """A cell whose every run failed (covertype has too few anomalies for 5 % contamination) is not "not
    run yet": the overview counts it apart, with the error, so nobody re-runs it expecting numbers."""
    error = "ValueError: covertype has 2747 anomalies; cannot move 11332 into train"
    failed = [{"model": "arn", "dataset": "covertype", "protocol": "contamination", "task": "p=0.05", "seed": s,
               "budget": "quick", "params": {"epochs": 20}, "error": error} for s in range(2)]
    ok = {"model": "arn", "dataset": "covertype", "protocol": "contamination", "task": "p=0.01", "seed": 0,
          "budget": "quick", "params": {"epochs": 20}, "conventions": {"p": 0.01},
          "metrics": {"auroc": 0.7}}
    coverage = {s["title"]: s for s in scoreboard([*failed, ok])}["arn:table3"]["coverage"]
    assert coverage["failed"] == 1 and coverage["failed_labels"] == [f"arn on covertype (p=0.05) — {error}"]
    assert not any("covertype (p=0.05)" in label for label in coverage["missing_labels"])
    assert coverage["measured"] + coverage["failed"] + coverage["missing"] + coverage["unavailable"] == coverage["cells"]


def test_scoreboard_assigns_variants_to_their_cells():
    def run(variant, f1, dataset="thyroid", protocol="topk"):
        return {"model": "rcgan", "dataset": dataset, "protocol": protocol, "seed": 0, "variant": variant,
                "metrics": {"f1": f1}}

    runs = [run("penalty=null", 0.5), run("penalty_in_encoder=false", 0.7), run("", 0.6, "loop")]
    sections = {section["title"]: section for section in scoreboard(runs)}
    rows = {row["variant"]: row for row in sections["rcgan:table3"]["rows"]}
    # the ablation run sits in its own cell: compared with the paper's "w/o t(x)" value, not with RCGAN's
    assert rows["penalty=null"]["papers"][0][1] == pytest.approx(0.6494)
    # a run with a setting the table does not vary measures the default cell and keeps its label
    assert rows["penalty_in_encoder=false"]["papers"][0][1] == pytest.approx(0.758)
    assert sections["rcgan:table3"]["coverage"]["measured"] == 2  # thyroid with and without t(x)
    (outside,) = sections["protocol topk (runs outside the papers' tables)"]["rows"]
    assert outside["dataset"] == "loop" and outside["papers"] == []
    # ALAD's Arrhythmia benchmark default (no D_zz, l1 score) is Table II's ALAD, not Table V's full model
    alad = {"model": "alad", "dataset": "arrhythmia", "protocol": "topk", "seed": 0, "metrics": {"f1": 0.5},
            "params": {"use_dzz": False, "score": "l1"}}
    full = {**alad, "variant": "score=fm;spectral_norm=true;use_dzz=true",
            "params": {"use_dzz": True, "score": "fm", "spectral_norm": True}}
    no_dzz = {**alad, "variant": "score=fm;spectral_norm=true;use_dzz=false",
              "params": {"use_dzz": False, "score": "fm", "spectral_norm": True}}
    sections = {section["title"]: section for section in scoreboard([alad, full, no_dzz])}
    # Table V's ablation (no D_zz) is not also Table II's ALAD; the full model (advad's defaults) is both
    assert {row.get("variant", "") for row in sections["alad:table2"]["rows"]} == {"", full["variant"]}
    rows = {row["variant"]: row for row in sections["alad:table5"]["rows"]}
    assert set(rows) == {full["variant"], no_dzz["variant"]}
    assert rows[full["variant"]]["papers"][0][1] == pytest.approx(0.497)
    assert rows[no_dzz["variant"]]["papers"][0][1] == pytest.approx(0.515)


def test_report_writes_markdown_html_and_figures(store, capsys):
    assert main(["report", str(store)]) == 0
    markdown = (store / "report.md").read_text()
    assert "| loop |" in markdown and "iforest" in markdown and "ae" in markdown
    figures = sorted(p.name for p in (store / "report_files").iterdir())
    assert figures == ["ae_four-dot_topk.png", "ae_loop_topk.png", "iforest_four-dot_topk.png", "iforest_loop_topk.png"]
    assert all((store / "report_files" / name).read_bytes()[:4] == b"\x89PNG" for name in figures)
    html = (store / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html


def test_report_of_a_folder_without_store_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "holds no results store" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (.ci/run installs it)")
def test_html_report_renders_in_headless_chromium(store, tmp_path):
    main(["report", str(store)])
    page = (store / "report.html").as_uri()
    dom = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<table>") == 1 and dom.count("<img") == 4 and "advad scoreboard" in dom
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1400,1800", page], capture_output=True, timeout=120)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 50_000  # a rendered page, not blank
    assert len(ResultStore(store).runs()) == 8


def test_representations_give_a_latent_map_and_image_reconstructions():
    import numpy as np

    from advad.models import make_detector
    from advad.protocols import representations
    from advad.report import _figure_png, _image_grid

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (np.arange(400) % 10 == 0).astype(int)
    alad = make_detector("alad", epochs=1, random_state=0).fit(X[y == 0])
    tsne = representations(alad, X, y)["latent_tsne"]
    assert len(tsne["x"]) == len(tsne["y"]) == len(tsne["label"]) == 300 and 0 < sum(tsne["label"]) < 300
    assert representations(make_detector("iforest").fit(X), X, y) == {}  # no encoder: nothing to draw

    images = rng.integers(0, 256, size=(40, 1, 28, 28)).astype(np.uint8)
    labels = (np.arange(40) >= 30).astype(int)
    ae = make_detector("ae", epochs=1, random_state=0).fit(images[labels == 0])
    rebuilt = representations(ae, images, labels)["reconstructions"]
    assert rebuilt["label"] == [0] * 4 + [1] * 4 and rebuilt["input"] == images[[0, 1, 2, 3, 30, 31, 32, 33]].tolist()
    assert np.asarray(rebuilt["output"]).shape == (8, 1, 28, 28)
    assert _image_grid(rebuilt).shape == (2 * 30, 8 * 30)  # inputs above outputs, 1-pixel frames
    run = {"seed": 0, "diagnostics": {"histogram": {"edges": [0, 1, 2], "normal": [3, 1], "anomaly": [0, 2]},
                                      "latent_tsne": tsne, "reconstructions": rebuilt}}
    assert _figure_png([run])[:4] == b"\x89PNG"


def test_two_dimensional_runs_carry_discriminator_maps():
    import numpy as np

    from advad.data import load_dataset
    from advad.models import make_detector
    from advad.protocols import representations

    ds = load_dataset("four-dot")
    rcgan = make_detector("rcgan", epochs=1, random_state=0).fit(ds.X[ds.y == 0])
    maps = representations(rcgan, ds.X, ds.y)["discriminator_map"]
    box = float(np.abs(ds.X).max()) * 1.1
    assert maps["extent"] == pytest.approx([-box, box, -box, box])
    for key in ("dxz", "dxx"):
        values = np.asarray(maps[key])
        assert values.shape == (41, 41) and ((values >= 0) & (values <= 1)).all() and values.std() > 0


def test_report_takes_bench_json_files_and_drops_duplicate_runs(store, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["bench", "--models", "iforest", "--datasets", "arc", "--seeds", "2", "--budget", "smoke",
                 "--no-progress", "--out", str(other), "--json"]) == 0
    bench_json = tmp_path / "arc.json"
    bench_json.write_text(capsys.readouterr().out)
    # the same two runs from the store and from the JSON count once; the JSON alone gives its table
    assert main(["report", str(other), str(bench_json), "--out", str(tmp_path / "both")]) == 0
    markdown = (tmp_path / "both" / "report.md").read_text()
    assert "2 runs from" in markdown and "(2 duplicate records of the same runs left out)" in markdown
    assert main(["report", str(bench_json), "--out", str(tmp_path / "json")]) == 0
    assert "| arc |" in (tmp_path / "json" / "report.md").read_text()
    # older `--json` files also carry the conventions as requested: still the same runs
    old_format = json.loads(bench_json.read_text())
    for run in old_format["runs"]:
        run["conventions_requested"], run["variant"] = {}, None
    bench_json.write_text(json.dumps(old_format))
    assert load_runs([other, bench_json])[1] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["report", str(bad), "--out", str(tmp_path / "bad")]) != 0
    assert "is not the output of `advad bench --json`" in capsys.readouterr().err


def test_report_merges_several_results_folders(store, tmp_path):
    other = tmp_path / "other"
    run_bench(models=["iforest"], datasets=["arc"], seeds=1, budget="smoke", out=other, progress=False)
    assert main(["report", str(store), str(other), "--out", str(tmp_path / "merged")]) == 0
    markdown = (tmp_path / "merged" / "report.md").read_text()
    assert "9 runs from" in markdown and "| arc |" in markdown and "| loop |" in markdown
