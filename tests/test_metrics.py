"""Metrics on real speech: known cases, the LSD definition, missing PESQ, and the baseline ordering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechinpaint.audio import load_audio
from speechinpaint.corruptions import corrupt
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import summarise
from speechinpaint.masks import Mask, Region
from speechinpaint.metrics import lsd, score
from speechinpaint.restorers import make_restorer

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_audio(DATA / "da_mars.wav")


def test_identical_signals_score_perfectly(clip):
    s = score(clip, clip)
    assert s["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert s["lsd"] == 0.0
    assert s["pesq"] > 4.4
    assert s["pesq_error"] is None
    assert s["lsd_mask"] is None
    assert s["si_sdr"] > 60


def _lsd_by_hand(ref: np.ndarray, est: np.ndarray) -> float:
    """The LSD of metrics.py written out with numpy alone: centred 2048/512 periodic-Hann frames, log10 power."""
    n_fft, hop = 2048, 512
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)

    def logpow(x):
        padded = np.pad(x, n_fft // 2)
        frames = np.stack([padded[t * hop:t * hop + n_fft] for t in range(1 + len(x) // hop)])
        return np.log10(np.maximum(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, 1e-8))

    return float(np.mean(np.sqrt(np.mean((logpow(ref) - logpow(est)) ** 2, axis=1))))


def test_lsd_follows_the_written_definition(clip):
    noisy = clip + 0.01 * np.random.default_rng(0).standard_normal(clip.size).astype(np.float32)
    assert lsd(clip, noisy) == pytest.approx(_lsd_by_hand(clip.astype(np.float64), noisy.astype(np.float64)), rel=1e-3)


def test_lsd_grows_with_damage(clip):
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(clip.size).astype(np.float32)
    values = [lsd(clip, clip + level * noise) for level in (1e-4, 1e-3, 1e-2, 1e-1)]
    assert values == sorted(values) and values[0] > 0
    light, _ = corrupt(clip, "holes", seed=3, coverage=0.1)
    heavy, _ = corrupt(clip, "holes", seed=3, coverage=0.5)
    assert 0 < lsd(clip, light) < lsd(clip, heavy)


def test_lsd_in_mask_looks_only_inside_the_mask(clip):
    narrow, band = corrupt(clip, "band", cutoff_hz=4000.0)
    duration = clip.size / 16000
    low = Mask(16000, clip.size, [Region(0.0, duration, 0.0, 2000.0)])
    upper = score(clip, narrow, band)["lsd_mask"]
    lower = score(clip, narrow, low)["lsd_mask"]
    # The upper band is gone, the lower band is untouched: only the mask over the damage sees it.
    assert upper > 2.0 and lower < 0.2
    assert score(clip, narrow, Mask(16000, clip.size, []))["lsd_mask"] is None


def test_si_sdr_is_scale_invariant_and_tracks_snr(clip):
    assert score(clip, 0.5 * clip)["si_sdr"] > 60
    noise = np.random.default_rng(2).standard_normal(clip.size)
    noise *= np.linalg.norm(clip - clip.mean()) / np.linalg.norm(noise) / np.sqrt(10)  # 10 dB SNR
    assert score(clip, clip + noise)["si_sdr"] == pytest.approx(10.0, abs=0.5)


def test_unscoreable_pesq_is_missing_and_counted(clip):
    silent = score(clip, np.zeros_like(clip))
    short = score(clip[:3000], clip[:3000])  # 0.19 s: below PESQ's minimum of 0.25 s
    for s in (silent, short):
        assert s["pesq"] is None and s["pesq_error"]
    assert "BufferTooShort" in short["pesq_error"]
    summary = summarise([score(clip, clip), silent])
    assert summary["files"] == 2
    assert summary["pesq"]["n"] == 1 and summary["pesq"]["missing"] == 1
    assert summary["pesq"]["mean"] > 4.4  # the missing file is not averaged in as a zero
    assert summary["lsd"]["n"] == 2


def test_mismatched_lengths_and_masks_are_refused(clip):
    with pytest.raises(SpeechInpaintError, match="same length"):
        score(clip, clip[:-1])
    other = Mask(16000, clip.size + 160, [Region(0.1, 0.2, 0.0, 8000.0)])
    with pytest.raises(SpeechInpaintError, match="samples"):
        score(clip, clip, other)


@pytest.mark.parametrize("name", ["da_mars.wav", "lt_letters_d_a_b.wav"])
def test_interp_beats_zero_on_holes(name):
    clean = load_audio(DATA / name)
    corrupted, mask = corrupt(clean, "holes", seed=0)
    zero = score(clean, make_restorer("zero").restore(corrupted, mask), mask)
    interp = score(clean, make_restorer("interp").restore(corrupted, mask), mask)
    assert interp["stoi"] > zero["stoi"]
    assert interp["pesq"] > zero["pesq"]
    assert interp["lsd"] < zero["lsd"]
    assert interp["lsd_mask"] < zero["lsd_mask"]
