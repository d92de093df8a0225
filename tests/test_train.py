"""Training end to end on a tiny corpus made from the bundled clips: loss falls, resume, DDP on 2 processes."""

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from speechinpaint.checkpoint import load_checkpoint
from speechinpaint.cli import main
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.streams import speaker_streams
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.training.config import LossConfig, TrainingConfig
from speechinpaint.training.data import CropConfig, CropDataset
from speechinpaint.training.envelope import EnvelopeModule
from speechinpaint.training.inpainting import InpaintingModule, inpainting_task
from speechinpaint.training.losses import pointwise_losses
from speechinpaint.training.run import start_from


def tiny_config(tmp_path: Path, corpus: Path, max_steps: int, lr: float = 0.003) -> Path:
    config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "default.yaml").read_text())
    config["name"] = "tiny"
    config["data"].update(manifest=str(corpus / "manifest.csv"), crop_seconds=0.5, crops_per_epoch=16,
                          batch_size=4, val_crops=4, val_segments=1, val_seconds=1.0)
    config["model"] = {"base_channels": 4, "levels": 2, "bottleneck_dilations": [2]}
    config["optim"].update(lr=lr, warmup_steps=1)
    config["train"].update(max_steps=max_steps, max_minutes=10, val_every_steps=4, phase_iters=2,
                           accelerator="cpu", progress_bar=False)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fixed_batch(corpus: Path, mixture: dict | None = None) -> dict:
    streams = speaker_streams(read_manifest(corpus / "manifest.csv", "train"))
    crops = CropConfig(crop_seconds=0.5, **({"mixture": mixture} if mixture else {}))
    ds = CropDataset(streams, crops, length=8, seed=123)
    items = [ds[i] for i in range(8)]
    return {k: torch.stack([it[k] for it in items]) for k in ("clean", "corrupted", "missing")}


def test_interp_fill_trains_and_a_bad_model_section_is_a_clear_error(tmp_path, corpus, capsys):
    config = tiny_config(tmp_path, corpus, max_steps=4)
    settings = yaml.safe_load(config.read_text())
    settings["model"]["fill"] = "interp"
    config.write_text(yaml.safe_dump(settings))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    model, saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.config.fill == "interp" and saved["model"]["fill"] == "interp"
    settings["model"]["fill"] = "noise"
    config.write_text(yaml.safe_dump(settings))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run2")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model section is not understood" in err[0]


def test_training_lowers_the_loss(tmp_path, corpus):
    config = tiny_config(tmp_path, corpus, max_steps=40, lr=0.01)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    batch = fixed_batch(corpus)
    L.seed_everything(0)
    untrained = InpaintingModule(yaml.safe_load(config.read_text())).eval()
    trained = InpaintingModule(yaml.safe_load(config.read_text())).eval()
    trained.model, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        before, after = untrained.hole_l1(batch).item(), trained.hole_l1(batch).item()
    assert after < 0.9 * before, (before, after)


def test_resume_continues_from_the_last_checkpoint(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(tiny_config(tmp_path, corpus, 4)), "--out", str(out)]) == 0
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4
    # Starting again on the same folder without --resume refuses instead of overwriting the run.
    assert main(["train", "--config", str(tiny_config(tmp_path, corpus, 8)), "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--config", str(tiny_config(tmp_path, corpus, 8)), "--out", str(out), "--resume"]) == 0
    assert torch.load(last, weights_only=False)["global_step"] == 8
    assert torch.load(last, weights_only=False)["hyper_parameters"]["config"]["model"]["base_channels"] == 4


