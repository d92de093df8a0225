"""`speechinpaint demo`: corrupt the bundled example three ways, restore it, write wavs and figures, print a table.

The example is a held-out voice (never trained on), so the table is an honest, if tiny, first look.
"""

from __future__ import annotations

from pathlib import Path

from .audio import load_audio, save_audio
from .corruptions import KINDS, corrupt
from .evaluate import format_table, score_many, summarise
from .inpainter import SHIPPED_WEIGHTS, Inpainter
from .masks import mask_path_for, save_mask
from .plot import plot_triplet
from .restorers import InterpRestorer, ZeroRestorer

EXAMPLE = Path(__file__).parent / "examples" / "example.wav"
SEED = 2021


def run_demo(output: str | Path = "demo-output") -> int:
    """Write the demo's wavs, masks and figures to `output` and print its table; returns 0."""
    out = Path(output)
    clean = load_audio(EXAMPLE)
    save_audio(out / "clean.wav", clean)
    inpainter = Inpainter.from_pretrained() if SHIPPED_WEIGHTS.is_file() else None
    best = "model" if inpainter else "interp"
    restorers = {"zero": ZeroRestorer(), "interp": InterpRestorer()}
    if inpainter:
        restorers["model"] = inpainter
    items, names = [], []
    for kind in KINDS:
        corrupted, mask = corrupt(clean, kind, seed=SEED)
        save_audio(out / f"{kind}_corrupted.wav", corrupted)
        save_mask(mask_path_for(out / f"{kind}_corrupted.wav"), mask)
        for method, restorer in restorers.items():
            restored = restorer.restore(corrupted, mask)
            if method != "zero":
                save_audio(out / f"{kind}_{method}.wav", restored)
            items.append((clean, restored, mask))
            names.append(f"{kind} / {'corrupted' if method == 'zero' else method}")
            if method == best:
                plot_triplet(clean, corrupted, restored, mask, out / f"{kind}.png",
                             titles=("clean", f"corrupted ({kind})", f"restored ({method})"))
    rows = score_many(items, desc="score")
    summaries = {name: summarise([row]) for name, row in zip(names, rows)}
    print(f"example: {EXAMPLE.name} ({len(clean) / 16000:.1f} s, a held-out voice); outputs in {out}/")
    if inpainter is None:
        print("no shipped model found: showing the interpolation baseline")
    print(format_table(summaries, label="condition / method"))
    return 0
