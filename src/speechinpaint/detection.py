"""Blind damage detection: estimate the mask of corrupted speech from the audio alone (`--mask auto`).

Three detectors, one per kind of damage the project restores, each looking for what natural speech
does not do:

- packet loss (`gaps`): runs of exact zeros with live signal on both sides. Natural recordings also hold
  digital silence (a gated pause, the lead-in of a file, clips joined with silence), so a run is only
  marked when it is packet-sized (10 ms .. 130 ms) and both of its neighbours carry signal above the
  quietest level a recording keeps. Digital silence longer than 130 ms, or touching the start or end of
  the file, is treated as intended silence and never marked: restoring it would invent speech.
- a missing upper band (`band`): the long-term spectrum falls by tens of dB within a few hundred Hz and
  stays at its floor up to Nyquist. One region from the lower edge of the transition to Nyquist, over
  the whole file.
- zeroed time-frequency rectangles (`holes`): a hole holds nothing but the rounding noise of the file's
  sample format (16- or 24-bit), or numerical dust in a float file. Rounding noise is white, so on the
  640/320 grid the holes are punched on, a hole is a connected patch of bins whose mean power is that
  noise's predicted power (q^2 / 12 under the window) within 1.5 dB; a quiet natural patch holds the
  same rounding noise plus whatever the recording had beneath it (its own noise, a codec's residue),
  which lifts it above that. Loud speech around a hole leaks into the bins along its edges and lifts
  the patch's mean; such a patch still counts when its median bin is at the noise and speech walls it
  in (a natural quiet patch fades into quiet bins). Patches where every bin is dark and no speech lies
  within a hole's length on both sides are pauses, not holes.
  Overlapping holes are found as one patch: the shape is not tested, only what fills it.

Regions are written in seconds and Hz on the cells of the grid they were found on, as the corruptions
write theirs, so the mask rasterises onto any grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from .audio import MIN_SAMPLES, SAMPLE_RATE, SILENCE_PEAK
from .errors import SpeechInpaintError
from .masks import MASK_SUFFIX, Mask, Region, cells_to_regions, true_runs
from .spectral import SEED_GRID, StftGrid

# --- gaps --------------------------------------------------------------------------------------------
GAP_MIN_SAMPLES = 160  # 10 ms: shorter zero runs happen at zero crossings of quiet 16-bit audio
GAP_MAX_SECONDS = 0.13  # longer digital silence is an intended pause, not a lost burst (<= 120 ms)
GAP_CONTEXT_SAMPLES = 160  # 10 ms each side to judge whether the signal around a run is live
GAP_CONTEXT_RMS = 10 ** (-78 / 20)  # below about 3 LSB of 16-bit audio the neighbours are silence too

# --- band --------------------------------------------------------------------------------------------
BAND_GRID = StftGrid(1024, 256)
BAND_MIN_DROP_DB = 30.0  # the stop band lies this far below the pass band just under the cutoff
BAND_STOP_SPREAD_DB = 12.0  # and stays flat (within this of its median) up to Nyquist
BAND_EDGE_DB = 3.0  # the lower edge of the transition: first bin this far below the pass band
BAND_MIN_HZ = 1000.0  # a cutoff below this is no speech channel; above Nyquist - 300 Hz is no cutoff

# --- holes -------------------------------------------------------------------------------------------
DIGITAL_SILENCE_DB = -200.0  # below any real recording's noise: the bin holds exact zeros
PCM_FULL_SCALES = (32768.0, 32767.0, 8388608.0, 8388607.0)  # 16- and 24-bit, both scaling conventions
HOLE_NOISE_MARGIN_DB = 10.0  # rounding noise exceeds its mean power by 10 dB in e^-10 of the bins
FLOAT_HOLE_DB = -110.0  # a float file's hole: leakage only, far below any recording's noise
HOLE_MAX_EXCESS_DB = 1.5  # a hole holds the rounding noise alone; a quiet natural patch holds more
NOISE_MEDIAN_DB = 10 * np.log10(np.log(2))  # a white-noise bin's median power against its mean
HOLE_WALL_DB = 25.0  # a cell this far above the rounding noise holds speech (a hole's wall)
HOLE_WALLED_FRACTION = 0.5  # a hole walled in by speech this much may hold its walls' leakage
HOLE_MIN_BINS = 20  # 500 Hz on the seed grid: the seed's holes are at least 1 kHz wide
HOLE_MIN_FRAMES = 3  # the seed's holes last 5-15 frames; their dark core (edge frames leak) 3-13
HOLE_FILL_BINS = 3  # the rounding noise pokes a few bins through a hole's threshold: fill such speckle
HOLE_LIVE_DB = 25.0  # a frame needs bins this far above the hole level to hold speech
HOLE_LIVE_FRACTION = 0.1  # ... and at least this share of its bins
HOLE_SPAN_FRAMES = 15  # the longest hole: a wholly dark stretch needs speech this near on both sides
HOLE_GROW_BINS = 1  # cells a found patch grows by: its edge bins and edge frames are partly refilled
HOLE_GROW_FRAMES = 1
HOLE_FULL_BAND = 0.95  # a frame dark over this share of its bins is wholly dark


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def detect_gaps(audio: np.ndarray) -> np.ndarray:
    """Boolean [samples] array, True inside zero runs that look like lost packets (see the module doc)."""
    zero = audio == 0.0
    out = np.zeros(len(audio), dtype=bool)
    max_len = int(GAP_MAX_SECONDS * SAMPLE_RATE)
    for a, b in true_runs(zero):
        if b - a < GAP_MIN_SAMPLES or b - a > max_len or a == 0 or b == len(audio):
            continue
        before = audio[max(a - GAP_CONTEXT_SAMPLES, 0):a]
        after = audio[b:b + GAP_CONTEXT_SAMPLES]
        if min(_rms(before), _rms(after)) >= GAP_CONTEXT_RMS:
            out[a:b] = True
    return out


def _db(spec: torch.Tensor) -> np.ndarray:
    return (20 * np.log10(spec.abs().numpy().astype(np.float64) + 1e-12)).astype(np.float32)


def detect_band(audio: np.ndarray, ignore: np.ndarray | None = None) -> float | None:
    """Lower edge in Hz of a missing upper band, or None when the file keeps its full band.

    The long-term spectrum is taken over the frames that hold signal (lost packets excluded), so pauses
    do not dilute it, in two ways, and the band counts as missing when either shows it: the mean power
    per bin, which a quiet voice needs (most of its frames are at the noise floor, so their median is
    too), and the median power per bin, which a loud one needs (where band-limiting pushed peaks past
    full scale, the few clipped frames spread distortion over the stop band and lift its mean).
    """
    spec = BAND_GRID.stft(torch.from_numpy(audio)).abs().numpy() ** 2
    frames = np.arange(spec.shape[1]) * BAND_GRID.hop
    keep = spec.sum(0) > 0
    if ignore is not None and ignore.any():
        keep &= ~ignore[np.clip(frames, 0, len(audio) - 1)]
    if keep.sum() < 4:
        return None
    for power in (spec[:, keep].mean(1), np.median(spec[:, keep], axis=1)):
        edge = _band_edge(10 * np.log10(power + 1e-20))
        if edge is not None:
            return edge
    return None


def _band_edge(level: np.ndarray) -> float | None:
    """The lower edge in Hz of the stop band of a long-term spectrum in dB per bin, or None."""
    freqs = BAND_GRID.bin_freqs()
    nyq = SAMPLE_RATE / 2
    # Candidate cutoffs from the top down: the stop band [k, end] must be flat and far below the
    # pass band [k - 500 Hz, k - 200 Hz]; the lowest such k is where the floor starts.
    df = freqs[1]
    below = int(round(500 / df)), int(round(200 / df))
    stop_start = None
    for k in range(len(freqs) - int(round(300 / df)), int(BAND_MIN_HZ / df), -1):
        stop = level[k:]
        pass_level = np.median(level[k - below[0]:k - below[1]])
        floor = np.median(stop)
        if pass_level - floor < BAND_MIN_DROP_DB or np.max(stop) - floor > BAND_STOP_SPREAD_DB:
            if stop_start is not None:
                break
            continue
        stop_start = k
    if stop_start is None:
        return None
    pass_level = np.median(level[stop_start - below[0]:stop_start - below[1]])
    k = stop_start
    while k > 0 and level[k - 1] < pass_level - BAND_EDGE_DB:
        k -= 1
    edge = freqs[k] - df / 2
    return float(edge) if BAND_MIN_HZ <= edge < nyq else None


def _fill_short(flags: np.ndarray, longest: int) -> np.ndarray:
    """Fill runs of False no longer than `longest` between True cells along axis 0 (speckle in a hole)."""
    out = flags.copy()
    for t in range(flags.shape[1]):
        col = flags[:, t]
        for a, b in true_runs(~col):
            if 0 < a and b < len(col) and b - a <= longest:
                out[a:b, t] = True
    return out


def quantisation_step(audio: np.ndarray) -> float | None:
    """The step of the PCM lattice the samples sit on (a 16- or 24-bit file), or None for float audio."""
    scaled = audio.astype(np.float64)
    for full_scale in PCM_FULL_SCALES:
        if np.all(np.abs(scaled * full_scale - np.round(scaled * full_scale)) < 1e-3):
            return 1.0 / full_scale
    return None


def _near_speech(live: np.ndarray, span: int) -> np.ndarray:
    """Frames with a live frame at most `span` frames before them and at most `span` after them."""
    idx = np.flatnonzero(live)
    t = np.arange(len(live))
    if idx.size == 0:
        return np.zeros(len(live), dtype=bool)
    before = np.searchsorted(idx, t, side="right") - 1  # last live frame at or before t
    after = np.searchsorted(idx, t, side="left")  # first live frame at or after t
    has_before = (before >= 0) & (t - idx[np.clip(before, 0, None)] <= span)
    has_after = (after < idx.size) & (idx[np.clip(after, None, idx.size - 1)] - t <= span)
    return has_before & has_after


def _excess_db(level: np.ndarray, patch: np.ndarray, noise_db: float) -> tuple[float, float]:
    """How far a patch's core lies above the rounding noise alone, in dB: (by its mean power, by its
    median bin). The core leaves out the patch's edge cells, which carry leakage from the loud bins
    around a hole. A bin of white noise has exponentially distributed power, whose median lies
    10 log10(ln 2) = -1.59 dB below its mean; both figures are 0 for a patch of rounding noise alone."""
    core = ndimage.binary_erosion(patch, np.ones((3, 3), dtype=bool))
    cells = (level[core] if np.count_nonzero(core) >= HOLE_MIN_BINS else level[patch]).astype(np.float64)
    mean = 10 * np.log10(np.mean(10 ** (cells / 10))) - noise_db
    return float(mean), float(np.median(cells) - noise_db - NOISE_MEDIAN_DB)


def _walled(level: np.ndarray, labels: np.ndarray, label: int, box: tuple[slice, slice], live_db: float) -> float:
    """Share of the cells just outside a patch that hold speech: a hole is punched into speech, a quiet
    natural patch fades into quiet surroundings."""
    grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    patch = labels[grown] == label
    ring = ndimage.binary_dilation(patch, np.ones((3, 3), dtype=bool)) & ~patch
    return float(np.mean(level[grown][ring] > live_db)) if ring.any() else 0.0


def detect_holes(audio: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Boolean [bins, frames] on the seed grid, True in zeroed patches (see the module doc).

    exclude: [bins, frames] bins already explained by another detector (gaps, band), never holes.
    """
    level = _db(SEED_GRID.stft(torch.from_numpy(audio)))
    ok = np.ones_like(level, dtype=bool) if exclude is None else ~exclude
    step = quantisation_step(audio)
    if step is None:
        noise_db, hole_db = None, FLOAT_HOLE_DB
    else:
        # Rounding to a step q leaves white noise of variance q^2 / 12; a bin sums it under the window.
        window_power = float(np.sum(SEED_GRID.window().numpy().astype(np.float64) ** 2))
        noise_db = 10 * np.log10(step**2 / 12 * window_power)
        hole_db = noise_db + HOLE_NOISE_MARGIN_DB
    # Exact zeros (digital silence) are intended silence, handled with the gaps; not a hole's inside.
    dark = _fill_short((level < hole_db) & (level > DIGITAL_SILENCE_DB), HOLE_FILL_BINS) & ok
    live = ((level > hole_db + HOLE_LIVE_DB) & ok).mean(0) >= HOLE_LIVE_FRACTION
    wholly_dark = dark.mean(0) >= HOLE_FULL_BAND
    dark[:, wholly_dark & ~_near_speech(live, HOLE_SPAN_FRAMES)] = False
    labels, _ = ndimage.label(dark)
    out = np.zeros_like(dark)
    for i, box in enumerate(ndimage.find_objects(labels), 1):
        patch = labels[box] == i
        if np.count_nonzero(patch.sum(0) >= HOLE_MIN_BINS) < HOLE_MIN_FRAMES:
            continue
        if noise_db is not None:
            mean_excess, median_excess = _excess_db(level[box], patch, noise_db)
            # Loud speech around a hole leaks into the bins along its edges, lifting the patch's mean
            # power but not its median bin; a natural patch fades into quiet bins, not into speech.
            leaky = (median_excess <= HOLE_MAX_EXCESS_DB
                     and _walled(level, labels, i, box, noise_db + HOLE_WALL_DB) >= HOLE_WALLED_FRACTION)
            if mean_excess > HOLE_MAX_EXCESS_DB and not leaky:
                continue
        out[box] |= patch
    # A hole's first and last frame and its edge bins are partly refilled by the inverse STFT's overlap
    # and the window's leakage: grow each patch by one cell.
    grow = np.ones((2 * HOLE_GROW_BINS + 1, 2 * HOLE_GROW_FRAMES + 1), dtype=bool)
    return ndimage.binary_dilation(out, grow) & ok


