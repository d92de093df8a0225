"""Memory of the editor's server (`speechinpaint edit`): uploads under a memory budget, and one document
through a series of restores.

    python benchmarks/editor_memory.py                 # 3 minutes of 48 kHz stereo 16-bit, 4 uploads
    python benchmarks/editor_memory.py --minutes 1 --uploads 3

The audio is the bundled example clip (a held-out voice) repeated and resampled to 48 kHz stereo, so the
figures need no corpus. Uploads go through the real app (its HTTP layer in process) in a fresh process
per budget: after each upload, the documents open, the bytes they hold (samples, restored versions,
cached detector maps) and the process's resident set. The restores (interp, on alternately three lost
packets per second and a wide hole) show what one document holds against its decoded samples, beside
what it would hold if each version were a full copy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from _common import run_main

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "speechinpaint" / "examples" / "example.wav"

UPLOAD_CHILD = """
import sys, gc
from fastapi.testclient import TestClient
from speechinpaint.editor.server import create_app
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
path, budget, uploads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = TestClient(create_app(memory_budget=budget), base_url="http://127.0.0.1")
body = open(path, "rb").read()
print(f"0 0 0 {rss_mb():.0f}")
for i in range(uploads):
    r = client.post("/api/documents", files={"audio": ("take.wav", body)})
    assert r.status_code == 200, r.text
    gc.collect()
    docs = client.app.state.documents.by_id
    print(f"{i + 1} {len(docs)} {sum(d.nbytes for d in docs.values()) / 1e6:.0f} {rss_mb():.0f}")
"""


def stereo_48k(minutes: float) -> np.ndarray:
    from speechinpaint.audio import load_audio, resample

    clip = resample(load_audio(EXAMPLE), 16000, 48000)
    n = int(minutes * 60 * 48000)
    x = np.tile(clip, -(-n // len(clip)))[:n]
    return np.stack([x, 0.7 * x]).astype(np.float64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="length of the uploaded file")
    p.add_argument("--uploads", type=int, default=4)
    p.add_argument("--budgets", default="2G,0.5G", help="memory budgets to compare (decimal G)")
    p.add_argument("--restores", type=int, default=6)
    args = p.parse_args()

    import tempfile

    import soundfile as sf

    from speechinpaint.audio import Recording
    from speechinpaint.editor.documents import Document
    from speechinpaint.masks import Mask, Region
    from speechinpaint.restorers import make_restorer
    from speechinpaint.recording import restore_signal

    signal = np.round(stereo_48k(args.minutes) * 0.5 * 32768) / 32768
    decoded = signal.nbytes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "take.wav"
        sf.write(path, signal.T, 48000, subtype="PCM_16")
        size = path.stat().st_size
        print(f"\n{args.minutes:g} min of 48 kHz stereo 16-bit: file {size / 1e6:.0f} MB, decoded (float64) "
              f"{decoded / 1e6:.0f} MB\n")
        print("| budget | uploads | documents open | held (MB) | resident set (MB) |\n|---|---|---|---|---|")
        for budget in args.budgets.split(","):
            limit = int(float(budget.rstrip("Gg")) * 1e9)
            out = subprocess.run([sys.executable, "-c", UPLOAD_CHILD, str(path), str(limit), str(args.uploads)],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.split("\n"):
                if line.strip():
                    count, open_, held, rss = line.split()
                    print(f"| {budget} | {count} | {open_} | {held} | {rss} |")

    doc = Document("bench", "take.wav", Recording(signal, 48000, "PCM_16", "WAV"))
    duration = signal.shape[1] / 48000
    gaps = Mask(48000, signal.shape[1], [Region(t, t + 0.02, 0.0, 24000.0) for t in np.arange(0.5, duration - 1, 1 / 3)])
    hole = Mask(48000, signal.shape[1], [Region(0.2, min(duration - 0.1, 20.0), 300.0, 4000.0, channel=0)])
    interp = make_restorer("interp", iterations=1)  # memory, not quality
    print("\n| restores | mask | held / decoded | as full copies / decoded |\n|---|---|---|---|")
    for k in range(1, args.restores + 1):
        mask, name = (gaps, "3 lost packets a second") if k % 2 else (hole, "a 20 s hole, channel 0")
        doc.add_version(restore_signal(interp, signal, 48000, mask))
        print(f"| {k} | {name} | {doc.nbytes / decoded:.2f} | {1 + k:.2f} |")


if __name__ == "__main__":
    sys.exit(run_main(main))
