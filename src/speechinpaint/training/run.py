"""`speechinpaint train`: the Trainer set-up shared by both networks, looked up by the config's task.

The same command trains on CPU, one GPU, several GPUs or several nodes (DDP through Lightning, launched
by itself, torchrun or SLURM). The config is data: its resolved form is saved inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from ..checkpoint import INFERENCE_SETTINGS, load_checkpoint
from ..errors import SpeechInpaintError
from .config import TrainingConfig, load_config
from .detector import detector_task
from .envelope import envelope_task
from .inpainting import inpainting_task

# task -> builder of (LightningModule, training loader, validation loader) from the resolved config.
TASKS: dict[str, Callable[[TrainingConfig], tuple[L.LightningModule, DataLoader, DataLoader]]] = {
    "inpaint": inpainting_task,
    "holes_detector": detector_task,
    "envelope": envelope_task,
}


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


def start_from(module: L.LightningModule, path: str) -> None:
    """Fine-tuning: begin with the weights of an earlier checkpoint (.ckpt or shipped .pt) of the same network.

    A network trained without the envelope head may start one: its weights are all taken, and the head
    and the inference settings (gap_fill_share) are this config's.
    """
    model, _ = load_checkpoint(path, module.hparams.format)
    ours = module.model.config
    # Compared as ModelConfig, so a setting written out in one and left to its default in the other
    # matches; inference settings are this config's whatever the checkpoint says.
    theirs = dataclasses.replace(model.config, **{f: getattr(ours, f) for f in INFERENCE_SETTINGS})
    head = {f: getattr(ours, f) for f in ("envelope_channels", "envelope_bands", "envelope_dilations")}
    adds_head = theirs.envelope_channels == 0 and dataclasses.replace(theirs, **head) == ours
    if theirs != ours and not adds_head:
        raise SpeechInpaintError(f"{path}: its network ({model.config.to_dict()}) is not this config's "
                                 f"({ours.to_dict()})")
    missing, unexpected = module.model.load_state_dict(model.state_dict(), strict=not adds_head)
    if unexpected or any(not k.startswith("envelope.") for k in missing):
        raise SpeechInpaintError(f"{path}: its weights do not fit this config's network")


def train(config: str | Path, data: str | Path | None = None, out: str | Path | None = None, resume: bool = False,
          devices: int | str | None = None, num_nodes: int = 1, max_minutes: float | None = None,
          init_from: str | Path | None = None) -> Path:
    """Train the network a config names; returns the run folder.

    data: a corpus folder or manifest.csv in place of the config's; out: the run folder (default
    runs/NAME); resume: continue from its last checkpoint; devices, num_nodes: Lightning's; max_minutes:
    stop after this wall time; init_from: the weights to start from, in place of the config's.
    """
    settings = load_config(config)
    if settings.task not in TASKS:
        raise SpeechInpaintError(f"{config}: task {settings.task!r} is not one of {', '.join(TASKS)}")
    if data:
        settings.data.manifest = str(Path(data) / "manifest.csv") if Path(data).is_dir() else str(data)
    t = settings.train
    if max_minutes is not None:
        t.max_minutes = max_minutes
    if init_from is not None:
        t.init_from = str(init_from)
    if settings.task == "envelope" and not t.init_from:
        raise SpeechInpaintError(f"{config}: task envelope trains a head on a trained network; set train.init_from "
                                 "or pass --init-from")
    out = Path(out or Path("runs") / settings.name)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise SpeechInpaintError(f"{last}: nothing to resume from")
    if not resume and last.is_file():
        raise SpeechInpaintError(f"{out} already holds a run; pass --resume to continue it or --out for a new one")
    L.seed_everything(settings.seed, workers=True)
    torch.set_num_threads(int(os.environ.get("SPEECHINPAINT_THREADS", torch.get_num_threads())))
    module, train_loader, val_loader = TASKS[settings.task](settings)
    if t.init_from and not resume:
        start_from(module, t.init_from)
    module.model.to(memory_format=torch.channels_last)
    on_gpu = torch.cuda.is_available() and t.accelerator in ("auto", "gpu", "cuda")
    precision = t.precision_gpu if on_gpu else t.precision
    if settings.adversarial and str(precision) == "16-mixed":
        # The discriminator steps its raw optimizer, which a float16 gradient scaler would not unscale.
        raise SpeechInpaintError(f"{config}: adversarial training needs precision bf16-mixed or 32, not 16-mixed")
    devices = devices or t.devices or "auto"
    n_dev = int(devices) if str(devices).isdigit() else 1
    strategy = "ddp" if n_dev > 1 or num_nodes > 1 else "auto"
    checkpoints = [
        ModelCheckpoint(out / "checkpoints", filename="best", monitor=module.MONITOR, mode="max", save_top_k=1),
        ModelCheckpoint(out / "checkpoints", save_last=True, save_top_k=0,
                        train_time_interval=timedelta(minutes=t.checkpoint_minutes)),
    ]
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=t.max_steps,
        max_epochs=-1,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes else None,
        val_check_interval=min(t.val_every_steps, settings.data.crops_per_epoch // settings.data.batch_size),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=CSVLogger(out, name="logs"),
        callbacks=[*checkpoints, EpochSeeder(), SaveOnInterrupt(last)],
        log_every_n_steps=t.log_every_steps,
        default_root_dir=out,
        enable_progress_bar=t.progress_bar,
    )
    start = time.time()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None)
    if trainer.is_global_zero:
        print(f"trained {trainer.global_step} steps in {(time.time() - start) / 60:.1f} min; "
              f"best {checkpoints[0].best_model_path or '-'}; last {last}")
    return out
