"""`speechinpaint demo`: corrupt the bundled example three ways, restore it, write wavs, figures and a
listening page (index.html: each figure with a player under the clean, corrupted and restored clips, as
papers' demo pages present inpainting results), print a table.

The example is a held-out voice (never trained on), so the table is an honest, if tiny, first look.
"""

from __future__ import annotations

import html
from pathlib import Path

from .audio import load_audio, save_audio
from .corruptions import KINDS, corrupt
from .evaluate import format_table, score_many, summarise
from .files import atomic_write
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
    table = format_table(summaries, label="condition / method")
    print(table)
    page = listening_page([m for m in restorers if m != "zero"], best, table)
    atomic_write(out / "index.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return 0


def listening_page(methods: list[str], plotted: str, table: str) -> str:
    """index.html beside the demo's files: per kind of damage its figure and a player for each clip."""
    def player(label: str, name: str) -> str:
        return f'<figure><figcaption>{html.escape(label)}</figcaption><audio controls preload="none" src="{name}"></audio></figure>'

    sections = []
    for kind in KINDS:
        players = [player("clean", "clean.wav"), player(f"corrupted ({kind})", f"{kind}_corrupted.wav")]
        players += [player(f"restored ({m})", f"{kind}_{m}.wav") for m in methods]
        sections.append(f'<section><h2>{kind}</h2><img src="{kind}.png" alt="clean, corrupted and restored '
                        f'({plotted}) spectrograms, {kind}" width="800"><div class="players">{"".join(players)}</div></section>')
    rows = [line.strip("|").split("|") for line in table.splitlines() if not line.startswith("|---")]
    cells = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c.strip())}</{'th' if i == 0 else 'td'}>"
                                      for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>speechinpaint demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}.players{{display:flex;flex-wrap:wrap;gap:1em}}
figure{{margin:0}}figcaption{{font-size:90%}}table{{border-collapse:collapse;font-size:85%}}td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body><h1>speechinpaint demo</h1>
<p>The bundled example ({html.escape(EXAMPLE.name)}, a voice the model never heard) with holes, lost packets and a
missing band, restored by {html.escape(", ".join(methods))}. Each figure shows the clean, corrupted and restored
({html.escape(plotted)}) spectrograms with the mask outlined.</p>
{"".join(sections)}
<h2>Scores against the clean clip</h2><table>{cells}</table>
</body></html>
"""
