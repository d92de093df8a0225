"""What limits each condition: the spectral envelope of an estimate or the detail around it.

Every estimate of the missing bins is split on the model grid (512/128) into an envelope (the
log-magnitude averaged over 13 neighbouring bins, about 400 Hz) and the detail around it (log-magnitude
minus its envelope). Four magnitudes fill the missing bins, known bins kept, phase from a random start
as for holes (32 iterations):

- model: the shipped network's estimate (Inpainter.estimate: each kind of damage its own);
- model's envelope + copied detail;
- true envelope + copied detail;
- true magnitude (the oracle).

The copied detail is, for the band, the known fine structure copied up in 2 kHz steps (as spectral band
replication does: 2-4 kHz into 4-6 kHz, that into 6-8 kHz); for gaps and holes, the interpolation
baseline's. So "true envelope + copied detail" says how far a perfect envelope would go with today's
detail, and the rest up to the true magnitude is the detail's share. Scored against the clean segment:
PESQ-wb / ViSQOL / LSD.

    python benchmarks/envelope_probe.py --count 12
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _common import run_main
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.baselines.sbr import copy_up_source
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.dsp.interpolation import interpolate_log_magnitude
from speechinpaint.dsp.spectral import MODEL_GRID, log_magnitude, spectral_envelope
from speechinpaint.evaluate import score_many
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import missing_bins
from speechinpaint.reconstruction import restore_from_magnitude

CONDITIONS = (("band", {"cutoff_hz": 4000.0}), ("gaps", {"loss_rate": 0.2}), ("holes", {"coverage": 0.30}))
VARIANTS = ("model", "model's envelope + copied detail", "true envelope + copied detail", "true magnitude")
METRICS = ("pesq", "visqol", "lsd")


def copied_up_detail(log_mag: torch.Tensor, missing: torch.Tensor, edge: int) -> torch.Tensor:
    """Detail [F, T] of the known bins, and in the missing band from bin `edge` up the detail of the bins
    below the edge copied up (baselines.sbr.copy_up_source: 2 kHz steps at a 4 kHz edge)."""
    detail = log_mag - spectral_envelope(log_mag)
    source = torch.from_numpy(copy_up_source(edge, detail.shape[0], MODEL_GRID.sample_rate / MODEL_GRID.n_fft))
    out = detail.clone()
    out[edge:] = torch.where(missing[edge:], detail[source], detail[edge:])
    return out


def variants(ip: Inpainter, clean: np.ndarray, corrupted: np.ndarray, mask, kind: str) -> dict[str, np.ndarray]:
    missing = missing_bins(mask)
    holes = torch.from_numpy(missing)
    known = MODEL_GRID.stft(torch.from_numpy(corrupted))
    corrupted_log = log_magnitude(known)
    true_log = log_magnitude(MODEL_GRID.stft(torch.from_numpy(clean)))
    model_log = ip.estimate(corrupted, mask, missing)[0]
    if kind == "band":
        detail = copied_up_detail(corrupted_log, holes, int(np.ceil(mask.regions[0].f0 * MODEL_GRID.n_fft
                                                                    / MODEL_GRID.sample_rate)))
    else:
        interp = interpolate_log_magnitude(corrupted_log, holes)
        detail = interp - spectral_envelope(interp)
    logs = {
        VARIANTS[0]: model_log,
        VARIANTS[1]: spectral_envelope(model_log) + detail,
        VARIANTS[2]: spectral_envelope(true_log) + detail,
        VARIANTS[3]: true_log,
    }
    return {name: restore_from_magnitude(corrupted, mask, torch.where(holes, log, corrupted_log).exp(), missing)
            for name, log in logs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--split", default="valid")
    p.add_argument("--count", type=int, default=12, help="6 s segments per condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None)
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, args.split, args.count)
    ip = Inpainter.from_pretrained()
    table = {}
    for kind, kwargs in CONDITIONS:
        items = {v: [] for v in VARIANTS}
        for name, clean in segs:
            corrupted, mask = corrupt(clean, kind, seed=file_seed(args.seed, f"{kind}:{name}"), **kwargs)
            for v, restored in variants(ip, clean, corrupted, mask, kind).items():
                items[v].append((clean, restored, mask))
        table[kind] = {v: score_many(items[v], args.jobs, f"{kind}/{v}", metrics=METRICS) for v in VARIANTS}
    print(f"\n{len(segs)} segments of 6 s per condition; PESQ-wb / ViSQOL / LSD\n")
    print("| condition | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for kind, rows in table.items():
        cells = []
        for v in VARIANTS:
            means = [np.mean([r[m] for r in rows[v] if r[m] is not None]) for m in METRICS]
            cells.append(" / ".join(f"{x:.2f}" for x in means))
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
