"""Training data: the crop and loader settings of a config's data section, random crops of a corpus
split each with a fresh mask from a mixture of corruptions, and the DataLoaders.

Every crop is drawn from a generator seeded by (seed, epoch, index), so a crop is the same whichever
DataLoader worker makes it and after a resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr
import torch
from torch.utils.data import DataLoader, Dataset

from ..audio import SAMPLE_RATE
from ..corruptions import KINDS, apply_band, apply_gaps, apply_holes, band_mask, gaps_mask, holes_mask
from ..dsp.spectral import MODEL_GRID
from ..masks import missing_bins


@dataclass
class CropConfig:
    """How training crops are cut and corrupted: length, the mixture of corruptions and their ranges, gain
    and augmentation."""

    crop_seconds: float = 2.0
    mixture: dict = field(default_factory=lambda: {"holes": 0.5, "gaps": 0.25, "band": 0.25})
    coverage: tuple[float, float] = (0.2, 0.4)
    loss_rate: tuple[float, float] = (0.1, 0.3)
    cutoff_hz: tuple[float, float] = (3000.0, 6000.0)
    cutoff_default_prob: float = 0.5
    cutoff_default_hz: float = 4000.0
    gain_db: tuple[float, float] = (-12.0, 3.0)
    # Augmentation against the few training voices: a resampling factor (pitch, formants and tempo move
    # together, as in Kaldi's speed perturbation) and a high-shelf gain above a random corner frequency
    # (microphones and codecs differ most in the upper band). (1, 1) and (0, 0) switch them off.
    speed: tuple[float, float] = (1.0, 1.0)
    shelf_db: tuple[float, float] = (0.0, 0.0)
    shelf_corner_hz: tuple[float, float] = (1500.0, 4000.0)
    # Digital silence (a gated pause, clips joined with zeros): this share of the crops gets a stretch
    # of exact zeros, anywhere in the crop, so the holes detector learns it is no damage. 0 draws nothing.
    silence_share: float = 0.0
    silence_seconds: tuple[float, float] = (0.15, 0.8)

    def __post_init__(self):
        unknown = sorted(set(self.mixture) - set(KINDS))
        if unknown or not self.mixture:
            raise ValueError(f"mixture kinds must be some of {', '.join(KINDS)} (got {', '.join(self.mixture) or 'none'})")
        if any(not isinstance(w, (int, float)) or w < 0 for w in self.mixture.values()) or not sum(self.mixture.values()) > 0:
            raise ValueError("mixture weights must be non-negative numbers, not all zero")
        for name in ("coverage", "loss_rate", "cutoff_hz", "gain_db", "speed", "shelf_db", "shelf_corner_hz",
                     "silence_seconds"):
            value = getattr(self, name)
            if len(value) != 2 or not value[0] <= value[1]:
                raise ValueError(f"{name} must be a range [low, high] with low <= high (got {list(value)})")


@dataclass
class DataConfig(CropConfig):
    """A config's data section: the crops (CropConfig) and where they come from and how they are batched."""

    manifest: str = "data/starter/manifest.csv"
    crops_per_epoch: int = 9600
    batch_size: int = 16
    val_crops: int = 64
    val_segments: int = 6
    val_seconds: float = 6.0
    workers: int = 0


def draw_corruption(audio: np.ndarray, rng: np.random.Generator, cfg: CropConfig):
    """Corrupt a crop with a kind drawn from the mixture; returns (corrupted, mask, kind)."""
    kinds = list(cfg.mixture)
    weights = np.array([cfg.mixture[k] for k in kinds], dtype=float)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    n = len(audio)
    if kind == "holes":
        mask = holes_mask(n, rng, rng.uniform(*cfg.coverage))
        return apply_holes(audio, mask), mask, kind
    if kind == "gaps":
        mask = gaps_mask(n, rng, rng.uniform(*cfg.loss_rate))
        return apply_gaps(audio, mask), mask, kind
    if kind == "band":
        cutoff = cfg.cutoff_default_hz if rng.random() < cfg.cutoff_default_prob else rng.uniform(*cfg.cutoff_hz)
        return apply_band(audio, cutoff), band_mask(n, cutoff), kind
    raise AssertionError(kind)  # CropConfig allows only KINDS in the mixture


class CropDataset(Dataset):
    """`length` crops per epoch; item = dict(clean, corrupted [samples], missing [bins, frames], kind)."""

    def __init__(self, streams: dict[str, np.ndarray], cfg: CropConfig, length: int, seed: int = 0):
        self.cfg = cfg
        self.length = length
        self.seed = seed
        self.epoch = 0
        self.crop_samples = int(round(cfg.crop_seconds * SAMPLE_RATE))
        self.speakers = sorted(streams)
        self.streams = [streams[s] for s in self.speakers]
        durations = np.array([len(s) for s in self.streams], dtype=float)
        self.speaker_weights = durations / durations.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def crop(self, rng: np.random.Generator) -> np.ndarray:
        """A crop of `crop_samples`, read at a random speed: factor s takes s x as many samples and
        resamples them to the crop length."""
        stream = self.streams[rng.choice(len(self.streams), p=self.speaker_weights)]
        speed = rng.uniform(*self.cfg.speed)
        n = self.crop_samples
        m = int(round(n * speed))
        if len(stream) <= m:
            piece = np.pad(stream, (0, m - len(stream)))
        else:
            start = int(rng.integers(0, len(stream) - m))
            piece = stream[start:start + m]
        if m != n:
            piece = soxr.resample(piece, SAMPLE_RATE * speed, SAMPLE_RATE)
            piece = np.pad(piece, (0, max(0, n - len(piece))))[:n]
        return piece

    def shelve(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A zero-phase high shelf: half the gain at the corner, all of it an octave above."""
        gain_db = rng.uniform(*self.cfg.shelf_db)
        corner = rng.uniform(*self.cfg.shelf_corner_hz)
        if gain_db == 0.0:
            return audio
        freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
        octaves = np.log2(np.maximum(freqs, 1.0) / corner)
        curve = 10 ** (gain_db * (1 / (1 + np.exp(-4 * octaves))) / 20)
        return np.fft.irfft(np.fft.rfft(audio) * curve, n=len(audio))

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clean = self.shelve(self.crop(rng), rng)
        peak = float(np.max(np.abs(clean))) or 1.0
        gain = 10 ** (rng.uniform(*self.cfg.gain_db) / 20) * 0.9 / peak
        clean = (clean * min(gain, 0.99 / peak)).astype(np.float32)
        if self.cfg.silence_share > 0 and rng.random() < self.cfg.silence_share:
            length = min(int(rng.uniform(*self.cfg.silence_seconds) * SAMPLE_RATE), len(clean))
            start = int(rng.integers(0, len(clean) - length + 1))
            clean[start:start + length] = 0.0
        corrupted, mask, kind = draw_corruption(clean, rng, self.cfg)
        missing = missing_bins(mask, MODEL_GRID)
        return {
            "clean": torch.from_numpy(clean),
            "corrupted": torch.from_numpy(corrupted.astype(np.float32)),
            "missing": torch.from_numpy(missing),
            "kind": kind,
        }


def data_loaders(train_set: Dataset, val_set: Dataset, data: DataConfig) -> tuple[DataLoader, DataLoader]:
    """The training loader (shuffled, whole batches) and the validation loader, as the data section sets."""
    def loader(dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=data.batch_size, shuffle=shuffle, num_workers=data.workers,
                          drop_last=shuffle, persistent_workers=data.workers > 0)

    return loader(train_set, True), loader(val_set, False)
