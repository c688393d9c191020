"""Parsers: raw files -> the fields of a :class:`~advad.data.Dataset`.

Each parser takes a file context ``ctx`` (``ctx.path(role)`` returns the verified path of a raw file,
``ctx.exists(role)`` tells whether it is present) and the load options, and returns a dict of
Dataset fields. No torch here: the data layer is the bottom layer.
"""

from __future__ import annotations

import functools
import gzip
import io
import pickle
import tarfile
import zipfile

import numpy as np

# --------------------------------------------------------------------------------------------
# KDD Cup 99 / NSL-KDD
# --------------------------------------------------------------------------------------------
KDD_COLUMNS = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
]
# one-hot encoded, in this order, exactly as the ALAD reference code (data/kdd.py) does
KDD_CATEGORICAL = ["protocol_type", "service", "flag", "land", "logged_in", "is_host_login",
                   "is_guest_login"]
KDD_NUMERIC = [c for c in KDD_COLUMNS if c not in KDD_CATEGORICAL]  # 34 columns


def _read_kdd(path, extra_cols: list[str]):
    import pandas as pd

    names = KDD_COLUMNS + extra_cols
    dtypes = {c: ("float64" if c in KDD_NUMERIC else "str") for c in KDD_COLUMNS}
    for c in KDD_CATEGORICAL[3:]:
        dtypes[c] = "int64"
    dtypes["label"] = "str"
    if "difficulty" in extra_cols:
        dtypes["difficulty"] = "int64"
    return pd.read_csv(path, header=None, names=names, dtype=dtypes, engine="c")


def _one_hot_frames(frames, numeric: list[str], categorical: list[str]):
    """Numeric columns (in order) then one dummy column per sorted category of each categorical
    column (categories = union over ``frames``). Returns X float32 per frame, names, groups."""
    cats = {}
    for c in categorical:
        vals = set()
        for f in frames:
            vals.update(f[c].unique().tolist())
        cats[c] = sorted(vals)
    names = list(numeric)
    groups = []
    for c in categorical:
        start = len(names)
        names.extend(f"{c}-{v}" for v in cats[c])
        groups.append(list(range(start, len(names))))
    outs = []
    for f in frames:
        X = np.zeros((len(f), len(names)), dtype=np.float32)
        X[:, : len(numeric)] = f[numeric].to_numpy(dtype=np.float32)
        for c, g in zip(categorical, groups):
            lookup = {v: i for i, v in enumerate(cats[c])}
            codes = f[c].map(lookup).to_numpy(dtype=np.int64)
            X[np.arange(len(f)), g[0] + codes] = 1.0
        outs.append(X)
    return outs, names, groups


def _minmax(X: np.ndarray, cols: list[int]) -> None:
    sub = X[:, cols]
    lo, hi = sub.min(axis=0), sub.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    X[:, cols] = (sub - lo) / span


def _check_scale(scale):
    if scale not in (None, "minmax"):
        raise ValueError(f"scale must be None or 'minmax', got {scale!r}")


