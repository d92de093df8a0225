"""The mask contract: time-frequency rectangles in seconds and Hz, saved as JSON, rasterised onto any grid.

Keeping masks in physical units means one mask serves the seed's 640/320 grid, the model's 512/128 grid
and the evaluation's 2048/512 grid, and a person can write one by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .files import atomic_write
from .errors import SpeechInpaintError
from .dsp.spectral import MODEL_GRID, StftGrid

MASK_FORMAT = "speechinpaint.mask/1"
MASK_SUFFIX = ".mask.json"


@dataclass(frozen=True)
class Region:
    """A missing rectangle: frames centred in [t0, t1) seconds, bins in [f0, f1] Hz, in one channel
    (0-based) or, when `channel` is None, in every channel of the file."""

    t0: float
    t1: float
    f0: float
    f1: float
    channel: int | None = None


@dataclass
class Mask:
    """The missing regions of one signal of num_samples samples at sample_rate."""

    sample_rate: int
    num_samples: int
    regions: list[Region] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def nyquist(self) -> float:
        return self.sample_rate / 2

    def is_full_band(self, region: Region) -> bool:
        """A region over the whole band is a time gap: its samples, not just some bins, are missing."""
        return region.f0 <= 0.0 and region.f1 >= self.nyquist

    def validate(self, source: str = "mask") -> "Mask":
        if self.sample_rate <= 0 or self.num_samples <= 0:
            raise SpeechInpaintError(f"{source}: sample_rate and num_samples must be positive")
        tol = 1e-6
        for i, r in enumerate(self.regions):
            values = (r.t0, r.t1, r.f0, r.f1)
            if not all(np.isfinite(v) for v in values):
                raise SpeechInpaintError(f"{source}: region {i} has a non-finite bound")
            if not r.t0 < r.t1:
                raise SpeechInpaintError(f"{source}: region {i} needs t0 < t1 (got {r.t0} .. {r.t1})")
            if not r.f0 < r.f1:
                raise SpeechInpaintError(f"{source}: region {i} needs f0 < f1 (got {r.f0} .. {r.f1})")
            if r.t0 < -tol or r.t1 > self.duration + tol:
                raise SpeechInpaintError(
                    f"{source}: region {i} ({r.t0:.3f} .. {r.t1:.3f} s) lies outside the signal (0 .. {self.duration:.3f} s)"
                )
            if r.f0 < -tol or r.f1 > self.nyquist + tol:
                raise SpeechInpaintError(
                    f"{source}: region {i} ({r.f0:.0f} .. {r.f1:.0f} Hz) lies outside 0 .. {self.nyquist:.0f} Hz"
                )
        return self

    def check_matches(self, num_samples: int, sample_rate: int, source: str = "mask", channels: int = 1) -> None:
        """A mask belongs to one signal: refuse to apply it to audio of another rate, length or channel
        count, naming the field that differs."""
        differs = [name for name, ok in (("sample_rate", sample_rate == self.sample_rate),
                                         ("num_samples", num_samples == self.num_samples)) if not ok]
        if differs:
            raise SpeechInpaintError(
                f"{source}: made for {self.num_samples} samples at {self.sample_rate} Hz, but the audio has "
                f"{num_samples} samples at {sample_rate} Hz ({' and '.join(differs)} differ{'s' if len(differs) == 1 else ''})"
            )
        used = [r.channel for r in self.regions if r.channel is not None]
        if used and max(used) >= channels:
            raise SpeechInpaintError(f"{source}: a region names channel {max(used)}, but the audio has {channels} "
                                     f"channel{'s' if channels > 1 else ''} (0-based)")

    def for_channel(self, channel: int) -> "Mask":
        """The regions that apply to one channel (its own and those for every channel), untagged."""
        regions = [dataclasses.replace(r, channel=None) for r in self.regions if r.channel in (None, channel)]
        return Mask(self.sample_rate, self.num_samples, regions)

    def at_rate(self, sample_rate: int, num_samples: int) -> "Mask":
        """The same regions for the signal resampled to sample_rate (num_samples long): a time gap stays a
        gap over the whole new band, bounds are clipped to the new Nyquist and length, and a region
        wholly above the new Nyquist is dropped (nothing there to restore)."""
        nyq, duration = sample_rate / 2, num_samples / sample_rate
        regions = []
        for r in self.regions:
            f0, f1 = (0.0, nyq) if self.is_full_band(r) else (r.f0, min(r.f1, nyq))
            t1 = min(r.t1, duration)
            if f0 < f1 and r.t0 < t1:
                regions.append(dataclasses.replace(r, t1=t1, f0=f0, f1=f1))
        return Mask(sample_rate, num_samples, regions)

    def to_json(self) -> dict:
        return {
            "format": MASK_FORMAT,
            "sample_rate": self.sample_rate,
            "num_samples": self.num_samples,
            "regions": [{k: v for k, v in asdict(r).items() if k != "channel" or v is not None} for r in self.regions],
        }

    @classmethod
    def from_json(cls, data: dict, source: str = "mask", validate: bool = True) -> "Mask":
        """A mask from its parsed JSON. Keys are strict: one the format does not define (a misspelt
        "chanel" would otherwise restore every channel) is refused by name."""
        if not isinstance(data, dict) or data.get("format") != MASK_FORMAT:
            raise SpeechInpaintError(f"{source}: not a {MASK_FORMAT} mask file")
        _known_keys(data, MASK_KEYS, source, "the mask")
        missing = [key for key in MASK_KEYS if key not in data]
        if missing:
            raise SpeechInpaintError(f"{source}: the mask has no {missing[0]!r} field")
        if not isinstance(data["regions"], list):
            raise SpeechInpaintError(f"{source}: 'regions' must be a list of regions")
        try:
            regions = []
            for i, r in enumerate(data["regions"]):
                if not isinstance(r, dict):
                    raise ValueError(f"region {i} is not an object")
                _known_keys(r, REGION_KEYS, source, f"region {i}")
                absent = [key for key in REGION_KEYS[:4] if key not in r]
                if absent:
                    raise ValueError(f"region {i} has no {absent[0]!r}")
                regions.append(Region(_number(r["t0"]), _number(r["t1"]), _number(r["f0"]), _number(r["f1"]),
                                      None if r.get("channel") is None else _channel(r["channel"])))
            mask = cls(_whole(data["sample_rate"], "sample_rate"), _whole(data["num_samples"], "num_samples"), regions)
        except (TypeError, ValueError) as exc:
            raise SpeechInpaintError(f"{source}: malformed mask ({exc})") from None
        return mask.validate(source) if validate else mask


MASK_KEYS = ("format", "sample_rate", "num_samples", "regions")
REGION_KEYS = ("t0", "t1", "f0", "f1", "channel")


def _known_keys(data: dict, known: tuple[str, ...], source: str, where: str) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        raise SpeechInpaintError(f"{source}: {where} has the unknown key {str(unknown[0])!r} (it takes "
                                 f"{', '.join(known)})")


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}"[:120])
    return float(value)


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}"[:120])
    return int(value)


def parse_mask_json(text: str | bytes, source: str = "mask"):
    """JSON text as Python values; not JSON, or nested beyond what the parser recurses into (a mask is
    three levels deep), is one clear error rather than a RecursionError."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpeechInpaintError(f"{source}: not JSON ({exc})") from None
    except RecursionError:
        raise SpeechInpaintError(f"{source}: not a mask (its JSON is nested too deeply)") from None


