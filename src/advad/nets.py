"""Network zoo shared by every advad method: MLP blocks, DCGAN-style conv encoders/decoders,
discriminators that also return their feature layer, weight initialisation, spectral norm, and the
bias-free LeNet-type networks of Deep SVDD (shared with its autoencoder baseline).

Everything here is plain `torch.nn`; nothing knows about training. Builders take the data shape so a
method can pick networks for tabular rows `(d,)`, 28×28 single-channel and 32×32 colour images alike.

Conventions
- Activations: ``"lrelu"`` (slope given by ``slope``, 0.2 in the papers), ``"relu"``, ``"tanh"``,
  ``"sigmoid"``, ``None``.
- A *block* is Linear/Conv → [BatchNorm] → activation → [Dropout], the order of the ALAD tables.
- Discriminators return ``(logits, features)`` where ``features`` is the layer before the logits
  (ALAD's "CNN codes", MAESI's penultimate critic layer) flattened to ``(n, k)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch
from torch import nn

__all__ = [
    "activation", "dense_block", "mlp", "FeatureDiscriminator", "PairDiscriminator", "JointDiscriminator",
    "conv_plan", "conv_encoder", "conv_decoder", "conv_features", "init_weights", "apply_spectral_norm",
    "View", "EncoderDecoder", "lenet_architecture", "lenet_encoder", "lenet_decoder",
]


# --------------------------------------------------------------------------- small pieces
def activation(name: str | None, slope: float = 0.2) -> nn.Module:
    """The activation called `name` (``None`` → identity)."""
    if name is None or name == "none":
        return nn.Identity()
    table: dict[str, Callable[[], nn.Module]] = {
        "lrelu": lambda: nn.LeakyReLU(slope), "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
        "elu": nn.ELU, "gelu": nn.GELU,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(table)} or None")
    return table[name]()


class View(nn.Module):
    """Reshape to ``(n, *shape)``; ``View(-1)`` flattens."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _per_layer(value, n: int, what: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what} has {len(value)} entries for {n} layers")
        return list(value)
    return [value] * n


def dense_block(in_features: int, out_features: int, *, act: str | None = "lrelu", slope: float = 0.2,
                batch_norm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear → [BatchNorm1d] → activation → [Dropout]."""
    layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    layers.append(activation(act, slope))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mlp(in_features: int, widths: Sequence[int], out_features: int | None = None, *,
        act: str | None = "lrelu", slope: float = 0.2, batch_norm: bool | Sequence[bool] = False,
        dropout: float | Sequence[float] = 0.0, out_act: str | None = None) -> nn.Sequential:
    """Stack of `dense_block`s of the given widths, then an optional plain output Linear (+ `out_act`).

    `batch_norm` and `dropout` are one value for every hidden layer or one per hidden layer.
    """
    bns = _per_layer(batch_norm, len(widths), "batch_norm")
    drops = _per_layer(dropout, len(widths), "dropout")
    layers: list[nn.Module] = []
    prev = in_features
    for width, bn, drop in zip(widths, bns, drops):
        layers.append(dense_block(prev, width, act=act, slope=slope, batch_norm=bn, dropout=drop))
        prev = width
    if out_features is not None:
        layers.append(nn.Linear(prev, out_features))
        if out_act is not None:
            layers.append(activation(out_act, slope))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- discriminators
class FeatureDiscriminator(nn.Module):
    """``body`` (ending in a flat feature layer of `n_features` units) + a linear ``head`` to one logit.

    ``forward(x) -> (logits (n,), features (n, n_features))``.
    """

    def __init__(self, body: nn.Module, n_features: int, n_out: int = 1):
        super().__init__()
        self.body = body
        self.head = nn.Linear(n_features, n_out)
        self.n_features = n_features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(x).flatten(1)
        logits = self.head(feats)
        return (logits.squeeze(1) if logits.shape[1] == 1 else logits), feats


class PairDiscriminator(FeatureDiscriminator):
    """Discriminator of pairs ``(a, b)``: concatenated along dim 1 (features for vectors, channels for
    images) and passed through `body`. ALAD's D_xx and D_zz, MAESI's mirrored critic."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(torch.cat([a, b], dim=1))


class JointDiscriminator(nn.Module):
    """BiGAN discriminator D(x, z): separate `x_branch` and `z_branch`, outputs flattened and
    concatenated, then `joint` layers ending in `n_features` units and a linear head."""

    def __init__(self, x_branch: nn.Module, z_branch: nn.Module, joint: nn.Module, n_features: int):
        super().__init__()
        self.x_branch = x_branch
        self.z_branch = z_branch
        self.joint = joint
        self.head = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.x_branch(x).flatten(1), self.z_branch(z).flatten(1)], dim=1)
        feats = self.joint(h)
        return self.head(feats).squeeze(1), feats


