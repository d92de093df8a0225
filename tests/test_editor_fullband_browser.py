"""The editor on a 48 kHz recording, in headless Chromium against the real server: a log frequency axis, regions
drawn as outlines, and a full-band burst marked with the time tool restored over the whole band, up to
24 kHz, by the same restore path as the CLI (the band above 8 kHz changes and comes back near the clean
level). Skipped as test_editor_browser.py is, without Chromium or playwright."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from speechinpaint.audio import resample
from speechinpaint.recording import native_grid

from test_editor_browser import browser, editor_state, page, server_url, sync_api, wait_ready  # noqa: F401

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
RATE = 48000
BURST = (1.00, 1.25)  # seconds


def upper_db(x: np.ndarray, t0: float, t1: float) -> float:
    """dB power above 8 kHz in frames centred in [t0, t1)."""
    grid = native_grid(RATE)
    power = grid.stft(torch.from_numpy(x.astype(np.float32))).abs().numpy() ** 2
    times = grid.frame_times(power.shape[1])
    return float(10 * np.log10(power[grid.bin_freqs() >= 8000][:, (times >= t0) & (times < t1)].mean()))


def test_a_full_band_burst_at_48k_is_restored_above_8k(page, tmp_path):  # noqa: F811
    audio, rate = sf.read(ROOT / "tests" / "data" / "da_7spoke_44k.flac", dtype="float64")
    clean = resample(audio, rate, RATE).astype(np.float64)
    bad = clean.copy()
    a, b = int(BURST[0] * RATE), int(BURST[1] * RATE)
    bad[a:b] += 0.05 * np.random.default_rng(0).standard_normal(b - a)
    path = tmp_path / "burst48.wav"
    sf.write(path, bad, RATE, subtype="PCM_24")

    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(path))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("burst48.wav")
    wait_ready(page)
    assert editor_state(page)["view"]["f1"] == RATE / 2  # the axis reaches the file's Nyquist frequency

    # The log axis: the spectrogram is asked for on it, and half the plot's height lies below about 1.1 kHz
    # (geometric between 50 Hz and 24 kHz), not 12 kHz.
    with page.expect_request(lambda r: "spectrogram.png" in r.url and "scale=log" in r.url):
        page.get_by_test_id("log-freq").check()
    wait_ready(page)
    middle = page.evaluate("() => { const p = window.speechinpaintEditor.plotRect(); "
                           "return window.speechinpaintEditor.yToF(p.y + p.h / 2); }")
    assert abs(middle - np.sqrt(50 * RATE / 2)) < 5, middle
    page.get_by_test_id("outline-regions").check()
    assert page.evaluate("() => window.speechinpaintEditor.state.outline")

    # The burst marked with the time tool: a region over the whole band.
    page.get_by_test_id("tool-time").click()
    state = editor_state(page)
    view, plot = state["view"], state["plot"]
    box = page.get_by_test_id("spectrogram").bounding_box()

    def x_at(t: float) -> float:
        return box["x"] + plot["x"] + (t - view["t0"]) / (view["t1"] - view["t0"]) * plot["w"]

    y = box["y"] + plot["y"] + plot["h"] / 2
    page.mouse.move(x_at(BURST[0]), y)
    page.mouse.down()
    page.mouse.move(x_at(BURST[1]), y, steps=8)
    page.mouse.up()
    regions = editor_state(page)["mask"]["regions"]
    assert len(regions) == 1 and regions[0]["f0"] == 0 and regions[0]["f1"] == RATE / 2, regions

    page.get_by_test_id("restore-button").click()
    status = wait_ready(page, timeout=120_000)
    assert "restored" in status, status
    with page.expect_download() as info:
        page.get_by_test_id("download-audio").click()
    out_path = tmp_path / info.value.suggested_filename
    info.value.save_as(out_path)
    fixed, rate_out = sf.read(out_path, dtype="float64")
    assert rate_out == RATE and len(fixed) == len(bad)
    r = regions[0]
    inner = (r["t0"] + 0.02, r["t1"] - 0.02)
    before, after, target = (upper_db(x, *inner) for x in (bad, fixed, clean))
    # The burst above 8 kHz is gone: from far above the clean level to near it.
    assert before - target > 20, (before, after, target)
    assert abs(after - target) < 8, (before, after, target)
    # Outside the marked time range every sample is the upload's (24-bit, bit for bit).
    keep = np.ones(len(bad), dtype=bool)
    keep[int(round(r["t0"] * RATE)):int(round(r["t1"] * RATE))] = False
    np.testing.assert_array_equal(sf.read(out_path, dtype="int32")[0][keep], sf.read(path, dtype="int32")[0][keep])