def parse_kdd99(ctx, *, variant: str = "kdd99", anomaly: str = "normal", scale=None):
    _check_scale(scale)
    p = ctx.path("data")
    st = p.stat()
    X, labels, names, groups = _kdd99_base(str(p), st.st_size, st.st_mtime_ns)
    is_normal = labels == "normal."
    ratio = 0.2
    notes = ("KDD Cup 99 10% file (494,021 connections). One-hot of protocol_type, service, flag, land, "
             "logged_in, is_host_login, is_guest_login as the ALAD reference code does (categories of "
             "the whole file, sorted) -> 34 numeric + 87 one-hot = 121 features. ")
    if variant == "kdd99-rev":
        keep = ~np.isin(labels, ["smurf.", "neptune."])
        X, labels, is_normal = X[keep], labels[keep], is_normal[keep]
        y = (~is_normal).astype(np.int64)
        ratio = None
        notes += ("kdd99-rev (ARN's KDDCUP99_Rev): smurf. and neptune. rows dropped after one-hot "
                  "(so the 121 columns are those of kdd99; some are constant here), attacks anomalous, "
                  "normal. normal. ")
    elif variant == "kdd99-inv":
        y = is_normal.astype(np.int64)
        ratio = None
        notes += ("kdd99-inv (ARN's KDDCUP99_Inv): attacks normal, normal. anomalous -- the same labels "
                  "as kdd99's default (DAGMM/ALAD) convention. ")
    else:
        if anomaly == "normal":
            y = is_normal.astype(np.int64)
            notes += "Default DAGMM/ALAD convention: 'normal.' traffic (~20%) is the anomaly class. "
        elif anomaly == "attack":
            y = (~is_normal).astype(np.int64)
            ratio = None
            notes += "anomaly='attack' (ARN's KDDCUP99): attacks (~80%) anomalous, 'normal.' normal. "
        else:
            raise ValueError(f"anomaly must be 'normal' or 'attack', got {anomaly!r}")
    num = list(range(len(KDD_NUMERIC)))
    if scale == "minmax":
        X = X.copy()
        _minmax(X, num)
        notes += "Numeric columns min-max scaled over ALL rows of this dataset (transductive). "
    else:
        notes += "No scaling (as the ALAD code). "
    return dict(X=X, y=y, classes=labels, feature_names=list(names),
                categorical_groups=[list(g) for g in groups], numeric_columns=num, notes=notes,
                anomaly_ratio=ratio)


@functools.lru_cache(maxsize=1)
def _kdd99_base(path: str, size: int, mtime_ns: int):
    """One parse of the 10% file shared by kdd99, kdd99-rev and kdd99-inv (X is read-only)."""
    df = _read_kdd(path, ["label"])
    (X,), names, groups = _one_hot_frames([df], KDD_NUMERIC, KDD_CATEGORICAL)
    labels = df["label"].to_numpy(dtype=object).astype(str)
    X.flags.writeable = False
    labels.flags.writeable = False
    return X, labels, names, groups


def parse_nsl_kdd(ctx, *, test: str = "KDDTest+", scale=None):
    import pandas as pd

    _check_scale(scale)
    if test not in ("KDDTest+", "KDDTest-21"):
        raise ValueError(f"test must be 'KDDTest+' or 'KDDTest-21', got {test!r}")
    tr = _read_kdd(ctx.path("train20"), ["label", "difficulty"])
    te = _read_kdd(ctx.path("test" if test == "KDDTest+" else "test21"), ["label", "difficulty"])
    (Xtr, Xte), names, groups = _one_hot_frames([tr, te], KDD_NUMERIC, KDD_CATEGORICAL)
    X = np.concatenate([Xtr, Xte])
    labels = np.concatenate([tr["label"].to_numpy(dtype=object), te["label"].to_numpy(dtype=object)]).astype(str)
    y = (labels != "normal").astype(np.int64)
    split = np.array(["train"] * len(tr) + ["test"] * len(te))
    num = list(range(len(KDD_NUMERIC)))
    notes = (f"NSL-KDD: train = KDDTrain+_20Percent.txt ({len(tr)} rows), test = {test}.txt ({len(te)} rows), "
             "marked in `split`. The full KDDTrain+.txt (125,973 rows, used by ARN) is not available "
             "offline, so the train part is the official 20% subset. Attacks anomalous, 'normal' normal. "
             "Same one-hot scheme as kdd99 with the union of both files' categories; the difficulty "
             "column is dropped. ")
    if scale == "minmax":
        _minmax(X, num)
        notes += "Numeric columns min-max scaled over ALL rows (train+test, transductive). "
    del pd
    return dict(X=X, y=y, classes=labels, split=split, feature_names=names, categorical_groups=groups,
                numeric_columns=num, notes=notes)


# --------------------------------------------------------------------------------------------
# ODDS .mat, ADBench .npz, arrhythmia (UCI), bank, covertype (UCI)
# --------------------------------------------------------------------------------------------
def _dense_all_numeric(X, y, prefix="x"):
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).ravel().astype(np.int64)
    return dict(X=X, y=y, feature_names=[f"{prefix}{i}" for i in range(X.shape[1])],
                categorical_groups=[], numeric_columns=list(range(X.shape[1])))