# --------------------------------------------------------------------------- DCGAN-style convs
def conv_plan(size: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of the stride-2 convolutions taking a `size`×`size` image to 4×4.

    Even sizes halve with 4×4 kernels (32→16→8→4, the DCGAN layout of ALAD Table IX); odd sizes use a
    3×3 kernel (7→4), so 28→14→7→4. The transposed convolutions of `conv_decoder` run it backwards.
    """
    if size < 4:
        raise ValueError(f"images must be at least 4×4 pixels; got {size}")
    plan = []
    while size > 4:
        if size % 2 == 0:
            plan.append((4, 2, 1))
            size //= 2
        else:
            plan.append((3, 2, 1))
            size = (size + 1) // 2
    return plan


def _check_image_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"convolutional networks need square images (C, H, H); got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def conv_encoder(in_shape: Sequence[int], out_features: int | None, widths: Sequence[int] = (128, 256, 512), *,
                 act: str = "lrelu", slope: float = 0.2, batch_norm: bool | Sequence[bool] = True,
                 dropout: float | Sequence[float] = 0.0) -> nn.Sequential:
    """DCGAN encoder: stride-2 convs down to 4×4 (`conv_plan`), then a 4×4 'valid' conv to
    `out_features` channels, flattened to ``(n, out_features)``. With ``out_features=None`` it stops
    at the 4×4 feature map, flattened (a discriminator x-branch).

    `widths` gives the channels of the stride-2 layers; if the plan needs more layers than widths the
    last width repeats, if fewer the first widths are used.
    """
    channels, size = _check_image_shape(in_shape)
    plan = conv_plan(size)
    widths = [widths[min(i, len(widths) - 1)] for i in range(len(plan))]
    bns = _per_layer(batch_norm, len(plan), "batch_norm")
    drops = _per_layer(dropout, len(plan), "dropout")
    layers: list[nn.Module] = []
    prev = channels
    for (k, s, p), width, bn, drop in zip(plan, widths, bns, drops):
        layers.append(nn.Conv2d(prev, width, k, s, p))
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers.append(activation(act, slope))
        if drop > 0:
            layers.append(nn.Dropout(drop))
        prev = width
    if out_features is not None:
        layers.append(nn.Conv2d(prev, out_features, 4, 1, 0))  # 4×4 → 1×1 ('valid')
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def conv_encoder_features(in_shape: Sequence[int], widths: Sequence[int] = (128, 256, 512)) -> int:
    """Number of flat features `conv_encoder(..., out_features=None)` produces."""
    _, size = _check_image_shape(in_shape)
    n = len(conv_plan(size))
    return widths[min(n - 1, len(widths) - 1)] * 16


def conv_decoder(latent_dim: int, out_shape: Sequence[int], widths: Sequence[int] = (512, 256, 128), *,
                 act: str = "relu", batch_norm: bool = True, out_act: str | None = "tanh") -> nn.Sequential:
    """DCGAN generator: ``(n, latent_dim)`` → 4×4 'valid' transposed conv → stride-2 transposed convs
    (`conv_plan` reversed) → ``(n, C, H, W)`` through `out_act` (tanh: data scaled to [-1, 1])."""
    channels, size = _check_image_shape(out_shape)
    plan = list(reversed(conv_plan(size)))
    widths = [widths[min(i, len(widths) - 1)] for i in range(len(plan))]
    layers: list[nn.Module] = [View(latent_dim, 1, 1), nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(widths[0]))
    layers.append(activation(act))
    for i, (k, s, p) in enumerate(plan):
        last = i == len(plan) - 1
        out_ch = channels if last else widths[i + 1]
        layers.append(nn.ConvTranspose2d(widths[i], out_ch, k, s, p))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(activation(act))
    if out_act is not None:
        layers.append(activation(out_act))
    return nn.Sequential(*layers)


def conv_features(in_shape: Sequence[int], widths: Sequence[int] = (64, 128), *, kernel: int = 5,
                  act: str = "lrelu", slope: float = 0.2, batch_norm: bool | Sequence[bool] = False,
                  dropout: float | Sequence[float] = 0.0) -> tuple[nn.Sequential, int]:
    """Stride-2 'same' convs (ALAD's D_xx: 5×5, 64 then 128 channels) ending flattened.

    Returns the module and its number of output features.
    """
    channels, size = _check_image_shape(in_shape)
    bns = _per_layer(batch_norm, len(widths), "batch_norm")
    drops = _per_layer(dropout, len(widths), "dropout")
    layers: list[nn.Module] = []
    prev = channels
    for width, bn, drop in zip(widths, bns, drops):
        layers.append(nn.Conv2d(prev, width, kernel, 2, kernel // 2))
        size = (size + 2 * (kernel // 2) - kernel) // 2 + 1
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers.append(activation(act, slope))
        if drop > 0:
            layers.append(nn.Dropout(drop))
        prev = width
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), prev * size * size


# --------------------------------------------------------------------------- init and spectral norm
def init_weights(module: nn.Module, scheme: str = "xavier", std: float = 0.02) -> nn.Module:
    """Initialise every Linear/Conv weight: ``"xavier"`` (Glorot uniform, TF's default and the ALAD
    tabular tables), ``"normal"`` (N(0, std²); ALAD Table IX uses std 0.01), ``"torch"`` (leave
    PyTorch's default). Biases are set to 0; BatchNorm to weight 1, bias 0."""
    if scheme == "torch":
        return module
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "normal":
                nn.init.normal_(m.weight, 0.0, std)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}: xavier, normal or torch")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def apply_spectral_norm(module: nn.Module, *, skip: Sequence[nn.Module] = ()) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every Linear/Conv weight of `module`, through
    ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training forward; the
    u/v vectors are buffers, so they are saved, averaged and restored with the state dict)."""
    from torch.nn.utils.parametrizations import spectral_norm

    skip_ids = {id(m) for m in skip}
    targets = [m for m in module.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d)) and id(m) not in skip_ids]
    for m in targets:
        spectral_norm(m, dim=1 if isinstance(m, nn.ConvTranspose2d) else 0)
    return module


class EncoderDecoder(nn.Module):
    """``decoder(encoder(x))`` with both parts reachable by name (autoencoders, their pretraining)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# --------------------------------------------------------------------------- Deep SVDD's LeNet networks
LENET_BN_EPS = 1e-4  # batch norm ε of the Deep SVDD networks
LENET_SLOPE = 0.01   # their LeakyReLU slope (PyTorch's default)


def _bias_free_bn(width: int, conv: bool) -> nn.Module:
    return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(width, eps=LENET_BN_EPS, affine=False)


def lenet_architecture(shape: list[int]) -> dict:
    """Deep SVDD (Ruff et al. 2018) §4.1: LeNet-type CNNs — 28×28: two 5×5 conv modules of 8 and 4
    channels, 32 output units; 32×32: three modules of 32, 64, 128 channels, 128 units. Tabular rows
    (the Deep SAD follow-up's ODDS networks): d ≥ 100 features: 128-64 → 32; fewer: 32-16 → 8."""
    if len(shape) == 3:
        return {"widths": [32, 64, 128], "rep_dim": 128} if shape[1] >= 32 else {"widths": [8, 4], "rep_dim": 32}
    return {"widths": [128, 64], "rep_dim": 32} if shape[0] >= 100 else {"widths": [32, 16], "rep_dim": 8}


def lenet_encoder(shape: list[int], widths: list[int], rep_dim: int) -> tuple[nn.Sequential, list[int]]:
    """Bias-free φ of Deep SVDD; for images also the spatial size before each 2×2 max-pool (the decoder's targets)."""
    layers: list[nn.Module] = []
    if len(shape) == 1:
        prev = shape[0]
        for w in widths:
            layers += [nn.Linear(prev, w, bias=False), _bias_free_bn(w, False), nn.LeakyReLU(LENET_SLOPE)]
            prev = w
        layers.append(nn.Linear(prev, rep_dim, bias=False))
        return nn.Sequential(*layers), []
    prev, size, sizes = shape[0], shape[1], []
    for w in widths:
        layers += [nn.Conv2d(prev, w, 5, padding=2, bias=False), _bias_free_bn(w, True), nn.LeakyReLU(LENET_SLOPE), nn.MaxPool2d(2)]
        sizes.append(size)
        prev, size = w, size // 2
    layers += [nn.Flatten(), nn.Linear(prev * size * size, rep_dim, bias=False)]
    return nn.Sequential(*layers), sizes


def lenet_decoder(shape: list[int], widths: list[int], rep_dim: int, sizes: list[int]) -> nn.Sequential:
    """Mirror of `lenet_encoder` for the autoencoder pretraining (upsampling + 5×5 convs for images)."""
    if len(shape) == 1:
        layers: list[nn.Module] = []
        prev = rep_dim
        for w in reversed(widths):
            layers += [nn.Linear(prev, w, bias=False), _bias_free_bn(w, False), nn.LeakyReLU(LENET_SLOPE)]
            prev = w
        layers.append(nn.Linear(prev, shape[0], bias=False))
        return nn.Sequential(*layers)
    size = sizes[-1] // 2
    layers = [nn.Linear(rep_dim, widths[-1] * size * size, bias=False), View(widths[-1], size, size),
              _bias_free_bn(widths[-1], True), nn.LeakyReLU(LENET_SLOPE)]
    outs = [*reversed(widths[:-1]), shape[0]]
    for i, (target, out) in enumerate(zip(reversed(sizes), outs)):
        layers += [nn.Upsample(size=(target, target)), nn.Conv2d(widths[-1 - i], out, 5, padding=2, bias=False)]
        if i < len(sizes) - 1:
            layers += [_bias_free_bn(out, True), nn.LeakyReLU(LENET_SLOPE)]
    layers.append(nn.Tanh())  # image inputs are scaled to [-1, 1]
    return nn.Sequential(*layers)
