"""Metrics on real speech: known cases, the LSD definitions, missing scores, the learned metrics
(ViSQOL, PLCMOS, DNSMOS) on a clip against itself and a damaged copy, subsets, and the baseline ordering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechinpaint.audio import load_audio
from speechinpaint.corruptions import corrupt
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import summarise
from speechinpaint.masks import Mask, Region
from speechinpaint.metrics import METRICS, high_band_bins, lsd, lsd_high, plcmos, score
from speechinpaint.restorers import make_restorer

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_audio(DATA / "da_mars.wav")


@pytest.fixture(scope="module")
def clean_and_damaged(clip):
    """Every metric of the clip against itself and against a copy with 20 % of its packets lost."""
    lossy, mask = corrupt(clip, "gaps", seed=4)
    return score(clip, clip), score(clip, lossy, mask)


def test_identical_signals_score_perfectly(clean_and_damaged):
    s, _ = clean_and_damaged
    assert list(s) == [*METRICS, "pesq_error"]
    assert s["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert s["estoi"] == pytest.approx(1.0, abs=1e-4)
    assert s["lsd"] == 0.0 and s["lsd_high"] == 0.0
    assert s["pesq"] > 4.4
    assert s["pesq_error"] is None
    assert s["lsd_mask"] is None
    assert s["si_sdr"] > 60
    # ViSQOL's lattice mapper tops out near 4.7 on speech (not 5): the clip against itself is near that.
    assert s["visqol"] > 4.3
    for m in ("plcmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
        assert 1.0 <= s[m] <= 5.0, m


def test_damage_lowers_every_metric(clean_and_damaged):
    clean, lossy = clean_and_damaged
    for m in ("stoi", "estoi", "pesq", "si_sdr", "plcmos", "dnsmos_sig", "dnsmos_ovrl"):
        assert lossy[m] < clean[m], m
    assert lossy["visqol"] < clean["visqol"] - 1.0
    assert lossy["plcmos"] < clean["plcmos"] - 1.0  # the damage PLCMOS was made for
    for m in ("lsd", "lsd_high", "lsd_mask"):
        assert lossy[m] > 0.3, m


def test_plcmos_is_repeatable_and_is_speechmos_seeded(clip):
    """The same file always gets the same PLCMOS: the rater embeddings are those of np.random.seed(0),
    drawn from a generator of its own, so the caller's global random state is left as it was."""
    from speechmos.plcmos import PLCMOS

    state = np.random.get_state()[1].copy()
    first = plcmos(clip)
    assert plcmos(clip) == first
    assert np.array_equal(np.random.get_state()[1], state)
    np.random.seed(0)
    assert first == pytest.approx(PLCMOS()(clip.astype(np.float32))["plcmos"], abs=1e-6)