def parse_odds_mat(ctx, *, role: str = "mat", note: str = ""):
    import scipy.io

    m = scipy.io.loadmat(ctx.path(role))
    out = _dense_all_numeric(m["X"], m["y"])
    out["notes"] = note
    return out


def parse_npz(ctx, *, role: str = "npz", note: str = ""):
    with np.load(ctx.path(role), allow_pickle=False) as d:
        out = _dense_all_numeric(d["X"], d["y"])
    out["notes"] = note
    return out


ARRHYTHMIA_ANOMALY_CLASSES = (3, 4, 5, 7, 8, 9, 14, 15)
_ARR_FIRST = ["age", "sex", "height", "weight", "qrs_duration", "pr_interval", "qt_interval",
              "t_interval", "p_interval", "qrs_angle", "t_angle", "p_angle", "qrst_angle", "j_angle",
              "heart_rate"]


def parse_arrhythmia(ctx, *, variant: str = "odds", missing: str = "median"):
    note_cls = ("Anomalies = classes 3,4,5,7,8,9,14,15 (66 of 452, 14.6%; ODDS/ALAD convention); "
                "nominal top-k ratio 0.15. ")
    if variant == "odds":
        out = parse_odds_mat(ctx, role="mat")
        out["notes"] = ("ODDS arrhythmia.mat (452 x 274: the UCI file without its 5 attributes that have "
                        "missing values), as the ALAD code uses; no scaling. " + note_cls)
        return out
    if variant != "uci":
        raise ValueError(f"variant must be 'odds' or 'uci', got {variant!r}")
    import pandas as pd

    df = pd.read_csv(ctx.path("uci"), header=None, na_values="?")
    cls = df.iloc[:, -1].to_numpy(dtype=np.int64)
    feats = df.iloc[:, :-1]
    names = _ARR_FIRST + [f"attr{i + 1}" for i in range(len(_ARR_FIRST), feats.shape[1])]
    nan_cols = [i for i in range(feats.shape[1]) if feats.iloc[:, i].isna().any()]
    n_missing = int(feats.isna().to_numpy().sum())
    if missing == "median":
        feats = feats.fillna(feats.median())
        how = (f"the {n_missing} missing ('?') cells, in columns {[names[i] for i in nan_cols]}, are "
               "filled with their column's median over all 452 rows -> 279 features")
    elif missing == "drop-columns":
        feats = feats.drop(columns=feats.columns[nan_cols])
        names = [n for i, n in enumerate(names) if i not in nan_cols]
        how = (f"the {len(nan_cols)} columns with missing ('?') values "
               f"{[_ARR_FIRST[i] if i < len(_ARR_FIRST) else i for i in nan_cols]} are dropped -> "
               f"{feats.shape[1]} features (the ODDS construction)")
    else:
        raise ValueError(f"missing must be 'median' or 'drop-columns', got {missing!r}")
    X = feats.to_numpy(dtype=np.float32)
    y = np.isin(cls, ARRHYTHMIA_ANOMALY_CLASSES).astype(np.int64)
    return dict(X=X, y=y, classes=cls, feature_names=names, categorical_groups=[],
                numeric_columns=list(range(X.shape[1])),
                notes=f"UCI arrhythmia.data (variant='uci'): {how}. " + note_cls)


BANK_CATEGORICAL = ["job", "marital", "education", "default", "housing", "loan", "contact", "month",
                    "day_of_week", "poutcome"]


