"""Ablations side by side: the validation metrics that training logged for each run, at equal steps.

Every run of `speechinpaint train` writes its validation (STOI / PESQ / LSD per corruption on the same
fixed held-out segments) to runs/NAME/logs/version_*/metrics.csv. This prints, for each run, the last
validation at or before --step (default: the last step every run reached) and the run's best val/pesq,
so a recipe change is compared with the baseline on equal training.

    python benchmarks/ablations.py runs/default runs/ablation-augmentation --step 5000
    python benchmarks/ablations.py runs/envelope runs/ablation-envelope-augmented --step 600
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from speechinpaint.corruptions import KINDS

METRICS = ("pesq", "stoi", "lsd")


def validations(run: Path) -> list[dict]:
    """The validation rows of a run (resumed runs log to several versions), sorted by step."""
    files = sorted(run.glob("logs/version_*/metrics.csv"))
    if not files:
        raise SystemExit(f"{run}: no logs/version_*/metrics.csv (is it a training run folder?)")
    rows = []
    for f in files:
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("val_holes/pesq") or row.get("val/pesq"):  # envelope runs validate the band alone
                    rows.append({k: float(v) for k, v in row.items() if v})
    return sorted(rows, key=lambda r: r["step"])


def mean_pesq(row: dict) -> float:
    """The mean PESQ over the three corruptions (older logs have no val/pesq column)."""
    if "val/pesq" in row:
        return row["val/pesq"]
    return sum(row[f"val_{k}/pesq"] for k in KINDS) / len(KINDS)


def fmt(row: dict) -> str:
    cells = [f"{row[f'val_{k}/{m}']:.{2 if m == 'pesq' else 3}f}" if f"val_{k}/{m}" in row else "-"
             for k in KINDS for m in METRICS]
    return f"{int(row['step']) + 1} | {mean_pesq(row):.3f} | {row.get('val/loss', math.nan):.3f} | " + " | ".join(cells)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (runs/NAME)")
    p.add_argument("--step", type=int, help="compare at the last validation at or before this step")
    args = p.parse_args()
    logs = {run: validations(run) for run in args.runs}
    empty = [str(r) for r, rows in logs.items() if not rows]
    if empty:
        raise SystemExit(f"no validation logged yet in {', '.join(empty)}")
    step = args.step if args.step is not None else min(rows[-1]["step"] + 1 for rows in logs.values())
    header = "| run | which | step | mean PESQ | val L1 | " + " | ".join(f"{k} {m.upper()}" for k in KINDS for m in METRICS) + " |"
    print(f"Validation on the held-out segments logged by training; 'at step' = last validation at or before step {int(step)}.\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for run, rows in logs.items():
        at = [r for r in rows if r["step"] + 1 <= step]
        best = max(rows, key=mean_pesq)
        if at:
            print(f"| {run.name} | at step | {fmt(at[-1])} |")
        print(f"| {run.name} | best | {fmt(best)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
