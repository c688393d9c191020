"""The dataset registry: one :class:`DatasetSpec` per dataset name of SPEC section 2."""

from __future__ import annotations

import dataclasses
import functools
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import _embedded as E
from . import _parsers as P
from ._files import RawFile, data_home, download_file, locate, verify_file
from .dataset import Dataset


@dataclass(frozen=True)
class DatasetSpec:
    """Everything advad knows about a dataset without reading it.

    ``shape``/``n_anomalies`` are the sizes under the default options (known statically, so that
    ``advad data list`` needs no parsing); ``anomaly_ratio`` is the nominal top-k ratio (None = the
    actual ratio of the loaded labels); ``options`` maps each load option to its default.
    """

    name: str
    title: str
    kind: str                     # "tabular" | "image"
    parser: Callable[..., dict]
    files: tuple[RawFile, ...] = ()
    required: tuple[str, ...] = ()          # roles needed under the default options
    options: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    n_anomalies: int | None = None
    anomaly: str = ""                        # which class is the anomaly (human readable)
    anomaly_ratio: float | None = None
    origin: str = ""                         # where the data comes from (paper / archive)
    papers: str = ""                         # which papers use it and how
    notes: str = ""                          # deviations, caveats (shown by `advad data info`)
    embedded: bool = False                   # needs no download
    offline: bool = True                     # a copy is in the shared offline folder
    status_hook: Callable[[set], dict] | None = None

    def file(self, role: str) -> RawFile:
        for f in self.files:
            if f.role == role:
                return f
        raise KeyError(f"dataset {self.name!r} has no raw file {role!r}")

    @property
    def fetch_command(self) -> str:
        return f"advad data fetch {self.name}"


