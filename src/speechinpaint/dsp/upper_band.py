"""The band above the network's reach inside a mask, at a recording's own rate (44.1, 48 kHz, ...).

The network restores 16 kHz audio, and its correction, resampled back, is flat only up to SPLIT_HZ
(soxr's filter starts to cut there). Every masked bin above SPLIT_HZ on the recording's own STFT is
estimated here, after the band below has been restored:
- its log-magnitude is interpolated across the region from the bins around it (dsp.interpolation: the
  frames on both sides at the same frequency, and the bins below and above it in the same frame), so a
  hole above 8 kHz takes its neighbours' level and fine structure;
- the interpolation runs on the log-magnitude less each frame's level in the restored band from TIE_HZ
  (4 kHz) up to SPLIT_HZ (times TIE_SHARE), added back after: across frames the estimate then follows
  how that band moves inside the region (a hole's band below, known or restored, carries the onset of
  a fricative up), while within a frame, from the bins below and above, nothing changes; inside a time
  gap the level is interpolated across the gap instead, so there the estimate follows the gap's edges;
- its phase comes from the project's phase reconstruction (dsp.phase), which keeps every other bin.
Only the change inside those bins is added back to the signal, so everything outside them is what it was.
The work is done on stretches of the signal around the masked frames (CONTEXT_SECONDS on each side), so
a few short regions in a long file cost little time and memory.
"""

from __future__ import annotations

import numpy as np
import torch

from ..allocator import release_freed_memory
from ..masks import Mask, gap_sample_mask, missing_bins, true_runs
from .interpolation import interpolate_log_magnitude
from .phase import reconstruct_spectrogram
from .spectral import StftGrid, log_magnitude

# soxr's VHQ filter keeps a 16 kHz signal flat up to here (-0.1 dB; -3 dB near 7.6 kHz, -60 at 7.9).
SPLIT_HZ = 7400.0
# The band whose restored level ties the estimate above SPLIT_HZ to the frame it is in.
TIE_HZ = 4000.0
# Averaging log-magnitudes lands this far below the log of the mean power of noise-like bins (half
# the Euler-Mascheroni constant, in nepers: 2.5 dB), so the estimate is raised by it.
LOG_MEAN_BIAS = float(np.euler_gamma / 2)
# How much of the tie band's level moves the estimate (benchmarks/fullband.py).
TIE_SHARE = 1.0
# Phase iterations on the upper band: noise-like, so few are needed (4, 8 and 16 score the same in
# benchmarks/fullband.py).
UPPER_ITERS = 4
# Known signal kept on each side of the masked frames for the interpolation, and frames beyond it for
# the STFT's own edges.
CONTEXT_SECONDS = 0.1
# A stretch longer than this is worked in pieces, so memory stays flat on long regions.
MAX_STRETCH_SECONDS = 20.0


