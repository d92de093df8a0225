"""The three seeded corruptions: holes in the spectrogram, packet-loss gaps, and a removed upper band.

Each returns the corrupted audio and the Mask that describes exactly what was destroyed;
`corrupt_files` does it for a file or a folder and writes NAME.mask.json beside each output.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, check_signal, container_for, output_subtype, read_recording, recording_writer, resample
from .dsp.spectral import SEED_GRID, StftGrid
from .errors import SpeechInpaintError
from .files import atomic_write_all, file_pairs, for_each_file, refuse_overwrite
from .masks import Mask, Region, gap_sample_mask, mask_path_for, mask_writer, rasterise, true_runs

KINDS = ("holes", "gaps", "band")

# The seed's hole sizes on its 640/320 grid: 5-15 frames (100-300 ms) by 40-200 bins (1-5 kHz).
HOLE_FRAMES = (5, 15)
HOLE_BINS = (40, 200)
PACKET_SAMPLES = 320  # 20 ms packets
MAX_BURST_PACKETS = 6  # bursts up to 120 ms
# soxr's anti-alias filter is flat to 0.91 of the new Nyquist frequency: the damage starts there.
BAND_PASSBAND = 0.91


def file_seed(seed: int, name: str) -> int:
    """A per-file seed from the run's seed and the file's relative name, independent of processing order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _hole_region(a: int, b: int, k0: int, k1: int, num_samples: int, max_freq: float) -> Region:
    """Frames a..b-1 and bins k0..k1 of the seed grid (its 25 Hz bins continued up to max_freq), as the
    physical cell they cover.

    The cell is clipped to the signal and to max_freq, so a hole over the last frames or bins still validates.
    """
    g = SEED_GRID
    half_hop = g.hop / 2 / g.sample_rate
    df = g.sample_rate / g.n_fft
    return Region(
        t0=max(a * g.hop / g.sample_rate - half_hop, 0.0),
        t1=min(b * g.hop / g.sample_rate - half_hop, num_samples / g.sample_rate),
        f0=max((k0 - 0.5) * df, 0.0),
        f1=min((k1 + 0.5) * df, max_freq),
    )


