"""Reproducing the seed: its MFCC-MLP scored its own way and ours, beside the baselines and the model.

    python benchmarks/seed.py                          # starter validation voices, 40 six-second segments
    python benchmarks/seed.py --limit 100 --manifest data/starter/manifest.csv

Each validation speaker's clips are joined and cut into 6 s segments, taken in turn from each speaker
(corpora.streams.evaluation_segments, shared by the benchmarks); each segment gets the `holes` corruption (true
30 % coverage) with a seed from --seed and its name. Two scorings:

(a) the seed's convention, so its published table can sit beside ours: the reference is the clean audio
    resynthesised from its MFCCs (not the original), the seed's "corrupted" is the corrupted audio
    resynthesised from its MFCCs too, and LSD takes log10 of the *squared* power of scipy.signal.spectrogram
    with its default parameters; a file whose LSD is not finite is dropped, as the seed did, and counted;
(b) our protocol (speechinpaint.metrics.score): everything against the original clean audio.

`mfcc-oracle` is the clean audio's own MFCCs inverted: the best any system that outputs MFCCs can do,
and, under (a), the reference itself (so it has no (a) scores).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from _common import run_main
from speechinpaint.audio import SAMPLE_RATE
from speechinpaint.baselines.seed_mfcc import load_seed_mlp, mfcc, mfcc_to_audio
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import format_table, score_many, summarise
from speechinpaint.restorers import InterpRestorer, OracleRestorer, SeedMfccRestorer, ZeroRestorer

REPO = Path(__file__).resolve().parents[1]
SEED_STOI, SEED_PESQ, SEED_LSD = "STOI (a)", "PESQ (a)", "LSD (a)"
SEED_METRICS = (SEED_STOI, SEED_PESQ, SEED_LSD)
OUR_METRICS = ("stoi", "pesq", "lsd", "lsd_mask")
# The seed's README (shared/seed/000_1f94ba31f9c1eff0.txt): mean and sd over 150 VCTK test files.
PUBLISHED = {
    "seed as published, corrupted": {SEED_STOI: (0.66, 0.09), SEED_PESQ: (1.23, 0.11), SEED_LSD: (2.56, 0.27)},
    "seed as published, restored": {SEED_STOI: (0.73, 0.07), SEED_PESQ: (1.42, 0.21), SEED_LSD: (2.04, 0.19)},
}
PUBLISHED_FILES = 150


def seed_lsd(reference: np.ndarray, estimate: np.ndarray) -> float:
    """The seed's LSD: scipy.signal.spectrogram defaults, log10 of the squared PSD, RMS over frequency, mean over frames.

    No floor, as theirs: an empty bin makes it inf or NaN, and the caller drops the file.
    """
    _, _, ref = scipy.signal.spectrogram(reference, fs=SAMPLE_RATE)
    _, _, est = scipy.signal.spectrogram(estimate, fs=SAMPLE_RATE)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.log10(ref**2) - np.log10(est**2)
        return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def load_model(checkpoint: str | None):
    """The project's Inpainter, or (None, why) when its weights are not there yet."""
    try:
        from speechinpaint.inpainter import Inpainter

        return Inpainter.from_checkpoint(checkpoint), None
    except (ImportError, OSError, SpeechInpaintError) as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def display(key: str) -> str:
    """The table's name for a method."""
    return "seed-mfcc reproduced" if key == "seed-mfcc" else key


