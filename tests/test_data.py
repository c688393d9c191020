"""Tests of advad.data. Embedded/synthetic tests always run; tests marked `data` need the real files
under $ADVAD_DATA (e.g. ADVAD_DATA=../shared/datasets) and are skipped when it is unset."""

from __future__ import annotations

import ast
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import advad.data as D
from advad.data import (Dataset, DatasetChecksumError, DatasetNotFoundError, UnverifiedFileWarning,
                        dataset_status, fetch, get_spec, list_datasets, load_dataset)

SHARED = os.environ.get("ADVAD_DATA", "").strip()
needs_data = pytest.mark.skipif(not SHARED or not Path(SHARED).is_dir(),
                                reason="ADVAD_DATA is not set to the benchmark data folder")

SPEC_NAMES = ["kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "arrhythmia", "thyroid", "musk", "creditcard",
              "bank", "covertype", "mnist", "fashion-mnist", "cifar10", "svhn", "breast-cancer", "digits",
              "loop", "arc", "four-dot"]


@pytest.fixture
def shared() -> Path:
    if not SHARED or not Path(SHARED).is_dir():
        pytest.skip("ADVAD_DATA is not set")
    return Path(SHARED)


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    home = tmp_path / "empty"
    home.mkdir()
    monkeypatch.setenv("ADVAD_DATA", str(home))
    return home


# ---------------------------------------------------------------------------------- registry
def test_registry_names_and_metadata():
    assert list_datasets() == SPEC_NAMES
    assert set(list_datasets(embedded=True)) == {"breast-cancer", "digits", "loop", "arc", "four-dot"}
    assert set(list_datasets("image")) == {"mnist", "fashion-mnist", "cifar10", "svhn"}
    for name in SPEC_NAMES:
        spec = get_spec(name)
        assert spec.kind in ("tabular", "image")
        assert spec.shape and spec.anomaly
        for f in spec.files:
            assert f.url.startswith(("http://", "https://"))
            assert f.hash is None or f.hash.split(":")[0] in ("sha256", "md5")
            assert not Path(f.path).is_absolute()
        if not spec.embedded:
            assert spec.required and all(spec.file(r) for r in spec.required)
    assert get_spec("kdd99").anomaly_ratio == 0.2
    assert get_spec("arrhythmia").anomaly_ratio == 0.15
    assert get_spec("thyroid").anomaly_ratio == 0.025
    assert get_spec("musk").anomaly_ratio == 0.032


def test_manifest_hashes_match_registry():
    manifest = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "MANIFEST.tsv"
    if SHARED and (Path(SHARED) / "MANIFEST.tsv").is_file():
        manifest = Path(SHARED) / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip("MANIFEST.tsv not found")
    rows = {}
    for line in manifest.read_text().splitlines()[1:]:
        cols = line.split("\t")
        rows[cols[1]] = cols[3]
    seen = 0
    for name in SPEC_NAMES:
        for f in get_spec(name).files:
            if f.path in rows:
                assert f.hash == "sha256:" + rows[f.path], f.path
                seen += 1
    assert seen >= 15


def test_unknown_dataset_and_option():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*kdd99.*four-dot"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="known datasets"):
        get_spec("nope")
    with pytest.raises(TypeError, match="unknown option.*n_normal=1000"):
        load_dataset("loop", bogus=1)


