"""The inpainting network's training: its LightningModule and the validation on held-out voices.

The training loss is taken on random crops (training.data); validation adds STOI / PESQ / LSD on fixed
6 s segments of the held-out voices after phase reconstruction, which is what the best checkpoint is
chosen on.
"""

from __future__ import annotations

import dataclasses

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..checkpoint import MODEL_FORMAT
from ..corpora.manifest import read_manifest
from ..corpora.streams import speaker_streams
from ..corruptions import KINDS, corrupt
from ..dsp.spectral import MODEL_GRID, log_magnitude
from ..masks import missing_bins
from ..metrics import score
from ..model import InpaintUNet, estimate_log_magnitude, frequency_ramp, network_estimate, normalise
from ..reconstruction import restore_from_magnitude
from .adversarial import SpectrogramDiscriminator, discriminator_loss, generator_losses, patch_weights
from .config import TrainingConfig
from .data import CropDataset, data_loaders
from .losses import pointwise_losses, weighted_loss
from .optim import warmup_cosine

VAL_KINDS = KINDS


def validation_segments(streams: dict[str, np.ndarray], count: int, seconds: float, seed: int) -> list[np.ndarray]:
    """A fixed set of segments spread over the held-out voices, the same in every run."""
    rng = np.random.default_rng(seed)
    n = int(seconds * MODEL_GRID.sample_rate)
    speakers = sorted(s for s in streams if len(streams[s]) > n)
    out = []
    for i in range(count):
        stream = streams[speakers[i % len(speakers)]]
        start = int(rng.integers(0, len(stream) - n))
        out.append(stream[start:start + n].copy())
    return out


