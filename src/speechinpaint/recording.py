"""Restoring audio in its own terms: any rate from 8 kHz, any channel count, only the damage changed.

Every method restores 16 kHz mono audio (the network's world), in chunks so memory stays flat. A
recording at another rate is resampled to 16 kHz per channel and restored there; only the correction
(restored minus input, at 16 kHz) goes back, resampled to the recording's rate and kept only inside the
mask on the recording's own STFT (in pieces, so a long file's STFT is never whole in memory). Above
that band the masked bins are estimated at the recording's own rate (dsp.upper_band, the restorer's
`full_band`), so the bins outside the mask are the input's own and those inside it are restored up to
its Nyquist frequency. For a mask of time gaps alone the correction is spliced in the time domain
instead, so every sample outside the gaps is the input's, bit for bit. A higher output rate than the
input's is bandwidth extension: the band above the input's Nyquist frequency joins the mask.

`Restorer` is the base of every method's restorer (restorers.py, inpainter.py): a method supplies
`restore_16k`, and the public `restore` checks what it is given (arrays of any numeric type or a torch
tensor, mono or [channels, samples], a Mask, a mask file or "auto") with one clear error for bad input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .allocator import release_freed_memory
from .audio import MIN_SAMPLES, SAMPLE_RATE, resample
from .corruptions import BAND_PASSBAND
from .detection import detect_signal
from .dsp.spectral import StftGrid
from .dsp.upper_band import restore_upper_band
from .errors import SpeechInpaintError
from .masks import Mask, Region, crop_mask, gap_sample_mask, load_mask, missing_bins
from .progress import Progress

# The model grid's resolution (32 ms windows, 8 ms hop) at another rate, for the native correction.
WINDOW_SECONDS, HOP_SECONDS = 512 / SAMPLE_RATE, 128 / SAMPLE_RATE
MAX_CHANNELS = 64


def native_grid(sample_rate: int) -> StftGrid:
    """An STFT grid at sample_rate with the model grid's window and hop in seconds."""
    hop = max(1, int(round(HOP_SECONDS * sample_rate)))
    return StftGrid(4 * hop, hop, sample_rate)


def as_signal(audio, name: str = "audio") -> tuple[np.ndarray, bool]:
    """([channels, samples] float64, whether the input was mono) from an array or tensor.

    Integer arrays are scaled by their type's full scale (int16 by 32768; unsigned ones, as unsigned PCM,
    about the middle of their range: uint8 128 is silence, 0 is -1.0); a second axis longer than
    MAX_CHANNELS is taken as samples-first and refused, as is anything empty, non-finite or too short.
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        try:
            audio = np.asarray(audio)
        except (TypeError, ValueError):
            raise SpeechInpaintError(f"{name}: expected an array of samples, got {type(audio).__name__}") from None
    if audio.dtype.kind in "iu":
        info = np.iinfo(audio.dtype)
        scale = (float(info.max) + 1.0) / (2.0 if audio.dtype.kind == "u" else 1.0)
        offset = scale if audio.dtype.kind == "u" else 0.0
        signal = (audio.astype(np.float64) - offset) / scale
    elif audio.dtype.kind == "f":
        signal = audio.astype(np.float64)
    else:
        raise SpeechInpaintError(f"{name}: expected numeric samples, got an array of {audio.dtype}")
    mono = signal.ndim == 1
    if mono:
        signal = signal[None]
    if signal.ndim != 2:
        raise SpeechInpaintError(f"{name}: expected [samples] or [channels, samples], got shape {audio.shape}")
    if signal.shape[0] > MAX_CHANNELS and signal.shape[1] <= MAX_CHANNELS:
        raise SpeechInpaintError(f"{name}: shape {audio.shape} looks like [samples, channels]; pass [channels, samples] "
                                 "(transpose it)")
    if signal.shape[0] > MAX_CHANNELS:
        raise SpeechInpaintError(f"{name}: {signal.shape[0]} channels is more than {MAX_CHANNELS}")
    if signal.size == 0:
        raise SpeechInpaintError(f"{name}: the signal holds no samples")
    if not np.all(np.isfinite(signal)):
        raise SpeechInpaintError(f"{name}: the signal contains NaN or infinite samples")
    return signal, mono


def extension_band(mask: Mask, input_rate: int) -> Mask:
    """The mask plus, over the whole file, the band above the input's Nyquist frequency (from where the
    resampler's filter starts to cut, as the band corruption marks it) up to 8 kHz."""
    top = min(mask.nyquist, SAMPLE_RATE / 2)
    f0 = BAND_PASSBAND * input_rate / 2
    if input_rate >= SAMPLE_RATE or f0 >= top:
        return mask
    return Mask(mask.sample_rate, mask.num_samples, [*mask.regions, Region(0.0, mask.duration, f0, top)])


