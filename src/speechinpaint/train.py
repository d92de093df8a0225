"""Training: the LightningModule, the validation set of held-out voices, and the Trainer set-up.

The same command trains on CPU, one GPU, several GPUs or several nodes (DDP through Lightning, launched
by itself, torchrun or SLURM). The config is data: it is saved inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from .adversarial import SpectrogramDiscriminator, discriminator_loss, generator_losses, patch_weights
from .checkpoint import MODEL_FORMAT, load_checkpoint
from .corruptions import corrupt
from .data import CropConfig, CropDataset, read_manifest, speaker_streams
from .errors import SpeechInpaintError
from .model import InpaintUNet, ModelConfig, estimate_log_magnitude, frequency_ramp, network_estimate, normalise
from .restoration import missing_bins, restore_from_magnitude
from .spectral import MODEL_GRID, log_magnitude

VAL_KINDS = ("holes", "gaps", "band")
COMPRESSION = 0.3


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such config")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpeechInpaintError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for key in ("data", "model", "optim", "train"):
        if key not in (config or {}):
            raise SpeechInpaintError(f"{path}: the config needs a '{key}' section")
    try:
        ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as exc:
        raise SpeechInpaintError(f"{path}: the model section is not understood ({exc})") from None
    config.setdefault("name", path.stem)
    return config


def crop_config(data_cfg: dict) -> CropConfig:
    keys = ("crop_seconds", "mixture", "coverage", "loss_rate", "cutoff_hz", "gain_db", "speed", "shelf_db",
            "shelf_corner_hz", "silence_share", "silence_seconds")
    return CropConfig(**{k: (tuple(data_cfg[k]) if isinstance(data_cfg[k], list) else data_cfg[k])
                         for k in keys if k in data_cfg})


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
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.model = InpaintUNet(ModelConfig.from_dict(config["model"]))
        adv = config.get("adversarial")
        self.discriminator = SpectrogramDiscriminator(adv.get("channels", 32)) if adv else None
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

    @staticmethod
    def pointwise_losses(estimate: torch.Tensor, clean: torch.Tensor, hole: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms over the missing bins, each an average per missing bin:

        log_l1: L1 of the log-magnitude (the base loss; treats a quiet bin like a loud one);
        compressed: L1 of the magnitude compressed to the power 0.3, which weighs loud bins more, as a
          listener does (configs/ablations/compressed_magnitude.yaml);
        contrast: L1 of the log-magnitude's step from each bin to the next one up in frequency, where
          both are missing: it asks for the peaks and valleys of harmonics, which the L1-optimal
          estimate smooths away (configs/ablations/spectral_contrast.yaml);
        overshoot: how far the log-magnitude estimate lies above the clean one, zero below it. Added to
          log_l1 with weight w it moves the optimum from the median to the 1 / (2 + w) quantile of what
          the bin may hold: PESQ scores added energy far worse than missing energy (its asymmetric
          disturbance), and a band estimate turned down scored higher (configs/ablations/overshoot.yaml).
        """
        count = hole.sum().clamp_min(1.0)
        pairs = hole[:, 1:] * hole[:, :-1]
        step_error = (estimate.diff(dim=1) - clean.diff(dim=1)).abs()
        return {
            "log_l1": ((estimate - clean).abs() * hole).sum() / count,
            "compressed": ((torch.exp(COMPRESSION * estimate) - torch.exp(COMPRESSION * clean)).abs() * hole).sum() / count,
            "contrast": (step_error * pairs).sum() / pairs.sum().clamp_min(1.0),
            "overshoot": ((estimate - clean).clamp_min(0.0) * hole).sum() / count,
        }

    def hole_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.pointwise_losses(*self.estimate_batch(batch))

    def hole_l1(self, batch: dict) -> torch.Tensor:
        """L1 between estimated and clean log-magnitude, averaged over the missing bins."""
        return self.hole_losses(batch)["log_l1"]

    def training_step(self, batch, batch_idx):
        estimate, clean, hole = self.estimate_batch(batch)
        terms = self.pointwise_losses(estimate, clean, hole)
        weights = self.config.get("loss", {})
        extras = ("compressed", "contrast", "overshoot")
        loss = terms["log_l1"] + sum(weights.get(f"{name}_weight", 0.0) * terms[name] for name in extras)
        if self.discriminator is not None:
            loss = self.adversarial_step(estimate, clean, hole, loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["clean"]))
        return loss

    def adversarial_step(self, estimate, clean, hole, pointwise: torch.Tensor) -> torch.Tensor:
        """One discriminator step, then one network step on the pointwise loss plus the adversarial and
        feature-matching terms (manual optimisation; weights from the config's adversarial section)."""
        adv = self.config["adversarial"]
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
        loss = (pointwise + adv.get("adversarial_weight", 0.1) * terms["adversarial"]
                + adv.get("feature_weight", 1.0) * terms["feature_matching"])
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
        from .metrics import score

        rows = {k: [] for k in VAL_KINDS}
        self.model.eval()
        for kind, clean, corrupted, mask in self.val_clips:
            missing = missing_bins(mask)
            known = MODEL_GRID.stft(torch.from_numpy(corrupted))
            log_mag = log_magnitude(known)[None].to(self.device)
            miss = torch.from_numpy(missing)[None].to(self.device)
            with torch.no_grad():
                est = estimate_log_magnitude(self.model, log_mag, miss)[0].float().cpu()
            restored = restore_from_magnitude(corrupted, mask, est.exp(), missing,
                                              self.config["train"].get("phase_iters", 16))
            rows[kind].append(score(clean, restored, mask))
        pesq_means = []
        for kind, scores in rows.items():
            for metric in ("stoi", "pesq", "lsd"):
                values = [s[metric] for s in scores if s.get(metric) is not None]
                if values:
                    self.log(f"val_{kind}/{metric}", float(np.mean(values)), sync_dist=True)
                    if metric == "pesq":
                        pesq_means.append(float(np.mean(values)))
        # The checkpoint to keep is chosen on what a listener hears: the log-magnitude L1 stops
        # following PESQ once the network has learnt the easy part (seen in the first training run).
        self.log("val/pesq", float(np.mean(pesq_means)) if pesq_means else 0.0, sync_dist=True)

    def configure_optimizers(self):
        opt, sched = warmup_cosine(self.model.parameters(), self.config)
        if self.discriminator is None:
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        adv = self.config["adversarial"]
        disc_opt = torch.optim.AdamW(self.discriminator.parameters(), lr=adv.get("lr", 4e-4), betas=(0.5, 0.9))
        return [opt, disc_opt], [{"scheduler": sched, "interval": "step"}]


