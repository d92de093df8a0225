"""How loud each voice's upper band is against its 2-4 kHz band, training voices beside held-out ones:
what an envelope learnt from the training voices can carry to the held-out ones.

For each voice of the corpus (its clips joined, the first --seconds), the mean power per band on the
model grid (512/128), in dB against the 2-4 kHz band: 4-6 kHz, 6-8 kHz and 4-8 kHz. A table per split,
sorted by 4-8 kHz, and each split's range.

    python benchmarks/upper_band_levels.py
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from _common import run_main
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.streams import speaker_streams
from speechinpaint.dsp.spectral import MODEL_GRID

BANDS = {"4-6 kHz": (4000, 6000), "6-8 kHz": (6000, 8000), "4-8 kHz": (4000, 8000)}
REFERENCE = (2000, 4000)


def band_db(power: np.ndarray, band: tuple[float, float]) -> float:
    freqs = MODEL_GRID.bin_freqs()
    inside = (freqs >= band[0]) & (freqs < band[1])
    return float(10 * np.log10(power[inside].mean() + 1e-12))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--seconds", type=float, default=60.0, help="of each voice")
    args = p.parse_args()
    torch.set_num_threads(2)
    for split in ("train", "valid"):
        rows = []
        for voice, stream in speaker_streams(read_manifest(args.manifest, split)).items():
            audio = torch.from_numpy(stream[: int(args.seconds * MODEL_GRID.sample_rate)])
            power = (MODEL_GRID.stft(audio).abs() ** 2).mean(dim=-1).numpy()
            ref = band_db(power, REFERENCE)
            rows.append((voice, *(band_db(power, b) - ref for b in BANDS.values())))
        rows.sort(key=lambda r: r[-1])
        print(f"\n{split}: {len(rows)} voices, dB against 2-4 kHz\n")
        print("| voice | " + " | ".join(BANDS) + " |\n|---|" + "---|" * len(BANDS))
        for voice, *levels in rows:
            print(f"| {voice} | " + " | ".join(f"{x:+.1f}" for x in levels) + " |")
        wide = [r[-1] for r in rows]
        print(f"\n{split} 4-8 kHz: from {min(wide):+.1f} to {max(wide):+.1f} dB, median {np.median(wide):+.1f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
