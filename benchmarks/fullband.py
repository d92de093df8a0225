"""Full-band restoration at a recording's own rate: held-out voices at 44.1 kHz, damaged over the whole band.

Clips: the starter corpus's validation voices (Tux Paint), read at their source rate from the original
44.1 kHz Vorbis files in the corpus's cache (corpora/starter.py finds them), the longest --clips of each
voice, the first --seconds of each. Three kinds of damage, seeded per clip:
- holes: the `corrupt --kind holes` rectangles placed from 0 Hz up to the Nyquist frequency (30 %);
- dropouts: 60 ms of zeroed samples every DROPOUT_EVERY seconds or so, each a full-band region (a gap);
- bursts: 150 ms of white noise as loud as the clip (RMS) every BURST_EVERY seconds or so, full band.
Methods, each restoring the clip at 44.1 kHz:
- corrupted: as damaged;
- 16 kHz only: the shipped model as it was before the full band (Restorer.full_band False): the mask
  restored below 8 kHz, nothing above;
- interp (native): log-magnitude interpolation (dsp.interpolation) of every masked bin on the file's
  own STFT (32 ms / 8 ms), phase reconstructed there (32 iterations), gaps spliced;
- model: the shipped model below 8 kHz and dsp.upper_band above it (what `restore` does);
- oracle: the true magnitude in every masked bin (below 8 kHz on the model's grid, above on the file's)
  with the same phase reconstruction as the model's;
- with --ablations, the model's upper band without the tie to the restored 4-7.4 kHz level, without
  the log-mean bias, and with 8 or 16 phase iterations (each from the 16 kHz-only output).
Columns: lsd_full and lsd_above_8k over the clip, lsd_above_8k_mask over the masked bins above 8 kHz,
visqol_audio (ViSQOL audio mode at 48 kHz), PESQ-wb and STOI on the 16 kHz downmix, and the wall time
of the restoration per second of audio.

    python benchmarks/fullband.py [--clips 2] [--seconds 4] [--ablations]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import run_main
from speechinpaint.audio import SAMPLE_RATE, read_mono, resample
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.starter import find_clips
from speechinpaint.corruptions import corrupt_signal, file_seed
from speechinpaint.dsp.interpolation import interpolate_log_magnitude
from speechinpaint.dsp.phase import reconstruct
from speechinpaint.dsp.spectral import log_magnitude
from speechinpaint.dsp.upper_band import restore_upper_band
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import format_table, summarise
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import Mask, Region, gap_sample_mask, missing_bins
from speechinpaint.metrics import pesq_wb, score_full_band, stoi
from speechinpaint.recording import native_grid
from speechinpaint.restorers import OracleRestorer

DROPOUT_SECONDS, DROPOUT_EVERY = 0.06, 0.5
BURST_SECONDS, BURST_EVERY = 0.15, 0.8
CONDITIONS = ("holes", "dropouts", "bursts")
COLUMNS = ("lsd_full", "lsd_above_8k", "lsd_above_8k_mask", "visqol_audio", "pesq", "stoi")
INTERP_ITERS = 32


def held_out_clips(manifest: str, count: int, seconds: float) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono float64 at its source rate, rate) of the longest `count` clips of each validation voice."""
    entries = [e for e in read_manifest(manifest, "valid") if e.speaker.startswith("tuxpaint-")]
    unpacked = Path(manifest).parent / "cache" / "unpacked"
    sources = {c.rel_out: c.source for c in find_clips(unpacked)}
    if not sources:
        raise SpeechInpaintError(f"{unpacked}: no original Tux Paint files (run `speechinpaint data starter` first)")
    out = []
    for voice in sorted({e.speaker for e in entries}):
        longest = sorted((e for e in entries if e.speaker == voice), key=lambda e: -e.duration)[:count]
        for e in longest:
            audio, rate = read_mono(sources[e.path])
            if rate > SAMPLE_RATE:
                out.append((e.path, audio[: int(seconds * rate)].astype(np.float64), rate))
    return out


def damage(clean: np.ndarray, rate: int, condition: str, seed: int) -> tuple[np.ndarray, Mask]:
    """The clip damaged one way, with its mask in the clip's terms."""
    if condition == "holes":
        bad, mask = corrupt_signal(clean[None], rate, "holes", seed, coverage=0.30)
        return bad[0], mask
    rng = np.random.default_rng(seed)
    length, every = (DROPOUT_SECONDS, DROPOUT_EVERY) if condition == "dropouts" else (BURST_SECONDS, BURST_EVERY)
    duration = len(clean) / rate
    starts = [t + rng.uniform(0.05, every - length - 0.05) for t in np.arange(0.1, duration - every, every)]
    mask = Mask(rate, len(clean), [Region(t, t + length, 0.0, rate / 2) for t in starts])
    gap = gap_sample_mask(mask)
    bad = clean.copy()
    if condition == "dropouts":
        bad[gap] = 0.0
    else:
        bad[gap] += np.sqrt(np.mean(clean ** 2)) * rng.standard_normal(int(gap.sum()))
    return bad, mask


