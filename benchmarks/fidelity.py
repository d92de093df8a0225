"""Fidelity of restoring a recording in its own terms: what changes besides the damage, and at what cost.

Two recordings are built from the bundled 44.1 kHz clips (tests/data/*_44k.flac, real content above
8 kHz): a 48 kHz 24-bit stereo file with different speech in each channel, and a 44.1 kHz mono file;
the 16 kHz demo clip, which the 16 kHz pipeline restores directly, shows that pipeline's own spread.
Each is damaged at its own rate with 30 % holes below 8 kHz (corrupt_signal, seeded) and restored with
the shipped model at its own rate (recording.restore_signal). Printed per file:

- PESQ (native): each channel, downmixed to 16 kHz, against the clean channel at 16 kHz;
- PESQ (16 kHz pipeline): the same damaged channel resampled to 16 kHz and restored there, as a 16 kHz
  file would be (target: the two within 0.05);
- change outside the mask: energy of output minus input in the native STFT bins outside the mask, in
  dB relative to the input's energy, over all bins outside and over those beyond one window's reach of
  any masked bin (target for the latter: -60 dB or lower);
- change above 8 kHz: energy of output minus input above 8 kHz relative to the input's there;
- gaps only: whether every sample outside the gaps of a 20 % packet-loss mask comes back bit-identical
  through a real file round trip (write, read, restore, write);
- wall time of the restoration per second of audio (all channels).

    python benchmarks/fidelity.py [--iterations 16] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy import ndimage

from _common import run_main
from speechinpaint.audio import SAMPLE_RATE, read_recording, resample, write_recording
from speechinpaint.corruptions import corrupt_signal
from speechinpaint.inpainter import Inpainter
from speechinpaint.masks import gap_sample_mask, rasterise
from speechinpaint.metrics import pesq_wb
from speechinpaint.recording import native_grid, restore_signal

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "speechinpaint" / "examples" / "example.wav"


def recordings() -> list[tuple[str, np.ndarray, int, str]]:
    """(label, [channels, samples] float64, rate, subtype) of the two test recordings."""
    a, rate = sf.read(DATA / "da_7spoke_44k.flac", dtype="float64")
    b, _ = sf.read(DATA / "da_mars_44k.flac", dtype="float64")
    n = max(len(a), len(b))
    a, b = np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))
    stereo48 = np.stack([resample(a, rate, 48000), resample(b, rate, 48000)]).astype(np.float64)
    stereo48 = np.round(stereo48 * 2**23) / 2**23  # as a 24-bit file holds it
    mono44 = np.concatenate([a, b])[None]
    demo = sf.read(EXAMPLE, dtype="float64")[0][None]
    return [("48 kHz 24-bit stereo", stereo48, 48000, "PCM_24"), ("44.1 kHz 16-bit mono", mono44, rate, "PCM_16"),
            ("16 kHz 16-bit mono (the demo clip)", demo, SAMPLE_RATE, "PCM_16")]


def db(part: float, whole: float) -> float:
    return float(10 * np.log10(max(part, 1e-30) / max(whole, 1e-30)))


def outside_change(clean_in: np.ndarray, out: np.ndarray, mask, rate: int) -> tuple[float, float, float | None]:
    """(dB outside the mask, dB beyond one window of it, dB above 8 kHz or None where the file has no band
    there) of out - in, summed over channels."""
    grid = native_grid(rate)
    inside = rasterise(mask, grid)
    # A window overlaps the 3 frames on each side of its own, and a Hann window's main lobe spans 2 bins each side.
    reach = ndimage.binary_dilation(inside, np.ones((5, 7), bool))
    high = grid.bin_freqs() > SAMPLE_RATE / 2
    totals = np.zeros(5)
    for x, y in zip(clean_in, out):
        delta = grid.stft(torch.from_numpy((y - x).astype(np.float32))).abs().numpy() ** 2
        power = grid.stft(torch.from_numpy(x.astype(np.float32))).abs().numpy() ** 2
        totals += [delta[~inside].sum(), delta[~reach].sum(), delta[high].sum(), power.sum(), power[high].sum()]
    return db(totals[0], totals[3]), db(totals[1], totals[3]), db(totals[2], totals[4]) if high.any() else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=16, help="phase iterations (the model's default)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = Inpainter.from_pretrained(iterations=args.iterations)
    rows = []
    for label, clean, rate, subtype in recordings():
        bad, mask = corrupt_signal(clean, rate, "holes", args.seed, coverage=0.30, max_freq=8000)
        bad = np.round(bad * 2 ** (int(subtype[-2:]) - 1)) / 2 ** (int(subtype[-2:]) - 1)  # as the file holds it
        start = time.perf_counter()
        out = restore_signal(model, bad, rate, mask)
        seconds = time.perf_counter() - start
        native, pipeline = [], []
        for c in range(clean.shape[0]):
            ref16 = resample(clean[c], rate, SAMPLE_RATE)
            bad16 = resample(bad[c], rate, SAMPLE_RATE)
            n = len(ref16)
            native.append(pesq_wb(ref16, resample(out[c], rate, SAMPLE_RATE)[:n])[0])
            mask16 = mask.at_rate(SAMPLE_RATE, n)
            pipeline.append(pesq_wb(ref16, model.restore(bad16, mask16))[0])
        outside, beyond, above = outside_change(bad, out, mask, rate)
        gaps_bad, gaps_mask = corrupt_signal(clean, rate, "gaps", args.seed, loss_rate=0.2)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gaps.wav"
            write_recording(path, gaps_bad, rate, subtype)
            held = read_recording(path)
            restored = restore_signal(model, held.samples, rate, gaps_mask)
            write_recording(Path(tmp) / "out.wav", restored, rate, subtype)
            back = read_recording(Path(tmp) / "out.wav").samples
        keep = ~gap_sample_mask(gaps_mask)
        identical = bool(np.array_equal(back[:, keep], held.samples[:, keep]))
        rows.append((label, float(np.mean(native)), float(np.mean(pipeline)), outside, beyond, above, identical,
                     seconds / (clean.shape[1] / rate)))
    print(f"holes 30 % below 8 kHz, seed {args.seed}; shipped model, {args.iterations} phase iterations, "
          f"{torch.get_num_threads()} torch threads\n")
    print("| recording | PESQ native | PESQ 16 kHz pipeline | difference | change outside the mask (dB) | "
          "beyond one window of it (dB) | change above 8 kHz (dB) | gaps: outside samples identical | s / audio s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, native, pipeline, outside, beyond, above, identical, rtf in rows:
        above_text = "-" if above is None else f"{above:.1f}"
        print(f"| {label} | {native:.2f} | {pipeline:.2f} | {native - pipeline:+.2f} | {outside:.1f} | {beyond:.1f} | "
              f"{above_text} | {'yes' if identical else 'NO'} | {rtf:.3f} |")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
