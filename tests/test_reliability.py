"""Reliability over every registered detector (issue 9): behaviour on an easy set, determinism, clone,
save/load, predict vs threshold, image input; fuzzed bad input; damaged and malicious model files;
divergence; fits killed with SIGKILL and resumed.

The model list comes from the registry at collection time, so a newly registered model is covered
without editing this file. `docs/reliability.md` tabulates what is tried here and the outcome.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

import advad
from advad import InputError
from advad.data import Dataset
from advad.models import get_model_class, list_models, make_detector
from advad.models._torch import TorchDetector
from advad.models.classical import SklearnDetector

MODELS = list_models()
MIN_AUROC = 0.75  # chance is 0.5; every model measured ≥ 0.78 on seeds 0–4 of `_easy_set`

# The one per-model deviation from the generic recipe in `tiny_params`. RCGAN's default tabular score
# 1 − D_xx(x, G(E(x))) saturates on points far outside the training range, to 0 or 1 depending on
# the seed (AUROC 0.00–1.00 over seeds 0–4 here); its feature-distance score (Eq. 12) is stable.
RANKING_OVERRIDES: dict[str, dict] = {"rcgan": {"score": "features"}}


def _easy_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """300 Gaussian training normals in 4-D; test: 100 normals + 30 anomalies centred at (8, 8, 8, 8)."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(400, 4)).astype(np.float32)
    anomalies = rng.normal(loc=8.0, size=(30, 4)).astype(np.float32)
    return normal[:300], np.vstack([normal[300:], anomalies]), np.r_[np.zeros(100), np.ones(30)]


def tiny_params(name: str, X: np.ndarray) -> dict:
    """The model's `smoke` budget, with batches of 32 and at least 10 epochs where it has those
    parameters (300 rows at the smoke batch sizes are 1–2 optimiser steps an epoch: too few to learn)."""
    cls = get_model_class(name)
    params = dict(cls.bench_params(Dataset(name="easy", X=X, y=np.zeros(len(X))), "smoke"))
    names = cls().get_params(deep=False)
    if "batch_size" in names:
        params["batch_size"] = 32
    if "epochs" in names:
        params["epochs"] = max(int(params.get("epochs") or 1), 10)
    if "device" in names:
        params["device"] = "cpu"
    return {**params, **RANKING_OVERRIDES.get(name, {})}


def make_tiny(name: str, like: np.ndarray, seed: int = 0, **extra):
    """`name` with `tiny_params` for data like `like`; `extra` parameters it does not have are ignored."""
    accepted = get_model_class(name)().get_params(deep=False)
    extra = {k: v for k, v in extra.items() if k in accepted}
    return make_detector(name, random_state=seed, **{**tiny_params(name, like), **extra})


def fit_tiny(name: str, X, seed: int = 0, y: np.ndarray | None = None, **extra):
    return make_tiny(name, np.asarray(X), seed, **extra).fit(X, y)


@pytest.fixture(scope="module")
def easy():
    return _easy_set()


@pytest.fixture(scope="module")
def fitted(easy):
    """One detector per registered model, fitted once on the easy set (seed 0)."""
    X, _, _ = easy
    return {name: fit_tiny(name, X) for name in MODELS}


# ============================================================================ 1. every model
@pytest.mark.parametrize("name", MODELS)
def test_scores_finite_varied_and_rank_anomalies_first(name, fitted, easy):
    _, X_test, y_test = easy
    det = fitted[name]
    s = det.decision_function(X_test)
    assert s.shape == (len(X_test),) and s.dtype == np.float64
    assert np.isfinite(s).all() and np.isfinite(det.decision_scores_).all()
    assert np.ptp(s) > 0 and np.ptp(det.decision_scores_) > 0
    auroc = roc_auc_score(y_test, s)
    assert auroc > MIN_AUROC, f"{name}: AUROC {auroc:.3f} on the easy set"


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(name, fitted, easy):
    X, X_test, _ = easy
    again = fit_tiny(name, X, seed=0)
    np.testing.assert_array_equal(again.decision_function(X_test), fitted[name].decision_function(X_test))
    np.testing.assert_array_equal(again.decision_scores_, fitted[name].decision_scores_)