def interp_native(bad: np.ndarray, mask: Mask) -> np.ndarray:
    """Every masked bin interpolated on the file's own STFT, phase reconstructed there, gaps spliced."""
    grid = native_grid(mask.sample_rate)
    signal = torch.from_numpy(bad.astype(np.float32))
    spec = grid.stft(signal)
    missing = torch.from_numpy(missing_bins(mask, grid, spec.shape[-1]))
    magnitude = interpolate_log_magnitude(log_magnitude(spec), missing).exp()
    gaps_only = all(mask.is_full_band(r) for r in mask.regions)
    gap = gap_sample_mask(mask)
    kept = (signal, torch.from_numpy(~gap)) if gaps_only else None
    out = reconstruct(spec, missing, magnitude, grid, len(bad), n_iter=INTERP_ITERS, kept_samples=kept).numpy()
    return np.where(gap, out, bad) if gaps_only else out.astype(np.float64)


def upper_only(low: np.ndarray, mask: Mask, reference: np.ndarray | None = None, **options) -> np.ndarray:
    """The band above 8 kHz restored on a restoration below it, as restore_channel does."""
    gaps_only = all(mask.is_full_band(r) for r in mask.regions)
    return restore_upper_band(low.copy(), mask, native_grid(mask.sample_rate),
                              kept=~gap_sample_mask(mask) if gaps_only else None, reference=reference, **options)


def scores(clean: np.ndarray, estimate: np.ndarray, mask: Mask) -> dict:
    rate = mask.sample_rate
    row = score_full_band(clean, estimate, rate, mask)
    clean16, est16 = resample(clean, rate, SAMPLE_RATE), resample(estimate, rate, SAMPLE_RATE)
    row["pesq"] = pesq_wb(clean16, est16)[0]
    row["stoi"] = stoi(clean16, est16)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--clips", type=int, default=2, help="per validation voice (the longest)")
    p.add_argument("--seconds", type=float, default=4.0, help="the first seconds of each clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablations", action="store_true", help="also the model's upper band without each part")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clips = held_out_clips(args.manifest, args.clips, args.seconds)
    model = Inpainter.from_pretrained()
    ablations = {"model, no tie to 4-7.4 kHz": {"tie_share": 0.0}, "model, no log-mean bias": {"bias": 0.0},
                 "model, 8 phase iterations": {"iterations": 8}, "model, 16 phase iterations": {"iterations": 16}}
    rows: dict[str, dict[str, list]] = {}
    times: dict[str, dict[str, float]] = {}
    audio_seconds = sum(len(c) / r for _, c, r in clips)
    for condition in CONDITIONS:
        for name, clean, rate in clips:
            bad, mask = damage(clean, rate, condition, file_seed(args.seed, f"{condition}:{name}"))
            oracle = OracleRestorer(resample(clean, rate, SAMPLE_RATE))
            oracle.full_band = False
            timed = {}

            def run(label, fn):
                start = time.perf_counter()
                timed[label] = np.asarray(fn(), dtype=np.float64)
                times.setdefault(condition, {})[label] = times.get(condition, {}).get(label, 0.0) + time.perf_counter() - start

            run("corrupted", lambda: bad)
            model.full_band = False
            run("16 kHz only", lambda: model.restore(bad, mask, rate))
            model.full_band = True
            run("interp (native)", lambda: interp_native(bad, mask))
            run("model", lambda: model.restore(bad, mask, rate))
            run("oracle", lambda: upper_only(oracle.restore(bad, mask, rate).astype(np.float64), mask, clean))
            if args.ablations:
                for label, options in ablations.items():
                    run(label, lambda: upper_only(timed["16 kHz only"], mask, **options))
            for label, estimate in timed.items():
                rows.setdefault(condition, {}).setdefault(label, []).append(scores(clean, estimate, mask))
        voices = len({n.rsplit("_desc_", 1)[-1] for n, _, _ in clips})
        rates = "/".join(f"{r / 1000:g}" for r in sorted({r for _, _, r in clips}))
        print(f"\n{condition}: {len(clips)} clips of {voices} held-out voices at {rates} kHz, {audio_seconds:.0f} s\n",
              flush=True)
        summaries = {label: summarise(r, COLUMNS) for label, r in rows[condition].items()}
        wall = {label: f"{t / audio_seconds:.3f}" for label, t in times[condition].items()}
        print(format_table(summaries, COLUMNS, extra={"s / audio s": wall}, label="method",
                           marked=("lsd_above_8k_mask", "visqol_audio")), flush=True)


if __name__ == "__main__":
    sys.exit(run_main(main))
