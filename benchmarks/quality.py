"""Quality of the shipped model against the baselines on held-out voices, with the issue's bars.

For each corruption (holes 30 %, gaps 20 %, band 4 kHz) every 6 s segment of the validation voices is
corrupted (seeded), restored by zero / interp / model / oracle, and scored against the clean original
(STOI, PESQ-wb, LSD, LSD in the mask). Prints one table per corruption and the bar checks.

    python benchmarks/quality.py --manifest data/starter/manifest.csv --count 30
    python benchmarks/quality.py --checkpoint runs/default/checkpoints/best.ckpt
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from _common import run_main
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.evaluate import format_table, score_many, summarise
from speechinpaint.restorers import OracleRestorer, make_restorer

CONDITIONS = (
    ("holes", "holes 30 %", {"coverage": 0.30}),
    ("gaps", "gaps 20 %", {"loss_rate": 0.2}),
    ("band", "band 4 kHz", {"cutoff_hz": 4000.0}),
)
METRICS = ("stoi", "pesq", "lsd", "lsd_mask")
# The quality bars: (metric, ">=" or "<=", value) per corruption.
BARS = {
    "holes": (("pesq", ">=", 2.4), ("stoi", ">=", 0.92), ("lsd", "<=", 0.55)),
    "gaps": (("pesq", ">=", 2.2), ("stoi", ">=", 0.90)),
    "band": (("pesq", ">=", 3.9), ("lsd", "<=", 1.0)),
}
HIGHER_IS_BETTER = {"stoi": True, "pesq": True, "lsd": False, "lsd_mask": False}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--split", default="valid")
    p.add_argument("--count", type=int, default=30, help="6 s segments")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--checkpoint", help="default: the shipped model")
    p.add_argument("--iterations", type=int, default=32, help="phase reconstruction iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None)
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, args.split, args.count, args.seconds)
    methods = ("zero", "interp", "model", "oracle")
    # One restorer per method; the oracle's is made per segment, from that segment's clean audio.
    restorers = {m: make_restorer(m, args.iterations, args.checkpoint) for m in methods if m != "oracle"}
    voices = sorted({name.split("/")[0] for name, _ in segs})
    print(f"{len(segs)} segments of {args.seconds:g} s from {len(voices)} held-out voices: {', '.join(voices)}")
    failures = []
    for kind, label, kwargs in CONDITIONS:
        items = {m: [] for m in methods}
        seconds = {m: 0.0 for m in methods}
        for name, clean in segs:
            corrupted, mask = corrupt(clean, kind, seed=file_seed(args.seed, f"{kind}:{name}"), **kwargs)
            for m in methods:
                restorer = OracleRestorer(clean, args.iterations) if m == "oracle" else restorers[m]
                start = time.perf_counter()
                restored = restorer.restore(corrupted, mask)
                seconds[m] += time.perf_counter() - start
                items[m].append((clean, restored, mask))
        summaries = {}
        for m in methods:
            summaries["corrupted" if m == "zero" else m] = summarise(score_many(items[m], args.jobs, f"{kind}/{m}"), METRICS)
        audio_seconds = len(segs) * args.seconds
        rtf = {("corrupted" if m == "zero" else m): f"{seconds[m] / audio_seconds:.3f}" for m in methods}
        print(f"\n### {label}\n")
        print(format_table(summaries, METRICS, extra={"s / audio s": rtf}, label="method"))
        model = summaries["model"]
        for metric, op, value in BARS[kind]:
            got = model[metric]["mean"]
            ok = got >= value if op == ">=" else got <= value
            print(f"- bar {metric} {op} {value}: {got:.3f} {'met' if ok else 'NOT met'}")
            if not ok:
                failures.append(f"{kind} {metric}")
        for metric in METRICS:
            a, b = model[metric]["mean"], summaries["interp"][metric]["mean"]
            better = a > b if HIGHER_IS_BETTER[metric] else a < b
            if not better:
                print(f"- model does not beat interp on {metric} ({a:.3f} vs {b:.3f})")
                failures.append(f"{kind} {metric} vs interp")
    print("\nall bars met" if not failures else f"\nshort of: {', '.join(failures)}")


if __name__ == "__main__":
    sys.exit(run_main(main))