def detect_mask(audio: np.ndarray) -> Mask:
    """The estimated mask of one 16 kHz mono signal: lost packets, a missing band, zeroed rectangles."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise SpeechInpaintError(f"detection needs a mono signal, got shape {audio.shape}")
    if audio.size < 4 * MIN_SAMPLES:
        raise SpeechInpaintError(
            f"{audio.size} samples is too short to tell damage from speech (need at least {4 * MIN_SAMPLES / SAMPLE_RATE:.2f} s)"
        )
    if not np.all(np.isfinite(audio)):
        raise SpeechInpaintError("the signal contains NaN or infinite samples")
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise SpeechInpaintError("the signal is silent: there is nothing to tell damage from")
    n = len(audio)
    nyq = SAMPLE_RATE / 2
    regions: list[Region] = []
    gaps = detect_gaps(audio)
    for a, b in true_runs(gaps):
        regions.append(Region(a / SAMPLE_RATE, b / SAMPLE_RATE, 0.0, nyq))
    band_edge = detect_band(audio, gaps)
    if band_edge is not None:
        regions.append(Region(0.0, n / SAMPLE_RATE, band_edge, nyq))
    # Bins the other detectors explain: frames whose window touches a lost packet, and the lost band.
    frames = SEED_GRID.num_frames(n)
    exclude = np.zeros((SEED_GRID.num_bins, frames), dtype=bool)
    if gaps.any():
        centres = np.arange(frames) * SEED_GRID.hop
        for a, b in true_runs(gaps):
            exclude[:, (centres > a - SEED_GRID.n_fft // 2) & (centres < b + SEED_GRID.n_fft // 2)] = True
    if band_edge is not None:
        exclude[SEED_GRID.bin_freqs() >= band_edge - 300.0, :] = True
    regions.extend(cells_to_regions(detect_holes(audio, exclude), SEED_GRID, n))
    return Mask(SAMPLE_RATE, n, regions).validate("detected mask")


def run_detect(args) -> int:
    """`speechinpaint detect IN -o OUT`: a file gives one mask file, a folder a folder of NAME.mask.json."""
    from .audio import list_audio_files, load_audio
    from .cli import for_each_file
    from .masks import save_mask

    src, dst = Path(args.input), Path(args.output)
    if src.is_dir():
        files = list_audio_files(src)
        if not files:
            raise SpeechInpaintError(f"{src}: no audio files in this folder")
        pairs = [(f, dst / f.relative_to(src).with_name(f.stem + MASK_SUFFIX), f.relative_to(src).as_posix()) for f in files]
    elif src.is_file():
        target = dst / (src.stem + MASK_SUFFIX) if dst.is_dir() else dst
        if not target.name.endswith(".json"):
            raise SpeechInpaintError(f"{target}: a mask file must end in {MASK_SUFFIX}")
        pairs = [(src, target, src.name)]
    else:
        raise SpeechInpaintError(f"{src}: no such file or folder")

    def work(path, out, name):
        audio = load_audio(path)
        try:
            mask = detect_mask(audio)
        except SpeechInpaintError as exc:
            raise SpeechInpaintError(f"{path}: {exc}") from None
        save_mask(out, mask)

    return for_each_file(pairs, work, "detect")
