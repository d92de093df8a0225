"""The inpainting network: a mask-aware 2D U-Net over the log-magnitude STFT (a pure nn.Module, no I/O).

Input channels: the corrupted log-magnitude normalised per utterance from its known bins (missing bins
set to 0, or to the interpolation baseline's estimate: ModelConfig.fill), the mask (1 = missing) and a
frequency-position ramp, because convolutions alone cannot tell 1 kHz from 6 kHz and bandwidth extension
depends on it. Output: a normalised log-magnitude estimate for every bin (with fill "interp", a
correction added to the interpolation); the caller keeps the known bins and uses the estimate only in
the holes. Fully convolutional, so any number of frames works (it is padded to a multiple of 2**levels
inside). An optional envelope head (EnvelopeHead) estimates a missing upper band's spectral envelope
from the same input and the U-Net's estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dsp.interpolation import interpolate_log_magnitude
from .dsp.spectral import MODEL_GRID
from .sections import from_mapping, to_mapping


FILLS = ("zero", "interp")


@dataclass
class ModelConfig:
    """The network's size, and what it starts from in the missing bins.

    fill "zero": the missing bins enter as 0 and the network predicts the log-magnitude itself.
    fill "interp": they enter as the interpolation baseline's estimate and the network predicts a
    correction to it, so the fine structure interpolation carries across short gaps is there to keep.
    """

    base_channels: int = 16
    levels: int = 4
    bottleneck_dilations: tuple[int, ...] = (2, 4, 8)
    fill: str = "zero"
    # The envelope head (EnvelopeHead): 0 channels means none, and a missing upper band takes the U-Net's
    # estimate. Its output is `envelope_bands` values per frame, spread linearly over the bins.
    envelope_channels: int = 0
    envelope_bands: int = 32
    envelope_dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    # Inside time gaps the log-magnitude is this share of the two-sided pitch fill's (dsp.gap_fill) and
    # the rest the U-Net's: the fill carries the harmonics across the gap, the U-Net the level. 0: U-Net only.
    gap_fill_share: float = 0.0
    # A missing upper band is the input plus this gain (dB) times the U-Net's estimate minus the input, in
    # magnitude: 0 is the full-level estimate; below 0 the extension is quieter, which held-out listeners'
    # metrics (ViSQOL, PESQ) prefer to a full-level band whose frame-by-frame envelope is wrong.
    band_gain_db: float = 0.0
    # Inside holes, voiced frames take this share of a harmonic comb at the tracked f0 under the U-Net's
    # envelope (dsp.harmonic_comb), its valleys comb_depth_db below its peaks. 0: the U-Net only.
    comb_share: float = 0.0
    comb_depth_db: float = 20.0

    def __post_init__(self):
        if self.fill not in FILLS:
            raise ValueError(f"model fill {self.fill!r} is not one of {', '.join(FILLS)}")
        if not 0.0 <= self.gap_fill_share <= 1.0:
            raise ValueError(f"model gap_fill_share must lie in [0, 1] (got {self.gap_fill_share})")
        if not 0.0 <= self.comb_share <= 1.0:
            raise ValueError(f"model comb_share must lie in [0, 1] (got {self.comb_share})")
        if not 0.0 <= self.comb_depth_db <= 80.0:
            raise ValueError(f"model comb_depth_db must lie in [0, 80] dB (got {self.comb_depth_db})")
        if not -60.0 <= self.band_gain_db <= 12.0:
            raise ValueError(f"model band_gain_db must lie in [-60, 12] dB (got {self.band_gain_db})")

    def to_dict(self) -> dict:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "ModelConfig":
        """Strict: an unknown key is an error naming it (sections.from_mapping)."""
        return from_mapping(cls, d, "model", source)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU(),
    )


class DilatedResidual(nn.Module):
    """A residual 3x3 conv dilated in time and frequency: wide context for long holes and the missing band."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.norm(self.conv(x)))