def mask_at_output(mask: Mask, input_rate: int, output_rate: int, num_samples: int) -> Mask:
    """The mask in the output's terms: moved to output_rate (num_samples long), with the extension band
    when the output rate is higher than the input's."""
    if output_rate == input_rate:
        return mask
    moved = mask.at_rate(output_rate, num_samples)
    return extension_band(moved, input_rate) if output_rate > input_rate else moved


class Restorer:
    """A restoration method: `restore_16k` fills the masked regions of 16 kHz mono float32 audio;
    `restore` takes audio in its own terms (module doc).

    Audio longer than chunk_seconds is restored in overlapping chunks, cross-faded, so memory stays flat.
    """

    def __init__(self, chunk_seconds: float = 30.0, overlap_seconds: float = 1.0):
        self.chunk = int(min(chunk_seconds * SAMPLE_RATE, 2**62))  # inf: one piece
        self.overlap = int(overlap_seconds * SAMPLE_RATE)
        # At a rate above 16 kHz, also estimate the masked bins above the network's band (dsp.upper_band);
        # False restores below 8 kHz only, as the project did before (benchmarks/fullband.py compares).
        self.full_band = True

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        """Restored float32 audio of the same length; mask at 16 kHz, matching the audio."""
        raise NotImplementedError

    def restore(self, audio, mask, sample_rate: int | None = None, output_rate: int | None = None,
                progress: Progress | None = None):
        """Restore audio at sample_rate (default 16 kHz): a 1-D array (mono) or [channels, samples] of
        any numeric type, or a torch tensor, or a list of numbers (one mono clip); or a list of clips with
        one mask or a list of as many masks. mask: a Mask in the audio's terms, the path of a mask file,
        or "auto" to detect it. sample_rate and output_rate: whole numbers of Hz; a higher output_rate
        asks for bandwidth extension. Returns float32 of the input's shape at output_rate (default:
        sample_rate)."""
        if isinstance(audio, list) and audio and not all(_is_number(x) for x in audio):
            masks = mask if isinstance(mask, list) else [mask] * len(audio)
            if len(masks) != len(audio):
                raise SpeechInpaintError(f"mask: a list of {len(masks)} masks for a list of {len(audio)} clips")
            return [self.restore(a, m, sample_rate, output_rate, progress) for a, m in zip(audio, masks)]
        rate = SAMPLE_RATE if sample_rate is None else whole_rate(sample_rate)
        if output_rate is not None:
            output_rate = whole_rate(output_rate, "output_rate")
        if rate < 8000:
            raise SpeechInpaintError(f"sample rate {rate} Hz is below the supported minimum of 8000 Hz")
        signal, mono = as_signal(audio)
        if signal.shape[1] < MIN_SAMPLES * rate / SAMPLE_RATE:
            raise SpeechInpaintError(f"{signal.shape[1]} samples is shorter than one analysis window "
                                     f"({MIN_SAMPLES * rate // SAMPLE_RATE} samples at {rate} Hz)")
        mask = resolve_mask(mask, signal, rate)
        out = restore_signal(self, signal, rate, mask, output_rate, progress, in_place=True)  # signal is a copy
        return (out[0] if mono else out).astype(np.float32)

    def restore_mono16(self, audio: np.ndarray, mask: Mask, progress: Progress | None = None) -> np.ndarray:
        """restore_16k over chunks of at most chunk_seconds, cross-faded over overlap_seconds."""
        audio = np.asarray(audio, dtype=np.float32)
        mask.check_matches(len(audio), SAMPLE_RATE)
        n = len(audio)
        if n <= self.chunk:
            out = self.restore_16k(audio, mask)
            if progress:
                progress.update(n / SAMPLE_RATE)
            return out
        out = np.zeros(n, dtype=np.float32)
        weight = np.zeros(n, dtype=np.float32)
        # As few chunks as fit, all of one length, so no chunk restores again what another has done.
        count = -(-(n - self.overlap) // (self.chunk - self.overlap))
        length = -(-(n + (count - 1) * self.overlap) // count)
        done = 0
        for start in range(0, n, length - self.overlap):
            stop = min(start + length, n)
            start = max(0, stop - length)
            piece = self.restore_16k(audio[start:stop], crop_mask(mask, start, stop))
            fade = np.ones(stop - start, dtype=np.float32)
            ramp = np.linspace(0.0, 1.0, self.overlap, dtype=np.float32)
            if start > 0:
                fade[: self.overlap] = ramp
            if stop < n:
                fade[-self.overlap:] = ramp[::-1]
            out[start:stop] += piece * fade
            weight[start:stop] += fade
            del piece
            release_freed_memory()  # the chunk's activations and STFTs, before the next chunk's
            if progress:
                progress.update((stop - done) / SAMPLE_RATE)
            done = stop
            if stop == n:
                break
        return out / np.maximum(weight, 1e-6)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def whole_rate(value, name: str = "sample_rate") -> int:
    """A sample rate given as a number: a whole number of Hz (16000.0 is 16000; 16000.5 is refused)."""
    if not _is_number(value) or not np.isfinite(value) or value != int(value):
        raise SpeechInpaintError(f"{name} must be a whole number of Hz, got {value!r}")
    return int(value)


def resolve_mask(mask, signal: np.ndarray, rate: int) -> Mask:
    """A Mask in the signal's terms from a Mask, a mask file's path or "auto"."""
    channels, n = signal.shape
    if isinstance(mask, str) and mask == "auto":
        return detect_signal(signal, rate).mask
    if isinstance(mask, (str, os.PathLike)):
        return load_mask(Path(mask), n, rate, channels)
    if not isinstance(mask, Mask):
        raise SpeechInpaintError(f"mask: expected a Mask, a mask file's path or 'auto', got {type(mask).__name__}")
    mask.check_matches(n, rate, "mask", channels)
    return mask.validate("mask")


def restore_signal(restorer: Restorer, signal: np.ndarray, rate: int, mask: Mask, output_rate: int | None = None,
                   progress: Progress | None = None, in_place: bool = False) -> np.ndarray:
    """[channels, samples] float64 restored at output_rate (default: rate); see the module doc. With
    in_place (a float64 signal at the output rate), the signal itself is restored and returned, so a
    long recording is never held twice."""
    if output_rate and output_rate != rate:
        signal = np.stack([resample(ch, rate, output_rate) for ch in signal]).astype(np.float64)
        mask = mask_at_output(mask, rate, output_rate, signal.shape[1])
        rate = output_rate
    elif not in_place or signal.dtype != np.float64:
        signal = np.array(signal, dtype=np.float64)
    for c in range(signal.shape[0]):
        restore_channel(restorer, signal[c], rate, mask.for_channel(c), progress)
    return signal


# The correction at a recording's own rate is kept inside the mask on its STFT in pieces of this length,
# so memory stays flat on long files.
PIECE_SECONDS = 30.0


def restore_channel(restorer: Restorer, x: np.ndarray, rate: int, mask: Mask, progress: Progress | None) -> None:
    """Restore one channel (float64 at rate, written in place) with its mask (same terms, no channel tags)."""
    gaps_only = all(mask.is_full_band(r) for r in mask.regions)
    if rate == SAMPLE_RATE:
        x16 = x.astype(np.float32)
        mask16 = mask
    else:
        x16 = resample(x, rate, SAMPLE_RATE)
        mask16 = mask.at_rate(SAMPLE_RATE, len(x16))
    gap = gap_sample_mask(mask) if gaps_only else None
    if mask16.regions:
        restored = restorer.restore_mono16(x16, mask16, progress)
        if rate == SAMPLE_RATE:
            correction = restored.astype(np.float64) - x16
        else:  # float32, as the resampler takes it
            correction = resample(restored - x16, SAMPLE_RATE, rate)
            if len(correction) < len(x):
                correction = np.pad(correction, (0, len(x) - len(correction)))
            correction = correction[: len(x)]
        del restored, x16  # a long channel's copies go before the next step makes its own
        if gaps_only:
            x[gap] += correction[gap]
        elif rate == SAMPLE_RATE:
            x += correction
        else:
            add_inside_mask(x, correction, mask, native_grid(rate), SAMPLE_RATE / 2)
        del correction
        release_freed_memory()
    elif progress:
        progress.update(len(x) / rate)
    if rate > SAMPLE_RATE and restorer.full_band:
        restore_upper_band(x, mask, native_grid(rate), kept=None if gap is None else ~gap)


def add_inside_mask(x: np.ndarray, correction: np.ndarray, mask: Mask, grid: StftGrid, top: float) -> None:
    """x += the correction's STFT bins inside the mask up to `top` Hz, inverted; in pieces of
    PIECE_SECONDS (each with a window of context on both sides, starting on a frame), the same sum."""
    n = len(x)
    piece = max(grid.hop, int(PIECE_SECONDS * grid.sample_rate) // grid.hop * grid.hop)
    pad = grid.n_fft
    above = grid.bin_freqs() > top
    for start in range(0, n, piece):
        lo, hi = max(0, start - pad), min(n, start + piece + pad)
        part = crop_mask(mask, lo, hi)
        if not part.regions:
            continue
        inside = missing_bins(part, grid)
        inside[above, :] = False
        spec = grid.stft(torch.from_numpy(np.ascontiguousarray(correction[lo:hi], dtype=np.float32)))
        kept = grid.istft(spec * torch.from_numpy(inside), hi - lo).numpy()
        stop = min(n, start + piece)
        x[start:stop] += kept[start - lo:stop - lo]
