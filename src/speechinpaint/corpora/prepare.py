"""The seed's per-file preparation, shared by VCTK and any folder: level, rate, trimmed silence.

Peak-normalised to -26 dBFS (the level the seed trained at), resampled to 16 kHz with soxr, and
leading/trailing silence trimmed where the short-time level stays 30 dB below the loudest frame, so
crops are not wasted on the long silences VCTK's 2017 recordings start and end with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..audio import MIN_SAMPLES, read_mono, SAMPLE_RATE, SILENCE_PEAK, resample, save_audio
from ..errors import SpeechInpaintError
from .manifest import Entry

PEAK_DBFS = -26.0
TRIM_DB = 30.0
# 32 ms frames, 8 ms hop: short enough to keep the first consonant, long enough to ignore a click.
TRIM_FRAME = 512
TRIM_HOP = 128


def trim_silence(audio: np.ndarray, top_db: float = TRIM_DB) -> np.ndarray:
    """Cut leading and trailing frames whose RMS is more than top_db below the loudest frame's."""
    if audio.size <= TRIM_FRAME:
        return audio
    frames = np.lib.stride_tricks.sliding_window_view(audio, TRIM_FRAME)[::TRIM_HOP]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-top_db / 20))
    start = loud[0] * TRIM_HOP
    end = min(audio.size, loud[-1] * TRIM_HOP + TRIM_FRAME)
    return audio[start:end]


def prepare_audio(audio: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz, peak-normalise to -26 dBFS, trim silence (the peak lies inside what is kept)."""
    audio = resample(audio, rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < SILENCE_PEAK:
        raise SpeechInpaintError("the signal is silent")
    audio = audio * (10 ** (PEAK_DBFS / 20) / peak)
    return trim_silence(audio).astype(np.float32)


def prepare_file(src: Path, dst: Path) -> float:
    """Read any readable file, prepare it and write 16-bit wav at dst; returns its duration in seconds."""
    if dst.resolve() == src.resolve():
        raise SpeechInpaintError(f"{dst}: output would overwrite its input")
    mono, rate = read_mono(src)
    try:
        audio = prepare_audio(mono, rate)
    except SpeechInpaintError as exc:
        raise SpeechInpaintError(f"{src}: {exc}") from None
    if audio.size < MIN_SAMPLES:
        raise SpeechInpaintError(f"{src}: shorter than one analysis window after trimming silence")
    save_audio(dst, audio)
    return audio.size / SAMPLE_RATE


def prepare_files(jobs: list[tuple[Path, Path, str]], root: Path, language: str, progress: bool,
                  reuse: bool = False) -> tuple[list[Entry], int]:
    """Prepare each (source, path under root, speaker) with a progress bar; returns (manifest rows, files
    skipped). A file that cannot be prepared is skipped with a one-line warning, so one bad recording does
    not stop a corpus. reuse: a destination already there was written (atomically) by an earlier,
    interrupted run and is taken as it is."""
    rows, failed = [], 0
    for src, rel, speaker in tqdm(jobs, desc="prepare", unit="file", disable=None if progress else True, file=sys.stderr):
        dst = root / rel
        try:
            if reuse and dst.is_file():
                info = sf.info(str(dst))
                duration = info.frames / info.samplerate
            else:
                duration = prepare_file(src, dst)
        except SpeechInpaintError as exc:
            failed += 1
            tqdm.write(f"speechinpaint: warning: skipped {exc}", file=sys.stderr)
            continue
        rows.append(Entry(rel.as_posix(), speaker, language, duration, ""))
    return rows, failed
