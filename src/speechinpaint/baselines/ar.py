"""Least-squares AR interpolation of time gaps (Janssen, Veldhuis and Vries 1986), the classic peer for
short gaps.

Each gap is filled from both sides at once: in a segment of the gap and CONTEXT samples on each side,
the missing samples are those that minimise the energy of the AR model's prediction error over the
whole segment, so the fill continues the waveform into the gap from the left and out of it to the
right. That is a banded linear system (bandwidth = the order): with A the prediction-error filter as a
matrix, (A_u' A_u) x_u = -A_u' A_k x_k. The AR model (order ORDER at 16 kHz) is estimated from the
segment's known samples first and then, Janssen's iteration, from the segment with the fill in it.
Samples of other gaps in the segment are unknowns too, so a neighbouring gap never counts as silence.
It only fills time gaps: holes and a missing band are other methods' work.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_toeplitz, solveh_banded

from ..audio import SAMPLE_RATE
from ..errors import SpeechInpaintError
from ..masks import Mask, gap_sample_mask, true_runs
from ..recording import Restorer

ORDER = 40
CONTEXT = 640  # 40 ms on each side of a gap (at least ORDER)
ITERATIONS = 3
RIDGE = 1e-9  # relative to the diagonal, only so that a gap at the very start stays solvable


def ar_coefficients(segment: np.ndarray, known: np.ndarray, order: int) -> np.ndarray:
    """Prediction-error filter [1, a_1, ..., a_p] by the autocorrelation method over each run of known
    samples (Hann-windowed; unknown samples excluded), pooled."""
    r = np.zeros(order + 1)
    for a, b in true_runs(known):
        if b - a > order:
            x = segment[a:b] * np.hanning(b - a)
            full = np.correlate(x, x, "full")[b - a - 1:]
            r[:min(order + 1, len(full))] += full[:order + 1]
    if r[0] <= 0:
        return np.r_[1.0, np.zeros(order)]
    r[0] *= 1 + 1e-6  # white-noise correction: keeps the Toeplitz system well conditioned
    return np.r_[1.0, -solve_toeplitz(r[:order], r[1:order + 1])]


def solve_unknowns(segment: np.ndarray, unknown: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The unknown samples of the segment that minimise the prediction error of filter a over it."""
    p, n = len(a) - 1, len(segment)
    idx = np.flatnonzero(unknown)
    m = len(idx)
    # -A_u' A y0, where y0 is the segment with the unknowns zeroed: the right-hand side.
    residual = np.convolve(np.where(unknown, 0.0, segment), a, "valid")
    rhs = -np.convolve(residual, a[::-1])[idx]
    # (A_u' A_u)[u, v] = sum of a_k a_{k+d} (d = idx[v] - idx[u] <= p) over the k with p <= idx[v]+k < n: banded.
    band = np.zeros((p + 1, m))  # lower form for solveh_banded: band[d, u] = M[u + d, u]
    for d in range(min(p + 1, m)):
        i, j = idx[:m - d], idx[d:]
        delta = j - i
        for lag in np.unique(delta[delta <= p]):
            products = np.r_[0.0, np.cumsum(a[:p + 1 - lag] * a[lag:])]
            sel = np.flatnonzero(delta == lag)
            lo = np.clip(p - j[sel], 0, p + 1 - lag)
            hi = np.clip(n - j[sel], 0, p + 1 - lag)
            band[d, sel] = products[np.maximum(hi, lo)] - products[lo]
    band[0] += RIDGE * np.dot(a, a)
    return solveh_banded(band, rhs, lower=True)


def ar_fill(audio: np.ndarray, gaps: np.ndarray, order: int = ORDER, context: int = CONTEXT,
            iterations: int = ITERATIONS) -> np.ndarray:
    """audio (float) with every sample flagged in gaps filled, gap by gap from left to right."""
    out = np.asarray(audio, dtype=np.float64).copy()
    unknown = gaps.copy()
    context = max(context, order)
    for a, b in true_runs(gaps):
        lo, hi = max(0, a - context), min(len(out), b + context)
        segment, hole = out[lo:hi], unknown[lo:hi]
        if hole.all():
            continue  # nothing known to interpolate from: left as it is
        segment[hole] = 0.0
        for _ in range(iterations):
            known = ~hole if _ == 0 else np.ones_like(hole)
            coeffs = ar_coefficients(segment, known, order)
            segment[hole] = solve_unknowns(segment, hole, coeffs)
        out[lo:hi] = segment
        unknown[a:b] = False  # filled: the next gap's segment takes it as known
    return out


def check_gaps_only(mask: Mask, method: str) -> None:
    other = sum(not mask.is_full_band(r) for r in mask.regions)
    if other:
        raise SpeechInpaintError(f"the {method} method fills time gaps only, but the mask has {other} region"
                                 f"{'s' if other > 1 else ''} that {'are' if other > 1 else 'is'} not a full-band "
                                 "gap: use interp or model (or sbr for a missing upper band)")


def restore_ar(audio: np.ndarray, mask: Mask) -> np.ndarray:
    """16 kHz mono audio with the mask's time gaps filled by least-squares AR interpolation."""
    if mask.sample_rate != SAMPLE_RATE:
        raise SpeechInpaintError(f"ar restores 16 kHz audio; the mask is at {mask.sample_rate} Hz")
    check_gaps_only(mask, "ar")
    gaps = gap_sample_mask(mask)
    filled = ar_fill(audio, gaps)
    return np.where(gaps, filled, audio).astype(np.float32)


class ArRestorer(Restorer):
    """Least-squares AR interpolation of the time gaps (module doc); the intact samples are kept."""

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        return restore_ar(audio, mask)
