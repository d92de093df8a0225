"""Blind damage detection: estimate the mask of corrupted speech from the audio alone (`--mask auto`).

Three detectors, one per kind of damage the project restores, each looking for what natural speech
does not do:

- packet loss (`gaps`): runs of exact zeros with live signal on both sides, found at the file's own
  rate. Natural recordings also hold digital silence (a gated pause, the lead-in of a file, clips joined
  with silence), so a run is only marked when it is packet-sized (10 ms .. 130 ms), both of its
  neighbours carry signal above the quietest level a recording keeps, and the waveform is cut off
  rather than faded out: a dropout stops the signal at whatever level it has, while a noise gate's
  release first fades it to nothing, so the last 2 ms before a gate's zeros lie far below any speech.
  Digital silence longer than 130 ms, or touching the start or end of the file, is treated as intended
  silence and never marked: restoring it would invent speech.
- a missing upper band (`band`): the long-term spectrum falls by tens of dB within a few hundred Hz and
  stays at its floor up to Nyquist. One region from the lower edge of the transition to Nyquist, over
  the whole file. An edge within 1.5 kHz of 8 kHz is an encoder's or resampler's low-pass (an MP3's,
  say), not a lost band, and a file below 16 kHz has no band above its own Nyquist to lose.
- zeroed time-frequency rectangles (`holes`): a learned detector (hole_detector.py, a small U-Net
  trained on the starter corpus's train split) marks the cells of each hole, its edges included, which
  the speech beside a hole refills by leakage. It runs on the file rounded to 16-bit samples, so a hole
  holds rounding noise in every format. Frames of digital silence are never marked (intended silence,
  as for the gaps), and marked patches much smaller than the smallest hole are dropped as speckle.

Regions are written in seconds and Hz on the cells of the grid they were found on, as the corruptions
write theirs, so the mask rasterises onto any grid; a hole's cells become its bounding rectangle where
that costs little (HOLE_MERGE_IOU), so the mask stays a short file a person can read and edit.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from .audio import MIN_SAMPLES, SAMPLE_RATE, SILENCE_PEAK, read_recording, resample
from .batch import run_batch
from .dsp.spectral import MODEL_GRID, StftGrid
from .errors import SpeechInpaintError
from .files import batch_folder, file_pairs
from .hole_detector import HoleDetector
from .jobs import FileJob, FileResult, Item
from .masks import MASK_SUFFIX, Mask, Region, cells_to_rectangles, save_mask, true_runs

KINDS = ("holes", "gaps", "band")

# --- gaps --------------------------------------------------------------------------------------------
GAP_MIN_SECONDS = 0.010  # shorter zero runs happen at zero crossings of quiet 16-bit audio
GAP_MAX_SECONDS = 0.13  # longer digital silence is an intended pause, not a lost burst (<= 120 ms)
GAP_CONTEXT_SECONDS = 0.010  # each side, to judge whether the signal around a run is live
GAP_CONTEXT_RMS = 10 ** (-78 / 20)  # below about 3 LSB of 16-bit audio the neighbours are silence too
GAP_CUT_SECONDS = 0.002  # the waveform just before a run: cut off (a dropout) or faded out (a gate)
GAP_CUT_RMS = 10 ** (-70 / 20)  # a gate's release leaves the last 2 ms far below this; speech does not

# --- band --------------------------------------------------------------------------------------------
BAND_GRID = StftGrid(1024, 256)
BAND_MIN_DROP_DB = 30.0  # the stop band lies this far below the pass band just under the cutoff
BAND_STOP_SPREAD_DB = 12.0  # and stays flat (within this of its median) up to Nyquist
BAND_EDGE_DB = 3.0  # the lower edge of the transition: first bin this far below the pass band
BAND_MIN_HZ = 1000.0  # a cutoff below this is no speech channel; above Nyquist - 300 Hz is no cutoff
BAND_MAX_HZ = 6500.0  # an edge above this is an encoder's low-pass (an MP3's lies at 7-8 kHz), not a lost band

# --- holes -------------------------------------------------------------------------------------------
# Marked patches of fewer cells are speckle (chosen on train-split crops with
# benchmarks/detector_threshold.py): 256 cells of 512/128 are 1 kHz by 64 ms; the seed's holes are at
# least 1 kHz by 100 ms (400 cells).
HOLE_MIN_CELLS = 256
# A hole's cells are written as their bounding rectangle while the whole mask keeps this IoU with the
# cells as marked; the rest stay runs of bins per frame.
HOLE_MERGE_IOU = 0.99


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def detect_gaps(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Boolean [samples] array, True inside zero runs that look like lost packets (see the module doc)."""
    zero = audio == 0.0
    out = np.zeros(len(audio), dtype=bool)
    shortest, longest = int(GAP_MIN_SECONDS * sample_rate), int(GAP_MAX_SECONDS * sample_rate)
    context, cut = int(GAP_CONTEXT_SECONDS * sample_rate), max(1, int(GAP_CUT_SECONDS * sample_rate))
    for a, b in true_runs(zero):
        if b - a < shortest or b - a > longest or a == 0 or b == len(audio):
            continue
        before = audio[max(a - context, 0):a]
        after = audio[b:b + context]
        faded = _rms(audio[max(a - cut, 0):a]) < GAP_CUT_RMS
        if min(_rms(before), _rms(after)) >= GAP_CONTEXT_RMS and not faded:
            out[a:b] = True
    return out


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
    return float(edge) if BAND_MIN_HZ <= edge <= BAND_MAX_HZ else None


