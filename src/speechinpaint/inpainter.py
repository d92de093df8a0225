"""Inference: load weights and restore audio with the network (no training code, no file I/O of audio).

The Inpainter is the network's restorer (recording.Restorer): long files are restored in overlapping
chunks, audio at any rate and channel count in its own terms; known bins and samples outside time gaps
are kept exactly.

Each kind of damage takes the estimate that suits it, and the phase starts from the signal's own
structure where there is one:
- holes: the U-Net's log-magnitude, from a random phase; with the config's comb_share, voiced frames
  blended with a harmonic comb at the f0 tracked on that restoration (dsp.harmonic_comb), restored again;
- time gaps: with the config's gap_fill_share, a blend of the U-Net's and the two-sided pitch fill's
  (dsp.gap_fill), starting from the fill's phase;
- a missing upper band (a region from some frequency to Nyquist lasting BAND_MIN_SECONDS or more):
  starting from the phase of the bins just below the edge copied up (baselines.sbr), and with an
  envelope head, its envelope over their detail in place of the U-Net's estimate; its magnitude is the
  input's plus the config's band gain times the estimate's excess over it (band_gain_db, 0 dB: the
  estimate as it is).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .baselines.sbr import MIN_SOURCE_BINS, copy_up_source
from .checkpoint import load_checkpoint
from .devices import torch_device
from .errors import SpeechInpaintError
from .dsp.gap_fill import fill_gaps
from .dsp.harmonic_comb import lay_comb, track_f0
from .dsp.spectral import LOG_FLOOR, MODEL_GRID, log_magnitude, spectral_envelope
from .masks import Mask, Region, gap_sample_mask, missing_bins
from .model import network_outputs
from .reconstruction import restore_from_magnitude
from .recording import Restorer

# A region from some frequency up to Nyquist is a missing upper band when it lasts this long; a shorter
# one is a hole that happens to reach the top.
BAND_MIN_SECONDS = 0.5
# Phase iterations after the network: its estimates score the same after 16 as after 32 or more
# (benchmarks/model_steps.py), and a started phase needs fewer still.
MODEL_ITERS = 16

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "model.pt"


class Inpainter(Restorer):
    """The network's restorer: its weights, the device it runs on, and the phase iterations after it."""

    def __init__(self, model, config: dict, device: str | torch.device = "cpu", iterations: int = MODEL_ITERS,
                 chunk_seconds: float = 30.0, overlap_seconds: float = 1.0):
        super().__init__(chunk_seconds, overlap_seconds)
        self.device = torch_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.iterations = iterations
        # bf16 autocast runs the convolutions on the CPU's matrix units where there are some (AMX).
        self.autocast = self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None, band_gain_db: float | None = None, **kwargs) -> "Inpainter":
        """A user's checkpoint (a training run's .ckpt or exported weights); None means the shipped model.
        band_gain_db: the band gain to use instead of the checkpoint's (model.band_gain_db)."""
        torch_device(kwargs.get("device", "cpu"))  # before the weights load
        model, config = load_checkpoint(SHIPPED_WEIGHTS if path is None else path)
        if band_gain_db is not None:
            try:
                model.config = dataclasses.replace(model.config, band_gain_db=band_gain_db)
            except ValueError as exc:
                raise SpeechInpaintError(str(exc).removeprefix("model ")) from None
        return cls(model, config, **kwargs)

    @classmethod
    def from_pretrained(cls, **kwargs) -> "Inpainter":
        """The model shipped inside the package: no network access."""
        return cls.from_checkpoint(SHIPPED_WEIGHTS, **kwargs)

    @torch.inference_mode()
    def network_estimate(self, known: torch.Tensor, missing: torch.Tensor,
                         envelope: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The U-Net's log-magnitude [B, F, T] for every bin, and with `envelope` the envelope head's
        envelope (None without a head); the Nyquist bin takes the bin below's."""
        log_mag = log_magnitude(known).to(self.device)
        missing = missing.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast or self.device.type == "cuda"):
            estimate, band = network_outputs(self.model, log_mag, missing, envelope)

        def all_bins(x):
            return None if x is None else torch.cat([x, x[:, -1:]], dim=1).float()

        return all_bins(estimate), all_bins(band)

    def log_magnitude_estimate(self, known: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Log-magnitude [B, F, T]: the input's own in the known bins, the U-Net's estimate in the missing."""
        estimate, _ = self.network_estimate(known, missing)
        return torch.where(missing.to(estimate.device), estimate, log_magnitude(known).to(estimate.device))

    def estimate(self, audio: np.ndarray, mask: Mask, missing: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-magnitude [F, T], start phase [F, T]) for 16 kHz audio: the known bins' own values, and in
        the missing ones each kind's estimate (module doc); the start phase is NaN where there is none."""
        spec = MODEL_GRID.stft(torch.from_numpy(audio))
        known_log = log_magnitude(spec)
        holes = torch.from_numpy(missing)
        bands = [r for r in mask.regions if is_upper_band(mask, r)]
        head = bool(bands) and self.model.envelope is not None
        estimate, envelope = self.network_estimate(spec[None], holes[None], head)
        log_mag = estimate[0].cpu().clone()  # a normal tensor, written in place below
        start = torch.full(spec.shape, float("nan"))
        detail = known_log - spectral_envelope(known_log) if head else None
        df = MODEL_GRID.sample_rate / MODEL_GRID.n_fft
        gain = 10 ** (self.model.config.band_gain_db / 20)
        for region in bands:
            edge = int(np.ceil(region.f0 / df))
            inside = self.bins_of(mask, [region], spec.shape[-1])
            if edge > MIN_SOURCE_BINS:  # else too little below the edge to copy from
                inside[:edge] = False
                source = torch.from_numpy(copy_up_source(edge, spec.shape[0], df))
                if head:
                    filled = envelope[0, edge:].cpu() + detail[source]
                    log_mag[edge:] = torch.where(inside[edge:], filled, log_mag[edge:])
                start[edge:] = torch.where(inside[edge:], spec[source].angle(), start[edge:])
            if gain != 1:
                known = spec.abs()
                scaled = (known + gain * (log_mag.exp() - known)).clamp_min(LOG_FLOOR).log()
                log_mag = torch.where(inside, scaled, log_mag)
        share = self.model.config.gap_fill_share
        gaps = [r for r in mask.regions if mask.is_full_band(r)]
        if gaps and share > 0:
            fill = MODEL_GRID.stft(torch.from_numpy(fill_gaps(audio, gap_sample_mask(mask))))
            inside = self.bins_of(mask, gaps, spec.shape[-1])
            log_mag = torch.where(inside, (1 - share) * log_mag + share * log_magnitude(fill), log_mag)
            start = torch.where(inside, fill.angle(), start)
        return torch.where(holes, log_mag, known_log), torch.where(holes, start, float("nan"))

    @staticmethod
    def bins_of(mask: Mask, regions: list[Region], num_frames: int) -> torch.Tensor:
        """The model-grid bins [F, T] of some of a mask's regions."""
        return torch.from_numpy(missing_bins(Mask(mask.sample_rate, mask.num_samples, regions), MODEL_GRID, num_frames))

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        missing = missing_bins(mask, MODEL_GRID)
        log_mag, start = self.estimate(audio, mask, missing)
        restored = restore_from_magnitude(audio, mask, log_mag.exp(), missing, self.iterations, start)
        config = self.model.config
        holes = [r for r in mask.regions if not mask.is_full_band(r) and not is_upper_band(mask, r)]
        if not holes or config.comb_share == 0:
            return restored
        inside = self.bins_of(mask, holes, log_mag.shape[-1])
        combed = lay_comb(log_mag, track_f0(restored), inside, config.comb_share, config.comb_depth_db)
        return restore_from_magnitude(audio, mask, combed.exp(), missing, self.iterations, start)


def is_upper_band(mask: Mask, region: Region) -> bool:
    """A missing upper band: from above 0 Hz up to Nyquist, for BAND_MIN_SECONDS or more."""
    return (not mask.is_full_band(region) and region.f1 >= mask.nyquist
            and region.t1 - region.t0 >= BAND_MIN_SECONDS)
