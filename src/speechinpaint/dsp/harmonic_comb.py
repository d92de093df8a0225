"""Harmonic detail for holes: a comb at the voice's f0 laid under the network's spectral envelope.

The network's log-magnitude is the L1-optimal estimate of a missing bin, so inside a hole the peaks
and valleys of a voiced frame's harmonics are smoothed away (README, "What limits each condition").
In a voiced frame the comb puts them back: at every multiple of f0 the Hann window's main lobe (the
shape a steady harmonic takes on the model grid), between them a floor `depth_db` below the peaks.
Its own envelope (dsp.spectral.spectral_envelope) is taken out, so only its detail is laid over the
network's envelope, and the result is blended with the network's log-magnitude at `share`. The f0 is
tracked by pYIN (librosa) on the restoration without the comb: inside a hole the input has no
harmonics to track.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from .spectral import MODEL_GRID, spectral_envelope

F0_MIN, F0_MAX = 60.0, 400.0  # Hz: the voices pYIN looks for
PYIN_FRAME = 1024  # samples: two periods of F0_MIN at 16 kHz
PYIN_STEP = 2  # pYIN runs every PYIN_STEP model-grid hops (16 ms), each frame takes the nearest f0


def track_f0(audio: np.ndarray) -> np.ndarray:
    """f0 in Hz per model-grid frame of 16 kHz audio (pYIN), NaN where a frame is unvoiced."""
    import librosa  # here, not at the top: it loads numba, slow to start, and only holes need it

    f0, voiced, _ = librosa.pyin(np.asarray(audio, dtype=np.float32), fmin=F0_MIN, fmax=F0_MAX, sr=SAMPLE_RATE,
                                 frame_length=PYIN_FRAME, hop_length=PYIN_STEP * MODEL_GRID.hop, center=True)
    nearest = np.minimum((np.arange(MODEL_GRID.num_frames(len(audio))) + PYIN_STEP // 2) // PYIN_STEP, len(f0) - 1)
    return np.where(voiced, f0, np.nan)[nearest]


def main_lobe(offset: np.ndarray) -> np.ndarray:
    """The Hann window's magnitude response, peak 1, at `offset` bins from its centre (0 beyond the main
    lobe, 2 bins either side)."""
    response = np.abs(np.sinc(offset) + 0.5 * np.sinc(offset - 1) + 0.5 * np.sinc(offset + 1))
    return np.where(np.abs(offset) < 2, response, 0.0)


def comb_detail(f0: np.ndarray, depth_db: float) -> torch.Tensor:
    """Log-magnitude detail [F, T] of a harmonic comb at each frame's f0 (0 where f0 is NaN): peaks at
    the harmonics, a floor depth_db below them, its spectral envelope removed."""
    bins = np.arange(MODEL_GRID.num_bins)[:, None]
    f0_bins = f0[None, :] * MODEL_GRID.n_fft / MODEL_GRID.sample_rate
    voiced = np.isfinite(f0_bins[0])
    step = np.where(voiced, f0_bins, 1.0)
    nearest = np.maximum(np.round(bins / step), 1) * step  # the closest harmonic to each bin
    peaks = main_lobe(bins - nearest)
    floor = 10 ** (-depth_db / 20)
    log_comb = torch.from_numpy(np.log(floor + (1 - floor) * peaks)).float()
    detail = log_comb - spectral_envelope(log_comb)
    return torch.where(torch.from_numpy(voiced)[None, :], detail, 0.0)


def lay_comb(log_mag: torch.Tensor, f0: np.ndarray, where: torch.Tensor, share: float,
             depth_db: float) -> torch.Tensor:
    """log_mag [F, T] with, in the bins `where` of voiced frames, `share` of it replaced by the comb's
    detail under its spectral envelope; every other bin unchanged."""
    combed = spectral_envelope(log_mag) + comb_detail(f0, depth_db)
    voiced = torch.from_numpy(np.isfinite(f0))[None, :]
    return torch.where(where & voiced, (1 - share) * log_mag + share * combed, log_mag)
