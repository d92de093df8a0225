"""The learned holes detector: its crops, its training through `speechinpaint train` (loss falls, resume,
export), its own checkpoint format, and inference on long files in chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from speechinpaint import hole_detector
from speechinpaint.checkpoint import DETECTOR_FORMAT, export_weights, load_checkpoint
from speechinpaint.cli import main
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.streams import speaker_streams
from speechinpaint.training.data import CropConfig, CropDataset
from speechinpaint.training.detector import DetectorCrops, HoleDetectorModule
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.hole_detector import HoleDetector, silent_frames
from speechinpaint.inpainter import SHIPPED_WEIGHTS, Inpainter
from speechinpaint.dsp.spectral import MODEL_GRID

CONFIG = Path(__file__).parents[1] / "configs" / "holes_detector.yaml"


def tiny_detector_config(tmp_path: Path, corpus: Path, max_steps: int, lr: float = 0.003) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    config["data"].update(manifest=str(corpus / "manifest.csv"), crop_seconds=0.5, crops_per_epoch=16,
                          batch_size=4, val_crops=4)
    config["model"] = {"base_channels": 4, "levels": 2, "bottleneck_dilations": [2]}
    config["optim"].update(lr=lr, warmup_steps=1)
    config["train"].update(max_steps=max_steps, max_minutes=10, val_every_steps=4, accelerator="cpu",
                           progress_bar=False, log_every_steps=1)
    path = tmp_path / "tiny_detector.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def detector_crops(corpus: Path, length: int, seed: int = 5, **crop) -> DetectorCrops:
    streams = speaker_streams(read_manifest(corpus / "manifest.csv", "train"))
    cfg = CropConfig(**{"crop_seconds": 0.5, "mixture": {"holes": 1.0}, **crop})
    return DetectorCrops(CropDataset(streams, cfg, length, seed), 0.3)


def test_crops_are_16_bit_a_share_is_clean_and_each_is_reproducible(corpus):
    crops = detector_crops(corpus, 40)
    items = [crops[i] for i in range(len(crops))]
    for item in items:
        samples = item["audio"].numpy().astype(np.float64) * 32767
        np.testing.assert_allclose(samples, np.round(samples), atol=1e-3)
        assert item["target"].shape == (MODEL_GRID.num_bins - 1, MODEL_GRID.num_frames(8000))
    clean = [not item["target"].any() for item in items]
    assert 4 <= sum(clean) <= 20, sum(clean)  # 30 % of 40, drawn
    # A clean item is the crop without its holes; a damaged one carries the crop's own mask.
    i, j = clean.index(True), clean.index(False)
    inner = crops.crops[j]
    assert torch.equal(items[j]["target"], inner["missing"][:-1])
    assert not torch.equal(items[i]["audio"], torch.from_numpy(np.zeros(8000, np.float32)))
    again = detector_crops(corpus, 40)
    assert all(torch.equal(again[k]["audio"], items[k]["audio"]) for k in (i, j))


def test_only_holes_are_targets_and_digital_silence_never_is(corpus):
    """Lost packets and a missing band are other detectors' damage: no target. A stretch of exact zeros
    is silence, not damage: no target in the frames it fills, holes or not."""
    for item in (detector_crops(corpus, 12, mixture={"gaps": 0.5, "band": 0.5})[i] for i in range(12)):
        assert not item["target"].any()
    crops = detector_crops(corpus, 12, silence_share=1.0, silence_seconds=(0.2, 0.3))
    held = 0
    for i in range(12):
        item, inner = crops[i], crops.crops[i]
        silent = silent_frames(item["audio"].numpy())
        assert silent.any() and not item["target"][:, silent].any()
        held += int(item["target"].any() and torch.equal(item["target"][:, ~silent], inner["missing"][:-1, ~silent]))
    assert held >= 4  # the damaged crops keep their holes outside the silence


def test_silent_frames_are_those_whose_whole_window_is_zero():
    audio = np.full(16000, 0.1, np.float32)
    audio[4000:8000] = 0.0
    silent = silent_frames(audio)
    centres = np.arange(len(silent)) * MODEL_GRID.hop
    np.testing.assert_array_equal(silent, (centres - 256 >= 4000) & (centres + 256 <= 8000))
    assert silent_frames(np.zeros(2000, np.float32)).all()


def test_training_lowers_the_loss_and_resumes(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    config = tiny_detector_config(tmp_path, corpus, max_steps=30, lr=0.01)
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    last = out / "checkpoints" / "last.ckpt"
    settings = yaml.safe_load(config.read_text())
    batch = {k: torch.stack([it[k] for it in (detector_crops(corpus, 8, seed=9)[i] for i in range(8))])
             for k in ("audio", "target")}
    torch.manual_seed(0)
    untrained, trained = HoleDetectorModule(settings).eval(), HoleDetectorModule(settings).eval()
    trained.model, _ = load_checkpoint(last, DETECTOR_FORMAT)
    with torch.no_grad():
        before, after = untrained.loss(batch)[0].item(), trained.loss(batch)[0].item()
    assert after < 0.8 * before, (before, after)
    log = (out / "logs" / "version_0" / "metrics.csv").read_text()
    assert "val/iou" in log.splitlines()[0]

    longer = tiny_detector_config(tmp_path, corpus, max_steps=34, lr=0.01)
    assert main(["train", "--config", str(longer), "--out", str(out), "--resume"]) == 0
    assert torch.load(last, weights_only=False)["global_step"] == 34


def test_each_network_loads_only_as_itself(tmp_path, corpus):
    """The detector's checkpoint is not an inpainting model, nor the other way round; exported, the
    detector marks cells on the model grid."""
    out = tmp_path / "run"
    assert main(["train", "--config", str(tiny_detector_config(tmp_path, corpus, 2)), "--out", str(out)]) == 0
    last = out / "checkpoints" / "last.ckpt"
    with pytest.raises(SpeechInpaintError, match="another network"):
        Inpainter.from_checkpoint(last)
    with pytest.raises(SpeechInpaintError, match="another network"):
        HoleDetector.from_checkpoint(SHIPPED_WEIGHTS)
    exported = tmp_path / "detector.pt"
    export_weights(last, exported)
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    cells = HoleDetector.from_checkpoint(exported).cells(audio)
    assert cells.shape == (MODEL_GRID.num_bins, MODEL_GRID.num_frames(16000)) and cells.dtype == bool


def test_an_unknown_task_is_a_clear_error(tmp_path, corpus, capsys):
    config = tiny_detector_config(tmp_path, corpus, 2)
    settings = yaml.safe_load(config.read_text())
    settings["task"] = "denoise"
    config.write_text(yaml.safe_dump(settings))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    assert "task 'denoise'" in capsys.readouterr().err


def test_long_files_run_in_chunks_give_the_same_cells(speech_of_length, monkeypatch):
    """A file longer than a chunk is run in windows with context on both sides: the probabilities match
    a run over the whole file."""
    audio = speech_of_length(6 * 16000)
    detector = HoleDetector.from_checkpoint(None)
    whole = detector.probabilities(audio)
    monkeypatch.setattr(hole_detector, "CHUNK_FRAMES", 200)
    chunked = detector.probabilities(audio)
    assert whole.shape == chunked.shape == (MODEL_GRID.num_bins - 1, MODEL_GRID.num_frames(len(audio)))
    np.testing.assert_allclose(chunked, whole, atol=1e-3)