@pytest.mark.parametrize("name", MODELS)
def test_clone_gives_same_parameters_unfitted(name, fitted):
    det = fitted[name]
    cloned = clone(det)
    assert type(cloned) is type(det) and cloned.get_params() == det.get_params()
    assert not hasattr(cloned, "threshold_")


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_scores(name, fitted, easy, tmp_path):
    _, X_test, _ = easy
    det = fitted[name]
    det.save(tmp_path / "m.advad")
    loaded = advad.load(tmp_path / "m.advad")
    assert type(loaded) is type(det) and loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.decision_function(X_test), det.decision_function(X_test))
    np.testing.assert_array_equal(loaded.decision_scores_, det.decision_scores_)
    assert loaded.threshold_ == det.threshold_
    np.testing.assert_array_equal(loaded.predict(X_test), det.predict(X_test))


@pytest.mark.parametrize("name", MODELS)
def test_predict_and_labels_follow_threshold(name, fitted, easy):
    _, X_test, _ = easy
    det = fitted[name]
    expected = (det.decision_function(X_test) > det.threshold_).astype(np.int64)
    np.testing.assert_array_equal(det.predict(X_test), expected)
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(np.int64))
    assert set(np.unique(det.predict(X_test))) <= {0, 1}
    # threshold_ is the (1 - contamination) quantile of the training scores
    assert abs(det.labels_.mean() - det.contamination) <= 0.02 + 1 / len(det.labels_)


@pytest.mark.parametrize("name", MODELS)
def test_one_row_scores_like_in_a_batch(name, fitted, easy):
    """A row's score does not depend on the rows scored with it (to 1 %: AnoGAN's batched latent
    search moves scores by ~0.3 %; a batch-norm layer left in training mode would move them far more)."""
    _, X_test, _ = easy
    det = fitted[name]
    batch = det.decision_function(X_test)
    np.testing.assert_allclose([det.decision_function(X_test[i:i + 1])[0] for i in (0, 129)], batch[[0, 129]],
                               rtol=1e-2, atol=1e-6)


TORCH_MODELS = [m for m in MODELS if issubclass(get_model_class(m), TorchDetector)]
BFLOAT16_MODELS = [m for m in TORCH_MODELS if get_model_class(m).param_rules["score_dtype"]("bfloat16") is None]


@pytest.mark.parametrize("name", BFLOAT16_MODELS)
def test_bfloat16_scoring_ranks_like_float32_and_leaves_the_model_intact(name, fitted, easy, tmp_path):
    _, X_test, y_test = easy
    det = copy.deepcopy(fitted[name])
    full = det.decision_function(X_test)
    det.set_params(score_dtype="bfloat16")
    low = det.decision_function(X_test)
    assert low.dtype == np.float64 and np.isfinite(low).all() and not np.array_equal(low, full)
    assert spearmanr(low, full).statistic > 0.99, name
    assert roc_auc_score(y_test, low) > MIN_AUROC
    np.testing.assert_array_equal(det.decision_function(X_test), low)  # the cached copies give the same
    det.save(tmp_path / "m.advad")
    np.testing.assert_array_equal(advad.load(tmp_path / "m.advad").decision_function(X_test), low)
    det.set_params(score_dtype="float32")  # the float32 networks were not touched
    np.testing.assert_array_equal(det.decision_function(X_test), full)


def _allows(name: str, param: str, value) -> bool:
    return get_model_class(name).param_rules[param](value) is None


REFUSALS = [(m, p, v) for p, v in (("score_dtype", "bfloat16"), ("score_compile", True))
            for m in TORCH_MODELS if not _allows(m, p, v)]


@pytest.mark.parametrize("name, param, value", REFUSALS)
def test_scorers_refuse_the_options_they_cannot_run(name, param, value, fitted, easy):
    """AnoGAN and DSEBM score with float32 gradients; DAGMM's mixture does not compile."""
    det = copy.deepcopy(fitted[name]).set_params(**{param: value})
    with pytest.raises(InputError, match=f"{param} must be one of"):
        det.decision_function(easy[1])
    with pytest.raises(InputError, match=param):
        det.fit(easy[0])