def test_ddp_on_two_cpu_processes(tmp_path, corpus):
    out = tmp_path / "ddp"
    config = tiny_config(tmp_path, corpus, 4)
    env = {**os.environ, "SPEECHINPAINT_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "speechinpaint.cli", "train", "--config", str(config), "--out", str(out), "--devices", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "world_size=2" in proc.stderr or "ddp" in (proc.stdout + proc.stderr).lower()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4


def test_fine_tuning_starts_from_the_given_weights(tmp_path, corpus, capsys):
    """train.init_from loads an earlier run's network; another network's weights are a clear error."""
    first = tmp_path / "first"
    assert main(["train", "--config", str(tiny_config(tmp_path, corpus, 4)), "--out", str(first)]) == 0
    config = yaml.safe_load(tiny_config(tmp_path, corpus, 4).read_text())
    config["train"]["init_from"] = str(first / "checkpoints" / "last.ckpt")
    module = InpaintingModule(config)
    start_from(module, config["train"]["init_from"])
    earlier, _ = load_checkpoint(first / "checkpoints" / "last.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(module.model.state_dict().values(), earlier.state_dict().values()))
    config["model"] = {"base_channels": 8, "levels": 2, "bottleneck_dilations": [2]}
    with pytest.raises(SpeechInpaintError, match="is not this config's"):
        start_from(InpaintingModule(config), config["train"]["init_from"])


@pytest.mark.parametrize("term", ["contrast", "overshoot"])
def test_an_extra_loss_term_enters_the_loss_with_its_weight(corpus, term):
    """Each extra term is positive for an untrained network and adds to the loss with its configured weight."""
    config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "default.yaml").read_text())
    config["model"] = {"base_channels": 4, "levels": 2, "bottleneck_dilations": [2]}
    batch = fixed_batch(corpus)
    module = InpaintingModule(config).eval()
    with torch.no_grad():
        terms = module.hole_losses(batch)
        base = module.training_step(batch, 0).item()
        module.settings.loss = LossConfig(**{f"{term}_weight": 2.0})
        weighted = module.training_step(batch, 0).item()
    assert terms[term].item() > 0
    assert weighted == pytest.approx(base + 2.0 * terms[term].item(), rel=1e-4)


def test_overshoot_counts_only_estimates_above_the_clean_bins():
    clean = torch.randn(2, 8, 5)
    hole = torch.zeros(2, 8, 5)
    hole[:, 2:6] = 1.0
    below = pointwise_losses(clean - 0.5, clean, hole)
    above = pointwise_losses(clean + 0.5 + 9.0 * (1 - hole), clean, hole)
    assert below["overshoot"].item() == 0.0 and below["log_l1"].item() == pytest.approx(0.5)
    assert above["overshoot"].item() == pytest.approx(0.5)  # bins outside the holes do not count


def test_validation_crops_are_not_augmented(tmp_path, corpus):
    config = yaml.safe_load(tiny_config(tmp_path, corpus, 4).read_text())
    config["data"].update(speed=[0.9, 1.1], shelf_db=[-8.0, 8.0])
    _, train_loader, val_loader = inpainting_task(TrainingConfig.from_dict(config))
    assert train_loader.dataset.cfg.speed == (0.9, 1.1) and train_loader.dataset.cfg.shelf_db == (-8.0, 8.0)
    assert val_loader.dataset.cfg.speed == (1.0, 1.0) and val_loader.dataset.cfg.shelf_db == (0.0, 0.0)


def test_the_envelope_head_trains_on_a_frozen_network(tmp_path, corpus, capsys):
    """task envelope starts from a network without the head, trains only the head, and keeps every
    other weight; without weights to start from it is a one-line error."""
    first = tmp_path / "first"
    assert main(["train", "--config", str(tiny_config(tmp_path, corpus, 2)), "--out", str(first)]) == 0
    config = yaml.safe_load(tiny_config(tmp_path, corpus, 3).read_text())
    config.update(task="envelope")
    config["data"]["mixture"] = {"band": 1.0}
    config["model"].update(envelope_channels=8, envelope_bands=8, envelope_dilations=[1, 2], gap_fill_share=0.5)
    path = tmp_path / "envelope.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "none")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init-from" in err[0]
    start = first / "checkpoints" / "last.ckpt"
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "head"), "--init-from", str(start)]) == 0
    trained, saved = load_checkpoint(tmp_path / "head" / "checkpoints" / "last.ckpt")
    earlier, _ = load_checkpoint(start)
    assert saved["task"] == "envelope" and trained.config.gap_fill_share == 0.5
    for name, value in earlier.state_dict().items():
        assert torch.equal(value, trained.state_dict()[name]), name
    module = EnvelopeModule(saved)
    module.train()
    module.training_step(fixed_batch(corpus, {"band": 1.0}), 0).backward()
    grads = {name: p.grad for name, p in module.model.named_parameters()}
    assert all((g is not None and g.abs().sum() > 0) == name.startswith("envelope.") for name, g in grads.items())
    assert not any(m.training for name, m in module.model.named_modules() if name and not name.startswith("envelope"))
