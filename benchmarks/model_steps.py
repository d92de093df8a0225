"""The model's steps beyond the U-Net, one at a time: the harmonic comb in holes, the pitch fill in time
gaps, the phase started from each fill, the number of phase iterations, the band's level, and the
envelope head in a missing band.

On the validation voices (the segments quality.py scores), each condition is restored with the shipped
network taken apart (the shipped rows at its default iterations, MODEL_ITERS):

- holes 30 %: interp; the U-Net without the comb (comb_share 0) at 32 iterations and at the default;
  the shipped model (with its comb_share, if any); with --combs, a row per comb share and depth;
- gaps 20 %: interp; the U-Net alone (gap_fill_share 0, random start phase); the pitch fill alone
  (share 1); the shipped blend (its share) from the fill's phase, at 32, the default and 4 iterations;
- band 4 kHz: the narrowband input; sbr; the U-Net from the copied-up phase at full level (band gain
  0 dB), then at the shipped band gain (model.band_gain_db) at 32, the default and 4 iterations; with
  --gains, a row per band gain; and with --head, a checkpoint's envelope head over the copied-up detail
  (configs/envelope.yaml).

Each table lists the field's ranking metrics and the wall time per audio second. --skip scores other
segments (those after the first SKIP), as for choosing the share with --shares, the band gain with
--gains and the comb with --combs:

    python benchmarks/model_steps.py --count 30 --head runs/envelope/checkpoints/best.ckpt
    python benchmarks/model_steps.py --skip 30 --count 30 --conditions gaps --shares 0.4,0.6,0.7
    python benchmarks/model_steps.py --skip 30 --count 30 --conditions band --gains 0,-3,-6,-9,-10.5,-12,-13.5,-15,-16.5,-18,-20
    python benchmarks/model_steps.py --skip 30 --count 30 --conditions holes --combs 0.3:20,0.3:40,0.5:20
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from _common import run_main
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import format_table, score_many, summarise
from speechinpaint.inpainter import Inpainter
from speechinpaint.model import InpaintUNet
from speechinpaint.restorers import make_restorer

CONDITIONS = (("holes", "holes 30 %", {"coverage": 0.30}), ("gaps", "gaps 20 %", {"loss_rate": 0.2}),
              ("band", "band 4 kHz", {"cutoff_hz": 4000.0}))
METRICS = {"holes": ("pesq", "stoi", "visqol", "lsd_mask"), "gaps": ("plcmos", "pesq", "stoi", "visqol"),
           "band": ("lsd", "lsd_high", "visqol", "pesq")}


def variant(shipped: Inpainter, iterations: int, **model) -> Inpainter:
    """The shipped network with some of its model settings changed."""
    network = InpaintUNet(dataclasses.replace(shipped.model.config, **model))
    network.load_state_dict(shipped.model.state_dict())
    return Inpainter(network, shipped.config, iterations=iterations)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--split", default="valid")
    p.add_argument("--count", type=int, default=30, help="6 s segments")
    p.add_argument("--checkpoint", help="default: the shipped model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--head", help="a checkpoint with an envelope head, for its band row")
    p.add_argument("--skip", type=int, default=0, help="score the segments after the first SKIP (other segments)")
    p.add_argument("--shares", default="", help="comma list of more gap_fill_share values, a gaps row each")
    p.add_argument("--gains", default="", help="comma list of band gains (dB), a band row each")
    p.add_argument("--combs", default="", help="comma list of SHARE:DEPTH_DB of the harmonic comb, a holes row each")
    p.add_argument("--conditions", default="holes,gaps,band", help="comma list of the conditions to run")
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, args.split, args.skip + args.count)[args.skip:]
    kinds = [k for k in args.conditions.split(",") if k]
    if sorted(set(kinds) - set(METRICS)):
        raise SpeechInpaintError(f"--conditions takes some of {', '.join(METRICS)} (got {args.conditions})")
    shipped = Inpainter.from_checkpoint(args.checkpoint)
    share = shipped.model.config.gap_fill_share
    if share == 0:
        raise SpeechInpaintError("this checkpoint has no pitch fill share (model.gap_fill_share): nothing to take apart")
    n = shipped.iterations
    gain = shipped.model.config.band_gain_db
    comb = shipped.model.config.comb_share
    rows = {
        "holes": {
            "interp": make_restorer("interp"),
            "U-Net, 32 iterations": variant(shipped, 32, comb_share=0.0),
            f"U-Net, {n} iterations": variant(shipped, n, comb_share=0.0),
            f"U-Net + comb share {comb:g}, {n} iterations (shipped)": shipped,
        },
        "gaps": {
            "interp": make_restorer("interp"),
            "U-Net alone": variant(shipped, n, gap_fill_share=0.0),
            "pitch fill alone": variant(shipped, n, gap_fill_share=1.0),
            f"blend, share {share:g}, 32 iterations": variant(shipped, 32),
            f"blend, share {share:g}, {n} iterations (shipped)": shipped,
            f"blend, share {share:g}, 4 iterations": variant(shipped, 4),
        },
        "band": {
            "narrowband input": make_restorer("zero"),
            "sbr": make_restorer("sbr"),
            f"U-Net, copied phase, full level, {n} iterations": variant(shipped, n, band_gain_db=0.0),
            f"U-Net, copied phase, {gain:g} dB, 32 iterations": variant(shipped, 32),
            f"U-Net, copied phase, {gain:g} dB, {n} iterations (shipped)": shipped,
            f"U-Net, copied phase, {gain:g} dB, 4 iterations": variant(shipped, 4),
        },
    }
    for extra in (float(x) for x in args.shares.split(",") if x):
        rows["gaps"][f"blend, share {extra:g}, {n} iterations"] = variant(shipped, n, gap_fill_share=extra)
    for extra in (x.split(":") for x in args.combs.split(",") if x):
        share_, depth = float(extra[0]), float(extra[1])
        rows["holes"][f"comb share {share_:g}, depth {depth:g} dB"] = variant(shipped, n, comb_share=share_,
                                                                            comb_depth_db=depth)
    for extra in (float(x) for x in args.gains.split(",") if x):
        rows["band"][f"band gain {extra:g} dB, {n} iterations"] = variant(shipped, n, band_gain_db=extra)
    if args.head:
        head = Inpainter.from_checkpoint(args.head, iterations=n)
        if head.model.envelope is None:
            raise SpeechInpaintError(f"{args.head}: this checkpoint has no envelope head")
        rows["band"]["envelope head + copied detail (--head)"] = head
    print(f"{len(segs)} segments of 6 s from the {args.split} voices, after the first {args.skip}")
    for kind, label, kwargs in CONDITIONS:
        if kind not in kinds:
            continue
        cases = [(clean, *corrupt(clean, kind, seed=file_seed(args.seed, f"{kind}:{name}"), **kwargs))
                 for name, clean in segs]
        summaries, rtf = {}, {}
        for name, restorer in rows[kind].items():
            start = time.perf_counter()
            items = [(clean, restorer.restore(corrupted, mask), mask) for clean, corrupted, mask in cases]
            rtf[name] = f"{(time.perf_counter() - start) / (len(cases) * 6.0):.4f}"
            summaries[name] = summarise(score_many(items, args.jobs, f"{kind}/{name}", metrics=METRICS[kind]),
                                        METRICS[kind])
        print(f"\n### {label}\n")
        print(format_table(summaries, METRICS[kind], extra={"s / audio s": rtf}, label="step",
                           marked=METRICS[kind]))


if __name__ == "__main__":
    sys.exit(run_main(main))