def _gh(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{urllib.parse.quote(path)}"


_PYOD = ("yzhao062/pyod", "ef6d5e8dc828615f498286c1d6a22cbd02fd4cd2")
_ADB = ("Minqi824/ADBench", "3dac8221081e190f157d78e93bfa8867f90d0965")
_NSL_T = ("LiuYangSO/Genetic-Algorithm-based-Adversarial-Examples-Generation-against-Machine-Learning-based-IDS",
          "0c6a551be6abec45615b4e86ca8a99190c6533c1")
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION = ("zalandoresearch/fashion-mnist", "b2617bb6d3ffa2e429640350f613e3291e10b141")

KDD_FILES = (
    RawFile("data", "kddcup99/kddcup.data_10_percent.gz",
            "sha256:8045aca0d84e70e622d1148d7df782496f6333bf6eb979a1b0837c42a9fd9561",
            _gh("Kapetis/ST2", "6d94539ad0398088efa114c7749637d61a2b4f10", "kddcup.data_10_percent.gz"),
            2144903, "UCI KDD archive file (kdd.ics.uci.edu/databases/kddcup99/), via a pinned GitHub copy"),
    RawFile("names", "kddcup99/kddcup.names",
            "sha256:24ad45a4c5de85cd73bcc81cf4965a58bbf3e83b48c6e6d3b0284119e7d42efd",
            _gh("abjeni/DAT535_detecting_network_attacks", "f91f8f94b38dd17eafe7899b962bf22dc4bdfe3f",
                "kddcup.names"), 1309, "attribute list (documentation only; not needed to load)"),
)
ODDS = {
    n: RawFile("mat", f"odds/{n}.mat", "sha256:" + h, _gh(*_PYOD, f"notebooks/data/{n}.mat"), size,
               "ODDS .mat (odds.cs.stonybrook.edu), via the pyod commit that vendored it unchanged")
    for n, h, size in [
        ("arrhythmia", "e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d", 105540),
        ("thyroid", "49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33", 39704),
        ("musk", "50bbf414caceb66cfe6f6b1eb7c1ff7c6eb1e6d87173f7bb597ba55cd3dc5493", 736083),
    ]
}
_ARR_REPO = ("SttefanB/Proiect_SVM_Clasificare_Pacienti_Aritmie", "4baa23f3e011f89cc754dce9c8e8378e84b05ec1")


def _mnist_files(folder, base_url, hashes, sizes, gh=None):
    out = []
    for role, fname in [("train_images", "train-images-idx3-ubyte.gz"), ("train_labels", "train-labels-idx1-ubyte.gz"),
                        ("test_images", "t10k-images-idx3-ubyte.gz"), ("test_labels", "t10k-labels-idx1-ubyte.gz")]:
        url = _gh(gh[0], gh[1], f"data/fashion/{fname}") if gh else base_url + fname
        out.append(RawFile(role, f"{folder}/{fname}", "sha256:" + hashes[role], url, sizes[role]))
    return tuple(out)


MNIST_FILES = _mnist_files("mnist", _MNIST_URL, {
    "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}, {"train_images": 9912422, "train_labels": 28881, "test_images": 1648877, "test_labels": 4542})
FASHION_FILES = _mnist_files("fashion-mnist", None, {
    "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}, {"train_images": 26421880, "train_labels": 29515, "test_images": 4422102, "test_labels": 5148}, gh=_FASHION)


def _mnist_status(present: set) -> dict:
    if {"train_images", "train_labels"} <= present:
        return {}
    return {"shape": [10000, 1, 28, 28],
            "status_note": "only the 10,000 official test images are present: loads as the test set only "
                           "(split='test' everywhere); `advad data fetch mnist` adds the train files"}


_KDD_ORIGIN = "KDD Cup 1999, 10% subset (UCI KDD archive, kdd.ics.uci.edu/databases/kddcup99)"

SPECS: dict[str, DatasetSpec] = {}


def _add(spec: DatasetSpec) -> None:
    SPECS[spec.name] = spec


_add(DatasetSpec(
    "kdd99", "KDD Cup 99 (10%), DAGMM/ALAD convention", "tabular",
    functools.partial(P.parse_kdd99, variant="kdd99"), KDD_FILES, ("data",),
    {"anomaly": "normal", "scale": None}, (494021, 121), 97278,
    "'normal.' connections (97,278 = 19.7%); anomaly='attack' gives ARN's KDDCUP99 (attacks anomalous)",
    0.2, _KDD_ORIGIN, "ALAD, RCGAN, DAGMM (topk, 20%); ARN (KDDCUP99 with anomaly='attack')",
    "121 features = 34 numeric + one-hot protocol_type(3), service(66), flag(11), land(2), logged_in(2), "
    "is_host_login(1), is_guest_login(2) (ALAD reference code); no scaling (scale='minmax' optional)."))
_add(DatasetSpec(
    "kdd99-rev", "KDD Cup 99 Rev (ARN): smurf and neptune removed", "tabular",
    functools.partial(P.parse_kdd99, variant="kdd99-rev"), KDD_FILES, ("data",),
    {"scale": None}, (106030, 121), 8752,
    "every attack except smurf/neptune (8,752 = 8.25%); 'normal.' is normal", None, _KDD_ORIGIN,
    "ARN Table I-IV (KDDCUP99_Rev: 97,278 normal / 8,752 anomalous, 7 categorical + 34 numeric)",
    "One-hot computed on the whole 10% file before dropping rows (as ARN's code), so the 121 columns "
    "match kdd99. ARN min-max scales numeric columns with train statistics: do that in the protocol "
    "(or scale='minmax', transductive)."))
_add(DatasetSpec(
    "kdd99-inv", "KDD Cup 99 Inv (ARN): attacks normal, 'normal.' anomalous", "tabular",
    functools.partial(P.parse_kdd99, variant="kdd99-inv"), KDD_FILES, ("data",),
    {"scale": None}, (494021, 121), 97278,
    "'normal.' connections (97,278 = 19.7%); attacks are normal", None, _KDD_ORIGIN,
    "ARN (KDDCUP99_Inv: 396,743 normal / 97,278 anomalous)",
    "Same rows, features and labels as kdd99's default convention (ARN calls the ALAD/DAGMM convention "
    "'Inv'); its anomaly_ratio is the actual 0.197 instead of kdd99's nominal 0.2."))
_add(DatasetSpec(
    "nsl-kdd", "NSL-KDD (KDDTrain+_20Percent + KDDTest+)", "tabular", P.parse_nsl_kdd,
    (RawFile("train20", "nsl-kdd/KDDTrain+_20Percent.txt",
             "sha256:7ea86479faab5ca2190b7f18b4982fb058ce5bf2b46e0e1017d0d9ef90f9c16e",
             _gh("Sumo01/Intrusion-Detection-System-ML-Implementation", "a1d49bba492442a24cb9ecf47f1fd6fdf86b0f60",
                 "NSL-KDD Dataset/KDDTrain+_20Percent.txt"), 3822033, "UNB NSL-KDD 20% training subset"),
     RawFile("test", "nsl-kdd/KDDTest+.txt",
             "sha256:86b5ec03d20c040bdbeeb7eb68ae7df37e27a16c5b66a6ba2b62b8fed0e5cdfa",
             _gh(*_NSL_T, "KDDTest+.txt"), 3441513, "UNB NSL-KDD test set"),
     RawFile("test21", "nsl-kdd/KDDTest-21.txt",
             "sha256:746993ac9e25868827cacf09eab450050a2a1056e1ce48a1ad39f5dc801d531d",
             _gh(*_NSL_T, "KDDTest-21.txt"), 1814092, "test subset without difficulty-21 rows (test='KDDTest-21')")),
    ("train20", "test"), {"test": "KDDTest+", "scale": None}, (47736, 123), 24576,
    "attacks (24,576 = 51.5%: 11,743 of 25,192 train rows, 12,833 of 22,544 test rows)", None,
    "NSL-KDD (Tavallaee et al. 2009, www.unb.ca/cic/datasets/nsl.html)", "ARN (NSL-KDD row of Table I-III)",
    "The full KDDTrain+.txt (125,973 rows, used by ARN) is not available offline: train = the official "
    "20% subset. `split` marks train/test rows; one-hot categories are the union of both files."))
_add(DatasetSpec(
    "arrhythmia", "Cardiac Arrhythmia (ODDS .mat by default)", "tabular", P.parse_arrhythmia,
    (ODDS["arrhythmia"],
     RawFile("uci", "arrhythmia/arrhythmia.data",
             "sha256:59a3360ee531a55cec553cd2cd1eaeab143ba8658d1b324a08fb7941f39ade2e",
             _gh(*_ARR_REPO, "arrhythmia.data"), 402354, "UCI original (variant='uci')"),
     RawFile("uci_names", "arrhythmia/arrhythmia.names",
             "sha256:c99ec888e05d61fb8201f2fc426ff5f41b548d7e61536d33edc5b3d6cfce2660",
             _gh(*_ARR_REPO, "arrhythmia.names"), 6162, "UCI description (documentation only)")),
    ("mat",), {"variant": "odds", "missing": "median"}, (452, 274), 66,
    "classes 3,4,5,7,8,9,14,15 (66 = 14.6%)", 0.15,
    "UCI Cardiac Arrhythmia (Guvenir et al.); ODDS .mat", "ALAD, RCGAN, DAGMM (topk, 15%)",
    "Default = ODDS .mat (452 x 274, the 5 attributes with missing values removed), as the ALAD code. "
    "variant='uci' parses arrhythmia.data: missing='median' (default) fills the 408 '?' cells with "
    "column medians (279 features); missing='drop-columns' drops those 5 columns (274, the ODDS "
    "construction)."))
_add(DatasetSpec(
    "thyroid", "Thyroid (ODDS)", "tabular",
    functools.partial(P.parse_odds_mat, note="ODDS thyroid.mat (UCI thyroid disease, 6 real attributes); "
                      "hyperfunction class = outlier (93 = 2.5%); nominal top-k ratio 0.025; no scaling. "),
    (ODDS["thyroid"],), ("mat",), {}, (3772, 6), 93, "hyperfunction class (93 = 2.5%)", 0.025,
    "ODDS (Rayana 2016) from UCI thyroid-disease", "RCGAN, DAGMM (topk, 2.5%)"))
_add(DatasetSpec(
    "musk", "Musk (ODDS)", "tabular",
    functools.partial(P.parse_odds_mat, note="ODDS musk.mat (UCI Musk v2, 166 features): non-musk classes "
                      "j146/j147/252 normal, musk classes 213/211 outliers (97 = 3.2%); nominal top-k ratio "
                      "0.032; no scaling. "),
    (ODDS["musk"],), ("mat",), {}, (3062, 166), 97, "musk molecules 213/211 (97 = 3.2%)", 0.032,
    "ODDS (Rayana 2016) from UCI Musk v2", "RCGAN (topk, 3.2%)",
    "RCGAN's Isolation Forest figure comes from a differently processed Musk."))
_add(DatasetSpec(
    "creditcard", "Credit-card fraud (ADBench 13_fraud.npz)", "tabular",
    functools.partial(P.parse_npz, note="ADBench 13_fraud.npz (ULB credit-card fraud, Sept. 2013): "
                      "fraud = anomaly (492 = 0.17%). ADBench keeps 29 features (ARN lists 30: Time, V1-V28, "
                      "Amount). No published sha256 is known to advad: the file is NOT verified. "),
    (RawFile("npz", "adbench/Classical/13_fraud.npz", None,
             _gh(*_ADB, "adbench/datasets/Classical/13_fraud.npz"), None,
             "no sha256 known to advad: downloaded and loaded unverified (a warning gives its hash)"),),
    ("npz",), {}, (284807, 29), 492, "fraudulent transactions (492 = 0.17%)", None,
    "ULB Machine Learning Group credit-card fraud data (Kaggle creditcard.csv), ADBench preprocessing",
    "ARN (CreditCard row)",
    "Not in the offline folder. Registered with ADBench's npz (the Kaggle CSV needs a login); no "
    "checksum known, so fetch and load warn that the file is unverified.", offline=False))
_add(DatasetSpec(
    "bank", "Bank Marketing (UCI bank-additional-full)", "tabular", P.parse_bank,
    (RawFile("zip", "bank-marketing/bank-additional.zip",
             "sha256:e689f38cc6bd689f64f031e7a1fbe0849aabb7ad57544fc75068e30129bbd514",
             _gh("jamjewel/Customer-Subscription", "de9b5b6384b599c5b00de2116b08be2bc740188c", "bank-additional.zip"),
             446231, "UCI zip re-packed by its uploader (member CSVs are the 2014 originals)"),),
    ("zip",), {"drop_duration": True, "categorical_only": False, "scale": None}, (41188, 62), 4640, "y='yes' (4,640 = 11.3%)", None,
    "UCI Bank Marketing (Moro et al. 2014)", "ARN (Bank row of Tables I-IV)",
    "9 numeric columns + 53 one-hot dummies of the 10 categorical columns = 62; 'duration' dropped by "
    "default (it leaks y; drop_duration=False keeps it: 63). ARN's Table I version has the 10 categorical "
    "attributes only: categorical_only=True (53 dummies)."))
_add(DatasetSpec(
    "covertype", "Forest CoverType (ODDS/ADBench variant)", "tabular", P.parse_covertype,
    (RawFile("npz", "adbench/Classical/10_cover.npz",
             "sha256:945a097c3542ae81a551bf1c06dcad78a755d94f84fcaf1d60687e42d1a656df",
             _gh(*_ADB, "adbench/datasets/Classical/10_cover.npz"), 2537258, "ADBench = ODDS ForestCover"),
     RawFile("uci", "covertype/covtype.data.gz", None,
             "https://archive.ics.uci.edu/ml/machine-learning-databases/covtype/covtype.data.gz", None,
             "UCI original for variant='uci' (ARN's split); no sha256 known to advad: unverified",
             fetch_default=False)),
    ("npz",), {"variant": "odds"}, (286048, 10), 2747, "class 4 cottonwood/willow (2,747 = 0.96%)", None,
    "UCI Covertype (Blackard 1998); ODDS ForestCover subset via ADBench",
    "ARN (CoverType: classes 1-3 normal vs 4-7, 581,012 x 54)",
    "DIFFERS FROM ARN: the default is ODDS ForestCover (class 2 vs class 4, 10 quantitative features). "
    "variant='uci' gives ARN's split from covtype.data.gz (not offline; fetch it with "
    "advad.data.fetch('covertype', all_files=True); no checksum known)."))
_add(DatasetSpec(
    "mnist", "MNIST", "image", functools.partial(P.parse_mnist_like, label="MNIST"), MNIST_FILES,
    ("test_images", "test_labels"), {"subset": "auto", "normal_class": None, "anomaly_class": None},
    (70000, 1, 28, 28), None, "none by default: set normal_class (one-class) or anomaly_class (leave-one-out)",
    None, "MNIST (LeCun et al.), official IDX files", "RCGAN, MAESI, AMA (one-class, leave-one-out, ood)",
    "Offline only the 10,000 test images exist (train-images-idx3-ubyte.gz is missing): without the train "
    "files the loader returns the test set with split='test' everywhere and protocols split it per seed. "
    "subset='all' requires the train files; subset='test' always loads the test set only.",
    status_hook=_mnist_status))
_add(DatasetSpec(
    "fashion-mnist", "Fashion-MNIST", "image", functools.partial(P.parse_mnist_like, label="Fashion-MNIST"),
    FASHION_FILES, ("train_images", "train_labels", "test_images", "test_labels"),
    {"subset": "auto", "normal_class": None, "anomaly_class": None}, (70000, 1, 28, 28), None,
    "none by default: set normal_class (one-class) or anomaly_class (leave-one-out)", None,
    "Fashion-MNIST (Xiao et al. 2017, Zalando Research)", "AMA (one-class; ood vs MNIST)",
    "train 60,000 + test 10,000, marked in `split`."))
_add(DatasetSpec(
    "cifar10", "CIFAR-10", "image", P.parse_cifar10,
    (RawFile("tar", "cifar10/cifar-10-python.tar.gz",
             "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
             "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", 170498071, "official python tarball"),),
    ("tar",), {"normal_class": None, "anomaly_class": None}, (60000, 3, 32, 32), None,
    "none by default: set normal_class (one-class) or anomaly_class (leave-one-out)", None,
    "CIFAR-10 (Krizhevsky 2009)", "ALAD, RCGAN, MAESI, AMA (one-class, leave-one-out; ood vs SVHN)",
    "Not in the offline folder (163 MB): `advad data fetch cifar10`.", offline=False))
_add(DatasetSpec(
    "svhn", "SVHN (cropped digits)", "image", P.parse_svhn,
    (RawFile("train", "svhn/train_32x32.mat", "md5:e26dedcc434d2e4c54c9b2d4a06d8373",
             "http://ufldl.stanford.edu/housenumbers/train_32x32.mat", 182040794,
             "official file; only its md5 is published (checked with md5)"),
     RawFile("test", "svhn/test_32x32.mat", "md5:eb5a983be6a315427106f1b164d9cef3",
             "http://ufldl.stanford.edu/housenumbers/test_32x32.mat", 64275384,
             "official file; only its md5 is published (checked with md5)")),
    ("train", "test"), {"normal_class": None, "anomaly_class": None}, (99289, 3, 32, 32), None,
    "none by default: set normal_class (one-class) or anomaly_class (leave-one-out)", None,
    "SVHN (Netzer et al. 2011)", "ALAD, AMA (one-class; ood vs CIFAR-10)",
    "Not in the offline folder: `advad data fetch svhn`. Verified by the published md5 (no sha256 is "
    "published).", offline=False))
_add(DatasetSpec(
    "breast-cancer", "Breast cancer Wisconsin diagnostic (scikit-learn)", "tabular", E.parse_breast_cancer,
    (), (), {"n_anomalies": 40, "seed": 0}, (397, 30), 40,
    "malignant, subsampled to 40 of 212 (10.1%)", None, "scikit-learn load_breast_cancer (UCI WDBC)",
    "none (embedded demo set)", "Embedded: no download.", embedded=True))
_add(DatasetSpec(
    "digits", "Optical digits 8x8 (scikit-learn)", "tabular", E.parse_digits,
    (), (), {"anomaly_digit": 0, "as_images": False}, (1797, 64), 178,
    "digit 0 (178 = 9.9%), the other nine digits normal (leave-one-out)", None,
    "scikit-learn load_digits (UCI optical recognition of handwritten digits, test part)",
    "none (embedded demo set; MAESI-style leave-one-out)", "Embedded: no download.", embedded=True))
for _k in ("loop", "arc", "four-dot"):
    _add(DatasetSpec(
        _k, f"RCGAN synthetic 2-D set '{_k}'", "tabular", functools.partial(E.make_synthetic, kind=_k),
        (), (), {"n_normal": 1000, "n_anomalies": 50, "seed": 0}, (1050, 2), 50,
        "uniform points of [-3,3]^2 off the normal structure (50 = 4.8%)", None,
        "generated (RCGAN paper section 5.1, Fig. 3)", "RCGAN (Fig. 3: discriminator outputs on [-3,3]^2)",
        E.SYNTHETIC[_k]["desc"] + "; embedded: generated from a seed.", embedded=True))

_ORDER = ["kdd99", "kdd99-rev", "kdd99-inv", "nsl-kdd", "arrhythmia", "thyroid", "musk", "creditcard", "bank",
          "covertype", "mnist", "fashion-mnist", "cifar10", "svhn", "breast-cancer", "digits", "loop", "arc",
          "four-dot"]
assert sorted(_ORDER) == sorted(SPECS)


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def list_datasets(kind: str | None = None, *, embedded: bool | None = None) -> list[str]:
    """Registered dataset names (SPEC order), optionally only one ``kind`` / only embedded ones."""
    return [n for n in _ORDER if (kind is None or SPECS[n].kind == kind)
            and (embedded is None or SPECS[n].embedded == embedded)]


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``; unknown names raise ValueError listing the known ones."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(_ORDER)}") from None


class _Ctx:
    def __init__(self, spec: DatasetSpec, folder: Path):
        self.spec, self.folder = spec, folder
        self.unverified: list[str] = []

    def path(self, role: str) -> Path:
        raw = self.spec.file(role)
        p = locate(self.spec.name, raw, self.folder)
        if raw.hash is None:
            self.unverified.append(f"{raw.path} (unverified, {verify_file(self.spec.name, p, None)})")
        return p

    def exists(self, role: str) -> bool:
        return (self.folder / self.spec.file(role).path).is_file()


def _resolve_options(spec: DatasetSpec, options: dict) -> tuple:
    unknown = set(options) - set(spec.options)
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) or "none"
        raise TypeError(f"dataset {spec.name!r} got unknown option(s) {sorted(unknown)}; valid options "
                        f"(with defaults): {valid}")
    merged = {**spec.options, **options}
    try:
        key = tuple(sorted(merged.items()))
        hash(key)
    except TypeError:
        raise TypeError(f"options of dataset {spec.name!r} must be hashable scalars, got {merged!r}") from None
    return key


def _freeze(a):
    if isinstance(a, np.ndarray):
        a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=12)
def _load_cached(name: str, opts: tuple, folder: str) -> Dataset:
    spec = SPECS[name]
    ctx = _Ctx(spec, Path(folder))
    out = dict(spec.parser(ctx, **dict(opts)))
    ratio = out.pop("anomaly_ratio", spec.anomaly_ratio)
    kind = out.pop("kind", spec.kind)
    notes = out.pop("notes", "").strip()
    if spec.notes and spec.notes not in notes:
        notes += " " + spec.notes
    if ctx.unverified:
        notes += " Unverified raw file(s): " + "; ".join(ctx.unverified) + "."
    non_default = {k: v for k, v in opts if spec.options.get(k) != v}
    if non_default:
        notes += f" Options: {non_default}."
    X = np.ascontiguousarray(out.pop("X"))
    if kind == "tabular" and X.dtype != np.float32:
        X = X.astype(np.float32)
    ds = Dataset(name=name, X=X, y=out.pop("y"), anomaly_ratio=ratio, notes=notes.strip(), kind=kind, **out)
    for a in (ds.X, ds.y, ds.classes, ds.split):
        _freeze(a)
    return ds


def load_dataset(name: str, **options) -> Dataset:
    """Load dataset ``name`` (see :func:`list_datasets`) with its load ``options``.

    Raw files are read from ``$ADVAD_DATA`` (default ``~/.cache/advad``) at their MANIFEST paths and
    verified against their published checksum. A missing file raises :class:`DatasetNotFoundError`,
    a corrupt one :class:`DatasetChecksumError`. Results are cached in-process per (name, options,
    folder); the arrays are read-only and shared, so copy before modifying them in place.
    """
    spec = get_spec(name)
    key = _resolve_options(spec, options)
    folder = "" if spec.embedded else str(data_home())
    ds = _load_cached(name, key, folder)
    return dataclasses.replace(
        ds, feature_names=None if ds.feature_names is None else list(ds.feature_names),
        categorical_groups=[list(g) for g in ds.categorical_groups], numeric_columns=list(ds.numeric_columns))


def clear_cache() -> None:
    """Forget parsed datasets and checksum verifications of this process."""
    from . import _files

    _load_cached.cache_clear()
    P._kdd99_base.cache_clear()
    with _files._verified_lock:
        _files._verified.clear()


def fetch(name: str, folder: str | Path | None = None, *, all_files: bool = False,
          mirror: str | Path | None = None, progressbar: bool = False) -> list[Path]:
    """Download the raw files of ``name`` into ``folder`` (default :func:`data_home`) at their
    MANIFEST paths with pooch, verifying each checksum; files already present and valid are kept.

    ``all_files=True`` also fetches optional files (e.g. covertype's UCI original). ``mirror``: a
    local folder or URL prefix laid out like the data folder, used instead of the public URLs.
    A download whose checksum differs raises :class:`DatasetChecksumError` and is not kept.
    Embedded datasets have nothing to fetch (returns ``[]``).
    """
    spec = get_spec(name)
    folder = Path(folder).expanduser() if folder is not None else data_home()
    out = []
    for raw in spec.files:
        if raw.fetch_default or all_files or raw.role in spec.required:
            out.append(download_file(name, raw, folder, mirror=mirror, progressbar=progressbar))
    return out


def dataset_status(name: str, *, verify: bool = False) -> dict:
    """What ``advad data list`` / ``advad data info`` print, without parsing the data.

    Checks which raw files are present under :func:`data_home` (and, with ``verify=True``, their
    checksums); sizes and anomaly counts are the registry's static figures for the default options.
    """
    spec = get_spec(name)
    folder = data_home()
    files, present = [], set()
    for raw in spec.files:
        p = folder / raw.path
        entry = {"role": raw.role, "path": raw.path, "present": p.is_file(), "required": raw.role in spec.required,
                 "hash": raw.hash, "url": raw.url, "bytes": raw.size, "note": raw.note}
        if entry["present"]:
            present.add(raw.role)
            if verify:
                try:
                    verify_file(name, p, raw.hash)
                    entry["verified"] = raw.hash is not None
                except Exception as exc:  # report, do not raise
                    entry["verified"] = False
                    entry["error"] = str(exc)
        files.append(entry)
    available = spec.embedded or all(r in present for r in spec.required)
    if verify and not spec.embedded:
        available = available and not any(f.get("error") for f in files if f["required"])
    missing = [f["path"] for f in files if f["required"] and not f["present"]]
    status = {
        "name": spec.name, "title": spec.title, "kind": spec.kind, "embedded": spec.embedded,
        "available": bool(available), "offline_copy": spec.offline or spec.embedded,
        "folder": None if spec.embedded else str(folder),
        "shape": list(spec.shape), "n_samples": spec.shape[0],
        "n_features": int(np.prod(spec.shape[1:])) if spec.shape else None,
        "n_anomalies": spec.n_anomalies, "anomaly": spec.anomaly,
        "anomaly_ratio": spec.anomaly_ratio if spec.anomaly_ratio is not None else (
            round(spec.n_anomalies / spec.shape[0], 6) if spec.n_anomalies is not None else None),
        "anomaly_ratio_nominal": spec.anomaly_ratio is not None,
        "options": dict(spec.options), "origin": spec.origin, "papers": spec.papers, "notes": spec.notes,
        "files": files, "missing": missing,
        "fetch_command": None if spec.embedded else spec.fetch_command,
    }
    # short aliases for tables: present (= available), anomalies (= n_anomalies), source (= origin)
    status.update(present=status["available"], anomalies=status["n_anomalies"], source=status["origin"])
    if spec.status_hook is not None:
        extra = spec.status_hook(present)
        status.update(extra)
        if "shape" in extra:
            status["n_samples"] = extra["shape"][0]
    return status
