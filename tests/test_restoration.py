"""The baselines on real speech: interpolation beats leaving the holes empty, the oracle magnitude
beats interpolation, and time gaps are filled without touching one sample outside them."""

from __future__ import annotations

import numpy as np
import pytest

from speechinpaint.corruptions import corrupt
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.masks import Mask, Region, gap_sample_mask, rasterise
from speechinpaint.masks import missing_bins
from speechinpaint.restorers import InterpRestorer, OracleRestorer, make_restorer
from speechinpaint.dsp.spectral import MODEL_GRID

from conftest import lsd

ITERS = 16  # enough for the ordering to hold


@pytest.mark.parametrize("kind", ["holes", "band"])
@pytest.mark.parametrize("name", ["da_7spoke.wav", "lt_letters_d_a_b.wav"])
def test_interp_beats_zero_and_oracle_beats_interp(clips, kind, name):
    clean = clips[name]
    corrupted, mask = corrupt(clean, kind, seed=2)
    scores = {m: lsd(clean, make_restorer(m, ITERS, reference=clean).restore(corrupted, mask)) for m in ("zero", "interp", "oracle")}
    # Measured on da_7spoke, holes: 1.72 / 0.71 / 0.23; band: 3.17 / 1.22 / 0.32.
    assert scores["interp"] < 0.8 * scores["zero"], scores
    assert scores["oracle"] < 0.8 * scores["interp"], scores


def test_zero_returns_the_corrupted_audio(speech):
    corrupted, mask = corrupt(speech, "holes", seed=2)
    np.testing.assert_array_equal(make_restorer("zero").restore(corrupted, mask), corrupted)


@pytest.mark.parametrize("method", ["interp", "oracle"])
def test_gap_splice_keeps_every_sample_outside_the_gaps(speech, method):
    corrupted, mask = corrupt(speech, "gaps", seed=4)
    restored = make_restorer(method, ITERS, reference=speech).restore(corrupted, mask)
    gap = gap_sample_mask(mask)
    assert restored.dtype == np.float32 and len(restored) == len(speech)
    np.testing.assert_array_equal(restored[~gap], corrupted[~gap])
    assert np.sqrt(np.mean(restored[gap] ** 2)) > 0.1 * np.sqrt(np.mean(speech[gap] ** 2))  # the gaps are filled
    assert lsd(speech, restored) < lsd(speech, corrupted)


def test_gap_frames_are_widened_by_one_hop():
    # A 100 ms gap at 0.5 s: samples 8000..9599. Frames centred within one hop (128) of it are damaged.
    mask = Mask(16000, 16000, [Region(0.5, 0.6, 0.0, 8000.0)])
    missing = missing_bins(mask)
    centres = np.arange(missing.shape[1]) * MODEL_GRID.hop
    expected = (centres >= 8000 - 128) & (centres < 9600 + 128)
    np.testing.assert_array_equal(missing.all(axis=0), expected)
    np.testing.assert_array_equal(missing.any(axis=0), expected)
    # A hole is not widened: it is exactly its rasterisation.
    hole = Mask(16000, 16000, [Region(0.5, 0.6, 1000.0, 2000.0)])
    np.testing.assert_array_equal(missing_bins(hole), rasterise(hole, MODEL_GRID))


def test_user_errors(speech):
    corrupted, mask = corrupt(speech, "holes", seed=2)
    with pytest.raises(SpeechInpaintError, match="needs the clean reference"):
        make_restorer("oracle")
    with pytest.raises(SpeechInpaintError, match="differ in length"):
        OracleRestorer(speech[:-10]).restore(corrupted, mask)
    with pytest.raises(SpeechInpaintError, match="made for"):
        InterpRestorer().restore(corrupted[:-10], mask)
    with pytest.raises(SpeechInpaintError, match="unknown method"):
        make_restorer("magic")
