"""The on-disk model format: config + weights + a format tag, so a checkpoint from another version is refused.

Both Lightning training checkpoints (*.ckpt) and exported weights (*.pt, what ships) carry the tag. Two
networks use it, both an InpaintUNet: the inpainting network (MODEL_FORMAT) and the holes detector
(DETECTOR_FORMAT); the tag also keeps one from being loaded as the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import SpeechInpaintError
from .files import atomic_write
from .model import InpaintUNet, ModelConfig

MODEL_FORMAT = "speechinpaint.model/1"
DETECTOR_FORMAT = "speechinpaint.holes_detector/1"


def build_model(state: dict, config: dict, source: str) -> InpaintUNet:
    """An InpaintUNet in eval mode with the given weights; wrong shapes give a clear error."""
    if not isinstance(config, dict) or "model" not in config:
        raise SpeechInpaintError(f"{source}: the checkpoint holds no model config")
    model = InpaintUNet(ModelConfig.from_dict(config["model"], source))
    try:
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise SpeechInpaintError(f"{source}: weights do not fit the network ({first})") from None
    return model.eval()


def read_checkpoint(path: str | Path) -> tuple[str | None, dict, dict]:
    """(format tag, config, network state) from an exported .pt or a Lightning .ckpt written by `speechinpaint train`."""
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such checkpoint")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in first:  # PyTorch's advice to load it unsafely is not ours to repeat
            first = "it holds objects other than weights, which this tool never loads"
        raise SpeechInpaintError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(blob, dict):
        raise SpeechInpaintError(f"{path}: not a speechinpaint checkpoint")
    if "hyper_parameters" in blob and "state_dict" in blob:  # a Lightning training checkpoint
        hp = blob["hyper_parameters"]
        state = {k.removeprefix("model."): v for k, v in blob["state_dict"].items() if k.startswith("model.")}
        return hp.get("format"), hp.get("config", {}), state
    return blob.get("format"), blob.get("config", {}), blob.get("state_dict", {})


def load_checkpoint(path: str | Path, expected: str = MODEL_FORMAT) -> tuple[InpaintUNet, dict]:
    """(model, config) of the network the format tag `expected` names."""
    fmt, config, state = read_checkpoint(path)
    if fmt != expected:
        raise SpeechInpaintError(f"{path}: checkpoint format {fmt!r} is not {expected!r} (made by another version "
                                 "or for another network)")
    return build_model(state, config, str(path)), config


# Model settings that change how the weights are used at inference, not the weights themselves.
INFERENCE_SETTINGS = ("gap_fill_share", "band_gain_db", "comb_share", "comb_depth_db")


def export_weights(ckpt_path: str | Path, out_path: str | Path, extra: dict | None = None,
                   settings: dict | None = None) -> None:
    """Write the shipped form of a training checkpoint: fp16 weights + config, a few MB. settings: new
    values of INFERENCE_SETTINGS for the model section (the weights stay as trained)."""
    fmt, config, state = read_checkpoint(ckpt_path)
    if fmt not in (MODEL_FORMAT, DETECTOR_FORMAT):
        raise SpeechInpaintError(f"{ckpt_path}: checkpoint format {fmt!r} is not one this version exports")
    unknown = sorted(set(settings or {}) - set(INFERENCE_SETTINGS))
    if unknown:
        raise SpeechInpaintError(f"{unknown[0]} is not an inference setting ({', '.join(INFERENCE_SETTINGS)})")
    if settings:
        config = {**config, "model": {**config.get("model", {}), **settings}}
    model = build_model(state, config, str(ckpt_path))
    blob = {
        "format": fmt,
        "config": config,
        "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()},
        "info": extra or {},
    }
    atomic_write(out_path, lambda tmp: torch.save(blob, tmp))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="export a training checkpoint as shippable weights")
    parser.add_argument("checkpoint", help="a .ckpt written by `speechinpaint train` (or exported weights)")
    parser.add_argument("output", help="the .pt to write, e.g. src/speechinpaint/weights/model.pt or holes_detector.pt")
    parser.add_argument("--gap-fill-share", type=float, help="the share of the pitch fill inside time gaps")
    parser.add_argument("--band-gain-db", type=float, help="the gain of a missing upper band's estimate over the input")
    parser.add_argument("--comb-share", type=float, help="the share of the harmonic comb in voiced holes")
    parser.add_argument("--comb-depth-db", type=float, help="the harmonic comb's valleys below its peaks")
    args = parser.parse_args()
    settings = {name: getattr(args, name) for name in INFERENCE_SETTINGS if getattr(args, name) is not None}
    try:
        export_weights(args.checkpoint, args.output, settings=settings)
    except SpeechInpaintError as exc:
        raise SystemExit(f"speechinpaint: error: {exc}") from None
