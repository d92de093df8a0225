"""One restorer per restoration method, each holding its own options behind `restore(audio, mask)`.

Every method but "zero" and "seed-mfcc" estimates only the magnitude of the missing bins on the model
grid and shares the rest (reconstruction.py): known bins kept exactly, the phase of the missing ones
reconstructed, time gaps spliced into the untouched waveform. The network's restorer is the Inpainter
(inpainter.py); `make_restorer` builds any of them by name, as the CLI and the benchmarks do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import check_readable, check_signal, container_for, load_audio, output_subtype, read_recording, \
    recording_writer
from .baselines.ar import ArRestorer
from .baselines.janssen_tf import JanssenTfRestorer
from .baselines.sbr import SbrRestorer
from .baselines.seed_mfcc import SeedMLP, restore_seed_mfcc
from .batch import run_batch
from .detection import KINDS, detect_signal
from .dsp.interpolation import interpolate_log_magnitude
from .dsp.phase import DEFAULT_ITERS
from .dsp.spectral import MODEL_GRID, log_magnitude
from .errors import SpeechInpaintError
from .files import AUDIO_SUFFIXES, atomic_write_all, batch_folder, check_room, file_pairs, refuse_overwrite
from .inpainter import Inpainter
from .jobs import FileJob, FileResult, Item
from .masks import Mask, load_mask, mask_path_for, mask_writer, missing_bins, read_mask_file
from .peers.opus import METHODS as OPUS_METHODS, OpusRestorer
from .reconstruction import restore_from_magnitude
from .progress import Progress
from .recording import Restorer, mask_at_output, restore_signal

METHODS = ("model", "interp", "zero", "oracle", "seed-mfcc", "ar", "janssen-tf", "sbr", "opus-plc", "opus-deep-plc",
           "opus-fec")
# The methods that use the clean signal (the oracle's magnitude; what an Opus sender encoded), and those
# that cannot work without it.
TAKES_REFERENCE = ("oracle", *OPUS_METHODS)
NEEDS_REFERENCE = ("oracle", "opus-fec")
# A file longer than this shows its own progress (per chunk of the restorer).
LONG_SECONDS = 30.0


class ZeroRestorer(Restorer):
    """The corrupted audio as it is: the floor every method must beat."""

    def __init__(self):
        super().__init__()
        self.full_band = False  # nothing restored above 8 kHz either

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        return np.asarray(audio, dtype=np.float32)


class InterpRestorer(Restorer):
    """Log-magnitude interpolation across each hole from its edges (the classic non-learned baseline)."""

    def __init__(self, iterations: int = DEFAULT_ITERS):
        super().__init__()
        self.iterations = iterations

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        missing = missing_bins(mask)
        log_mag = log_magnitude(MODEL_GRID.stft(torch.from_numpy(audio)))
        magnitude = interpolate_log_magnitude(log_mag, torch.from_numpy(missing)).exp()
        return restore_from_magnitude(audio, mask, magnitude, missing, self.iterations)


class OracleRestorer(Restorer):
    """The true magnitude in the holes, only the phase reconstructed: the ceiling of this pipeline.

    It needs the clean 16 kHz mono reference of the whole signal, so it restores in one piece."""

    def __init__(self, reference: np.ndarray, iterations: int = DEFAULT_ITERS):
        super().__init__(chunk_seconds=float("inf"))
        self.reference = np.asarray(reference, dtype=np.float32)
        self.iterations = iterations

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        if len(self.reference) != len(audio):
            raise SpeechInpaintError("the reference and the corrupted audio differ in length")
        missing = missing_bins(mask)
        magnitude = MODEL_GRID.stft(torch.from_numpy(self.reference)).abs()
        return restore_from_magnitude(audio, mask, magnitude, missing, self.iterations)


class SeedMfccRestorer(Restorer):
    """The seed's per-frame MFCC network; its output replaces the whole signal, as the seed's did."""

    def __init__(self, model: SeedMLP | None = None):
        super().__init__()
        self.model = model

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        return restore_seed_mfcc(audio, mask, self.model)


def make_restorer(method: str, iterations: int | None = None, checkpoint: str | None = None,
                  device: str = "cpu", reference: np.ndarray | None = None,
                  band_gain_db: float | None = None) -> Restorer:
    """The restorer of a named method, given the options that method uses (the others are ignored).

    iterations None is each method's own default (inpainter.MODEL_ITERS for the model, DEFAULT_ITERS otherwise).
    model: checkpoint (None: the shipped weights), device, iterations, band_gain_db (None: the
    checkpoint's); interp: iterations; oracle:
    reference, iterations; zero, seed-mfcc, ar, janssen-tf and sbr: nothing; opus-plc and opus-deep-plc: reference if
    given (the signal the sender encoded); opus-fec: reference (peers/opus.py).
    """
    own = {} if iterations is None else {"iterations": iterations}
    if method == "model":
        return Inpainter.from_checkpoint(checkpoint, band_gain_db, device=device, **own)
    if method == "interp":
        return InterpRestorer(**own)
    if method == "oracle":
        if reference is None:
            raise SpeechInpaintError("the oracle method needs the clean reference (--reference)")
        return OracleRestorer(reference, **own)
    if method == "zero":
        return ZeroRestorer()
    if method == "seed-mfcc":
        return SeedMfccRestorer()
    if method == "ar":
        return ArRestorer()
    if method == "janssen-tf":
        return JanssenTfRestorer()
    if method == "sbr":
        return SbrRestorer()
    if method in OPUS_METHODS:
        return OpusRestorer(method, reference)
    raise SpeechInpaintError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def reference_file(reference: Path, name: str) -> Path:
    """The clean file for the input named `name`: the file itself, or the same name in a folder (any
    audio suffix, since the clean file and its corrupted copy may differ in format)."""
    if not reference.is_dir():
        return reference
    ref = reference / name
    if not ref.is_file():
        same = [p for p in ref.parent.glob("*") if p.stem == ref.stem and p.suffix.lower() in AUDIO_SUFFIXES]
        ref = same[0] if len(same) == 1 else ref
    return ref


@dataclass(frozen=True)
class RestoreJob(FileJob):
    """`speechinpaint restore` on one file (batch.py runs it in this process, a worker or a Ray task)."""

    method: str = "model"
    mask: str | None = None
    checkpoint: str | None = None
    reference: str | None = None
    iterations: int | None = None
    device: str = "cpu"
    sample_rate: int | None = None
    subtype: str | None = None
    detect: tuple[str, ...] = KINDS
    save_mask: bool = False
    band_gain_db: float | None = None

    done = "restored"
    path_fields = ("mask", "checkpoint", "reference")

    def per_file(self) -> bool:
        """The clean signal is each file's own, so a method that takes it gets a restorer per file."""
        return self.reference is not None and self.method in TAKES_REFERENCE

    def prepare(self) -> Restorer | None:
        return None if self.per_file() else make_restorer(self.method, self.iterations, self.checkpoint, self.device,
                                                          band_gain_db=self.band_gain_db)

    def run(self, shared: Restorer | None, item: Item, file_progress: bool) -> FileResult:
        src, dst, name = Path(item.input), Path(item.output), item.name
        recording = read_recording(src)
        rate, channels, n = recording.sample_rate, recording.channels, recording.num_samples
        check_signal(recording.samples.mean(axis=0, dtype=np.float32), str(src))
        line, notes = None, []
        if self.mask == "auto":
            found = detect_signal(recording.samples, rate, self.detect, device=self.device)
            file_mask = found.mask
            extending = self.sample_rate is not None and self.sample_rate > rate and rate < 16000
            line = found.summary("nothing found: copied unchanged" if not extending else "nothing found")
            line += f"; extending the band above {rate // 2} Hz" if extending else ""
        else:
            file_mask = load_mask(self.mask or mask_path_for(src), n, rate, channels)
        restorer = shared or make_restorer(self.method, self.iterations, self.checkpoint, self.device,
                                           load_audio(reference_file(Path(self.reference), name)))
        out_rate = self.sample_rate or rate
        seconds = n / rate
        progress = Progress(seconds, name, "s of audio", enabled=file_progress and seconds > LONG_SECONDS,
                            parts=channels)
        restored = restore_signal(restorer, recording.samples, rate, file_mask, out_rate, progress,
                                  in_place=True)
        progress.close()
        chosen, note = output_subtype(dst, recording.subtype, self.subtype, recording.container)
        if note:
            notes.append(note)
        writes = [(dst, recording_writer(dst, restored, out_rate, chosen))]
        if self.save_mask:
            out_mask = mask_at_output(file_mask, rate, out_rate, restored.shape[1])
            target = mask_path_for(dst)
            refuse_overwrite(target, [src, mask_path_for(src)])
            writes.append((target, mask_writer(target, out_mask)))
        atomic_write_all(writes)
        return FileResult(line, tuple(notes), seconds)


def restore_files(input: str | Path, output: str | Path, method: str = "model", mask: str | None = None,
                  checkpoint: str | None = None, reference: str | None = None, iterations: int | None = None,
                  device: str = "cpu", sample_rate: int | None = None, subtype: str | None = None,
                  detect: tuple[str, ...] = KINDS, save_mask: bool = False, workers: int | None = 1,
                  ray: str | None = None, resume: bool = False, band_gain_db: float | None = None) -> int:
    """`speechinpaint restore`: every file in its own terms (rate, channels, format; recording.py) with
    its mask: NAME.mask.json beside it, `mask`, or "auto" to detect it (one line per file says what was
    found; `detect` chooses the kinds, `save_mask` writes the mask beside the output). sample_rate: the
    output's rate (a higher one than the input's extends the band); subtype: the output's sample format;
    band_gain_db: the model's band level instead of its checkpoint's. workers, ray, resume: how the batch
    runs (batch.run_batch). Returns the exit status (1 if any file failed)."""
    if method in NEEDS_REFERENCE and not reference:
        raise SpeechInpaintError(f"the {method} method needs --reference CLEAN (file or folder)")
    if sample_rate is not None and sample_rate < 8000:
        raise SpeechInpaintError(f"--sample-rate {sample_rate} is below the supported minimum of 8000 Hz")
    pairs = file_pairs(input, output)
    if mask not in (None, "auto") and len(pairs) > 1:
        raise SpeechInpaintError("--mask FILE applies to one input file; a folder reads NAME.mask.json beside each")
    for src, dst, name in pairs:
        container_for(dst)
        refuse_overwrite(dst, [mask if mask not in (None, "auto") else mask_path_for(src),
                               reference_file(Path(reference), name) if reference else None])
    check_before_loading(pairs, mask, sample_rate, subtype)
    job = RestoreJob(method, mask, checkpoint, reference, iterations, device, sample_rate, subtype, tuple(detect),
                     save_mask, band_gain_db)
    return run_batch(job, pairs, "restore", batch_folder(input, output), workers, ray, resume)


# Bytes per sample of the subtypes a restore writes, for the free-space estimate (2 for any other).
SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def check_before_loading(pairs: list[tuple[Path, Path, str]], mask: str | None, sample_rate: int | None,
                         subtype: str | None) -> None:
    """What would fail only after the model loaded fails first: a single input's header and its mask
    file (missing, not JSON, not a mask), and every output's folder and the free space for its estimated
    size (from each input's header). In a batch a bad input is left to its own line later, so the other
    files still run."""
    outputs = []
    for src, dst, _ in pairs:
        try:
            info = check_readable(src)
        except SpeechInpaintError:
            if len(pairs) == 1:
                raise
            continue
        if len(pairs) == 1 and mask != "auto":
            read_mask_file(mask or mask_path_for(src))  # whether it fits the audio: once the samples are read
        samples = info.frames * (sample_rate or info.samplerate) / info.samplerate * info.channels
        outputs.append((dst, int(samples * SAMPLE_BYTES.get((subtype or info.subtype).upper(), 2))))
    check_room(outputs)