def test_each_model_compiles_into_its_own_cache(fitted, easy):
    """torch keeps at most `recompile_limit` compiled variants per code object and then runs eagerly
    without an error: two models compiled one after the other must not share that budget. With a limit of
    1 and `fail_on_recompile_limit_hit` a shared budget raises; each model must add a compiled graph."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    _, X_test, _ = easy
    with torch._dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        for name in ("deepsvdd", "ae"):
            det = copy.deepcopy(fitted[name]).set_params(score_dtype="bfloat16")
            eager = det.decision_function(X_test)
            graphs = counters["stats"]["unique_graphs"]
            compiled = det.set_params(score_compile=True).decision_function(X_test)
            assert counters["stats"]["unique_graphs"] > graphs, f"{name} was scored eagerly"
            np.testing.assert_allclose(compiled, eager, rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_mixed_precision_training_learns_and_is_reproducible(name, fitted, easy):
    """``train_dtype="bfloat16"``: the losses under torch.autocast; a different fit that still ranks the
    anomalies first, the same one for the same seed, and float32 weights."""
    X, X_test, y_test = easy
    det = fit_tiny(name, X, train_dtype="bfloat16")
    s = det.decision_function(X_test)
    assert np.isfinite(s).all() and np.ptp(s) > 0 and not np.array_equal(s, fitted[name].decision_function(X_test))
    assert roc_auc_score(y_test, s) > MIN_AUROC, name
    assert all(p.dtype == torch.float32 for net in det.inference_networks_.values() for p in net.parameters())
    np.testing.assert_array_equal(fit_tiny(name, X, train_dtype="bfloat16").decision_function(X_test), s)


def test_compiled_scoring_matches_eager_scoring(fitted, easy):
    """`score_compile=True` on ALAD (one model: compiling takes ~10 s): the same scores as eager scoring in
    each precision, short chunks padded, and the compiled function is never copied with the model."""
    _, X_test, _ = easy
    det = copy.deepcopy(fitted["alad"]).set_params(score_batch_size=48)  # 130 rows: chunks of 48, 48, 34
    for dtype, rtol in (("float32", 1e-5), ("bfloat16", 1e-2)):
        det.set_params(score_dtype=dtype, score_compile=False)
        eager = det.decision_function(X_test)
        det.set_params(score_compile=True)
        np.testing.assert_allclose(det.decision_function(X_test), eager, rtol=rtol, atol=1e-6)
        np.testing.assert_allclose(det.decision_function(X_test[:5]), eager[:5], rtol=rtol, atol=1e-6)
    assert "_compiled_score" in det.__dict__ and "_frozen_networks" in det.__dict__
    duplicate = copy.deepcopy(det)
    assert not {"_compiled_score", "_frozen_networks"} & set(duplicate.__dict__)
    np.testing.assert_array_equal(duplicate.decision_function(X_test), det.decision_function(X_test))


IMAGE_MODELS = [m for m in MODELS if get_model_class(m).accepts_images]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_images_fit_score_and_survive_save_load(name, tmp_path):
    """Models that take images: 16 grey 28×28 training images (n, H, W) stay images (input shape (1, 28, 28)),
    one epoch gives finite, varied scores for (n, H, W) and (n, 1, H, W) input alike, and save → load
    gives identical scores."""
    rng = np.random.default_rng(0)
    images = (rng.random((24, 28, 28)) * 255).astype(np.uint8)
    det = fit_tiny(name, images[:16], epochs=1, pretrain_epochs=1, batch_size=8)
    assert det.input_shape_ == (1, 28, 28)
    s = det.decision_function(images[16:])
    assert np.isfinite(s).all() and np.ptp(s) > 0 and np.ptp(det.decision_scores_) > 0
    np.testing.assert_array_equal(det.decision_function(images[16:, None]), s)
    det.save(tmp_path / "m.advad")
    loaded = advad.load(tmp_path / "m.advad")
    assert loaded.input_shape_ == (1, 28, 28)
    np.testing.assert_array_equal(loaded.decision_function(images[16:]), s)
    np.testing.assert_array_equal(loaded.decision_scores_, det.decision_scores_)


# Known finding (docs/reliability.md): on the easy set AMA with 6 labelled anomalies ranks *worse* than
# without them (AUROC 0.19 / 0.76 / 0.80 / 0.37 on seeds 0–3 vs 0.87–1.00 unlabelled, also at 30 epochs).
KNOWN_Y_FAILURES = {"ama": "labelled anomalies lower AMA's AUROC on the easy set (see docs/reliability.md)"}
# ARN at 10 epochs sits on the margin with labelled anomalies (seed 0: 0.751 or 0.776 depending on the
# machine); at 30 epochs its generator reaches them and seeds 0-2 give 0.97 / 0.89 / 1.00.
Y_BUDGET_OVERRIDES: dict[str, dict] = {"arn": {"epochs": 30}}


@pytest.mark.parametrize("name", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=KNOWN_Y_FAILURES[m])) if m in KNOWN_Y_FAILURES else m
    for m in MODELS if get_model_class(m).supports_y])
def test_known_anomalies_in_y_are_used(name, easy):
    X, X_test, y_test = easy
    rng = np.random.default_rng(1)
    known = rng.normal(loc=8.0, size=(6, 4)).astype(np.float32)
    aurocs = []
    for seed in (0, 1, 2):  # a property of the method, not of one lucky seed
        det = fit_tiny(name, np.vstack([X, known]), seed=seed, y=np.r_[np.zeros(len(X)), np.ones(6)],
                       **Y_BUDGET_OVERRIDES.get(name, {}))
        s = det.decision_function(X_test)
        assert np.isfinite(s).all()
        aurocs.append(roc_auc_score(y_test, s))
    assert min(aurocs) > MIN_AUROC, aurocs


# ============================================================================ 2. bad input, fuzzed
# Every case must give finite scores or one `InputError` from advad's validation: any other exception
# (from numpy, torch, scikit-learn) fails the test, and so does a numpy RuntimeWarning leaking out.
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
DTYPES = [np.int8, np.int64, np.uint8, np.bool_, np.float16, np.float32, np.float64, np.complex64, object, "U4",
          "datetime64[D]"]
SPECIAL = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, 3.4e38, 1e-30, 0.0]


@st.composite
def arrays(draw, n_features: int = 4, min_rows: int = 0) -> np.ndarray:
    """Arrays of any dtype in DTYPES; shape mostly (n, n_features), else any 0–5-D shape; values mostly
    ordinary, sometimes NaN, ±inf, huge or tiny magnitudes; sometimes a constant column."""
    shape = draw(st.one_of(
        st.tuples(st.integers(min_rows, 12), st.just(n_features)),
        st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple)))
    values = draw(st.lists(st.one_of(st.floats(-4, 4), st.sampled_from(SPECIAL)),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    X = np.asarray(values, dtype=np.float64).reshape(shape)
    if X.ndim == 2 and X.shape[1] and draw(st.booleans()):
        X[:, 0] = X[0, 0] if len(X) else 0.0
    dtype = draw(st.sampled_from(DTYPES))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return X.astype(dtype)


def scores_or_input_error(det, X) -> np.ndarray | None:
    """Score X; an `InputError` (with a message) returns None, anything else fails the caller."""
    try:
        s = det.decision_function(X)
    except InputError as err:
        assert len(str(err)) > 10
        return None
    assert s.shape == (len(X),) and np.isfinite(s).all(), f"non-finite scores for input {X!r}"
    return s


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", MODELS)
def test_fuzzed_arrays_at_score_time(name, fitted):
    det = fitted[name]

    @FUZZ
    @given(X=arrays())
    def check(X):
        scores_or_input_error(det, X)

    check()


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", ["iforest", "ae", "alad", "maesi"])  # one model per family
def test_fuzzed_arrays_at_fit_time(name):
    @settings(FUZZ, max_examples=20)
    @given(X=arrays(n_features=3))
    def check(X):
        try:
            det = make_tiny(name, np.zeros((12, 3)), epochs=1, n_estimators=10).fit(X)
        except InputError as err:
            assert len(str(err)) > 10
            return
        assert np.isfinite(det.decision_scores_).all() and len(det.decision_scores_) == len(X)
        scores_or_input_error(det, X)

    check()


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(size=n), "proto": rng.choice(["tcp", "udp", "icmp"], n),
                         "port": rng.integers(0, 5, n), "flag": rng.random(n) > 0.5,
                         "service": pd.Categorical(rng.choice(["http", "ftp"], n))})


@pytest.fixture(scope="module")
def frame_fitted():
    """A classical, an autoencoder and a mixed-type (ARN) detector fitted on the same DataFrame."""
    frame = _frame(200)
    return frame, {name: fit_tiny(name, frame, epochs=2) for name in ("iforest", "ae", "arn")}


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", ["iforest", "ae", "arn"])
def test_fuzzed_dataframes(name, frame_fitted):
    """Reordered columns score as the original; unseen categories, missing / extra / retyped columns,
    NaN and arrays instead of frames raise `InputError`."""
    frame, models = frame_fitted
    det = models[name]
    reference = det.decision_function(frame)

    @FUZZ
    @given(order=st.permutations(list(frame.columns)), rows=st.lists(st.integers(0, 199), min_size=1, max_size=8),
           fault=st.sampled_from(["none", "unseen", "drop", "extra", "text_in_numeric", "nan_numeric",
                                  "nan_category", "as_array", "huge"]))
    def check(order, rows, fault):
        X = frame.iloc[rows][order].copy()
        if fault == "unseen":
            X["proto"] = "gre"
        elif fault == "drop":
            X = X.drop(columns=[order[0]])
        elif fault == "extra":
            X["new"] = 1.0
        elif fault == "text_in_numeric":
            X["amount"] = "12.5 USD"
        elif fault == "nan_numeric":
            X.loc[X.index[0], "amount"] = np.nan
        elif fault == "nan_category":
            X["proto"] = X["proto"].astype(object)
            X.loc[X.index[0], "proto"] = None
        elif fault == "as_array":
            X = X.to_numpy()
        elif fault == "huge":
            X["amount"] = 1e30
        s = scores_or_input_error(det, X)
        if fault == "none":
            np.testing.assert_allclose(s, reference[rows], rtol=1e-4, atol=1e-6)
        elif fault != "huge":
            assert s is None, f"{fault}: expected an InputError"

    check()


# ============================================================================ 3. bad model files
def _rewrite(src, dst, meta=None, arrays=None, members=None) -> None:
    """Copy model file `src` to `dst`, editing the JSON dict (`meta`), the array dict (`arrays`) or the
    raw members (`members`: name -> bytes, added or replacing)."""
    import json
    import zipfile

    from safetensors.numpy import load as load_arrays
    from safetensors.numpy import save as save_arrays

    with zipfile.ZipFile(src) as archive:
        content = {n: archive.read(n) for n in archive.namelist()}
    if meta is not None:
        content["advad.json"] = json.dumps(meta(json.loads(content["advad.json"]))).encode()
    if arrays is not None:
        content["arrays.safetensors"] = save_arrays(arrays(load_arrays(content["arrays.safetensors"])))
    content.update(members or {})
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """Each fitted detector saved once: name -> path."""
    folder = tmp_path_factory.mktemp("saved")
    for name, det in fitted.items():
        det.save(folder / f"{name}.advad")
    return {name: folder / f"{name}.advad" for name in fitted}


def _load_fails_clearly(path, match: str | None = None) -> None:
    with pytest.raises(advad.ModelFileError, match=match):
        advad.load(path)


@pytest.mark.parametrize("name", MODELS)
def test_truncated_and_bit_flipped_files(name, saved, fitted, easy, tmp_path):
    """Every cut gives ModelFileError; every flipped bit gives ModelFileError or (a flip in a zip field
    nothing reads, e.g. a timestamp) the identical model — never another exception or other scores."""
    data = saved[name].read_bytes()
    bad = tmp_path / "bad.advad"
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        bad.write_bytes(data[:cut])
        _load_fails_clearly(bad)
    reference = fitted[name].decision_function(easy[1])
    for pos in np.linspace(0, len(data) - 1, 24).astype(int):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        try:
            loaded = advad.load(bad)
        except advad.ModelFileError:
            continue
        np.testing.assert_array_equal(loaded.decision_function(easy[1]), reference)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("fault, edit", [
    ("newer format", dict(meta=lambda m: {**m, "format_version": 99})),
    ("version as text", dict(meta=lambda m: {**m, "format_version": "1"})),
    ("no format tag", dict(meta=lambda m: {k: v for k, v in m.items() if k != "format"})),
    ("unknown model", dict(meta=lambda m: {**m, "model": "nope"})),
    ("no base section", dict(meta=lambda m: {k: v for k, v in m.items() if k != "base"})),
    ("threshold not a number", dict(meta=lambda m: {**m, "base": {**m["base"], "threshold": "high"}})),
    ("JSON not an object", dict(members={"advad.json": b"[1, 2, 3]"})),
    ("JSON cut", dict(members={"advad.json": b'{"format": "advad-model", "format_ver'})),
    ("an array missing", dict(arrays=lambda a: {k: v for i, (k, v) in enumerate(sorted(a.items())) if i != len(a) - 1})),
    ("arrays of wrong shape", dict(arrays=lambda a: {k: (np.zeros(3, v.dtype) if k.startswith("state.") else v)
                                                     for k, v in a.items()})),
])
def test_tampered_files(name, fault, edit, saved, tmp_path):
    bad = tmp_path / "bad.advad"
    _rewrite(saved[name], bad, **edit)
    _load_fails_clearly(bad)


class _Payload:
    """Unpickling this creates the file `marker` (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", MODELS)
def test_pickle_payloads_are_never_executed(name, saved, tmp_path):
    """A pickle planted in every place of a model file: loading fails and the payload never runs."""
    import pickle

    import torch

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    torch_file = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2), "x": _Payload(marker)}, torch_file)
    text = payload.decode("latin-1")
    edits = {
        "extra .pkl member": dict(members={"model.pkl": payload}),
        "JSON member is a pickle": dict(members={"advad.json": payload}),
        "arrays member is a pickle": dict(members={"arrays.safetensors": payload}),
        "arrays member is a torch.save file": dict(members={"arrays.safetensors": torch_file.read_bytes()}),
        "pickle as a JSON parameter": dict(meta=lambda m: {**m, "params": {**m["params"], "random_state": text},
                                                           "pickle": text}),
        "pickle bytes as an array": dict(arrays=lambda a: {**a, "state.skops": np.frombuffer(payload, np.uint8),
                                                           "state.pickle": np.frombuffer(payload, np.uint8)}),
    }
    for fault, edit in edits.items():
        bad = tmp_path / "bad.advad"
        _rewrite(saved[name], bad, **edit)
        try:
            loaded = advad.load(bad)
        except advad.ModelFileError:
            pass
        else:  # only acceptable if the planted bytes were inert data (never unpickled)
            assert fault in ("pickle as a JSON parameter", "pickle bytes as an array"), fault
            assert loaded.model_name == name
        assert not marker.exists(), f"{fault}: the payload ran"
    raw = tmp_path / "raw.advad"
    raw.write_bytes(payload)
    _load_fails_clearly(raw)
    assert not marker.exists()


