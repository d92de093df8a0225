"""The network and the Inpainter: shapes, any length, known bins untouched, chunking, bad checkpoints."""

from pathlib import Path

import numpy as np
import pytest
import torch

from speechinpaint.audio import load_audio
from speechinpaint.checkpoint import MODEL_FORMAT, export_weights, load_checkpoint
from speechinpaint.corruptions import corrupt
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import Mask, Region, crop_mask, gap_sample_mask, rasterise
from speechinpaint.model import InpaintUNet, ModelConfig, estimate_log_magnitude
from speechinpaint.dsp.spectral import MODEL_GRID

DATA = Path(__file__).parent / "data"
TINY = ModelConfig(base_channels=4, levels=3, bottleneck_dilations=(2,))


def tiny_inpainter(**kwargs) -> Inpainter:
    torch.manual_seed(0)
    return Inpainter(InpaintUNet(TINY).eval(), {"model": TINY.to_dict()}, **kwargs)


@pytest.mark.parametrize("frames", [1, 7, 64, 101])
def test_any_number_of_frames(frames):
    model = InpaintUNet(TINY).eval()
    log_mag = torch.randn(2, 257, frames)
    missing = torch.rand(2, 257, frames) < 0.3
    out = estimate_log_magnitude(model, log_mag, missing)
    assert out.shape == (2, 257, frames)
    assert torch.equal(out[~missing], log_mag[~missing])


def test_interp_fill_network_corrects_the_interpolation():
    """With fill "interp" the network's output is a correction: a network that outputs zeros gives the
    interpolation baseline exactly in the holes, and the known bins pass through either way."""
    from speechinpaint.dsp.interpolation import interpolate_log_magnitude

    model = InpaintUNet(ModelConfig(base_channels=4, levels=3, bottleneck_dilations=(2,), fill="interp")).eval()
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)
    log_mag = torch.randn(2, 257, 40)
    missing = torch.rand(2, 257, 40) < 0.3
    out = estimate_log_magnitude(model, log_mag, missing)
    expected = interpolate_log_magnitude(log_mag, missing)
    assert torch.equal(out[~missing], log_mag[~missing])
    assert torch.allclose(out[:, :-1], expected[:, :-1], atol=1e-4)


def test_unknown_fill_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="fill"):
        ModelConfig(fill="noise")
    bad = tmp_path / "bad.pt"
    torch.save({"format": MODEL_FORMAT, "config": {"model": {**TINY.to_dict(), "fill": "noise"}},
                "state_dict": InpaintUNet(TINY).state_dict()}, bad)
    with pytest.raises(SpeechInpaintError, match="not understood"):
        load_checkpoint(bad)


def test_known_bins_pass_through_restoration():
    clean = load_audio(DATA / "da_mars.wav")
    corrupted, mask = corrupt(clean, "holes", seed=3)
    restored = tiny_inpainter().restore(corrupted, mask)
    assert restored.shape == corrupted.shape and np.all(np.isfinite(restored))
    # Every frame untouched by the mask keeps its spectrum (up to 16-bit-free float error).
    missing = rasterise(mask, MODEL_GRID)
    spec_in = MODEL_GRID.stft(torch.from_numpy(corrupted))
    spec_out = MODEL_GRID.stft(torch.from_numpy(restored))
    far = torch.from_numpy(~np.convolve(missing.any(0), np.ones(9), "same").astype(bool))
    assert torch.allclose(spec_out[:, far], spec_in[:, far], atol=1e-3)


def test_samples_outside_gaps_are_kept_exactly():
    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, "gaps", seed=5)
    restored = tiny_inpainter().restore(corrupted, mask)
    keep = ~gap_sample_mask(mask)
    assert np.array_equal(restored[keep], corrupted[keep])
    assert np.any(restored[~keep] != 0)


