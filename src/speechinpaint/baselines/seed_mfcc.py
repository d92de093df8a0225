"""The seed's system kept as a reproducible baseline: a per-frame MLP from corrupted to clean MFCCs.

Everything follows the seed (its card, weights/SEED_MFCC_CARD.md, gives the sources): pre-emphasis 0.97, 32 MFCCs from 128 Slaney
mel bands (640-point FFT, hop 320, 20-8000 Hz, lifter 0.6), per-utterance mean/variance normalisation,
Dense 512 ReLU -> BatchNorm -> Dense 32, MSE, Adagrad lr 1e-3, batch 128, and the output audio entirely
resynthesised from MFCCs with Griffin-Lim (MFCC -> mel -> linear magnitude -> phase).

The MFCC analysis and its inversion are written here in numpy/torch with librosa's exact conventions
(tests/test_seed_mfcc.py checks them against librosa), so `restore --method seed-mfcc` needs only the
base dependencies. Two choices the seed leaves open, made here and recorded in SEED_MFCC_CARD.md:
- The clean target is normalised with the *corrupted* utterance's mean and deviation, so the network's
  output can be de-normalised at inference, where only the corrupted audio exists.
- The predicted MFCCs are inverted, then de-emphasised (the exact inverse of the pre-emphasis); the mask
  is not used, because the seed's network never saw one and its output replaced the whole signal.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.signal
import torch
from torch import nn
from tqdm import tqdm

from ..audio import SAMPLE_RATE, load_audio
from ..corpora.manifest import Entry, read_manifest
from ..corruptions import corrupt, file_seed
from ..files import atomic_write
from ..errors import SpeechInpaintError
from ..masks import Mask
from ..dsp.phase import reconstruct
from ..dsp.spectral import SEED_GRID

PREEMPHASIS = 0.97
N_MFCC = 32
N_MELS = 128
FMIN, FMAX = 20.0, 8000.0
LIFTER = 0.6
# librosa.power_to_db defaults (the seed computed its MFCCs with librosa, whose mfcc() applies them).
AMIN = 1e-10
TOP_DB = 80.0
# librosa's mfcc_to_audio / griffinlim defaults: 32 iterations of fast Griffin-Lim, momentum 0.99.
GRIFFIN_LIM_ITERS = 32
NNLS_ITERS = 100
HIDDEN = 512
NORM_EPS = 1e-8
CHECKPOINT_FORMAT = "speechinpaint.seed_mfcc/1"
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "seed_mfcc.pt"


# ----------------------------------------------------------------------------------------------------
# Features: librosa.feature.mfcc with the seed's parameters, and its inversion
# ----------------------------------------------------------------------------------------------------


def preemphasis(audio: np.ndarray, coef: float = PREEMPHASIS) -> np.ndarray:
    """y[n] - coef*y[n-1], with librosa's start (its filter state 2*y[0] - y[1]) so MFCCs match its numbers."""
    audio = np.asarray(audio, dtype=np.float64)
    out = np.empty_like(audio)
    out[1:] = audio[1:] - coef * audio[:-1]
    out[0] = audio[0] + (2 * audio[0] - audio[1])
    return out


def deemphasis(audio: np.ndarray, coef: float = PREEMPHASIS) -> np.ndarray:
    """The exact inverse of preemphasis() (the same as librosa.effects.deemphasis)."""
    audio = np.asarray(audio, dtype=np.float64)
    first = (audio[0] + audio[1]) / (3 - coef)
    rest, _ = scipy.signal.lfilter([1.0], [1.0, -coef], audio[1:], zi=[coef * first])
    return np.concatenate([[first], rest])


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """[N_MELS, bins] triangular filters with Slaney area normalisation (librosa.filters.mel defaults)."""
    fft_freqs = SEED_GRID.bin_freqs()
    edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II [N_MELS, N_MELS] (scipy.fft.dct type 2, norm 'ortho'); its transpose inverts it."""
    n = np.arange(N_MELS)
    basis = np.sqrt(2.0 / N_MELS) * np.cos(np.pi * n[:, None] * (2 * n[None, :] + 1) / (2 * N_MELS))
    basis[0] /= np.sqrt(2.0)
    return basis


@lru_cache(maxsize=1)
def lifter_weights() -> np.ndarray:
    """librosa's sinusoidal lifter, 1 + (L/2) sin(pi (n+1) / L) for coefficient n."""
    return 1.0 + (LIFTER / 2) * np.sin(np.pi * np.arange(1, N_MFCC + 1) / LIFTER)