def parse_bank(ctx, *, drop_duration: bool = True, categorical_only: bool = False, scale=None):
    import pandas as pd

    _check_scale(scale)
    with zipfile.ZipFile(ctx.path("zip")) as z:
        with z.open("bank-additional/bank-additional-full.csv") as fh:
            df = pd.read_csv(fh, sep=";")
    numeric = [c for c in df.columns if c not in BANK_CATEGORICAL and c != "y"]
    if drop_duration:
        numeric.remove("duration")
    if categorical_only:
        numeric = []
    (X,), names, groups = _one_hot_frames([df], numeric, BANK_CATEGORICAL)
    y = (df["y"].to_numpy(dtype=object) == "yes").astype(np.int64)
    num = list(range(len(numeric)))
    notes = ("UCI Bank Marketing, bank-additional-full.csv (41,188 rows). y='yes' (11.3%) anomalous. "
             f"{len(numeric)} numeric columns kept numeric, the 10 categorical columns one-hot "
             f"({sum(len(g) for g in groups)} dummies, categories sorted) -> {X.shape[1]} features. ")
    if drop_duration and not categorical_only:
        notes += ("'duration' is dropped by default (drop_duration=True): UCI notes it is only known after "
                  "the call and determines y; ADBench/Pang's 62-column version drops it too. ")
    if categorical_only:
        notes += ("categorical_only=True: the numeric columns are left out, as in ARN's Table I (10 categorical "
                  "attributes, no numeric one). ")
    else:
        notes += ("ARN's Table I lists only the 10 categorical attributes; ours keeps the numeric columns "
                  "(categorical_only=True drops them). ")
    if scale == "minmax":
        _minmax(X, num)
        notes += "Numeric columns min-max scaled over ALL rows (transductive). "
    return dict(X=X, y=y, classes=df["y"].to_numpy(dtype=object).astype(str), feature_names=names,
                categorical_groups=groups, numeric_columns=num, notes=notes)


COVTYPE_NUMERIC = ["elevation", "aspect", "slope", "horizontal_distance_to_hydrology",
                   "vertical_distance_to_hydrology", "horizontal_distance_to_roadways",
                   "hillshade_9am", "hillshade_noon", "hillshade_3pm",
                   "horizontal_distance_to_fire_points"]