@functools.cache
def shipped_detector(device: str = "cpu") -> HoleDetector:
    """The shipped holes detector, loaded once per process and device."""
    return HoleDetector.from_checkpoint(None, device=device)


def detect_holes(audio: np.ndarray, exclude: np.ndarray | None = None, detector: HoleDetector | None = None,
                 on_chunk=None) -> np.ndarray:
    """Boolean [bins, frames] on the model grid, True in zeroed patches (see the module doc).

    exclude: [bins, frames] cells already explained by another detector (gaps, band), never holes.
    on_chunk: HoleDetector.probabilities' hook (frames done per chunk); not passed on when None, so a
    detector without it still works.
    """
    detector = detector or shipped_detector()
    marked = detector.cells(audio) if on_chunk is None else detector.cells(audio, on_chunk)
    if exclude is not None:
        marked &= ~exclude
    return drop_speckle(marked, HOLE_MIN_CELLS)


def drop_speckle(marked: np.ndarray, min_cells: int) -> np.ndarray:
    """The marked cells less the connected patches of fewer than min_cells cells."""
    labels, count = ndimage.label(marked)
    sizes = ndimage.sum_labels(marked, labels, np.arange(1, count + 1))
    return np.isin(labels, 1 + np.flatnonzero(sizes >= min_cells))


def _check_detectable(audio: np.ndarray, sample_rate: int) -> None:
    if audio.size < 4 * MIN_SAMPLES * sample_rate / SAMPLE_RATE:
        raise SpeechInpaintError(
            f"{audio.size} samples is too short to tell damage from speech (need at least {4 * MIN_SAMPLES / SAMPLE_RATE:.2f} s)"
        )
    if not np.all(np.isfinite(audio)):
        raise SpeechInpaintError("the signal contains NaN or infinite samples")
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise SpeechInpaintError("the signal is silent: there is nothing to tell damage from")


@dataclass
class Detection:
    """What was found in a signal: the mask (in the signal's own terms) and what it holds, for the
    one line a user is told."""

    mask: Mask
    kinds: tuple[str, ...]
    lost_packets: int = 0
    lost_seconds: float = 0.0
    band_edges: list[float] = field(default_factory=list)
    holes: int = 0
    holes_share: float = 0.0
    channels: int = 1

    def summary(self, nothing: str = "nothing found") -> str:
        """e.g. '3 lost packets (140 ms), no missing band, 2 holes (1.8 % of the spectrogram)'."""
        if not self.mask.regions:
            return nothing
        parts = []
        if "gaps" in self.kinds:
            parts.append(f"{self.lost_packets} lost packet{'s' if self.lost_packets != 1 else ''} "
                         f"({1000 * self.lost_seconds:.0f} ms)" if self.lost_packets else "no lost packets")
        if "band" in self.kinds:
            parts.append(f"missing band above {min(self.band_edges):.0f} Hz" if self.band_edges else "no missing band")
        if "holes" in self.kinds:
            parts.append(f"{self.holes} hole{'s' if self.holes != 1 else ''} ({100 * self.holes_share:.1f} % of the "
                         "spectrogram)" if self.holes else "no holes")
        # Lost packets are counted once however many channels lost them; holes are counted per channel.
        per_channel = self.channels > 1 and "holes" in self.kinds and self.holes
        return ", ".join(parts) + (f" (holes counted over {self.channels} channels)" if per_channel else "")


