"""The three corruptions on real speech: each mask describes the damage actually done to the audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechinpaint.corruptions import MAX_BURST_PACKETS, PACKET_SAMPLES, corrupt, file_seed, holes_mask
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.masks import coverage, gap_sample_mask, rasterise
from speechinpaint.dsp.spectral import SEED_GRID

from conftest import EVAL_GRID

# 1 s exactly (a multiple of the hop: the STFT has a frame centred on the very end), odd lengths, 10 s.
LENGTHS = [16000, 40037, 64000, 160000]


@pytest.mark.parametrize("num_samples", LENGTHS)
@pytest.mark.parametrize("target", [0.1, 0.3, 0.5])
def test_holes_coverage_on_target(speech_of_length, num_samples, target):
    audio = speech_of_length(num_samples)
    _, mask = corrupt(audio, "holes", seed=7, coverage=target)
    mask.validate()  # every hole lies inside the signal, even one over the last frames
    assert abs(coverage(mask, SEED_GRID) - target) <= 0.02
    for r in mask.regions:  # the seed's hole sizes: at most 15 frames (300 ms) by 201 bins (5 kHz)
        assert r.t1 - r.t0 <= 0.300 + 1e-9
        assert r.f1 - r.f0 <= 201 * 25 + 1e-9


@pytest.mark.parametrize("num_samples", [16000, 16100, 32000])
def test_holes_never_reach_past_the_end(num_samples):
    """Holes drawn over the last frames used to end half a hop after the signal (an invalid mask)."""
    for seed in range(30):
        mask = holes_mask(num_samples, np.random.default_rng(seed))
        mask.validate()
        assert max(r.t1 for r in mask.regions) <= num_samples / 16000


def test_holes_empty_the_masked_bins_and_keep_the_rest(speech):
    corrupted, mask = corrupt(speech, "holes", seed=3)
    missing = torch.from_numpy(rasterise(mask, SEED_GRID))
    clean = SEED_GRID.stft(speech).abs() ** 2
    bad = SEED_GRID.stft(corrupted).abs() ** 2
    # Zeroed and inverted: what leaks back through the overlap-add is a few % of the energy at most.
    assert float(bad[missing].sum() / clean[missing].sum()) < 0.05
    assert float(bad[~missing].sum() / clean[~missing].sum()) > 0.98
    assert corrupted.dtype == np.float32 and len(corrupted) == len(speech)


@pytest.mark.parametrize("num_samples", LENGTHS)
@pytest.mark.parametrize("loss_rate", [0.1, 0.2, 0.3])
def test_gaps_zero_exactly_the_masked_samples(speech_of_length, num_samples, loss_rate):
    audio = speech_of_length(num_samples)
    corrupted, mask = corrupt(audio, "gaps", seed=11, loss_rate=loss_rate)
    mask.validate()
    gap = gap_sample_mask(mask)
    assert np.all(corrupted[gap] == 0.0)
    np.testing.assert_array_equal(corrupted[~gap], audio[~gap])
    assert all(mask.is_full_band(r) for r in mask.regions)

    packets = -(-num_samples // PACKET_SAMPLES)
    starts_of_packets = np.arange(0, num_samples, PACKET_SAMPLES)
    lost = np.logical_or.reduceat(gap, starts_of_packets)
    assert len(lost) == packets
    assert np.array_equal(lost, np.logical_and.reduceat(gap, starts_of_packets))  # whole packets, never parts
    assert abs(lost.mean() - loss_rate) <= 0.5 / packets + 1e-9
    starts = sorted(r.t0 for r in mask.regions)
    ends = sorted(r.t1 for r in mask.regions)
    for r in mask.regions:
        assert r.t1 - r.t0 <= MAX_BURST_PACKETS * PACKET_SAMPLES / 16000 + 1e-9  # bursts up to 120 ms
    # Bursts never touch, so no two merge into one longer than 120 ms.
    assert all(s - e >= 0.020 - 1e-9 for e, s in zip(ends[:-1], starts[1:]))


@pytest.mark.parametrize("cutoff", [3000.0, 4000.0, 6000.0])
def test_band_removes_what_the_mask_says(speech_of_length, cutoff):
    audio = speech_of_length(5 * 16000)
    corrupted, mask = corrupt(audio, "band", cutoff_hz=cutoff)
    (region,) = mask.regions
    assert (region.t0, region.t1, region.f1) == (0.0, 5.0, 8000.0)
    assert region.f0 < cutoff
    freqs = EVAL_GRID.bin_freqs()
    clean = (EVAL_GRID.stft(audio).abs() ** 2).sum(-1).numpy()
    bad = (EVAL_GRID.stft(corrupted).abs() ** 2).sum(-1).numpy()
    ratio = bad / clean
    above_cut = freqs >= cutoff
    above_f0 = freqs >= region.f0
    # Measured: above the cutoff ~1e-7 of the energy is left; above f0 (with the filter's transition)
    # 5-38 %; every bin below f0 keeps its energy to within 0.2 %.
    assert bad[above_cut].sum() / clean[above_cut].sum() < 1e-5
    assert bad[above_f0].sum() / clean[above_f0].sum() < 0.5
    kept = ~above_f0 & (freqs > 50)
    assert np.all(np.abs(ratio[kept] - 1) < 0.01)


def test_same_seed_same_result_other_seed_other_result(speech):
    for kind in ("holes", "gaps"):
        a, mask_a = corrupt(speech, kind, seed=5)
        b, mask_b = corrupt(speech, kind, seed=5)
        c, mask_c = corrupt(speech, kind, seed=6)
        np.testing.assert_array_equal(a, b)
        assert mask_a == mask_b
        assert mask_a != mask_c and not np.array_equal(a, c)


def test_file_seed_depends_on_seed_and_name_only():
    names = ["a.wav", "sub/a.wav", "b.flac", "c.wav"]
    seeds = {n: file_seed(0, n) for n in names}
    assert len(set(seeds.values())) == len(names)
    assert {n: file_seed(0, n) for n in reversed(names)} == seeds  # no state: order plays no part
    assert file_seed(1, "a.wav") != seeds["a.wav"]
    assert all(0 <= s < 2**64 for s in seeds.values())


@pytest.mark.parametrize(
    "kind,options,message",
    [
        ("holes", {"coverage": 0.0}, "coverage"),
        ("holes", {"coverage": 1.5}, "coverage"),
        ("gaps", {"loss_rate": -0.2}, "loss rate"),
        ("gaps", {"loss_rate": 1.0}, "loss rate"),
        ("band", {"cutoff_hz": 8000.0}, "cutoff"),
        ("band", {"cutoff_hz": 0.0}, "cutoff"),
        ("noise", {}, "unknown corruption kind"),
    ],
)
def test_bad_options_are_user_errors(speech, kind, options, message):
    with pytest.raises(SpeechInpaintError, match=message):
        corrupt(speech, kind, **options)
