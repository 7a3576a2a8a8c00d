"""The dequantizer's networks (METHOD.md section 3): a residual generator and a DCGAN-like critic.

Both are plain ``torch.nn.Module`` s.  The generator predicts the quantization
residual ``J - Jt`` of a re-exposed image ``Jt``; the restored image is
``Jt + G(Jt)``.  Conditioned, it also receives the per-pixel quantization step
of its input (``Quantization.interval_width``), so one model serves every light
level and bit depth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig

__all__ = ["ARCHITECTURES", "NORMS", "Discriminator", "Generator", "ResidualUnit",
           "UNetGenerator", "build_generator", "flops_per_pixel", "interval_output"]


class ResidualUnit(nn.Module):
    """conv3x3 - BN - ReLU - conv3x3 - BN, plus the identity."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """Head conv, ``depth`` residual units, tail conv predicting the residual ``J - Jt``.

    Parameters
    ----------
    channels : int
        Image channels (1 gray, 3 RGB); colour models see all channels at once.
    depth : int
        Residual units (default: :class:`~.config.TrainConfig`'s, the shipped residual
        models' 6; the paper: 16).
    width : int
        Feature channels (default: :class:`~.config.TrainConfig`'s, 32; the paper: 64).
    conditioned : bool
        Take one more input channel: the per-pixel quantization step, in the
        image's units.
    context_sigmas : tuple of float
        Gaussian scales, pixels, of wide-context input channels (v2): for each
        ``s``, ``(G_s * Jt - Jt) / step`` (clipped), the image smoothed at scale ``s``
        relative to itself in units of the step.  A dark capture's bands are wider than
        the residual units can see (8 levels for a whole k = 1/30 image); these channels
        tell each pixel where it sits in its band at a cost of a few operations per
        pixel.  Needs ``conditioned``.  Empty: the v1 network.

    The receptive field is ``2 * (2 * depth + 2 + context radius) + 1`` pixels, the
    context radius being ``ceil(3 * max(context_sigmas))``: tiled inference needs a
    halo of at least half of it.
    """

    architecture = "residual"
    #: Gaussian truncation, in standard deviations (the kernel's radius is 3 sigma).
    CONTEXT_TRUNCATE = 3.0
    #: Context channels are clipped to this many quantization steps (then scaled by 1/4).
    CONTEXT_CLIP = 16.0

    def __init__(self, channels: int = 1, depth: int = TrainConfig.depth,
                 width: int = TrainConfig.width, conditioned: bool = True, context_sigmas=()):
        super().__init__()
        context_sigmas = tuple(float(s) for s in context_sigmas)
        if channels < 1 or depth < 0 or width < 1:
            raise ValueError(f"bad generator size: channels={channels}, depth={depth}, "
                             f"width={width}")
        if any(not (0.5 <= s <= 64) for s in context_sigmas):
            raise ValueError(f"context sigmas must lie in [0.5, 64] px, got {context_sigmas}")
        if context_sigmas and not conditioned:
            raise ValueError("context channels are in units of the step: needs conditioned")
        self.channels, self.depth, self.width = channels, depth, width
        self.conditioned = conditioned
        self.context_sigmas = context_sigmas
        for index, sigma in enumerate(context_sigmas):
            self.register_buffer(f"_kernel{index}", _gaussian_kernel(sigma, self.CONTEXT_TRUNCATE),
                                 persistent=False)
        inputs = channels + (1 if conditioned else 0) + channels * len(context_sigmas)
        self.head = nn.Sequential(nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(inplace=True))
        self.units = nn.Sequential(*(ResidualUnit(width) for _ in range(depth)))
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        # Start as the identity (zero residual): the re-exposed image is already a good,
        # interval-consistent estimate, and training then only has to learn improvements.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def context_radius(self) -> int:
        """Radius, pixels, of the widest context kernel (0 without context)."""
        return max((len(self._kernel(i)) // 2 for i in range(len(self.context_sigmas))),
                   default=0)

    @property
    def receptive_field(self) -> int:
        """Side, pixels, of the input window one output pixel depends on."""
        return 2 * (2 * self.depth + 2 + self.context_radius) + 1

    @property
    def network_receptive_field(self) -> int:
        """Receptive field of the convolutions alone (the context channels precomputed)."""
        return 2 * (2 * self.depth + 2) + 1

    def _kernel(self, index: int) -> torch.Tensor:
        return getattr(self, f"_kernel{index}")

    def context_features(self, image: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The wide-context input channels for ``image`` (N, C, H, W), computed once for a
        whole plane so tiles need only the convolutions' halo (N, C * scales, H, W)."""
        step = step.clamp(min=1e-6)
        return torch.cat(self._context(image, step), dim=1)

    def _context(self, image: torch.Tensor, step: torch.Tensor) -> list[torch.Tensor]:
        """``(G_s * image - image) / step`` for each context scale, clipped and scaled."""
        planes = image.shape[1]
        out = []
        for index in range(len(self.context_sigmas)):
            kernel = self._kernel(index).to(image.dtype)
            radius = len(kernel) // 2
            # reflect padding needs the pad below the side: replicate is the safe choice
            # for small tiles, and it is what scipy calls "nearest"
            smooth = F.pad(image, (radius, radius, 0, 0), mode="replicate")
            smooth = F.conv2d(smooth, kernel.view(1, 1, 1, -1).expand(planes, 1, 1, -1),
                              groups=planes)
            smooth = F.pad(smooth, (0, 0, radius, radius), mode="replicate")
            smooth = F.conv2d(smooth, kernel.view(1, 1, -1, 1).expand(planes, 1, -1, 1),
                              groups=planes)
            relative = ((smooth - image) / step).clamp(-self.CONTEXT_CLIP, self.CONTEXT_CLIP)
            out.append(relative / 4.0)
        return out

    def forward(self, image: torch.Tensor, step: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """Residual for ``image`` (N, C, H, W); ``step`` (N, 1, H, W) when conditioned.

        A conditioned generator sees ``log2(step)`` (steps span 1e-5 to 0.5 between 16-bit
        and very dark 8-bit captures) and predicts the residual in units of the step, so
        the same weights correct a 16-bit image by a few 1e-5 and an 8-bit one by a few 1e-2.
        """
        if not self.conditioned:
            return self.tail(self.units(self.head(image)))
        if step is None:
            raise ValueError("this generator is conditioned: pass the quantization step")
        step = step.clamp(min=1e-6)
        features = [image, (torch.log2(step) + 8.0) / 8.0]
        if self.context_sigmas:
            # ``context``: the channels precomputed on a larger window (tiled inference)
            features += [context] if context is not None else self._context(image, step)
        return self.tail(self.units(self.head(torch.cat(features, dim=1)))) * step

    def config(self) -> dict:
        config = {"channels": self.channels, "depth": self.depth, "width": self.width,
                  "conditioned": self.conditioned}
        if self.context_sigmas:  # v1 files have no such key
            config["context_sigmas"] = list(self.context_sigmas)
        return config


def _gaussian_kernel(sigma: float, truncate: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(truncate * sigma)``."""
    radius = int(math.ceil(truncate * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


#: Normalisation layers a :class:`UNetGenerator` can have ("none": the shipped v2 design).
NORMS = ("none", "batch")


class _UNetUnit(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus the identity; with ``norm="batch"`` each convolution
    is followed by BatchNorm (conv - BN - ReLU - conv - BN, as :class:`ResidualUnit`).

    The unit's last layer starts at zero (the second convolution, or the last BatchNorm's
    scale), so every unit starts as the identity: a deep network without BatchNorm then
    trains stably (the "Fixup" idea), and inference does not depend on batch statistics
    learnt on other images.
    """

    def __init__(self, width: int, norm: str = "none"):
        super().__init__()
        if norm == "batch":
            self.body = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
            nn.init.zeros_(self.body[4].weight)
        else:  # the v2 layout: its parameter names are those of the shipped weights
            self.body = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1))
            nn.init.zeros_(self.body[2].weight)
            nn.init.zeros_(self.body[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UNetGenerator(nn.Module):
    """Multi-scale encoder-decoder (U-Net) predicting the residual ``J - Jt`` (v2).

    ``depth`` times the image is halved (strided 3x3 convolution); each scale has a
    residual unit on the way down and one on the way up, joined by additive skip
    connections; no normalisation layers unless ``norm`` asks for them.  Most of the
    arithmetic happens at low resolution, so the receptive field spans a few hundred
    pixels (enough to see across the wide flat bands of a very dark capture) for less
    arithmetic per pixel than the 29-pixel residual network (71 against 223 kFLOP for the
    shipped sizes).

    Parameters
    ----------
    channels : int
        Image channels (1: gray; the product restores colour channel by channel).
    depth : int, 1..6
        Halvings: ``depth + 1`` scales.  Images are padded (edge values) to a multiple of
        ``2 ** depth`` pixels and cropped back.
    width : int
        Feature channels at full resolution; doubled at each scale up to ``4 * width``.
    conditioned : bool
        Take the per-pixel quantization step as a second input (``log2`` scaled) and
        predict the residual in units of it, as :class:`Generator` does.
    norm : {"none", "batch"}
        "batch": BatchNorm after every convolution of the residual units and of the
        downsampling (an experiment, docs/dequantizer-experiments.md); "none" (default):
        no normalisation, the shipped v2 design, whose weights files have no ``norm`` key.
    """

    architecture = "unet"
    #: Widths stop doubling at this multiple of ``width`` (the deep scales are small).
    MAX_WIDTH_FACTOR = 4

    def __init__(self, channels: int = 1, depth: int = 4, width: int = 24,
                 conditioned: bool = True, norm: str = "none"):
        super().__init__()
        if channels < 1 or not 1 <= depth <= 6 or width < 1:
            raise ValueError(f"bad U-Net size: channels={channels}, depth={depth} (1..6), "
                             f"width={width}")
        if norm not in NORMS:
            raise ValueError(f"unknown U-Net norm {norm!r} (known: {', '.join(NORMS)})")
        self.channels, self.depth, self.width = channels, depth, width
        self.conditioned = conditioned
        self.norm = norm
        self.context_sigmas = ()
        widths = [width * min(2**level, self.MAX_WIDTH_FACTOR) for level in range(depth + 1)]
        inputs = channels + (1 if conditioned else 0)
        self.head = nn.Sequential(nn.Conv2d(inputs, widths[0], 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.encode = nn.ModuleList(_UNetUnit(w, norm) for w in widths[:-1])
        self.down = nn.ModuleList(self._downsampling(widths[i], widths[i + 1], norm)
                                  for i in range(depth))
        self.bottom = nn.Sequential(_UNetUnit(widths[-1], norm), _UNetUnit(widths[-1], norm))
        self.up = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(depth))
        self.decode = nn.ModuleList(_UNetUnit(w, norm) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1)
        # start as the identity (zero residual), as the residual network does
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @staticmethod
    def _downsampling(inputs: int, outputs: int, norm: str) -> nn.Sequential:
        """Strided 3x3 convolution - [BN] - ReLU: halves the image."""
        if norm == "batch":
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))
        return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride=2, padding=1),
                             nn.ReLU(inplace=True))

    @property
    def multiple(self) -> int:
        """Tiles must start at multiples of this many pixels to match the whole image."""
        return 2**self.depth

    @property
    def network_receptive_field(self) -> int:
        """Side, pixels, of the input window one output pixel can depend on (an upper
        bound: the longest path, through the coarsest scale)."""
        field, jump = 1, 1

        def conv(kernel, stride=1):
            nonlocal field, jump
            field += (kernel - 1) * jump
            jump *= stride

        conv(3)  # head
        for _ in range(self.depth):
            conv(3), conv(3)  # encoder unit
            conv(3, 2)  # down
        conv(3), conv(3), conv(3), conv(3)  # bottom units
        for _ in range(self.depth):
            # bilinear upsampling (align_corners=False) reads the coarse pixel and one
            # neighbour on either side depending on the fine pixel's phase: up to two
            # coarse pixels each way (measured from gradients)
            field += 2 * jump
            jump //= 2
            conv(3), conv(3)  # decoder unit
        conv(3)  # tail
        return field

    @property
    def receptive_field(self) -> int:
        return self.network_receptive_field

    def forward(self, image: torch.Tensor, step: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """Residual for ``image`` (N, C, H, W); ``step`` (N, 1, H, W) when conditioned."""
        rows, cols = image.shape[-2:]
        features = [image]
        if self.conditioned:
            if step is None:
                raise ValueError("this generator is conditioned: pass the quantization step")
            step = step.clamp(min=1e-6)
            features.append((torch.log2(step) + 8.0) / 8.0)
        x = torch.cat(features, dim=1)
        pad_rows, pad_cols = -rows % self.multiple, -cols % self.multiple
        if pad_rows or pad_cols:
            x = F.pad(x, (0, pad_cols, 0, pad_rows), mode="replicate")
        x = self.head(x)
        skips = []
        for unit, down in zip(self.encode, self.down):
            x = unit(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for level in reversed(range(self.depth)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.decode[level](self.up[level](x) + skips[level])
        residual = self.tail(x)[..., :rows, :cols]
        return residual * step if self.conditioned else residual

    def config(self) -> dict:
        config = {"architecture": self.architecture, "channels": self.channels,
                  "depth": self.depth, "width": self.width, "conditioned": self.conditioned}
        if self.norm != "none":  # v2 files have no such key
            config["norm"] = self.norm
        return config


def interval_output(logits: torch.Tensor, lower: torch.Tensor,
                    upper: torch.Tensor) -> torch.Tensor:
    """``lower + (upper - lower) * sigmoid(logits)``: a restored image inside the intervals.

    The interval-parametrised output (``TrainConfig.output = "interval"``): whatever the
    network computes, every pixel lies in its quantization interval, so the result is
    consistent with the capture by construction and needs no projection.  ``logits`` 0
    is the interval's middle.

    Parameters
    ----------
    logits : Tensor
        The network's output, any real values (infinities included).
    lower, upper : Tensor
        Per-pixel interval bounds of the re-exposed values (``Quantization.bounds``),
        broadcastable to ``logits``.

    Returns
    -------
    Tensor
        Values in ``[lower, upper]``.  ``upper`` itself is reached only where the sigmoid
        rounds to 1 (logits above about 17 in float32); it is excluded from an interval
        below 1, which a projection would correct.
    """
    # lerp computes upper - (upper - lower) * (1 - w) for w >= 1/2: exact at both ends, so
    # rounding cannot step outside [lower, upper] as lower + (upper - lower) * w can
    return torch.lerp(lower, upper, torch.sigmoid(logits))


#: Generator classes by the ``architecture`` name stored in weights files.
ARCHITECTURES = {"residual": Generator, "unet": UNetGenerator}


def build_generator(config: dict) -> nn.Module:
    """A generator from a weights file's (checked) configuration; no key: the residual net."""
    config = dict(config)
    architecture = config.pop("architecture", "residual")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown generator architecture {architecture!r} "
                         f"(known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[architecture](**config)


def flops_per_pixel(generator: nn.Module, side: int = 256) -> float:
    """Floating-point operations of one forward pass per input pixel (convolutions only).

    Counted on a real forward pass of a ``side`` x ``side`` gray image: each convolution's
    multiply-adds (x 2) at the resolution it actually runs at, so a multi-scale network's
    low-resolution layers count for what they cost (a quarter per halving), not as if every
    layer ran at full resolution. Bias additions, activations and resampling are left out
    (under 1 % for these networks).

    Parameters
    ----------
    generator : torch.nn.Module
        A dequantizer generator (``Generator`` or ``UNetGenerator``), on the CPU.
    side : int, optional
        Side of the square test input, pixels (>= 8). Padding to the network's size
        multiple is counted too, so pick a multiple of it (256 suits every shipped model).

    Returns
    -------
    float
        FLOP per input pixel.
    """
    if side < 8:
        raise ValueError(f"side must be at least 8 pixels, got {side}")
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += 2 * output.numel() * (module.in_channels // module.groups) * kernel

    hooks = [module.register_forward_hook(count) for module in generator.modules()
             if isinstance(module, nn.Conv2d)]
    try:
        image = torch.rand(1, 1, side, side) * 0.5
        step = torch.full_like(image, 1 / 255) if getattr(generator, "conditioned", False) \
            else None
        with torch.no_grad():
            generator(image, step)
    finally:
        for hook in hooks:
            hook.remove()
    return total / side**2


class Discriminator(nn.Module):
    """Four units of a stride-1 and a stride-2 conv (each BN + LeakyReLU 0.2), then linear.

    Returns logits (the sigmoid is applied inside the losses, which is the
    numerically stable form of ``log D``); global average pooling before the
    linear layer lets it take any crop size.
    """

    def __init__(self, channels: int = 1, width: int = 64):
        super().__init__()
        layers, inputs = [], channels
        for unit in range(4):
            features = width * 2**unit
            for stride in (1, 2):
                layers += [nn.Conv2d(inputs, features, 3, stride=stride, padding=1, bias=False),
                           nn.BatchNorm2d(features), nn.LeakyReLU(0.2, inplace=True)]
                inputs = features
        self.features = nn.Sequential(*layers)
        self.classify = nn.Linear(inputs, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = self.features(image).mean(dim=(2, 3))
        return self.classify(pooled).squeeze(1)
