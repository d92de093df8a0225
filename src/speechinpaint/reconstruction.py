"""From a magnitude estimate of the missing bins to audio, shared by every method that estimates one.

Known bins are kept exactly, the phase of the missing ones is reconstructed, and for a mask of time
gaps alone the restored samples are spliced into the untouched corrupted waveform.
"""

from __future__ import annotations

import numpy as np
import torch

from .dsp.phase import DEFAULT_ITERS, reconstruct
from .dsp.spectral import MODEL_GRID
from .masks import Mask, gap_sample_mask


def restore_from_magnitude(
    corrupted: np.ndarray, mask: Mask, magnitude: torch.Tensor, missing: np.ndarray, iterations: int = DEFAULT_ITERS,
    start_phase: torch.Tensor | None = None,
) -> np.ndarray:
    """Phase reconstruction around a magnitude estimate, then the time-gap splice.

    For a mask of time gaps alone the phase iterations also hold every intact sample fixed (Griffin-Lim
    with the signal's own samples as a constraint, as in audio inpainting), so the phase inside a gap
    follows the real waveform at its edges.

    The splice applies only to a mask of time gaps alone: then every sample outside the gaps is intact
    and kept exactly. Holes and a missing band damage samples wherever their frames reach, so with any
    of them the rebuilt signal (known bins kept exactly) is the result everywhere. start_phase: the
    phase the iterations start from where it is not NaN (dsp.phase).
    """
    signal = torch.from_numpy(corrupted)
    gaps_only = all(mask.is_full_band(r) for r in mask.regions)
    gap = gap_sample_mask(mask) if gaps_only else None
    kept = (signal, torch.from_numpy(~gap)) if gaps_only else None
    audio = reconstruct(MODEL_GRID.stft(signal), torch.from_numpy(missing), magnitude, MODEL_GRID, len(corrupted),
                        n_iter=iterations, kept_samples=kept, start_phase=start_phase).numpy()
    return (np.where(gap, audio, corrupted) if gaps_only else audio).astype(np.float32)
