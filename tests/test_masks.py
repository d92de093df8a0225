"""The mask contract: JSON round trip, validation, and rasterisation onto each grid the project uses,
checked against indices worked out by hand from the rule "frame centre in [t0, t1), bin in [f0, f1]"."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from speechinpaint.errors import SpeechInpaintError
from speechinpaint.masks import (
    MASK_FORMAT,
    Mask,
    Region,
    cells_to_regions,
    coverage,
    gap_sample_mask,
    load_mask,
    mask_path_for,
    rasterise,
    save_mask,
)
from speechinpaint.dsp.spectral import MODEL_GRID, SEED_GRID, StftGrid

EVAL_GRID = StftGrid(2048, 512)
ONE_SECOND = 16000


def example_mask() -> Mask:
    return Mask(16000, ONE_SECOND, [Region(0.10, 0.30, 1000.0, 2000.0), Region(0.5, 0.62, 0.0, 8000.0)])


def test_json_round_trip(tmp_path):
    mask = example_mask()
    path = tmp_path / "x.mask.json"
    save_mask(path, mask)
    data = json.loads(path.read_text())
    assert data["format"] == MASK_FORMAT
    assert data["regions"][0] == {"t0": 0.10, "t1": 0.30, "f0": 1000.0, "f1": 2000.0}
    assert load_mask(path) == mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mask.json"]  # atomic: no temp file left


def test_hand_written_mask_from_design_md(tmp_path):
    path = tmp_path / "hand.mask.json"
    path.write_text(
        '{"format": "speechinpaint.mask/1", "sample_rate": 16000, "num_samples": 96000,\n'
        ' "regions": [{"t0": 0.52, "t1": 0.74, "f0": 1250.0, "f1": 3900}]}'
    )
    assert load_mask(path) == Mask(16000, 96000, [Region(0.52, 0.74, 1250.0, 3900.0)])


def test_mask_path_for():
    assert mask_path_for("out/sub/a.wav").as_posix() == "out/sub/a.mask.json"


def mask_json(**changes) -> dict:
    data = {"format": MASK_FORMAT, "sample_rate": 16000, "num_samples": ONE_SECOND,
            "regions": [{"t0": 0.1, "t1": 0.3, "f0": 1000.0, "f1": 2000.0}]}
    region = changes.pop("region", {})
    data["regions"][0].update(region)
    data.update(changes)
    return data


INVALID = {
    "unknown format": (mask_json(format="speechinpaint.mask/9"), "not a speechinpaint.mask/1"),
    "t0 == t1": (mask_json(region={"t0": 0.3}), "t0 < t1"),
    "t0 > t1": (mask_json(region={"t0": 0.5}), "t0 < t1"),
    "f0 == f1": (mask_json(region={"f0": 2000.0}), "f0 < f1"),
    "f0 > f1": (mask_json(region={"f0": 3000.0}), "f0 < f1"),
    "after the end": (mask_json(region={"t1": 1.2}), "outside the signal"),
    "before the start": (mask_json(region={"t0": -0.1}), "outside the signal"),
    "above nyquist": (mask_json(region={"f1": 9000.0}), "outside 0 .. 8000 Hz"),
    "missing key": ({k: v for k, v in mask_json().items() if k != "num_samples"}, "has no 'num_samples' field"),
    "no regions": ({k: v for k, v in mask_json().items() if k != "regions"}, "has no 'regions' field"),
    "regions not a list": (mask_json(regions={"t0": 0.1}), "'regions' must be a list"),
    "misspelt channel": (mask_json(region={"chanel": 1}), "region 0 has the unknown key 'chanel'"),
    "unknown top-level key": (mask_json(sample_rte=16000), "the mask has the unknown key 'sample_rte'"),
    "region missing a bound": (mask_json(region={"f1": None}), "malformed"),
    "region not an object": (mask_json(regions=[[0.1, 0.3, 1000, 2000]]), "region 0 is not an object"),
    "bad number": (mask_json(region={"f0": "low"}), "malformed"),
    "non-finite": (mask_json(region={"t1": float("nan")}), "non-finite"),
    "zero length": (mask_json(num_samples=0), "must be positive"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_masks_are_refused(tmp_path, case):
    data, expected = INVALID[case]
    path = tmp_path / "bad.mask.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpeechInpaintError) as info:
        load_mask(path)
    assert expected in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_mask_files(tmp_path):
    with pytest.raises(SpeechInpaintError, match="no such mask file"):
        load_mask(tmp_path / "none.mask.json")
    (tmp_path / "junk.mask.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(SpeechInpaintError, match="not JSON"):
        load_mask(tmp_path / "junk.mask.json")


def test_a_mask_nested_too_deeply_or_not_a_file_is_one_line(tmp_path):
    """A 100000-deep JSON array was a RecursionError traceback; a folder or a FIFO said "no such file"."""
    deep = tmp_path / "deep.mask.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpeechInpaintError, match="nested too deeply"):
        load_mask(deep)
    fifo = tmp_path / "pipe.mask.json"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(SpeechInpaintError, match="not a mask file"):
            load_mask(path)


def test_save_refuses_an_invalid_mask(tmp_path):
    with pytest.raises(SpeechInpaintError):
        save_mask(tmp_path / "m.mask.json", Mask(16000, ONE_SECOND, [Region(0.5, 0.4, 0.0, 100.0)]))
    assert list(tmp_path.iterdir()) == []


def expected_cells(grid, frames, bins):
    out = np.zeros((grid.num_bins, grid.num_frames(ONE_SECOND)), dtype=bool)
    out[bins[0] : bins[1] + 1, frames[0] : frames[1] + 1] = True
    return out


# Region 0.10-0.30 s x 1000-2000 Hz, worked out by hand for each grid:
#   640/320:   frame centres k*20 ms -> k = 5..14;    bins 25 Hz apart   -> 40..80
#   512/128:   frame centres k*8 ms  -> k = 13..37;   bins 31.25 Hz apart -> 32..64
#   2048/512:  frame centres k*32 ms -> k = 4..9;     bins 7.8125 Hz apart -> 128..256
HAND = [
    (SEED_GRID, 51, 321, (5, 14), (40, 80)),
    (MODEL_GRID, 126, 257, (13, 37), (32, 64)),
    (EVAL_GRID, 32, 1025, (4, 9), (128, 256)),
]


@pytest.mark.parametrize("grid,frames,bins,hole_frames,hole_bins", HAND, ids=["seed", "model", "eval"])
def test_rasterise_matches_hand_computation(grid, frames, bins, hole_frames, hole_bins):
    mask = Mask(16000, ONE_SECOND, [Region(0.10, 0.30, 1000.0, 2000.0)])
    raster = rasterise(mask, grid)
    assert raster.shape == (bins, frames) and raster.dtype == bool
    np.testing.assert_array_equal(raster, expected_cells(grid, hole_frames, hole_bins))
    n_cells = (hole_frames[1] - hole_frames[0] + 1) * (hole_bins[1] - hole_bins[0] + 1)
    assert coverage(mask, grid) == pytest.approx(n_cells / (bins * frames))


def test_rasterise_full_band_gap_on_seed_grid():
    # 0.50-0.62 s: frames centred at 500..600 ms -> k = 25..30, every bin.
    raster = rasterise(Mask(16000, ONE_SECOND, [Region(0.5, 0.62, 0.0, 8000.0)]), SEED_GRID)
    np.testing.assert_array_equal(raster, expected_cells(SEED_GRID, (25, 30), (0, 320)))


def test_rasterise_union_and_frame_count():
    mask = example_mask()
    raster = rasterise(mask, SEED_GRID, num_frames=60)
    assert raster.shape == (321, 60)
    assert raster[:, :51].sum() == 10 * 41 + 6 * 321  # the two regions do not overlap in time
    assert not raster[:, 51:].any()


@pytest.mark.parametrize("grid", [SEED_GRID, MODEL_GRID])
def test_cells_to_regions_is_the_inverse_of_rasterise(grid):
    num_samples = 16000 * 2
    rng = np.random.default_rng(4)
    cells = np.zeros((grid.num_bins, grid.num_frames(num_samples)), dtype=bool)
    for _ in range(6):  # overlapping blocks, touching the first frame and Nyquist too
        f, t = rng.integers(0, grid.num_bins - 10), rng.integers(0, cells.shape[1] - 5)
        cells[f:f + rng.integers(1, 60), t:t + rng.integers(1, 20)] = True
    cells[-3:, :4] = True
    mask = Mask(16000, num_samples, cells_to_regions(cells, grid, num_samples)).validate()
    assert np.array_equal(rasterise(mask, grid), cells)


def test_rasterise_refuses_another_sample_rate():
    with pytest.raises(SpeechInpaintError, match="Hz"):
        rasterise(Mask(8000, 8000, [Region(0.1, 0.2, 0.0, 100.0)]), SEED_GRID)


def test_gap_sample_mask_marks_only_full_band_regions():
    gaps = gap_sample_mask(example_mask())
    expected = np.zeros(ONE_SECOND, dtype=bool)
    expected[8000:9920] = True  # 0.50-0.62 s; the 1-2 kHz hole leaves every sample in place
    np.testing.assert_array_equal(gaps, expected)


def test_gap_sample_mask_to_the_end():
    mask = Mask(16000, 16100, [Region(0.9, 16100 / 16000, 0.0, 8000.0)])
    gaps = gap_sample_mask(mask)
    assert gaps[14400:].all() and not gaps[:14400].any()


def test_check_matches_refuses_another_signal():
    mask = example_mask()
    mask.check_matches(ONE_SECOND, 16000)
    with pytest.raises(SpeechInpaintError, match="made for 16000 samples"):
        mask.check_matches(ONE_SECOND + 1, 16000)


def test_rectangles_keep_their_iou_across_windows():
    """A long map is written window by window; ragged patches, some across a window's edge, keep the
    IoU, and every cell is covered."""
    from speechinpaint.masks import RECTANGLE_WINDOW_FRAMES, cells_to_rectangles

    rng = np.random.default_rng(0)
    frames = 3 * RECTANGLE_WINDOW_FRAMES + 100
    flags = np.zeros((MODEL_GRID.num_bins, frames), dtype=bool)
    for start in list(range(40, frames - 60, 90)) + [RECTANGLE_WINDOW_FRAMES - 20, 2 * RECTANGLE_WINDOW_FRAMES - 5]:
        k0 = int(rng.integers(10, 150))
        for t in range(start, start + 50):  # a rectangle whose edges jitter by a bin from frame to frame
            flags[k0 + rng.integers(0, 2):k0 + 60 + rng.integers(0, 2), t] = True
    num_samples = (frames - 1) * MODEL_GRID.hop
    covered = rasterise(Mask(16000, num_samples, cells_to_rectangles(flags, MODEL_GRID, num_samples, 0.99)), MODEL_GRID)
    assert (covered & flags).sum() / (covered | flags).sum() >= 0.99
    assert covered[flags].all()
