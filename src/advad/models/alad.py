"""ALAD — Adversarially Learned Anomaly Detection (Zenati, Romain, Foo, Lecouat, Chandrasekhar; ICDM 2018).

A BiGAN/ALICE with an encoder E, a generator G and three discriminators:
D_xz on (x, z) pairs (real: (x, E(x)); fake: (G(z), z)), D_xx on (x, x') pairs (real: (x, x); fake:
(x, G(E(x))), the cycle-consistency / conditional-entropy term) and D_zz on (z, z') pairs (real:
(z, z); fake: (z, E(G(z)))). Sigmoid cross-entropy on logits; one Adam step of the three
discriminators, then one of G and E (on a fresh batch and fresh noise, as the authors' code does);
inference with exponential-moving-average weights (decay 0.999). See docs/models/alad.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from advad.base import InputError, number_in, one_of, positive_int
from advad.data import list_datasets
from advad.engine import Selector, UpdateStep, bce, eval_mode
from advad.models._torch import TorchDetector, image_budget
from advad.models.registry import register
from advad.nets import (JointDiscriminator, PairDiscriminator, apply_spectral_norm,
                        conv_decoder, conv_encoder, conv_encoder_features, conv_features, dense_block,
                        init_weights, mlp)

SCORES = ("fm", "l1", "l2", "logits")
ARCHITECTURES = ("auto", "kdd", "arrhythmia", "conv")

# Hyper-parameters of the appendix tables (XI: KDD99, XIII: Arrhythmia, IX: CIFAR-10/SVHN).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "kdd": {"latent_dim": 32, "batch_size": 50, "learning_rate": 1e-5, "epochs": 100, "init": "xavier"},
    "arrhythmia": {"latent_dim": 64, "batch_size": 32, "learning_rate": 1e-5, "epochs": 1000, "init": "xavier"},
    "conv": {"latent_dim": 100, "batch_size": 32, "learning_rate": 2e-4, "epochs": 100, "init": "normal"},
}
KDD_MIN_ROWS = 20_000  # tabular training sets at least this large get the KDD99 networks
# `quick` budget on KDD99-sized sets: every row of KDD99's training half (198 300; larger sets are
# subsampled to 200 000), 15 of the paper's 100 epochs at a 10× learning rate, min-max scaled inputs, and the
# epoch with the lowest mean training `fm` score kept (the reference code's early-stopping criterion):
# at lr 1e-4 the test F1 swings between 0.1 and 0.95 from one epoch to the next, and the last epoch
# is a lottery (docs/models/alad.md "Benchmark settings").
KDD_QUICK: dict[str, Any] = {"epochs": 15, "max_train_samples": 200_000, "learning_rate": 1e-4, "ema_warmup": True,
                             "preprocessing": "minmax", "selection": "fm"}


@register("alad")
class ALAD(TorchDetector):
    """Adversarially Learned Anomaly Detection.

    Parameters
    ----------
    contamination : expected anomaly share, sets ``threshold_`` (PyOD convention).
    architecture : ``"auto"`` (by data shape: images → ``"conv"``; tabular training sets with at least
        20 000 rows → ``"kdd"`` (Table XI), smaller ones → ``"arrhythmia"`` (Table XIII)), or one of those.
    latent_dim, batch_size, learning_rate, epochs : ``None`` takes the architecture's table value
        (kdd 32/50/1e-5/100; arrhythmia 64/32/1e-5/1000; conv 100/32/2e-4/100).
    beta1 : Adam β1 (0.5 in every table).
    spectral_norm : spectral normalisation of the discriminators and the encoder (§IV-B; Tables V–VI "SN").
    use_dzz : train the latent discriminator D_zz (Tables V–VI "DL").
    ema_decay : decay of the moving average of the weights used for scoring (0.999); ``None`` scores with
        the raw weights. ``ema_warmup`` uses TensorFlow's ``num_updates`` warm-up (short runs only).
    selection : ``"last"`` (default: score with the last epoch's weights) or a score name: after every
        epoch, the mean of that score over `selection_samples` seeded training rows is computed with the
        moving-average weights, and the epoch with the lowest mean is kept — no labels. The reference
        code's optional early stopping keeps the epoch with the lowest mean ``fm`` on held-out normal
        rows; here the rows come from the training set (nothing is held out). The kept epoch: ``best_epoch_``.
    selection_samples : training rows the selection criterion is computed on (≤ 10 000 by default).
    score : ``"fm"`` (‖f_xx(x,x) − f_xx(x,G(E(x)))‖₁ on D_xx's layer before the logits; default),
        ``"l1"``, ``"l2"`` (‖x − G(E(x))‖), ``"logits"`` (−log D_xx(x, G(E(x)))). Also selectable per call:
        ``decision_function(X, score="l2")`` or all at once with ``score_all(X)``.
    preprocessing : ``"auto"`` (tabular: standardise with the training mean/std; images: map the
        training pixel range to [-1, 1] for the tanh generator), ``"none"`` (the reference code on
        KDD99/Arrhythmia), ``"standard"``, ``"minmax"``, ``"image"``.
    max_train_samples : fit on a seeded random subsample of this many rows (the ``quick`` budget on KDD99).
    min_steps : train at least this many iterations (batches): on a small training set every phase
        (pretraining too) gets its epochs times ``epoch_scale_`` (``None``: exactly ``epochs``). The
        image budgets use it so that a class of offline MNIST (~800 training images) gets the updates
        of the budget's image count.
    init : weight init, ``None`` → the table's (Xavier for tabular, N(0, 0.01²) for conv).
    random_state, device, verbose : seed (same seed ⇒ same scores), ``"auto"``/``"cpu"``/``"cuda"``,
        progress bar on stderr (``True``/``False``/``"auto"`` = when stderr is a terminal).
    checkpoint_dir, checkpoint_every : write a checkpoint every N epochs; ``fit(X, resume=True)``
        continues from it after a crash to the same result as an uninterrupted run.
    score_batch_size : rows per scoring chunk (memory is flat in the number of rows).
    score_dtype : ``"float32"`` (default) or ``"bfloat16"``: the precision of the networks in
        `decision_function`, `score_all`, `encode`, `reconstruct` (training: `train_dtype`). bfloat16
        scores ALAD's KDD99 rows ~1.5× faster on a CPU with AMX (rank correlation ≈ 0.9998 with the
        float32 scores); on CPUs without bfloat16 units it can be slower. See docs/performance.md.
    score_compile : run `decision_function`'s networks and score through `torch.compile` (compiled at the
        first call, ~30 s, for one chunk shape; needs a C++ compiler on CPU). With bfloat16 it
        fuses the casts and activations into the matrix products: ALAD KDD99 ~1.0 M rows/s here.
    train_dtype : ``"float32"`` (default) or ``"bfloat16"``: mixed-precision training, the losses under
        `torch.autocast` (matrix products and convolutions in bfloat16; weights, gradients and
        optimiser states float32). Faster where bfloat16 units exist; changes the fitted result.
    """

    _score_override: ClassVar[str | None] = None  # set for one `decision_function(X, score=...)` call
    score_names: ClassVar[tuple[str, ...]] = SCORES  # what `score_all` returns (RCGAN has its own)
    param_rules = {**TorchDetector.param_rules, "score": one_of(*SCORES), "architecture": one_of(*ARCHITECTURES),
                   "latent_dim": positive_int(), "epochs": positive_int(), "batch_size": positive_int(),
                   "selection": one_of("last", *SCORES), "selection_samples": positive_int(),
                   "ema_decay": number_in(0, 1, high_open=True, optional=True)}

    def __init__(self, contamination: float = 0.1, architecture: str = "auto", latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
                 beta1: float = 0.5, spectral_norm: bool = True, use_dzz: bool = True,
                 ema_decay: float | None = 0.999, ema_warmup: bool = False, selection: str = "last",
                 selection_samples: int = 10_000, score: str = "fm", preprocessing: str = "auto",
                 max_train_samples: int | None = None, min_steps: int | None = None, init: str | None = None,
                 random_state: int | None = None, device: str = "auto", verbose: bool | str = False,
                 checkpoint_dir: str | None = None, checkpoint_every: int = 1, score_batch_size: int = 4096,
                 score_dtype: str = "float32", score_compile: bool = False, train_dtype: str = "float32"):
        self.contamination = contamination
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.spectral_norm = spectral_norm
        self.use_dzz = use_dzz
        self.ema_decay = ema_decay
        self.ema_warmup = ema_warmup
        self.selection = selection
        self.selection_samples = selection_samples
        self.score = score
        self.preprocessing = preprocessing
        self.max_train_samples = max_train_samples
        self.min_steps = min_steps
        self.init = init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.score_batch_size = score_batch_size
        self.score_dtype = score_dtype
        self.score_compile = score_compile
        self.train_dtype = train_dtype

    # ------------------------------------------------------------------ parameters
    @classmethod
    def bench_params(cls, dataset: Any, budget: str) -> dict:
        """Per budget (documented in docs/models/alad.md with measured times and F1):

        - ``paper``: the appendix tables (KDD99 100 epochs, batch 50; Arrhythmia 1000 epochs, batch 32);
          Thyroid and Musk, which the paper does not run, get the Arrhythmia networks and settings
          with 100 epochs (≈ 5 000 optimiser steps, close to Arrhythmia's 1000 epochs × 6 batches).
        - ``quick``: KDD99 15 epochs at lr 1e-4 (see ``KDD_QUICK``); Arrhythmia as ``paper``;
          Thyroid/Musk 100 epochs; images on 1 500 training images for 3 epochs.
        - ``quick`` on the embedded demo sets (breast-cancer, digits, loop, arc, four-dot): about 300
          optimiser steps a run, so that `advad bench` with no arguments stays within minutes.
        - ``smoke``: a few seconds.

        Input scaling and score (both options of the reference code / the paper, chosen in
        docs/models/alad.md "Benchmark settings"): the KDD99-sized sets are min-max scaled (the
        reference code's optional ``scale``), the small tabular sets (Arrhythmia networks) use the
        paper's Table II Arrhythmia configuration without D_zz (Table V "Baseline + SN") and the
        ``l1`` score (Table VII).
        """
        shape = tuple(dataset.X.shape)
        name = getattr(dataset, "name", "")
        image = len(shape) >= 3
        big = not image and shape[0] >= 2 * KDD_MIN_ROWS
        small = {"use_dzz": False, "score": "l1"}  # Arrhythmia networks: Table V "Baseline + SN", Table VII L1
        if budget == "smoke":
            return {"epochs": 2 if image else 3, "max_train_samples": 512 if image else 2000,
                    "ema_warmup": True}
        if budget == "quick":
            if name in list_datasets(embedded=True):  # the no-argument `advad bench` demo: ~300 steps a run
                return {"epochs": max(1, round(300 * 32 / (shape[0] / 2))), "ema_warmup": True}
            if image:
                return image_budget(3, 1500, ARCH_DEFAULTS["conv"]["batch_size"], ema_warmup=True)
            if big:
                return dict(KDD_QUICK)
            if name == "arrhythmia" or shape[0] < 1000:
                return {"epochs": 1000, **small}
            return {"epochs": 100, "ema_warmup": True, **small}
        if budget == "paper":
            if image:
                return {}
            if big:
                return {"preprocessing": "minmax"}
            if name == "arrhythmia" or shape[0] < 1000:
                return dict(small)
            return {"epochs": 100, **small}
        raise ValueError(f"unknown budget {budget!r}")

    # ------------------------------------------------------------------ networks
    def _network_config(self, X: np.ndarray) -> dict:
        arch = choose_architecture(self.architecture, X)
        table = ARCH_DEFAULTS[arch]
        pick = lambda name: getattr(self, name) if getattr(self, name) is not None else table[name]  # noqa: E731
        return {"architecture": arch, "input_shape": list(X.shape[1:]), "latent_dim": int(pick("latent_dim")),
                "spectral_norm": bool(self.spectral_norm), "use_dzz": bool(self.use_dzz),
                "init": pick("init"), "epochs": int(pick("epochs")), "batch_size": int(pick("batch_size")),
                "learning_rate": float(pick("learning_rate"))}

    def _build_networks(self, config: dict) -> dict[str, nn.Module]:
        arch, shape, k = config["architecture"], config["input_shape"], config["latent_dim"]
        if arch == "conv":
            nets = _conv_networks(shape, k)
        else:
            nets = _tabular_networks(arch, shape[0], k)
        if not config["use_dzz"]:
            del nets["dzz"]
        for name, net in nets.items():
            init_weights(net, config["init"], std=0.01)
            if config["spectral_norm"] and name != "G":
                apply_spectral_norm(net)
        return nets

    def _schedule(self, config: dict) -> tuple[int, int]:
        return config["epochs"], config["batch_size"]

    def _ema(self, config: dict) -> dict[str, float]:
        if self.ema_decay is None:
            return {}
        return {name: float(self.ema_decay) for name in ("E", "G", "dxz", "dxx", "dzz")
                if name != "dzz" or config["use_dzz"]}

    def _selector(self, config: dict, X: torch.Tensor) -> Selector | None:
        """``selection`` = a score name: keep the epoch whose moving-average networks give the lowest mean
        score on a seeded sample of the training rows (the reference code's early-stopping criterion)."""
        if self.selection == "last":
            return None
        probe, kinds = self._selection_rows(X), (self.selection,)
        n = len(probe)

        def mean_score(trainer) -> float:
            nets = {name: trainer.inference_network(name) for name in trainer.networks}
            with eval_mode(*nets.values()), torch.inference_mode():
                total = sum(float(self._scores_tensor(nets, probe[i:i + 4096], kinds)[0].double().sum())
                            for i in range(0, n, 4096))
            return total / n

        return Selector(mean_score, start_epoch=1, mode="min")

    def _update_steps(self, nets: dict[str, nn.Module], generator: torch.Generator, config: dict) -> list[UpdateStep]:
        E, G, dxz, dxx = nets["E"], nets["G"], nets["dxz"], nets["dxx"]
        dzz = nets.get("dzz")
        k, lr, betas = config["latent_dim"], config["learning_rate"], (self.beta1, 0.999)

        def noise(n: int, like: torch.Tensor) -> torch.Tensor:
            return torch.randn(n, k, generator=generator, device=generator.device).to(like.device)

        def discriminator_loss(x: torch.Tensor):
            z = noise(len(x), x)
            with torch.no_grad():
                z_enc = E(x)
                x_gen = G(z)
                x_rec = G(z_enc)
            l_enc, _ = dxz(x, z_enc)
            l_gen, _ = dxz(x_gen, z)
            loss_xz = bce(l_enc, 1.0) + bce(l_gen, 0.0)
            real_xx, _ = dxx(x, x)
            fake_xx, _ = dxx(x, x_rec)
            loss_xx = bce(real_xx, 1.0) + bce(fake_xx, 0.0)
            logs = {"xz": loss_xz.detach(), "xx": loss_xx.detach()}
            loss = loss_xz + loss_xx
            if dzz is not None:
                with torch.no_grad():
                    z_rec = E(x_gen)
                real_zz, _ = dzz(z, z)
                fake_zz, _ = dzz(z, z_rec)
                loss_zz = bce(real_zz, 1.0) + bce(fake_zz, 0.0)
                logs["zz"] = loss_zz.detach()
                loss = loss + loss_zz
            return loss, logs

        def generator_encoder_loss(x: torch.Tensor):
            z = noise(len(x), x)
            z_enc = E(x)
            x_gen = G(z)
            x_rec = G(z_enc)
            l_enc, _ = dxz(x, z_enc)
            l_gen, _ = dxz(x_gen, z)
            # non-saturating: G wants D_xz to call (G(z), z) real, E wants (x, E(x)) called fake
            adv = bce(l_gen, 1.0) + bce(l_enc, 0.0)
            # cycle terms: (x, G(E(x))) should look like the real pair (x, x). The reference code's
            # matching term on the real pair (x, x) / (z, z) has no gradient for G and E and is omitted.
            fake_xx, _ = dxx(x, x_rec)
            cost_x = bce(fake_xx, 1.0)
            loss = adv + cost_x
            logs = {"adv": adv.detach(), "cycle_x": cost_x.detach()}
            if dzz is not None:
                fake_zz, _ = dzz(z, E(x_gen))
                cost_z = bce(fake_zz, 1.0)
                logs["cycle_z"] = cost_z.detach()
                loss = loss + cost_z
            return loss, logs

        d_names = ["dxz", "dxx"] + (["dzz"] if dzz is not None else [])
        d_params = [p for n in d_names for p in nets[n].parameters()]
        ge_params = list(E.parameters()) + list(G.parameters())
        return [
            UpdateStep("D", discriminator_loss, torch.optim.Adam(d_params, lr=lr, betas=betas), d_names),
            UpdateStep("GE", generator_encoder_loss, torch.optim.Adam(ge_params, lr=lr, betas=betas), ["G", "E"]),
        ]

    # ------------------------------------------------------------------ scoring
    def _fitted_score(self) -> str:
        """The score `threshold_` and `predict` use."""
        return self.score

    def _score_tensor(self, nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        return self._scores_tensor(nets, x, (self._score_override or self._fitted_score(),))[0]

    @staticmethod
    def _scores_tensor(nets: dict[str, nn.Module], x: torch.Tensor, kinds: tuple[str, ...]) -> list[torch.Tensor]:
        x_rec = nets["G"](nets["E"](x))
        out = []
        feats = logits = None
        if "fm" in kinds or "logits" in kinds:
            _, f_real = nets["dxx"](x, x)
            logits, f_fake = nets["dxx"](x, x_rec)
            feats = (f_real - f_fake).abs().sum(dim=1)
        diff = (x - x_rec).flatten(1)
        for kind in kinds:
            if kind == "fm":
                out.append(feats)
            elif kind == "l1":
                out.append(diff.abs().sum(dim=1))
            elif kind == "l2":
                out.append(diff.pow(2).sum(dim=1).sqrt())
            elif kind == "logits":
                out.append(F.softplus(-logits))  # −log D_xx(x, G(E(x))): low "real" probability = anomalous
            else:
                raise InputError(f"score must be one of {SCORES}; got {kind!r}")
        return out

    def decision_function(self, X: Any, score: str | None = None) -> np.ndarray:
        """Anomaly scores of X (higher = more anomalous) with the fitted score, or for this call another
        of `score_names` (``threshold_`` and ``predict`` always use the fitted score)."""
        if score is not None and score not in self.score_names:
            raise InputError(f"score must be one of {self.score_names}; got {score!r}")
        self._score_override = score
        try:
            return super().decision_function(X)
        finally:
            del self._score_override

    def discriminator_outputs(self, X: Any) -> dict[str, np.ndarray]:
        """Probabilities that the discriminators call x normal, ``{"dxz": D_xz(x, E(x)), "dxx":
        D_xx(x, G(E(x)))}`` (the maps of RCGAN Fig. 3; higher = more confident that x is normal)."""
        def probabilities(nets: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
            z = nets["E"](x)
            l_xz, _ = nets["dxz"](x, z)
            l_xx, _ = nets["dxx"](x, nets["G"](z))
            return torch.stack([torch.sigmoid(l_xz.double()), torch.sigmoid(l_xx.double())], dim=1)

        out = self._apply(X, probabilities)
        return {"dxz": out[:, 0], "dxx": out[:, 1]}

    def score_all(self, X: Any) -> dict[str, np.ndarray]:
        """Every score of X in one pass, e.g. ``{"fm": ..., "l1": ..., "l2": ..., "logits": ...}``."""
        kinds = self.score_names
        stacked = self._apply(X, lambda nets, xb: torch.stack(self._scores_tensor(nets, xb, kinds), dim=1))
        return {kind: stacked[:, i] for i, kind in enumerate(kinds)}


# --------------------------------------------------------------------------- architectures
def choose_architecture(requested: str, X: np.ndarray) -> str:
    """ALAD's rule (also AnoGAN's): images → "conv"; tabular sets of ≥ `KDD_MIN_ROWS` rows → "kdd"
    (Table XI), smaller ones → "arrhythmia" (Table XIII); an explicit choice must fit the data."""
    image = X.ndim == 4
    arch = requested if requested != "auto" else ("conv" if image else
                                                  ("kdd" if len(X) >= KDD_MIN_ROWS else "arrhythmia"))
    if (arch == "conv") != image:
        raise InputError(f"architecture {arch!r} does not fit data of per-sample shape {X.shape[1:]}")
    return arch


def _tabular_networks(arch: str, d: int, k: int) -> dict[str, nn.Module]:
    """Tables XI (KDD99) and XIII (Arrhythmia); LeakyReLU slope 0.2."""
    if arch == "kdd":
        enc_w, gen_w, joint_w, xx_w, zz_w = [64], [64, 128], 128, [128], [32]
    else:
        enc_w, gen_w, joint_w, xx_w, zz_w = [256, 128], [128, 256], 256, [256, 128], [64, 32]
    E = mlp(d, enc_w, k, act="lrelu")
    G = mlp(k, gen_w, d, act="relu")
    dxz = JointDiscriminator(
        x_branch=dense_block(d, 128, act="lrelu", batch_norm=True),
        z_branch=dense_block(k, 128, act="lrelu", dropout=0.5),
        joint=dense_block(256, joint_w, act="lrelu", dropout=0.5),
        n_features=joint_w)
    dxx = PairDiscriminator(mlp(2 * d, xx_w, act="lrelu", dropout=0.2), xx_w[-1])
    dzz = PairDiscriminator(mlp(2 * k, zz_w, act="lrelu", dropout=0.2), zz_w[-1])
    return {"E": E, "G": G, "dxz": dxz, "dxx": dxx, "dzz": dzz}


def _conv_networks(shape: list[int], k: int) -> dict[str, nn.Module]:
    """Table IX (32×32 colour: 128-256-512 channels, z-branch 512, joint 1024, D_xx 64-128) and its
    28×28 single-channel variant at half width (32-64-128 channels, z-branch 256, joint 512, D_xx
    32-64; a 3×3 stride-2 layer takes 7×7 to 4×4) — a quarter of the compute, which is what makes
    Fashion-MNIST runs feasible on a CPU."""
    size = shape[1]
    if size >= 32:
        widths, z_w, joint_w, xx_w = (128, 256, 512), 512, 1024, (64, 128)
    else:
        widths, z_w, joint_w, xx_w = (32, 64, 128), 256, 512, (32, 64)
    E = conv_encoder(shape, k, widths, batch_norm=True)
    G = conv_decoder(k, shape, tuple(reversed(widths)), out_act="tanh")
    x_branch = conv_encoder(shape, None, widths, batch_norm=[False, True, True])
    n_x = conv_encoder_features(shape, widths)
    z_branch = mlp(k, [z_w, z_w], act="lrelu", dropout=0.5)  # 1×1 "convs" on a 1×1 z = dense layers
    dxz = JointDiscriminator(x_branch, z_branch, dense_block(n_x + z_w, joint_w, act="lrelu", dropout=0.5), joint_w)
    body, n_feat = conv_features([2 * shape[0], *shape[1:]], xx_w, kernel=5, dropout=0.5)
    dxx = PairDiscriminator(body, n_feat)
    dzz = PairDiscriminator(mlp(2 * k, [64, 32], act="lrelu", dropout=0.5), 32)
    return {"E": E, "G": G, "dxz": dxz, "dxx": dxx, "dzz": dzz}