def run(clips, seed: int, inpainter, jobs: int | None) -> str:
    """Restore every segment with every method, score it both ways, and lay out the table."""
    methods = ["seed-mfcc", "mfcc-oracle", "zero", "interp", "oracle"] + (["model"] if inpainter else [])
    # One restorer per method; the oracle's is made per segment, from that segment's clean audio.
    restorers = {"seed-mfcc": SeedMfccRestorer(load_seed_mlp()), "zero": ZeroRestorer(), "interp": InterpRestorer(),
                 "model": inpainter}
    ours, seeds, keys = [], [], []
    seconds: dict[str, float] = defaultdict(float)
    for name, clean in clips:
        corrupted, mask = corrupt(clean, "holes", file_seed(seed, name))
        start = time.perf_counter()
        reference_a = mfcc_to_audio(mfcc(clean), len(clean))
        seconds["mfcc-oracle"] += time.perf_counter() - start
        estimates = {"corrupted, resynthesised from its MFCCs": mfcc_to_audio(mfcc(corrupted), len(clean))}
        for method in methods:
            if method == "mfcc-oracle":
                estimates[method] = reference_a  # timed above, where it was made
                continue
            restorer = OracleRestorer(clean) if method == "oracle" else restorers[method]
            start = time.perf_counter()
            estimates[method] = restorer.restore(corrupted, mask)
            seconds[method] += time.perf_counter() - start
        for key, est in estimates.items():
            keys.append(key)
            ours.append((clean, est, mask))
            seeds.append(None if key == "mfcc-oracle" else (reference_a, est, None))
        print(f"restored {name}", file=sys.stderr)
    our_rows = score_many(ours, jobs=jobs, desc="score (ours)", metrics=OUR_METRICS)
    wanted = [s for s in seeds if s is not None]
    seed_scored = iter(score_many(wanted, jobs=jobs, desc="score (seed convention)", metrics=("stoi", "pesq")))
    grouped: dict[str, list[dict]] = defaultdict(list)
    dropped: dict[str, int] = defaultdict(int)
    for key, row, pair in zip(keys, our_rows, seeds):
        row = dict(row)
        if pair is None:
            row.update({m: None for m in SEED_METRICS})
        else:
            scored = next(seed_scored)
            lsd_a = seed_lsd(pair[0], pair[1])
            dropped[key] += not np.isfinite(lsd_a)
            row.update({SEED_STOI: scored["stoi"], SEED_PESQ: scored["pesq"], SEED_LSD: lsd_a if np.isfinite(lsd_a) else None})
        grouped[key].append(row)
    metrics = SEED_METRICS + OUR_METRICS
    summaries = {}
    for name, values in PUBLISHED.items():
        summary = {"files": PUBLISHED_FILES}
        for m in metrics:
            mean, sd = values.get(m, (None, None))
            n = PUBLISHED_FILES if mean is not None else 0
            summary[m] = {"mean": mean, "sd": sd, "n": n, "missing": PUBLISHED_FILES - n}
        summaries[name] = summary
    order = ["corrupted, resynthesised from its MFCCs", "seed-mfcc", "mfcc-oracle", "zero", "interp", "oracle", "model"]
    for key in order:
        if key in grouped:
            summaries[display(key)] = summarise(grouped[key], metrics)
    audio_seconds = sum(len(a) for _, a in clips) / SAMPLE_RATE
    timing = {display(m): f"{s / audio_seconds:.3f}" for m, s in seconds.items()}
    notes = {
        "seed as published, corrupted": "VCTK, their README",
        "seed as published, restored": "VCTK, their README",
        "corrupted, resynthesised from its MFCCs": "the seed's 'corrupted'",
        "mfcc-oracle": "clean MFCCs inverted: the reference of (a)",
        "zero": "corrupted audio as is",
    }
    for key, count in dropped.items():
        if count:
            notes[display(key)] = (notes.get(display(key), "") + f"; LSD (a) not finite on {count}, dropped").lstrip("; ")
    table = format_table(summaries, metrics, extra={"restore s / audio s": timing, "note": notes}, label="method")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=REPO / "data" / "starter" / "manifest.csv")
    p.add_argument("--limit", type=int, default=40, help="at most this many 6 s segments (default: 40)")
    p.add_argument("--segment", type=float, default=6.0, help="segment length in seconds (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="model checkpoint for the `model` row (default: the shipped model)")
    p.add_argument("--jobs", type=int, help="scoring processes (default: CPU cores)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.limit < 1:
        raise SpeechInpaintError("--limit must be at least 1")
    clips = evaluation_segments(args.manifest, "valid", args.limit, args.segment)
    inpainter, why = load_model(args.checkpoint)
    table = run(clips, args.seed, inpainter, args.jobs)
    speakers = sorted({name.split("/")[0] for name, _ in clips})
    print(
        f"{args.manifest} (valid): {len(clips)} segments of {args.segment:g} s from {len(speakers)} held-out speakers "
        f"({', '.join(speakers)}); holes 30 %, seed {args.seed}; {torch.get_num_threads()} torch threads"
    )
    print("(a) the seed's convention: reference = clean resynthesised from MFCCs, LSD = log10 of squared PSD, "
          "scipy.signal.spectrogram defaults; (b) ours: STOI, PESQ-wb, LSD, LSD mask against the original audio")
    print(table)
    if inpainter is None:
        print(f"model row skipped: {why}")
    print(f"wall time {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
