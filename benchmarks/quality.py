"""Quality of the shipped model against the baselines and real peers on held-out voices, ranked as each
field ranks.

For each corruption (holes 30 %, gaps 20 %, band 4 kHz) every 6 s segment of the validation voices is
corrupted (seeded), restored by every method that applies, and scored against the clean original with
every metric of metrics.score. Per condition: corrupted, interp, the published or classic peer
(Janssen-TF for holes, AR interpolation for gaps, spectral band replication for the band), the Opus
codec's concealment for gaps (classic PLC, Deep PLC, and FEC, which uses side information), the model,
and the oracle. Each table marks in bold the
metrics its field ranks by (RANKING), then lists the methods in each one's order, the quality bars and
where the model falls short. The Opus methods encode the clean segment, as a sender would, drop the lost
packets and conceal them; like every inpainter here they keep the intact samples (only the concealed
samples are spliced in).

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
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.evaluate import DECIMALS, LABELS, format_table, score_many, summarise
from speechinpaint.metrics import METRICS
from speechinpaint.restorers import make_restorer

CONDITIONS = (
    ("holes", "holes 30 %", {"coverage": 0.30}),
    ("gaps", "gaps 20 %", {"loss_rate": 0.2}),
    ("band", "band 4 kHz", {"cutoff_hz": 4000.0}),
)
# The methods of each condition, in table order ("zero" is shown as "corrupted").
METHODS = {
    "holes": ("zero", "interp", "janssen-tf", "model", "oracle"),
    "gaps": ("zero", "interp", "ar", "opus-plc", "opus-deep-plc", "opus-fec", "model", "oracle"),
    "band": ("zero", "interp", "sbr", "model", "oracle"),
}
# Methods that use the clean segment: the oracle's magnitude, and what an Opus sender encoded.
TAKES_REFERENCE = ("oracle", "opus-plc", "opus-deep-plc", "opus-fec")
# Rows that know more than the damaged signal: not peers to rank the model against.
NOT_A_PEER = ("oracle", "opus-fec")
LABEL = {"zero": "corrupted", "opus-fec": "opus-fec (with side information)"}
# The metrics each field ranks by.
RANKING = {
    "holes": ("pesq", "stoi", "visqol", "lsd_mask"),
    "gaps": ("plcmos", "pesq", "stoi", "visqol"),
    "band": ("lsd", "lsd_high", "visqol"),
}
# The quality bars: (metric, ">=", ">" or "<=", value) per corruption, where a value is a number or
# (a row of the table, an offset): gaps PESQ at least 0.15 above interp's; an extended band that does no
# harm (ViSQOL within 0.05 of the narrowband input's, PESQ 0.1 above it, LSD at most 1.6); holes no worse
# than the first shipped network (PESQ 2.68) beyond noise.
BARS = {
    "holes": (("pesq", ">=", 2.65), ("stoi", ">=", 0.92), ("lsd", "<=", 0.55)),
    "gaps": (("pesq", ">=", ("interp", 0.15)), ("stoi", ">", ("interp", 0.0)), ("plcmos", ">", ("opus-deep-plc", 0.0))),
    "band": (("visqol", ">=", ("corrupted", -0.05)), ("pesq", ">=", ("corrupted", 0.1)), ("lsd", "<=", 1.6)),
}
LOWER_IS_BETTER = ("lsd", "lsd_high", "lsd_mask")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--split", default="valid")
    p.add_argument("--count", type=int, default=30, help="6 s segments")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--checkpoint", help="default: the shipped model")
    p.add_argument("--iterations", type=int, default=None,
                   help="phase reconstruction iterations (default: each method's own, 16 for the model, 32 otherwise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--conditions", default="holes,gaps,band", help="comma list of the conditions to run")
    args = p.parse_args()
    torch.set_num_threads(2)
    segs = evaluation_segments(args.manifest, args.split, args.count, args.seconds)
    kinds = [k for k in args.conditions.split(",") if k]
    unknown = sorted(set(kinds) - set(METHODS))
    if unknown:
        raise SpeechInpaintError(f"--conditions takes some of {', '.join(METHODS)} (got {', '.join(unknown)})")
    # One restorer per method; those that use the clean segment are made per segment.
    shared = {m: make_restorer(m, args.iterations, args.checkpoint)
              for k in kinds for m in METHODS[k] if m not in TAKES_REFERENCE}
    voices = sorted({name.split("/")[0] for name, _ in segs})
    print(f"{len(segs)} segments of {args.seconds:g} s from {len(voices)} held-out voices: {', '.join(voices)}")
    failures = []
    for kind, label, kwargs in CONDITIONS:
        if kind not in kinds:
            continue
        methods = METHODS[kind]
        items = {m: [] for m in methods}
        seconds = {m: 0.0 for m in methods}
        for name, clean in segs:
            corrupted, mask = corrupt(clean, kind, seed=file_seed(args.seed, f"{kind}:{name}"), **kwargs)
            for m in methods:
                restorer = make_restorer(m, args.iterations, reference=clean) if m in TAKES_REFERENCE else shared[m]
                start = time.perf_counter()
                restored = restorer.restore(corrupted, mask)
                seconds[m] += time.perf_counter() - start
                items[m].append((clean, restored, mask))
        summaries = {LABEL.get(m, m): summarise(score_many(items[m], args.jobs, f"{kind}/{m}")) for m in methods}
        audio_seconds = len(segs) * args.seconds
        rtf = {LABEL.get(m, m): f"{seconds[m] / audio_seconds:.3f}" for m in methods}
        print(f"\n### {label}\n")
        print(format_table(summaries, METRICS, extra={"s / audio s": rtf}, label="method", marked=RANKING[kind]))
        print()
        for metric in RANKING[kind]:
            order = sorted(((s[metric]["mean"], name) for name, s in summaries.items() if s[metric]["mean"] is not None),
                           reverse=metric not in LOWER_IS_BETTER)
            print(f"- ranked by {LABELS.get(metric, metric)}: " + " > ".join(f"{n} {v:.{DECIMALS.get(metric, 2)}f}"
                                                                          for v, n in order))
        model = summaries["model"]
        for metric, op, bar in BARS[kind]:
            got = model[metric]["mean"]
            if isinstance(bar, tuple):
                row, offset = bar
                value = summaries[LABEL.get(row, row)][metric]["mean"] + offset
                text = f"{row} {offset:+g} = {value:.3f}" if offset else f"{row} {value:.3f}"
            else:
                value, text = bar, f"{bar:g}"
            ok = {">=": got >= value, ">": got > value, "<=": got <= value}[op]
            print(f"- bar {metric} {op} {text}: {got:.3f} {'met' if ok else 'NOT met'}")
            if not ok:
                failures.append(f"{kind} {metric}")
        peers = [LABEL.get(m, m) for m in methods if m not in (*NOT_A_PEER, "model")]
        for metric in RANKING[kind]:
            a = model[metric]["mean"]
            best = min if metric in LOWER_IS_BETTER else max
            rival = best(peers, key=lambda n: summaries[n][metric]["mean"])
            b = summaries[rival][metric]["mean"]
            if not (a < b if metric in LOWER_IS_BETTER else a > b):
                print(f"- model does not beat {rival} on {metric} ({a:.3f} vs {b:.3f})")
                failures.append(f"{kind} {metric} vs {rival}")
    print("\nall bars met" if not failures else f"\nshort of: {', '.join(failures)}")


if __name__ == "__main__":
    sys.exit(run_main(main))