def parse_covertype(ctx, *, variant: str = "odds"):
    if variant == "odds":
        with np.load(ctx.path("npz"), allow_pickle=False) as d:
            out = _dense_all_numeric(d["X"], d["y"])
        out["feature_names"] = list(COVTYPE_NUMERIC)
        out["notes"] = ("ADBench 10_cover.npz = ODDS ForestCover: 286,048 rows, the 10 quantitative "
                        "attributes only, class 2 (lodgepole pine) normal vs class 4 (cottonwood/willow) "
                        "anomalous (2,747, 0.96%). This DIFFERS from ARN's CoverType (581,012 rows, 54 "
                        "features, classes 1-3 normal vs 4-7 anomalous): use variant='uci' for that "
                        "(needs covtype.data.gz, not offline). ")
        return out
    if variant != "uci":
        raise ValueError(f"variant must be 'odds' or 'uci', got {variant!r}")
    import pandas as pd

    df = pd.read_csv(ctx.path("uci"), header=None, dtype=np.int32)
    arr = df.to_numpy()
    X = arr[:, :54].astype(np.float32)
    cls = arr[:, 54].astype(np.int64)
    y = (cls >= 4).astype(np.int64)
    names = COVTYPE_NUMERIC + [f"wilderness_area-{i}" for i in range(1, 5)] + \
        [f"soil_type-{i}" for i in range(1, 41)]
    return dict(X=X, y=y, classes=cls, feature_names=names,
                categorical_groups=[list(range(10, 14)), list(range(14, 54))],
                numeric_columns=list(range(10)),
                notes=("UCI covtype.data.gz (variant='uci', ARN's split): classes 1,2,3 normal, 4-7 "
                       "anomalous; 10 numeric + wilderness (4) and soil (40) one-hot groups, as published. "
                       "ARN's own code treats each of the 44 binary columns as its own categorical "
                       "column. "))


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def read_idx(path) -> np.ndarray:
    """Read a (gzipped) IDX file (MNIST format) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file ({arr.size} values, header says {dims})")
    return arr.reshape(dims)


def _image_labels(classes, normal_class, anomaly_class):
    if normal_class is not None and anomaly_class is not None:
        raise ValueError("give at most one of normal_class, anomaly_class")
    known = np.unique(classes)
    for v in (normal_class, anomaly_class):
        if v is not None and v not in known:
            raise ValueError(f"unknown class {v!r}; known: {known.tolist()}")
    if normal_class is not None:
        return (classes != normal_class).astype(np.int64), f"one-class labels: class {normal_class} normal, all others anomalous. "
    if anomaly_class is not None:
        return (classes == anomaly_class).astype(np.int64), f"leave-one-out labels: class {anomaly_class} anomalous, all others normal. "
    return np.zeros(len(classes), np.int64), (
        "No default anomaly class for an image dataset: y is all 0; pass normal_class= (one-class) or "
        "anomaly_class= (leave-one-out), or use Dataset.relabel(). ")


def parse_mnist_like(ctx, *, label: str, subset: str = "auto", normal_class=None, anomaly_class=None):
    if subset not in ("auto", "all", "test"):
        raise ValueError(f"subset must be 'auto', 'all' or 'test', got {subset!r}")
    have_train = ctx.exists("train_images") and ctx.exists("train_labels")
    use_train = subset == "all" or (subset == "auto" and have_train)
    parts, splits, notes = [], [], ""
    if use_train:
        parts.append((read_idx(ctx.path("train_images")), read_idx(ctx.path("train_labels"))))
        splits.append("train")
    parts.append((read_idx(ctx.path("test_images")), read_idx(ctx.path("test_labels"))))
    splits.append("test")
    X = np.concatenate([p[0] for p in parts])[:, None, :, :]
    cls = np.concatenate([p[1] for p in parts]).astype(np.int64)
    split = np.concatenate([np.full(len(p[1]), s) for p, s in zip(parts, splits)])
    if use_train:
        notes += f"{label}: official train (60,000) + test (10,000) images, marked in `split`. "
    else:
        notes += (f"{label}: ONLY the official 10,000-image test set is loaded "
                  f"({'subset=test' if subset == 'test' else 'train-images-idx3-ubyte.gz is not in the data folder'}); "
                  "every row has split='test', there is no official train part: a one-class run must "
                  "split these rows per seed and say so (`advad data fetch mnist` gets the train files). ")
    y, how = _image_labels(cls, normal_class, anomaly_class)
    return dict(X=np.ascontiguousarray(X), y=y, classes=cls, split=split, kind="image",
                notes=notes + "uint8 (n, 1, 28, 28), no scaling. " + how)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR-10 python batches: only numpy array reconstruction is allowed."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            import importlib

            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}: refused")


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def parse_cifar10(ctx, *, normal_class=None, anomaly_class=None):
    xs, ys, splits = [], [], []
    with tarfile.open(ctx.path("tar"), "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        order = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] + ["cifar-10-batches-py/test_batch"]
        for name in order:
            with tar.extractfile(members[name]) as fh:
                d = _ArrayOnlyUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[b"labels"], dtype=np.int64))
            splits.append(np.full(len(ys[-1]), "test" if name.endswith("test_batch") else "train"))
    cls = np.concatenate(ys)
    y, how = _image_labels(cls, normal_class, anomaly_class)
    return dict(X=np.concatenate(xs), y=y, classes=cls, split=np.concatenate(splits), kind="image",
                notes=("CIFAR-10 python tarball: 50,000 train + 10,000 test images, uint8 (n, 3, 32, 32); "
                       f"classes 0-9 = {CIFAR10_CLASSES}; batches read with an unpickler that only "
                       "allows numpy arrays. " + how))


def parse_svhn(ctx, *, normal_class=None, anomaly_class=None):
    import scipy.io

    xs, ys, splits = [], [], []
    for role in ("train", "test"):
        m = scipy.io.loadmat(ctx.path(role))
        xs.append(np.ascontiguousarray(np.transpose(m["X"], (3, 2, 0, 1)), dtype=np.uint8))
        lab = m["y"].ravel().astype(np.int64)
        lab[lab == 10] = 0
        ys.append(lab)
        splits.append(np.full(len(lab), role))
    cls = np.concatenate(ys)
    y, how = _image_labels(cls, normal_class, anomaly_class)
    return dict(X=np.concatenate(xs), y=y, classes=cls, split=np.concatenate(splits), kind="image",
                notes=("SVHN cropped digits (train_32x32.mat 73,257 + test_32x32.mat 26,032; 'extra' not "
                       "used), uint8 (n, 3, 32, 32); label 10 mapped to digit 0. " + how))
