"""Audio files in two forms: a user's recording in its own terms (any rate, channels and sample format,
read and written so that an unchanged sample comes back bit for bit), and the mono float32 16 kHz
signal the restorers, metrics and corpora work on. Writes are atomic.

Every other module works on what this one returns, so the checks for bad input live here once.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import SpeechInpaintError
from .files import atomic_write, os_error_line

SAMPLE_RATE = 16000
# The longest analysis window any corruption or model uses (the seed's 40 ms STFT window).
MIN_SAMPLES = 640
# Below this peak (about -100 dBFS) a signal is treated as silence: nothing to restore or score.
SILENCE_PEAK = 1e-5
# Rates below this cannot hold speech worth restoring; 8 kHz telephone audio is the lowest we accept.
MIN_INPUT_RATE = 8000
# Containers by file suffix (what `-o NAME.ext` asks for) and the integer width of each PCM subtype.
CONTAINERS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".opus": "OGG", ".aiff": "AIFF",
              ".aif": "AIFF", ".au": "AU", ".mp3": "MP3"}
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


@dataclass
class Recording:
    """A file's samples in its own terms: [channels, samples] float64 at its own rate, unclipped.

    PCM samples are k / 2**(bits - 1) exactly, as soundfile reads them, so `write_recording` turns an
    unchanged sample back into the same integer; float files keep their values, beyond full scale too.
    """

    samples: np.ndarray
    sample_rate: int
    subtype: str
    container: str

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def num_samples(self) -> int:
        return self.samples.shape[1]


# Long files are read into [channels, samples] and written from it in blocks of this many frames, so a
# second full copy (transposed, or as integers) never exists.
BLOCK_FRAMES = 1 << 20


def read_recording(path: str | os.PathLike) -> Recording:
    """A file as it is (see Recording); unreadable, empty, too slow a rate or non-finite is one clear error."""
    data, rate, subtype, container = _read_file(path, "float64")
    _check_rate_and_values(path, rate, data)
    return Recording(data, rate, subtype, container)


def _read_file(path: str | os.PathLike, dtype: str) -> tuple[np.ndarray, int, str, str]:
    """([channels, samples] of dtype, rate, subtype, container) of any file soundfile reads, read in
    blocks of BLOCK_FRAMES; a missing, unreadable or empty file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
        with sf.SoundFile(str(path)) as f:
            data = np.empty((f.channels, max(f.frames, 0)), dtype=dtype)
            done = 0
            while done < data.shape[1]:
                block = f.read(min(BLOCK_FRAMES, data.shape[1] - done), dtype=dtype, always_2d=True)
                if len(block) == 0:  # a header that promised more frames than the file holds
                    data = data[:, :done]
                    break
                data[:, done:done + len(block)] = block.T
                done += len(block)
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise SpeechInpaintError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    if data.shape[1] == 0:
        raise SpeechInpaintError(f"{path}: the file holds no samples")
    _check_complete(path, info)
    return data, info.samplerate, info.subtype, info.format


# libsndfile's log line for an audio data chunk whose header promises more bytes than the file holds
# (WAV's data, AIFF's SSND, AU's Data Size).
SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
# What a writer that streams puts in a size field before it knows the size (not a truncation).
STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def _check_complete(path: Path, info) -> None:
    """Refuse a file cut short (a WAV, AIFF, ... whose header promises more data than follows), which
    libsndfile reads without a word as far as it goes: a restore would be silently shorter."""
    short = SHORT_CHUNK.search(info.extra_info or "")
    if short:
        promised, held = int(short.group(1)), int(short.group(2))
        if held < promised and promised not in STREAMING_SIZES:
            raise SpeechInpaintError(f"{path}: the file is truncated: its header promises {promised:,} bytes of "
                                     f"audio, it holds {held:,} ({info.frames / info.samplerate:.2f} s)")


def check_readable(path: str | os.PathLike):
    """soundfile's info of an audio file once its header shows it readable, complete, not empty and at a
    supported rate: what can be known before the samples are read (or a model loaded)."""
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise SpeechInpaintError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    _check_complete(path, info)
    if info.frames == 0:
        raise SpeechInpaintError(f"{path}: the file holds no samples")
    if info.samplerate < MIN_INPUT_RATE:
        raise SpeechInpaintError(f"{path}: sample rate {info.samplerate} Hz is below the supported minimum of "
                                 f"{MIN_INPUT_RATE} Hz")
    return info


def _check_rate_and_values(path: str | os.PathLike, rate: int, data: np.ndarray) -> None:
    if rate < MIN_INPUT_RATE:
        raise SpeechInpaintError(f"{path}: sample rate {rate} Hz is below the supported minimum of {MIN_INPUT_RATE} Hz")
    if not np.all(np.isfinite(data)):
        raise SpeechInpaintError(f"{path}: the signal contains NaN or infinite samples")