def detect_mask(audio: np.ndarray, detector: HoleDetector | None = None, device: str = "cpu",
                kinds: tuple[str, ...] = KINDS) -> Mask:
    """The estimated mask of one 16 kHz mono signal: lost packets, a missing band, zeroed rectangles.

    detector: the holes detector to use (default: the shipped one, on `device`); kinds: what to look for.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise SpeechInpaintError(f"detection needs a mono signal, got shape {audio.shape}")
    return detect_signal(audio[None].astype(np.float64), SAMPLE_RATE, kinds, detector, device).mask


class _ChannelProgress:
    """One channel's share of detect_signal's progress: the holes detector's chunks in seconds of audio
    (its frames at 8 ms, capped at the channel's duration), then the rest of the channel at its end."""

    def __init__(self, progress, seconds: float):
        self.progress, self.seconds, self.done = progress, seconds, 0.0

    def chunk(self, frames: int) -> None:
        step = max(0.0, min(frames * MODEL_GRID.hop / SAMPLE_RATE, self.seconds - self.done))
        self.done += step
        self.progress.update(step)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.update(max(0.0, self.seconds - self.done))
            self.done = self.seconds


def detect_signal(signal: np.ndarray, sample_rate: int, kinds: tuple[str, ...] = KINDS,
                  detector: HoleDetector | None = None, device: str = "cpu", progress=None) -> Detection:
    """What each channel of [channels, samples] at sample_rate holds of each kind; the mask is in the
    signal's terms, each region tagged with its channel when there are several.

    progress: None, or an object with update(seconds_of_audio) (as progress.Progress): called per chunk
    of the holes detector and once per channel, the calls summing to channels x duration; whatever it
    raises (a cancellation) propagates and the detection stops."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise SpeechInpaintError(f"--detect takes some of {', '.join(KINDS)} (got {', '.join(kinds) or 'nothing'})")
    channels, n = signal.shape
    found = Detection(Mask(sample_rate, n, []), tuple(kinds), channels=channels)
    seconds = n / sample_rate
    lost = np.zeros(n, dtype=bool)  # samples lost in any channel: one dropout on every channel counts once
    for c in range(channels):
        audio = signal[c]
        _check_detectable(audio, sample_rate)
        told = _ChannelProgress(progress, seconds)
        tag = c if channels > 1 else None
        regions: list[Region] = []
        gaps = detect_gaps(audio, sample_rate) if "gaps" in kinds else np.zeros(n, dtype=bool)
        for a, b in true_runs(gaps):
            regions.append(Region(a / sample_rate, b / sample_rate, 0.0, sample_rate / 2, tag))
        lost |= gaps
        audio16 = resample(audio, sample_rate, SAMPLE_RATE)
        n16 = len(audio16)
        gaps16 = gaps[np.minimum((np.arange(n16) * sample_rate) // SAMPLE_RATE, n - 1)]
        band_edge = detect_band(audio16, gaps16) if "band" in kinds and sample_rate >= SAMPLE_RATE else None
        if band_edge is not None:
            regions.append(Region(0.0, n / sample_rate, band_edge, sample_rate / 2, tag))
            found.band_edges.append(band_edge)
        if "holes" in kinds:
            # Bins the other detectors explain: frames whose window touches a lost packet, the lost band,
            # and above the Nyquist frequency of a file below 16 kHz (nothing there to lose).
            frames = MODEL_GRID.num_frames(n16)
            exclude = np.zeros((MODEL_GRID.num_bins, frames), dtype=bool)
            centres = np.arange(frames) * MODEL_GRID.hop
            for a, b in true_runs(gaps16):
                exclude[:, (centres > a - MODEL_GRID.n_fft // 2) & (centres < b + MODEL_GRID.n_fft // 2)] = True
            top = band_edge if band_edge is not None else (sample_rate / 2 if sample_rate < SAMPLE_RATE else None)
            if top is not None:
                exclude[MODEL_GRID.bin_freqs() >= top - 300.0, :] = True
            holes = detect_holes(audio16, exclude, detector or shipped_detector(device),
                                 told.chunk if progress is not None else None)
            rectangles = cells_to_rectangles(holes, MODEL_GRID, n16, HOLE_MERGE_IOU)
            regions.extend(dataclasses.replace(r, t1=min(r.t1, n / sample_rate), channel=tag) for r in rectangles)
            found.holes += int(ndimage.label(holes)[1])
            found.holes_share += float(holes.mean()) / channels
        found.mask.regions.extend(regions)
        told.finish()
    found.lost_packets = len(true_runs(lost))
    found.lost_seconds = float(lost.sum()) / sample_rate
    found.mask.validate("detected mask")
    return found


@dataclass(frozen=True)
class DetectJob(FileJob):
    """`speechinpaint detect` on one file: its mask written as NAME.mask.json (batch.py runs it)."""

    device: str = "cpu"
    kinds: tuple[str, ...] = KINDS

    done = "detected"

    def prepare(self) -> HoleDetector:
        return shipped_detector(self.device)

    def run(self, detector: HoleDetector, item: Item, file_progress: bool) -> FileResult:
        recording = read_recording(item.input)
        try:
            found = detect_signal(recording.samples, recording.sample_rate, self.kinds, detector)
        except SpeechInpaintError as exc:
            raise SpeechInpaintError(f"{item.input}: {exc}") from None
        save_mask(item.output, found.mask)
        return FileResult(found.summary(), (), recording.num_samples / recording.sample_rate)


def detect_files(input: str | Path, output: str | Path, device: str = "cpu", kinds: tuple[str, ...] = KINDS,
                 workers: int | None = 1, ray: str | None = None, resume: bool = False) -> int:
    """`speechinpaint detect IN -o OUT`: a file gives one mask file, a folder a folder of NAME.mask.json,
    each in its file's own terms, with one line per file of what was found; workers, ray, resume: how
    the batch runs (batch.run_batch); returns the exit status."""
    pairs = file_pairs(input, output, suffix=MASK_SUFFIX)
    if Path(input).is_file() and not pairs[0][1].name.endswith(".json"):
        raise SpeechInpaintError(f"{pairs[0][1]}: a mask file must end in {MASK_SUFFIX}")
    return run_batch(DetectJob(device, tuple(kinds)), pairs, "detect", batch_folder(input, output), workers, ray, resume)
