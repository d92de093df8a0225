"""Blind detection on real speech: each detector finds its damage, clean speech and natural pauses stay
unmarked, bad input fails with one clear line, and detect -> restore works through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechinpaint.audio import as_pcm16, load_audio, save_audio
from speechinpaint.cli import main
from speechinpaint.corruptions import corrupt
from speechinpaint.detection import detect_mask
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.masks import Mask, load_mask, rasterise
from speechinpaint.metrics import lsd
from speechinpaint.dsp.spectral import MODEL_GRID, SEED_GRID

DATA = Path(__file__).parent / "data"
CLIPS = sorted(DATA.glob("*.wav"))


def iou(truth, found, grid=MODEL_GRID) -> float:
    a, b = rasterise(truth, grid), rasterise(found, grid)
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


@pytest.fixture(scope="module")
def clips():
    if not CLIPS:
        pytest.fail("tests/data/*.wav (real speech clips) are missing")
    return {p.stem: load_audio(p) for p in CLIPS}


def findable(truth: Mask, clean: np.ndarray) -> Mask:
    """The true mask less the packets lost where the clip was already digital silence (the joins of the
    lt clip): zeros lost among zeros leave no trace, and restoring them changes nothing."""
    keep = [r for r in truth.regions if np.any(clean[round(r.t0 * 16000):round(r.t1 * 16000)])]
    return Mask(truth.sample_rate, truth.num_samples, keep)


@pytest.mark.parametrize("kind", ["gaps", "band"])
def test_gaps_and_band_found_on_real_speech(clips, kind):
    for i, (name, clean) in enumerate(clips.items()):
        bad, truth = corrupt(clean, kind, seed=11 + i)
        truth = findable(truth, clean)
        found = detect_mask(as_pcm16(bad))
        assert iou(truth, found) >= 0.8, (name, kind)
        assert iou(truth, found, SEED_GRID) >= 0.8, (name, kind)


def test_holes_found_on_real_speech(clips):
    """The mean IoU over the clips reaches the bar, as 16-bit files and as float audio alike: the
    detector rounds what it is given to 16-bit samples, so a float file's holes hold the same rounding
    noise as a 16-bit file's."""
    pcm_scores, float_scores = [], []
    for i, (name, clean) in enumerate(clips.items()):
        bad, truth = corrupt(clean, "holes", seed=11 + i)
        pcm_scores.append(iou(truth, detect_mask(as_pcm16(bad))))
        float_scores.append(iou(truth, detect_mask(bad.astype(np.float32))))
    assert np.mean(pcm_scores) >= 0.8, pcm_scores
    assert np.mean(float_scores) >= 0.8, float_scores


def test_a_hole_in_loud_speech_is_found_with_its_edges(clips):
    """Seed 11 punches a 0.1-3.5 kHz hole 220 ms long into the loudest vowels of da_7spoke: the speech
    around it leaks into the hole's edge cells, and the hole is still found whole."""
    clean = clips["da_7spoke"]
    bad, truth = corrupt(clean, "holes", seed=11)
    (hole,) = [r for r in truth.regions if 1.9 < r.t0 < 2.1 and r.f1 - r.f0 > 3000]
    found = rasterise(detect_mask(as_pcm16(bad)), MODEL_GRID)
    inside = rasterise(Mask(truth.sample_rate, truth.num_samples, [hole]), MODEL_GRID)
    assert np.count_nonzero(found & inside) / np.count_nonzero(inside) >= 0.85


def test_a_quiet_noise_floor_is_not_a_hole_but_holes_punched_into_it_are(clips):
    """A recording with its own faint background noise (10 dB above 16-bit rounding noise) marks
    nothing; holes punched into that recording hold only rounding noise and are found."""
    clean = clips["da_mercury"]
    noise = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32) * 10 ** (10 / 20) / 32767 / np.sqrt(12)
    noisy = clean + noise
    assert rasterise(detect_mask(as_pcm16(noisy)), MODEL_GRID).mean() <= 0.02
    bad, truth = corrupt(noisy, "holes", seed=3)
    assert iou(truth, detect_mask(as_pcm16(bad))) >= 0.7


def test_band_region_is_one_full_duration_region(clips):
    clean = clips["da_mars"]
    bad, truth = corrupt(clean, "band", seed=0)
    found = detect_mask(as_pcm16(bad))
    band = [r for r in found.regions if r.t0 == 0.0 and r.t1 == pytest.approx(found.duration) and r.f1 == 8000.0]
    assert len(band) == 1
    assert band[0].f0 == pytest.approx(truth.regions[0].f0, abs=150)


def test_band_of_a_loud_clip_clipped_on_writing_is_found(clips):
    """Band-limiting a clip that peaks at full scale pushes its peaks past it; written to 16 bits they
    clip, and the clipped frames spread distortion over the stop band. The band is still found."""
    clean = clips["lt_letters_d_a_b"] / np.max(np.abs(clips["lt_letters_d_a_b"]))
    bad, truth = corrupt(clean, "band", seed=0)
    assert np.max(np.abs(bad)) > 1.0
    band = [r for r in detect_mask(as_pcm16(bad)).regions if r.f1 == 8000.0 and r.t0 == 0.0]
    assert len(band) == 1 and band[0].f0 == pytest.approx(truth.regions[0].f0, abs=200)


def test_clean_clips_almost_unmarked(clips):
    for name, clean in clips.items():
        assert rasterise(detect_mask(clean), MODEL_GRID).mean() <= 0.02, name


