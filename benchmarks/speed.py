"""Speed of the shipped model: real-time factor, peak memory on a long file, training throughput.

    python benchmarks/speed.py                # CPU with 2 threads (and the GPU too, where there is one)
    python benchmarks/speed.py --threads 1
    python benchmarks/speed.py --native       # only the native-rate rows (48 kHz stereo)

Real-time factor = wall time of restoration (network + phase reconstruction) / audio duration, for
10 s and 60 s of held-out speech with 30 % holes at the model's default iterations, and for 60 s with
gaps or a missing band, whose phase starts from a fill, at the default and at 4 iterations. Peak memory is the maximum resident set of a fresh
process that restores a 10-minute file (the Python and torch runtime included). Training throughput is
2 s crops per second through one optimiser step (data preparation included), at the default config.
Detection (`detect` and `--mask auto`: lost packets, a missing band, the holes detector) is timed as a
real-time factor on 60 s of held-out speech with 30 % holes, written through 16-bit PCM. Scoring is
timed per metric of metrics.score on one 6 s segment, on one thread, its models already loaded (what
each worker of `evaluate` pays per file).

At a recording's own rate (the full band, dsp/upper_band.py): the same 60 s of speech at 48 kHz in two
channels (the second one the speech 7 s later) with 30 % holes over the whole band (`corrupt`'s
default up to Nyquist), restored per channel, against the 16 kHz mono file with 30 % holes; and the
peak resident memory of `speechinpaint restore` on a 10-minute 48 kHz 24-bit stereo file with
full-band holes (the whole process, runtime included).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time

import numpy as np
import torch

from _common import run_main
from speechinpaint.corpora.manifest import read_manifest
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt, corrupt_signal

MEMORY_CHILD = """
import sys, numpy as np, torch
def peak_mb():
    # VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's over exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
torch.set_num_threads(int(sys.argv[2]))
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt
from speechinpaint.inpainter import Inpainter
segs = evaluation_segments(sys.argv[1], "valid", 100, 6.0)
clean = np.tile(np.concatenate([s for _, s in segs]), 2)[: 600 * 16000]
corrupted, mask = corrupt(clean, "holes", seed=0)
ip = Inpainter.from_pretrained()
before = peak_mb()
out = ip.restore(corrupted, mask)
assert len(out) == len(clean)
print(before, peak_mb())
"""


def speech(manifest: str, seconds: float) -> np.ndarray:
    segs = evaluation_segments(manifest, "valid", 100, 6.0)
    joined = np.concatenate([s for _, s in segs])
    return np.tile(joined, int(np.ceil(seconds * 16000 / len(joined))))[: int(seconds * 16000)]


def fastest_seconds(run, repeats: int = 2) -> float:
    """The best wall time of `repeats` calls of run()."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def rtf(inpainter, clean: np.ndarray, kind: str = "holes") -> float:
    corrupted, mask = corrupt(clean, kind, seed=0)
    inpainter.restore(corrupted[: 16000 * 2], corrupt(clean[: 16000 * 2], kind, seed=0)[1])  # warm-up

    def run():
        inpainter.restore(corrupted, mask)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return fastest_seconds(run) / (len(clean) / 16000)


NATIVE_RATE = 48000


def stereo48(clean16: np.ndarray) -> np.ndarray:
    """[2, samples] at 48 kHz: the speech, and the same speech 7 s later in the second channel."""
    from speechinpaint.audio import resample

    wide = resample(clean16, 16000, NATIVE_RATE)
    return np.stack([wide, np.roll(wide, 7 * NATIVE_RATE)]).astype(np.float64)


def native_seconds_per_channel(inpainter, clean16: np.ndarray) -> tuple[float, float]:
    """(s per channel restoring 48 kHz stereo with full-band holes, s restoring the 16 kHz mono file)."""
    bad16, mask16 = corrupt(clean16, "holes", seed=0)
    bad48, mask48 = corrupt_signal(stereo48(clean16), NATIVE_RATE, "holes", seed=0)
    inpainter.restore(bad16[: 16000 * 2], corrupt(clean16[: 16000 * 2], "holes", seed=0)[1])  # warm-up
    mono = fastest_seconds(lambda: inpainter.restore(bad16, mask16))
    stereo = fastest_seconds(lambda: inpainter.restore(bad48, mask48, NATIVE_RATE))
    return stereo / 2, mono


MEMORY_CLI_CHILD = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def native_peak_mb(manifest: str, threads: int, minutes: float = 10.0) -> float:
    """Peak resident memory (MB) of `speechinpaint restore` on a 48 kHz 24-bit stereo file of `minutes`
    with full-band holes, in a fresh process."""
    import os
    import tempfile
    from pathlib import Path

    import soundfile as sf

    from speechinpaint.masks import mask_path_for, save_mask

    with tempfile.TemporaryDirectory() as tmp:
        bad, mask = corrupt_signal(stereo48(speech(manifest, minutes * 60)), NATIVE_RATE, "holes", seed=0)
        src = Path(tmp) / "long48.wav"
        sf.write(src, bad.T, NATIVE_RATE, subtype="PCM_24")
        save_mask(mask_path_for(src), mask)
        del bad
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        child = subprocess.run([sys.executable, "-c", MEMORY_CLI_CHILD, sys.executable, "-m", "speechinpaint.cli",
                                "restore", str(src), "-o", str(Path(tmp) / "out.wav")],
                               capture_output=True, text=True, check=True, env=env)
        return float(child.stdout.split()[-1])


