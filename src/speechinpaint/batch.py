"""Batches of files: every input is one independent job, run in this process, on every core of this
machine (`--workers N`, a process pool) or over a Ray cluster (`--ray ADDRESS`, cluster.py), with a
record of each file as it finishes (OUT/speechinpaint-batch.jsonl) that `--resume` reads.

A command says what it does to one file as a FileJob (jobs.py). The same job runs in every mode, so a batch
writes the same bytes whichever runs it, up to the order of floating-point sums where the torch
threads per file differ. Outputs are written atomically by the jobs themselves (files.atomic_write_all),
so a worker killed mid-file leaves no half-written output, and its file has no line in the record.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from .errors import SpeechInpaintError
from .files import atomic_write, remove_partial_files
from .jobs import FileJob, Item, Outcome, prepared, run_one
from .progress import LINE_SECONDS

RECORD_NAME = "speechinpaint-batch.jsonl"


def cpu_cores() -> int:
    """The cores this process may use (its affinity where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- runners: each yields the outcomes as files finish; stop() cancels what has not started -----------

class InProcess:
    """One file after another in this process, at this process's torch threads (the one-process run)."""

    def __init__(self, job: FileJob, items: list[Item], file_progress: bool):
        if items:
            prepared(job)  # a bad checkpoint is one error before any file
        self.job, self.items, self.file_progress = job, items, file_progress

    def outcomes(self):
        for item in self.items:
            yield run_one(self.job, item, self.file_progress)

    def stop(self) -> list[Outcome]:
        return []

    def close(self) -> None:
        pass


def _init_pool_worker(threads: int) -> None:
    """A pool worker: its share of the cores as torch threads; Ctrl-C is the parent's to handle."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


class ProcessPool:
    """`--workers N` on this machine: a process pool, each worker with cores // N torch threads and the
    job's model loaded on its first file. Workers are forked where the system can (a spawned worker
    re-imports torch for seconds), as evaluate's are; the parent runs no torch work before."""

    def __init__(self, job: FileJob, items: list[Item], workers: int):
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        threads = max(1, cpu_cores() // workers)
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(threads,))
        self.futures = {self.pool.submit(run_one, job, item): item for item in items}

    def outcomes(self):
        for future in cf.as_completed(list(self.futures)):
            item = self.futures.pop(future)
            yield self._outcome(future, item)

    def _outcome(self, future: cf.Future, item: Item) -> Outcome:
        try:
            return future.result()
        except cf.process.BrokenProcessPool as exc:
            return Outcome(item.input, item.output, "failed", f"{item.name}: a worker process died ({exc})", name=item.name)

    def stop(self) -> list[Outcome]:
        for future in self.futures:
            future.cancel()
        done = cf.wait(list(self.futures)).done  # the files under way finish (their outputs are whole)
        return [self._outcome(f, self.futures[f]) for f in done if not f.cancelled()]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- the record, progress and the batch itself ------------------------------------------------------

