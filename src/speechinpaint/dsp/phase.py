"""Phase for the missing bins: fast Griffin-Lim (momentum) that keeps the known bins exactly.

Known bins come from the corrupted signal and are never touched; only the phase (and, through the
consistency projection, nothing else) of the missing bins is iterated.
"""

from __future__ import annotations

import torch

from .spectral import StftGrid

DEFAULT_ITERS = 32
DEFAULT_MOMENTUM = 0.99


def reconstruct_spectrogram(
    known: torch.Tensor,
    missing: torch.Tensor,
    magnitude: torch.Tensor,
    grid: StftGrid,
    length: int,
    n_iter: int = DEFAULT_ITERS,
    momentum: float = DEFAULT_MOMENTUM,
    seed: int = 0,
    kept_samples: tuple[torch.Tensor, torch.Tensor] | None = None,
    start_phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Complex spectrogram [..., F, T]: `known` where not missing, `magnitude` with a consistent phase where missing.

    known: complex STFT of the corrupted signal; missing: bool, True where the bin is lost;
    magnitude: estimated magnitude (only its missing bins are used). Batched over leading dimensions.
    kept_samples: (signal, keep) for time gaps: the samples where `keep` is True are intact, and every
    iteration puts them back before re-analysis, so the phase in a gap's frames follows the real
    waveform around the gap (the frames that straddle a gap edge are mostly intact signal).
    start_phase: where it is not NaN, the phase the missing bins start from instead of a random one
    (a fill's own, which needs fewer iterations).
    """
    missing = missing.to(known.device).expand_as(known)
    magnitude = magnitude.to(device=known.device, dtype=known.real.dtype)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(known.shape, generator=gen).to(known.device) * (2 * torch.pi)
    if start_phase is not None:
        start_phase = start_phase.to(known.device).expand_as(phase)
        phase = torch.where(start_phase.isnan(), phase, start_phase)
    target = torch.where(missing, torch.polar(magnitude, phase), known)
    if not bool(missing.any()) or n_iter <= 0:
        return target
    previous = target
    current = target
    for _ in range(n_iter):
        signal = grid.istft(current, length)
        if kept_samples is not None:
            signal = torch.where(kept_samples[1], kept_samples[0], signal)
        rebuilt = grid.stft(signal)
        projected = torch.where(missing, magnitude * torch.sgn(rebuilt), known)
        current = projected + momentum * (projected - previous)
        previous = projected
    return previous


def reconstruct(known: torch.Tensor, missing: torch.Tensor, magnitude: torch.Tensor, grid: StftGrid, length: int,
                **options) -> torch.Tensor:
    """Audio [..., length] from reconstruct_spectrogram() (options: n_iter, momentum, seed, kept_samples,
    start_phase)."""
    return grid.istft(reconstruct_spectrogram(known, missing, magnitude, grid, length, **options), length)
