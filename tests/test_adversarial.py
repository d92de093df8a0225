"""Adversarial fine-tuning: the discriminator's losses look only at missing patches, and a tiny run trains,
saves the discriminator beside the network, resumes, and counts the network's steps."""

import pytest
import torch
import yaml

from speechinpaint.training.adversarial import SpectrogramDiscriminator, discriminator_loss, generator_losses, patch_weights
from speechinpaint.checkpoint import load_checkpoint
from speechinpaint.cli import main

from test_train import tiny_config


def test_patches_without_missing_bins_do_not_count():
    hole = torch.zeros(2, 64, 48)
    hole[:, 8:24, 10:30] = 1.0
    disc = SpectrogramDiscriminator(channels=8)
    logits, features = disc(torch.randn(2, 3, 64, 48))
    weights = patch_weights(hole, logits)
    assert weights.shape == logits.shape and weights.max() == 1.0 and (weights == 0).float().mean() > 0.5
    real, fake = torch.randn_like(logits), torch.randn_like(logits)
    base = discriminator_loss(real, fake, weights)
    # Changing logits of intact patches leaves the loss as it was; changing a missing patch does not.
    outside = weights == 0
    assert discriminator_loss(real + 5 * outside, fake - 5 * outside, weights) == pytest.approx(base.item())
    inside = weights == 1
    assert discriminator_loss(real, fake + 5 * inside, weights) > base
    # A restoration identical to the clean input has no feature-matching error.
    assert generator_losses(fake, weights, features, features)["feature_matching"].item() == 0.0


def adversarial_config(tmp_path, corpus, steps: int, precision: str = "bf16-mixed"):
    path = tiny_config(tmp_path, corpus, steps)
    config = yaml.safe_load(path.read_text())
    config["adversarial"] = {"channels": 4, "lr": 1e-3, "adversarial_weight": 0.1, "feature_weight": 1.0}
    config["train"].update(precision=precision, log_every_steps=1)
    path.write_text(yaml.safe_dump(config))
    return path


def test_adversarial_run_trains_resumes_and_ships_only_the_network(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(adversarial_config(tmp_path, corpus, 4)), "--out", str(out)]) == 0
    last = out / "checkpoints" / "last.ckpt"
    blob = torch.load(last, weights_only=False)
    assert blob["global_step"] == 4  # network steps; the discriminator's own steps are not counted
    assert len(blob["optimizer_states"]) == 2
    assert any(k.startswith("discriminator.") for k in blob["state_dict"])
    metrics = (next(out.glob("logs/version_*")) / "metrics.csv").read_text()
    assert "train/disc_loss" in metrics.splitlines()[0] and "train/feature_matching" in metrics.splitlines()[0]
    model, _ = load_checkpoint(last)  # the discriminator is left out of the inference network
    assert not any(k.startswith("discriminator") for k in model.state_dict())
    assert main(["train", "--config", str(adversarial_config(tmp_path, corpus, 6)), "--out", str(out), "--resume"]) == 0
    assert torch.load(last, weights_only=False)["global_step"] == 6
    # A float16 gradient scaler would not unscale the discriminator's raw optimizer step: refused in one line.
    capsys.readouterr()
    bad = adversarial_config(tmp_path, corpus, 4, precision="16-mixed")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "fp16")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16-mixed" in err[0]
