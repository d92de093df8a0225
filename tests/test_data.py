"""Training crops: shapes, determinism across workers and epochs, the mask mixture, a 2-worker DataLoader."""

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from speechinpaint.training.data import CropConfig, CropDataset
from speechinpaint.dsp.spectral import MODEL_GRID


@pytest.fixture(scope="module")
def streams(clips):
    return {"da": np.concatenate([clips[n] for n in ("da_mercury.wav", "da_mars.wav", "da_7spoke.wav")]),
            "lt": clips["lt_letters_d_a_b.wav"]}


def test_crop_shapes_and_mask_grid(streams):
    ds = CropDataset(streams, CropConfig(crop_seconds=1.0), length=6, seed=0)
    item = ds[0]
    n = 16000
    assert item["clean"].shape == item["corrupted"].shape == (n,)
    assert item["missing"].shape == (MODEL_GRID.num_bins, MODEL_GRID.num_frames(n))
    assert item["missing"].dtype == torch.bool and item["missing"].any()
    assert float(item["clean"].abs().max()) < 1.0


def test_crops_are_deterministic_by_index_and_change_with_epoch(streams):
    a = CropDataset(streams, CropConfig(crop_seconds=0.5), length=4, seed=3)
    b = CropDataset(streams, CropConfig(crop_seconds=0.5), length=4, seed=3)
    assert torch.equal(a[2]["corrupted"], b[2]["corrupted"]) and a[2]["kind"] == b[2]["kind"]
    assert not torch.equal(a[1]["clean"], a[2]["clean"])
    b.set_epoch(1)
    assert not torch.equal(a[2]["clean"], b[2]["clean"])


def test_mixture_proportions(streams):
    cfg = CropConfig(crop_seconds=0.25, mixture={"holes": 0.5, "gaps": 0.25, "band": 0.25})
    ds = CropDataset(streams, cfg, length=400, seed=0)
    counts = Counter(ds[i]["kind"] for i in range(400))
    assert abs(counts["holes"] / 400 - 0.5) < 0.08
    assert abs(counts["gaps"] / 400 - 0.25) < 0.07
    assert abs(counts["band"] / 400 - 0.25) < 0.07


def test_dataloader_with_two_workers_gives_the_same_crops(streams):
    ds = CropDataset(streams, CropConfig(crop_seconds=0.5), length=8, seed=5)
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["corrupted"].shape == (4, 8000)
    assert torch.equal(batches[1]["corrupted"][1], ds[5]["corrupted"])


def test_speed_perturbation_moves_the_pitch_and_keeps_the_length():
    t = np.arange(16000 * 4) / 16000
    tone = {"tone": (0.5 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)}
    ds = CropDataset(tone, CropConfig(crop_seconds=1.0, speed=(1.2, 1.2)), length=1, seed=0)
    crop = ds.crop(np.random.default_rng(0))
    assert crop.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(crop * np.hanning(len(crop))))
    assert abs(np.argmax(spectrum) - 600) <= 2  # 1 Hz per bin for a 1 s crop


def test_high_shelf_lifts_the_upper_band_only():
    noise = np.random.default_rng(1).standard_normal(32000)
    cfg = CropConfig(shelf_db=(10.0, 10.0), shelf_corner_hz=(2000.0, 2000.0))
    ds = CropDataset({"noise": noise.astype(np.float32)}, cfg, length=1, seed=0)
    shelved = ds.shelve(noise, np.random.default_rng(0))
    freqs = np.fft.rfftfreq(len(noise), 1 / 16000)

    def band_gain_db(lo, hi):
        sel = (freqs >= lo) & (freqs < hi)
        return 10 * np.log10(np.sum(np.abs(np.fft.rfft(shelved)[sel]) ** 2) / np.sum(np.abs(np.fft.rfft(noise)[sel]) ** 2))

    assert abs(band_gain_db(50, 400)) < 0.5
    assert abs(band_gain_db(5000, 8000) - 10) < 0.5