def _channel(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"channel must be a whole number from 0, got {value!r}")
    return value


def mask_path_for(audio_path: str | os.PathLike) -> Path:
    """NAME.wav -> NAME.mask.json beside it."""
    p = Path(audio_path)
    return p.with_name(p.stem + MASK_SUFFIX)


def save_mask(path: str | os.PathLike, mask: Mask) -> None:
    atomic_write(path, mask_writer(path, mask))


def mask_writer(path: str | os.PathLike, mask: Mask):
    """A function that writes the mask's JSON to a given file (checked first, against `path`'s name)."""
    mask.validate(str(path))
    text = json.dumps(mask.to_json(), indent=1)
    return lambda tmp: Path(tmp).write_text(text + "\n")


def load_mask(path: str | os.PathLike, num_samples: int | None = None, sample_rate: int | None = None,
              channels: int = 1) -> Mask:
    """A mask file; given the audio's terms, a mask made for other audio is refused naming the field that
    differs (before its regions are checked against its own length)."""
    mask = read_mask_file(path)
    if num_samples is not None and sample_rate is not None:
        mask.check_matches(num_samples, sample_rate, str(path), channels)
    return mask.validate(str(path))


def read_mask_file(path: str | os.PathLike) -> Mask:
    """A mask file's Mask as written, its regions not yet checked: a missing or unreadable file, one that
    is not JSON or not a mask is one clear error."""
    path = Path(path)
    if not path.exists():
        raise SpeechInpaintError(f"{path}: no such mask file")
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: not a mask file (a folder, pipe or device)")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SpeechInpaintError(f"{path}: cannot read mask ({exc.strerror or exc})") from None
    return Mask.from_json(parse_mask_json(text, str(path)), str(path), validate=False)


