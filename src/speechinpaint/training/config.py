"""A training config: YAML sections read strictly into dataclasses, and `base:` inheritance.

A config may start from another (`base: ../default.yaml`, relative to the file): its sections are
merged key by key over the base's, so an ablation lists only what it changes. A value that is itself a
mapping (the corruption mixture) replaces the base's whole. The run's name comes from the file itself
(its `name`, else its file name), never from its base. The resolved config, defaults included, is what
checkpoints store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import SpeechInpaintError
from ..model import ModelConfig
from ..sections import from_mapping, to_mapping
from .data import DataConfig

SECTIONS = ("data", "model", "optim", "train", "loss", "adversarial", "detector")
TOP_LEVEL = ("name", "task", "seed", "base", *SECTIONS)
# The sections every config (after its bases) must have.
REQUIRED = ("data", "model", "optim", "train")


@dataclass
class OptimConfig:
    """AdamW with a linear warm-up, then a cosine down to final_lr_fraction of lr at train.max_steps."""

    lr: float = 0.002
    weight_decay: float = 0.0
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05


@dataclass
class TrainConfig:
    """The Trainer's settings: length, precision, devices, validation and checkpoint intervals."""

    max_steps: int = 6000
    max_minutes: float | None = None
    precision: str = "bf16-mixed"
    precision_gpu: str = "bf16-mixed"
    accelerator: str = "auto"
    devices: int | str | None = None  # None: every device the accelerator has ("auto")
    val_every_steps: int = 500
    checkpoint_minutes: float = 5
    log_every_steps: int = 25
    progress_bar: bool = True
    # Phase iterations of the validation restorations (fewer than inference's, for speed).
    phase_iters: int = 16
    # Fine-tuning: the weights of an earlier checkpoint (.ckpt or shipped .pt) of the same network.
    init_from: str | None = None


@dataclass
class LossConfig:
    """Weights of the loss terms added to the log-magnitude L1 (training.losses)."""

    compressed_weight: float = 0.0
    contrast_weight: float = 0.0
    overshoot_weight: float = 0.0


@dataclass
class AdversarialConfig:
    """The spectrogram discriminator trained beside the network (training.adversarial)."""

    channels: int = 32
    lr: float = 4e-4
    adversarial_weight: float = 0.1
    feature_weight: float = 1.0


@dataclass
class DetectorConfig:
    """The holes detector's crops: the share left clean, with no target."""

    clean_share: float = 0.3


@dataclass
class TrainingConfig:
    name: str
    task: str = "inpaint"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    adversarial: AdversarialConfig | None = None
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    @classmethod
    def from_dict(cls, config: dict, source: str = "config") -> "TrainingConfig":
        """Every section read strictly; an unknown section or key is one error naming it."""
        if not isinstance(config, dict):
            raise SpeechInpaintError(f"{source}: a config is a mapping of sections")
        unknown = sorted(set(config) - set(TOP_LEVEL))
        if unknown:
            raise SpeechInpaintError(f"{source}: unknown section {unknown[0]!r}; known: {', '.join(TOP_LEVEL)}")
        for key in REQUIRED:
            if key not in config:
                raise SpeechInpaintError(f"{source}: the config needs a '{key}' section")
        name, task, seed = config.get("name", Path(source).stem), config.get("task", "inpaint"), config.get("seed", 0)
        if not isinstance(name, str) or not isinstance(task, str) or isinstance(seed, bool) or not isinstance(seed, int):
            raise SpeechInpaintError(f"{source}: name and task must be text and seed a whole number")
        adversarial = config.get("adversarial")
        return cls(
            name=name, task=task, seed=seed,
            data=from_mapping(DataConfig, config["data"], "data", source),
            model=ModelConfig.from_dict(config["model"], source),
            optim=from_mapping(OptimConfig, config["optim"], "optim", source),
            train=from_mapping(TrainConfig, config["train"], "train", source),
            loss=from_mapping(LossConfig, config.get("loss"), "loss", source),
            adversarial=None if adversarial is None else from_mapping(AdversarialConfig, adversarial, "adversarial", source),
            detector=from_mapping(DetectorConfig, config.get("detector"), "detector", source),
        )

    def to_dict(self) -> dict:
        """The resolved config as plain data (what a checkpoint stores and from_dict reads back)."""
        out = {"name": self.name, "task": self.task, "seed": self.seed}
        for key in SECTIONS:
            value = getattr(self, key)
            if value is not None:
                out[key] = to_mapping(value)
        return out


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such config")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpeechInpaintError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise SpeechInpaintError(f"{path}: a config is a mapping of sections")
    return config


def merged_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The config file's mapping over its bases', merged section by section (see the module doc)."""
    path = Path(path)
    if path.resolve() in _seen:
        raise SpeechInpaintError(f"{path}: its bases lead back to itself")
    config = _read_yaml(path)
    base = config.pop("base", None)
    if base is None:
        return config
    if not isinstance(base, str):
        raise SpeechInpaintError(f"{path}: base must be the path of another config")
    merged = merged_config(path.parent / base, (*_seen, path.resolve()))
    merged.pop("name", None)
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path) -> TrainingConfig:
    """The whole config file validated, with its bases resolved; named after the file unless it says."""
    config = merged_config(path)
    config.setdefault("name", Path(path).stem)
    return TrainingConfig.from_dict(config, str(path))