class InpaintingModule(L.LightningModule):
    MONITOR = "val/pesq"  # the held-out quality the "best" checkpoint is chosen on

    def __init__(self, config: dict, format: str = MODEL_FORMAT):
        """config: a resolved training config as plain data (TrainingConfig.to_dict), which the
        checkpoint stores; format: the tag of the network the checkpoint holds."""
        super().__init__()
        self.save_hyperparameters()
        self.settings = TrainingConfig.from_dict(config)
        self.model = InpaintUNet(self.settings.model)
        adv = self.settings.adversarial
        self.discriminator = SpectrogramDiscriminator(adv.channels) if adv else None
        # Two optimizers take turns on each batch, so adversarial training steps them by hand.
        self.automatic_optimization = self.discriminator is None
        self.val_clips: list[tuple[str, np.ndarray, np.ndarray, object]] = []

    def estimate_batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, clean, hole) over the bins below Nyquist: the network's log-magnitude, the clean
        log-magnitude, and the missing bins as 1.0."""
        clean = log_magnitude(MODEL_GRID.stft(batch["clean"]))[:, :-1]
        corrupted = log_magnitude(MODEL_GRID.stft(batch["corrupted"]))
        missing = batch["missing"]
        return network_estimate(self.model, corrupted, missing), clean, missing[:, :-1].float()

    def hole_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return pointwise_losses(*self.estimate_batch(batch))

    def hole_l1(self, batch: dict) -> torch.Tensor:
        """L1 between estimated and clean log-magnitude, averaged over the missing bins."""
        return self.hole_losses(batch)["log_l1"]

    def training_step(self, batch, batch_idx):
        estimate, clean, hole = self.estimate_batch(batch)
        loss = weighted_loss(pointwise_losses(estimate, clean, hole), self.settings.loss)
        if self.discriminator is not None:
            loss = self.adversarial_step(estimate, clean, hole, loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["clean"]))
        return loss

    def adversarial_step(self, estimate, clean, hole, pointwise: torch.Tensor) -> torch.Tensor:
        """One discriminator step, then one network step on the pointwise loss plus the adversarial and
        feature-matching terms (manual optimisation; weights from the config's adversarial section)."""
        adv = self.settings.adversarial
        net_opt, disc_opt = self.optimizers()
        _, mean, std = normalise(clean, hole > 0)
        ramp = frequency_ramp(clean)

        def disc_input(log_mag):
            return torch.stack([(log_mag - mean) / std, hole, ramp], dim=1)

        restored = torch.where(hole > 0, estimate, clean)
        real_logits, real_features = self.discriminator(disc_input(clean))
        fake_logits, _ = self.discriminator(disc_input(restored.detach()))
        weights = patch_weights(hole, real_logits)
        disc_loss = discriminator_loss(real_logits, fake_logits, weights)
        disc_opt.zero_grad()
        self.manual_backward(disc_loss)
        # The raw optimizer, so the trainer's step count (max_steps, validation, logs) stays the network's:
        # in manual optimisation Lightning counts every LightningOptimizer.step.
        disc_opt.optimizer.step()

        fake_logits, fake_features = self.discriminator(disc_input(restored))
        terms = generator_losses(fake_logits, weights, fake_features, real_features)
        loss = pointwise + adv.adversarial_weight * terms["adversarial"] + adv.feature_weight * terms["feature_matching"]
        net_opt.zero_grad()
        self.manual_backward(loss)
        net_opt.step()
        self.lr_schedulers().step()
        self.log_dict({"train/disc_loss": disc_loss, "train/pointwise": pointwise,
                       "train/adversarial": terms["adversarial"], "train/feature_matching": terms["feature_matching"]},
                      batch_size=len(clean))
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.hole_l1(batch)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["clean"]))

    def on_validation_epoch_end(self):
        """STOI / PESQ / LSD on fixed 6 s held-out segments, after phase reconstruction, per corruption."""
        if not self.val_clips or self.trainer.sanity_checking:
            return
        rows = {k: [] for k in VAL_KINDS}
        self.model.eval()
        for kind, clean, corrupted, mask in self.val_clips:
            missing = missing_bins(mask)
            known = MODEL_GRID.stft(torch.from_numpy(corrupted))
            log_mag = log_magnitude(known)[None].to(self.device)
            miss = torch.from_numpy(missing)[None].to(self.device)
            with torch.no_grad():
                est = estimate_log_magnitude(self.model, log_mag, miss)[0].float().cpu()
            restored = restore_from_magnitude(corrupted, mask, est.exp(), missing, self.settings.train.phase_iters)
            rows[kind].append(score(clean, restored, mask, ("stoi", "pesq", "lsd")))
        pesq_means = []
        for kind, scores in rows.items():
            for metric in ("stoi", "pesq", "lsd"):
                values = [s[metric] for s in scores if s.get(metric) is not None]
                if values:
                    self.log(f"val_{kind}/{metric}", float(np.mean(values)), sync_dist=True)
                    if metric == "pesq":
                        pesq_means.append(float(np.mean(values)))
        # The checkpoint to keep is chosen on what a listener hears: the log-magnitude L1 stops
        # following PESQ once the network has learnt the easy part.
        self.log("val/pesq", float(np.mean(pesq_means)) if pesq_means else 0.0, sync_dist=True)

    def configure_optimizers(self):
        opt, sched = warmup_cosine(self.model.parameters(), self.settings.optim, self.settings.train.max_steps)
        if self.discriminator is None:
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        adv = self.settings.adversarial
        disc_opt = torch.optim.AdamW(self.discriminator.parameters(), lr=adv.lr, betas=(0.5, 0.9))
        return [opt, disc_opt], [{"scheduler": sched, "interval": "step"}]


def crops_and_segments(settings: TrainingConfig) -> tuple[CropDataset, CropDataset, list[np.ndarray]]:
    """The training crops of the train voices, and of the held-out voices the validation crops and the
    fixed validation segments (data section; shared by the networks validated by restoring)."""
    d, seed = settings.data, settings.seed
    train_streams = speaker_streams(read_manifest(d.manifest, "train"))
    valid_streams = speaker_streams(read_manifest(d.manifest, "valid"))
    train_set = CropDataset(train_streams, d, d.crops_per_epoch, seed)
    # Validation crops are never augmented: the held-out loss must mean the same in every run.
    plain = dataclasses.replace(d, speed=(1.0, 1.0), shelf_db=(0.0, 0.0))
    val_set = CropDataset(valid_streams, plain, d.val_crops, seed + 1)
    return train_set, val_set, validation_segments(valid_streams, d.val_segments, d.val_seconds, seed)


def inpainting_task(settings: TrainingConfig) -> tuple[InpaintingModule, DataLoader, DataLoader]:
    """The inpainting network's module (with its fixed validation clips) and its loaders."""
    train_set, val_set, segments = crops_and_segments(settings)
    clips = []
    for i, clean in enumerate(segments):
        for kind in VAL_KINDS:
            corrupted, mask = corrupt(clean, kind, seed=1000 + i)
            clips.append((kind, clean, corrupted, mask))
    module = InpaintingModule(settings.to_dict())
    module.val_clips = clips
    return (module, *data_loaders(train_set, val_set, settings.data))
