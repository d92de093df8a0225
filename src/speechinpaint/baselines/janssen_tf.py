"""Janssen-TF: Janssen's AR interpolation with the spectrogram as what is known (Mokrý, Balušík and Rajmic,
"Janssen 2.0: audio inpainting in the time-frequency domain", EUSIPCO 2025), the published
training-free peer for holes.

Janssen's iteration (baselines/ar.py runs it on time gaps) alternates two steps: fit an AR model to the
current estimate of the signal, then take the signal whose prediction error under that model has the
least energy among those that agree with what is known. Here what is known is the STFT's known bins,
so the second step is

    min_x 1/2 ||A x||^2  subject to  STFT(x) = the known coefficients wherever they are known,

with A the prediction-error filter as a convolution matrix. As in the paper it is solved by ADMM
with the constraint on the coefficients z = STFT(x): the x-step applies (I + GAMMA A'A)^-1 to the
least-squares inverse STFT of z - u (with the filter taken as circular, so that inverse is a division
of spectra), the z-step puts the known coefficients back, u gathers the difference. The AR model is
fitted by the autocorrelation method (baselines.ar.ar_coefficients) to the whole segment.

As in the paper, each stretch of damaged frames is solved on its own segment of the signal with known
frames around it; a stretch longer than BLOCK frames (dense holes run into each other) is cut into
blocks, so that one AR model describes each. Every segment has BLOCK + 2 * MARGIN frames (more known
context around a short stretch), so all of them run at once as one batch. The estimate of the
missing bins is the solved segment's own STFT there; the known bins are kept exactly. Parameters: the
paper's (ORDER 32 ms, 5 Janssen iterations, GAMMA 10) on the model grid (32 ms / 8 ms), with fewer
ADMM steps than its 1000 (ADMM_STEPS; benchmarks/janssen_tf.py shows what more of them change).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

from ..audio import SAMPLE_RATE
from ..dsp.spectral import MODEL_GRID
from ..masks import Mask, missing_bins, true_runs
from ..reconstruction import restore_from_magnitude
from ..recording import Restorer
from .ar import ar_coefficients

ORDER = round(0.032 * SAMPLE_RATE)  # the paper's AR order: 32 ms
OUTER = 5  # Janssen iterations (AR fit, then signal)
ADMM_STEPS = 200
GAMMA = 10.0
MARGIN = 5  # known frames on each side of a stretch, at least (the paper's)
BLOCK = 40  # damaged frames one AR model describes at most: 320 ms
# The inverse STFT divides by the windows' summed square; at a segment's two ends few windows reach a
# sample and that sum tends to 0, so it is floored at this share of its peak (the ADMM diverges without).
FLOOR = 0.1

WINDOW = MODEL_GRID.window().double().numpy()
HOP, N_FFT = MODEL_GRID.hop, MODEL_GRID.n_fft
SPAN = N_FFT // HOP  # hops one frame spans


def analysis(x: np.ndarray) -> np.ndarray:
    """STFT [..., bins, frames] of segments [..., samples] on the model grid, every frame wholly inside
    (frame k starts at sample k * HOP), as MODEL_GRID.stft() frames the signal padded by N_FFT / 2."""
    frames = sliding_window_view(x, N_FFT, axis=-1)[..., ::HOP, :]
    return np.swapaxes(fft.rfft(frames * WINDOW, axis=-1), -1, -2)


def overlap_add(frames: np.ndarray) -> np.ndarray:
    """Frames [..., n, N_FFT] placed HOP apart and summed: [..., (n - 1) * HOP + N_FFT]."""
    n = frames.shape[-2]
    parts = frames.reshape(*frames.shape[:-1], SPAN, HOP)
    out = np.zeros((*frames.shape[:-2], n + SPAN - 1, HOP))
    for j in range(SPAN):
        out[..., j:j + n, :] += parts[..., j, :]
    return out.reshape(*frames.shape[:-2], -1)


def synthesis(c: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """The least-squares inverse of analysis(): the windowed frames overlap-added, times `envelope` (one
    over the windows' summed square, floored at the segment's ends: FLOOR)."""
    frames = fft.irfft(np.swapaxes(c, -1, -2), N_FFT, axis=-1) * WINDOW
    return overlap_add(frames) * envelope


def ar_step(x: np.ndarray, coeffs: np.ndarray, size: int) -> np.ndarray:
    """(I + GAMMA A'A)^-1 x for each segment, A the filter `coeffs` as a circular convolution of `size`."""
    response = fft.rfft(coeffs, size, axis=-1)
    solved = fft.irfft(fft.rfft(x, size, axis=-1) / (1 + GAMMA * np.abs(response) ** 2), size, axis=-1)
    return solved[..., :x.shape[-1]]


def solve_segments(segments: np.ndarray, known: np.ndarray, coefs: np.ndarray, steps: int = ADMM_STEPS,
                   outer: int = OUTER, order: int = ORDER) -> np.ndarray:
    """Janssen-TF on a batch of segments [B, samples]: known [B, bins, frames] flags the coefficients
    coefs [B, bins, frames] (analysis() of each segment) that are known. Returns the solved segments."""
    n = known.shape[-1]
    cover = overlap_add(np.broadcast_to(WINDOW ** 2, (n, N_FFT)))
    envelope = 1 / np.maximum(cover, FLOOR * cover.max())
    size = fft.next_fast_len(segments.shape[-1] + order)
    x = segments.astype(np.float64)
    for _ in range(outer):
        filters = np.stack([ar_coefficients(s, np.ones(len(s), bool), order) for s in x])
        z = analysis(x)
        u = np.zeros_like(z)
        for _ in range(steps):
            x = ar_step(synthesis(z - u, envelope), filters, size)
            kx = analysis(x)
            z = np.where(known, coefs, kx + u)
            u += kx - z
    return x


def blocks(damaged: np.ndarray, block: int = BLOCK) -> list[tuple[int, int]]:
    """The stretches of damaged frames, each cut into blocks of at most `block` frames of equal length."""
    out = []
    for a, b in true_runs(damaged):
        pieces = -(-(b - a) // block)
        edges = np.linspace(a, b, pieces + 1).round().astype(int)
        out += list(zip(edges[:-1], edges[1:]))
    return out


def janssen_tf(spec: torch.Tensor, missing: np.ndarray, steps: int = ADMM_STEPS, outer: int = OUTER) -> torch.Tensor:
    """The complex STFT [bins, frames] on the model grid `spec` with its missing bins (bool [bins,
    frames]) filled by Janssen-TF; the known bins are kept. The solution starts from the signal of the
    known bins alone (the missing ones zero)."""
    spec = spec.numpy().astype(np.complex128)
    num_frames = spec.shape[-1]
    length = (num_frames - 1) * HOP
    audio = MODEL_GRID.istft(torch.from_numpy(np.where(missing, 0, spec)), length).double().numpy()
    padded = np.pad(audio, N_FFT // 2)
    spans = blocks(missing.any(axis=0))
    if not spans:
        return torch.from_numpy(spec)
    n = min(num_frames, BLOCK + 2 * MARGIN)
    starts = [int(np.clip((a + b - n) // 2, 0, num_frames - n)) for a, b in spans]
    size = (n - 1) * HOP + N_FFT
    segments = np.stack([padded[lo * HOP:lo * HOP + size] for lo in starts])
    known = np.stack([~missing[:, lo:lo + n] for lo in starts])
    coefs = np.stack([spec[:, lo:lo + n] for lo in starts])
    solved = analysis(solve_segments(segments, known, coefs, steps, outer))
    out = spec.copy()
    for (a, b), lo, estimate in zip(spans, starts, solved):
        out[:, a:b] = np.where(missing[:, a:b], estimate[:, a - lo:b - lo], out[:, a:b])
    return torch.from_numpy(out)


class JanssenTfRestorer(Restorer):
    """Janssen-TF (module doc): the missing bins of holes, gaps or a band from the solved segments' STFT,
    the known bins kept."""

    def __init__(self, steps: int = ADMM_STEPS, outer: int = OUTER):
        super().__init__()
        self.steps, self.outer = steps, outer

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        missing = missing_bins(mask)
        spec = janssen_tf(MODEL_GRID.stft(torch.from_numpy(audio)), missing, self.steps, self.outer).to(torch.complex64)
        return restore_from_magnitude(audio, mask, spec.abs(), missing, 0, spec.angle())
