"""advad.references: the papers' published numbers and the `--paper` presets."""

from __future__ import annotations

import ast
import csv
import importlib
import io
import math
from importlib import resources
from pathlib import Path

import pytest

from advad import references as refs
from advad.references import (COLUMNS, DATASETS, METRICS, MODELS, PAPER_PRESETS, PAPERS, PROTOCOLS, get_preset,
                              list_presets, load_references, parse_variant, preset_runs, reference_entry,
                              reference_value)

# SPEC §2 data set names, written out here so that a change on either side is noticed.
SPEC_DATASETS = {"kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "arrhythmia", "thyroid", "musk", "creditcard", "bank",
                 "covertype", "mnist", "fashion-mnist", "cifar10", "svhn", "breast-cancer", "digits", "loop", "arc",
                 "four-dot"}
SPEC_PROTOCOLS = {"topk", "one-class", "leave-one-out", "ood", "auc", "contamination", "weak-supervision"}

# Rows per (paper, table), counted by hand from the paper texts (cells printed '-' are not rows).
EXPECTED_COUNTS = {
    ("alad", "table2"): 42, ("alad", "table3"): 12, ("alad", "table5"): 24, ("alad", "table6"): 8,
    ("alad", "table7"): 24, ("alad", "table8"): 8,
    ("rcgan", "table1"): 93, ("rcgan", "table2"): 77, ("rcgan", "table3"): 11, ("rcgan", "table4"): 18,
    ("maesi", "table1"): 66, ("maesi", "table2"): 60, ("maesi", "table3"): 55, ("maesi", "table4"): 42,
    ("maesi", "table5"): 6,
    ("ama", "table1"): 64, ("ama", "table2"): 132,
    ("arn", "table2"): 106, ("arn", "table3"): 36, ("arn", "table4"): 16, ("arn", "table5"): 38,
}


@pytest.fixture(scope="module")
def df():
    return load_references()