def _with_pause(clean: np.ndarray, filler: np.ndarray) -> np.ndarray:
    """Insert a pause at the quietest 100 ms between the clip's words (away from its ends)."""
    frame = 1600
    n = len(clean) // frame
    energy = [np.sum(clean[k * frame:(k + 1) * frame] ** 2) for k in range(n)]
    k = 3 + int(np.argmin(energy[3:n - 3]))
    cut = k * frame + frame // 2
    return np.concatenate([clean[:cut], filler, clean[cut:]]).astype(np.float32)


def test_long_natural_pauses_not_marked(clips):
    """0.8 s of the clip's own quiet background, or of digital silence, between words marks nothing.

    Digital silence is intended silence: any zero run over 130 ms, or one at the start or end of the file,
    is left alone, whatever surrounds it.
    """
    clean = clips["da_7spoke"]
    background = np.resize(clean[:1600], 12800)  # the lead-in before the first word is background
    for filler in (background, np.zeros(12800, np.float32)):
        signal = _with_pause(clean, filler)
        assert rasterise(detect_mask(signal), MODEL_GRID).mean() <= 0.02
    edged = np.concatenate([np.zeros(4000, np.float32), clean, np.zeros(4000, np.float32)])
    assert not [r for r in detect_mask(edged).regions if r.f0 == 0.0 and r.f1 == 8000.0]


def test_packet_loss_in_a_pause_is_still_found(clips):
    """A lost packet is zeros inside live signal, even when the live signal is quiet background."""
    clean = clips["da_mercury"].copy()
    clean[3200:3840] = 0.0  # the lead-in: background, not speech
    found = detect_mask(clean)
    gaps = [r for r in found.regions if r.f0 == 0.0 and r.f1 == 8000.0]
    assert [(round(r.t0 * 16000), round(r.t1 * 16000)) for r in gaps] == [(3200, 3840)]


@pytest.mark.parametrize(
    "signal, message",
    [
        (np.zeros(32000, np.float32), "silent"),
        (np.full(1000, 0.1, np.float32), "too short"),
        (np.array([0.1, np.nan] * 2000, np.float32), "NaN"),
        (np.zeros((2, 4000), np.float32), "mono"),
    ],
)
def test_bad_input_is_a_clear_error(signal, message):
    with pytest.raises(SpeechInpaintError, match=message):
        detect_mask(signal)


def test_cli_detect_then_restore(tmp_path, clips, capsys):
    clean = clips["da_mars"]
    bad, _ = corrupt(clean, "gaps", seed=5)
    src = tmp_path / "in" / "sub" / "bad.wav"
    save_audio(src, bad)
    assert main(["detect", str(src), "-o", str(tmp_path / "bad.mask.json")]) == 0
    mask = load_mask(tmp_path / "bad.mask.json")
    assert mask.num_samples == len(clean) and mask.regions
    out = tmp_path / "restored.wav"
    assert main(["restore", str(src), "-o", str(out), "--mask", str(tmp_path / "bad.mask.json"), "--method", "interp"]) == 0
    via_file = load_audio(out)
    assert main(["restore", str(src), "-o", str(tmp_path / "auto.wav"), "--mask", "auto", "--method", "interp"]) == 0
    np.testing.assert_array_equal(load_audio(tmp_path / "auto.wav"), via_file)
    # the restored gaps are no longer zero runs
    assert np.count_nonzero(via_file == 0) < np.count_nonzero(load_audio(src) == 0) / 10

    # a folder gives a folder of NAME.mask.json with the same relative names
    assert main(["detect", str(tmp_path / "in"), "-o", str(tmp_path / "masks")]) == 0
    assert load_mask(tmp_path / "masks" / "sub" / "bad.mask.json").regions == mask.regions

    # bad input: one line, exit 1
    save_audio(tmp_path / "short.wav", np.full(700, 0.1, np.float32))
    capsys.readouterr()
    assert main(["detect", str(tmp_path / "short.wav"), "-o", str(tmp_path / "short.mask.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speechinpaint: error:") and "too short" in err[0]
    assert not (tmp_path / "short.mask.json").exists()


def test_cli_holes_round_trip_with_the_shipped_model(tmp_path, clips):
    """corrupt -> detect -> restore with the shipped model through the CLI: the detected mask matches the
    one `corrupt` wrote, and restoring with it brings the audio as close to the clean clip as the true
    mask does."""
    save_audio(tmp_path / "clean" / "mars.wav", clips["da_mars"])
    assert main(["corrupt", str(tmp_path / "clean"), "-o", str(tmp_path / "bad"), "--kind", "holes", "--seed", "2"]) == 0
    bad = tmp_path / "bad" / "mars.wav"
    assert main(["detect", str(bad), "-o", str(tmp_path / "found.mask.json")]) == 0
    assert iou(load_mask(tmp_path / "bad" / "mars.mask.json"), load_mask(tmp_path / "found.mask.json")) >= 0.8
    assert main(["restore", str(bad), "-o", str(tmp_path / "true.wav")]) == 0
    assert main(["restore", str(bad), "-o", str(tmp_path / "auto.wav"), "--mask", "auto"]) == 0
    clean = load_audio(tmp_path / "clean" / "mars.wav")
    distance = {name: lsd(clean, load_audio(tmp_path / f"{name}.wav")) for name in ("true", "auto")}
    assert distance["auto"] <= distance["true"] + 0.05 < lsd(clean, load_audio(bad)), distance
