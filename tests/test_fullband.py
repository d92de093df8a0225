"""The full band of a 44.1 or 48 kHz recording: what the mask marks is restored up to the file's own
Nyquist frequency (dsp/upper_band.py after the network's band), and nothing outside the mask moves.

Real speech: the bundled 44.1 kHz clip, and the same clip resampled to 48 kHz. Four kinds of damage,
each at four places in the clip: a full-band noise burst, a 60 ms dropout, a hole above 8 kHz and a
hole straddling 8 kHz."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speechinpaint.audio import resample
from speechinpaint.cli import main
from speechinpaint.dsp.upper_band import SPLIT_HZ, restore_upper_band, stretches
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import Mask, Region, gap_sample_mask, load_mask, missing_bins, rasterise, save_mask
from speechinpaint.recording import native_grid

from conftest import DATA
from test_cli import assert_one_error_line, run

STARTS = (0.55, 1.05, 1.55, 2.05)  # seconds: speech, pauses and fricatives of the clip
KINDS = {"burst": (0.25, 0.0, None), "dropout": (0.06, 0.0, None), "above": (0.25, 9000.0, 14000.0),
         "straddle": (0.25, 5000.0, 12000.0)}


@pytest.fixture(scope="module")
def model() -> Inpainter:
    return Inpainter.from_pretrained()


def clean_at(rate: int) -> np.ndarray:
    audio, source = sf.read(DATA / "da_7spoke_44k.flac", dtype="float64")
    return audio if rate == source else resample(audio, source, rate).astype(np.float64)


def damaged(clean: np.ndarray, rate: int, kind: str) -> tuple[np.ndarray, Mask]:
    """The clip with one kind of damage at every start, and the mask that marks it."""
    length, f0, f1 = KINDS[kind]
    regions = [Region(t, t + length, f0, rate / 2 if f1 is None else f1) for t in STARTS]
    mask = Mask(rate, len(clean), regions)
    bad = clean.copy()
    gap = gap_sample_mask(mask)
    if kind == "burst":
        bad[gap] += 0.05 * np.random.default_rng(0).standard_normal(int(gap.sum()))
    elif kind == "dropout":
        bad[gap] = 0.0
    else:  # the marked bins zeroed on the file's own STFT
        grid = native_grid(rate)
        spec = grid.stft(torch.from_numpy(clean.astype(np.float32)))
        spec[torch.from_numpy(rasterise(mask, grid, spec.shape[-1]))] = 0
        bad = grid.istft(spec, len(clean)).numpy().astype(np.float64)
    return bad, mask


def upper_levels(x: np.ndarray, mask: Mask) -> np.ndarray:
    """dB power of each region's part above 8 kHz, on the file's own STFT."""
    grid = native_grid(mask.sample_rate)
    power = grid.stft(torch.from_numpy(np.asarray(x, np.float32))).abs().numpy() ** 2
    upper = (grid.bin_freqs() >= 8000)[:, None]
    return np.array([10 * np.log10(power[rasterise(Mask(mask.sample_rate, mask.num_samples, [r]), grid,
                                                   power.shape[1]) & upper].sum()) for r in mask.regions])


def within_reach(mask: Mask, n: int) -> np.ndarray:
    """Samples within one native window of a region: the only ones the band above may change."""
    reach = native_grid(mask.sample_rate).n_fft
    out = np.zeros(n, dtype=bool)
    for r in mask.regions:
        out[max(0, int(r.t0 * mask.sample_rate) - reach):int(r.t1 * mask.sample_rate) + reach] = True
    return out


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_band_above_8k_is_restored_and_nothing_outside_moves(model, rate, kind):
    clean = clean_at(rate)
    bad, mask = damaged(clean, rate, kind)
    out = model.restore(bad, mask, rate)
    model.full_band = False
    try:
        low_only = model.restore(bad, mask, rate)
    finally:
        model.full_band = True
    # The band above 8 kHz inside the regions comes back to the clean recording's level (within 6 dB on
    # average over the regions), from a burst far above it, a dropout or a hole far below it. One region
    # alone can miss by more where the network's own estimate of the band below misses (a fricative
    # inside a burst), since the band above follows it.
    clean_levels = upper_levels(clean, mask)
    level = np.mean(upper_levels(out, mask) - clean_levels)
    before = np.mean(upper_levels(low_only, mask) - clean_levels)
    assert abs(level) < 6, (level, before)
    assert abs(before) > 5, before  # the damage was there, and the 16 kHz path alone left it
    gap = gap_sample_mask(mask)
    if gap.any():  # every sample outside the gaps is the input's, bit for bit
        np.testing.assert_array_equal(out[~gap], bad[~gap].astype(np.float32))
    # Beyond one window of a region, the output is what restoring below 8 kHz alone gives (for a hole
    # above 8 kHz: the input itself).
    far = ~within_reach(mask, len(bad))
    np.testing.assert_array_equal(out[far], low_only[far])
    if kind == "above":
        np.testing.assert_array_equal(low_only, bad.astype(np.float32))


def test_only_the_marked_bins_above_the_split_change(model):
    rate = 48000
    clean = clean_at(rate)
    bad, mask = damaged(clean, rate, "straddle")
    grid = native_grid(rate)
    model.full_band = False
    low = model.restore(bad, mask, rate).astype(np.float64)
    model.full_band = True
    out = restore_upper_band(low.copy(), mask, grid)
    spec = lambda x: grid.stft(torch.from_numpy(x.astype(np.float32))).numpy()  # noqa: E731
    change = np.abs(spec(out) - spec(low)) ** 2
    marked = missing_bins(mask, grid) & (grid.bin_freqs() >= SPLIT_HZ)[:, None]
    # What leaks outside the marked bins is the STFT's own spread at their edges, far below the change.
    assert change[~marked].sum() < 1e-2 * change[marked].sum()
    below = grid.bin_freqs() < SPLIT_HZ - 500
    assert change[below].sum() < 1e-4 * change[marked].sum()


def test_a_16k_file_and_an_unmarked_upper_band_are_left_alone(model):
    clean = clean_at(44100)
    mask = Mask(44100, len(clean), [Region(1.0, 1.3, 1000.0, 4000.0)])
    assert np.array_equal(restore_upper_band(clean.copy(), mask, native_grid(44100)), clean)


def test_stretches_cover_every_frame_once_with_context():
    flags = np.zeros(1000, dtype=bool)
    flags[100:110] = flags[115:120] = flags[300:900] = True
    pieces = stretches(flags, context=10, longest=250)
    owns = [own for _, own, _ in pieces]
    assert owns == [(100, 120), (300, 550), (550, 800), (800, 900)]
    assert [(first, last) for first, _, last in pieces] == [(90, 130), (290, 560), (540, 810), (790, 910)]


def test_corrupt_places_holes_up_to_the_files_nyquist_or_max_freq(capsys, tmp_path):
    rate = 48000
    sf.write(tmp_path / "clean.wav", clean_at(rate), rate, subtype="PCM_24")
    rc, err = run(capsys, "corrupt", tmp_path / "clean.wav", "-o", tmp_path / "full.wav", "--kind", "holes")
    assert rc == 0, err
    mask = load_mask(tmp_path / "full.mask.json")
    assert (mask.sample_rate, mask.num_samples) == (rate, len(clean_at(rate)))
    assert max(r.f1 for r in mask.regions) > 20000 and min(r.f0 for r in mask.regions) < 4000
    # The marked bins above 8 kHz are emptied at the file's own rate.
    grid = native_grid(rate)
    spec = lambda p: grid.stft(torch.from_numpy(sf.read(p, dtype="float32")[0])).abs().numpy() ** 2  # noqa: E731
    upper = rasterise(mask, grid) & (grid.bin_freqs() > 8000)[:, None]
    assert spec(tmp_path / "full.wav")[upper].sum() < 0.05 * spec(tmp_path / "clean.wav")[upper].sum()
    rc, err = run(capsys, "corrupt", tmp_path / "clean.wav", "-o", tmp_path / "low.wav", "--kind", "holes",
                  "--max-freq", 12000)
    assert rc == 0, err
    assert max(r.f1 for r in load_mask(tmp_path / "low.mask.json").regions) <= 12000
    rc, err = run(capsys, "corrupt", tmp_path / "clean.wav", "-o", tmp_path / "bad.wav", "--kind", "holes",
                  "--max-freq", 30000)
    assert_one_error_line(rc, err, "--max-freq must lie between 1000 Hz")
    assert not (tmp_path / "bad.wav").exists()


def test_evaluate_and_plot_take_a_48k_file_with_its_own_mask(capsys, tmp_path, model):
    rate = 48000
    clean = clean_at(rate)
    bad, mask = damaged(clean, rate, "burst")
    sf.write(tmp_path / "clean.wav", clean, rate, subtype="PCM_24")
    sf.write(tmp_path / "bad.wav", bad, rate, subtype="PCM_24")
    save_mask(tmp_path / "bad.mask.json", mask)
    rc, err = run(capsys, "restore", tmp_path / "bad.wav", "-o", tmp_path / "fixed.wav")
    assert rc == 0, err
    rows = {}
    for name in ("bad", "fixed"):
        rc, err = run(capsys, "evaluate", "--reference", tmp_path / "clean.wav", "--estimate", tmp_path / f"{name}.wav",
                      "--mask", tmp_path / "bad.mask.json", "--json", tmp_path / f"{name}.json", "--jobs", 1,
                      "--metrics", "pesq,lsd_mask,lsd_full,lsd_above_8k,lsd_above_8k_mask,visqol_audio")
        assert rc == 0, err
        rows[name] = json.loads((tmp_path / f"{name}.json").read_text())["files"][0]
    for key in ("pesq", "lsd_mask", "lsd_full", "lsd_above_8k", "lsd_above_8k_mask", "visqol_audio"):
        assert rows["bad"][key] is not None and rows["fixed"][key] is not None, key
    # The burst's band above 8 kHz is gone: far closer to the clean band inside the mask, and over it all.
    assert rows["fixed"]["lsd_above_8k_mask"] < 0.5 * rows["bad"]["lsd_above_8k_mask"]
    assert rows["fixed"]["lsd_full"] < rows["bad"]["lsd_full"]
    assert rows["fixed"]["visqol_audio"] > rows["bad"]["visqol_audio"]
    rc, err = run(capsys, "plot", tmp_path / "clean.wav", tmp_path / "bad.wav", tmp_path / "fixed.wav",
                  "-o", tmp_path / "fig.png")
    assert rc == 0, err
    assert (tmp_path / "fig.png").stat().st_size > 20000
    # A 16 kHz file's evaluation has no full-band columns.
    sf.write(tmp_path / "c16.wav", resample(clean, rate, 16000), 16000)
    assert main(["evaluate", "--reference", str(tmp_path / "c16.wav"), "--estimate", str(tmp_path / "c16.wav"),
                 "--metrics", "lsd,lsd_full", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "LSD" in out and "LSD full" not in out
