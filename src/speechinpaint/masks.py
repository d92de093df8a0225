"""The mask contract: time-frequency rectangles in seconds and Hz, saved as JSON, rasterised onto any grid.

Keeping masks in physical units means one mask serves the seed's 640/320 grid, the model's 512/128 grid
and the evaluation's 2048/512 grid, and a person can write one by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_write
from .errors import SpeechInpaintError
from .dsp.spectral import MODEL_GRID, StftGrid

MASK_FORMAT = "speechinpaint.mask/1"
MASK_SUFFIX = ".mask.json"


@dataclass(frozen=True)
class Region:
    """A missing rectangle: frames centred in [t0, t1) seconds, bins in [f0, f1] Hz."""

    t0: float
    t1: float
    f0: float
    f1: float


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

    def check_matches(self, num_samples: int, sample_rate: int, source: str = "mask") -> None:
        """A mask belongs to one signal: refuse to apply it to audio of another length or rate."""
        if sample_rate != self.sample_rate or abs(num_samples - self.num_samples) > 0:
            raise SpeechInpaintError(
                f"{source}: made for {self.num_samples} samples at {self.sample_rate} Hz, "
                f"but the audio has {num_samples} samples at {sample_rate} Hz"
            )

    def to_json(self) -> dict:
        return {
            "format": MASK_FORMAT,
            "sample_rate": self.sample_rate,
            "num_samples": self.num_samples,
            "regions": [asdict(r) for r in self.regions],
        }

    @classmethod
    def from_json(cls, data: dict, source: str = "mask") -> "Mask":
        if not isinstance(data, dict) or data.get("format") != MASK_FORMAT:
            raise SpeechInpaintError(f"{source}: not a {MASK_FORMAT} mask file")
        try:
            regions = [Region(float(r["t0"]), float(r["t1"]), float(r["f0"]), float(r["f1"])) for r in data["regions"]]
            mask = cls(int(data["sample_rate"]), int(data["num_samples"]), regions)
        except (KeyError, TypeError, ValueError) as exc:
            raise SpeechInpaintError(f"{source}: malformed mask ({exc!r})") from None
        return mask.validate(source)


def mask_path_for(audio_path: str | os.PathLike) -> Path:
    """NAME.wav -> NAME.mask.json beside it."""
    p = Path(audio_path)
    return p.with_name(p.stem + MASK_SUFFIX)


def save_mask(path: str | os.PathLike, mask: Mask) -> None:
    mask.validate(str(path))
    text = json.dumps(mask.to_json(), indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))


def load_mask(path: str | os.PathLike) -> Mask:
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such mask file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpeechInpaintError(f"{path}: cannot read mask ({exc})") from None
    return Mask.from_json(data, str(path))


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