class EnvelopeHead(nn.Module):
    """The spectral envelope of a missing upper band, frame by frame: what limits bandwidth extension.

    Each frame is one vector of the normalised input, the mask and the U-Net's estimate over all bins
    below Nyquist; dilated convolutions over frames give it about a second of context, and the frames'
    mean joins every frame, because a voice's and a channel's upper band are facts of the whole
    utterance. The output is a coarse envelope (`bands` values, linear in frequency) spread over the bins.
    """

    def __init__(self, bins: int, channels: int, bands: int, dilations: tuple[int, ...]):
        super().__init__()
        self.bins = bins
        self.inp = nn.Conv1d(3 * bins, channels, 1)
        self.context = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=d, dilation=d) for d in dilations)
        self.mix = nn.Conv1d(2 * channels, channels, 1)
        self.out = nn.Conv1d(channels, bands, 1)

    def forward(self, normed: torch.Tensor, hole: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """Three [B, F, T] maps (F = bins) -> the normalised envelope [B, F, T]."""
        x = F.gelu(self.inp(torch.cat([normed, hole, estimate], dim=1)))
        for conv in self.context:
            x = x + F.gelu(conv(x))
        utterance = x.mean(dim=-1, keepdim=True).expand_as(x)
        coarse = self.out(F.gelu(self.mix(torch.cat([x, utterance], dim=1))))
        return F.interpolate(coarse.transpose(1, 2), size=self.bins, mode="linear", align_corners=True).transpose(1, 2)


class InpaintUNet(nn.Module):
    IN_CHANNELS = 3

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config.base_channels
        widths = [c * 2**i for i in range(self.config.levels + 1)]
        self.inp = conv_block(self.IN_CHANNELS, widths[0])
        self.down = nn.ModuleList(conv_block(widths[i], widths[i + 1]) for i in range(self.config.levels))
        self.bottleneck = nn.Sequential(*(DilatedResidual(widths[-1], d) for d in self.config.bottleneck_dilations))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(self.config.levels))
        )
        self.dec = nn.ModuleList(conv_block(2 * widths[i], widths[i]) for i in reversed(range(self.config.levels)))
        self.out = nn.Conv2d(widths[0], 1, 1)
        cfg = self.config
        # It sees the grid's bins below Nyquist, as network_outputs feeds them.
        self.envelope = (EnvelopeHead(MODEL_GRID.n_fft // 2, cfg.envelope_channels, cfg.envelope_bands,
                                      cfg.envelope_dilations) if cfg.envelope_channels else None)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, 3, F, T] -> normalised log-magnitude estimate [B, F, T]."""
        _, _, n_freq, n_time = features.shape
        m = 2**self.config.levels
        x = F.pad(features, (0, (-n_time) % m, 0, (-n_freq) % m))
        skips = []
        x = self.inp(x)
        for block in self.down:
            skips.append(x)
            x = block(F.max_pool2d(x, 2))
        x = self.bottleneck(x)
        for up, block in zip(self.up, self.dec):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        return self.out(x)[:, 0, :n_freq, :n_time]


def normalise(log_mag: torch.Tensor, missing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-utterance mean and std of the known bins; returns (normalised, mean, std) with shapes [B,1,1]."""
    known = (~missing).float()
    count = known.sum(dim=(-2, -1), keepdim=True).clamp_min(1.0)
    mean = (log_mag * known).sum(dim=(-2, -1), keepdim=True) / count
    var = (((log_mag - mean) * known) ** 2).sum(dim=(-2, -1), keepdim=True) / count
    std = var.sqrt().clamp_min(1e-3)
    return (log_mag - mean) / std, mean, std


def frequency_ramp(like: torch.Tensor) -> torch.Tensor:
    """-1 at 0 Hz to +1 at the top bin, shaped like a [B, F, T] spectrogram: where each bin sits."""
    n_freq = like.shape[-2]
    return torch.linspace(-1.0, 1.0, n_freq, device=like.device).view(1, n_freq, 1).expand_as(like)


def make_features(
    log_mag: torch.Tensor, missing: torch.Tensor, fill: str = "zero"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network input [B, 3, F, T] from log-magnitude and mask [B, F, T]; also the (mean, std) to undo it."""
    normed, mean, std = normalise(log_mag, missing)
    hole = missing.float()
    if fill == "interp":
        normed = interpolate_log_magnitude(normed, missing)
    else:
        normed = normed * (1.0 - hole)
    return torch.stack([normed, hole, frequency_ramp(normed)], dim=1), mean, std


def network_outputs(model: InpaintUNet, log_mag: torch.Tensor, missing: torch.Tensor,
                    envelope: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The U-Net's log-magnitude estimate [B, F - 1, T] for every bin below Nyquist, and with `envelope`
    the envelope head's spectral envelope there (None without the head or the request).

    The network sees the bins below Nyquist (a power of two, 256 on the 512-point grid, so no padding is
    wasted). Training takes its loss on these, inference keeps them only in the holes.
    """
    fill = model.config.fill
    features, mean, std = make_features(log_mag, missing, fill)
    features = features[:, :, :-1].contiguous(memory_format=torch.channels_last)
    estimate = model(features).float()
    if fill == "interp":
        estimate = estimate + features[:, 0]
    band = None
    if envelope and model.envelope is not None:
        normed = (features[:, 0] * (1.0 - features[:, 1])).float()
        band = model.envelope(normed, features[:, 1].float(), estimate).float() * std + mean
    return estimate * std + mean, band


def network_estimate(model: InpaintUNet, log_mag: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """The U-Net's log-magnitude estimate [B, F - 1, T] for every bin below Nyquist (network_outputs)."""
    return network_outputs(model, log_mag, missing)[0]


def estimate_log_magnitude(model: InpaintUNet, log_mag: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """The model's log-magnitude [B, F, T]: the input's own values in known bins, the estimate in the holes.

    The Nyquist bin takes the estimate of the bin below it.
    """
    estimate = network_estimate(model, log_mag, missing)
    estimate = torch.cat([estimate, estimate[:, -1:]], dim=1)
    return torch.where(missing, estimate, log_mag)
