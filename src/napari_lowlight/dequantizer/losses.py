"""The dequantizer's losses (METHOD.md section 3, Eq. 12-18)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["adversarial_discriminator_loss", "adversarial_generator_loss", "pixel_loss",
           "quasi_linf_loss"]

#: The barrier's argument is clamped below 1 by this margin so the loss stays finite.
BARRIER_CLAMP = 1e-3


def quasi_linf_loss(restored, dark, k, r, noise, q) -> torch.Tensor:
    """The quasi-l-infinity barrier (Eq. 14-17), mean over pixels.

    ``C = dark - k * restored**r - noise`` (``dark = k * Jt**r``), measured in units of
    the quantization step ``q``; the loss is ``-log(1 - min(max(|C|/q - 1/2, 0), 1 - 1e-3))``:
    zero while re-darkening the restored pixel lands in its observed level's interval,
    rising steeply outside, finite everywhere.  At the lowest level (0) and the highest
    (dark = 1) the interval is open below, respectively above, because the sensor clips.

    Parameters
    ----------
    restored : tensor (N, C, H, W)
        The restored image ``Jh`` in [0, 1] (clamped at 0 before the power).
    dark : tensor, like ``restored``
        The observed dark levels times q.
    k : tensor broadcastable to ``restored``
        Dimming factor (per image or per pixel).
    r : tensor broadcastable (per image)
        Gamma ratio.
    noise : tensor like ``restored``
        The sensor noise drawn when the pair was made (0 when unknown).
    q : tensor broadcastable (per image)
        Quantization step.
    """
    redarkened = k * restored.clamp(min=0.0) ** r
    error = (dark - redarkened - noise) / q  # C in units of q
    # The sensor clips: level 0 also holds everything below it, the top level everything
    # above, so their intervals are open on that side.
    below = (error - 0.5).clamp(min=0.0) * (dark > 0.5 * q)  # redarkened too low
    above = (-error - 0.5).clamp(min=0.0) * (dark < 1.0 - 0.5 * q)  # redarkened too high
    violation = below + above
    return -torch.log1p(-violation.clamp(max=1.0 - BARRIER_CLAMP)).mean()


def pixel_loss(restored, target, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``"l1"``) or squared (``"l2"``) error."""
    if kind == "l1":
        return F.l1_loss(restored, target)
    if kind == "l2":
        return F.mse_loss(restored, target)
    raise ValueError(f"pixel loss must be 'l1' or 'l2', got {kind!r}")


def adversarial_generator_loss(fake_logits) -> torch.Tensor:
    """Non-saturating ``-log D(Jh)`` (Eq. 12), from logits."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def adversarial_discriminator_loss(real_logits, fake_logits) -> torch.Tensor:
    """``-[log D(J) + log(1 - D(Jh))]`` (Eq. 13), from logits, averaged over the batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
