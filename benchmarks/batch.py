"""Throughput of a batch: one process, `--workers 2` and a two-node Ray cluster on this machine.

    python benchmarks/batch.py                 # 40 files of 6 s from the starter corpus's validation voices
    python benchmarks/batch.py --files 8       # a quick look

The same folder of damaged files (30 % holes seeded per file, 16-bit PCM) is restored with the shipped
model by `speechinpaint restore` run as a user runs it, a fresh process each time (importing torch,
loading the model and reading the files included): with `--workers 1` (one process, torch on every
core, as before batches), with `--workers 2`, and with `--ray` on a loopback cluster of two nodes of
one CPU each (cluster.LoopbackCluster, the README's set-up). Each row gives the wall time, files per
second and hours of audio restored per hour, the fastest of --repeats runs taken in turn. The Ray
run's outputs are checked to equal `--workers 2`'s byte for byte (one torch thread per file in both).

Ray's overhead per file is the Ray run's wall time less the `--workers 2` run's, over the files: both
run two single-threaded workers on the same cores, so the difference is what Ray costs (joining the
cluster, the storage check, starting its workers, a task per file). The round trip of an empty Ray task
is timed on its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from _common import run_main
from speechinpaint.audio import SAMPLE_RATE
from speechinpaint.batch import RECORD_NAME, cpu_cores
from speechinpaint.corpora.streams import evaluation_segments
from speechinpaint.corruptions import corrupt
from speechinpaint.masks import mask_path_for, save_mask

import soundfile as sf


def restore(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one `speechinpaint restore` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "speechinpaint.cli", "restore", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


def empty_task_ms(address: str, count: int = 40) -> float:
    """Mean round trip of an empty Ray task, one after another, once the cluster's workers are warm."""
    import ray

    ray.init(address=address, _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="ERROR")
    try:
        noop = ray.remote(lambda: None).options(num_cpus=1)
        ray.get([noop.remote() for _ in range(4)])
        start = time.perf_counter()
        for _ in range(count):
            ray.get(noop.remote())
        return 1000 * (time.perf_counter() - start) / count
    finally:
        ray.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/starter/manifest.csv")
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=2, help="runs of each kind, in turn; the fastest counts")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="si-batch-"))
    try:
        measure(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(a: argparse.Namespace, work: Path) -> None:
    from speechinpaint.cluster import LoopbackCluster

    holes = work / "holes"
    holes.mkdir()
    segments = evaluation_segments(a.manifest, "valid", a.files, a.seconds)
    for i, (_, audio) in enumerate(segments):
        damaged, mask = corrupt(audio, "holes", seed=i)
        sf.write(holes / f"{i:03d}.wav", damaged, SAMPLE_RATE, subtype="PCM_16")
        save_mask(mask_path_for(holes / f"{i:03d}.wav"), mask)
    hours = len(segments) * a.seconds / 3600
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), RAY_USAGE_STATS_ENABLED="0")
    cluster = LoopbackCluster(work / "ray", env)
    (work / "ray").mkdir()
    runs = {"one process (torch on every core)": ["--workers", "1"], "--workers 2": ["--workers", "2"],
            "--ray, two nodes of 1 CPU on 127.0.0.1": ["--ray", cluster.address]}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    try:
        cluster.start("head")
        cluster.start("node2")
        for r in range(a.repeats):  # the runs in turn, so a busy spell of the machine falls on all of them
            for k, (name, options) in enumerate(runs.items()):
                walls[name].append(restore([str(holes), "-o", str(work / f"out{r}_{k}"), *options], env))
            # One torch thread per file in both: the same bytes.
            assert outputs(work / f"out{r}_2") == outputs(work / f"out{r}_1"), "--ray wrote other bytes than --workers 2"
        round_trip = empty_task_ms(cluster.address)
    finally:
        cluster.close()
    rows = [(name, min(w)) for name, w in walls.items()]

    print(f"{len(segments)} files of {a.seconds:g} s ({hours:.3f} h of audio), 30 % holes, shipped model; "
          f"{cpu_cores()} cores; the fastest of {a.repeats} wall times of the whole command (start-up "
          "included)\n")
    print("| run | wall s | files/s | audio h per h | every run's wall s |")
    print("|---|---|---|---|---|")
    for name, wall in rows:
        every = ", ".join(f"{w:.1f}" for w in walls[name])
        print(f"| {name} | {wall:.1f} | {len(segments) / wall:.2f} | {hours * 3600 / wall:.1f} | {every} |")
    overhead = (rows[2][1] - rows[1][1]) / len(segments)
    print(f"\nRay's overhead per file ((--ray wall - --workers 2 wall) / files): {overhead:.3f} s")
    print(f"Round trip of an empty Ray task, warm workers: {round_trip:.1f} ms")
    print(f"(--ray wrote the bytes of --workers 2, one torch thread per file in both; record: OUT/{RECORD_NAME})")


if __name__ == "__main__":
    sys.exit(run_main(main))