def rasterise(mask: Mask, grid: StftGrid, num_frames: int | None = None) -> np.ndarray:
    """Boolean [bins, frames] array, True where a bin is missing (frame centre in [t0, t1), freq in [f0, f1])."""
    if grid.sample_rate != mask.sample_rate:
        raise SpeechInpaintError(f"mask is at {mask.sample_rate} Hz but the grid is at {grid.sample_rate} Hz")
    if num_frames is None:
        num_frames = grid.num_frames(mask.num_samples)
    times = grid.frame_times(num_frames)
    freqs = grid.bin_freqs()
    out = np.zeros((grid.num_bins, num_frames), dtype=bool)
    for r in mask.regions:
        t_sel = (times >= r.t0) & (times < r.t1)
        f_sel = (freqs >= r.f0) & (freqs <= r.f1)
        out[np.ix_(f_sel, t_sel)] = True
    return out


def cells_to_regions(flags: np.ndarray, grid: StftGrid, num_samples: int) -> list[Region]:
    """Regions covering the True cells of a [bins, frames] map, the inverse of `rasterise` on that grid:
    per frame, runs of bins, merged over consecutive frames with identical runs (each frame's cell is its
    centre +- half a hop, each bin's its centre +- half a bin)."""
    duration = num_samples / grid.sample_rate
    half = grid.hop / 2 / grid.sample_rate
    df = grid.sample_rate / grid.n_fft
    nyq = grid.sample_rate / 2
    regions: list[Region] = []
    open_runs: dict[tuple[int, int], int] = {}
    frames = flags.shape[1]
    for t in range(frames + 1):
        runs = set(true_runs(flags[:, t])) if t < frames else set()
        for run in list(open_runs):
            if run not in runs:
                start = open_runs.pop(run)
                t0 = max(start * grid.hop / grid.sample_rate - half, 0.0)
                t1 = min(t * grid.hop / grid.sample_rate - half, duration)
                if t1 > t0:
                    regions.append(Region(t0, t1, max((run[0] - 0.5) * df, 0.0), min((run[1] - 0.5) * df, nyq)))
        for run in runs:
            open_runs.setdefault(run, t)
    return regions


def missing_bins(mask: Mask, grid: StftGrid = MODEL_GRID, num_frames: int | None = None) -> np.ndarray:
    """The bins to re-estimate: the rasterised mask, with time gaps widened by one hop on each side.

    A frame whose window reaches into a run of zeroed samples is damaged even when its centre lies
    outside the gap, so it is estimated too; the splice afterwards keeps every sample outside the gap.
    """
    out = rasterise(mask, grid, num_frames)
    gap = gap_sample_mask(mask)
    if gap.any():
        centres = np.arange(out.shape[1]) * grid.hop
        for a, b in true_runs(gap):
            out[:, (centres >= a - grid.hop) & (centres < b + grid.hop)] = True
    return out


def crop_mask(mask: Mask, start: int, stop: int) -> Mask:
    """The part of a mask over samples [start, stop), re-timed to start at 0."""
    sr = mask.sample_rate
    t_start, t_stop = start / sr, stop / sr
    regions = [
        Region(max(r.t0, t_start) - t_start, min(r.t1, t_stop) - t_start, r.f0, r.f1)
        for r in mask.regions
        if r.t1 > t_start and r.t0 < t_stop
    ]
    return Mask(sr, stop - start, regions)


# cells_to_rectangles works on windows of about this many frames (8 s on the model grid), cut where no
# cell is marked when it can be: its merging is quadratic in a window's rectangles, linear in windows.
RECTANGLE_WINDOW_FRAMES = 1024