def warmup_cosine(parameters, config: dict):
    """(AdamW, its per-step schedule) from the config's optim section: a linear warm-up, then a cosine
    down to final_lr_fraction of the rate at max_steps."""
    o = config["optim"]
    opt = torch.optim.AdamW(parameters, lr=o["lr"], weight_decay=o.get("weight_decay", 0.0))
    total = config["train"]["max_steps"]
    warmup = o.get("warmup_steps", 200)
    floor = o.get("final_lr_fraction", 0.05)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class EpochSeeder(Callback):
    """Tell the crop dataset which epoch it is, so crops differ between epochs but not between runs."""

    def on_train_epoch_start(self, trainer, pl_module):
        trainer.train_dataloader.dataset.set_epoch(trainer.current_epoch)


class SaveOnInterrupt(Callback):
    """A Ctrl-C or SIGTERM writes last.ckpt, so --resume loses nothing."""

    def __init__(self, path: Path):
        self.path = path

    def on_exception(self, trainer, pl_module, exception):
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path)


def build_data(config: dict):
    d = config["data"]
    seed = config.get("seed", 0)
    cfg = crop_config(d)
    train_streams = speaker_streams(read_manifest(d["manifest"], "train"))
    valid_streams = speaker_streams(read_manifest(d["manifest"], "valid"))
    train_set = CropDataset(train_streams, cfg, d["crops_per_epoch"], seed)
    # Validation crops are never augmented: the held-out loss must mean the same in every run.
    plain = dataclasses.replace(cfg, speed=(1.0, 1.0), shelf_db=(0.0, 0.0))
    val_set = CropDataset(valid_streams, plain, d.get("val_crops", 64), seed + 1)
    segments = validation_segments(valid_streams, d.get("val_segments", 6), d.get("val_seconds", 6.0), seed)
    clips = []
    for i, clean in enumerate(segments):
        for kind in VAL_KINDS:
            corrupted, mask = corrupt(clean, kind, seed=1000 + i)
            clips.append((kind, clean, corrupted, mask))
    return (*data_loaders(train_set, val_set, d), clips)


