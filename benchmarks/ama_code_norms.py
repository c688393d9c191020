"""Where AMA's codes lie, and where each Atypical Selection variant draws its negatives (issue 5).

The paper samples negatives between the spheres √d and √d ± δ because "most of the training samples'
encodings are close to √d in magnitude" (AMA §3.2). This fits AMA on the training split of `--dataset`
with the `--budget` settings `advad bench` would use (OOD protocol split, as
`--protocol ood --protocol-param against=AGAINST`), then prints as JSON the percentiles of ‖E(x)‖ for
the training rows, the normal test rows and the anomalous (`--against`) test rows, beside √d and the
radii each `atypical` kind draws (`advad.models.ama.atypical_latents`).

    python benchmarks/ama_code_norms.py --dataset fashion-mnist --against mnist --seed 0 \
        --param train_dtype=bfloat16
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from advad.cli import _parse_params
from advad.data import load_dataset
from advad.models.ama import AMA, atypical_latents
from advad.protocols import _class_split

PERCENTILES = (5, 25, 50, 75, 95)


def norm_percentiles(codes: np.ndarray) -> dict[str, float]:
    norms = np.linalg.norm(codes.reshape(len(codes), -1), axis=1)
    return {f"p{q}": round(float(np.percentile(norms, q)), 4) for q in PERCENTILES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--against", default="mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--n-eval", type=int, default=2000, help="rows of each set whose codes are measured")
    ap.add_argument("--param", action="append", default=[], help="KEY=JSON_VALUE, as advad bench --param")
    args = ap.parse_args()

    data, other = load_dataset(args.dataset), load_dataset(args.against)
    train, test, _ = _class_split(data, args.seed, 0.2)
    _, other_test, _ = _class_split(other, args.seed, 0.2)
    params = {**AMA.bench_params(data, args.budget), **_parse_params(args.param), "random_state": args.seed}
    start = time.perf_counter()
    det = AMA(**params).fit(data.X[train])
    fit_seconds = time.perf_counter() - start

    rng = np.random.default_rng(args.seed)
    codes = {"train": det.encode(data.X[sample(train, rng, args.n_eval)]),
             "test_normal": det.encode(data.X[sample(test, rng, args.n_eval)]),
             "test_anomalous": det.encode(other.X[sample(other_test, rng, args.n_eval)])}
    z = torch.from_numpy(codes["train"].reshape(len(codes["train"]), -1)).float()
    dim = z.shape[1]
    negatives = {}
    for name in ("inward/sqrt_d", "inward/data", "outward/sqrt_d", "outward/data", "cube/sqrt_d", "cube/data",
                 "scaled"):  # "scaled" ignores the radius
        kind, _, radius = name.partition("/")
        z_neg = atypical_latents(z, kind, float(params.get("atypical_delta", 0.5)), radius or "sqrt_d",
                                 torch.Generator().manual_seed(args.seed))
        negatives[name] = norm_percentiles(z_neg.numpy())
    print(json.dumps({"dataset": args.dataset, "against": args.against, "seed": args.seed, "budget": args.budget,
                      "params": params, "fit_seconds": round(fit_seconds, 1), "latent_dim": dim,
                      "sqrt_d": round(math.sqrt(dim), 4),
                      "code_norms": {k: norm_percentiles(v) for k, v in codes.items()},
                      "negative_norms": negatives}, indent=1))


def sample(rows: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))


if __name__ == "__main__":
    main()
