"""The estimator contract (SPEC §3) on the classical baselines: validation errors, save/load, sklearn."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import advad
from advad import IForest, InputError, ModelFileError, OCSVM
from advad.models import make_detector


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(400, 5)).astype(np.float32)
    anomalies = rng.normal(loc=6.0, size=(20, 5)).astype(np.float32)
    return normal, anomalies


@pytest.mark.parametrize("name", ["iforest", "ocsvm"])
def test_baseline_ranks_anomalies_above_normals(name, blobs):
    normal, anomalies = blobs
    detector = make_detector(name, random_state=0).fit(normal)
    assert detector.decision_function(normal).max() < detector.decision_function(anomalies).min()
    assert detector.decision_scores_.shape == (400,)
    assert np.ptp(detector.decision_scores_) > 0
    # threshold_ from contamination: about 10 % of training rows flagged
    assert 0.05 < detector.labels_.mean() <= 0.11
    np.testing.assert_array_equal(detector.predict(anomalies), np.ones(20))


@pytest.mark.parametrize("name", ["iforest", "ocsvm"])
def test_same_seed_same_scores_and_save_load_round_trip(name, blobs, tmp_path):
    normal, anomalies = blobs
    a = make_detector(name, random_state=3).fit(normal)
    b = make_detector(name, random_state=3).fit(normal)
    np.testing.assert_array_equal(a.decision_function(anomalies), b.decision_function(anomalies))
    path = tmp_path / "model.advad"
    a.save(path)
    loaded = advad.load(path)
    assert type(loaded) is type(a) and loaded.get_params() == a.get_params()
    np.testing.assert_array_equal(loaded.decision_function(anomalies), a.decision_function(anomalies))
    np.testing.assert_array_equal(loaded.decision_scores_, a.decision_scores_)
    assert loaded.threshold_ == a.threshold_


def test_sklearn_clone_and_pipeline(blobs):
    normal, anomalies = blobs
    detector = IForest(n_estimators=50, random_state=0)
    copy = clone(detector)
    assert copy.get_params() == detector.get_params() and copy is not detector
    pipe = make_pipeline(StandardScaler(), IForest(random_state=0)).fit(normal)
    assert pipe.decision_function(anomalies).mean() > pipe.decision_function(normal).mean()
    assert set(np.unique(pipe.predict(anomalies))) <= {0, 1}


def test_fit_returns_self_and_init_only_stores(blobs):
    detector = OCSVM(nu=0.2)
    assert not hasattr(detector, "threshold_")
    assert detector.fit(blobs[0]) is detector


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "infinite"),
    (np.array([[1e300, 1.0], [0.0, 1.0]]), "too large for float32"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros(5), "2-D"),
    (np.zeros((2, 0)), "no features"),
    (np.zeros((2, 1, 1, 1, 1)), "at most 4"),
    (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
    (None, "X is None"),
    (pd.Series([1.0, 2.0]), "Series"),
    (np.zeros((1, 3)), "at least 2 rows"),
])
def test_bad_input_at_fit_gives_clear_error(bad, message):
    with pytest.raises(InputError, match=message):
        IForest().fit(bad)


def test_feature_count_changed_since_fit(blobs):
    detector = IForest(random_state=0).fit(blobs[0])
    with pytest.raises(InputError, match="X has 4 features, but this IForest was fitted with 5 features: pass the "
                                         "columns it was fitted on"):
        detector.decision_function(np.zeros((3, 4)))
    with pytest.raises(InputError, match="NaN"):
        detector.decision_function(np.full((2, 5), np.nan))


def test_not_fitted_and_bad_contamination(blobs):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="call fit"):
        IForest().decision_function(blobs[0])
    with pytest.raises(InputError, match="contamination"):
        IForest(contamination=0.9).fit(blobs[0])


def test_torch_tensor_input_is_accepted(blobs):
    torch = pytest.importorskip("torch")
    detector = IForest(random_state=0).fit(torch.from_numpy(blobs[0]))
    np.testing.assert_allclose(detector.decision_function(torch.from_numpy(blobs[1])),
                               detector.decision_function(blobs[1]))


def test_dataframe_categories_unseen_and_reordered_columns(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"amount": rng.normal(size=200), "proto": rng.choice(["tcp", "udp"], 200),
                          "port": rng.integers(0, 5, 200)})
    detector = IForest(random_state=0).fit(frame)
    assert detector.n_features_in_ == 4  # amount, proto one-hot (2), port
    assert detector.encoder_.categorical_groups == [[1, 2]]
    reordered = frame[["port", "amount", "proto"]]
    np.testing.assert_array_equal(detector.decision_function(reordered), detector.decision_function(frame))
    with pytest.raises(InputError, match="categories not seen at fit: \\['icmp'\\]"):
        detector.decision_function(frame.assign(proto=["icmp"] * 200))
    with pytest.raises(InputError, match="missing \\['port'\\]"):
        detector.decision_function(frame.drop(columns=["port"]))
    with pytest.raises(InputError, match="fitted on a DataFrame"):
        detector.decision_function(np.zeros((2, 4)))
    path = tmp_path / "frame.advad"
    detector.save(path)
    np.testing.assert_array_equal(advad.load(path).decision_function(reordered), detector.decision_function(frame))


def test_model_file_errors(blobs, tmp_path):
    detector = IForest(n_estimators=10, random_state=0).fit(blobs[0])
    good = tmp_path / "good.advad"
    detector.save(good)
    truncated = tmp_path / "truncated.advad"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or not a zip"):
        advad.load(truncated)
    with pytest.raises(ModelFileError, match="not found"):
        advad.load(tmp_path / "absent.advad")
    newer = tmp_path / "newer.advad"
    _rewrite(good, newer, lambda meta: meta.replace(b'"format_version": 1', b'"format_version": 99'))
    with pytest.raises(ModelFileError, match="Upgrade advad"):
        advad.load(newer)
    unknown = tmp_path / "unknown.advad"
    _rewrite(good, unknown, lambda meta: meta.replace(b'"model": "iforest"', b'"model": "nope"'))
    with pytest.raises(ModelFileError, match="does not know"):
        advad.load(unknown)


def _rewrite(source, target, edit_meta):
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, edit_meta(data) if name == "advad.json" else data)


def test_pickle_payload_in_model_file_is_never_executed(blobs, tmp_path):
    """A model file carrying a pickle (extra member, or in place of the weights) is refused unexecuted."""
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Payload())
    good = tmp_path / "good.advad"
    IForest(n_estimators=5, random_state=0).fit(blobs[0]).save(good)
    extra = tmp_path / "extra.advad"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(extra, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("model.pkl", payload)
    with pytest.raises(ModelFileError, match="expected exactly"):
        advad.load(extra)
    swapped = tmp_path / "swapped.advad"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(swapped, "w") as dst:
        dst.writestr("advad.json", src.read("advad.json"))
        dst.writestr("arrays.safetensors", payload)
    with pytest.raises(ModelFileError, match="damaged"):
        advad.load(swapped)
    raw = tmp_path / "raw.advad"
    raw.write_bytes(payload)
    with pytest.raises(ModelFileError):
        advad.load(raw)
    assert not marker.exists()


def test_save_is_atomic_and_keeps_previous_file_on_failure(blobs, tmp_path, monkeypatch):
    path = tmp_path / "model.advad"
    detector = IForest(n_estimators=5, random_state=0).fit(blobs[0])
    detector.save(path)
    before = path.read_bytes()
    import advad.serialization as serialization

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        detector.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.advad"]  # no temporary file left behind


def test_unknown_model_and_parameter_names():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        make_detector("nope")
    with pytest.raises(ValueError, match="no parameter\\(s\\) \\['depth'\\]"):
        make_detector("iforest", depth=3)


def test_pyod_adapter_reports_missing_pyod_clearly(blobs):
    try:
        import pyod  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install 'advad\\[pyod\\]'"):
            make_detector("pyod:IForest").fit(blobs[0])
    else:
        detector = make_detector("pyod:IForest", random_state=0).fit(blobs[0])
        assert detector.decision_function(blobs[1]).mean() > detector.decision_function(blobs[0]).mean()
        with pytest.raises(ModelFileError, match="pickle"):
            detector.save("unused.advad")


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    from advad.serialization import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "report.md", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644