@pytest.mark.parametrize("name", [m for m in MODELS if issubclass(get_model_class(m), SklearnDetector)])
def test_skops_part_with_untrusted_code_is_refused(name, saved, tmp_path):
    """The scikit-learn part (skops) referring to os.system is refused before anything is built."""
    import os

    import skops.io as sio

    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.advad"
    evil = np.frombuffer(sio.dumps({"f": os.system, "arg": f"touch {marker}"}), np.uint8)
    _rewrite(saved[name], bad, arrays=lambda a: {**a, "state.skops": evil})
    _load_fails_clearly(bad, "does not trust")
    assert not marker.exists()


# ============================================================================ 4. divergence
def _trainer(lr: float, nan_when, **kw):
    """A one-network trainer whose loss turns NaN when `nan_when(lr, epoch)` says so."""
    import torch
    from torch import nn

    from advad.engine import Trainer, UpdateStep

    torch.manual_seed(0)
    net = nn.Linear(4, 4)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    state = {"epoch": 1}

    def loss(x):
        value = (net(x) - x).pow(2).mean()
        return value * float("nan") if nan_when(opt.param_groups[0]["lr"], state["epoch"]) else value

    def next_epoch(trainer, epoch):
        state["epoch"] = epoch + 1

    trainer = Trainer({"ae": net}, [UpdateStep("ae", loss, opt, ["ae"])], epochs=4, batch_size=16,
                      generator=torch.Generator().manual_seed(0), on_epoch_end=next_epoch, **kw)
    return trainer, net


