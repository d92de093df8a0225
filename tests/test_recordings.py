"""Real recordings through the CLI and the API: any rate, channels and sample format come back as they
went in, only the damage changes, nothing a user gave is overwritten, and nothing in a file is run.

The 44.1 kHz clips (tests/data/*_44k.flac) are the bundled voices at their source rate, with real
content above 8 kHz."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import speechinpaint
from speechinpaint.audio import load_audio, resample
from speechinpaint.batch import RECORD_NAME
from speechinpaint.cli import main
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import Mask, Region, gap_sample_mask, load_mask, mask_path_for, rasterise
from speechinpaint.recording import native_grid

from conftest import DATA
from test_cli import assert_one_error_line, run, snapshot


def clip44(name: str = "da_7spoke_44k.flac") -> tuple[np.ndarray, int]:
    audio, rate = sf.read(DATA / name, dtype="float64")
    return audio, rate


def stereo48(tmp_path: Path, subtype: str = "PCM_24") -> Path:
    """48 kHz stereo with different speech in each channel."""
    a, rate = clip44("da_7spoke_44k.flac")
    b, _ = clip44("da_mars_44k.flac")
    n = max(len(a), len(b))
    both = np.stack([resample(np.pad(a, (0, n - len(a))), rate, 48000), resample(np.pad(b, (0, n - len(b))), rate, 48000)])
    path = tmp_path / "stereo48.wav"
    sf.write(path, both.T, 48000, subtype=subtype)
    return path


def band_energy_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    grid = native_grid(rate)
    power = grid.stft(torch.from_numpy(np.asarray(x, np.float32))).abs().numpy() ** 2
    freqs = grid.bin_freqs()
    return float(10 * np.log10(power[(freqs >= lo) & (freqs < hi)].sum() + 1e-30))


def noise_gate(x: np.ndarray, rate: int, threshold_db: float = -40.0, attack: float = 0.010, hold: float = 0.050,
               release: float = 0.100, window: float = 0.010) -> np.ndarray:
    """A standard downward gate at full depth: RMS over `window`; below the threshold for `hold`, the gain
    falls linearly to 0 over `release`; above it, the gain rises to 1 over `attack`."""
    w = max(1, int(window * rate))
    power = np.convolve(x.astype(np.float64) ** 2, np.ones(w) / w, mode="same")
    is_open = power >= 10 ** (threshold_db / 10)
    gain, g, below = np.empty(len(x)), 1.0, 0
    up, down, hold_n = 1 / (attack * rate), 1 / (release * rate), int(hold * rate)
    for i, o in enumerate(is_open):
        below = 0 if o else below + 1
        g = min(1.0, g + up) if o else (max(0.0, g - down) if below > hold_n else g)
        gain[i] = g
    return x * gain


# --- the native round trip ---------------------------------------------------------------------------


def test_44k_mono_flac_keeps_its_rate_format_and_upper_band(capsys, tmp_path):
    src = tmp_path / "clean.flac"
    audio, rate = clip44()
    sf.write(src, audio, rate, subtype="PCM_16")
    rc, err = run(capsys, "corrupt", src, "-o", tmp_path / "holes.flac", "--kind", "holes", "--seed", 2,
                  "--max-freq", 8000)
    assert rc == 0, err
    mask = load_mask(tmp_path / "holes.mask.json")
    assert (mask.sample_rate, mask.num_samples) == (rate, len(audio))  # the file's own terms
    assert max(r.f1 for r in mask.regions) <= 8000
    rc, err = run(capsys, "restore", tmp_path / "holes.flac", "-o", tmp_path / "fixed.flac")
    assert rc == 0, err
    info = sf.info(tmp_path / "fixed.flac")
    assert (info.samplerate, info.channels, info.subtype, info.format) == (rate, 1, "PCM_16", "FLAC")
    # Above 8 kHz, where nothing is marked, the input is kept: written as floats (no 16-bit rounding of the changed samples), the
    # change there is tiny against what the band holds.
    rc, err = run(capsys, "restore", tmp_path / "holes.flac", "-o", tmp_path / "fixed_float.wav", "--subtype", "FLOAT")
    assert rc == 0, err
    bad, fixed = sf.read(tmp_path / "holes.flac")[0], sf.read(tmp_path / "fixed_float.wav")[0]
    change = band_energy_db(fixed - bad, rate, 8500, rate / 2) - band_energy_db(bad, rate, 8500, rate / 2)
    assert change < -60, change
    # Inside the mask (below 8 kHz) the holes are filled: closer to the clean clip than the input.
    clean16, bad16, fixed16 = (resample(x, rate, 16000) for x in (audio, bad, fixed))
    inside = rasterise(mask.at_rate(16000, len(clean16)), native_grid(16000))
    spec = lambda x: native_grid(16000).stft(torch.from_numpy(x.astype(np.float32))).abs().numpy()  # noqa: E731
    err_bad = np.abs(np.log(spec(bad16) + 1e-5) - np.log(spec(clean16) + 1e-5))[inside].mean()
    err_fixed = np.abs(np.log(spec(fixed16) + 1e-5) - np.log(spec(clean16) + 1e-5))[inside].mean()
    assert err_fixed < 0.6 * err_bad


def test_48k_stereo_24bit_gaps_keep_every_other_sample_bit_for_bit(capsys, tmp_path):
    src = stereo48(tmp_path)
    rc, err = run(capsys, "corrupt", src, "-o", tmp_path / "gaps.wav", "--kind", "gaps", "--seed", 4)
    assert rc == 0, err
    rc, err = run(capsys, "restore", tmp_path / "gaps.wav", "-o", tmp_path / "fixed.wav")
    assert rc == 0, err
    info = sf.info(tmp_path / "fixed.wav")
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    bad = sf.read(tmp_path / "gaps.wav", dtype="int32")[0]
    fixed = sf.read(tmp_path / "fixed.wav", dtype="int32")[0]
    gap = gap_sample_mask(load_mask(tmp_path / "gaps.mask.json"))
    assert gap.mean() > 0.1
    np.testing.assert_array_equal(fixed[~gap], bad[~gap])
    clean = sf.read(src)[0]
    for c in range(2):  # each channel is filled with its own speech, not a mix
        assert np.sqrt(np.mean(fixed[gap, c].astype(float) ** 2)) > 0  # filled
        own = np.corrcoef(fixed[gap, c], clean[gap, c])[0, 1]
        other = np.corrcoef(fixed[gap, c], clean[gap, 1 - c])[0, 1]
        assert own > 0.1 and abs(other) < 0.05, (c, own, other)  # a mix would follow the other channel too


def test_a_float_file_stays_float_and_unclipped(capsys, tmp_path):
    audio, rate = clip44()
    loud = 1.6 * audio / np.max(np.abs(audio))
    sf.write(tmp_path / "loud.wav", loud, rate, subtype="FLOAT")
    rc, err = run(capsys, "corrupt", tmp_path / "loud.wav", "-o", tmp_path / "gaps.wav", "--kind", "gaps")
    assert rc == 0, err
    rc, err = run(capsys, "restore", tmp_path / "gaps.wav", "-o", tmp_path / "fixed.wav", "--method", "interp")
    assert rc == 0, err
    assert sf.info(tmp_path / "fixed.wav").subtype == "FLOAT"
    fixed = sf.read(tmp_path / "fixed.wav", dtype="float32")[0]
    bad = sf.read(tmp_path / "gaps.wav", dtype="float32")[0]
    gap = gap_sample_mask(load_mask(tmp_path / "gaps.mask.json"))
    assert np.max(np.abs(fixed)) > 1.5
    np.testing.assert_array_equal(fixed[~gap], bad[~gap])


def test_sample_rate_and_subtype_override(capsys, tmp_path):
    src = stereo48(tmp_path, "PCM_16")
    rc, err = run(capsys, "corrupt", src, "-o", tmp_path / "h.wav", "--kind", "holes", "--seed", 1)
    assert rc == 0, err
    rc, err = run(capsys, "restore", tmp_path / "h.wav", "-o", tmp_path / "out.flac", "--method", "interp",
                  "--sample-rate", 44100, "--subtype", "PCM_24", "--save-mask")
    assert rc == 0, err
    info = sf.info(tmp_path / "out.flac")
    assert (info.samplerate, info.channels, info.subtype, info.format) == (44100, 2, "PCM_24", "FLAC")
    saved = load_mask(mask_path_for(tmp_path / "out.flac"))
    assert (saved.sample_rate, saved.num_samples) == (44100, info.frames)
    rc, err = run(capsys, "restore", tmp_path / "h.wav", "-o", tmp_path / "x.flac", "--subtype", "FLOAT")
    assert_one_error_line(rc, err, "FLAC cannot hold --subtype FLOAT")


def test_a_folder_keeps_names_formats_and_a_closing_line(capsys, tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    audio, rate = clip44()
    sf.write(clean / "a.flac", audio, rate)
    sf.write(clean / "b.wav", load_audio(DATA / "da_mars.wav"), 16000)
    (clean / "c.wav").write_bytes(b"junk")
    rc, err = run(capsys, "corrupt", clean, "-o", tmp_path / "bad/", "--kind", "gaps")
    assert rc == 1 and err.strip().splitlines()[-1] == "2 corrupted, 1 failed (see above)"
    rc, err = run(capsys, "restore", tmp_path / "bad", "-o", tmp_path / "new/dir/", "--method", "interp")
    assert rc == 0 and err.strip().splitlines()[-1] == "2 restored, 0 failed", err
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == ["a.flac", "b.wav", RECORD_NAME]
    assert sf.info(tmp_path / "new" / "dir" / "a.flac").samplerate == rate


# --- masks in the file's terms -----------------------------------------------------------------------


def test_a_mask_in_the_files_terms_is_accepted_and_a_mismatch_names_the_field(capsys, tmp_path):
    audio, rate = clip44()
    sf.write(tmp_path / "in.wav", audio, rate)
    mask = {"format": "speechinpaint.mask/1", "sample_rate": rate, "num_samples": len(audio),
            "regions": [{"t0": 0.5, "t1": 0.9, "f0": 1000.0, "f1": 3000.0}]}
    (tmp_path / "in.mask.json").write_text(json.dumps(mask))
    rc, err = run(capsys, "restore", tmp_path / "in.wav", "-o", tmp_path / "out.wav", "--method", "interp")
    assert rc == 0, err
    (tmp_path / "in.mask.json").write_text(json.dumps({**mask, "sample_rate": 16000}))
    rc, err = run(capsys, "restore", tmp_path / "in.wav", "-o", tmp_path / "out2.wav", "--method", "interp")
    assert_one_error_line(rc, err, "sample_rate differs")
    (tmp_path / "in.mask.json").write_text(json.dumps({**mask, "num_samples": 100}))
    rc, err = run(capsys, "restore", tmp_path / "in.wav", "-o", tmp_path / "out3.wav", "--method", "interp")
    assert_one_error_line(rc, err, "num_samples differs")


def test_a_region_for_one_channel_changes_only_that_channel(tmp_path):
    a, _ = clip44("da_7spoke_44k.flac")
    b, _ = clip44("da_mars_44k.flac")
    n = min(len(a), len(b))
    stereo = np.stack([a[:n], b[:n]])
    mask = Mask(44100, n, [Region(0.5, 1.0, 0.0, 22050.0, channel=1)])
    bad = stereo.copy()
    bad[:, gap_sample_mask(mask)] = 0.0
    out = Inpainter.from_pretrained().restore(bad, mask, sample_rate=44100)
    np.testing.assert_array_equal(out[0], bad[0].astype(np.float32))
    assert np.abs(out[1][gap_sample_mask(mask)]).max() > 0.01


# --- honest --mask auto -------------------------------------------------------------------------------


def test_gated_speech_is_not_concealed(capsys, tmp_path):
    speech = np.concatenate([load_audio(DATA / n) for n in ("da_mercury.wav", "da_7spoke.wav", "da_mars.wav")])
    gated = noise_gate(speech, 16000)
    sf.write(tmp_path / "gated.wav", gated, 16000, subtype="PCM_16")
    held = sf.read(tmp_path / "gated.wav")[0]
    runs = [(a, b) for a, b in zip(*np.nonzero(np.diff(np.r_[0, held == 0, 0]))[0].reshape(-1, 2).T)]
    assert any(160 <= b - a <= 2080 for a, b in runs)  # the gate leaves packet-sized zero runs
    assert main(["restore", str(tmp_path / "gated.wav"), "-o", str(tmp_path / "out.wav"), "--mask", "auto",
                 "--detect", "gaps"]) == 0
    assert capsys.readouterr().out.strip() == "gated.wav: nothing found: copied unchanged"
    np.testing.assert_array_equal(sf.read(tmp_path / "out.wav", dtype="int16")[0],
                                  sf.read(tmp_path / "gated.wav", dtype="int16")[0])


def test_detect_says_what_it_found(capsys, tmp_path):
    src = tmp_path / "clean.wav"
    sf.write(src, load_audio(DATA / "da_7spoke.wav"), 16000, subtype="PCM_16")
    rc = main(["corrupt", str(src), "-o", str(tmp_path / "gaps.wav"), "--kind", "gaps", "--seed", "1"])
    assert rc == 0
    capsys.readouterr()
    assert main(["detect", str(tmp_path / "gaps.wav"), "-o", str(tmp_path / "found.mask.json")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("gaps.wav: ") and "lost packets (" in line and "no missing band" in line and "no holes" in line
    assert main(["restore", str(src), "-o", str(tmp_path / "same.wav"), "--mask", "auto"]) == 0
    assert capsys.readouterr().out.strip() == "clean.wav: nothing found: copied unchanged"
    np.testing.assert_array_equal(sf.read(tmp_path / "same.wav", dtype="int16")[0], sf.read(src, dtype="int16")[0])


def test_detected_holes_are_few_rectangles(tmp_path):
    from speechinpaint.corruptions import corrupt
    from speechinpaint.detection import detect_holes, detect_signal
    from speechinpaint.dsp.spectral import MODEL_GRID

    clean = load_audio(Path(speechinpaint.__file__).parent / "examples" / "example.wav")
    bad, _ = corrupt(clean, "holes", seed=2021)
    bad = np.round(bad * 32767) / 32767
    cells = detect_holes(bad.astype(np.float32))
    mask = detect_signal(bad[None], 16000).mask
    covered = rasterise(mask, MODEL_GRID)
    assert (covered & cells).sum() / (covered | cells).sum() >= 0.99
    slivers = sum(1 for r in mask.regions if r.t1 - r.t0 <= MODEL_GRID.hop / 16000 + 1e-9)
    assert len(mask.regions) < 100 and slivers < 40, (len(mask.regions), slivers)  # exact cells: 217 and 142


def test_an_8k_file_is_extended_only_on_request(capsys, tmp_path):
    narrow = resample(load_audio(DATA / "da_7spoke.wav"), 16000, 8000)
    sf.write(tmp_path / "phone.wav", narrow, 8000, subtype="PCM_16")
    assert main(["restore", str(tmp_path / "phone.wav"), "-o", str(tmp_path / "same.wav"), "--mask", "auto"]) == 0
    assert capsys.readouterr().out.strip() == "phone.wav: nothing found: copied unchanged"
    assert sf.info(tmp_path / "same.wav").samplerate == 8000
    np.testing.assert_array_equal(sf.read(tmp_path / "same.wav", dtype="int16")[0],
                                  sf.read(tmp_path / "phone.wav", dtype="int16")[0])
    rc, err = run(capsys, "restore", tmp_path / "phone.wav", "-o", tmp_path / "wide.wav", "--mask", "auto",
                  "--sample-rate", 16000)
    assert rc == 0, err
    wide = sf.read(tmp_path / "wide.wav")[0]
    assert sf.info(tmp_path / "wide.wav").samplerate == 16000
    plain = resample(sf.read(tmp_path / "phone.wav")[0], 8000, 16000)
    # The band above 4 kHz is filled: far more energy there than the plain upsampled input has.
    assert band_energy_db(wide, 16000, 4500, 8000) > band_energy_db(plain, 16000, 4500, 8000) + 20


# --- nothing lost, nothing run -------------------------------------------------------------------------


def test_no_output_replaces_an_input(capsys, tmp_path):
    src = tmp_path / "clean.wav"
    sf.write(src, load_audio(DATA / "da_mars.wav"), 16000, subtype="PCM_16")
    assert main(["corrupt", str(src), "-o", str(tmp_path / "holes" / "a.wav"), "--kind", "holes"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    cases = [
        ("restore", tmp_path / "holes" / "a.wav", "-o", tmp_path / "holes" / "a.mask.json"),
        ("restore", tmp_path / "holes" / "a.wav", "-o", src, "--method", "oracle", "--reference", src),
        ("evaluate", "--reference", src, "--estimate", tmp_path / "holes" / "a.wav", "--json", tmp_path / "holes" / "a.wav"),
        ("evaluate", "--reference", src, "--estimate", tmp_path / "holes" / "a.wav", "--csv", src),
        ("plot", src, tmp_path / "holes" / "a.wav", src, "-o", tmp_path / "holes" / "a.mask.json"),
    ]
    for argv in cases:
        rc, err = run(capsys, *argv)
        assert_one_error_line(rc, err)
        assert snapshot(tmp_path) == before, argv


def test_a_malicious_checkpoint_is_refused_without_running(capsys, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"format": "speechinpaint.model/1", "config": Payload(), "state_dict": {}}, fh)
    torch.save({"format": "speechinpaint.model/1", "config": Payload(), "state_dict": {}}, tmp_path / "evil2.pt")
    src = tmp_path / "in.wav"
    sf.write(src, load_audio(DATA / "da_mars.wav"), 16000)
    assert main(["corrupt", str(src), "-o", str(tmp_path / "h.wav"), "--kind", "holes"]) == 0
    for path in (evil, tmp_path / "evil2.pt"):
        rc, err = run(capsys, "restore", tmp_path / "h.wav", "-o", tmp_path / "out.wav", "--checkpoint", path)
        assert_one_error_line(rc, err, "not a readable checkpoint")
        assert not marker.exists()
    assert not (tmp_path / "out.wav").exists()


def test_a_full_disk_is_one_line_and_never_half_a_pair(capsys, tmp_path, small_disk):
    disk = small_disk
    src = tmp_path / "in.wav"
    audio, rate = clip44()
    sf.write(src, audio, rate, subtype="PCM_16")  # 260 KB: the disk cannot hold it
    rc, err = run(capsys, "corrupt", src, "-o", disk / "out.wav", "--kind", "gaps")
    assert_one_error_line(rc, err, "No space left on device")
    assert sorted(os.listdir(disk)) == []
    with open(disk / "filler", "wb", buffering=0) as fh:  # fill the disk to the last byte
        with pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 4096)
    rc, err = run(capsys, "evaluate", "--reference", src, "--estimate", src, "--json", disk / "scores.json")
    assert rc == 1 and err.strip().splitlines()[-1].startswith("speechinpaint: error: ") and "Traceback" not in err
    assert sorted(os.listdir(disk)) == ["filler"]


# --- the Python API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    from speechinpaint.corruptions import corrupt

    clean = load_audio(DATA / "da_mars.wav")
    bad, mask = corrupt(clean, "gaps", seed=3)
    folder = tmp_path_factory.mktemp("api")
    speechinpaint.save_mask(folder / "bad.mask.json", mask)
    return bad, mask, folder / "bad.mask.json"


def test_the_api_takes_ints_tensors_channels_paths_and_auto(damaged):
    bad, mask, mask_file = damaged
    ip = speechinpaint.Inpainter.from_pretrained(iterations=4)
    as_float = ip.restore(bad, mask)
    as_int16 = ip.restore(np.round(bad * 32767).astype(np.int16), mask)
    assert as_int16.dtype == np.float32 and np.max(np.abs(as_int16 - as_float)) < 0.01
    np.testing.assert_array_equal(ip.restore(torch.from_numpy(bad), str(mask_file)), as_float)
    both = ip.restore(np.stack([bad, bad]), mask)
    assert both.shape == (2, len(bad)) and np.array_equal(both[0], as_float)
    auto = ip.restore(np.round(bad * 32767).astype(np.int16), "auto")
    assert auto.shape == bad.shape


@pytest.mark.parametrize("audio, expected", [
    (np.zeros((48000, 2), np.float32), "transpose it"),
    (np.full(16000, np.nan, np.float32), "NaN"),
    (np.zeros(0, np.float32), "holds no samples"),
    (np.zeros(100, np.float32), "shorter than one analysis window"),
    (np.zeros((2, 3, 4000), np.float32), "expected [samples] or [channels, samples]"),
    (np.array(["a", "b"]), "numeric samples"),
])
def test_the_api_refuses_bad_audio_in_one_sentence(audio, expected):
    with pytest.raises(SpeechInpaintError) as caught:
        speechinpaint.Inpainter.from_pretrained().restore(audio, Mask(16000, max(audio.shape[-1], 1), []))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_api_refuses_a_bad_mask(damaged):
    bad, mask, _ = damaged
    with pytest.raises(SpeechInpaintError, match="no such mask file"):
        speechinpaint.Inpainter.from_pretrained().restore(bad, "nowhere.mask.json")
    with pytest.raises(SpeechInpaintError, match="expected a Mask"):
        speechinpaint.Inpainter.from_pretrained().restore(bad, 3)


def test_the_package_exports_its_names_lazily():
    code = ("import sys, speechinpaint\nloaded = 'torch' in sys.modules\n"
            "from speechinpaint import Inpainter, HoleDetector, Mask, load_mask, load_audio, save_audio, detect_mask, "
            "corrupt, score\nprint(loaded, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_a_long_restore_reports_progress_per_chunk(capsys, speech_of_length):
    """Off a terminal, progress is plain lines (here one per chunk: three of 25.7 s), not a bar's carriage
    returns."""
    from speechinpaint.corruptions import corrupt
    from speechinpaint.progress import Progress
    from speechinpaint.restorers import InterpRestorer

    bad, mask = corrupt(speech_of_length(75 * 16000), "gaps", seed=1)
    progress = Progress(75.0, "long.wav", "s of audio", interval=0.0)
    InterpRestorer(iterations=1).restore(bad, mask, progress=progress)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["long.wav: 26 of 75 s of audio (34 %)", "long.wav: 50 of 75 s of audio (67 %)",
                     "long.wav: 75 of 75 s of audio (100 %)"]


def test_an_encoders_low_pass_near_8k_is_no_missing_band(capsys, tmp_path):
    """An MP3 encoder's low-pass at 7.3 kHz is the file as its maker left it; a band cut at 4 kHz is lost."""
    speech = np.concatenate([load_audio(DATA / n) for n in ("da_mercury.wav", "da_7spoke.wav")])
    encoded = resample(resample(speech, 16000, 14600), 14600, 16000)[: len(speech)]  # flat to about 7.3 kHz
    cut = resample(resample(speech, 16000, 8000), 8000, 16000)[: len(speech)]
    for name, audio in (("encoded.wav", encoded), ("cut.wav", cut)):
        sf.write(tmp_path / name, audio, 16000, subtype="PCM_16")
        assert main(["detect", str(tmp_path / name), "-o", str(tmp_path / f"{name}.mask.json"), "--detect", "band"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "encoded.wav: nothing found"
    assert out[1].startswith("cut.wav: missing band above 3")


def test_an_mp3_comes_back_as_an_mp3_or_in_the_container_asked_for(capsys, tmp_path):
    """A folder keeps an MP3 an MP3; `-o NAME.wav` cannot hold MP3 data, so it gets the WAV default and
    a note says so."""
    sf.write(tmp_path / "a.mp3", load_audio(DATA / "da_7spoke.wav"), 16000, format="MP3")
    assert main(["restore", str(tmp_path / "a.mp3"), "-o", str(tmp_path / "out") + "/", "--mask", "auto"]) == 0
    assert sf.info(tmp_path / "out" / "a.mp3").subtype == "MPEG_LAYER_III"
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "a.mp3"), "-o", str(tmp_path / "a.wav"), "--mask", "auto"]) == 0
    assert "WAV cannot hold MPEG_LAYER_III; writing PCM_16" in capsys.readouterr().err
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
