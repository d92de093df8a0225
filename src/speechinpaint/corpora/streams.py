"""A corpus split as one waveform per speaker, and the fixed evaluation segments cut from it.

Short clips of one speaker are joined with short pauses into one stream, so a training crop or an
evaluation segment is filled with speech rather than padding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, load_audio
from ..errors import SpeechInpaintError
from .manifest import Entry, read_manifest

PAUSE_SECONDS = 0.15
# Joins between clips get a pause of faint noise, not digital zeros, which would look like packet loss.
PAUSE_LEVEL = 10 ** (-70 / 20)


def speaker_streams(rows: list[Entry]) -> dict[str, np.ndarray]:
    """One waveform per speaker: the speaker's clips in manifest order, joined by short faint pauses."""
    pause_rng = np.random.default_rng(0)
    clips: dict[str, list[np.ndarray]] = {}
    for row in rows:
        clips.setdefault(row.speaker, []).append(load_audio(row.file))
    streams = {}
    for speaker, parts in clips.items():
        pause = (pause_rng.standard_normal(int(PAUSE_SECONDS * SAMPLE_RATE)) * PAUSE_LEVEL).astype(np.float32)
        joined = [p for clip in parts for p in (clip, pause)]
        streams[speaker] = np.concatenate(joined[:-1])
    return streams


def evaluation_segments(manifest: str | Path, split: str, count: int, seconds: float = 6.0) -> list[tuple[str, np.ndarray]]:
    """Fixed segments of `seconds` for benchmarks: each voice's clips joined, cut into consecutive
    segments, taken round-robin over voices so every held-out voice is represented. Deterministic."""
    streams = speaker_streams(read_manifest(manifest, split))
    n = int(round(seconds * SAMPLE_RATE))
    queues = {s: [streams[s][i:i + n] for i in range(0, len(streams[s]) - n + 1, n)] for s in sorted(streams)}
    out: list[tuple[str, np.ndarray]] = []
    depth = 0
    while len(out) < count and any(depth < len(q) for q in queues.values()):
        for speaker, q in queues.items():
            if depth < len(q) and len(out) < count:
                out.append((f"{speaker}/{depth:03d}", q[depth].copy()))
        depth += 1
    if not out:
        raise SpeechInpaintError(f"{manifest}: no voice in split {split!r} has {seconds} s of audio")
    return out
