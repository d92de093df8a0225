"""The STFT convention and phase reconstruction: perfect reconstruction, known bins kept exactly,
and a phase for the missing bins that gets more consistent with every iteration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechinpaint.corruptions import corrupt
from speechinpaint.masks import Mask, gap_sample_mask
from speechinpaint.metrics import pesq_wb
from speechinpaint.dsp.phase import reconstruct, reconstruct_spectrogram
from speechinpaint.masks import missing_bins
from speechinpaint.restorers import make_restorer
from speechinpaint.dsp.spectral import MODEL_GRID, SEED_GRID, StftGrid

from conftest import CLIP_NAMES, EVAL_GRID


@pytest.mark.parametrize("grid", [SEED_GRID, MODEL_GRID, EVAL_GRID], ids=["seed", "model", "eval"])
def test_stft_istft_round_trip(clips, grid: StftGrid):
    for name in CLIP_NAMES:
        audio = clips[name]
        spec = grid.stft(audio)
        assert spec.shape == (grid.num_bins, grid.num_frames(len(audio)))
        back = grid.istft(spec, len(audio)).numpy()
        np.testing.assert_allclose(back, audio, atol=1e-5)


def test_stft_is_batched(clips):
    a, b = clips["da_mercury.wav"], clips["da_mars.wav"][: len(clips["da_mercury.wav"])]
    batch = MODEL_GRID.stft(np.stack([a, b]))
    assert torch.equal(batch[1], MODEL_GRID.stft(b))


def holes_problem(audio, seed=1):
    """Corrupted STFT, missing bins and the clean magnitude (the oracle) on the model grid."""
    corrupted, mask = corrupt(audio, "holes", seed=seed)
    known = MODEL_GRID.stft(corrupted)
    missing = torch.from_numpy(missing_bins(mask))
    clean = MODEL_GRID.stft(audio).abs()
    return known, missing, clean


def test_known_bins_are_kept_exactly(speech):
    known, missing, clean = holes_problem(speech)
    spec = reconstruct_spectrogram(known, missing, clean, MODEL_GRID, len(speech), n_iter=16)
    assert torch.equal(spec[~missing], known[~missing])
    np.testing.assert_allclose(spec[missing].abs().numpy(), clean[missing].numpy(), rtol=1e-4, atol=1e-6)


def test_known_bins_kept_in_a_batch(clips):
    n = len(clips["da_mercury.wav"])
    problems = [holes_problem(clips[name][:n], seed) for seed, name in enumerate(["da_mercury.wav", "da_mars.wav"])]
    known, missing, clean = (torch.stack(parts) for parts in zip(*problems))
    spec = reconstruct_spectrogram(known, missing, clean, MODEL_GRID, n, n_iter=8)
    assert spec.shape == known.shape
    assert torch.equal(spec[~missing], known[~missing])


def test_empty_mask_returns_the_audio(speech):
    known = MODEL_GRID.stft(speech)
    nothing = torch.zeros(known.shape, dtype=torch.bool)
    spec = reconstruct_spectrogram(known, nothing, known.abs(), MODEL_GRID, len(speech), n_iter=16)
    assert torch.equal(spec, known)
    np.testing.assert_allclose(reconstruct(known, nothing, known.abs(), MODEL_GRID, len(speech)).numpy(), speech, atol=1e-5)
    empty = Mask(16000, len(speech), [])
    for method in ("zero", "interp", "oracle"):
        np.testing.assert_array_equal(make_restorer(method, reference=speech).restore(speech, empty), speech)


def spectral_convergence_in_holes(speech, n_iter: int) -> float:
    """|| |STFT(x_hat)| - |S| || / || S || over the missing bins, after the round trip through audio."""
    known, missing, clean = holes_problem(speech)
    audio = reconstruct(known, missing, clean, MODEL_GRID, len(speech), n_iter=n_iter)
    rebuilt = MODEL_GRID.stft(audio).abs()
    return float(torch.linalg.norm((rebuilt - clean)[missing]) / torch.linalg.norm(clean[missing]))


def test_spectral_convergence_improves_with_iterations(speech):
    # Measured on this clip: 0.65 with the random start, 0.23 after 8 iterations, 0.09 after 32.
    sc = [spectral_convergence_in_holes(speech, n) for n in (0, 8, 32)]
    assert sc[1] < 0.6 * sc[0]
    assert sc[2] < sc[1]
    assert sc[2] < 0.2


def test_holding_the_intact_samples_makes_a_better_gap_phase(speech):
    """With the clean magnitude, phase iterations that hold the samples around a gap fixed give a phase
    that fits the waveform at the gap edges: the spliced result scores clearly higher PESQ than after
    iterations on the spectrogram alone (about +0.4 to +0.7 on the bundled clips)."""
    corrupted, mask = corrupt(speech, "gaps", seed=2)
    signal = torch.from_numpy(corrupted)
    known = MODEL_GRID.stft(signal)
    missing = torch.from_numpy(missing_bins(mask))
    clean = MODEL_GRID.stft(speech).abs()
    gap = torch.from_numpy(gap_sample_mask(mask))

    def spliced_pesq(kept):
        est = reconstruct(known, missing, clean, MODEL_GRID, len(speech), n_iter=32, kept_samples=kept)
        return pesq_wb(speech, torch.where(gap, est, signal).numpy())[0]

    assert spliced_pesq((signal, ~gap)) > spliced_pesq(None) + 0.3
