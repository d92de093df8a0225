"""Janssen-TF (baselines/janssen_tf.py) on real speech: through `restore --method janssen-tf` it fills
holes better than leaving them empty, and on the paper's own damage (missing spectrogram columns, the
original coefficients known) it brings the lost columns back close to the truth with the known bins kept."""

from __future__ import annotations

import numpy as np
import torch

from speechinpaint.audio import load_audio, save_audio
from speechinpaint.baselines.janssen_tf import janssen_tf
from speechinpaint.cli import main
from speechinpaint.corruptions import corrupt
from speechinpaint.dsp.spectral import MODEL_GRID
from speechinpaint.masks import save_mask
from speechinpaint.metrics import score


def test_restore_method_janssen_tf_fills_holes_better_than_zero(tmp_path, speech, capsys):
    corrupted, mask = corrupt(speech, "holes", seed=0, coverage=0.3)
    save_audio(tmp_path / "c.wav", corrupted)
    save_mask(tmp_path / "c.mask.json", mask)
    for method in ("zero", "janssen-tf"):
        assert main(["restore", str(tmp_path / "c.wav"), "-o", str(tmp_path / f"{method}.wav"), "--method", method]) == 0
    in_mask = {m: score(speech, load_audio(tmp_path / f"{m}.wav"), mask, metrics=("lsd_mask",))["lsd_mask"]
               for m in ("zero", "janssen-tf")}
    # Measured: 3.58 (zero) against 2.51.
    assert in_mask["janssen-tf"] < 0.85 * in_mask["zero"], in_mask


def test_missing_columns_come_back_and_known_bins_stay():
    clean = load_audio("tests/data/da_7spoke.wav")
    spec = MODEL_GRID.stft(torch.from_numpy(clean))
    missing = np.zeros(spec.shape, bool)
    for start, width in ((60, 4), (150, 8)):  # 32 and 64 ms of lost columns, in speech
        missing[:, start:start + width] = True
    damaged = torch.where(torch.from_numpy(missing), 0, spec)
    filled = janssen_tf(damaged, missing)
    assert torch.equal(filled[~torch.from_numpy(missing)], spec.to(torch.complex128)[~torch.from_numpy(missing)])
    lost = torch.from_numpy(missing)
    snr = 10 * np.log10(float((spec[lost].abs() ** 2).sum() / ((filled[lost] - spec[lost]).abs() ** 2).sum()))
    assert snr > 3.0, snr  # measured 3.9 dB; zero-filled columns are at 0 dB
