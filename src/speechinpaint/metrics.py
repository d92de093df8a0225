"""Scores of an estimate against the original clean speech: STOI, PESQ-wb, LSD, LSD inside the mask, SI-SDR.

Everything that reports a number (evaluate, benchmarks, the demo) calls `score`, so every table in the
project uses one definition of each metric. A metric that cannot be computed for a file (PESQ finds no
utterance, STOI has too few speech frames, LSD-in-mask has no mask) is None, never a made-up value, so
tables can count it as missing instead of silently dropping or flattering the file.
"""

from __future__ import annotations

import warnings

import numpy as np
import pesq as pesq_lib
from pystoi import stoi as pystoi_stoi

from .audio import SAMPLE_RATE
from .errors import SpeechInpaintError
from .masks import Mask, rasterise
from .dsp.spectral import StftGrid

# The LSD convention of the bandwidth-extension literature (AERO / AP-BWE): log10 power of a 2048-point Hann STFT, hop 512.
LSD_GRID = StftGrid(2048, 512)
LSD_FLOOR = 1e-8
# Every key `score` returns, in table order.
METRICS = ("stoi", "pesq", "lsd", "lsd_mask", "si_sdr")
# Guards SI-SDR against 0/0 for silent or identical signals, far below any audible energy.
_SI_SDR_EPS = 1e-12


def check_pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as 1-D float arrays of the same length; anything else is a user error, not a score."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 1 or estimate.ndim != 1:
        raise SpeechInpaintError(
            f"expected mono signals, got reference shape {reference.shape} and estimate shape {estimate.shape}"
        )
    if reference.size != estimate.size:
        raise SpeechInpaintError(
            f"reference has {reference.size} samples but the estimate has {estimate.size}: "
            "they must be the same length to be compared"
        )
    if reference.size == 0:
        raise SpeechInpaintError("cannot score empty signals")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(estimate))):
        raise SpeechInpaintError("cannot score signals with NaN or infinite samples")
    return reference, estimate


def stoi(reference: np.ndarray, estimate: np.ndarray) -> float | None:
    """Classic STOI; None where pystoi finds too few speech frames (it would otherwise return 1e-5)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(reference, estimate, SAMPLE_RATE, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return None
    return value


def pesq_wb(reference: np.ndarray, estimate: np.ndarray) -> tuple[float | None, str | None]:
    """Wide-band PESQ, or (None, reason) for a file PESQ cannot score.

    PesqError covers no utterance found and buffers too short; an all-zero estimate makes the C code
    produce NaN internally, which surfaces as a ValueError. Inputs were validated before, so both mean
    "this file has no PESQ", not a bug.
    """
    try:
        return float(pesq_lib.pesq(SAMPLE_RATE, reference, estimate, "wb")), None
    except (pesq_lib.PesqError, ValueError) as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):  # the C extension reports its messages as bytes
            detail = detail.decode(errors="replace")
        return None, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def log_power(audio: np.ndarray) -> np.ndarray:
    """log10 power [bins, frames] on the LSD grid, floored so silent bins stay finite."""
    spec = LSD_GRID.stft(audio.astype(np.float32)).numpy()
    return np.log10(np.maximum(np.abs(spec) ** 2, LSD_FLOOR))


def lsd_from_log_power(ref_log: np.ndarray, est_log: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """RMS over frequency of the log-power difference per frame, mean over frames.

    With `region` (bool [bins, frames]) the RMS runs over the region's bins of each frame that has any,
    and the mean over those frames only; None when the region is empty.
    """
    sq = (ref_log - est_log) ** 2
    if region is None:
        return float(np.mean(np.sqrt(np.mean(sq, axis=0))))
    counts = region.sum(axis=0)
    frames = counts > 0
    if not frames.any():
        return None
    per_frame = np.sqrt((sq * region).sum(axis=0)[frames] / counts[frames])
    return float(per_frame.mean())


def lsd(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Log-spectral distance in the AERO / AP-BWE convention (LSD_GRID, log10 power)."""
    return lsd_from_log_power(log_power(reference), log_power(estimate))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), on zero-mean signals."""
    ref = reference - reference.mean()
    est = estimate - estimate.mean()
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + _SI_SDR_EPS)
    target = alpha * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + _SI_SDR_EPS) / (np.dot(noise, noise) + _SI_SDR_EPS)))


def score(reference: np.ndarray, estimate: np.ndarray, mask: Mask | None = None) -> dict:
    """All metrics of one estimate against its clean reference (16 kHz mono, same length).

    Returns {metric: value or None for each of METRICS, "pesq_error": reason or None}. With a mask,
    it must belong to a signal of this length; `lsd_mask` is None without a mask or for an empty one.
    """
    reference, estimate = check_pair(reference, estimate)
    ref_log, est_log = log_power(reference), log_power(estimate)
    lsd_mask = None
    if mask is not None:
        mask.check_matches(reference.size, SAMPLE_RATE)
        lsd_mask = lsd_from_log_power(ref_log, est_log, rasterise(mask, LSD_GRID, ref_log.shape[1]))
    pesq_value, pesq_error = pesq_wb(reference, estimate)
    return {
        "stoi": stoi(reference, estimate),
        "pesq": pesq_value,
        "lsd": lsd_from_log_power(ref_log, est_log),
        "lsd_mask": lsd_mask,
        "si_sdr": si_sdr(reference, estimate),
        "pesq_error": pesq_error,
    }
