"""The learned holes detector: a small U-Net that marks the zeroed time-frequency cells of speech.

A zeroed rectangle's dark core holds nothing but the rounding noise of the file's samples, which a rule
can recognise; its edge cells do not, because the loud speech beside the hole refills them through the
window's leakage and the STFT's overlap, and restoring around missed edges is what costs a blind
restoration most (benchmarks/detect.py measures it; the README has the figures). The inpainting network's
architecture, small, learns the whole hole from the log-magnitude alone (configs/holes_detector.yaml,
trained by `speechinpaint train`, shipped as weights/holes_detector.pt with its card).

The signal is rounded to 16-bit samples first, as every training crop was: a hole in a 16-bit file
holds rounding noise, and rounding gives a float or 24-bit file's holes the same noise, so the detector
sees one kind of hole whatever the file's format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .audio import as_pcm16
from .checkpoint import DETECTOR_FORMAT, load_checkpoint
from .devices import torch_device
from .model import InpaintUNet, make_features
from .dsp.spectral import MODEL_GRID, log_magnitude

SHIPPED_DETECTOR = Path(__file__).parent / "weights" / "holes_detector.pt"
# The probability above which a cell is marked: chosen on crops of the train split
# (benchmarks/detector_threshold.py), not on the held-out voices the benchmarks report.
THRESHOLD = 0.6
# Long files are run in windows of this many frames (about 33 s), each with CONTEXT_FRAMES of context on
# both sides that is run but not kept, so memory stays flat and every kept cell sees its surroundings.
CHUNK_FRAMES = 4096
CONTEXT_FRAMES = 128


def detector_features(audio: torch.Tensor) -> torch.Tensor:
    """[B, samples] -> [B, 3, F - 1, T]: the inpainting network's input with nothing marked missing."""
    log_mag = log_magnitude(MODEL_GRID.stft(audio))
    return make_features(log_mag, torch.zeros_like(log_mag, dtype=torch.bool))[0][:, :, :-1]


def silent_frames(audio: np.ndarray) -> np.ndarray:
    """Boolean [T] on the model grid: frames whose whole window holds exact zeros. Digital silence is
    intended (a gated pause, a file's lead-in) or already a lost packet's; it holds nothing to restore,
    so no hole is marked there."""
    half = MODEL_GRID.n_fft // 2
    nonzero = np.concatenate([[0], np.cumsum(audio != 0)])
    centres = np.arange(MODEL_GRID.num_frames(len(audio))) * MODEL_GRID.hop
    lo, hi = np.clip(centres - half, 0, len(audio)), np.clip(centres + half, 0, len(audio))
    return nonzero[hi] == nonzero[lo]


class HoleDetector:
    """Marks hole cells on the model grid (512/128) of a 16 kHz mono signal."""

    def __init__(self, model: InpaintUNet, threshold: float = THRESHOLD, device: str | torch.device = "cpu"):
        self.device = torch_device(device)
        self.model = model.to(self.device).eval()
        self.threshold = threshold

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, **kwargs) -> "HoleDetector":
        """A detector trained by `speechinpaint train --config configs/holes_detector.yaml` (.ckpt or
        exported .pt); None means the shipped one."""
        torch_device(kwargs.get("device", "cpu"))  # before the weights load
        model, _ = load_checkpoint(SHIPPED_DETECTOR if path is None else path, DETECTOR_FORMAT)
        return cls(model, **kwargs)

    @torch.inference_mode()
    def probabilities(self, audio: np.ndarray, on_chunk=None) -> np.ndarray:
        """[F - 1, T] probability that each cell below Nyquist lies in a hole.

        on_chunk: called after each chunk with the number of frames it kept (they sum to T); whatever it
        raises (a cancellation) propagates."""
        features = detector_features(torch.from_numpy(as_pcm16(audio))[None]).to(self.device)
        n_frames = features.shape[-1]
        out = np.empty(features.shape[-2:], dtype=np.float32)
        for start in range(0, n_frames, CHUNK_FRAMES):
            stop = min(start + CHUNK_FRAMES, n_frames)
            a, b = max(start - CONTEXT_FRAMES, 0), min(stop + CONTEXT_FRAMES, n_frames)
            logits = self.model(features[..., a:b])[0, :, start - a:stop - a]
            out[:, start:stop] = torch.sigmoid(logits).float().cpu().numpy()
            if on_chunk is not None:
                on_chunk(stop - start)
        return out

    def cells(self, audio: np.ndarray, on_chunk=None) -> np.ndarray:
        """Boolean [F, T] on the model grid, True in hole cells; the Nyquist row copies the row below.
        on_chunk: as for probabilities."""
        marked = self.probabilities(audio, on_chunk) > self.threshold
        marked[:, silent_frames(as_pcm16(audio))] = False
        return np.concatenate([marked, marked[-1:]], axis=0)
