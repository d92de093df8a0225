"""End to end: the editor's page in headless Chromium against the real server (`speechinpaint edit`).

Upload a damaged clip, detect, draw a rectangle, restore with interp, download the audio and the mask,
and check both; the page must raise no error and log no console error on the way. With
SPEECHINPAINT_SCREENSHOT=docs/editor.png set, a screenshot of the page after the restore is written
there (the README's); otherwise into the test's temporary folder, so a test run leaves the tree as it was.

Needs Chromium (/usr/bin/chromium, or the path in SPEECHINPAINT_CHROMIUM) and the playwright package;
the module is skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = os.environ.get("SPEECHINPAINT_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (install chromium or set SPEECHINPAINT_CHROMIUM) for the editor's "
                "browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package runs the editor's browser tests")
uvicorn = pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "da_7spoke.wav"
SCREENSHOT = os.environ.get("SPEECHINPAINT_SCREENSHOT")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    from speechinpaint.editor.server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the editor's server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1500, "height": 820}, accept_downloads=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def on_console(msg):
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        problems.append(f"console error: {msg.text} ({url})")

    pg.on("console", on_console)
    pg.problems = problems
    pg.goto(server_url + "/")
    yield pg
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    from speechinpaint.audio import load_audio
    from speechinpaint.corruptions import corrupt

    audio, _ = corrupt(load_audio(CLIP), "holes", seed=1)
    path = tmp_path_factory.mktemp("editor") / "damaged.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


def wait_ready(page, timeout: float = 60_000) -> str:
    status = page.get_by_test_id("status")
    sync_api.expect(status).to_have_text(re.compile(r"ready$"), timeout=timeout)
    return status.inner_text()


def editor_state(page) -> dict:
    return page.evaluate("() => ({mask: window.speechinpaintEditor.maskJson(), view: window.speechinpaintEditor.view(),"
                         " plot: window.speechinpaintEditor.plotRect()})")


def test_upload_detect_draw_restore_download(page, damaged, tmp_path):
    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(damaged))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("damaged.wav")
    wait_ready(page)

    # Detect: the holes come back as regions, listed one per row.
    page.get_by_test_id("detect-button").click()
    status = wait_ready(page)
    assert "detection failed" not in status, status
    rows = page.get_by_test_id("region-list").locator(":scope > *")
    assert rows.count() > 0, f"detection listed no region ({status})"
    sync_api.expect(page.get_by_test_id("show-probability")).to_be_checked()

    # The threshold slider re-detects; each row accepts, rejects or jumps to its region.
    with page.expect_request(lambda r: r.url.endswith("/detect") and r.post_data_json["threshold"] == 0.8):
        page.get_by_test_id("threshold").fill("0.8")
    wait_ready(page)
    detected = rows.count()
    assert detected > 1
    rows.nth(0).get_by_test_id("region-reject").click()
    sync_api.expect(rows).to_have_count(detected - 1)
    page.keyboard.press("Control+z")  # rejected by mistake: undo brings it back
    sync_api.expect(rows).to_have_count(detected)
    rows.nth(0).get_by_test_id("region-accept").click()
    sync_api.expect(rows.nth(0)).to_have_class(re.compile("accepted"))
    rows.nth(0).get_by_test_id("region-jump").click()
    first = editor_state(page)["mask"]["regions"][0]
    v = editor_state(page)["view"]
    assert v["t0"] <= first["t0"] < first["t1"] <= v["t1"] and v["t1"] - v["t0"] < 2.5
    page.get_by_test_id("zoom-fit").click()
    wait_ready(page)

    # A rectangle drawn with the rectangle tool (Shift: a new region even over a detected one).
    page.get_by_test_id("tool-rect").click()
    state = editor_state(page)
    view, plot = state["view"], state["plot"]
    box = page.get_by_test_id("spectrogram").bounding_box()

    def at(t: float, f: float) -> tuple[float, float]:
        x = plot["x"] + (t - view["t0"]) / (view["t1"] - view["t0"]) * plot["w"]
        y = plot["y"] + plot["h"] - (f - view["f0"]) / (view["f1"] - view["f0"]) * plot["h"]
        return box["x"] + x, box["y"] + y

    t_a, t_b, f_a, f_b = 1.20, 1.70, 1000.0, 3000.0
    page.keyboard.down("Shift")
    page.mouse.move(*at(t_a, f_b))
    page.mouse.down()
    page.mouse.move(*at(t_b, f_a), steps=10)
    page.mouse.up()
    page.keyboard.up("Shift")
    sync_api.expect(rows).to_have_count(detected + 1)
    mask = editor_state(page)["mask"]
    drawn = [r for r in mask["regions"] if abs(r["t0"] - t_a) < 0.02 and abs(r["t1"] - t_b) < 0.02
             and abs(r["f0"] - f_a) < 30 and abs(r["f1"] - f_b) < 30]
    assert drawn, f"no region near {t_a}..{t_b} s, {f_a}..{f_b} Hz in {mask['regions'][-3:]}"

    # interp for every region (fast), then restore and wait.
    page.get_by_test_id("method-all").select_option("interp")
    methods = page.get_by_test_id("region-method")
    assert methods.count() == detected + 1
    assert all(v == "interp" for v in methods.evaluate_all("els => els.map(e => e.value)"))
    page.get_by_test_id("restore-button").click()
    status = wait_ready(page, timeout=120_000)
    assert "restored" in status, status
    sync_api.expect(page.get_by_test_id("download-audio")).not_to_have_attribute("aria-disabled", "true")

    page.screenshot(path=SCREENSHOT or str(tmp_path / "editor.png"))

    with page.expect_download() as info:
        page.get_by_test_id("download-audio").click()
    audio_path = tmp_path / info.value.suggested_filename
    info.value.save_as(audio_path)
    with page.expect_download() as info:
        page.get_by_test_id("download-mask").click()
    mask_path = tmp_path / info.value.suggested_filename
    info.value.save_as(mask_path)

    before, rate = sf.read(damaged, dtype="float64", always_2d=True)
    after, rate_after = sf.read(audio_path, dtype="float64", always_2d=True)
    assert (rate_after, after.shape) == (rate, before.shape)
    a, b = int(t_a * rate), int(t_b * rate)
    assert np.abs(after[a:b] - before[a:b]).max() > 1e-4, "the restored audio equals the upload inside the rectangle"

    saved = json.loads(mask_path.read_text())
    assert saved["format"] == "speechinpaint.mask/1"
    assert (saved["sample_rate"], saved["num_samples"]) == (rate, len(before))
    assert len(saved["regions"]) == detected + 1
    assert any(abs(r["t0"] - t_a) < 0.02 and abs(r["t1"] - t_b) < 0.02 for r in saved["regions"])


def regions_of(page) -> list[dict]:
    return editor_state(page)["mask"]["regions"]


def test_tools_history_view_playback_and_report(page, damaged, tmp_path):
    """Brush, eraser, Alt subtract, time and band tools, move and resize by handles, undo/redo (keys),
    zoom and pan (wheel, hand, buttons), playback with A/B and delta, the report, and a saved mask that
    loads back."""
    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(damaged))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("damaged.wav")
    wait_ready(page)
    canvas = page.get_by_test_id("spectrogram")
    box = canvas.bounding_box()
    state = editor_state(page)
    view, plot = state["view"], state["plot"]

    def at(t: float, f: float) -> tuple[float, float]:
        v = editor_state(page)["view"]
        x = plot["x"] + (t - v["t0"]) / (v["t1"] - v["t0"]) * plot["w"]
        y = plot["y"] + plot["h"] - (f - v["f0"]) / (v["f1"] - v["f0"]) * plot["h"]
        return box["x"] + x, box["y"] + y

    def drag(a, b, steps=10, button="left"):
        page.mouse.move(*a)
        page.mouse.down(button=button)
        page.mouse.move(*b, steps=steps)
        page.mouse.up(button=button)

    # Brush (B): a stroke becomes rectangles on the server's grid (8 ms frames, 31.25 Hz bins at 16 kHz).
    canvas.focus()
    page.keyboard.press("b")
    drag(at(0.5, 2000), at(0.9, 2000))
    brushed = regions_of(page)
    assert brushed, "the brush stroke made no region"
    assert min(r["t0"] for r in brushed) < 0.52 and max(r["t1"] for r in brushed) > 0.88
    assert all(r["f0"] > 1500 and r["f1"] < 2500 for r in brushed)
    for r in brushed:  # on the grid: frame edges at (k - 1/2) * 8 ms
        assert abs((r["t0"] / 0.008 + 0.5) - round(r["t0"] / 0.008 + 0.5)) < 1e-3

    # Eraser (E) through the middle of the stroke splits it.
    page.keyboard.press("e")
    drag(at(0.7, 2600), at(0.7, 1400))
    erased = regions_of(page)
    assert erased != brushed
    assert not any(r["t0"] < 0.695 < r["t1"] and r["f0"] < 2000 < r["f1"] for r in erased)

    # Undo / redo with the keys.
    page.keyboard.press("Control+z")
    assert regions_of(page) == brushed
    page.keyboard.press("Control+Shift+z")
    assert regions_of(page) == erased
    page.get_by_test_id("clear-regions").click()
    assert regions_of(page) == []

    # Rectangle (R), then Alt-drag subtracts a piece of it.
    page.keyboard.press("r")
    drag(at(1.0, 4000), at(2.0, 1000))
    (rect,) = regions_of(page)
    page.keyboard.down("Alt")
    drag(at(1.4, 5000), at(1.6, 500))
    page.keyboard.up("Alt")
    pieces = regions_of(page)
    assert len(pieces) == 2 and {round(r["t1"], 2) for r in pieces} == {1.4, 2.0}
    page.keyboard.press("Control+z")
    assert regions_of(page) == [rect]

    # Move it by dragging its inside, resize it by its right handle.
    page.mouse.click(*at(1.2, 2500))
    drag(at(1.2, 2500), at(1.5, 2500))
    (moved,) = regions_of(page)
    assert abs(moved["t0"] - (rect["t0"] + 0.3)) < 0.02 and abs(moved["f0"] - rect["f0"]) < 30
    drag(at(moved["t1"], (moved["f0"] + moved["f1"]) / 2), at(2.6, (moved["f0"] + moved["f1"]) / 2))
    (resized,) = regions_of(page)
    assert abs(resized["t1"] - 2.6) < 0.02 and abs(resized["t0"] - moved["t0"]) < 1e-6

    # Time (T): a gap over the whole band; band (F): a band over the whole file; each offers its peers.
    page.keyboard.press("t")
    drag(at(0.2, 3000), at(0.3, 3000))
    page.keyboard.press("f")
    drag(at(1.0, 6000), at(1.0, 8300))  # past the top: up to Nyquist, a missing upper band
    gap, band = regions_of(page)[-2:]
    assert abs(band["f0"] - 6000) < 30 and band["f1"] == 8000
    assert (gap["f0"], gap["f1"]) == (0, 8000) and abs(gap["t0"] - 0.2) < 0.02
    assert (band["t0"], band["t1"]) == (0, round(editor_state(page)["mask"]["num_samples"] / 16000, 6))
    options = page.get_by_test_id("region-method").evaluate_all("els => els.map(e => [...e.options].map(o => o.value))")
    assert "opus-deep-plc" in options[-2] and "ar" in options[-2] and "sbr" in options[-1]

    # Zoom: wheel on the canvas (time), buttons (frequency), fit; pan with the hand tool and the middle button.
    page.mouse.move(*at(1.5, 4000))
    page.mouse.wheel(0, -300)
    v = editor_state(page)["view"]
    assert v["t1"] - v["t0"] < view["t1"] - view["t0"] - 0.5
    page.get_by_test_id("zoom-in-freq").click()
    v2 = editor_state(page)["view"]
    assert v2["f1"] - v2["f0"] < 4100
    page.keyboard.press("h")
    drag((box["x"] + plot["x"] + plot["w"] / 2, box["y"] + 300), (box["x"] + plot["x"] + plot["w"] / 4, box["y"] + 300))
    v3 = editor_state(page)["view"]
    assert v3["t0"] > v2["t0"]
    page.keyboard.press("r")
    drag((box["x"] + plot["x"] + plot["w"] / 4, box["y"] + 300), (box["x"] + plot["x"] + plot["w"] / 2, box["y"] + 300),
         button="middle")
    assert abs(editor_state(page)["view"]["t0"] - v2["t0"]) < 0.02
    page.get_by_test_id("db-min").fill("-80")
    page.get_by_test_id("db-min").dispatch_event("change")
    wait_ready(page)
    page.get_by_test_id("zoom-fit").click()
    wait_ready(page)

    # Play the selection (pre- and post-roll) and stop; restore (interp), then A/B and delta.
    page.get_by_test_id("region-list").locator(":scope > *").first.click()
    page.get_by_test_id("play-original").click()
    status = wait_ready(page)
    assert "playing original" in status, status
    page.keyboard.press("Escape")
    page.get_by_test_id("method-all").select_option("interp")
    page.get_by_test_id("restore-button").click()
    status = wait_ready(page, timeout=120_000)
    assert "restored" in status, status
    page.get_by_test_id("play-restored").click()
    assert "playing restored" in wait_ready(page)
    page.keyboard.press("a")
    assert "playing original" in wait_ready(page)
    page.get_by_test_id("play-delta").click()
    assert "playing delta" in wait_ready(page)
    page.get_by_test_id("stop-button").click()

    # The report: a row per region with levels before and after.
    page.get_by_test_id("report-button").click()
    wait_ready(page, timeout=60_000)
    table = page.get_by_test_id("report-table")
    sync_api.expect(table.locator("tr")).to_have_count(1 + len(regions_of(page)))

    # Undo the restore: the download goes away; redo brings it back.
    page.keyboard.press("Control+z")
    wait_ready(page)
    sync_api.expect(page.get_by_test_id("download-audio")).to_have_attribute("aria-disabled", "true")
    page.keyboard.press("Control+Shift+z")
    wait_ready(page)
    sync_api.expect(page.get_by_test_id("download-audio")).not_to_have_attribute("aria-disabled", "true")

    # The saved mask loads back.
    saved_regions = regions_of(page)
    with page.expect_download() as info:
        page.get_by_test_id("download-mask").click()
    mask_path = tmp_path / info.value.suggested_filename
    info.value.save_as(mask_path)
    page.get_by_test_id("clear-regions").click()
    page.get_by_test_id("mask-input").set_input_files(str(mask_path))
    sync_api.expect(page.get_by_test_id("region-list").locator(":scope > *")).to_have_count(len(saved_regions))
    assert regions_of(page) == saved_regions

    # The help box lists the shortcuts.
    page.keyboard.press("?")
    sync_api.expect(page.get_by_test_id("help")).to_be_visible()
    sync_api.expect(page.get_by_test_id("help")).to_contain_text("Ctrl")
    page.keyboard.press("Escape")


def test_a_long_detection_shows_progress_and_can_be_cancelled(page, tmp_path):
    """A stereo minute: the detection runs as a job in four chunks of the holes detector, the status counts
    its progress and Cancel stops it; nothing is added and the page ends ready."""
    from speechinpaint.audio import load_audio

    x = np.tile(load_audio(CLIP), 21)[:60 * 16000]
    path = tmp_path / "minute.wav"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 16000, subtype="PCM_16")
    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(path))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("minute.wav")
    wait_ready(page)
    status = page.get_by_test_id("status")
    page.get_by_test_id("detect-button").click()
    sync_api.expect(status).to_have_text(re.compile(r"detecting [1-9]\d? %"), timeout=60_000)
    sync_api.expect(page.get_by_test_id("cancel-button")).to_be_enabled()
    page.get_by_test_id("cancel-button").click()
    assert "detection cancelled" in wait_ready(page)
    sync_api.expect(page.get_by_test_id("cancel-button")).to_be_disabled()
    sync_api.expect(page.get_by_test_id("detect-button")).to_be_enabled()
    assert regions_of(page) == []


def test_a_region_drawn_on_one_channel_restores_only_that_channel(page, damaged, tmp_path):
    """Stereo: a rectangle drawn while viewing channel 1 carries "channel": 1 (listed as ch 1, saved, and
    re-opened so), and the restore leaves channel 0's samples as they were; with "mark all channels"
    ticked a rectangle applies to both."""
    x, rate = sf.read(damaged, dtype="int16")
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([x, (x * 0.7).astype(np.int16)], axis=1), rate, subtype="PCM_16")
    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(path))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("stereo.wav")
    wait_ready(page)
    sync_api.expect(page.get_by_test_id("all-channels")).to_be_visible()
    sync_api.expect(page.get_by_test_id("all-channels")).not_to_be_checked()
    page.get_by_test_id("channel").select_option("1")
    wait_ready(page)
    canvas = page.get_by_test_id("spectrogram")
    box = canvas.bounding_box()

    def at(t: float, f: float) -> tuple[float, float]:
        state = editor_state(page)
        v, p = state["view"], state["plot"]
        return (box["x"] + p["x"] + (t - v["t0"]) / (v["t1"] - v["t0"]) * p["w"],
                box["y"] + p["y"] + p["h"] - (f - v["f0"]) / (v["f1"] - v["f0"]) * p["h"])

    def drag(a, b):
        page.mouse.move(*a)
        page.mouse.down()
        page.mouse.move(*b, steps=8)
        page.mouse.up()

    canvas.focus()
    page.keyboard.press("r")
    drag(at(1.2, 3000), at(1.7, 1000))
    (drawn,) = regions_of(page)
    assert drawn["channel"] == 1, drawn
    rows = page.get_by_test_id("region-list").locator(":scope > *")
    sync_api.expect(rows.nth(0)).to_contain_text("ch 1")

    page.get_by_test_id("method-all").select_option("interp")
    page.get_by_test_id("restore-button").click()
    assert "restored" in wait_ready(page, timeout=120_000)
    with page.expect_download() as info:
        page.get_by_test_id("download-audio").click()
    audio_path = tmp_path / "restored.wav"
    info.value.save_as(audio_path)
    with page.expect_download() as info:
        page.get_by_test_id("download-mask").click()
    mask_path = tmp_path / "stereo.mask.json"
    info.value.save_as(mask_path)

    before, _ = sf.read(path, dtype="int16", always_2d=True)
    after, _ = sf.read(audio_path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(after[:, 0], before[:, 0])  # channel 0: every sample as it was
    a, b = int(1.2 * rate), int(1.7 * rate)
    assert np.abs(after[a:b, 1].astype(int) - before[a:b, 1]).max() > 3, "channel 1 was not restored"
    saved = json.loads(mask_path.read_text())
    assert [r.get("channel") for r in saved["regions"]] == [1]

    # The saved mask re-opens with its channel; "mark all channels" draws a region without one.
    page.get_by_test_id("clear-regions").click()
    page.get_by_test_id("mask-input").set_input_files(str(mask_path))
    sync_api.expect(rows).to_have_count(1)
    assert regions_of(page)[0]["channel"] == 1
    page.get_by_test_id("all-channels").check()
    drag(at(0.3, 3000), at(0.6, 1000))
    assert "channel" not in regions_of(page)[-1]
    sync_api.expect(rows.nth(1)).to_contain_text("all ch")


def test_a_rectangle_reaches_the_bottom_edge_and_a_long_report_is_whole(page, damaged, tmp_path):
    """A rectangle drawn to the plot's bottom row started at 29 Hz, not 0; the report of many regions was
    cut off under the region list (its box shrank to nothing in the side panel's column)."""
    from speechinpaint.masks import Mask, Region, save_mask

    info = sf.info(str(damaged))
    regions = [Region(0.05 + 0.045 * i, 0.08 + 0.045 * i, 1000.0, 2000.0) for i in range(60)]
    save_mask(tmp_path / "many.mask.json", Mask(info.samplerate, info.frames, regions))
    wait_ready(page)
    page.get_by_test_id("file-input").set_input_files(str(damaged))
    sync_api.expect(page.get_by_test_id("doc-name")).to_contain_text("damaged.wav")
    wait_ready(page)
    page.get_by_test_id("mask-input").set_input_files(str(tmp_path / "many.mask.json"))
    sync_api.expect(page.get_by_test_id("region-list").locator(":scope > *")).to_have_count(60)
    page.get_by_test_id("method-all").select_option("interp")
    page.get_by_test_id("restore-button").click()
    assert "restored" in wait_ready(page, timeout=120_000)
    page.get_by_test_id("report-button").click()
    wait_ready(page, timeout=60_000)
    sync_api.expect(page.get_by_test_id("report-table").locator("tr")).to_have_count(61)
    clipped = page.evaluate("() => { const r = document.getElementById('report'); "
                            "return [r.clientHeight, r.scrollHeight]; }")
    assert clipped[0] >= clipped[1] - 1 and clipped[0] > 61 * 10, clipped

    state = editor_state(page)
    view, plot = state["view"], state["plot"]
    box = page.get_by_test_id("spectrogram").bounding_box()
    x = lambda t: box["x"] + plot["x"] + (t - view["t0"]) / (view["t1"] - view["t0"]) * plot["w"]  # noqa: E731
    page.get_by_test_id("spectrogram").focus()
    page.keyboard.press("r")
    page.keyboard.down("Shift")
    page.mouse.move(x(2.4), box["y"] + plot["y"] + plot["h"] / 2)
    page.mouse.down()
    page.mouse.move(x(2.7), box["y"] + plot["y"] + plot["h"] - 1, steps=6)  # the plot's last pixel row
    page.mouse.up()
    page.keyboard.up("Shift")
    drawn = regions_of(page)[-1]
    assert abs(drawn["t0"] - 2.4) < 0.02 and drawn["f0"] == 0, drawn
