"""Shared fixtures: the bundled real speech clips (tests/data/README.md) and the evaluation LSD.

The clips are real recordings of held-out voices, so the tests exercise the code on speech rather than
on tones; longer signals are made by joining them, as the starter corpus joins a speaker's clips.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from speechinpaint.audio import SAMPLE_RATE, load_audio, save_audio
from speechinpaint.dsp.spectral import StftGrid

# The tests' tensors are small: one thread avoids the stalls of threads spinning against other work on
# a shared CPU (measured here: 16 STFT round trips of 3 s took 0.09 s on 1 thread, up to 4.9 s on 2).
torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"
CLIP_NAMES = ("da_mercury.wav", "da_mars.wav", "da_7spoke.wav", "lt_letters_d_a_b.wav")
# The evaluation grid of metrics.LSD_GRID (2048-point Hann, hop 512).
EVAL_GRID = StftGrid(2048, 512)


@pytest.fixture(scope="session")
def clips() -> dict[str, np.ndarray]:
    """Every bundled clip, loaded once, by file name."""
    return {name: load_audio(DATA / name) for name in CLIP_NAMES}


@pytest.fixture(scope="session")
def speech(clips) -> np.ndarray:
    """One 3 s Danish clip, for tests that need a single real signal."""
    return clips["da_7spoke.wav"]


@pytest.fixture(scope="session")
def speech_of_length(clips):
    """speech_of_length(n): the clips joined in turn (150 ms pauses) and cut to n samples."""
    pause = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
    cycle = np.concatenate([part for clip in clips.values() for part in (clip, pause)])

    def make(num_samples: int) -> np.ndarray:
        reps = -(-num_samples // len(cycle))
        return np.tile(cycle, reps)[:num_samples].copy()

    return make


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A tiny training corpus: the bundled clips, the Lithuanian one held out as the validation voice."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for clip in sorted(DATA.glob("*.wav")):
        split = "valid" if clip.name.startswith("lt_") else "train"
        save_audio(root / clip.name, load_audio(clip))
        rows.append([clip.name, clip.name[:2], clip.name[:2], len(load_audio(clip)) / 16000, split])
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "speaker", "language", "duration", "split"], *rows])
    return root


def lsd(reference: np.ndarray, estimate: np.ndarray) -> float:
    """LSD as metrics.py defines it: log10 power on the 2048/512 grid, floor 1e-8, RMS over
    frequency per frame, mean over frames. Written out here so the tests check it independently."""
    ref = np.log10(np.maximum(EVAL_GRID.stft(reference).abs().numpy() ** 2, 1e-8))
    est = np.log10(np.maximum(EVAL_GRID.stft(estimate).abs().numpy() ** 2, 1e-8))
    return float(np.mean(np.sqrt(np.mean((ref - est) ** 2, axis=0))))


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 48 KiB tmpfs, unmounted afterwards: a full disk that is real (skipped where mounting needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)]).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)

