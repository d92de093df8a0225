"""Feasibility of a learned holes detector: a small U-Net trained to mark zeroed holes, against the rule.

    python benchmarks/learned_holes.py --steps 850 --limit 12

The rule in detection.py finds a hole's dark core (rounding noise only) but misses its edge cells, which
the loud speech beside the hole refills by leakage; those misses cost most of the PESQ lost with
`--mask auto`. This trains the inpainting network's architecture, small (base 8, 3 levels), to predict
the true cells from the corrupted log-magnitude alone (binary cross-entropy, batches of 16 two-second
crops of the starter corpus's train split with holes from the training mixture's generator, 30 % left
clean, all written through 16-bit PCM as files are), then scores it on the segments and corruptions of
benchmarks/detect.py (held-out voices): IoU against the true mask, the area it marks on clean speech,
and the PESQ of interpolation with each mask against the true one. Training uses a plain loop: this is a
measurement of whether the approach is worth building into the product, not the product's trainer.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from detect import as_pcm16, iou, segments_from
from speechinpaint.audio import SAMPLE_RATE
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.data import CropConfig, CropDataset, read_manifest, speaker_streams
from speechinpaint.detection import detect_mask
from speechinpaint.masks import Mask, cells_to_regions, rasterise
from speechinpaint.metrics import pesq_wb
from speechinpaint.model import InpaintUNet, ModelConfig, make_features
from speechinpaint.restoration import restore
from speechinpaint.spectral import MODEL_GRID, log_magnitude

CLEAN_SHARE = 0.3  # crops left uncorrupted, so marking quiet speech costs loss
BATCH = 16


def features(audio: torch.Tensor) -> torch.Tensor:
    """[B, samples] -> [B, 3, F - 1, T]: the inpainting network's input with nothing marked missing."""
    log_mag = log_magnitude(MODEL_GRID.stft(audio))
    return make_features(log_mag, torch.zeros_like(log_mag, dtype=torch.bool))[0][:, :, :-1]


def train(manifest: Path, steps: int, seed: int) -> InpaintUNet:
    torch.manual_seed(seed)
    streams = speaker_streams(read_manifest(manifest, "train"))
    crops = CropDataset(streams, CropConfig(crop_seconds=2.0, mixture={"holes": 1.0}), steps * BATCH, seed=seed)
    net = InpaintUNet(ModelConfig(base_channels=8, levels=3, bottleneck_dilations=(2, 4)))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    start = time.time()
    for step in range(steps):
        audio, target = [], []
        for i in range(step * BATCH, (step + 1) * BATCH):
            item = crops[i]
            keep_clean = rng.random() < CLEAN_SHARE
            audio.append(torch.from_numpy(as_pcm16(item["clean" if keep_clean else "corrupted"].numpy())))
            target.append(torch.zeros_like(item["missing"][:-1]) if keep_clean else item["missing"][:-1])
        loss = F.binary_cross_entropy_with_logits(net(features(torch.stack(audio))), torch.stack(target).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}, {(time.time() - start) / 60:.1f} min", file=sys.stderr, flush=True)
    print(f"trained {steps} steps in {(time.time() - start) / 60:.1f} min", file=sys.stderr)
    return net.eval()


def marked_cells(net: InpaintUNet, audio: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean [F, T] on the model grid (the Nyquist row copies the row below it)."""
    with torch.no_grad():
        prob = torch.sigmoid(net(features(torch.from_numpy(audio)[None])))[0].numpy()
    return np.pad(prob > threshold, ((0, 1), (0, 0)), mode="edge")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--steps", type=int, default=850)
    p.add_argument("--limit", type=int, default=12, help="6 s held-out segments, as benchmarks/detect.py")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(2)
    manifest = Path(args.manifest)
    net = train(manifest, args.steps, args.seed)

    by_speaker = defaultdict(list)
    with open(manifest, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] == "valid":
                by_speaker[row["speaker"]].append(manifest.parent / row["path"])
    rows = defaultdict(list)
    for name, clean in segments_from(by_speaker, args.limit):
        rows["clean"].append(marked_cells(net, as_pcm16(clean), args.threshold).mean())
        bad, true_mask = corrupt(clean, "holes", file_seed(0, name))
        bad = as_pcm16(bad)
        truth = rasterise(true_mask, MODEL_GRID)
        reference, _ = pesq_wb(clean, restore(bad, true_mask, "interp"))
        found = {"rule (detection.py)": rasterise(detect_mask(bad), MODEL_GRID),
                 "learned": marked_cells(net, bad, args.threshold)}
        for label, cells in found.items():
            mask = Mask(SAMPLE_RATE, len(bad), cells_to_regions(cells, MODEL_GRID, len(bad)))
            score, _ = pesq_wb(clean, restore(bad, mask, "interp"))
            rows[label, "iou"].append(iou(truth, rasterise(mask, MODEL_GRID)))
            rows[label, "drop"].append(score - reference)
        print(f"{name}: clean marked {rows['clean'][-1]:.4f}, "
              + ", ".join(f"{k} IoU {rows[k, 'iou'][-1]:.3f} PESQ {rows[k, 'drop'][-1]:+.2f}" for k in found),
              file=sys.stderr, flush=True)
    print(f"\n{len(rows['clean'])} segments of 6 s, holes 30 %; detector trained {args.steps} steps; grid 512/128\n")
    print("| holes detector | IoU (bar >= 0.8) | interp PESQ auto - true (bar >= -0.2) | area marked on clean (bar <= 0.02) |")
    print("|---|---|---|---|")
    for label in found:
        clean_area = f"{np.mean(rows['clean']):.4f} (max {np.max(rows['clean']):.4f})" if label == "learned" else "see detect.py"
        print(f"| {label} | {np.mean(rows[label, 'iou']):.3f} (min {np.min(rows[label, 'iou']):.3f}) | "
              f"{np.mean(rows[label, 'drop']):+.2f} | {clean_area} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
