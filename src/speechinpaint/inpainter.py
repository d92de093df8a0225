"""Inference: load weights and restore audio with the network (no training code, no file I/O of audio).

The Inpainter is the network's restorer (recording.Restorer): long files are restored in overlapping
chunks, audio at any rate and channel count in its own terms; known bins and samples outside time gaps
are kept exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .dsp.phase import DEFAULT_ITERS
from .dsp.spectral import MODEL_GRID, log_magnitude
from .masks import Mask, missing_bins
from .model import estimate_log_magnitude
from .reconstruction import restore_from_magnitude
from .recording import Restorer

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "model.pt"


class Inpainter(Restorer):
    """The network's restorer: its weights, the device it runs on, and the phase iterations after it."""

    def __init__(self, model, config: dict, device: str | torch.device = "cpu", iterations: int = DEFAULT_ITERS,
                 chunk_seconds: float = 30.0, overlap_seconds: float = 1.0):
        super().__init__(chunk_seconds, overlap_seconds)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.iterations = iterations
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

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        missing = missing_bins(mask, MODEL_GRID)
        known = MODEL_GRID.stft(torch.from_numpy(audio))
        log_mag = self.log_magnitude_estimate(known[None], torch.from_numpy(missing)[None])[0].cpu()
        return restore_from_magnitude(audio, mask, log_mag.exp(), missing, self.iterations)
