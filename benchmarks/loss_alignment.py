"""Why a bar is missed: is the magnitude estimate the limit, and does the training loss follow PESQ?

For each corruption, on held-out 6 s segments, prints for interp and the model: the L1 and the bias
(mean error) of the log-magnitude in the missing bins — what the network is trained on — next to PESQ
and STOI after phase reconstruction; then PESQ when the model's estimate is lowered by a fixed gain,
which shows whether PESQ rewards a quieter (under-) estimate over the loss-optimal one.

    python benchmarks/loss_alignment.py --count 12
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from _common import run_main
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.dsp.interpolation import interpolate_log_magnitude
from speechinpaint.dsp.spectral import MODEL_GRID, log_magnitude
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import missing_bins
from speechinpaint.metrics import score
from speechinpaint.reconstruction import restore_from_magnitude

GAINS_DB = (0.0, -4.3, -8.7, -17.4)  # 0, 0.5, 1, 2 in natural-log magnitude


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--checkpoint", help="default: the shipped model")
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, "valid", args.count)
    ip = Inpainter.from_checkpoint(args.checkpoint)
    print("| condition | method | log-mag L1 in holes | bias | PESQ | STOI |\n|---|---|---|---|---|---|")
    gain_rows = []
    for kind in ("holes", "gaps", "band"):
        rows = {"interp": [], "model": []}
        gains = {g: [] for g in GAINS_DB}
        for name, clean in segs:
            corrupted, mask = corrupt(clean, kind, seed=file_seed(0, f"{kind}:{name}"))
            missing = missing_bins(mask)
            known = MODEL_GRID.stft(torch.from_numpy(corrupted))
            target = log_magnitude(MODEL_GRID.stft(torch.from_numpy(clean)))
            holes = torch.from_numpy(missing)
            model = ip.log_magnitude_estimate(known[None], holes[None])[0]
            interp = interpolate_log_magnitude(log_magnitude(known), holes)
            for method, est in (("interp", interp), ("model", model)):
                restored = restore_from_magnitude(corrupted, mask, est.exp(), missing)
                s = score(clean, restored, mask, ("pesq", "stoi"))
                err = (est - target)[holes]
                rows[method].append((err.abs().mean().item(), err.mean().item(), s["pesq"], s["stoi"]))
            for g in GAINS_DB:
                lowered = torch.where(holes, model + g / 20 * np.log(10), model)
                gains[g].append(score(clean, restore_from_magnitude(corrupted, mask, lowered.exp(), missing), mask, ("pesq",))["pesq"])
        for method, values in rows.items():
            l1, bias, pesq, stoi = (np.mean([v[i] for v in values if v[i] is not None]) for i in range(4))
            print(f"| {kind} | {method} | {l1:.3f} | {bias:+.3f} | {pesq:.2f} | {stoi:.3f} |")
        gain_rows.append((kind, [np.mean(gains[g]) for g in GAINS_DB]))
    print("\nPESQ of the model's restoration with its hole estimate lowered by a fixed gain:\n")
    print("| condition | " + " | ".join(f"{g:+.1f} dB" for g in GAINS_DB) + " |")
    print("|---|" + "---|" * len(GAINS_DB))
    for kind, values in gain_rows:
        print(f"| {kind} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    sys.exit(run_main(main))
