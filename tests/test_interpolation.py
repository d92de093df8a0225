"""The interpolation baseline: linear across a hole from its edges, batched items independent, known
bins untouched, and a sensible value where a bin has no known neighbour in its row or column."""

import torch

from speechinpaint.dsp.interpolation import interpolate_log_magnitude


def test_linear_across_a_gap_in_time_and_known_bins_kept():
    # Every row rises linearly in time; columns 3..5 are missing. Along frequency the rows are equal,
    # so both directions agree with the line and the fill must be exact.
    log_mag = torch.arange(10.0).expand(4, 10).clone()
    missing = torch.zeros(4, 10, dtype=torch.bool)
    missing[:, 3:6] = True
    out = interpolate_log_magnitude(log_mag, missing)
    assert torch.allclose(out, log_mag)
    assert torch.equal(out[~missing], log_mag[~missing])


def test_missing_band_takes_the_edge_and_fully_missing_takes_the_mean():
    log_mag = torch.tensor([[1.0, 2.0], [3.0, 5.0], [0.0, 0.0]])
    band = torch.tensor([[False, False], [False, False], [True, True]])
    out = interpolate_log_magnitude(log_mag, band)
    assert torch.equal(out[2], torch.tensor([3.0, 5.0]))  # the bins above the cutoff extend its edge
    everything = torch.ones(3, 2, dtype=torch.bool)
    nothing_known = interpolate_log_magnitude(log_mag, everything)
    assert torch.isfinite(nothing_known).all()


def test_a_batch_is_interpolated_item_by_item():
    g = torch.Generator().manual_seed(0)
    log_mag = torch.randn(3, 33, 20, generator=g)
    missing = torch.rand(3, 33, 20, generator=g) < 0.4
    missing[1] = False
    missing[2, 10:20] = True
    batch = interpolate_log_magnitude(log_mag, missing)
    for i in range(3):
        assert torch.allclose(batch[i], interpolate_log_magnitude(log_mag[i], missing[i]))
