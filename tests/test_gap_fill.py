"""The two-sided pitch fill of time gaps, and the Inpainter's estimate per kind of damage: the fill and
its phase inside gaps, the envelope head over copied-up detail in a missing band."""

from pathlib import Path

import numpy as np
import pytest
import torch

from speechinpaint.audio import load_audio
from speechinpaint.baselines.sbr import copy_up_source
from speechinpaint.corruptions import corrupt
from speechinpaint.dsp.gap_fill import fill_gaps, pitch_lag
from speechinpaint.dsp.spectral import MODEL_GRID, spectral_envelope
from speechinpaint.inpainter import Inpainter, is_upper_band
from speechinpaint.masks import Mask, Region, gap_sample_mask, missing_bins
from speechinpaint.model import InpaintUNet, ModelConfig
from speechinpaint.reconstruction import restore_from_magnitude

DATA = Path(__file__).parent / "data"


def voiced(f0: float = 125.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 8)).astype(np.float32)


def test_the_pitch_lag_is_the_period():
    assert pitch_lag(voiced(125.0)[:2000]) == 128
    assert pitch_lag(voiced(200.0)[:2000]) == 80
    assert pitch_lag(np.zeros(40, dtype=np.float32)) is None  # too short for one period


def test_a_gap_in_a_periodic_signal_is_filled_with_the_period():
    clean = voiced()
    gap = np.zeros(len(clean), dtype=bool)
    gap[8000:8000 + 960] = True  # 60 ms
    damaged = np.where(gap, 0, clean).astype(np.float32)
    filled = fill_gaps(damaged, gap)
    assert filled.dtype == np.float32
    assert np.array_equal(filled[~gap], damaged[~gap])
    err = np.sum((filled - clean)[gap] ** 2) / np.sum(clean[gap] ** 2)
    assert err < 1e-3, err


def test_edges_without_a_period_leave_the_other_side_to_fill():
    clean = voiced()
    gap = np.zeros(len(clean), dtype=bool)
    gap[:800] = True  # the file's start: only the speech after it
    gap[-800:] = True  # the file's end: only the speech before it
    filled = fill_gaps(np.where(gap, 0, clean), gap)
    for part in (slice(0, 800), slice(-800, None)):
        assert np.sum((filled - clean)[part] ** 2) < 1e-3 * np.sum(clean[part] ** 2)
    everything = np.ones(len(clean), dtype=bool)
    assert not np.any(fill_gaps(clean, everything))


def test_lost_packets_in_speech_get_speech_at_its_level():
    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, "gaps", seed=5)
    gap = gap_sample_mask(mask)
    filled = fill_gaps(corrupted, gap)
    assert np.array_equal(filled[~gap], corrupted[~gap])
    ratio = np.sum(filled[gap] ** 2) / np.sum(clean[gap] ** 2)
    assert 0.3 < ratio < 3.0, ratio


def inpainter(share: float = 0.0, head: bool = False, iterations: int = 0) -> Inpainter:
    torch.manual_seed(0)
    config = ModelConfig(base_channels=4, levels=3, bottleneck_dilations=(2,), gap_fill_share=share,
                         envelope_channels=8 if head else 0, envelope_bands=8, envelope_dilations=(1, 2))
    return Inpainter(InpaintUNet(config).eval(), {"model": config.to_dict()}, iterations=iterations)


def test_inside_gaps_the_fill_leads_and_starts_the_phase():
    """With the whole share and no iterations, a gap's middle is the pitch fill itself: its magnitude
    and its phase; samples outside gaps stay exact."""
    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, "gaps", seed=5)
    gap = gap_sample_mask(mask)
    restored = inpainter(share=1.0).restore(corrupted, mask)
    assert np.array_equal(restored[~gap], corrupted[~gap])
    fill = fill_gaps(corrupted, gap)
    inner = np.convolve(gap, np.ones(1025), "same") >= 1025  # a whole window inside the gap
    assert inner.sum() > 1000
    assert np.sum((restored - fill)[inner] ** 2) < 1e-4 * np.sum(fill[inner] ** 2)
    blind = inpainter(share=0.0).restore(corrupted, mask)
    assert np.sum((blind - fill)[inner] ** 2) > 0.1 * np.sum(fill[inner] ** 2)


def test_a_missing_band_takes_the_head_envelope_over_copied_up_detail():
    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, "band", seed=2)
    ip = inpainter(head=True)
    missing = missing_bins(mask)
    log_mag, start = ip.estimate(corrupted, mask, missing)
    spec = MODEL_GRID.stft(torch.from_numpy(corrupted))
    known = torch.log(spec.abs().clamp_min(1e-5))
    edge = int(np.ceil(mask.regions[0].f0 / (16000 / 512)))
    source = torch.from_numpy(copy_up_source(edge, 257, 16000 / 512))
    holes = torch.from_numpy(missing)
    _, envelope = ip.network_estimate(spec[None], holes[None], envelope=True)
    expected = envelope[0, edge:] + (known - spectral_envelope(known))[source]
    assert torch.allclose(log_mag[edge:][holes[edge:]], expected[holes[edge:]], atol=1e-5)
    assert torch.equal(log_mag[~holes], known[~holes])
    assert torch.allclose(start[edge:][holes[edge:]], spec[source].angle()[holes[edge:]])
    assert start[~holes].isnan().all()
    # Without a head the band is the U-Net's, started from the same copied phase.
    log_unet, start_unet = inpainter().estimate(corrupted, mask, missing)
    unet, _ = inpainter().network_estimate(spec[None], holes[None])
    assert torch.allclose(log_unet[holes], unet[0][holes]) and not torch.allclose(log_unet, log_mag)
    assert torch.equal(start_unet.isnan(), start.isnan())


def test_a_short_region_up_to_nyquist_is_a_hole_not_a_band():
    mask = Mask(16000, 32000, [Region(0.1, 0.4, 5000, 8000), Region(0.0, 2.0, 4000, 8000), Region(0.5, 0.6, 0, 8000)])
    assert [is_upper_band(mask, r) for r in mask.regions] == [False, True, False]


@pytest.mark.parametrize("kind", ["gaps", "band"])
def test_a_fill_needs_fewer_iterations_than_a_random_start(kind):
    """From the fill's phase, 4 iterations land nearer a consistent spectrogram of the estimate than 4
    from a random phase do."""
    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, kind, seed=2)
    missing = missing_bins(mask)
    log_mag, start = inpainter(share=0.5, head=True).estimate(corrupted, mask, missing)
    holes = torch.from_numpy(missing)

    def inconsistency(audio):
        rebuilt = MODEL_GRID.stft(torch.from_numpy(audio)).abs().clamp_min(1e-5).log()
        return float((rebuilt - log_mag)[holes].abs().mean())

    started = restore_from_magnitude(corrupted, mask, log_mag.exp(), missing, 4, start)
    random = restore_from_magnitude(corrupted, mask, log_mag.exp(), missing, 4)
    assert inconsistency(started) < 0.95 * inconsistency(random)