def cells_to_rectangles(flags: np.ndarray, grid: StftGrid, num_samples: int, min_iou: float) -> list[Region]:
    """Regions covering the True cells of a [bins, frames] map with few rectangles, at an IoU of at least
    min_iou with the cells themselves (cells_to_regions gives the exact cover, with a one-frame sliver
    wherever a ragged edge moves by a bin). Each window (RECTANGLE_WINDOW_FRAMES) keeps the IoU, so the
    whole map does too."""
    frames = flags.shape[1]
    empty = ~flags.any(axis=0)
    cuts = [0]
    while frames - cuts[-1] > RECTANGLE_WINDOW_FRAMES:
        target = cuts[-1] + RECTANGLE_WINDOW_FRAMES
        near = np.flatnonzero(empty[target - RECTANGLE_WINDOW_FRAMES // 8:target + RECTANGLE_WINDOW_FRAMES // 8])
        cuts.append(target - RECTANGLE_WINDOW_FRAMES // 8 + int(near[len(near) // 2]) if near.size else target)
    cuts.append(frames)
    rects = []
    for a, b in zip(cuts, cuts[1:]):
        if flags[:, a:b].any():
            rects.extend([k0, k1, t0 + a, t1 + a] for k0, k1, t0, t1 in _window_rectangles(flags[:, a:b], min_iou))
    half, df = grid.hop / 2 / grid.sample_rate, grid.sample_rate / grid.n_fft
    duration, nyq = num_samples / grid.sample_rate, grid.sample_rate / 2
    return [Region(max(t0 * grid.hop / grid.sample_rate - half, 0.0), min(t1 * grid.hop / grid.sample_rate - half, duration),
                   max((k0 - 0.5) * df, 0.0), min((k1 - 0.5) * df, nyq)) for k0, k1, t0, t1 in rects]


def _window_rectangles(flags: np.ndarray, min_iou: float) -> list[list[int]]:
    """[k0, k1, t0, t1] rectangles of a window's cells, in three steps, each kept only while the IoU
    with the cells allows: the edges are smoothed (an opening and a closing over 5 bins by 3 frames);
    runs of bins in consecutive frames merge into one rectangle while their edges move by at most a bin;
    then the cheapest one-frame rectangles are merged into a rectangle next to them in time."""
    def iou(covered: np.ndarray) -> float:
        return float((covered & flags).sum() / (covered | flags).sum())

    shape = np.ones((5, 3), dtype=bool)
    smooth = ndimage.binary_closing(ndimage.binary_opening(flags, shape), shape)
    base = smooth if smooth.any() and iou(smooth) >= min_iou else flags
    rects = _merge_runs(base, tolerance=1)
    covered = _cover(rects, flags.shape)
    if iou(covered) < min_iou:
        rects, covered = _merge_runs(flags, tolerance=0), flags.copy()
    # The IoU is kept as counts, updated by the cells each merge adds.
    inter, union_count = int((covered & flags).sum()), int((covered | flags).sum())
    while True:
        merge = _cheapest_sliver_merge(rects)
        if merge is None:
            break
        i, j, union = merge
        box = (slice(union[0], union[1]), slice(union[2], union[3]))
        added = ~covered[box]
        gained = int((added & flags[box]).sum())
        if (inter + gained) / (union_count + int(added.sum()) - gained) < min_iou:
            break
        covered[box] = True
        inter, union_count = inter + gained, union_count + int(added.sum()) - gained
        rects[j] = union
        del rects[i]
    return rects


def _merge_runs(flags: np.ndarray, tolerance: int) -> list[list[int]]:
    """[k0, k1, t0, t1] (ends exclusive): each frame's runs of bins joined to the rectangle open from the
    frame before whose edges lie within `tolerance` bins of the run's, the rectangle widened to both."""
    rects, opened = [], []
    frames = flags.shape[1]
    for t in range(frames + 1):
        runs = true_runs(flags[:, t]) if t < frames else []
        following, used = [], set()
        for lo, hi in runs:
            match = next((i for i, (a, b, _) in enumerate(opened) if i not in used
                          and abs(a - lo) <= tolerance and abs(b - hi) <= tolerance), None)
            if match is None:
                following.append([lo, hi, t])
            else:
                used.add(match)
                a, b, start = opened[match]
                following.append([min(a, lo), max(b, hi), start])
        rects.extend([a, b, start, t] for i, (a, b, start) in enumerate(opened) if i not in used)
        opened = following
    return rects


def _cover(rects: list[list[int]], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for k0, k1, t0, t1 in rects:
        out[k0:k1, t0:t1] = True
    return out


def _cheapest_sliver_merge(rects: list[list[int]]) -> tuple[int, int, list[int]] | None:
    """(sliver index, neighbour index, their bounding rectangle) of the one-frame rectangle whose merge
    into a rectangle touching it in time, overlapping in frequency, adds the fewest cells."""
    ending, starting = defaultdict(list), defaultdict(list)
    for j, r in enumerate(rects):
        ending[r[3]].append(j)
        starting[r[2]].append(j)
    best = None
    for i, s in enumerate(rects):
        if s[3] - s[2] != 1:
            continue
        for j in sorted(ending[s[2]] + starting[s[3]]):
            r = rects[j]
            if j == i or min(r[1], s[1]) <= max(r[0], s[0]):
                continue
            union = [min(r[0], s[0]), max(r[1], s[1]), min(r[2], s[2]), max(r[3], s[3])]
            cost = (union[1] - union[0]) * (union[3] - union[2]) - (r[1] - r[0]) * (r[3] - r[2]) - (s[1] - s[0])
            if best is None or cost < best[0]:
                best = (cost, i, j, union)
    return None if best is None else best[1:]


def coverage(mask: Mask, grid: StftGrid) -> float:
    """Fraction of the time-frequency area missing on a grid."""
    return float(rasterise(mask, grid).mean())


def true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def gap_sample_mask(mask: Mask) -> np.ndarray:
    """Boolean [samples] array, True inside the full-band regions (time gaps) of a mask."""
    out = np.zeros(mask.num_samples, dtype=bool)
    for r in mask.regions:
        if mask.is_full_band(r):
            a = int(round(r.t0 * mask.sample_rate))
            b = int(round(r.t1 * mask.sample_rate))
            out[max(a, 0):min(b, mask.num_samples)] = True
    return out
