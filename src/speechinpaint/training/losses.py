"""The loss terms of the inpainting network over the missing bins, and their weighted sum.

The base loss is the L1 of the log-magnitude; the others are added with the weights of the config's
loss section (all 0 in the shipped recipe; each has an ablation config under configs/ablations/).
"""

from __future__ import annotations

import torch

from .config import LossConfig

# The exponent of the compressed-magnitude term.
COMPRESSION = 0.3
EXTRA_TERMS = ("compressed", "contrast", "overshoot")


def pointwise_losses(estimate: torch.Tensor, clean: torch.Tensor, hole: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss terms over the missing bins, each an average per missing bin:

    log_l1: L1 of the log-magnitude (the base loss; treats a quiet bin like a loud one);
    compressed: L1 of the magnitude compressed to the power 0.3, which weighs loud bins more, as a
      listener does (configs/ablations/compressed_magnitude.yaml);
    contrast: L1 of the log-magnitude's step from each bin to the next one up in frequency, where
      both are missing: it asks for the peaks and valleys of harmonics, which the L1-optimal
      estimate smooths away (configs/ablations/spectral_contrast.yaml);
    overshoot: how far the log-magnitude estimate lies above the clean one, zero below it. Added to
      log_l1 with weight w it moves the optimum from the median to the 1 / (2 + w) quantile of what
      the bin may hold: PESQ scores added energy far worse than missing energy (its asymmetric
      disturbance), so this asks for a quieter estimate where the bin is uncertain
      (configs/ablations/overshoot.yaml).
    """
    count = hole.sum().clamp_min(1.0)
    pairs = hole[:, 1:] * hole[:, :-1]
    step_error = (estimate.diff(dim=1) - clean.diff(dim=1)).abs()
    return {
        "log_l1": ((estimate - clean).abs() * hole).sum() / count,
        "compressed": ((torch.exp(COMPRESSION * estimate) - torch.exp(COMPRESSION * clean)).abs() * hole).sum() / count,
        "contrast": (step_error * pairs).sum() / pairs.sum().clamp_min(1.0),
        "overshoot": ((estimate - clean).clamp_min(0.0) * hole).sum() / count,
    }


def weighted_loss(terms: dict[str, torch.Tensor], weights: LossConfig) -> torch.Tensor:
    """log_l1 plus each extra term times its weight."""
    return terms["log_l1"] + sum(getattr(weights, f"{name}_weight") * terms[name] for name in EXTRA_TERMS)
