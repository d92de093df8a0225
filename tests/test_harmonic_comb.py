"""The harmonic comb for holes (dsp/harmonic_comb.py): it changes only the bins it is given, in voiced
frames only, puts its peaks on the harmonics of the f0, and through the Inpainter changes only masked
bins of a real clip with holes."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from speechinpaint.corruptions import corrupt
from speechinpaint.dsp.harmonic_comb import comb_detail, lay_comb, track_f0
from speechinpaint.dsp.spectral import MODEL_GRID, log_magnitude
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import missing_bins


def test_comb_peaks_sit_on_the_harmonics():
    detail = comb_detail(np.array([125.0, np.nan]), depth_db=30.0)  # 125 Hz is every 4th bin
    voiced = detail[:, 0]
    assert torch.all(detail[:, 1] == 0)  # an unvoiced frame gets no detail
    harmonics = torch.arange(8, 240, 4)
    between = harmonics + 2
    assert torch.all(voiced[harmonics] > voiced[between] + 2.0)  # ~30 dB = 3.4 in natural log


def test_comb_changes_only_the_bins_it_is_given(speech):
    log_mag = log_magnitude(MODEL_GRID.stft(torch.from_numpy(speech)))
    f0 = track_f0(speech)
    assert np.isfinite(f0).mean() > 0.3  # real speech is voiced much of the time
    where = torch.zeros(log_mag.shape, dtype=torch.bool)
    where[20:150, 100:200] = True
    combed = lay_comb(log_mag, f0, where, share=0.5, depth_db=30.0)
    changed = combed != log_mag
    assert changed.any() and not changed[~where].any()
    assert not changed[:, ~torch.from_numpy(np.isfinite(f0))].any()


def test_inpainter_comb_changes_only_masked_bins(speech):
    corrupted, mask = corrupt(speech, "holes", seed=0, coverage=0.3)
    shipped = Inpainter.from_pretrained()
    shipped.model.config = dataclasses.replace(shipped.model.config, comb_share=0.5)
    plain = Inpainter.from_pretrained()
    plain.model.config = dataclasses.replace(plain.model.config, comb_share=0.0)
    missing = torch.from_numpy(missing_bins(mask))
    with_comb, without = (MODEL_GRID.stft(torch.from_numpy(r.restore(corrupted, mask))) for r in (shipped, plain))
    # The masked bins differ; the known ones only by what the overlap of frames leaks from them.
    inside = (with_comb[missing] - without[missing]).abs().mean()
    outside = (with_comb[~missing] - without[~missing]).abs().mean()
    assert inside > 1e-3 and outside < 0.05 * inside, (inside, outside)