X_DIV = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)


def test_divergence_raises_naming_network_and_epoch_by_default():
    import torch

    from advad.engine import TrainingDiverged

    trainer, _ = _trainer(1.0, lambda lr, epoch: epoch == 3)
    with pytest.raises(TrainingDiverged, match=r"step 'ae' \(networks ae\) became nan in epoch 3 of 4"):
        trainer.fit(torch.from_numpy(X_DIV))


def test_rollback_restores_last_good_epoch_and_lowers_learning_rate():
    """Too high a learning rate (> 0.3 → NaN) at 1.0: two rollbacks (×0.5, ×0.25), then training runs on."""
    import torch

    good_weights = {}
    trainer, net = _trainer(1.0, lambda lr, epoch: lr > 0.3 and epoch >= 2, on_divergence="rollback")
    trainer.on_epoch_end = (lambda hook: lambda tr, ep: (hook(tr, ep), good_weights.setdefault(
        ep, net.weight.detach().clone())))(trainer.on_epoch_end)
    with pytest.warns(RuntimeWarning, match="Rolled back to the end of epoch 1"):
        trainer.fit(torch.from_numpy(X_DIV))
    assert trainer.rollbacks == [{"epoch": 2, "lr_factor": 0.5}, {"epoch": 2, "lr_factor": 0.25}]
    assert trainer.steps[0].optimizer.param_groups[0]["lr"] == 0.25
    assert trainer.epoch == 4 and len(trainer.history) == 4
    assert all(np.isfinite(v) for rec in trainer.history for v in rec.values())
    assert torch.isfinite(net.weight).all()


