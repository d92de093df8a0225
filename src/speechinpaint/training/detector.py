"""Training the holes detector: its crops and its LightningModule (the Trainer set-up is run.py's).

Chosen by `task: holes_detector` in a config (configs/holes_detector.yaml). The crops are the inpainting
network's (training.data.CropDataset), every one rounded to 16-bit samples, as the files a user holds are. Only
holes are targets. A share of crops is left clean, so marking quiet speech, pauses and consonants costs
loss; crops with lost packets or a missing band have no target either, since other detectors find
those and the holes detector must not mark around them; and some crops hold digital silence, which
is no damage (no target in its frames, as detection never marks them).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..audio import as_pcm16
from ..checkpoint import DETECTOR_FORMAT
from ..corpora.manifest import read_manifest
from ..corpora.streams import speaker_streams
from ..hole_detector import THRESHOLD, detector_features, silent_frames
from ..model import InpaintUNet
from .config import TrainingConfig
from .data import CropDataset, data_loaders
from .optim import warmup_cosine


class DetectorCrops(Dataset):
    """Items of a CropDataset as (audio, target): the 16-bit corrupted crop and, for holes, its missing
    cells below Nyquist outside digital silence; for a `clean_share` of the items, the 16-bit clean
    crop and no cell."""

    def __init__(self, crops: CropDataset, clean_share: float):
        self.crops = crops
        self.clean_share = clean_share

    def set_epoch(self, epoch: int) -> None:
        self.crops.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict:
        item = self.crops[index]
        # Its own stream of the crop's seed, so the choice is the same in every worker and after a resume.
        rng = np.random.default_rng([self.crops.seed, self.crops.epoch, index, 1])
        clean = rng.random() < self.clean_share
        audio = as_pcm16(item["clean" if clean else "corrupted"].numpy())
        target = item["missing"][:-1].clone()
        if clean or item["kind"] != "holes":
            target[:] = False
        target[:, torch.from_numpy(silent_frames(audio))] = False
        return {"audio": torch.from_numpy(audio), "target": target}


def detector_task(settings: TrainingConfig) -> tuple["HoleDetectorModule", DataLoader, DataLoader]:
    """The detector's module and its loaders: train-split voices, and the held-out voices' crops for val/iou."""
    d, seed, share = settings.data, settings.seed, settings.detector.clean_share
    train = DetectorCrops(CropDataset(speaker_streams(read_manifest(d.manifest, "train")), d, d.crops_per_epoch, seed),
                          share)
    valid = DetectorCrops(CropDataset(speaker_streams(read_manifest(d.manifest, "valid")), d, d.val_crops, seed + 1),
                          share)
    return (HoleDetectorModule(settings.to_dict()), *data_loaders(train, valid, d))


class HoleDetectorModule(L.LightningModule):
    """Binary cross-entropy per cell; validation logs the IoU of the marked and the true cells."""

    MONITOR = "val/iou"

    def __init__(self, config: dict, format: str = DETECTOR_FORMAT):
        """config: a resolved training config as plain data, which the checkpoint stores."""
        super().__init__()
        self.save_hyperparameters()
        self.settings = TrainingConfig.from_dict(config)
        self.model = InpaintUNet(self.settings.model)
        self.counts = torch.zeros(2)

    def loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(detector_features(batch["audio"])).float()
        return F.binary_cross_entropy_with_logits(logits, batch["target"].float()), logits

    def training_step(self, batch, batch_idx):
        loss, _ = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["audio"]))
        return loss

    def on_validation_epoch_start(self):
        self.counts = torch.zeros(2, device=self.device)

    def validation_step(self, batch, batch_idx):
        loss, logits = self.loss(batch)
        marked, true = logits > np.log(THRESHOLD / (1 - THRESHOLD)), batch["target"]
        self.counts += torch.stack([(marked & true).sum(), (marked | true).sum()]).float()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["audio"]))

    def on_validation_epoch_end(self):
        counts = self.all_gather(self.counts).reshape(-1, 2).sum(0)
        self.log("val/iou", float(counts[0] / counts[1].clamp_min(1.0)))

    def configure_optimizers(self):
        opt, sched = warmup_cosine(self.model.parameters(), self.settings.optim, self.settings.train.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