def container_for(path: str | os.PathLike) -> str:
    """The container a file name asks for, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise SpeechInpaintError(f"{path}: {suffix or 'no suffix'} is not an audio file type this tool writes ({known})")
    return CONTAINERS[suffix]


def output_subtype(path: str | os.PathLike, subtype: str, requested: str | None = None,
                   source_container: str | None = None) -> tuple[str, str | None]:
    """(subtype to write, a note for the user or None): the requested one, else the input's own, else
    (when the container cannot hold it, e.g. an MP3's in a WAV) the container's default.

    A codec's subtype (MP3, Vorbis, Opus, ADPCM, ...) is kept only in the input's own container
    (`source_container`): libsndfile lists some in other containers (MPEG_LAYER_III in WAV) that it cannot
    write there."""
    container = container_for(path)
    if requested:
        if not sf.check_format(container, requested.upper()):
            allowed = ", ".join(sf.available_subtypes(container))
            raise SpeechInpaintError(f"{path}: {container} cannot hold --subtype {requested} (it holds {allowed})")
        return requested.upper(), None
    plain = subtype in PCM_BITS or subtype in FLOAT_SUBTYPES or subtype in ("ULAW", "ALAW")
    if sf.check_format(container, subtype) and (plain or container == source_container):
        return subtype, None
    fallback = sf.default_subtype(container)
    return fallback, f"{path}: {container} cannot hold {subtype}; writing {fallback} (--subtype chooses)"


def write_recording(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write [channels, samples] atomically (see recording_writer)."""
    writer = recording_writer(path, samples, sample_rate, subtype)
    try:
        atomic_write(path, writer)
    except OSError as exc:
        raise SpeechInpaintError(os_error_line(exc, path)) from None


def recording_writer(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str):
    """A function that writes [channels, samples] to a given file in the container `path`'s suffix names.

    PCM: rounded to the subtype's own integers (so an unchanged sample is bit-identical) and clipped at
    full scale; FLOAT and DOUBLE: as they are, unclipped; any other (lossy) subtype: clipped floats.
    """
    container = container_for(path)
    samples = np.asarray(samples, dtype=np.float64)
    if subtype in PCM_BITS:
        bits = PCM_BITS[subtype]
        scale = float(2 ** (bits - 1))
        data = np.empty(samples.shape[::-1], dtype=np.int32)
        clipped = 0
        for start in range(0, samples.shape[1], BLOCK_FRAMES):
            rounded = np.round(samples[:, start:start + BLOCK_FRAMES] * scale)
            clipped += np.count_nonzero((rounded < -scale) | (rounded > scale - 1))
            ints = np.clip(rounded, -scale, scale - 1).astype(np.int64)
            data[start:start + BLOCK_FRAMES] = (ints << (32 - bits)).astype(np.int32).T
        _warn_clipped(path, subtype, clipped)
    elif subtype in FLOAT_SUBTYPES:
        data = samples.T
    else:
        _warn_clipped(path, subtype, np.count_nonzero(np.abs(samples) > 1.0))
        data = np.clip(samples, -1.0, 1.0).T

    def write(tmp: str) -> None:
        try:
            sf.write(tmp, data, sample_rate, subtype=subtype, format=container)
        except sf.LibsndfileError as exc:  # libsndfile reports a full disk as "System error."
            stat = os.statvfs(os.path.dirname(tmp) or ".")
            full = stat.f_bavail * stat.f_frsize < data.nbytes
            raise OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC) if full else str(exc), str(path))

    return write


class ClippingWarning(UserWarning):
    """Samples beyond full scale were clipped to fit an integer or lossy sample format."""


def _warn_clipped(path: str | os.PathLike, subtype: str, count: int) -> None:
    if count:
        warnings.warn(f"{path}: {count:,} sample{'s' if count > 1 else ''} beyond full scale clipped to fit {subtype} "
                      "(--subtype FLOAT in a .wav keeps them)", ClippingWarning, stacklevel=3)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling with soxr; a no-op when the rates match."""
    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    # soxr answers float32 for float32: no second copy of a long signal.
    return soxr.resample(audio.astype(np.float32, copy=False), rate_in, rate_out, quality="VHQ").astype(
        np.float32, copy=False)


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
    data, rate, _, _ = _read_file(path, "float32")
    return data.mean(axis=0), rate


def load_audio(path: str | os.PathLike, check: bool = True) -> np.ndarray:
    """Read a file as mono float32 at 16 kHz (channels averaged, resampled with soxr)."""
    mono, rate = read_mono(path)
    _check_rate_and_values(path, rate, mono)
    audio = resample(mono, rate, SAMPLE_RATE)
    return check_signal(audio, str(path)) if check else audio


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav atomically; samples beyond full scale are clipped, not wrapped."""
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    try:
        atomic_write(path, lambda tmp: sf.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV"))
    except OSError as exc:  # a read-only folder, a full disk: one sentence naming the path, as everywhere
        raise SpeechInpaintError(os_error_line(exc, path)) from None


def as_pcm16(audio: np.ndarray) -> np.ndarray:
    """The samples a 16-bit file written by save_audio holds: the same rounding, without the file."""
    return (np.round(np.clip(audio, -1.0, 1.0) * 32767.0) / 32767.0).astype(np.float32)
