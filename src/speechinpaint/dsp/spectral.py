"""The one STFT convention of the project, and the log-magnitude the network sees.

All STFTs are centred (frame t is centred on sample t * hop) with a periodic Hann window, so a mask
region in seconds and Hz maps onto any grid by frame centre and bin frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..audio import SAMPLE_RATE

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class StftGrid:
    """An STFT grid: window length, hop, sample rate."""

    n_fft: int
    hop: int
    sample_rate: int = SAMPLE_RATE

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Centre of each frame in seconds."""
        return np.arange(num_frames) * self.hop / self.sample_rate

    def bin_freqs(self) -> np.ndarray:
        """Centre frequency of each bin in Hz."""
        return np.arange(self.num_bins) * self.sample_rate / self.n_fft

    def window(self, device=None) -> torch.Tensor:
        return torch.hann_window(self.n_fft, periodic=True, device=device)

    def stft(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Complex STFT [..., bins, frames] of audio [..., samples]."""
        audio = torch.as_tensor(audio, dtype=torch.float32)
        shape = audio.shape
        flat = audio.reshape(-1, shape[-1])
        spec = torch.stft(
            flat, self.n_fft, self.hop, window=self.window(flat.device), center=True,
            pad_mode="constant", return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of stft() for a signal of the given length."""
        shape = spec.shape
        flat = spec.reshape(-1, *shape[-2:])
        audio = torch.istft(flat, self.n_fft, self.hop, window=self.window(flat.device), center=True, length=length)
        return audio.reshape(*shape[:-2], length)


# The seed's grid (40 ms / 20 ms): the holes corruption is applied on it, as the seed did.
SEED_GRID = StftGrid(640, 320)
# The model's grid (32 ms / 8 ms, 75 % overlap): a higher ceiling after phase reconstruction.
MODEL_GRID = StftGrid(512, 128)


def log_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """Natural-log magnitude with a floor, so empty bins stay finite."""
    return torch.log(spec.abs().clamp_min(LOG_FLOOR))


# The spectral envelope's width on the model grid: 13 bins, about 400 Hz, wider than a voice's harmonic
# spacing, so what is left around it is the harmonic detail.
ENVELOPE_BINS = 13


def spectral_envelope(log_mag: torch.Tensor) -> torch.Tensor:
    """The log-magnitude [..., F, T] averaged over ENVELOPE_BINS neighbouring bins (edges replicated)."""
    shape = log_mag.shape
    flat = log_mag.reshape(-1, *shape[-2:]).transpose(-1, -2).reshape(-1, 1, shape[-2])
    padded = torch.nn.functional.pad(flat, (ENVELOPE_BINS // 2, ENVELOPE_BINS // 2), mode="replicate")
    smooth = torch.nn.functional.avg_pool1d(padded, ENVELOPE_BINS, stride=1)
    return smooth.reshape(-1, shape[-1], shape[-2]).transpose(-1, -2).reshape(shape)
