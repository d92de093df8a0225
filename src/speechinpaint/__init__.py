"""speechinpaint: restore missing time-frequency regions of speech (holes, time gaps, a missing band).

The public names load on first use (PEP 562), so `import speechinpaint` and the CLI stay fast:

    from speechinpaint import Inpainter
    restored = Inpainter.from_pretrained().restore(audio, "damaged.mask.json", sample_rate=44100)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that holds it
_EXPORTS = {
    "Inpainter": "inpainter",
    "HoleDetector": "hole_detector",
    "Mask": "masks",
    "Region": "masks",
    "load_mask": "masks",
    "save_mask": "masks",
    "load_audio": "audio",
    "save_audio": "audio",
    "read_recording": "audio",
    "write_recording": "audio",
    "detect_mask": "detection",
    "detect_signal": "detection",
    "corrupt": "corruptions",
    "score": "metrics",
    "SpeechInpaintError": "errors",
}


# public submodules, imported on first use as well (`si.restorers.make_restorer(...)`)
_MODULES = ("restorers",)
__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name not in _EXPORTS:
        raise AttributeError(f"module 'speechinpaint' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
