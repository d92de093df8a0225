"""How well `--mask auto` finds the damage: IoU against the true mask, area marked on clean speech, and
the restoration quality with the detected mask next to the true one.

    python benchmarks/detect.py --manifest data/starter/manifest.csv --split valid --limit 20
    python benchmarks/detect.py FOLDER_OF_CLEAN_SPEECH --limit 20 [--min-rate 16000]

Clean speech is cut into 6 s segments (clips of one speaker joined in order, as the evaluation does),
corrupted with each kind at its default strength, written through 16-bit PCM as `corrupt` writes files,
then detected. IoU and areas are counted on the model grid (512/128). Bars (issue 6): IoU >= 0.8 for
holes, gaps and band; <= 2 % of the area marked on clean speech; PESQ with the detected mask within
0.2 of PESQ with the true mask. The last column tells where a PESQ loss comes from: interpolation with
only the true cells that were also detected (the misses' cost) and with the union of both masks (the
false marks' cost).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from _common import run_main
from speechinpaint.audio import SAMPLE_RATE, as_pcm16, load_audio
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corruptions import corrupt, file_seed
from speechinpaint.detection import detect_holes, detect_mask
from speechinpaint.dsp.spectral import MODEL_GRID
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.files import list_audio_files
from speechinpaint.hole_detector import HoleDetector
from speechinpaint.masks import Mask, cells_to_regions, rasterise
from speechinpaint.metrics import pesq_wb, stoi
from speechinpaint.restorers import InterpRestorer, make_restorer

SEGMENT = 6 * SAMPLE_RATE
KINDS = ("holes", "gaps", "band")


def segments_from(files_by_speaker: dict[str, list[Path]], limit: int) -> list[tuple[str, np.ndarray]]:
    """6 s segments, each from clips of one speaker joined in order, taken round-robin over speakers."""
    pending = {spk: list(files) for spk, files in sorted(files_by_speaker.items())}
    out: list[tuple[str, np.ndarray]] = []
    while pending and len(out) < limit:
        for spk in list(pending):
            buf, n = [], 0
            while pending[spk] and n < SEGMENT:
                path = pending[spk].pop(0)
                try:
                    clip = load_audio(path)
                except SpeechInpaintError:
                    continue
                buf.append(clip)
                n += len(clip)
            if n >= SEGMENT:
                out.append((f"{spk}/{len(out):03d}", np.concatenate(buf)[:SEGMENT]))
            if not pending[spk] or n < SEGMENT:
                del pending[spk]
            if len(out) >= limit:
                break
    return out


ONE_FRAME = MODEL_GRID.hop / SAMPLE_RATE + 1e-9


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help="folder of clean speech (one speaker per sub-folder or file)")
    p.add_argument("--manifest", help="corpus manifest.csv (path,speaker,language,duration,split)")
    p.add_argument("--split", default="valid")
    p.add_argument("--limit", type=int, default=20, help="number of 6 s segments")
    p.add_argument("--min-rate", type=int, default=0,
                   help="folder: skip files recorded below this sample rate (band-limited already)")
    p.add_argument("--methods", default="interp,model", help="restoration methods to compare")
    p.add_argument("--checkpoint", help="the model to restore with (default: the shipped model)")
    p.add_argument("--detector", help="the holes detector (.ckpt or .pt) to detect with (default: the shipped one)")
    args = p.parse_args()

    by_speaker: dict[str, list[Path]] = defaultdict(list)
    if args.manifest:
        for entry in read_manifest(args.manifest, args.split):
            by_speaker[entry.speaker].append(entry.file)
    elif args.folder:
        for f in list_audio_files(args.folder):
            try:
                native_rate = sf.info(f).samplerate
            except RuntimeError:  # unreadable: segments_from skips it
                native_rate = args.min_rate
            if native_rate >= args.min_rate:
                by_speaker[f.parent.name].append(f)
    else:
        p.error("give a folder of clean speech or --manifest")
    segments = segments_from(by_speaker, args.limit)
    if not segments:
        p.error("no 6 s segment could be made from that input")

    methods = [m for m in args.methods.split(",") if m]
    restorers = {m: make_restorer(m) for m in methods if m != "model"}
    if "model" in methods:
        try:
            restorers["model"] = make_restorer("model", checkpoint=args.checkpoint)
        except Exception as exc:  # no shipped weights yet, or an incompatible file: say so, go on
            print(f"note: method 'model' skipped, the model could not be loaded: {exc}", file=sys.stderr)
            methods.remove("model")
    interp = InterpRestorer()

    detector = HoleDetector.from_checkpoint(args.detector)
    rows = defaultdict(list)
    for i, (name, clean) in enumerate(segments):
        marked = rasterise(detect_mask(as_pcm16(clean), detector), MODEL_GRID).mean()
        rows["clean", "area"].append(marked)
        for kind in KINDS:
            bad, true_mask = corrupt(clean, kind, file_seed(0, name))
            bad = as_pcm16(bad)
            found = detect_mask(bad, detector)
            truth, det = rasterise(true_mask, MODEL_GRID), rasterise(found, MODEL_GRID)
            rows[kind, "iou"].append(iou(truth, det))
            rows[kind, "area"].append(det.mean())
            rows[kind, "true_area"].append(truth.mean())
            if kind == "holes":  # how readable the mask file is: its regions, against the exact cells'
                exact = cells_to_regions(detect_holes(bad, detector=detector), MODEL_GRID, len(bad))
                for label, regions in (("written", found.regions), ("exact", exact)):
                    rows[f"{label}_regions"].append(len(regions))
                    rows[f"{label}_slivers"].append(sum(r.t1 - r.t0 <= ONE_FRAME for r in regions))
            # Which part of the difference costs quality: the true cells that were missed (restore only
            # the true cells also detected) or the false marks (restore the union of both masks).
            both = {"hits": truth & det, "union": truth | det}
            for label, cells in both.items():
                mask = Mask(SAMPLE_RATE, len(bad), cells_to_regions(cells, MODEL_GRID, len(bad)))
                score, _ = pesq_wb(clean, interp.restore(bad, mask))
                rows[kind, f"interp_pesq_{label}"].append(np.nan if score is None else score)
            for method in methods:
                for label, mask in (("true", true_mask), ("auto", found)):
                    est = restorers[method].restore(bad, mask)
                    score, _ = pesq_wb(clean, est)
                    rows[kind, f"{method}_pesq_{label}"].append(np.nan if score is None else score)
                    rows[kind, f"{method}_stoi_{label}"].append(stoi(clean, est) or np.nan)
        print(f"[{i + 1}/{len(segments)}] {name}: clean marked {marked:.4f}, "
              + ", ".join(f"{k} IoU {rows[k, 'iou'][-1]:.3f}" for k in KINDS), file=sys.stderr, flush=True)

    mean = lambda key: float(np.nanmean(rows[key])) if rows.get(key) else float("nan")  # noqa: E731
    print(f"\n{len(segments)} segments of 6 s, {len({n.split('/')[0] for n, _ in segments})} speakers; grid 512/128\n")
    header = "| condition | IoU (bar >= 0.8) | area marked | true area |"
    for m in methods:
        header += f" {m} PESQ true / auto (bar: drop <= 0.2) | {m} STOI true / auto |"
    header += " interp PESQ, true cells detected / union of both masks |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    clean_area = mean(("clean", "area"))
    print(f"| clean (bar <= 0.02) | - | {clean_area:.4f} (max {max(rows['clean', 'area']):.4f}) | 0 |"
          + " - | - |" * len(methods) + " - |")
    for kind in KINDS:
        line = f"| {kind} | {mean((kind, 'iou')):.3f} (min {min(rows[kind, 'iou']):.3f}) | " \
               f"{mean((kind, 'area')):.3f} | {mean((kind, 'true_area')):.3f} |"
        for m in methods:
            pt, pa = mean((kind, f"{m}_pesq_true")), mean((kind, f"{m}_pesq_auto"))
            st, sa = mean((kind, f"{m}_stoi_true")), mean((kind, f"{m}_stoi_auto"))
            line += f" {pt:.2f} / {pa:.2f} ({pa - pt:+.2f}) | {st:.3f} / {sa:.3f} |"
        line += f" {mean((kind, 'interp_pesq_hits')):.2f} / {mean((kind, 'interp_pesq_union')):.2f} |"
        print(line)
    print(f"\nholes masks: {mean('written_regions'):.0f} regions per segment, {mean('written_slivers'):.0f} of them one "
          f"frame long; the detected cells written exactly would take {mean('exact_regions'):.0f} and "
          f"{mean('exact_slivers'):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