def holes_mask(num_samples: int, rng: np.random.Generator, coverage: float = 0.30,
               max_freq: float = SAMPLE_RATE / 2) -> Mask:
    """Place the seed's rectangles until a true `coverage` of the seed grid is missing; num_samples at
    16 kHz. max_freq: the top of the band the holes are placed in (above 8 kHz the seed's 25 Hz bins
    are continued up to it, for a recording at a higher rate; the mask is then in 16 kHz time only).

    The last hole is narrowed so the covered fraction lands on the target instead of overshooting it.
    """
    g = SEED_GRID
    df = g.sample_rate / g.n_fft
    num_bins = int(max_freq / df) + 1
    num_frames = g.num_frames(num_samples)
    # A mask region ends inside the signal, so only frames centred before its end can be holes
    # (the centred STFT has one more frame, centred exactly on the end, when hop divides the length).
    usable = -(-num_samples // g.hop)
    covered = np.zeros((num_bins, num_frames), dtype=bool)
    target = int(round(coverage * covered.size))
    regions: list[Region] = []
    tries = done = 0  # done: the covered cells, counted as holes add them (not a sum over the grid per hole)
    while done < target and tries < 10000:
        tries += 1
        dur = min(int(rng.integers(HOLE_FRAMES[0], HOLE_FRAMES[1] + 1)), max(usable - 1, 1))
        width = min(int(rng.integers(HOLE_BINS[0], HOLE_BINS[1] + 1)), num_bins)
        a = int(rng.integers(0, usable - dur + 1))
        k0 = int(rng.integers(0, num_bins - width + 1))
        need = target - done
        while width > 1 and np.count_nonzero(~covered[k0:k0 + width, a:a + dur]) > need:
            width -= 1
        new = np.count_nonzero(~covered[k0:k0 + width, a:a + dur])
        if not new:
            continue
        covered[k0:k0 + width, a:a + dur] = True
        done += new
        regions.append(_hole_region(a, a + dur, k0, k0 + width - 1, num_samples, max_freq))
    return Mask(SAMPLE_RATE, num_samples, regions)


def seed_grid_at(sample_rate: int) -> StftGrid:
    """The seed's grid (40 ms windows, 20 ms hop) at another rate."""
    hop = int(round(SEED_GRID.hop * sample_rate / SAMPLE_RATE))
    return StftGrid(2 * hop, hop, sample_rate)


def apply_holes(audio: np.ndarray, mask: Mask) -> np.ndarray:
    """Zero the masked bins of the seed-grid STFT (at the mask's rate) and invert, as the seed corrupted
    its audio. audio: [samples] or [channels, samples]."""
    grid = SEED_GRID if mask.sample_rate == SAMPLE_RATE else seed_grid_at(mask.sample_rate)
    spec = grid.stft(audio)
    missing = torch.from_numpy(rasterise(mask, grid, spec.shape[-1]))
    spec = spec.masked_fill(missing, 0)
    return grid.istft(spec, audio.shape[-1]).numpy()


def gaps_mask(num_samples: int, rng: np.random.Generator, loss_rate: float = 0.2, sample_rate: int = SAMPLE_RATE) -> Mask:
    """Lose 20 ms packets in bursts of 1-6 until `loss_rate` of the packets are gone.

    Bursts are kept apart by at least one received packet, so none grows past 120 ms by merging.
    """
    packet = PACKET_SAMPLES * sample_rate // SAMPLE_RATE
    num_packets = -(-num_samples // packet)
    lost = np.zeros(num_packets, dtype=bool)
    target = int(round(loss_rate * num_packets))
    tries = 0
    while lost.sum() < target and tries < 10000:
        tries += 1
        burst = min(int(rng.integers(1, MAX_BURST_PACKETS + 1)), target - int(lost.sum()))
        start = int(rng.integers(0, num_packets - burst + 1))
        lo, hi = max(start - 1, 0), min(start + burst + 1, num_packets)
        if lost[lo:hi].any():
            continue
        lost[start:start + burst] = True
    regions = []
    for a, b in true_runs(lost):
        t1 = min(b * packet, num_samples) / sample_rate
        regions.append(Region(a * packet / sample_rate, t1, 0.0, sample_rate / 2))
    return Mask(sample_rate, num_samples, regions)


def apply_gaps(audio: np.ndarray, mask: Mask) -> np.ndarray:
    """Zero the samples of every lost packet, as a receiver without concealment would."""
    out = audio.copy()
    out[gap_sample_mask(mask)] = 0.0
    return out


def band_mask(num_samples: int, cutoff_hz: float = 4000.0, sample_rate: int = SAMPLE_RATE) -> Mask:
    """One region over the whole file from where the resampler's filter starts to cut, up to Nyquist."""
    f0 = BAND_PASSBAND * cutoff_hz
    return Mask(sample_rate, num_samples, [Region(0.0, num_samples / sample_rate, f0, sample_rate / 2)])


def apply_band(audio: np.ndarray, cutoff_hz: float = 4000.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample to twice the cutoff and back: a real narrow-band channel, not a brick-wall filter."""
    low_rate = int(round(2 * cutoff_hz))
    narrow = resample(audio, sample_rate, low_rate)
    wide = resample(narrow, low_rate, sample_rate)
    return wide[: len(audio)] if len(wide) >= len(audio) else np.pad(wide, (0, len(audio) - len(wide)))


def corrupt(
    audio: np.ndarray,
    kind: str,
    seed: int = 0,
    coverage: float = 0.30,
    loss_rate: float = 0.2,
    cutoff_hz: float = 4000.0,
) -> tuple[np.ndarray, Mask]:
    """Corrupt 16 kHz mono audio; returns (corrupted audio, mask of what was destroyed).

    Options out of range are the user's input, so they get a SpeechInpaintError (one line in the CLI).
    """
    rng = np.random.default_rng(seed)
    n = len(audio)
    _check_options(kind, coverage, loss_rate, cutoff_hz, SAMPLE_RATE)
    if kind == "holes":
        mask = holes_mask(n, rng, coverage)
        return apply_holes(audio, mask).astype(np.float32), mask
    if kind == "gaps":
        mask = gaps_mask(n, rng, loss_rate)
        return apply_gaps(audio, mask).astype(np.float32), mask
    return apply_band(audio, cutoff_hz).astype(np.float32), band_mask(n, cutoff_hz)


def corrupt_signal(signal: np.ndarray, sample_rate: int, kind: str, seed: int = 0, coverage: float = 0.30,
                   loss_rate: float = 0.2, cutoff_hz: float = 4000.0,
                   max_freq: float | None = None) -> tuple[np.ndarray, Mask]:
    """Corrupt [channels, samples] at its own rate, every channel with the same mask (in the signal's
    terms). Holes are placed as at 16 kHz, from 0 Hz up to max_freq (default: the signal's Nyquist
    frequency), and cut on the seed's grid at the signal's rate; packets are 20 ms; the band is cut by
    resampling to twice the cutoff and back."""
    top = sample_rate / 2 if max_freq is None else float(max_freq)
    if kind == "holes" and not HOLE_BINS[0] * SEED_GRID.sample_rate / SEED_GRID.n_fft <= top <= sample_rate / 2:
        raise SpeechInpaintError(f"--max-freq must lie between {HOLE_BINS[0] * 25} Hz (the narrowest hole) and the "
                                 f"file's Nyquist frequency, {sample_rate / 2:.0f} Hz (got {top:g})")
    if sample_rate == SAMPLE_RATE and top == SAMPLE_RATE / 2:
        pairs = [corrupt(ch.astype(np.float32), kind, seed, coverage, loss_rate, cutoff_hz) for ch in signal]
        return np.stack([p[0] for p in pairs]).astype(np.float64), pairs[0][1]
    rng = np.random.default_rng(seed)
    n = signal.shape[1]
    _check_options(kind, coverage, loss_rate, cutoff_hz, sample_rate)
    if kind == "holes":
        placed = holes_mask(int(round(n * SAMPLE_RATE / sample_rate)), rng, coverage, top)
        mask = Mask(sample_rate, n, [Region(r.t0, min(r.t1, n / sample_rate), r.f0, r.f1) for r in placed.regions])
        return apply_holes(signal.astype(np.float32), mask).astype(np.float64), mask
    if kind == "gaps":
        mask = gaps_mask(n, rng, loss_rate, sample_rate)
        out = signal.copy()
        out[:, gap_sample_mask(mask)] = 0.0
        return out, mask
    out = np.stack([apply_band(ch, cutoff_hz, sample_rate) for ch in signal]).astype(np.float64)
    return out, band_mask(n, cutoff_hz, sample_rate)


def _check_options(kind: str, coverage: float, loss_rate: float, cutoff_hz: float, sample_rate: int) -> None:
    """Options out of range are the user's input, so they get a SpeechInpaintError (one line in the CLI)."""
    if kind not in KINDS:
        raise SpeechInpaintError(f"unknown corruption kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "holes" and not 0 < coverage < 1:
        raise SpeechInpaintError(f"coverage must lie strictly between 0 and 1 (got {coverage})")
    if kind == "gaps" and not 0 < loss_rate < 1:
        raise SpeechInpaintError(f"loss rate must lie strictly between 0 and 1 (got {loss_rate})")
    top = min(sample_rate, SAMPLE_RATE) // 2
    if kind == "band" and not 0 < cutoff_hz < top:
        raise SpeechInpaintError(f"cutoff must lie strictly between 0 and {top} Hz (got {cutoff_hz})")


def corrupt_files(input: str | Path, output: str | Path, kind: str, seed: int = 0, coverage: float = 0.30,
                  loss_rate: float = 0.2, cutoff_hz: float = 4000.0, subtype: str | None = None,
                  max_freq: float | None = None) -> int:
    """`speechinpaint corrupt`: each file damaged at its own rate and channels and written in its own
    format (or `subtype`), with NAME.mask.json in its terms beside it, both or neither; each file's seed
    comes from `seed` and its relative name; holes reach up to max_freq (default: each file's Nyquist
    frequency). Returns the exit status (1 if any file failed)."""

    def work(src: Path, dst: Path, name: str) -> None:
        recording = read_recording(src)
        check_signal(recording.samples.mean(axis=0).astype(np.float32), str(src))
        bad, mask = corrupt_signal(recording.samples, recording.sample_rate, kind, file_seed(seed, name),
                                   coverage, loss_rate, cutoff_hz, max_freq)
        chosen, note = output_subtype(dst, recording.subtype, subtype, recording.container)
        if note:
            print(note, file=sys.stderr)
        mask_file = mask_path_for(dst)
        refuse_overwrite(mask_file, [src, mask_path_for(src)])
        atomic_write_all([(dst, recording_writer(dst, bad, recording.sample_rate, chosen)),
                          (mask_file, mask_writer(mask_file, mask))])

    pairs = file_pairs(input, output)
    for _, dst, _ in pairs:
        container_for(dst)
    return for_each_file(pairs, work, "corrupt", "corrupted")