def mel_power(audio: np.ndarray) -> np.ndarray:
    """Mel power spectrogram [N_MELS, frames] of the pre-emphasised audio on the seed's 640/320 grid."""
    spec = SEED_GRID.stft(preemphasis(audio).astype(np.float32)).numpy()
    return mel_basis() @ (np.abs(spec.astype(np.complex128)) ** 2)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """[N_MFCC, frames] MFCCs, equal to librosa.feature.mfcc(y=preemphasis(audio), sr=16000, n_mfcc=32,
    n_fft=640, hop_length=320, n_mels=128, fmin=20, fmax=8000, lifter=0.6)."""
    db = 10.0 * np.log10(np.maximum(mel_power(audio), AMIN))
    db = np.maximum(db, db.max() - TOP_DB)
    return (dct_matrix()[:N_MFCC] @ db) * lifter_weights()[:, None]


def mfcc_to_mel(coeffs: np.ndarray) -> np.ndarray:
    """Mel power [N_MELS, frames] from MFCCs: un-lifter, inverse DCT (the missing coefficients as zeros), dB to power."""
    db = dct_matrix()[:N_MFCC].T @ (np.asarray(coeffs, dtype=np.float64) / lifter_weights()[:, None])
    return 10.0 ** (db / 10.0)


@lru_cache(maxsize=1)
def _nnls_operators() -> tuple[np.ndarray, np.ndarray, float]:
    basis = mel_basis()
    return basis, np.linalg.pinv(basis), float(np.linalg.norm(basis, 2) ** 2)


def mel_to_power(mel: np.ndarray, n_iter: int = NNLS_ITERS) -> np.ndarray:
    """Non-negative least-squares linear power [bins, frames] whose mel projection is `mel`.

    As librosa.feature.inverse.mel_to_stft: start from the clipped pseudo-inverse, then minimise
    |basis @ x - mel|^2 over x >= 0 (here by accelerated projected gradient instead of scipy's L-BFGS-B).
    Every frame is its own linear problem, so loud and quiet frames converge alike; 50 steps already
    fit the bands as well as librosa does (tests/test_seed_mfcc.py), 100 leave a margin.
    """
    basis, pinv, lipschitz = _nnls_operators()
    x = np.maximum(pinv @ mel, 0.0)
    y, t = x, 1.0
    for _ in range(n_iter):
        x_next = np.maximum(y - (basis.T @ (basis @ y - mel)) / lipschitz, 0.0)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = x_next + ((t - 1) / t_next) * (x_next - x)
        x, t = x_next, t_next
    return x


def mfcc_to_audio(coeffs: np.ndarray, length: int, n_iter: int = GRIFFIN_LIM_ITERS) -> np.ndarray:
    """Audio of `length` samples from MFCCs: mel power, linear magnitude, Griffin-Lim phase, de-emphasis.

    The Griffin-Lim is the project's fast Griffin-Lim (phase.reconstruct) with every bin unknown and a
    fixed seed, so the same MFCCs always give the same audio.
    """
    magnitude = torch.from_numpy(np.sqrt(mel_to_power(mfcc_to_mel(coeffs)))).float()
    nothing_known = torch.zeros(magnitude.shape, dtype=torch.complex64)
    everything_missing = torch.ones(magnitude.shape, dtype=torch.bool)
    audio = reconstruct(nothing_known, everything_missing, magnitude, SEED_GRID, length, n_iter=n_iter)
    return deemphasis(audio.numpy()).astype(np.float32)


