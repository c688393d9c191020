"""Datasets that need no download: scikit-learn's embedded sets and the RCGAN 2-D synthetic sets."""

from __future__ import annotations

import numpy as np


def parse_breast_cancer(ctx=None, *, n_anomalies: int | None = 40, seed: int = 0):
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer()
    X = b.data.astype(np.float32)
    malignant = b.target == 0  # scikit-learn: 0 = malignant, 1 = benign
    idx_ben = np.flatnonzero(~malignant)
    idx_mal = np.flatnonzero(malignant)
    if n_anomalies is not None:
        if not 0 < n_anomalies <= len(idx_mal):
            raise ValueError(f"n_anomalies must be in 1..{len(idx_mal)} or None, got {n_anomalies}")
        idx_mal = np.sort(np.random.default_rng(seed).choice(idx_mal, n_anomalies, replace=False))
    keep = np.sort(np.concatenate([idx_ben, idx_mal]))
    y = malignant[keep].astype(np.int64)
    sub = (f"a random {n_anomalies} of the 212 malignant rows (numpy default_rng({seed})) are kept so "
           "that anomalies are a minority" if n_anomalies is not None else "all 212 malignant rows kept (37%)")
    return dict(X=X[keep], y=y, classes=np.asarray(b.target_names)[b.target[keep]],
                feature_names=[str(f) for f in b.feature_names], categorical_groups=[],
                numeric_columns=list(range(X.shape[1])),
                notes=("scikit-learn Wisconsin Diagnostic Breast Cancer (569 x 30). Anomaly = malignant; "
                       f"normal = all 357 benign rows; {sub}. Raw feature values, no scaling. "))


def parse_digits(ctx=None, *, anomaly_digit: int = 0, as_images: bool = False):
    from sklearn.datasets import load_digits

    d = load_digits()
    if anomaly_digit not in range(10):
        raise ValueError(f"anomaly_digit must be 0..9, got {anomaly_digit!r}")
    cls = d.target.astype(np.int64)
    y = (cls == anomaly_digit).astype(np.int64)
    common = (f"scikit-learn optical digits (1,797 images of 8x8, pixel values 0..16). Leave-one-out "
              f"convention (MAESI): digit {anomaly_digit} is the anomaly ({int(y.sum())} rows, "
              f"{y.mean():.1%}), the other nine digits are normal. ")
    if as_images:
        X = d.images.astype(np.uint8)[:, None, :, :]
        return dict(X=X, y=y, classes=cls, kind="image", notes=common + "as_images=True: uint8 (n, 1, 8, 8).")
    X = d.data.astype(np.float32)
    return dict(X=X, y=y, classes=cls, feature_names=[f"pixel_{i // 8}_{i % 8}" for i in range(64)],
                categorical_groups=[], numeric_columns=list(range(64)),
                notes=common + "Tabular: 64 features, no scaling.")


# --------------------------------------------------------------------------------------------
# RCGAN section 5.1 synthetic sets (plotted on [-3, 3]^2 in the paper's Fig. 3)
# --------------------------------------------------------------------------------------------
BOX = 3.0


def _dist_loop(P, r=2.0):
    return np.abs(np.hypot(P[:, 0], P[:, 1]) - r)


ARC_CENTER = np.array([0.0, -1.0])
ARC_R = 2.0


def _dist_arc(P):
    Q = P - ARC_CENTER
    ang = np.arctan2(Q[:, 1], Q[:, 0])
    on = (ang >= 0) & (ang <= np.pi)
    d_circle = np.abs(np.hypot(Q[:, 0], Q[:, 1]) - ARC_R)
    ends = ARC_CENTER + np.array([[ARC_R, 0.0], [-ARC_R, 0.0]])
    d_ends = np.min(np.linalg.norm(P[:, None, :] - ends[None], axis=2), axis=1)
    return np.where(on, d_circle, d_ends)


DOT_CENTERS = np.array([[1.5, 1.5], [-1.5, 1.5], [-1.5, -1.5], [1.5, -1.5]])


def _dist_dots(P):
    return np.min(np.linalg.norm(P[:, None, :] - DOT_CENTERS[None], axis=2), axis=1)


SYNTHETIC = {
    "loop": dict(dist=_dist_loop, noise=0.1, margin=0.5,
                 desc="circle of radius 2 around the origin, radial Gaussian noise sd 0.1"),
    "arc": dict(dist=_dist_arc, noise=0.1, margin=0.5,
                desc="upper half circle of radius 2 centred at (0, -1) (angles 0..pi), radial noise sd 0.1"),
    "four-dot": dict(dist=_dist_dots, noise=0.15, margin=0.75,
                     desc="four Gaussian blobs (sd 0.15) centred at (+-1.5, +-1.5), equal weights"),
}


def _normals(kind, n, noise, rng):
    if kind == "loop":
        t = rng.uniform(0, 2 * np.pi, n)
        r = 2.0 + rng.normal(0, noise, n)
        return np.c_[r * np.cos(t), r * np.sin(t)]
    if kind == "arc":
        t = rng.uniform(0, np.pi, n)
        r = ARC_R + rng.normal(0, noise, n)
        return ARC_CENTER + np.c_[r * np.cos(t), r * np.sin(t)]
    c = DOT_CENTERS[rng.integers(0, 4, n)]
    return c + rng.normal(0, noise, (n, 2))


def make_synthetic(ctx=None, *, kind: str, n_normal: int = 1000, n_anomalies: int = 50, seed: int = 0):
    cfg = SYNTHETIC[kind]
    if n_normal < 1 or n_anomalies < 0:
        raise ValueError("n_normal must be >= 1 and n_anomalies >= 0")
    rng = np.random.default_rng([seed, list(SYNTHETIC).index(kind)])
    Xn = _normals(kind, n_normal, cfg["noise"], rng)
    out, need = [], n_anomalies
    while need > 0:
        cand = rng.uniform(-BOX, BOX, (max(4 * need, 64), 2))
        cand = cand[cfg["dist"](cand) >= cfg["margin"]][:need]
        out.append(cand)
        need -= len(cand)
    Xa = np.concatenate(out) if out else np.zeros((0, 2))
    X = np.concatenate([Xn, Xa]).astype(np.float32)
    y = np.r_[np.zeros(n_normal, np.int64), np.ones(n_anomalies, np.int64)]
    perm = rng.permutation(len(y))
    return dict(X=X[perm], y=y[perm], feature_names=["x1", "x2"], categorical_groups=[],
                numeric_columns=[0, 1],
                notes=(f"RCGAN (ECAI 2020) section 5.1 synthetic set '{kind}', generated with numpy "
                       f"default_rng([{seed}, {list(SYNTHETIC).index(kind)}]): {n_normal} normal points on a {cfg['desc']}; {n_anomalies} "
                       f"anomalies drawn uniformly from [-3, 3]^2 and kept only if at least "
                       f"{cfg['margin']} away from the normal structure (off the structure, including the "
                       "holes/gaps it encloses). The paper shows the sets only as plots; these "
                       "parameters are advad's reading of its Fig. 3. "))
