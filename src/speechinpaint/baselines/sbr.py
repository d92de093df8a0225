"""Spectral band replication of a missing upper band, the classic peer for the band (blind bandwidth
extension in the manner of SBR, without its side information).

On the model grid (512-point Hann, hop 128) every frame's missing band, from the band edge to the top,
is filled by copy-up: the SOURCE_HZ of fine structure just below the edge (the 2-4 kHz band for a 4 kHz
cutoff) is repeated upwards, each copy shifted by a whole number of 4-bin steps so that, with a hop of
a quarter window, the copy is a coherent frequency shift and keeps the copied bins' phase. The fine
structure is the source's log magnitude less its smoothed envelope; it is laid on an envelope
extrapolated from the narrowband edge: a line fitted to the smoothed log envelope over FIT_HZ below the
edge, its slope held between MAX_FALL and 0 per kHz. Bins below the edge and frames outside the region
are the input's own.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from ..audio import SAMPLE_RATE
from ..dsp.spectral import MODEL_GRID
from ..errors import SpeechInpaintError
from ..masks import Mask, missing_bins
from ..recording import Restorer

SOURCE_HZ = 2000.0  # width of the copied fine structure, just below the edge
FIT_HZ = 2000.0  # the envelope's line is fitted over this band below the edge
SMOOTH_HZ = 500.0  # the envelope: log magnitude averaged over this width
MAX_FALL = 6.0  # dB per kHz: the steepest fall the extrapolated envelope may take
STEP = 4  # bins: MODEL_GRID's n_fft / hop, the shift that keeps the STFT coherent
MIN_SOURCE_BINS = 4 * STEP  # the least source below the edge worth copying up


def band_region(mask: Mask):
    """The one upper-band region of the mask, or one clear error."""
    regions = mask.regions
    if len(regions) != 1 or mask.is_full_band(regions[0]) or regions[0].f1 < mask.nyquist - 1e-6 \
            or regions[0].f0 <= 0:
        raise SpeechInpaintError("the sbr method fills one missing upper band (a single region from the band edge to "
                                 f"{mask.nyquist:.0f} Hz), but this mask has {len(regions)} region"
                                 f"{'s' if len(regions) != 1 else ''} of another shape: use interp or model "
                                 "(or ar, opus-plc for time gaps)")
    return regions[0]


def copy_up_source(edge: int, bins: int, df: float) -> np.ndarray:
    """The source bin of every bin from `edge` to `bins` - 1: the SOURCE_HZ just below the edge, repeated
    upwards in whole STEPs, so that copying a source bin's phase keeps the STFT coherent."""
    width = int(min(SOURCE_HZ / df, edge - 1) // STEP * STEP)
    if width < MIN_SOURCE_BINS:
        raise SpeechInpaintError(f"copying up needs at least {MIN_SOURCE_BINS * df:.0f} Hz below the band edge to copy "
                                 f"from, but the band starts at {edge * df:.0f} Hz")
    return edge - width + (np.arange(edge, bins) - edge) % width


def replicate(log_mag: np.ndarray, edge: int, df: float) -> np.ndarray:
    """[bins, frames] log magnitude (natural log) with bins from `edge` up replaced by copy-up; also
    the source bin of every target bin, so the caller can copy its phase."""
    bins = log_mag.shape[0]
    source = copy_up_source(edge, bins, df)
    smooth = max(1, int(round(SMOOTH_HZ / df)))
    envelope = uniform_filter1d(log_mag, smooth, axis=0, mode="nearest")
    fine = log_mag - envelope
    # The envelope's line over FIT_HZ below the edge (its own smoothing half-width kept clear of the edge).
    top = edge - smooth // 2
    lo = max(1, top - int(FIT_HZ / df))
    k = np.arange(lo, top)
    kc = k - k.mean()
    slope = (kc @ envelope[lo:top]) / (kc @ kc)  # per bin, for every frame
    fall = MAX_FALL / 20 * np.log(10) * df / 1000  # MAX_FALL dB/kHz in nepers per bin
    slope = np.clip(slope, -fall, 0.0)
    level = envelope[lo:top].mean(axis=0) + slope * (top - 1 - k.mean())  # the line at the last fitted bin
    out = log_mag.copy()
    target = np.arange(edge, bins)
    out[edge:] = level + slope * (target - top + 1)[:, None] + fine[source]
    return out, source


def restore_sbr(audio: np.ndarray, mask: Mask) -> np.ndarray:
    """16 kHz mono audio with the mask's missing upper band filled by spectral band replication."""
    if mask.sample_rate != SAMPLE_RATE:
        raise SpeechInpaintError(f"sbr restores 16 kHz audio; the mask is at {mask.sample_rate} Hz")
    region = band_region(mask)
    grid = MODEL_GRID
    df = grid.sample_rate / grid.n_fft
    edge = int(np.ceil(region.f0 / df))
    spec = grid.stft(torch.from_numpy(np.asarray(audio, dtype=np.float32))).numpy()
    log_mag = np.log(np.abs(spec) + 1e-8)
    filled, source = replicate(log_mag, edge, df)
    phase = np.exp(1j * np.angle(spec[source]))
    new = spec.copy()
    new[edge:] = np.exp(filled[edge:]) * phase
    inside = missing_bins(mask, grid, spec.shape[-1])
    out = np.where(inside, new, spec)
    return grid.istft(torch.from_numpy(out), len(audio)).numpy().astype(np.float32)


class SbrRestorer(Restorer):
    """Spectral band replication of the missing upper band (module doc)."""

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        return restore_sbr(audio, mask)
