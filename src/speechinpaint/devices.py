"""The torch device a network runs on, checked before any weights load: a misspelt name, CUDA on a
build or machine without it, or a device index beyond those present is one clear error instead of
PyTorch's traceback from deep inside the first `.to(device)`."""

from __future__ import annotations

import torch

from .errors import SpeechInpaintError


def torch_device(name: str | torch.device) -> torch.device:
    """The torch.device `name` names, once it is known to exist here."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise SpeechInpaintError(f"device {name!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise SpeechInpaintError(f"device {name}: this PyTorch build ({torch.__version__}) has no CUDA; use cpu "
                                     "or install a CUDA build of PyTorch")
        if not torch.cuda.is_available():
            raise SpeechInpaintError(f"device {name}: no CUDA device is available on this machine; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SpeechInpaintError(f"device {name}: there is no CUDA device {device.index} (this machine has "
                                     f"{torch.cuda.device_count()})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise SpeechInpaintError(f"device {name}: Apple's MPS is not available on this machine; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise SpeechInpaintError(f"device {name}: speechinpaint runs on cpu, cuda or mps, not {device.type}")
    return device