def test_chunked_and_whole_file_agree_away_from_chunk_edges():
    clean = np.concatenate([load_audio(p) for p in sorted(DATA.glob("da_*.wav"))])
    corrupted, mask = corrupt(clean, "holes", seed=7)
    whole = tiny_inpainter(chunk_seconds=60).restore(corrupted, mask)
    chunker = tiny_inpainter(chunk_seconds=3.0, overlap_seconds=1.0)
    lengths = []
    restore_16k = chunker.restore_16k
    chunker.restore_16k = lambda audio, m: (lengths.append(len(audio)), restore_16k(audio, m))[1]
    chunked = chunker.restore(corrupted, mask)
    assert len(set(lengths)) == 1 and lengths[0] <= 3 * 16000  # chunks of one length, none restored twice
    assert len(lengths) == -(-(len(clean) - 16000) // (2 * 16000))
    step = lengths[0] - 16000
    edge = np.zeros(len(clean), dtype=bool)
    for start in range(step, len(clean), step):
        edge[max(0, start - 4000): start + 16000 + 4000] = True
    err = np.abs(whole - chunked)[~edge]
    assert err.size > 16000
    assert np.sqrt(np.mean(err**2)) < 0.05 * np.sqrt(np.mean(whole**2))


def test_crop_mask_retimes_regions():
    mask = Mask(16000, 48000, [Region(0.5, 1.5, 100, 200), Region(2.5, 2.9, 0, 8000)])
    part = crop_mask(mask, 16000, 40000)
    assert part.num_samples == 24000
    assert part.regions == [Region(0.0, 0.5, 100, 200)]


def test_batch_restoration_matches_single():
    clean = load_audio(DATA / "da_mars.wav")
    a, ma = corrupt(clean, "band", seed=1)
    b, mb = corrupt(clean, "holes", seed=2)
    ip = tiny_inpainter()
    both = ip.restore([a, b], [ma, mb])
    assert np.allclose(both[1], ip.restore(b, mb))


def test_export_and_reload(tmp_path):
    model = InpaintUNet(TINY)
    path = tmp_path / "m.pt"
    torch.save({"format": MODEL_FORMAT, "config": {"model": TINY.to_dict()}, "state_dict": model.state_dict()}, path)
    export_weights(path, tmp_path / "small.pt")
    loaded, config = load_checkpoint(tmp_path / "small.pt")
    assert config["model"]["base_channels"] == 4
    for k, v in model.state_dict().items():
        expected = v.half().float() if v.is_floating_point() else v
        assert torch.equal(loaded.state_dict()[k], expected)


def test_export_sets_an_inference_setting_and_keeps_the_weights(tmp_path):
    model = InpaintUNet(TINY)
    path = tmp_path / "m.pt"
    torch.save({"format": MODEL_FORMAT, "config": {"model": TINY.to_dict()}, "state_dict": model.state_dict()}, path)
    export_weights(path, tmp_path / "once.pt")
    export_weights(tmp_path / "once.pt", tmp_path / "twice.pt", settings={"gap_fill_share": 0.5})
    once, _ = load_checkpoint(tmp_path / "once.pt")
    twice, config = load_checkpoint(tmp_path / "twice.pt")
    assert twice.config.gap_fill_share == 0.5 and config["model"]["gap_fill_share"] == 0.5
    assert all(torch.equal(v, twice.state_dict()[k]) for k, v in once.state_dict().items())
    with pytest.raises(SpeechInpaintError, match="base_channels is not an inference setting"):
        export_weights(path, tmp_path / "bad.pt", settings={"base_channels": 8})
    assert not (tmp_path / "bad.pt").exists()


def test_wrong_version_and_wrong_shapes_give_clear_errors(tmp_path):
    model = InpaintUNet(TINY)
    old = tmp_path / "old.pt"
    torch.save({"format": "speechinpaint.model/0", "config": {"model": TINY.to_dict()}, "state_dict": model.state_dict()}, old)
    with pytest.raises(SpeechInpaintError, match="another version"):
        load_checkpoint(old)
    wrong = tmp_path / "wrong.pt"
    bigger = ModelConfig(base_channels=8, levels=3, bottleneck_dilations=(2,))
    torch.save({"format": MODEL_FORMAT, "config": {"model": bigger.to_dict()}, "state_dict": model.state_dict()}, wrong)
    with pytest.raises(SpeechInpaintError, match="do not fit"):
        load_checkpoint(wrong)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SpeechInpaintError, match="not a readable checkpoint"):
        load_checkpoint(garbage)


def test_shipped_weights_restore_a_held_out_clip_better_than_zero():
    from speechinpaint.metrics import score

    ip = Inpainter.from_pretrained()
    clean = load_audio(DATA / "da_7spoke.wav")
    for kind in ("holes", "gaps", "band"):
        corrupted, mask = corrupt(clean, kind, seed=11)
        restored = ip.restore(corrupted, mask)
        before, after = score(clean, corrupted, mask), score(clean, restored, mask)
        assert after["lsd"] < before["lsd"], kind
        if kind != "band":  # the band-limited input already scores high on STOI
            assert after["stoi"] > before["stoi"], kind


def test_band_gain_round_trips_through_export_and_sets_the_band_level(tmp_path):
    """`python -m speechinpaint.checkpoint ... --band-gain-db X` writes the band level into the shipped
    form, the weights unchanged; restoring a band with it lowers the band by that gain against the
    full-level estimate (the input's band is near silent), and a restore option overrides it."""
    import subprocess
    import sys

    model = InpaintUNet(TINY)
    path = tmp_path / "m.pt"
    torch.save({"format": MODEL_FORMAT, "config": {"model": TINY.to_dict()}, "state_dict": model.state_dict()}, path)
    run = [sys.executable, "-m", "speechinpaint.checkpoint", str(path)]
    subprocess.run([*run, str(tmp_path / "low.pt"), "--band-gain-db", "-12"], check=True)
    low, config = load_checkpoint(tmp_path / "low.pt")
    assert low.config.band_gain_db == -12.0 and config["model"]["band_gain_db"] == -12.0
    assert low.config.gap_fill_share == TINY.gap_fill_share
    assert all(torch.equal(v.half().float(), low.state_dict()[k]) for k, v in model.state_dict().items()
               if v.is_floating_point())
    bad = subprocess.run([*run, str(tmp_path / "bad.pt"), "--band-gain-db", "30"], capture_output=True, text=True)
    assert bad.returncode != 0 and "band_gain_db" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.pt").exists()

    clean = load_audio(DATA / "da_7spoke.wav")
    corrupted, mask = corrupt(clean, "band", seed=0, cutoff_hz=4000.0)
    full = Inpainter.from_checkpoint(tmp_path / "low.pt", band_gain_db=0.0).restore(corrupted, mask)
    quiet = Inpainter.from_checkpoint(tmp_path / "low.pt").restore(corrupted, mask)

    def band_power(audio):
        return float((MODEL_GRID.stft(torch.from_numpy(audio))[140:].abs() ** 2).sum())

    ratio_db = 10 * np.log10(band_power(quiet) / band_power(full))
    assert -14.0 < ratio_db < -10.0
    below = slice(0, 100)  # below 3.1 kHz, well under the edge: the band level leaves it
    a, b = (MODEL_GRID.stft(torch.from_numpy(x))[below] for x in (quiet, full))
    assert float((a - b).abs().norm() / b.abs().norm()) < 0.01
    with pytest.raises(SpeechInpaintError, match="band_gain_db"):
        Inpainter.from_checkpoint(tmp_path / "low.pt", band_gain_db=20.0)
