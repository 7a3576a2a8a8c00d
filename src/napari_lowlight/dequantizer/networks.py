"""The dequantizer's networks (METHOD.md section 3): a residual generator and a DCGAN-like critic.

Both are plain ``torch.nn.Module`` s.  The generator predicts the quantization
residual ``J - Jt`` of a re-exposed image ``Jt``; the restored image is
``Jt + G(Jt)``.  Conditioned, it also receives the per-pixel quantization step
of its input (``Quantization.interval_width``), so one model serves every light
level and bit depth.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Discriminator", "Generator", "ResidualUnit"]


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
        Residual units (the paper: 16).
    width : int
        Feature channels (64 is usual).
    conditioned : bool
        Take one more input channel: the per-pixel quantization step, in the
        image's units.

    The receptive field is ``2 * (2 * depth + 2) + 1`` pixels: tiled inference
    needs a halo of at least half of it.
    """

    def __init__(self, channels: int = 1, depth: int = 16, width: int = 64,
                 conditioned: bool = True):
        super().__init__()
        if channels < 1 or depth < 0 or width < 1:
            raise ValueError(f"bad generator size: channels={channels}, depth={depth}, "
                             f"width={width}")
        self.channels, self.depth, self.width = channels, depth, width
        self.conditioned = conditioned
        inputs = channels + (1 if conditioned else 0)
        self.head = nn.Sequential(nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(inplace=True))
        self.units = nn.Sequential(*(ResidualUnit(width) for _ in range(depth)))
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        # Start as the identity (zero residual): the re-exposed image is already a good,
        # interval-consistent estimate, and training then only has to learn improvements.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def receptive_field(self) -> int:
        """Side, pixels, of the input window one output pixel depends on."""
        return 2 * (2 * self.depth + 2) + 1

    def forward(self, image: torch.Tensor, step: torch.Tensor | None = None) -> torch.Tensor:
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
        features = torch.cat([image, (torch.log2(step) + 8.0) / 8.0], dim=1)
        return self.tail(self.units(self.head(features))) * step

    def config(self) -> dict:
        return {"channels": self.channels, "depth": self.depth, "width": self.width,
                "conditioned": self.conditioned}


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