def gap_frames(mask: Mask, grid: StftGrid, num_frames: int) -> np.ndarray:
    """Bool [T]: the frames whose window reaches into a time gap of the mask."""
    out = np.zeros(num_frames, dtype=bool)
    centres = np.arange(num_frames) * grid.hop
    for a, b in true_runs(gap_sample_mask(mask)):
        out[(centres > a - grid.n_fft // 2) & (centres < b + grid.n_fft // 2)] = True
    return out


def upper_bins(mask: Mask, grid: StftGrid) -> np.ndarray:
    """The masked bins [F, T] of the grid above SPLIT_HZ, with every frame whose window reaches into a
    time gap: those frames hold some of the gap's damage, so none of them may serve as a known edge."""
    out = missing_bins(mask, grid)
    out[:, gap_frames(mask, grid, out.shape[1])] = True
    out[grid.bin_freqs() < SPLIT_HZ] = False
    return out


def estimate_log_magnitude(log_mag: torch.Tensor, upper: torch.Tensor, freqs: np.ndarray,
                           gaps: torch.Tensor | None = None, tie_share: float = TIE_SHARE,
                           bias: float = LOG_MEAN_BIAS) -> torch.Tensor:
    """Log-magnitude [F, T] with the `upper` bins estimated (module doc); the others unchanged. gaps:
    bool [T], the frames that reach into a time gap, where the tie band's level is not followed."""
    tie = torch.from_numpy((freqs >= TIE_HZ) & (freqs < SPLIT_HZ))
    level = tie_share * log_mag[tie].mean(dim=0)  # the restored tie band's level per frame
    if gaps is not None and bool(gaps.any()):
        # Inside a time gap the band below is the network's own estimate (blended with the pitch fill),
        # and following it there scored worse than the gap's edges alone (benchmarks/fullband.py,
        # bursts and dropouts): the level is interpolated across the gap instead.
        level = interpolate_log_magnitude(level[None], gaps[None])[0]
    # Only the rows from one below SPLIT_HZ are interpolated: that row is never missing here, so the
    # rows below it would change nothing but the time it takes.
    row = max(0, int(np.searchsorted(freqs, SPLIT_HZ)) - 1)
    estimate = interpolate_log_magnitude(log_mag[row:] - level, upper[row:]) + level + bias
    return torch.cat([log_mag[:row], torch.where(upper[row:], estimate, log_mag[row:])])


def restore_upper_band(signal: np.ndarray, mask: Mask, grid: StftGrid, iterations: int = UPPER_ITERS,
                       kept: np.ndarray | None = None, reference: np.ndarray | None = None,
                       **estimate_options) -> np.ndarray:
    """Estimate the masked bins above SPLIT_HZ of `signal` (one float64 channel at the mask's rate, the
    band below SPLIT_HZ already restored; module doc), in place, and return it; nothing changes where
    no masked bin reaches. kept: samples [n] known to be intact (a gaps-only mask's): held by the phase
    iterations and never changed. reference: the clean signal, whose magnitude then replaces the
    estimate (the oracle). estimate_options: tie_share, bias of estimate_log_magnitude
    (benchmarks/fullband.py's ablations)."""
    out = signal
    n = len(out)
    upper = upper_bins(mask, grid)
    if not upper.any():
        return out
    context = int(np.ceil(CONTEXT_SECONDS * grid.sample_rate / grid.hop)) + grid.n_fft // grid.hop
    longest = max(1, int(MAX_STRETCH_SECONDS * grid.sample_rate / grid.hop))
    freqs = grid.bin_freqs()
    gaps = gap_frames(mask, grid, upper.shape[1])
    for first, own, last in stretches(upper.any(axis=0), context, longest):
        start, stop = first * grid.hop, min(n, last * grid.hop)
        piece = torch.from_numpy(out[start:stop].astype(np.float32))
        spec = grid.stft(piece)
        frames = np.arange(first, first + spec.shape[-1])
        # Bins before this piece's own frames were restored by the piece before: known here.
        holes = np.zeros(spec.shape, dtype=bool)
        inside = frames < upper.shape[1]
        holes[:, inside] = upper[:, frames[inside]] & (frames[inside] >= own[0])
        holes = torch.from_numpy(holes)
        applied = holes & torch.from_numpy(frames < own[1])
        in_gap = torch.from_numpy(np.where(inside, gaps[np.minimum(frames, len(gaps) - 1)], False))
        source = spec if reference is None else grid.stft(torch.from_numpy(reference[start:stop].astype(np.float32)))
        log_mag = log_magnitude(source)
        if reference is None:
            log_mag = estimate_log_magnitude(log_mag, holes, freqs, in_gap, **estimate_options)
        held = None if kept is None else (piece, torch.from_numpy(kept[start:stop]))
        rebuilt = reconstruct_spectrogram(spec, holes, log_mag.exp(), grid, stop - start, n_iter=iterations,
                                          kept_samples=held)
        change = grid.istft(torch.where(applied, rebuilt - spec, 0), stop - start).numpy()
        if kept is not None:
            change[kept[start:stop]] = 0.0
        out[start:stop] += change
        del spec, log_mag, rebuilt, change
        release_freed_memory()  # this stretch's STFTs, before the next one's
    return out


def stretches(flags: np.ndarray, context: int, longest: int) -> list[tuple[int, tuple[int, int], int]]:
    """(first, (own first, own last), last) frame ranges: each piece's own flagged frames, at most
    `longest` of them (runs closer than 2 * context joined), within `context` frames on each side."""
    owns: list[list[int]] = []
    for a, b in true_runs(flags):
        for lo in range(a, b, longest):
            hi = min(lo + longest, b)
            if owns and lo - owns[-1][1] <= 2 * context and hi - owns[-1][0] <= longest:
                owns[-1][1] = hi
            else:
                owns.append([lo, hi])
    return [(max(0, lo - context), (lo, hi), min(len(flags), hi + context)) for lo, hi in owns]