def _lsd_by_hand(ref: np.ndarray, est: np.ndarray, bins: np.ndarray | None = None) -> float:
    """The LSD of metrics.py written out with numpy alone: centred 2048/512 periodic-Hann frames, log10 power
    (over `bins` only, when given)."""
    n_fft, hop = 2048, 512
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)

    def logpow(x):
        padded = np.pad(x, n_fft // 2)
        frames = np.stack([padded[t * hop:t * hop + n_fft] for t in range(1 + len(x) // hop)])
        power = np.log10(np.maximum(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, 1e-8))
        return power if bins is None else power[:, bins]

    return float(np.mean(np.sqrt(np.mean((logpow(ref) - logpow(est)) ** 2, axis=1))))


def test_lsd_follows_the_written_definition(clip):
    noisy = clip + 0.01 * np.random.default_rng(0).standard_normal(clip.size).astype(np.float32)
    assert lsd(clip, noisy) == pytest.approx(_lsd_by_hand(clip.astype(np.float64), noisy.astype(np.float64)), rel=1e-3)
    freqs = np.arange(1025) * 16000 / 2048
    high = (freqs >= 4000) & (freqs <= 8000)
    assert np.array_equal(high_band_bins(), high) and high.sum() == 513
    expected = _lsd_by_hand(clip.astype(np.float64), noisy.astype(np.float64), high)
    assert lsd_high(clip, noisy) == pytest.approx(expected, rel=1e-3)
    assert score(clip, noisy, metrics=("lsd_high",))["lsd_high"] == lsd_high(clip, noisy)


def test_lsd_high_sees_only_the_upper_band(clip):
    narrow, band = corrupt(clip, "band", cutoff_hz=4000.0)
    s = score(clip, narrow, band, metrics=("lsd", "lsd_high"))
    assert s["lsd_high"] > 2.0 and s["lsd_high"] > s["lsd"]
    # Damage below 3 kHz only (the lower band replaced by silence) leaves lsd_high near 0.
    spec = np.fft.rfft(clip)
    spec[: int(3000 * clip.size / 16000)] = 0
    low_cut = np.fft.irfft(spec, n=clip.size).astype(np.float32)
    s = score(clip, low_cut, metrics=("lsd", "lsd_high"))
    assert s["lsd_high"] < 0.3 < s["lsd"]


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
    only = ("lsd_mask",)
    upper = score(clip, narrow, band, metrics=only)["lsd_mask"]
    lower = score(clip, narrow, low, metrics=only)["lsd_mask"]
    # The upper band is gone, the lower band is untouched: only the mask over the damage sees it.
    assert upper > 2.0 and lower < 0.2
    assert score(clip, narrow, Mask(16000, clip.size, []), metrics=only)["lsd_mask"] is None


def test_si_sdr_is_scale_invariant_and_tracks_snr(clip):
    assert score(clip, 0.5 * clip, metrics=("si_sdr",))["si_sdr"] > 60
    noise = np.random.default_rng(2).standard_normal(clip.size)
    noise *= np.linalg.norm(clip - clip.mean()) / np.linalg.norm(noise) / np.sqrt(10)  # 10 dB SNR
    assert score(clip, clip + noise, metrics=("si_sdr",))["si_sdr"] == pytest.approx(10.0, abs=0.5)


def test_unscoreable_pesq_is_missing_and_counted(clip):
    silent = score(clip, np.zeros_like(clip))
    short = score(clip[:3000], clip[:3000])  # 0.19 s: below PESQ's minimum of 0.25 s
    for s in (silent, short):
        assert s["pesq"] is None and s["pesq_error"]
        assert s["visqol"] is None  # nothing to compare against / too short for its patches
    assert "BufferTooShort" in short["pesq_error"]
    assert short["stoi"] is None and short["estoi"] is None
    tiny = score(clip[:400], clip[:400], metrics=("stoi", "estoi", "plcmos", "lsd"))  # under one STOI frame
    assert tiny == {"stoi": None, "estoi": None, "plcmos": None, "lsd": 0.0}
    summary = summarise([score(clip, clip), silent])
    assert summary["files"] == 2
    assert summary["pesq"]["n"] == 1 and summary["pesq"]["missing"] == 1
    assert summary["pesq"]["mean"] > 4.4  # the missing file is not averaged in as a zero
    assert summary["lsd"]["n"] == 2


def test_a_subset_scores_only_its_metrics(clip):
    assert list(score(clip, clip, metrics=("lsd_high", "stoi"))) == ["stoi", "lsd_high"]
    assert list(score(clip, clip, metrics=("pesq",))) == ["pesq", "pesq_error"]
    assert list(score(clip, clip, metrics=("dnsmos_ovrl",))) == ["dnsmos_ovrl"]
    with pytest.raises(SpeechInpaintError, match="unknown metric nisqa: choose some of stoi,estoi"):
        score(clip, clip, metrics=("stoi", "nisqa"))
    with pytest.raises(SpeechInpaintError, match="no metric chosen"):
        score(clip, clip, metrics=())


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
    metrics = ("stoi", "pesq", "lsd", "lsd_mask")
    zero = score(clean, make_restorer("zero").restore(corrupted, mask), mask, metrics)
    interp = score(clean, make_restorer("interp").restore(corrupted, mask), mask, metrics)
    assert interp["stoi"] > zero["stoi"]
    assert interp["pesq"] > zero["pesq"]
    assert interp["lsd"] < zero["lsd"]
    assert interp["lsd_mask"] < zero["lsd_mask"]
