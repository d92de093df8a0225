"""One file of a batch, wherever it runs: this process, a pool worker (batch.py) or a Ray task
(cluster.py). A command says what it does to one file as a FileJob: picklable settings, `prepare()` for
what a worker loads once (the model) and `run()` for one file; `run_one` runs it and reports an Outcome,
one line of the batch record.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field

from .errors import SpeechInpaintError
from .files import os_error_line


@dataclass(frozen=True)
class Item:
    """One input of a batch: its path, its output's path and its name relative to the input folder."""

    input: str
    output: str
    name: str


@dataclass
class FileResult:
    """What a job tells about one finished file: what `--mask auto` or `detect` found (the line printed
    on stdout), notes for stderr, and the seconds of audio it held."""

    found: str | None = None
    notes: tuple[str, ...] = ()
    audio_seconds: float = 0.0


class FileJob:
    """What a command does to one file; subclasses are frozen dataclasses (hashable, picklable)."""

    done = "done"  # the status of a finished file, as the closing line says it ("3 restored, ...")
    path_fields: tuple[str, ...] = ()  # fields holding paths, made absolute for a cluster

    def prepare(self):
        """What a worker loads once and passes to every run (the model); None by default."""
        return None

    def run(self, state, item: Item, file_progress: bool) -> FileResult:
        raise NotImplementedError


@dataclass
class Outcome:
    """One line of the batch record."""

    input: str
    output: str
    status: str  # the job's `done`, "failed" or "skipped" (finished in an earlier batch, --resume)
    error: str | None = None
    found: str | None = None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    worker: str = ""
    name: str = ""
    notes: tuple[str, ...] = field(default=(), repr=False)

    def line(self) -> dict:
        """The record's line: paths absolute, so a record means the same files from any folder or node."""
        doc = asdict(self)
        doc.pop("notes")
        doc["input"], doc["output"] = os.path.abspath(self.input), os.path.abspath(self.output)
        return doc


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_prepared: dict = {}


def prepared(job: FileJob):
    """The job's per-worker state, built on a worker's first file and kept for the rest."""
    if job not in _prepared:
        _prepared.clear()
        _prepared[job] = job.prepare()
    return _prepared[job]


def run_one(job: FileJob, item: Item, file_progress: bool = False) -> Outcome:
    """One file, timed; a bad file is a failed outcome with its one-line error, not an exception.
    An error of prepare() (a bad checkpoint) does raise: it would fail every file alike."""
    state = prepared(job)
    start = time.monotonic()
    try:
        result = job.run(state, item, file_progress)
        status, error = job.done, None
    except SpeechInpaintError as exc:
        result, status, error = FileResult(), "failed", str(exc)
    except OSError as exc:  # a full disk, an unwritable or impossible output path: still one line
        result, status, error = FileResult(), "failed", os_error_line(exc, item.output)
    return Outcome(item.input, item.output, status, error, result.found, result.audio_seconds,
                   round(time.monotonic() - start, 4), worker_name(), item.name, result.notes)