def test_rollback_gives_up_after_max_rollbacks():
    import torch

    from advad.engine import TrainingDiverged

    trainer, _ = _trainer(1e-3, lambda lr, epoch: epoch >= 2, on_divergence="rollback", max_rollbacks=3)
    with pytest.warns(RuntimeWarning), \
            pytest.raises(TrainingDiverged, match=r"epoch 2 of 4.*Still diverging after 3 rollback\(s\).*x0.125"):
        trainer.fit(torch.from_numpy(X_DIV))
    assert len(trainer.rollbacks) == 3


@pytest.mark.parametrize("name", [m for m in MODELS if hasattr(get_model_class(m), "_update_steps")])
def test_detectors_roll_back_on_request(name, easy, monkeypatch):
    """Every torch detector: a forced NaN loss in epoch 2 raises by default, and with
    fit(..., on_divergence="rollback") is rolled back once and the fit completes with finite scores."""
    from advad.engine import TrainingDiverged

    cls = get_model_class(name)
    original = cls._update_steps

    def poisoned(self, nets, generator, config):
        steps = original(self, nets, generator, config)
        first, calls = steps[0], {"n": 0}
        inner = first.loss

        def loss(x):
            out = inner(x)
            calls["n"] += 1
            value, extra = out if isinstance(out, tuple) else (out, {})
            if calls["n"] == 12:  # once, in the second epoch or later (≥ 9 steps an epoch here)
                value = value * float("nan")
            return (value, extra) if isinstance(out, tuple) else value

        first.loss = loss
        return steps

    monkeypatch.setattr(cls, "_update_steps", poisoned)
    X = easy[0]
    with pytest.raises(TrainingDiverged, match=r"networks .* epoch"):
        fit_tiny(name, X, epochs=3)
    with pytest.warns(RuntimeWarning, match="Rolled back"):
        det = make_tiny(name, X, epochs=3).fit(X, on_divergence="rollback")
    assert len(det.rollbacks_) == 1 and det.rollbacks_[0]["lr_factor"] == 0.5
    assert np.isfinite(det.decision_function(easy[1])).all()
    with pytest.raises(InputError, match="on_divergence"):
        make_tiny(name, X, epochs=1).fit(X, on_divergence="ignore")


