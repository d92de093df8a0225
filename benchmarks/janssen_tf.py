"""Janssen-TF on the damage of its paper (Mokrý, Balušík, Rajmic, EUSIPCO 2025): whole spectrogram
columns lost, the rest of the original spectrogram known, five gaps per signal, one gap length at a time.

On the validation voices' 6 s segments, GAPS stretches of WIDTH frames of the model grid (8 ms hop, so
a width of 6 is 48 ms) are removed from the clean STFT and filled by baselines.janssen_tf.janssen_tf
at each number of ADMM steps in --steps; the table gives the SNR of the filled coefficients against
the clean ones (zero-filled columns are at 0 dB) and the wall time per audio second.

    python benchmarks/janssen_tf.py --count 10 --widths 2,4,6,8,12 --steps 200,1000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from _common import run_main
from speechinpaint.baselines.janssen_tf import ADMM_STEPS, janssen_tf
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.dsp.spectral import MODEL_GRID

GAPS = 5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--split", default="valid")
    p.add_argument("--count", type=int, default=10, help="6 s segments")
    p.add_argument("--widths", default="2,4,6,8,12", help="comma list of gap widths in frames")
    p.add_argument("--steps", default=str(ADMM_STEPS), help="comma list of ADMM step counts")
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, args.split, args.count)
    widths = [int(w) for w in args.widths.split(",")]
    steps = [int(s) for s in args.steps.split(",")]
    print(f"{len(segs)} segments of 6 s from the {args.split} voices, {GAPS} gaps of lost columns each\n")
    print("| gap | " + " | ".join(f"SNR dB, {s} steps | s / audio s" for s in steps) + " |")
    print("|---|" + "---|---|" * len(steps))
    for width in widths:
        cells = []
        for n in steps:
            snrs, seconds = [], 0.0
            for _, clean in segs:
                spec = MODEL_GRID.stft(torch.from_numpy(clean))
                missing = np.zeros(spec.shape, bool)
                for start in np.linspace(0, spec.shape[-1], GAPS + 2)[1:-1].astype(int):
                    missing[:, start:start + width] = True
                lost = torch.from_numpy(missing)
                began = time.perf_counter()
                filled = janssen_tf(torch.where(lost, 0, spec), missing, steps=n)
                seconds += time.perf_counter() - began
                error = float(((filled[lost] - spec[lost]).abs() ** 2).sum())
                snrs.append(10 * np.log10(float((spec[lost].abs() ** 2).sum()) / error))
            cells += [f"{np.mean(snrs):.2f} ± {np.std(snrs):.2f}", f"{seconds / (6.0 * len(segs)):.3f}"]
        print(f"| {width} frames ({width * MODEL_GRID.hop * 1000 // MODEL_GRID.sample_rate} ms) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(run_main(main))
