"""Benchmark of the non-learned methods: every corruption x (zero, interp, oracle), one table.

`zero` is the corrupted input itself (the floor), `oracle` puts the clean magnitude in the holes and only
reconstructs phase (the ceiling), `interp` is the classic baseline a model has to beat. Runs on a folder
of clean speech (default: the bundled tests/data clips) or on one split of a corpus manifest:

    python benchmarks/baselines.py                                   # tests/data
    python benchmarks/baselines.py --manifest data/starter/manifest.csv --split valid --limit 40

Clips are cut into segments of --segment seconds (whole files when shorter; the remainder of a longer
file is dropped). Each segment gets its own seed from --seed and its name, as `speechinpaint corrupt`
does. Restoration runs serially so its wall time per audio second is comparable between methods;
scoring runs in parallel over CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from _common import run_main
from speechinpaint.audio import SAMPLE_RATE, load_audio
from speechinpaint.corpora.manifest import Entry, read_manifest
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.dsp.phase import DEFAULT_ITERS
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import format_table, score_many, summarise
from speechinpaint.files import list_audio_files
from speechinpaint.restorers import InterpRestorer, OracleRestorer, ZeroRestorer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO / "tests" / "data"
# The default strength of each corruption (DESIGN.md), as (kind, label, corrupt() keyword arguments).
CONDITIONS = (
    ("holes", "holes 30 %", {"coverage": 0.30}),
    ("gaps", "gaps 20 %", {"loss_rate": 0.2}),
    ("band", "band 4 kHz", {"cutoff_hz": 4000.0}),
)
METHODS = ("zero", "interp", "oracle")
TABLE_METRICS = ("stoi", "pesq", "lsd", "lsd_mask")


def manifest_files(manifest: Path, split: str, seed: int) -> list[tuple[str, Path]]:
    """(name, path) of a manifest's split, interleaved across speakers so a --limit samples every voice.

    Within each speaker the order is shuffled with the seed; then one file of each speaker in turn.
    """
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[Entry]] = defaultdict(list)
    for entry in read_manifest(manifest, split):
        by_speaker[entry.speaker].append(entry)
    queues = []
    for speaker in sorted(by_speaker):
        entries = sorted(by_speaker[speaker], key=lambda e: e.path)
        queues.append([entries[i] for i in rng.permutation(len(entries))])
    ordered = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    return [(e.path, e.file) for e in ordered]


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    files = list_audio_files(folder)
    if not files:
        raise SpeechInpaintError(f"{folder}: no audio files")
    return [(f.relative_to(folder).as_posix() if folder.is_dir() else f.name, f) for f in files]


def segments(files: list[tuple[str, Path]], seconds: float, limit: int | None) -> list[tuple[str, np.ndarray]]:
    """Cut each file into whole segments of `seconds` (a shorter file is one segment), up to `limit`."""
    n = int(round(seconds * SAMPLE_RATE))
    out: list[tuple[str, np.ndarray]] = []
    for name, path in files:
        audio = load_audio(path)
        pieces = [audio] if len(audio) <= n else [audio[i * n:(i + 1) * n] for i in range(len(audio) // n)]
        for i, piece in enumerate(pieces):
            out.append((f"{name}#{i}", piece))
            if limit is not None and len(out) >= limit:
                return out
    return out


def run(clips: list[tuple[str, np.ndarray]], seed: int, iterations: int, jobs: int | None) -> tuple[str, float]:
    """Corrupt, restore and score every clip; returns the table and the restoration wall time in total."""
    items, keys = [], []
    restore_seconds: dict[str, float] = defaultdict(float)
    audio_seconds = sum(len(a) for _, a in clips) / SAMPLE_RATE
    shared = {"zero": ZeroRestorer(), "interp": InterpRestorer(iterations)}  # the oracle needs each clip's clean audio
    for kind, label, options in CONDITIONS:
        for name, clean in clips:
            corrupted, mask = corrupt(clean, kind, file_seed(seed, name), **options)
            for method in METHODS:
                restorer = OracleRestorer(clean, iterations) if method == "oracle" else shared[method]
                start = time.perf_counter()
                estimate = restorer.restore(corrupted, mask)
                restore_seconds[f"{label}, {method}"] += time.perf_counter() - start
                items.append((clean, estimate, mask))
                keys.append(f"{label}, {method}")
        print(f"restored {label}", file=sys.stderr)
    rows = score_many(items, jobs=jobs, desc="score", metrics=TABLE_METRICS)
    grouped: dict[str, list[dict]] = defaultdict(list)
    for key, row in zip(keys, rows):
        grouped[key].append(row)
    summaries = {key: summarise(rows_, TABLE_METRICS) for key, rows_ in grouped.items()}
    timing = {key: f"{restore_seconds[key] / audio_seconds:.3f}" for key in summaries}
    table = format_table(summaries, TABLE_METRICS, extra={"restore s / audio s": timing}, label="condition, method")
    return table, sum(restore_seconds.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help=f"clean speech file or folder (default: {DEFAULT_FOLDER})")
    p.add_argument("--manifest", type=Path, help="corpus manifest.csv (path,speaker,language,duration,split)")
    p.add_argument("--split", default="valid", help="manifest split to use (default: valid)")
    p.add_argument("--limit", type=int, help="at most this many segments")
    p.add_argument("--segment", type=float, default=6.0, help="segment length in seconds (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERS, help="phase reconstruction iterations")
    p.add_argument("--jobs", type=int, help="scoring processes (default: CPU cores)")
    args = p.parse_args(argv)
    if args.manifest and args.folder:
        raise SpeechInpaintError("give a folder or --manifest, not both")
    if args.limit is not None and args.limit < 1:
        raise SpeechInpaintError("--limit must be at least 1")
    if args.manifest:
        files = manifest_files(args.manifest, args.split, args.seed)
        source = f"{args.manifest} (split {args.split})"
    else:
        folder = Path(args.folder) if args.folder else DEFAULT_FOLDER
        files = folder_files(folder)
        source = str(folder)
    clips = segments(files, args.segment, args.limit)
    seconds = sum(len(a) for _, a in clips) / SAMPLE_RATE
    start = time.perf_counter()
    table, restore_total = run(clips, args.seed, args.iterations, args.jobs)
    print(f"{source}: {len(clips)} segments of up to {args.segment:g} s, {seconds:.1f} s of audio; seed {args.seed}; "
          f"{args.iterations} phase iterations; {torch.get_num_threads()} torch threads")
    print(table)
    print(f"wall time {time.perf_counter() - start:.1f} s ({restore_total:.1f} s restoring, the rest scoring)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
