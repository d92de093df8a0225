"""Choose the holes detector's threshold and speckle size on crops of the TRAIN split (never on the
held-out voices that benchmarks/detect.py reports on).

    python benchmarks/detector_threshold.py --checkpoint runs/holes_detector/checkpoints/last.ckpt

Draws 4 s crops of the train split as training does, all with holes (coverage 0.2-0.4, random gain,
another seed than training's), runs the detector on each crop and on the same crop clean, and for each
threshold and smallest kept patch prints the mean IoU on corrupted crops and the mean share of a clean
crop that is marked. The values shipped in hole_detector.THRESHOLD and detection.HOLE_MIN_CELLS are the
row with the highest IoU among those marking at most 1 % of clean crops (half the issue's bar, a margin
for voices not trained on).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from _common import run_main
from speechinpaint.audio import as_pcm16
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.streams import speaker_streams
from speechinpaint.detection import drop_speckle
from speechinpaint.hole_detector import HoleDetector
from speechinpaint.training.data import CropConfig, CropDataset

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MIN_CELLS = (0, 16, 64, 256)
CLEAN_LIMIT = 0.01


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="detector .ckpt or .pt (default: the shipped one)")
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--crops", type=int, default=120)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(2)
    entries = read_manifest(args.manifest, "train")
    detector = HoleDetector.from_checkpoint(args.checkpoint)
    streams = speaker_streams(entries)
    crops = CropDataset(streams, CropConfig(crop_seconds=4.0, mixture={"holes": 1.0}), args.crops, args.seed)
    scores = {(t, m): ([], []) for t in THRESHOLDS for m in MIN_CELLS}
    for i in range(args.crops):
        item = crops[i]
        truth = item["missing"][:-1].numpy()
        bad = detector.probabilities(as_pcm16(item["corrupted"].numpy()))
        clean = detector.probabilities(as_pcm16(item["clean"].numpy()))
        for t, m in scores:
            found = drop_speckle(bad > t, m)
            scores[t, m][0].append(np.count_nonzero(found & truth) / max(np.count_nonzero(found | truth), 1))
            scores[t, m][1].append(drop_speckle(clean > t, m).mean())
        if (i + 1) % 20 == 0:
            print(f"{i + 1} crops", file=sys.stderr, flush=True)
    print(f"\n{args.crops} train-split crops of 4 s, holes coverage 0.2-0.4 (IoU) and the same crops clean (marked)\n")
    print("| threshold | smallest patch (cells) | IoU on holes | share of clean marked (max) |")
    print("|---|---|---|---|")
    best = max((k for k in scores if np.mean(scores[k][1]) <= CLEAN_LIMIT), key=lambda k: np.mean(scores[k][0]), default=None)
    for (t, m), (ious, clean) in scores.items():
        flag = " **chosen**" if (t, m) == best else ""
        print(f"| {t} | {m} | {np.mean(ious):.3f} | {np.mean(clean):.4f} ({np.max(clean):.4f}){flag} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