# ============================================================================ 5. crashes
CRASH_EPOCHS = 3
# Every torch model is killed inside its second epoch; one is also killed while its second checkpoint
# is being written (temporary file complete, not yet renamed): the engine's write path is shared.
CRASH_CASES = [(m, "mid-epoch") for m in TORCH_MODELS] + [("alad", "checkpoint-write")]

CRASH_CHILD = """
import json, os, signal, sys, traceback
import numpy as np
import torch._dynamo  # imported by the first optimiser: once here rather than in every child (~3 s)
import advad.engine as engine
import advad.serialization as serialization
from advad.models import make_detector

X = np.load(sys.argv[1])
real_step, real_replace = engine.Trainer._run_step, os.replace

def kill_in_epoch_2(self, *args, **kwargs):  # the model's own trainer (not e.g. Deep SVDD's pretraining)
    if self.checkpoint is not None and self.epoch == 1:
        self.calls_in_epoch_2 = getattr(self, "calls_in_epoch_2", 0) + 1
        if self.calls_in_epoch_2 == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_step(self, *args, **kwargs)

def kill_before_second_rename(src, dst):
    if str(dst).endswith("checkpoint.safetensors") and os.path.exists(dst):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)

statuses = {}
for job in json.loads(sys.argv[2]):  # one forked child per job: torch is imported once
    pid = os.fork()
    if pid == 0:
        try:
            if job["when"] == "mid-epoch":
                engine.Trainer._run_step = kill_in_epoch_2
            else:
                serialization.os.replace = kill_before_second_rename
            make_detector(job["name"], **job["params"]).fit(X, checkpoint_dir=job["folder"])
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    statuses[job["name"] + "/" + job["when"]] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
print(json.dumps(statuses))
"""


@pytest.fixture(scope="module")
def crashed(easy, tmp_path_factory):
    """Every `CRASH_CASES` fit SIGKILLed in a child process. Returns the training rows and
    {case: (checkpoint folder, the signal that ended the child or None)}."""
    import json
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("crashes")
    X = easy[0][:128]  # batches of 32: 4 iterations an epoch
    np.save(folder / "X.npy", X)
    jobs = [{"name": name, "when": when, "folder": str(folder / f"{name}-{when}"),
             "params": {**tiny_params(name, X), "epochs": CRASH_EPOCHS, "random_state": 0}}
            for name, when in CRASH_CASES]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", CRASH_CHILD, str(folder / "X.npy"), json.dumps(jobs)],
                           env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr
    statuses = json.loads(child.stdout)
    return X, {(job["name"], job["when"]): (Path(job["folder"]), statuses[f"{job['name']}/{job['when']}"])
               for job in jobs}


