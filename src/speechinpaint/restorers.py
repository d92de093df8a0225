"""One restorer per restoration method, each holding its own options behind `restore(audio, mask)`.

Every method but "zero" and "seed-mfcc" estimates only the magnitude of the missing bins on the model
grid and shares the rest (reconstruction.py): known bins kept exactly, the phase of the missing ones
reconstructed, time gaps spliced into the untouched waveform. The network's restorer is the Inpainter
(inpainter.py); `make_restorer` builds any of them by name, as the CLI and the benchmarks do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .audio import load_audio, save_audio
from .baselines.seed_mfcc import SeedMLP, restore_seed_mfcc
from .detection import detect_mask
from .dsp.interpolation import interpolate_log_magnitude
from .dsp.phase import DEFAULT_ITERS
from .dsp.spectral import MODEL_GRID, log_magnitude
from .errors import SpeechInpaintError
from .files import AUDIO_SUFFIXES, file_pairs, for_each_file
from .inpainter import Inpainter
from .masks import Mask, load_mask, mask_path_for, missing_bins
from .reconstruction import restore_from_magnitude

METHODS = ("model", "interp", "zero", "oracle", "seed-mfcc")


class Restorer(Protocol):
    def restore(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        """Restored float32 audio of the same length (16 kHz mono)."""


class ZeroRestorer:
    """The corrupted audio as it is: the floor every method must beat."""

    def restore(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        mask.check_matches(len(audio), MODEL_GRID.sample_rate)
        return np.asarray(audio, dtype=np.float32)


class InterpRestorer:
    """Log-magnitude interpolation across each hole from its edges (the classic non-learned baseline)."""

    def __init__(self, iterations: int = DEFAULT_ITERS):
        self.iterations = iterations

    def restore(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        mask.check_matches(len(audio), MODEL_GRID.sample_rate)
        missing = missing_bins(mask)
        log_mag = log_magnitude(MODEL_GRID.stft(torch.from_numpy(audio)))
        magnitude = interpolate_log_magnitude(log_mag, torch.from_numpy(missing)).exp()
        return restore_from_magnitude(audio, mask, magnitude, missing, self.iterations)


class OracleRestorer:
    """The true magnitude in the holes, only the phase reconstructed: the ceiling of this pipeline."""

    def __init__(self, reference: np.ndarray, iterations: int = DEFAULT_ITERS):
        self.reference = np.asarray(reference, dtype=np.float32)
        self.iterations = iterations

    def restore(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        mask.check_matches(len(audio), MODEL_GRID.sample_rate)
        if len(self.reference) != len(audio):
            raise SpeechInpaintError("the reference and the corrupted audio differ in length")
        missing = missing_bins(mask)
        magnitude = MODEL_GRID.stft(torch.from_numpy(self.reference)).abs()
        return restore_from_magnitude(audio, mask, magnitude, missing, self.iterations)


class SeedMfccRestorer:
    """The seed's per-frame MFCC network; its output replaces the whole signal, as the seed's did."""

    def __init__(self, model: SeedMLP | None = None):
        self.model = model

    def restore(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        return restore_seed_mfcc(audio, mask, self.model)


def make_restorer(method: str, iterations: int = DEFAULT_ITERS, checkpoint: str | None = None,
                  device: str = "cpu", reference: np.ndarray | None = None) -> Restorer:
    """The restorer of a named method, given the options that method uses (the others are ignored).

    model: checkpoint (None: the shipped weights), device, iterations; interp: iterations; oracle:
    reference, iterations; zero and seed-mfcc: nothing.
    """
    if method == "model":
        return Inpainter.from_checkpoint(checkpoint, device=device, iterations=iterations)
    if method == "interp":
        return InterpRestorer(iterations)
    if method == "oracle":
        if reference is None:
            raise SpeechInpaintError("the oracle method needs the clean reference (--reference)")
        return OracleRestorer(reference, iterations)
    if method == "zero":
        return ZeroRestorer()
    if method == "seed-mfcc":
        return SeedMfccRestorer()
    raise SpeechInpaintError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def reference_file(reference: Path, name: str) -> Path:
    """The clean file for the input named `name`: the file itself, or the same name in a folder (any
    audio suffix, since corrupt writes NAME.wav whatever the clean file was)."""
    if not reference.is_dir():
        return reference
    ref = reference / name
    if not ref.is_file():
        same = [p for p in ref.parent.glob("*") if p.stem == ref.stem and p.suffix.lower() in AUDIO_SUFFIXES]
        ref = same[0] if len(same) == 1 else ref
    return ref


def restore_files(input: str | Path, output: str | Path, method: str = "model", mask: str | None = None,
                  checkpoint: str | None = None, reference: str | None = None, iterations: int = DEFAULT_ITERS,
                  device: str = "cpu") -> int:
    """`speechinpaint restore`: every file with its mask (NAME.mask.json beside it, `mask`, or "auto" to
    detect it); returns the exit status (1 if any file failed)."""
    if method == "oracle" and not reference:
        raise SpeechInpaintError("the oracle method needs --reference CLEAN (file or folder)")
    shared = None if method == "oracle" else make_restorer(method, iterations, checkpoint, device)
    pairs = file_pairs(input, output)
    if mask not in (None, "auto") and len(pairs) > 1:
        raise SpeechInpaintError("--mask FILE applies to one input file; a folder reads NAME.mask.json beside each")

    def work(src: Path, dst: Path, name: str) -> None:
        audio = load_audio(src)
        if mask == "auto":
            file_mask = detect_mask(audio, device=device)
        else:
            source = mask or mask_path_for(src)
            file_mask = load_mask(source)
            file_mask.check_matches(len(audio), 16000, str(source))
        restorer = shared or OracleRestorer(load_audio(reference_file(Path(reference), name)), iterations)
        save_audio(dst, restorer.restore(audio, file_mask))

    return for_each_file(pairs, work, "restore")
