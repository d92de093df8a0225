"""Training the envelope head (model.EnvelopeHead) on a trained, frozen U-Net: its LightningModule.

Chosen by `task: envelope` (configs/envelope.yaml), which starts from an inpainting network trained
without the head (train.init_from). Only the head learns, on crops with a missing upper band, and its
target is the clean spectral envelope (dsp.spectral.spectral_envelope) in the missing bins: the detail
under it is copied up at inference, so the head is judged on the envelope alone. The loss is the L1
plus loss.overshoot_weight times the overshoot, since a band too loud is heard as worse than one too
quiet. The best checkpoint is chosen on PESQ of fixed held-out segments restored as the Inpainter
restores them.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..checkpoint import MODEL_FORMAT
from ..corruptions import corrupt
from ..dsp.spectral import MODEL_GRID, log_magnitude, spectral_envelope
from ..inpainter import Inpainter
from ..metrics import score
from ..model import InpaintUNet, network_outputs
from .config import TrainingConfig
from .data import data_loaders
from .inpainting import crops_and_segments
from .optim import warmup_cosine

VAL_METRICS = ("pesq", "visqol", "lsd")


class EnvelopeModule(L.LightningModule):
    MONITOR = "val/pesq"

    def __init__(self, config: dict, format: str = MODEL_FORMAT):
        """config: the resolved training config as plain data; format: the checkpoint's network tag."""
        super().__init__()
        self.save_hyperparameters()
        self.settings = TrainingConfig.from_dict(config)
        self.model = InpaintUNet(self.settings.model)
        if self.model.envelope is None:
            raise ValueError("task envelope needs model.envelope_channels above 0")
        for name, p in self.model.named_parameters():
            p.requires_grad_(name.startswith("envelope."))
        self.train()  # Lightning keeps each submodule's mode as it finds it
        self.val_clips: list[tuple[np.ndarray, np.ndarray, object]] = []

    def train(self, mode: bool = True):
        """The frozen U-Net stays in eval mode (its batch norms keep their statistics)."""
        super().train(mode)
        for name, child in self.model.named_children():
            if name != "envelope":
                child.eval()
        return self

    def envelope_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """L1 and overshoot of the head's envelope against the clean one, over the missing bins below Nyquist."""
        clean = spectral_envelope(log_magnitude(MODEL_GRID.stft(batch["clean"])))[:, :-1]
        corrupted = log_magnitude(MODEL_GRID.stft(batch["corrupted"]))
        _, envelope = network_outputs(self.model, corrupted, batch["missing"], envelope=True)
        hole = batch["missing"][:, :-1].float()
        count = hole.sum().clamp_min(1.0)
        error = envelope - clean
        return {"l1": (error.abs() * hole).sum() / count, "overshoot": (error.clamp_min(0) * hole).sum() / count}

    def training_step(self, batch, batch_idx):
        terms = self.envelope_losses(batch)
        loss = terms["l1"] + self.settings.loss.overshoot_weight * terms["overshoot"]
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["clean"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.envelope_losses(batch)["l1"], prog_bar=True, sync_dist=True,
                 batch_size=len(batch["clean"]))

    def on_validation_epoch_end(self):
        """PESQ / ViSQOL / LSD of fixed held-out segments with a missing band, restored by the Inpainter."""
        if not self.val_clips or self.trainer.sanity_checking:
            return
        restorer = Inpainter(self.model, self.settings.to_dict(), device=self.device,
                             iterations=self.settings.train.phase_iters)
        rows = [score(clean, restorer.restore_16k(corrupted, mask), mask, VAL_METRICS)
                for clean, corrupted, mask in self.val_clips]
        for metric in VAL_METRICS:
            values = [r[metric] for r in rows if r.get(metric) is not None]
            self.log(f"val_band/{metric}", float(np.mean(values)) if values else 0.0, sync_dist=True)
        values = [r["pesq"] for r in rows if r.get("pesq") is not None]
        self.log("val/pesq", float(np.mean(values)) if values else 0.0, sync_dist=True)

    def configure_optimizers(self):
        opt, sched = warmup_cosine(self.model.envelope.parameters(), self.settings.optim, self.settings.train.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def envelope_task(settings: TrainingConfig) -> tuple[EnvelopeModule, DataLoader, DataLoader]:
    """The envelope head's module (with its fixed validation clips, each with a missing band) and its loaders."""
    train_set, val_set, segments = crops_and_segments(settings)
    module = EnvelopeModule(settings.to_dict())
    module.val_clips = [(clean, *corrupt(clean, "band", seed=1000 + i)) for i, clean in enumerate(segments)]
    return (module, *data_loaders(train_set, val_set, settings.data))