@pytest.mark.parametrize("name, when", CRASH_CASES)
def test_sigkilled_fit_resumes_to_the_uninterrupted_result(name, when, crashed, easy, monkeypatch):
    """A fit SIGKILLed after its epoch-1 checkpoint resumes (`fit(X, resume=True)`) with epochs 2–3 only
    and ends bit-for-bit where an uninterrupted fit with the same seed ends."""
    from advad.engine import CHECKPOINT_FILE, Trainer, load_state

    X, cases = crashed
    folder, signal_number = cases[(name, when)]
    assert signal_number == 9, f"the child was not SIGKILLed (signal {signal_number})"
    state = load_state(folder / CHECKPOINT_FILE)
    assert state["epoch"] == 1 and not state["complete"]
    if when == "checkpoint-write":
        assert len(list(folder.glob(f".{CHECKPOINT_FILE}.*.tmp"))) == 1  # the epoch-2 file, never renamed
    trained_epochs = set()
    real_step = Trainer._run_step

    def counting_step(self, *args, **kwargs):
        if self.checkpoint is not None:
            trained_epochs.add(self.epoch + 1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_run_step", counting_step)
    resumed = make_tiny(name, X, epochs=CRASH_EPOCHS).fit(X, resume=True, checkpoint_dir=str(folder))
    assert trained_epochs == {2, 3}
    reference = make_tiny(name, X, epochs=CRASH_EPOCHS).fit(X)
    assert resumed.epochs_trained_ == CRASH_EPOCHS and resumed.history_ == reference.history_
    np.testing.assert_array_equal(resumed.decision_scores_, reference.decision_scores_)
    np.testing.assert_array_equal(resumed.decision_function(easy[1]), reference.decision_function(easy[1]))


# ============================================================================ 6. scale of input
# The measured figures (5 million rows, peak RSS) are in benchmarks/results/scoring_scale.json; these
# tests pin the properties behind them with allocation counts (tracemalloc sees numpy and Python memory).
def _traced_peak_mb(fn) -> float:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_scoring_a_memory_mapped_array_allocates_a_few_chunks(tmp_path):
    """250 000 × 121 float32 rows (116 MB) on disk: validation and scoring allocate < 16 MB (the 2 MB score
    vector and chunk-sized copies; not a float32 copy of X, nor a full-size finiteness mask)."""
    rng = np.random.default_rng(0)
    det = fit_tiny("ae", rng.normal(size=(256, 121)).astype(np.float32), epochs=1)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(250_000, 121))
    for start in range(0, len(X), 50_000):
        X[start:start + 50_000] = rng.normal(size=(50_000, 121))
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    out = {}
    peak = _traced_peak_mb(lambda: out.setdefault("s", det.decision_function(X)))
    assert peak < 16, f"{peak:.1f} MB allocated to score a {X.nbytes / 2**20:.0f} MB memory map"
    np.testing.assert_allclose(out["s"][-1000:], det.decision_function(np.array(X[-1000:])), rtol=1e-6)


def test_cli_score_streams_rows_with_flat_memory_and_writes_the_file_atomically(saved, fitted, tmp_path, capsys):
    """`advad score` in chunks of 5 000 rows: allocations for 200 000 rows within 2 MB of those for 20 000
    (the scores are written as they come, not collected); the same scores as `decision_function`, on
    stdout or in the file; a failing chunk leaves neither the file nor a temporary file behind."""
    from advad.cli import main

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200_000, 4)).round(4), columns=list("abcd"))
    frame.to_csv(tmp_path / "big.csv", index=False)
    frame[:20_000].to_csv(tmp_path / "small.csv", index=False)
    score = lambda data, out: main(["score", "--model-file", str(saved["ae"]), "--data", str(tmp_path / data),  # noqa: E731
                                    "--chunk-size", "5000", "--out", out])
    peaks = {data: _traced_peak_mb(lambda: score(data, str(tmp_path / f"{data}.scores"))) for data in ("small.csv", "big.csv")}
    assert peaks["big.csv"] < peaks["small.csv"] + 2, peaks
    written = pd.read_csv(tmp_path / "big.csv.scores")
    expected = fitted["ae"].decision_function(frame.to_numpy())
    np.testing.assert_allclose(written["score"], expected, rtol=1e-12)
    np.testing.assert_array_equal(written["anomaly"], (expected > fitted["ae"].threshold_).astype(int))
    capsys.readouterr()
    assert score("small.csv", "-") == 0
    assert capsys.readouterr().out == (tmp_path / "small.csv.scores").read_text()
    frame.astype(object).assign(a=lambda f: f["a"].where(f.index != 12_345, "oops")).to_csv(tmp_path / "bad.csv", index=False)
    assert score("bad.csv", str(tmp_path / "out" / "bad.scores")) == 1
    assert "non-numeric" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []
