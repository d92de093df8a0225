"""A spectrogram discriminator and its losses, for adversarial fine-tuning (configs/ablations/adversarial.yaml).

Why: every pointwise loss tried (L1 on log-magnitude, on compressed magnitude, on spectral steps) is
minimised by a smooth estimate where the detail is uncertain, and PESQ hears the blurred harmonics as
noise. A discriminator that sees the restored spectrogram next to the mask asks instead for detail that
looks like speech. It is the SN-PatchGAN of free-form image inpainting (Yu et al., ICCV 2019): spectral
norm, hinge losses, one logit per patch, here weighted by how much of each patch was missing, so the
intact parts (identical in real and restored) do not dilute it. Feature matching on its layers (MelGAN,
Kumar et al. 2019) is the learned feature loss that keeps the generator's steps stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class SpectrogramDiscriminator(nn.Module):
    """Patch logits and intermediate features from [B, 3, F, T]: normalised log-magnitude, mask, frequency ramp."""

    def __init__(self, channels: int = 32):
        super().__init__()
        widths = [3, channels, 2 * channels, 4 * channels, 4 * channels]
        strides = [2, 2, 2, 1]
        self.layers = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 5 if s == 2 else 3, stride=s, padding=2 if s == 2 else 1))
            for c_in, c_out, s in zip(widths, widths[1:], strides)
        )
        self.head = spectral_norm(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            features.append(x)
        return self.head(x)[:, 0], features


def patch_weights(hole: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The share of each logit's patch that was missing: hole [B, F, T] pooled to the logits' [B, F', T']."""
    return F.adaptive_avg_pool2d(hole[:, None].float(), logits.shape[-2:])[:, 0]


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Hinge loss: real patches above +1, restored ones below -1, each patch weighted by its missing share."""
    return weighted_mean(F.relu(1.0 - real), weights) + weighted_mean(F.relu(1.0 + fake), weights)


def generator_losses(
    fake: torch.Tensor, weights: torch.Tensor, fake_features: list[torch.Tensor], real_features: list[torch.Tensor]
) -> dict[str, torch.Tensor]:
    """adversarial: raise the restored patches' logits; feature_matching: L1 between the layers' features."""
    matching = sum((f - r.detach()).abs().mean() for f, r in zip(fake_features, real_features)) / len(fake_features)
    return {"adversarial": -weighted_mean(fake, weights), "feature_matching": matching}