def normalise(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-utterance mean/variance normalisation of [N_MFCC, frames]; returns (normalised, mean, deviation)."""
    mean = coeffs.mean(axis=1, keepdims=True)
    std = coeffs.std(axis=1, keepdims=True) + NORM_EPS
    return (coeffs - mean) / std, mean, std


# ----------------------------------------------------------------------------------------------------
# The network and its checkpoint
# ----------------------------------------------------------------------------------------------------


class SeedMLP(nn.Module):
    """The seed's per-frame network: Dense 512 ReLU, BatchNorm, Dense 32 linear.

    Initialised and normalised as Keras does by default (Glorot-uniform weights, zero biases, batch-norm
    momentum 0.99 and epsilon 1e-3), since the seed was a Keras model.
    """

    def __init__(self, n_mfcc: int = N_MFCC, hidden: int = HIDDEN):
        super().__init__()
        self.hidden = nn.Linear(n_mfcc, hidden)
        self.norm = nn.BatchNorm1d(hidden, eps=1e-3, momentum=0.01)
        self.out = nn.Linear(hidden, n_mfcc)
        for layer in (self.hidden, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """[batch, n_mfcc] normalised corrupted MFCC frames -> [batch, n_mfcc] normalised clean estimates."""
        return self.out(self.norm(torch.relu(self.hidden(frames))))


def save_checkpoint(path: str | Path, model: SeedMLP, training: dict) -> None:
    """Weights plus what produced them, written atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "n_mfcc": N_MFCC,
        "hidden": HIDDEN,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "training": training,
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_seed_mlp(path: str | Path = WEIGHTS) -> SeedMLP:
    """A SeedMLP in eval mode from a checkpoint; anything that is not one gives a one-line SpeechInpaintError."""
    path = Path(path)
    if not path.is_file():
        raise SpeechInpaintError(f"{path}: no such seed-mfcc checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime) for a file that is not a checkpoint
        raise SpeechInpaintError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise SpeechInpaintError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    model = SeedMLP()
    expected = model.state_dict()
    state = payload.get("state_dict")
    if not isinstance(state, dict) or set(state) != set(expected):
        raise SpeechInpaintError(f"{path}: the checkpoint's tensors do not belong to the seed's MLP")
    for key, tensor in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise SpeechInpaintError(
                f"{path}: {key} has shape {shape}, the seed's MLP ({N_MFCC} MFCCs, {HIDDEN} hidden) needs {tuple(tensor.shape)}"
            )
    model.load_state_dict(state)
    return model.eval()


@lru_cache(maxsize=1)
def _shipped_model() -> SeedMLP:
    return load_seed_mlp(WEIGHTS)


def predict_mfcc(model: SeedMLP, corrupted: np.ndarray) -> np.ndarray:
    """Clean MFCC estimate [N_MFCC, frames] of corrupted audio, de-normalised with the corrupted utterance's statistics."""
    normalised, mean, std = normalise(mfcc(corrupted))
    with torch.no_grad():
        out = model(torch.from_numpy(normalised.T).float()).double().numpy().T
    return out * std + mean


def restore_seed_mfcc(corrupted: np.ndarray, mask: Mask, model: SeedMLP | None = None) -> np.ndarray:
    """The seed's restoration: the whole signal resynthesised from the network's MFCCs.

    The mask is only checked against the audio: the seed's network never saw a mask and its output
    replaced every frame, known bins included, which is exactly what this baseline is kept to measure.
    """
    mask.check_matches(len(corrupted), SAMPLE_RATE)
    model = model if model is not None else _shipped_model()
    return mfcc_to_audio(predict_mfcc(model, corrupted), len(corrupted))


# ----------------------------------------------------------------------------------------------------
# Training: `python -m speechinpaint.baselines.seed_mfcc train --manifest data/starter/manifest.csv ...`
# ----------------------------------------------------------------------------------------------------

BATCH = 128
LEARNING_RATE = 1e-3
# Keras' Adagrad (the seed's optimizer) starts its accumulator at 0.1 and uses epsilon 1e-7; torch's
# defaults (0 and 1e-10) would take much larger first steps.
ADAGRAD_INITIAL_ACCUMULATOR = 0.1
ADAGRAD_EPS = 1e-7


def frame_pairs(entries: list[Entry], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) [frames, N_MFCC] float32 over a split's files, each corrupted once with `holes` as
    the seed did (its seed from the file's path in the manifest).

    Both are normalised with the corrupted utterance's statistics (see the module docstring).
    """
    inputs, targets = [], []
    for entry in tqdm(entries, desc="features", unit="file", file=sys.stderr, mininterval=5):
        clean = load_audio(entry.file)
        corrupted, _ = corrupt(clean, "holes", file_seed(seed, entry.path))
        x, mean, std = normalise(mfcc(corrupted))
        inputs.append(x.T)
        targets.append(((mfcc(clean) - mean) / std).T)
    return np.concatenate(inputs).astype(np.float32), np.concatenate(targets).astype(np.float32)


def _mean_loss(model: SeedMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def train(manifest: str | Path, out: str | Path, epochs: int, seed: int = 0, max_minutes: float | None = None) -> dict:
    """Train the seed's MLP on the manifest's train split and save it; returns the training record.

    The valid split's loss is logged each epoch only to show convergence; nothing is picked on it
    (the last epoch's weights are saved). With `max_minutes`, training stops after the epoch that
    reaches that wall time, and the record says how many epochs ran.
    """
    if epochs < 1:
        raise SpeechInpaintError("--epochs must be at least 1")
    started = time.time()
    train_files, valid_files = read_manifest(manifest, "train"), read_manifest(manifest, "valid")
    x, y = (torch.from_numpy(a) for a in frame_pairs(train_files, seed))
    vx, vy = (torch.from_numpy(a) for a in frame_pairs(valid_files, seed))
    feature_s = time.time() - started
    torch.manual_seed(seed)
    model = SeedMLP()
    optimizer = torch.optim.Adagrad(
        model.parameters(), lr=LEARNING_RATE, initial_accumulator_value=ADAGRAD_INITIAL_ACCUMULATOR, eps=ADAGRAD_EPS
    )
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            if len(idx) < 2:  # batch norm needs two frames to normalise
                continue
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        record = {"epoch": epoch, "train_mse": total / len(x), "valid_mse": _mean_loss(model, vx, vy)}
        history.append(record)
        out_of_time = max_minutes is not None and time.time() - started > 60 * max_minutes
        print(
            f"epoch {epoch}/{epochs}  train mse {record['train_mse']:.4f}  valid mse {record['valid_mse']:.4f}"
            f"  ({time.time() - started:.0f} s)",
            file=sys.stderr,
        )
        if out_of_time:
            break
    training = {
        "manifest": str(manifest),
        "corruption": "holes (coverage 0.30), one fixed corruption per file, file_seed(seed, path)",
        "seed": seed,
        "train_files": len(train_files),
        "train_frames": len(x),
        "valid_files": len(valid_files),
        "valid_frames": len(vx),
        "identity_valid_mse": float(nn.functional.mse_loss(vx, vy)),
        "epochs": len(history),
        "epochs_requested": epochs,
        "max_minutes": max_minutes,
        "batch": BATCH,
        "optimizer": f"Adagrad lr {LEARNING_RATE}, initial accumulator {ADAGRAD_INITIAL_ACCUMULATOR}, eps {ADAGRAD_EPS}",
        "history": history,
        "feature_seconds": round(feature_s, 1),
        "wall_seconds": round(time.time() - started, 1),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
    }
    save_checkpoint(out, model, training)
    return training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m speechinpaint.baselines.seed_mfcc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the seed's MLP on a manifest's train split (holes corruption)")
    t.add_argument("--manifest", required=True, help="manifest.csv with columns path,...,split")
    t.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-minutes", type=float, help="stop after the epoch that reaches this wall time")
    t.add_argument("--threads", type=int, default=1, help="torch threads (one is fastest for this tiny MLP)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        record = train(args.manifest, args.out, args.epochs, args.seed, args.max_minutes)
    except SpeechInpaintError as exc:
        print(f"speechinpaint: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {record['train_frames']} frames, {record['epochs']} epochs, {record['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
