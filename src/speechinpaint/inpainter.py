"""Inference: load weights and restore audio with the network (no training code, no file I/O of audio).

Long files are cut into overlapping chunks that are restored independently and cross-faded, so memory
stays flat whatever the length; known bins and samples outside time gaps are kept exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .dsp.phase import DEFAULT_ITERS
from .dsp.spectral import MODEL_GRID, log_magnitude
from .masks import Mask, Region, missing_bins
from .model import estimate_log_magnitude
from .reconstruction import restore_from_magnitude

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "model.pt"


def crop_mask(mask: Mask, start: int, stop: int) -> Mask:
    """The part of a mask over samples [start, stop), re-timed to start at 0."""
    sr = mask.sample_rate
    t_start, t_stop = start / sr, stop / sr
    regions = [
        Region(max(r.t0, t_start) - t_start, min(r.t1, t_stop) - t_start, r.f0, r.f1)
        for r in mask.regions
        if r.t1 > t_start and r.t0 < t_stop
    ]
    return Mask(sr, stop - start, regions)


class Inpainter:
    """The network's restorer: its weights, the device it runs on, and the phase iterations after it."""

    def __init__(self, model, config: dict, device: str | torch.device = "cpu", iterations: int = DEFAULT_ITERS,
                 chunk_seconds: float = 30.0, overlap_seconds: float = 1.0):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.iterations = iterations
        self.chunk = int(chunk_seconds * MODEL_GRID.sample_rate)
        self.overlap = int(overlap_seconds * MODEL_GRID.sample_rate)
        # bf16 autocast runs the convolutions on the CPU's matrix units where there are some (AMX).
        self.autocast = self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None, **kwargs) -> "Inpainter":
        """A user's checkpoint (a training run's .ckpt or exported weights); None means the shipped model."""
        model, config = load_checkpoint(SHIPPED_WEIGHTS if path is None else path)
        return cls(model, config, **kwargs)

    @classmethod
    def from_pretrained(cls, **kwargs) -> "Inpainter":
        """The model shipped inside the package: no network access."""
        return cls.from_checkpoint(SHIPPED_WEIGHTS, **kwargs)

    @torch.inference_mode()
    def log_magnitude_estimate(self, known: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Log-magnitude [B, F, T] with the network's estimate in the missing bins."""
        log_mag = log_magnitude(known).to(self.device)
        missing = missing.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast or self.device.type == "cuda"):
            return estimate_log_magnitude(self.model, log_mag, missing).float()

    def restore_chunk(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        missing = missing_bins(mask, MODEL_GRID)
        known = MODEL_GRID.stft(torch.from_numpy(audio))
        log_mag = self.log_magnitude_estimate(known[None], torch.from_numpy(missing)[None])[0].cpu()
        return restore_from_magnitude(audio, mask, log_mag.exp(), missing, self.iterations)

    def restore(self, audio: np.ndarray | list[np.ndarray], mask: Mask | list[Mask]) -> np.ndarray | list[np.ndarray]:
        """Restore one clip (or a list of clips with their masks); returns float32 audio of the same length."""
        if isinstance(audio, list):
            return [self.restore(a, m) for a, m in zip(audio, mask)]
        audio = np.asarray(audio, dtype=np.float32)
        mask.check_matches(len(audio), MODEL_GRID.sample_rate)
        n = len(audio)
        if n <= self.chunk:
            return self.restore_chunk(audio, mask)
        out = np.zeros(n, dtype=np.float32)
        weight = np.zeros(n, dtype=np.float32)
        step = self.chunk - self.overlap
        for start in range(0, n, step):
            stop = min(start + self.chunk, n)
            start = max(0, stop - self.chunk)
            piece = self.restore_chunk(audio[start:stop], crop_mask(mask, start, stop))
            fade = np.ones(stop - start, dtype=np.float32)
            ramp = np.linspace(0.0, 1.0, self.overlap, dtype=np.float32)
            if start > 0:
                fade[: self.overlap] = ramp
            if stop < n:
                fade[-self.overlap:] = ramp[::-1]
            out[start:stop] += piece * fade
            weight[start:stop] += fade
            if stop == n:
                break
        return out / np.maximum(weight, 1e-6)