def test_csv_parses_with_the_documented_columns():
    text = resources.files("advad.references").joinpath("papers.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == COLUMNS
    rows = list(reader)
    assert len(rows) == sum(EXPECTED_COUNTS.values())
    for row in rows:
        assert None not in row.values(), row  # no ragged lines


def test_rows_per_table(df):
    counts = df.groupby(["paper", "table"]).size().to_dict()
    assert counts == EXPECTED_COUNTS


def test_values_and_names_are_valid(df):
    assert df["value"].between(0, 1).all()
    stds = df["std"].dropna()
    assert ((stds >= 0) & (stds < 1)).all()
    assert set(df["paper"]) == set(PAPERS)
    assert set(df["metric"]) <= set(METRICS)
    assert set(df["protocol"]) <= set(PROTOCOLS) == SPEC_PROTOCOLS
    assert df["table"].str.fullmatch(r"table\d+").all()
    assert (df["printed"] != "").all()
    for task in set(df["task"]) - {"", "mean"}:
        key, _, value = task.partition("=")
        assert key in {"normal_class", "anomaly_class", "against", "p", "config"} and value, task
    # protocol keyword matches the protocol
    per_class = df[df["task"].str.contains("_class=")]
    assert set(per_class[per_class["protocol"] == "one-class"]["task"].str.split("=").str[0]) == {"normal_class"}
    assert set(per_class[per_class["protocol"] == "leave-one-out"]["task"].str.split("=").str[0]) == {"anomaly_class"}
    assert df[df["protocol"] == "ood"]["task"].str.startswith("against=").all()
    assert df[df["protocol"].isin(["contamination", "weak-supervision"])]["task"].str.startswith("p=").all()


def test_names_outside_advad_are_lower_case_paper_names(df):
    assert (df["dataset"] == df["dataset"].str.lower()).all()
    assert (df["model"] == df["model"].str.lower()).all()
    extra_datasets = set(df["dataset"]) - SPEC_DATASETS
    assert extra_datasets == {"doh", "doh-inv", "coil-100"}
    against = {task.split("=", 1)[1] for task in df[df["protocol"] == "ood"]["task"]}
    assert against - SPEC_DATASETS == {"omniglot", "imagenet", "cifar-100"}


def test_cells_are_unique(df):
    keys = ["paper", "table", "dataset", "task", "model", "variant", "metric"]
    assert not df.duplicated(keys).any(), df[df.duplicated(keys, keep=False)]


def test_variants_parse(df):
    for variant in set(df["variant"]):
        params = parse_variant(variant)
        assert (variant == "") == (params == {})
    assert parse_variant("spectral_norm=false;use_dzz=false") == {"spectral_norm": False, "use_dzz": False}
    assert parse_variant("variant=numeric;kl_weight=0") == {"variant": "numeric", "kl_weight": 0}
    assert parse_variant("") == {}
    assert parse_variant("penalty=null;atypical=none;m=2;lambda_inter=0.5") == {
        "penalty": None, "atypical": "none", "m": 2, "lambda_inter": 0.5}
    with pytest.raises(ValueError):
        parse_variant("spectral_norm")


def test_per_class_means_match_their_classes(df):
    """The printed 'mean' cells agree with the average of the printed per-class cells (to rounding),
    except the ones the notes flag."""
    flagged = {("ama", "table2", "cifar10", "fencegan")}  # 0.567 printed, classes average 0.534
    per = df[df["task"].str.contains("_class=")]
    for key, group in per.groupby(["paper", "table", "dataset", "model", "variant", "metric"]):
        mean = df[(df["task"] == "mean") & (df["paper"] == key[0]) & (df["table"] == key[1])
                  & (df["dataset"] == key[2]) & (df["model"] == key[3]) & (df["variant"] == key[4])
                  & (df["metric"] == key[5])]
        if mean.empty:
            continue
        assert len(group) == 10, key
        gap = abs(group["value"].mean() - mean["value"].iloc[0])
        if key[:4] in flagged:
            assert gap > 0.02 and "doubtful" in mean["note"].iloc[0]
        else:
            assert gap <= 0.0075, (key, group["value"].mean(), mean["value"].iloc[0])


# ---------------------------------------------------------------- cells checked by hand against the papers
@pytest.mark.parametrize("args, kwargs, value, std", [
    # ALAD Table II: ALAD on KDD99, F1 0.9501; Table V full model 0.950 ± 0.002; Table VII features ± 0.0018
    (("alad", "table2", "kdd99", "alad", "f1"), {}, 0.9501, None),
    (("alad", "table5", "kdd99", "alad", "f1"), {}, 0.950, 0.002),
    (("alad", "table5", "arrhythmia", "alad", "precision"), {"variant": "spectral_norm=false;use_dzz=false"}, 0.477, 0.039),
    (("alad", "table7", "kdd99", "alad", "f1"), {}, 0.9501, 0.0018),
    (("alad", "table7", "arrhythmia", "alad", "recall"), {"variant": {"score": "logits"}}, 0.3938, 0.0886),
    (("alad", "III", "cifar10", "alad", "auroc"), {"task": "mean"}, 0.6072, 0.1201),
    (("alad", 8, "svhn", "alad", "auroc"), {"task": "mean", "variant": "score=l2"}, 0.5826, 0.0201),
    # RCGAN Table 1 in percent: RCGAN Thyroid F1 76.26 ± 2.8, DSVDD KDDCUP recall 94.97
    (("rcgan", "table1", "thyroid", "rcgan", "f1"), {}, 0.7626, 0.028),
    (("rcgan", "table1", "kdd99", "deepsvdd", "recall"), {}, 0.9497, None),
    (("rcgan", "table1", "musk", "anogan", "precision"), {}, 0.0306, None),
    (("rcgan", "table2", "cifar10", "rcgan", "auroc"), {"task": "normal_class=0"}, 0.718, 0.015),
    (("rcgan", "table2", "cifar10", "rcgan", "auroc"), {"task": "mean"}, 0.651, None),
    (("rcgan", "table3", "thyroid", "rcgan", "f1"), {"variant": "penalty=null"}, 0.6494, None),
    (("rcgan", "table4", "kdd99", "rcgan", "f1"), {"variant": "penalty=uniform"}, 0.9460, None),
    # MAESI: Table 1 bird is CIFAR-10 class 2; Table 2 '04601'; Table 3 digit 9
    (("maesi", "table1", "cifar10", "maesi", "auroc"), {"task": "anomaly_class=2"}, 0.910, None),
    (("maesi", "table1", "cifar10", "maesi", "auroc"), {"task": "anomaly_class=2", "variant": "m=2"}, 0.89, None),
    (("maesi", "table2", "arrhythmia", "dsebm-e", "f1"), {}, 0.4601, None),
    (("maesi", "table2", "thyroid", "maesi", "f1"), {}, 0.6947, None),
    (("maesi", "table3", "mnist", "maesi", "auroc"), {"task": "anomaly_class=9"}, 0.899, None),
    (("maesi", "table5", "fashion-mnist", "maesi", "auroc"), {"task": "mean"}, 0.994, None),
    # AMA: the prose quotes 0.442 (w/o new anomaly scoring, CIFAR-10 vs SVHN); FashionMNIST vs MNIST 0.987
    (("ama", "table1", "cifar10", "ama", "auroc"), {"task": "against=svhn", "variant": "score=r"}, 0.442, None),
    (("ama", "table1", "fashion-mnist", "ama", "auroc"), {"task": {"against": "mnist"}}, 0.987, None),
    (("ama", "table2", "mnist", "deepsvdd", "auroc"), {"task": "normal_class=1"}, 0.995, None),
    (("ama", "table2", "cifar10", "ama", "auroc"), {"task": "mean"}, 0.669, None),
    # ARN: ARN^N on KDDCUP99_Rev AUC .99 ± .00; Bank ARN^N AUC .76 ± .04; contamination and weak supervision
    (("arn", "table2", "kdd99-rev", "arn", "auroc"), {"variant": "variant=numeric"}, 0.99, 0.0),
    (("arn", "table2", "bank", "arn", "auroc"), {"variant": "variant=numeric"}, 0.76, 0.04),
    (("arn", "table2", "creditcard", "ae", "auprc"), {}, 0.76, 0.01),
    (("arn", "table3", "kdd99", "arn", "auroc"), {"task": "p=0.5"}, 0.65, 0.12),
    (("arn", "table3", "kdd99-inv", "ganomaly", "auroc"), {"task": "p=0.05"}, 0.76, 0.20),
    (("arn", "table4", "bank", "arn", "auroc"), {"task": {"p": 0.03}, "variant": "variant=numeric"}, 0.89, 0.03),
    (("arn", "table2", "kdd99-rev", "arn", "auroc"), {}, 0.97, 0.01),  # ARN^G = the arn default
    (("arn", "table5", "doh", "arn", "auroc"), {"variant": "kl_weight=0"}, 0.73, 0.01),
    (("arn", "table5", "kdd99", "arn", "auroc"), {"variant": {"objective": "elbo"}}, 0.74, 0.09),
])
def test_spot_checks(args, kwargs, value, std):
    assert reference_value(*args, **kwargs) == pytest.approx(value, abs=1e-9)
    entry = reference_entry(*args, **kwargs)
    if std is None:
        assert entry["std"] is None
    else:
        assert entry["std"] == pytest.approx(std, abs=1e-9)


def test_missing_cells_are_none():
    assert reference_value("arn", "table2", "creditcard", "arn", "auroc") is None  # ARN^G printed '-'
    assert reference_value("rcgan", "table1", "musk", "ocsvm", "f1") is None  # '-'
    assert reference_value("rcgan", "table3", "arrhythmia", "rcgan", "f1", variant="penalty=null") is None  # lost
    assert reference_value("ama", "table1", "cifar10", "waic-wgan", "auroc", task="against=cifar-100") is None
    assert reference_value("alad", "table2", "kdd99", "alad", "auroc") is None  # ALAD reports no AUROC
    assert reference_value("alad", "table5", "kdd99", "alad", "f1", variant="no_such=1") is None


def test_task_and_variant_spellings_are_equivalent():
    a = reference_value("arn", "table3", "kdd99", "arn", "auroc", task="p=0.10")
    b = reference_value("arn", "table3", "kdd99", "arn", "auroc", task={"p": 0.1}, variant={})
    assert a == b == pytest.approx(0.83)
    assert reference_value("arn", "table3", "kdd99", "arn", "auroc", task={"p": 0.0}) == 0.98
    assert (reference_value("alad", "table5", "kdd99", "alad", "f1", variant="use_dzz=false;spectral_norm=false")
            == reference_value("alad", "V", "kdd99", "alad", "f1", variant={"spectral_norm": False, "use_dzz": False})
            == pytest.approx(0.955))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown paper"):
        reference_value("nope", "table1", "kdd99", "alad", "f1")
    with pytest.raises(ValueError, match="table"):
        reference_value("alad", "tableQ", "kdd99", "alad", "f1")
    assert len(load_references("alad", "II")) == 42


def test_doubtful_cells_are_noted(df):
    def note(**kw):
        mask = True
        for k, v in kw.items():
            mask = mask & (df[k] == v)
        (row,) = df[mask].itertuples()
        return row.note
    assert "impossible" in note(paper="alad", table="table2", dataset="kdd99", model="anogan", metric="f1")
    assert "0.8521" in note(paper="rcgan", table="table1", dataset="kdd99", model="dsebm-r", metric="precision")
    assert "04601" in note(paper="maesi", table="table2", dataset="arrhythmia", model="dsebm-e", metric="f1")
    assert "doubtful" in note(paper="rcgan", table="table2", dataset="cifar10", model="dagmm", task="normal_class=1")


def test_arn_unlabelled_metrics_are_auroc(df):
    """ARN Tables III-V name no metric; their p = 0 / ARN^G / ARN^N cells equal Table II's AUC column."""
    arn = df[df["paper"] == "arn"]
    auc = {(r.dataset, r.model, r.variant): (r.value, r.std)
           for r in arn[(arn["table"] == "table2") & (arn["metric"] == "auroc")].itertuples()}
    checked = 0
    for r in arn[arn["table"].isin(["table3", "table4", "table5"])].itertuples():
        if r.task in ("", "p=0") and (r.dataset, r.model, r.variant) in auc:
            assert (r.value, r.std) == auc[(r.dataset, r.model, r.variant)], r
            checked += 1
    assert checked == 9 + 4 + 15


# ------------------------------------------------------------------------------------------- presets
def test_presets_use_known_names():
    assert list_presets()[0] == "alad:table2" and len(list_presets()) == len(PAPER_PRESETS) == 20
    keys = {"models", "datasets", "protocol", "seeds", "protocol_params", "tasks", "params", "variants"}
    for name in list_presets():
        preset = PAPER_PRESETS[name]
        assert set(preset) == keys, name
        assert preset["protocol"] in SPEC_PROTOCOLS, name
        assert set(preset["datasets"]) <= SPEC_DATASETS, name
        assert set(preset["models"]) <= set(MODELS), name
        assert isinstance(preset["seeds"], int) and 1 <= preset["seeds"] <= 5
        assert set(preset["variants"]) <= set(preset["models"]), name
        for task in preset["tasks"] or []:
            assert set(task.get("datasets", [])) <= set(preset["datasets"]), name
            for key, value in task.items():
                if key == "against":
                    assert value in SPEC_DATASETS
    assert set(DATASETS) == SPEC_DATASETS


def test_presets_cover_their_tables(df):
    """Each preset runs every cell of its table that advad can run, and nothing the table lacks."""
    for name in list_presets():
        paper, table = name.split(":")
        preset = PAPER_PRESETS[name]
        rows = df[(df["paper"] == paper) & (df["table"] == table)]
        against = rows["task"].str.extract(r"^against=(.*)$")[0]
        runnable = rows[rows["model"].isin(MODELS) & rows["dataset"].isin(SPEC_DATASETS)
                        & (against.isna() | against.isin(SPEC_DATASETS))]
        assert set(runnable["model"]) == set(preset["models"]), name
        assert set(runnable["dataset"]) == set(preset["datasets"]), name
        assert set(runnable["protocol"]) == {preset["protocol"]}, name
        for model in preset["models"]:
            assert set(runnable[runnable["model"] == model]["variant"]) == set(preset["variants"].get(model, [""])), \
                (name, model)
        runs = preset_runs(name)
        assert runs and len({(r["model"], r["variant"], r["dataset"], r["task"]) for r in runs}) == len(runs)
        expected = set()
        for cell in runnable.itertuples():
            if cell.task != "mean":
                expected.add((cell.model, cell.variant, cell.dataset, cell.task))
            elif not runnable[(runnable["model"] == cell.model) & (runnable["variant"] == cell.variant)
                              & (runnable["dataset"] == cell.dataset) & (runnable["task"] != "mean")].shape[0]:
                keyword = {"one-class": "normal_class", "leave-one-out": "anomaly_class"}[preset["protocol"]]
                expected |= {(cell.model, cell.variant, cell.dataset, f"{keyword}={c}") for c in range(10)}
        assert {(r["model"], r["variant"], r["dataset"], r["task"]) for r in runs} == expected, name
        if preset["tasks"] is not None:  # every listed task is used, and every run's task is listed
            listed = {(d, refs._canonical(refs._task_text({k: v for k, v in t.items() if k != "datasets"})))
                      for t in preset["tasks"] for d in t.get("datasets", preset["datasets"])}
            used = {(r["dataset"], refs._canonical(r["task"])) for r in runs}
            assert used <= listed, name
            assert {t for _, t in listed} == {t for _, t in used}, name


def test_preset_runs_and_lookup():
    runs = preset_runs("alad:table5")
    assert {r["variant"] for r in runs} == {"", "spectral_norm=false", "use_dzz=false", "spectral_norm=false;use_dzz=false"}
    baseline = next(r for r in runs if r["variant"] == "spectral_norm=false;use_dzz=false")
    assert baseline["params"] == {"spectral_norm": False, "use_dzz": False, "score": "fm"} and baseline["protocol"] == "topk"
    # the full model's cell is the full model on every data set, whatever the benchmark default there
    full = next(r for r in runs if r["variant"] == "" and r["dataset"] == "arrhythmia")
    assert full["params"] == {"spectral_norm": True, "use_dzz": True, "score": "fm"}
    ama = preset_runs("ama:table1")
    assert {(r["dataset"], r["protocol_params"]["against"]) for r in ama} == {
        ("fashion-mnist", "mnist"), ("cifar10", "svhn"), ("svhn", "cifar10")}
    one_class = preset_runs("rcgan:table2")
    assert {r["protocol_params"]["normal_class"] for r in one_class} == set(range(10))
    assert get_preset("alad:2") == get_preset("alad:II") == get_preset("alad:table2")
    assert get_preset("alad:table2") is not PAPER_PRESETS["alad:table2"]
    with pytest.raises(ValueError, match="presets"):
        get_preset("maesi:table4")  # Coil-100: no advad data set
    with pytest.raises(ValueError):
        get_preset("alad")


def test_variant_parameters_exist_on_registered_models():
    """For the models already in the registry, every variant's parameters are real keyword arguments."""
    models = pytest.importorskip("advad.models")
    for module in ("rcgan", "maesi", "ama", "arn"):  # modules that register on import, if present
        try:
            importlib.import_module(f"advad.models.{module}")
        except Exception:  # not written yet, or its extras missing: that model is not checked
            pass
    for name in list_presets():
        for model, variants in PAPER_PRESETS[name]["variants"].items():
            if model not in models.list_models():
                continue
            valid = models.get_model_class(model)().get_params(deep=False)
            for variant in variants:
                params = parse_variant(variant)
                assert set(params) <= set(valid), (name, model, variant)
                detector = models.make_detector(model, **params)
                if hasattr(detector, "_check_params"):
                    detector._check_params()  # the values are accepted too


def test_module_is_bottom_layer():
    """advad.references imports nothing from the rest of advad (it sits below advad.data)."""
    source = Path(refs.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("advad"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("advad") for a in node.names)


def test_std_is_nan_not_zero_when_not_printed(df):
    row = df[(df["paper"] == "alad") & (df["table"] == "table2") & (df["model"] == "alad")
             & (df["dataset"] == "kdd99") & (df["metric"] == "f1")].iloc[0]
    assert math.isnan(row["std"])
    assert row["task"] == "" and row["variant"] == ""