def data_loaders(train_set, val_set, data_cfg: dict) -> tuple[DataLoader, DataLoader]:
    """The training loader (shuffled, whole batches) and the validation loader, as the data section sets."""
    workers = data_cfg.get("workers", 0)
    loader = lambda ds, shuffle: DataLoader(  # noqa: E731
        ds, batch_size=data_cfg["batch_size"], shuffle=shuffle, num_workers=workers, drop_last=shuffle,
        persistent_workers=workers > 0,
    )
    return loader(train_set, True), loader(val_set, False)


def start_from(module: L.LightningModule, path: str) -> None:
    """Fine-tuning: begin with the weights of an earlier checkpoint (.ckpt or shipped .pt) of the same network."""
    model, _ = load_checkpoint(path, module.hparams.format)
    # Compared as ModelConfig, so a setting written out in one and left to its default in the other matches.
    if model.config != module.model.config:
        raise SpeechInpaintError(f"{path}: its network ({model.config.to_dict()}) is not this config's "
                                 f"({module.model.config.to_dict()})")
    module.model.load_state_dict(model.state_dict())


def run_train(args) -> int:
    config = load_config(args.config)
    if args.data:
        config["data"]["manifest"] = str(Path(args.data) / "manifest.csv") if Path(args.data).is_dir() else args.data
    t = config["train"]
    if args.max_minutes is not None:
        t["max_minutes"] = args.max_minutes
    out = Path(args.out or Path("runs") / config["name"])
    last = out / "checkpoints" / "last.ckpt"
    if args.resume and not last.is_file():
        raise SpeechInpaintError(f"{last}: nothing to resume from")
    if not args.resume and last.is_file():
        raise SpeechInpaintError(f"{out} already holds a run; pass --resume to continue it or --out for a new one")
    L.seed_everything(config.get("seed", 0), workers=True)
    torch.set_num_threads(int(os.environ.get("SPEECHINPAINT_THREADS", torch.get_num_threads())))
    task = config.get("task", "inpaint")
    if task == "holes_detector":
        from .detector_training import HoleDetectorModule, build_detector_data

        train_loader, val_loader = build_detector_data(config)
        module = HoleDetectorModule(config)
    elif task == "inpaint":
        train_loader, val_loader, clips = build_data(config)
        module = InpaintingModule(config)
        module.val_clips = clips
    else:
        raise SpeechInpaintError(f"{args.config}: task {task!r} is not 'inpaint' or 'holes_detector'")
    if t.get("init_from") and not args.resume:
        start_from(module, t["init_from"])
    module.model.to(memory_format=torch.channels_last)
    accelerator = t.get("accelerator", "auto")
    on_gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    precision = t.get("precision_gpu", "bf16-mixed") if on_gpu else t.get("precision", "bf16-mixed")
    if config.get("adversarial") and str(precision) == "16-mixed":
        # The discriminator steps its raw optimizer, which a float16 gradient scaler would not unscale.
        raise SpeechInpaintError(f"{args.config}: adversarial training needs precision bf16-mixed or 32, not 16-mixed")
    devices = args.devices or t.get("devices", "auto")
    n_dev = int(devices) if str(devices).isdigit() else 1
    strategy = "ddp" if n_dev > 1 or args.num_nodes > 1 else "auto"
    checkpoints = [
        ModelCheckpoint(out / "checkpoints", filename="best", monitor=module.MONITOR, mode="max", save_top_k=1),
        ModelCheckpoint(out / "checkpoints", save_last=True, save_top_k=0,
                        train_time_interval=timedelta(minutes=t.get("checkpoint_minutes", 5))),
    ]
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=args.num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=t["max_steps"],
        max_epochs=-1,
        max_time=timedelta(minutes=t["max_minutes"]) if t.get("max_minutes") else None,
        val_check_interval=min(t.get("val_every_steps", 500), config["data"]["crops_per_epoch"] // config["data"]["batch_size"]),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=CSVLogger(out, name="logs"),
        callbacks=[*checkpoints, EpochSeeder(), SaveOnInterrupt(last)],
        log_every_n_steps=t.get("log_every_steps", 25),
        default_root_dir=out,
        enable_progress_bar=t.get("progress_bar", True),
    )
    start = time.time()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if args.resume else None)
    if trainer.is_global_zero:
        print(f"trained {trainer.global_step} steps in {(time.time() - start) / 60:.1f} min; "
              f"best {checkpoints[0].best_model_path or '-'}; last {last}")
    return 0
