"""Load any audio soundfile reads as mono float32 at 16 kHz, and write 16-bit wav atomically.

Every other module works on the arrays this one returns, so the checks for bad input live here once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import SpeechInpaintError
from .files import atomic_write

SAMPLE_RATE = 16000
# The longest analysis window any corruption or model uses (the seed's 40 ms STFT window).
MIN_SAMPLES = 640
# Below this peak (about -100 dBFS) a signal is treated as silence: nothing to restore or score.
SILENCE_PEAK = 1e-5
# Rates below this cannot hold speech worth restoring; 8 kHz telephone audio is the lowest we accept.
MIN_INPUT_RATE = 8000


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling with soxr; a no-op when the rates match."""
    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio.astype(np.float32, copy=False), rate_in, rate_out, quality="VHQ").astype(np.float32)


def check_signal(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    """Reject what cannot be restored or scored: empty, too short, non-finite or silent signals."""
    if audio.ndim != 1:
        raise SpeechInpaintError(f"{name}: expected a mono signal, got shape {audio.shape}")
    if audio.size == 0:
        raise SpeechInpaintError(f"{name}: the file holds no samples")
    if not np.all(np.isfinite(audio)):
        raise SpeechInpaintError(f"{name}: the signal contains NaN or infinite samples")
    if audio.size < MIN_SAMPLES:
        raise SpeechInpaintError(
            f"{name}: {audio.size} samples is shorter than one analysis window ({MIN_SAMPLES} samples at {SAMPLE_RATE} Hz)"
        )
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise SpeechInpaintError(f"{name}: the signal is silent")
    return audio


def read_mono(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(channels averaged as float32, native sample rate) of any file soundfile reads; unreadable or empty
    files are one clear error. Corpus preparation needs the native rate; everything else uses load_audio."""
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise SpeechInpaintError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    if data.shape[0] == 0:
        raise SpeechInpaintError(f"{path}: the file holds no samples")
    return data.mean(axis=1), rate


def load_audio(path: str | os.PathLike, check: bool = True) -> np.ndarray:
    """Read a file as mono float32 at 16 kHz (channels averaged, resampled with soxr)."""
    mono, rate = read_mono(path)
    if rate < MIN_INPUT_RATE:
        raise SpeechInpaintError(f"{path}: sample rate {rate} Hz is below the supported minimum of {MIN_INPUT_RATE} Hz")
    if not np.all(np.isfinite(mono)):
        raise SpeechInpaintError(f"{path}: the signal contains NaN or infinite samples")
    audio = resample(mono, rate, SAMPLE_RATE)
    return check_signal(audio, str(path)) if check else audio


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav atomically; samples beyond full scale are clipped, not wrapped."""
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    atomic_write(path, lambda tmp: sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV"))


def as_pcm16(audio: np.ndarray) -> np.ndarray:
    """The samples a 16-bit file written by save_audio holds: the same rounding, without the file."""
    return (np.round(np.clip(audio, -1.0, 1.0) * 32767.0) / 32767.0).astype(np.float32)