class BatchRecord:
    """OUT/speechinpaint-batch.jsonl: a line per input as it finishes, then a closing line. Each line is
    written whole and flushed to disk, so a batch killed at any point leaves a record resume can read."""

    def __init__(self, path: Path, append: bool):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if append and path.is_file():  # a line a crash cut short is dropped, so every line stays JSON
            text = "".join(f"{json.dumps(doc)}\n" for doc in read_record(path))
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        self.file = open(path, "a" if append else "w", encoding="utf-8")

    def write(self, doc: dict) -> None:
        self.file.write(json.dumps(doc) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def read_record(path: Path) -> list[dict]:
    """The lines of a batch record, without any a crash cut short (its file is not recorded as finished)."""
    docs = []
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def finished_outputs(record: Path, done: str) -> set[str]:
    """The outputs a record says are finished (their last line: `done`, or skipped as finished before)."""
    last = {doc["output"]: doc.get("status") for doc in (read_record(record) if record.is_file() else [])
            if "output" in doc}
    return {out for out, status in last.items() if status in (done, "skipped")}


def audio_seconds(path: str) -> float:
    """A file's duration from its header (0 when it cannot be read: it will fail on its own)."""
    try:
        return float(sf.info(path).duration)
    except Exception:  # soundfile raises several types for unreadable files
        return 0.0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class BatchProgress:
    """Files and hours of audio done, the rate (audio hours per hour) and the time left: a bar on a
    terminal, a plain line every LINE_SECONDS elsewhere."""

    def __init__(self, desc: str, files: int, audio: float, enabled: bool, interval: float = LINE_SECONDS):
        self.desc, self.files, self.audio, self.interval = desc, files, audio, interval
        self.files_done, self.audio_done = 0, 0.0
        self.enabled = enabled
        self.start = self.last_line = time.monotonic()
        self.bar = tqdm(total=files, desc=desc, unit="file", file=sys.stderr) if enabled and sys.stderr.isatty() else None

    def status(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.audio_done / elapsed  # audio seconds per second = audio hours per hour
        if self.audio_done > 0:
            left = (self.audio - self.audio_done) / rate
        else:
            left = (self.files - self.files_done) * elapsed / max(self.files_done, 1)
        return (f"{self.audio_done / 3600:.2f} of {self.audio / 3600:.2f} h of audio, "
                f"{rate:.1f} h of audio per hour, {_clock(max(left, 0.0))} left")

    def update(self, outcome: Outcome) -> None:
        self.files_done += 1
        self.audio_done += outcome.audio_seconds
        if self.bar is not None:
            self.bar.set_postfix_str(self.status(), refresh=False)
            self.bar.update(1)
        elif self.enabled and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            print(f"{self.desc}: {self.files_done} of {self.files} files, {self.status()}", file=sys.stderr, flush=True)

    def write(self, line: str, stream=None) -> None:
        """A line that does not break the bar (stdout for what was found, stderr for the rest)."""
        stream = stream or sys.stderr
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(job: FileJob, pairs: list[tuple[Path, Path, str]], desc: str, record_dir: Path | None = None,
              workers: int | None = None, ray_address: str | None = None, resume: bool = False) -> int:
    """Run `job` on every (input, output, name) pair and return the exit status (1 if any file failed).

    record_dir: where speechinpaint-batch.jsonl goes (the output folder; None for a single output file,
    which has no record); resume: skip the inputs the record says are finished whose outputs exist.
    workers: processes on this machine (None: one per core, or one with a GPU device; 1: this process);
    ray_address: run on that Ray cluster instead (cluster.py). Ctrl-C stops the batch with the record
    intact (exit 130)."""
    if workers is not None and workers < 1:
        raise SpeechInpaintError(f"--workers must be at least 1 (got {workers})")
    if resume and record_dir is None:
        raise SpeechInpaintError("--resume needs a folder output (it reads OUT/" + RECORD_NAME + ")")
    items = [Item(str(src), str(dst), name) for src, dst, name in pairs]
    record_path = record_dir / RECORD_NAME if record_dir is not None else None
    finished = finished_outputs(record_path, job.done) if resume else set()
    skipped = [i for i in items if os.path.abspath(i.output) in finished and Path(i.output).is_file()]
    done_before = set(skipped)
    todo = [i for i in items if i not in done_before]
    batch = len(items) > 1
    if workers is None:  # one per core; a GPU is shared by one process unless asked otherwise
        workers = cpu_cores() if getattr(job, "device", "cpu") == "cpu" else 1
    workers = min(workers, max(len(todo), 1))

    if ray_address is not None and todo:
        from .cluster import RayRunner

        runner = RayRunner(job, todo, ray_address, record_dir)
    elif workers > 1 and ray_address is None:
        runner = ProcessPool(job, todo, workers)
    else:
        runner = InProcess(job, todo, file_progress=True)

    counts = {job.done: 0, "failed": 0, "skipped": len(skipped)}
    progress = BatchProgress(desc, len(todo), sum(audio_seconds(i.input) for i in todo) if batch else 0.0,
                             enabled=len(todo) > 1)
    start = time.monotonic()
    record: BatchRecord | None = None

    def open_record() -> BatchRecord | None:
        """The record, begun when the first file finishes (a batch refused at its start leaves none)."""
        nonlocal record
        if record is None and record_path is not None:
            record = BatchRecord(record_path, append=resume)
            record.write({"batch": desc, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "inputs": len(items),
                          "to_do": len(todo), "workers": None if ray_address else workers, "ray": ray_address})
            for item in skipped:
                record.write(Outcome(item.input, item.output, "skipped", name=item.name).line())
        return record

    def report(outcome: Outcome) -> None:
        counts[outcome.status] += 1
        if open_record() is not None:
            record.write(outcome.line())
        if outcome.found is not None:
            progress.write(f"{outcome.name}: {outcome.found}", sys.stdout)
        for note in outcome.notes:
            progress.write(note)
        if outcome.error is not None:
            progress.write(f"speechinpaint: error: {outcome.error}")
        progress.update(outcome)

    interrupted = False
    try:
        try:
            for outcome in runner.outcomes():
                report(outcome)
        except KeyboardInterrupt:
            interrupted = True
            for outcome in runner.stop():
                report(outcome)
        open_record()  # a batch with nothing to do records what it skipped
    finally:
        runner.close()
        progress.close()
        if ray_address is not None or workers > 1:  # a killed worker's temporary files
            remove_partial_files([Path(i.output) for i in todo])
        if record is not None:  # closed even when an error stops the batch
            left = len(todo) - counts[job.done] - counts["failed"]
            record.write({"summary": f"{counts[job.done]} {job.done}, {counts['failed']} failed, "
                          f"{counts['skipped']} skipped", job.done: counts[job.done], "failed": counts["failed"],
                          "skipped": counts["skipped"], "not_done": left, "interrupted": interrupted,
                          "wall_seconds": round(time.monotonic() - start, 3)})
            record.close()
    if batch:
        line = f"{counts[job.done]} {job.done}, {counts['failed']} failed"
        line += f", {counts['skipped']} skipped" if skipped else ""
        print(line + (" (see above)" if counts["failed"] else ""), file=sys.stderr)
    if interrupted:
        raise KeyboardInterrupt
    return 1 if counts["failed"] else 0