def detection_rtf(clean: np.ndarray) -> float:
    from speechinpaint.audio import as_pcm16
    from speechinpaint.detection import detect_mask

    corrupted = as_pcm16(corrupt(clean, "holes", seed=0)[0])
    detect_mask(corrupted[: 16000 * 2])  # warm-up, and the detector's weights loaded
    return fastest_seconds(lambda: detect_mask(corrupted)) / (len(clean) / 16000)


def metric_seconds(clean: np.ndarray) -> dict[str, float]:
    """Seconds to score a 6 s holes-damaged segment with each metric alone and with all of them at once
    (the three DNSMOS scores come from one run of its model), on one thread."""
    from speechinpaint.metrics import METRICS, score

    bad, mask = corrupt(clean, "holes", seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        score(clean, bad, mask)  # loads every metric's models once
        alone = {m: fastest_seconds(lambda m=m: score(clean, bad, mask, (m,))) for m in METRICS}
        return {**alone, "every metric": fastest_seconds(lambda: score(clean, bad, mask))}
    finally:
        torch.set_num_threads(threads)


def training_throughput(manifest: str, device: str, steps: int = 6) -> float:
    from speechinpaint.training.config import load_config
    from speechinpaint.training.inpainting import inpainting_task

    settings = load_config("configs/default.yaml")
    settings.data.manifest = manifest
    module, loader, _ = inpainting_task(settings)
    module = module.to(device)
    module.model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(module.parameters(), 1e-3)
    batches = iter(loader)
    done, start = 0, None
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        batch = next(batches)
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with torch.autocast(device if device != "cpu" else "cpu", dtype=torch.bfloat16):
            loss = module.hole_l1(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 1:
            done += len(batch["clean"])
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--native", action="store_true", help="only the native-rate rows (48 kHz stereo, full band)")
    args = p.parse_args()
    for split in ("valid", "train"):  # a corpus not prepared yet fails here, in one line, before any timing
        read_manifest(args.manifest, split)
    torch.set_num_threads(args.threads)
    from speechinpaint.inpainter import Inpainter

    rows = native_rows(args.manifest, args.threads, Inpainter.from_pretrained())
    if not args.native:
        rows += other_rows(args)
    print(f"threads: {args.threads}; CPU: {torch.backends.cpu.get_cpu_capability()}")
    print("| device | measure | value |\n|---|---|---|")
    for device, what, value in rows:
        print(f"| {device} | {what} | {value} |")


def native_rows(manifest: str, threads: int, inpainter) -> list[tuple[str, str, str]]:
    per_channel, mono = native_seconds_per_channel(inpainter, speech(manifest, 60))
    return [("cpu", "60 s, 30 % holes: s per channel at 48 kHz stereo (full band)", f"{per_channel:.2f}"),
            ("cpu", "60 s, 30 % holes: s at 16 kHz mono", f"{mono:.2f}"),
            ("cpu", "48 kHz stereo per channel / 16 kHz mono (target at most 1.5)", f"{per_channel / mono:.2f}"),
            ("cpu", "peak resident memory of `restore` on a 10-minute 48 kHz 24-bit stereo file, full-band holes (MB)",
             f"{native_peak_mb(manifest, threads):.0f}")]


def other_rows(args) -> list[tuple[str, str, str]]:
    from speechinpaint.inpainter import Inpainter

    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        ip = Inpainter.from_pretrained(device=device)
        for seconds in (10, 60):
            rows.append((device, f"real-time factor, {seconds} s file (model + {ip.iterations} phase iterations)",
                         f"{rtf(ip, speech(args.manifest, seconds)):.4f}"))
        combed = Inpainter.from_pretrained(device=device)  # the harmonic comb the shipped file carries off
        combed.model.config = dataclasses.replace(combed.model.config, comb_share=0.3)
        rows.append((device, f"real-time factor, 60 s file, holes with the harmonic comb at 0.3 "
                     f"({combed.iterations} phase iterations)", f"{rtf(combed, speech(args.manifest, 60)):.4f}"))
        for kind, what in (("gaps", "gaps 20 %, pitch fill"), ("band", "band 4 kHz")):
            for iterations in (ip.iterations, 4):
                started = Inpainter.from_pretrained(device=device, iterations=iterations)
                rows.append((device, f"real-time factor, 60 s file, {what} ({iterations} phase iterations)",
                             f"{rtf(started, speech(args.manifest, 60), kind):.4f}"))
        rows.append((device, "training, 2 s crops per second (batch 16, bf16)",
                     f"{training_throughput(args.manifest, device):.1f}"))
    rows.append(("cpu", "real-time factor of detection, 60 s file (gaps, band and holes detectors)",
                 f"{detection_rtf(speech(args.manifest, 60)):.4f}"))
    timings = metric_seconds(speech(args.manifest, 6))
    for metric, seconds in timings.items():
        rows.append(("cpu", f"scoring one 6 s segment, {metric} (s, one thread)", f"{seconds:.3f}"))
    child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, args.manifest, str(args.threads)],
                           capture_output=True, text=True, check=True)
    base, peak = map(float, child.stdout.split())
    rows.append(("cpu", "peak resident memory of a process restoring a 10-minute file (MB)", f"{peak:.0f}"))
    rows.append(("cpu", "of which before restoring: runtime, model, the file and its corruption (MB)", f"{base:.0f}"))
    return rows


if __name__ == "__main__":
    sys.exit(run_main(main))