def test_data_layer_imports_nothing_from_advad_or_torch():
    for path in Path(D.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            for m in mods:
                assert not m.startswith(("torch", "advad")), f"{path.name} imports {m}"


def test_data_home_reads_env_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("ADVAD_DATA", str(tmp_path))
    assert D.data_home() == tmp_path
    monkeypatch.delenv("ADVAD_DATA")
    assert D.data_home() == Path("~/.cache/advad").expanduser()


# ---------------------------------------------------------------------------------- embedded
@pytest.mark.parametrize("name", ["loop", "arc", "four-dot"])
def test_synthetic_sets(name):
    ds = load_dataset(name)
    assert isinstance(ds, Dataset) and ds.kind == "tabular"
    assert ds.X.shape == (1050, 2) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.n_anomalies == 50
    assert np.abs(ds.X).max() <= 3.0
    assert ds.numeric_columns == [0, 1] and ds.categorical_groups == []
    again = load_dataset(name)
    np.testing.assert_array_equal(ds.X, again.X)
    other = load_dataset(name, seed=1)
    assert not np.array_equal(ds.X, other.X)
    from advad.data._embedded import SYNTHETIC
    cfg = SYNTHETIC[name]
    d = cfg["dist"](ds.X.astype(float))
    assert (d[ds.y == 1] >= cfg["margin"] - 1e-5).all()          # anomalies off the structure
    assert np.median(d[ds.y == 0]) < cfg["noise"] * 2              # normals on it
    small = load_dataset(name, n_normal=100, n_anomalies=0)
    assert small.X.shape == (100, 2) and small.n_anomalies == 0


def test_breast_cancer_and_digits():
    bc = load_dataset("breast-cancer")
    assert bc.X.shape == (397, 30) and bc.n_anomalies == 40
    assert set(bc.classes[bc.y == 1]) == {"malignant"} and set(bc.classes[bc.y == 0]) == {"benign"}
    assert load_dataset("breast-cancer", n_anomalies=None).n_anomalies == 212
    dg = load_dataset("digits")
    assert dg.X.shape == (1797, 64) and dg.n_anomalies == 178 and (dg.classes[dg.y == 1] == 0).all()
    img = load_dataset("digits", as_images=True, anomaly_digit=7)
    assert img.kind == "image" and img.X.shape == (1797, 1, 8, 8) and img.X.dtype == np.uint8
    assert (img.classes[img.y == 1] == 7).all()
    with pytest.raises(ValueError, match="anomaly_digit"):
        load_dataset("digits", anomaly_digit=11)


def test_cached_arrays_cannot_be_corrupted():
    a = load_dataset("digits")
    with pytest.raises(ValueError):
        a.X[0, 0] = 99
    with pytest.raises(ValueError):
        a.y[0] = 1
    a.numeric_columns.append(1000)
    a.feature_names[0] = "oops"
    b = load_dataset("digits")
    assert 1000 not in b.numeric_columns and b.feature_names[0] == "pixel_0_0"
    with pytest.raises(Exception):
        b.name = "x"  # frozen


def test_dataset_subset_and_relabel():
    ds = load_dataset("digits")
    sub = ds.subset(ds.y == 0)
    assert sub.n_anomalies == 0 and sub.n_samples == 1797 - 178
    rl = ds.relabel(normal_classes=[3])
    assert rl.n_anomalies == 1797 - int((ds.classes == 3).sum())
    assert "Relabelled" in rl.notes
    with pytest.raises(ValueError, match="unknown classes"):
        ds.relabel(anomaly_classes=[42])


def test_status_of_embedded_and_missing(empty_home):
    st = dataset_status("loop")
    assert st["available"] and st["embedded"] and st["shape"] == [1050, 2] and st["n_anomalies"] == 50
    st = dataset_status("kdd99")
    assert not st["available"] and st["missing"] == ["kddcup99/kddcup.data_10_percent.gz"]
    assert st["shape"] == [494021, 121] and st["n_anomalies"] == 97278 and st["anomaly_ratio"] == 0.2
    assert st["fetch_command"] == "advad data fetch kdd99" and st["folder"] == str(empty_home)
    assert "differ" in dataset_status("covertype")["notes"].lower()


# ---------------------------------------------------------------------------------- files
def test_missing_file_error(empty_home):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("thyroid")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert "odds/thyroid.mat" in msg and str(empty_home) in msg and "advad data fetch thyroid" in msg
    assert "\n" not in msg
    for name in ("cifar10", "svhn", "creditcard"):
        with pytest.raises(DatasetNotFoundError, match=f"advad data fetch {name}"):
            load_dataset(name)


def _mirror_with(tmp_path, rel, data: bytes) -> Path:
    mirror = tmp_path / "mirror"
    (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
    (mirror / rel).write_bytes(data)
    return mirror


@needs_data
def test_fetch_from_mirror_and_reject_bad_checksum(shared, tmp_path):
    good = (shared / "odds" / "thyroid.mat").read_bytes()
    dest = tmp_path / "home"
    paths = fetch("thyroid", dest, mirror=_mirror_with(tmp_path, "odds/thyroid.mat", good))
    assert paths == [dest / "odds" / "thyroid.mat"] and paths[0].read_bytes() == good
    bad = bytearray(good)
    bad[1000] ^= 0xFF
    dest2 = tmp_path / "home2"
    mirror2 = tmp_path / "m2"
    (mirror2 / "odds").mkdir(parents=True)
    (mirror2 / "odds" / "thyroid.mat").write_bytes(bytes(bad))
    with pytest.raises(DatasetChecksumError, match="thyroid"):
        fetch("thyroid", dest2, mirror=mirror2)
    assert not (dest2 / "odds" / "thyroid.mat").exists()


def test_fetch_rejects_bad_checksum_offline(tmp_path, monkeypatch):
    """No real file needed: a file:// mirror serving wrong bytes must be rejected."""
    mirror = _mirror_with(tmp_path, "odds/musk.mat", b"not the musk file")
    with pytest.raises(DatasetChecksumError) as ei:
        fetch("musk", tmp_path / "home", mirror="file://" + str(mirror))
    assert "50bbf414" in str(ei.value)
    assert not (tmp_path / "home" / "odds" / "musk.mat").exists()
    assert fetch("digits", tmp_path / "home") == []


def test_fetch_without_known_hash_warns(tmp_path):
    mirror = _mirror_with(tmp_path, "adbench/Classical/13_fraud.npz", b"whatever")
    with pytest.warns(UnverifiedFileWarning, match="no published checksum"):
        paths = fetch("creditcard", tmp_path / "home", mirror=mirror)
    assert paths[0].read_bytes() == b"whatever"


# ---------------------------------------------------------------------------------- real files
@pytest.mark.data
@needs_data
def test_kdd99(shared):
    ds = load_dataset("kdd99")
    assert ds.X.shape == (494021, 121) and ds.X.dtype == np.float32 and ds.n_anomalies == 97278
    assert (ds.classes[ds.y == 1] == "normal.").all() and ds.anomaly_ratio == 0.2
    assert [len(g) for g in ds.categorical_groups] == [3, 66, 11, 2, 2, 1, 2]
    assert ds.numeric_columns == list(range(34))
    one_hot = ds.X[:, 34:]
    for g in ds.categorical_groups:
        assert (ds.X[:, g].sum(axis=1) == 1).all()
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    assert ds.feature_names[0] == "duration" and ds.feature_names[34] == "protocol_type-icmp"
    assert ds.split is None and ds.X.max() > 1000  # no scaling
    att = load_dataset("kdd99", anomaly="attack")
    assert att.n_anomalies == 396743 and att.anomaly_ratio == pytest.approx(396743 / 494021)
    rev = load_dataset("kdd99-rev")
    assert rev.X.shape == (106030, 121) and rev.n_anomalies == 8752
    assert not np.isin(rev.classes, ["smurf.", "neptune."]).any()
    inv = load_dataset("kdd99-inv")
    np.testing.assert_array_equal(inv.y, ds.y)
    mm = load_dataset("kdd99-rev", scale="minmax")
    assert mm.X[:, :34].min() >= 0 and mm.X[:, :34].max() <= 1
    assert rev.X.max() > 1  # the cached unscaled copy is untouched


@pytest.mark.data
@needs_data
def test_small_tabular(shared):
    th = load_dataset("thyroid")
    assert th.X.shape == (3772, 6) and th.n_anomalies == 93
    mu = load_dataset("musk")
    assert mu.X.shape == (3062, 166) and mu.n_anomalies == 97
    ar = load_dataset("arrhythmia")
    assert ar.X.shape == (452, 274) and ar.n_anomalies == 66 and ar.anomaly_ratio == 0.15
    uci = load_dataset("arrhythmia", variant="uci")
    assert uci.X.shape == (452, 279) and uci.n_anomalies == 66 and not np.isnan(uci.X).any()
    dropped = load_dataset("arrhythmia", variant="uci", missing="drop-columns")
    np.testing.assert_allclose(dropped.X, ar.X)  # the ODDS construction, reproduced
    np.testing.assert_array_equal(dropped.y, ar.y)
    bank = load_dataset("bank")
    assert bank.X.shape == (41188, 62) and bank.n_anomalies == 4640
    assert len(bank.categorical_groups) == 10 and len(bank.numeric_columns) == 9
    assert load_dataset("bank", drop_duration=False).X.shape == (41188, 63)
    table_one = load_dataset("bank", categorical_only=True)  # ARN's Table I: 10 categorical attributes only
    assert table_one.X.shape == (41188, 53) and table_one.numeric_columns == []
    assert len(table_one.categorical_groups) == 10 and (table_one.X.sum(axis=1) == 10).all()
    cov = load_dataset("covertype")
    assert cov.X.shape == (286048, 10) and cov.n_anomalies == 2747
    nsl = load_dataset("nsl-kdd")
    assert nsl.X.shape[0] == 47736 and nsl.n_anomalies == 24576
    assert (nsl.split == "train").sum() == 25192 and (nsl.split == "test").sum() == 22544
    assert nsl.X.shape[1] == 34 + sum(len(g) for g in nsl.categorical_groups)
    for name in ("kdd99", "thyroid", "musk", "arrhythmia", "bank", "covertype", "nsl-kdd"):
        st = dataset_status(name)
        ds = load_dataset(name)
        assert st["available"] and list(ds.shape) == st["shape"] and ds.n_anomalies == st["n_anomalies"], name


@pytest.mark.data
@needs_data
def test_images(shared):
    fm = load_dataset("fashion-mnist")
    assert fm.kind == "image" and fm.X.shape == (70000, 1, 28, 28) and fm.X.dtype == np.uint8
    assert (fm.split == "train").sum() == 60000 and (fm.split == "test").sum() == 10000
    assert np.bincount(fm.classes).tolist() == [7000] * 10 and fm.n_anomalies == 0
    oc = load_dataset("fashion-mnist", normal_class=0)
    assert oc.n_anomalies == 63000
    mn = load_dataset("mnist")
    assert mn.X.shape == (10000, 1, 28, 28) and set(mn.split) == {"test"}
    assert "ONLY the official 10,000-image test set" in mn.notes
    assert dataset_status("mnist")["shape"] == [10000, 1, 28, 28]
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", subset="all")
    loo = load_dataset("mnist", anomaly_class=4)
    assert (loo.classes[loo.y == 1] == 4).all()


@pytest.mark.data
@needs_data
def test_checksum_mismatch(shared, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "odds").mkdir(parents=True)
    data = bytearray((shared / "odds" / "thyroid.mat").read_bytes())
    data[500] ^= 0x01
    (home / "odds" / "thyroid.mat").write_bytes(bytes(data))
    monkeypatch.setenv("ADVAD_DATA", str(home))
    with pytest.raises(DatasetChecksumError) as ei:
        load_dataset("thyroid")
    msg = str(ei.value)
    assert str(home / "odds" / "thyroid.mat") in msg
    assert "49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33" in msg
    assert "advad data fetch thyroid" in msg and ei.value.actual.startswith("sha256:")
    st = dataset_status("thyroid", verify=True)
    assert not st["available"] and "checksum" in st["files"][0]["error"]


@pytest.mark.data
@needs_data
def test_copy_of_shared_folder_loads(shared, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(shared / "odds", home / "odds")
    monkeypatch.setenv("ADVAD_DATA", str(home))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_dataset("musk").n_anomalies == 97
