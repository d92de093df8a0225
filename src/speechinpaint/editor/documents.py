"""The editor's state and work, apart from HTTP: documents (one per upload, in memory), restore and
detection jobs (one worker, so they run one at a time), and the views the page draws (spectrogram and
detector images, audio for the browser, the before/after report).

A document keeps the original samples as they were read and a list of versions: version 0 is the
original, each finished restore appends one (after dropping any undone ones) and becomes current, and
undo/redo move the current version. A version holds only the samples it changed, and the documents of
a server share a memory budget (Documents closes the least recently used beyond it). A restore always
starts from the original: the mask describes the original's damage.
"""

from __future__ import annotations

import io
import queue
import secrets
import struct
import tempfile
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from ..audio import CONTAINERS, SAMPLE_RATE, Recording, check_signal, container_for, output_subtype, read_recording, \
    recording_writer, resample
from ..errors import SpeechInpaintError
from ..masks import Mask, Region, parse_mask_json
from ..recording import native_grid, restore_signal

# Views: the largest image, and how many frames one column may average before columns sample frames.
MAX_PIXELS = 4096
AVERAGE_FRAMES = 16
# The holes detector's context on each side of a view (hole_detector.CONTEXT_FRAMES at 128 / 16 kHz),
# documents up to WHOLE_PROBABILITY_SECONDS get their probability computed once, and longer ones per view
# of at most MAX_PROBABILITY_SECONDS.
PROBABILITY_CONTEXT_SECONDS = 1.1
WHOLE_PROBABILITY_SECONDS = 120.0
MAX_PROBABILITY_SECONDS = 300.0
# The report's surroundings of a region: this far on each side in time and frequency.
AROUND_SECONDS, AROUND_HZ = 0.1, 500.0
SUFFIX_OF = {}
for _suffix, _container in CONTAINERS.items():
    SUFFIX_OF.setdefault(_container, _suffix)


class Cancelled(Exception):
    """A job's cancel flag was seen between chunks or channels."""


def safe_name(name: str | None) -> str:
    """The file name part of an upload's name (no folders, no control characters), or 'upload'."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    return name[:200] or "upload"


def output_name(name: str, container: str) -> str:
    """The container's file name for a document: its own name when its suffix names a container this tool
    writes, else the name with the suffix of the container it was read from (WAV, FLAC, ...)."""
    path = Path(name)
    if path.suffix.lower() in CONTAINERS:
        return name
    suffix = SUFFIX_OF.get(container, ".wav")
    return (path.stem or "upload") + suffix


def read_upload(data_path: Path, name: str) -> Recording:
    """read_recording of an upload saved at data_path, with errors naming the upload, not the temp file."""
    try:
        return read_recording(data_path)
    except SpeechInpaintError as exc:
        raise SpeechInpaintError(str(exc).replace(str(data_path), name)) from None


def encode_file(samples: np.ndarray, rate: int, subtype: str, name: str) -> bytes:
    """The bytes `speechinpaint restore` would write for these samples to a file called `name`
    (its container, the input's subtype or the container's fallback)."""
    chosen, _ = output_subtype(name, subtype, source_container=container_for(name))  # the upload's own container
    with tempfile.TemporaryDirectory(prefix="speechinpaint-edit-") as tmp:
        target = Path(tmp) / ("out" + Path(name).suffix.lower())
        recording_writer(name, samples, rate, chosen)(str(target))
        return target.read_bytes()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM wav of [channels, samples] for the browser (rounded to 1/32768, clipped at full scale)."""
    buffer = io.BytesIO()
    # As recording_writer rounds: an unchanged sample of a 16-bit file comes back as the same integer.
    data = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16).T
    sf.write(buffer, data, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


# --- images --------------------------------------------------------------------------------------------


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of uint8 [height, width] (gray), [h, w, 3] (RGB) or [h, w, 4] (RGBA)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else {3: 2, 4: 6}[pixels.shape[2]]
    rows = pixels.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


_MAGMA: np.ndarray | None = None


def magma() -> np.ndarray:
    """uint8 [256, 3]: matplotlib's magma colour map (a gray ramp if matplotlib is missing)."""
    global _MAGMA
    if _MAGMA is None:
        try:
            from matplotlib import colormaps

            _MAGMA = (colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
        except ImportError:  # pragma: no cover - matplotlib is a dependency
            _MAGMA = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    return _MAGMA


# A log frequency axis starts here (or at the view's f0 if higher): below it speech holds little, and a
# log axis down to 0 Hz would give the lowest bins most of the image. The page's LOG_FLOOR_HZ is the same.
LOG_FLOOR_HZ = 50.0
SCALES = ("linear", "log")


@dataclass(frozen=True)
class View:
    """The part of a document an image shows: [t0, t1) s by [f0, f1] Hz, in width x height pixels, its
    rows spaced linearly or on a log axis (from LOG_FLOOR_HZ), so a 48 kHz file's speech is not
    squeezed into the bottom sixth."""

    t0: float
    t1: float
    f0: float
    f1: float
    width: int
    height: int
    db_min: float = -100.0
    db_max: float = 0.0
    scale: str = "linear"

    def column_times(self) -> np.ndarray:
        return self.t0 + (np.arange(self.width) + 0.5) * (self.t1 - self.t0) / self.width

    def row_freqs(self) -> np.ndarray:
        """Top row first: the highest frequency at the top."""
        share = (np.arange(self.height) + 0.5) / self.height
        if self.scale == "log":
            lo = min(max(self.f0, LOG_FLOOR_HZ), self.f1 / 2)
            return np.exp(np.log(self.f1) - share * (np.log(self.f1) - np.log(lo)))
        return self.f1 - share * (self.f1 - self.f0)


def make_view(duration: float, nyquist: float, t0=None, t1=None, f0=None, f1=None, width=None, height=None,
              db_min=None, db_max=None, scale=None) -> View:
    """A checked View; missing bounds default to the whole document, the size to 1024 x 256, the scale
    to linear."""
    if scale is not None and scale not in SCALES:
        raise SpeechInpaintError(f"scale must be linear or log (got {scale!r})")
    view = View(0.0 if t0 is None else t0, duration if t1 is None else t1, 0.0 if f0 is None else f0,
                nyquist if f1 is None else f1, 1024 if width is None else width, 256 if height is None else height,
                -100.0 if db_min is None else db_min, 0.0 if db_max is None else db_max, scale or "linear")
    values = (view.t0, view.t1, view.f0, view.f1, view.db_min, view.db_max)
    if not all(np.isfinite(v) for v in values):
        raise SpeechInpaintError("the view's bounds must be finite numbers")
    if not 0.0 <= view.t0 < view.t1 or view.t0 >= duration:
        raise SpeechInpaintError(f"the view needs 0 <= t0 < t1 with t0 inside the document (0 .. {duration:.3f} s); "
                                 f"got t0={view.t0}, t1={view.t1}")
    if not 0.0 <= view.f0 < view.f1:
        raise SpeechInpaintError(f"the view needs 0 <= f0 < f1 (got f0={view.f0}, f1={view.f1})")
    if not (1 <= view.width <= MAX_PIXELS and 1 <= view.height <= MAX_PIXELS):
        raise SpeechInpaintError(f"width and height must lie in 1 .. {MAX_PIXELS} pixels (got {view.width} x {view.height})")
    if not view.db_min < view.db_max:
        raise SpeechInpaintError(f"the view needs db_min < db_max (got {view.db_min}, {view.db_max})")
    return view


def frame_spectra(x: np.ndarray, n_fft: int, hop: int, frames: np.ndarray) -> np.ndarray:
    """Complex [bins, len(frames)]: the frames of x's centred STFT (Hann, zero padding at the ends, as
    StftGrid.stft), computed only for the frames asked for."""
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as torch.hann_window(periodic=True)
    out = np.empty((n_fft // 2 + 1, len(frames)), dtype=np.complex64)
    offsets = np.arange(n_fft) - n_fft // 2
    for start in range(0, len(frames), 512):
        ks = frames[start:start + 512]
        idx = ks[:, None] * hop + offsets[None, :]
        valid = (idx >= 0) & (idx < len(x))
        segment = np.where(valid, x[np.clip(idx, 0, len(x) - 1)], 0.0) * window
        out[:, start:start + len(ks)] = np.fft.rfft(segment, axis=1).T
    return out


def column_frames(view: View, hop: int, rate: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices to compute, for each column the [start, stop) of its frames in that list): every
    frame of the view when each column covers at most AVERAGE_FRAMES, else one frame per column."""
    edges = np.arange(view.width + 1) * (view.t1 - view.t0) / view.width + view.t0
    per_column = (view.t1 - view.t0) * rate / hop / view.width
    if per_column <= AVERAGE_FRAMES:
        k_edges = np.ceil(edges * rate / hop - 0.5).astype(np.int64)
        lo = int(np.clip(k_edges[0], 0, num_frames - 1))
        hi = int(np.clip(k_edges[-1], lo + 1, num_frames))
        frames = np.arange(lo, hi)
        starts = np.clip(k_edges[:-1] - lo, 0, len(frames) - 1)
        stops = np.maximum(np.clip(k_edges[1:] - lo, 0, len(frames)), starts + 1)
        return frames, np.stack([starts, stops], axis=1)
    centres = np.clip(np.round(view.column_times() * rate / hop).astype(np.int64), 0, num_frames - 1)
    return centres, np.stack([np.arange(view.width), np.arange(view.width) + 1], axis=1)


def spectrogram_png(x: np.ndarray, rate: int, view: View) -> bytes:
    """The view of one channel's log-magnitude on the native grid, in dB re full scale, magma."""
    grid = native_grid(rate)
    num_frames = grid.num_frames(len(x))
    frames, spans = column_frames(view, grid.hop, rate, num_frames)
    spec = frame_spectra(x, grid.n_fft, grid.hop, frames)
    power = np.abs(spec) ** 2 * (2.0 / (grid.n_fft / 2)) ** 2  # a full-scale sine is 0 dB
    cumulative = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
    columns = (cumulative[:, spans[:, 1]] - cumulative[:, spans[:, 0]]) / (spans[:, 1] - spans[:, 0])
    freqs = view.row_freqs()
    bins = np.round(freqs / (rate / grid.n_fft)).astype(np.int64)
    inside = (bins >= 0) & (bins < power.shape[0])
    image = columns[np.clip(bins, 0, power.shape[0] - 1)]
    db = 10 * np.log10(np.maximum(image, 1e-20))
    level = np.clip((db - view.db_min) / (view.db_max - view.db_min), 0.0, 1.0)
    level[~inside] = 0.0
    # Beyond the end of the document: black.
    level[:, view.column_times() >= len(x) / rate] = 0.0
    return png_bytes(magma()[(level * 255 + 0.5).astype(np.uint8)])


# --- documents -----------------------------------------------------------------------------------------


# The memory the open documents of one server may hold (their samples, restored versions and cached
# detector maps) before the least recently used are closed; `speechinpaint edit --memory-budget` sets it.
DEFAULT_MEMORY_BUDGET = 2 * 1000 ** 3
# What one document may hold beyond its decoded samples (a share of their size): restored versions and
# cached detector maps; beyond it the oldest undo steps and then the cache are dropped.
DOCUMENT_EXTRA_SHARE = 0.5
# Changed samples closer than this are kept as one span of a version (fewer, longer spans).
SPAN_JOIN_SAMPLES = 256


@dataclass
class Version:
    """A restored version, held as the spans where it differs from the original: (channel, first sample,
    its samples). A restore changes only the marked regions, so a version costs what it changed rather
    than a copy of the whole recording; version 0 (the original) has no spans."""

    spans: list[tuple[int, int, np.ndarray]] = field(default_factory=list)

    @classmethod
    def of(cls, original: np.ndarray, restored: np.ndarray) -> "Version":
        spans = []
        for channel in range(original.shape[0]):
            changed = np.flatnonzero(original[channel] != restored[channel])
            if not len(changed):
                continue
            breaks = np.flatnonzero(np.diff(changed) > SPAN_JOIN_SAMPLES)
            starts = np.concatenate([[changed[0]], changed[breaks + 1]])
            stops = np.concatenate([changed[breaks], [changed[-1]]]) + 1
            spans += [(channel, int(a), restored[channel, a:b].copy()) for a, b in zip(starts, stops)]
        return cls(spans)

    def apply(self, original: np.ndarray) -> np.ndarray:
        if not self.spans:
            return original
        out = original.copy()
        for channel, start, values in self.spans:
            out[channel, start:start + len(values)] = values
        return out

    @property
    def nbytes(self) -> int:
        return sum(values.nbytes for _, _, values in self.spans)


@dataclass
class Document:
    """One upload: the recording as read, its versions (0 = the original; None: dropped to stay within
    the document's memory share) and the current one."""

    id: str
    name: str
    recording: Recording
    versions: list[Version | None] = field(default_factory=lambda: [Version()])
    current: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    probability_cache: dict = field(default_factory=dict)

    @property
    def rate(self) -> int:
        return self.recording.sample_rate

    @property
    def duration(self) -> float:
        return self.recording.num_samples / self.rate

    @property
    def nbytes(self) -> int:
        """What the document holds: its samples, its versions' spans and the cached detector maps."""
        cached = sum(getattr(v, "nbytes", 0) for v in list(self.probability_cache.values()))
        return self.recording.samples.nbytes + sum(v.nbytes for v in self.versions if v is not None) + cached

    def info(self) -> dict:
        r = self.recording
        return {"id": self.id, "name": self.name, "sample_rate": r.sample_rate, "channels": r.channels,
                "num_samples": r.num_samples, "duration": r.num_samples / r.sample_rate, "subtype": r.subtype,
                "container": r.container, "version": self.current, "versions": len(self.versions) - 1}

    def samples(self, which: str, version: int | None = None) -> np.ndarray:
        """[channels, samples] of the original, a restored version (default: the current) or their delta."""
        if which not in ("original", "restored", "delta"):
            raise SpeechInpaintError(f"which must be original, restored or delta (got {which!r})")
        if which == "original":
            return self.recording.samples
        with self.lock:
            number = self.current if version is None else version
            if not 0 <= number < len(self.versions):
                raise LookupError(f"document {self.id} has no version {number} (it has 0 .. {len(self.versions) - 1})")
            kept = self.versions[number]
        if kept is None:
            raise LookupError(f"version {number} of document {self.id} was dropped to keep the document within its "
                              "memory share; the later versions are kept")
        restored = kept.apply(self.recording.samples)
        return restored - self.recording.samples if which == "delta" else restored

    def add_version(self, samples: np.ndarray) -> int:
        version = Version.of(self.recording.samples, samples)
        with self.lock:
            del self.versions[self.current + 1:]
            self.versions.append(version)
            self.current = len(self.versions) - 1
            self._fit()
            return self.current

    def _fit(self) -> None:
        """Keep the document within (1 + DOCUMENT_EXTRA_SHARE) x its samples: drop the cached detector maps,
        then the oldest restored versions other than the current one (the original is never dropped; a
        current version that changed more than the share on its own is kept)."""
        limit = (1 + DOCUMENT_EXTRA_SHARE) * self.recording.samples.nbytes
        if self.nbytes > limit:
            self.probability_cache.clear()
        for number in range(1, len(self.versions)):
            if self.nbytes <= limit:
                break
            if number != self.current:
                self.versions[number] = None

    def step(self, delta: int) -> None:
        """Undo (-1) or redo (+1) a restore (past versions dropped to save memory)."""
        with self.lock:
            target = self.current + delta
            while 0 < target < len(self.versions) and self.versions[target] is None:
                target += delta
            if not 0 <= target < len(self.versions):
                raise ValueError("there is no restore to undo" if delta < 0 else "there is no undone restore to redo")
            self.current = target

    def mask(self, data, source: str = "mask") -> Mask:
        """A mask in this document's terms from its JSON (a dict or JSON text)."""
        if isinstance(data, (str, bytes)):
            data = parse_mask_json(data, source)
        mask = Mask.from_json(data, source, validate=False)
        r = self.recording
        mask.check_matches(r.num_samples, r.sample_rate, source, r.channels)
        return mask.validate(source)


class Documents:
    """The documents of a server, by id (a random token; 'initial' for the file given on the command line),
    least recently used first: beyond `budget` bytes in all, the least recently used are closed."""

    def __init__(self, budget: int = DEFAULT_MEMORY_BUDGET):
        self.budget = budget
        self.by_id: OrderedDict[str, Document] = OrderedDict()
        self.closed: set[str] = set()
        self.lock = threading.Lock()

    def add(self, name: str, recording: Recording, doc_id: str | None = None) -> Document:
        doc = Document(doc_id or secrets.token_urlsafe(12), safe_name(name), recording)
        with self.lock:
            self.by_id[doc.id] = doc
            self.closed.discard(doc.id)
            self._fit()
        return doc

    def get(self, doc_id: str) -> Document:
        with self.lock:
            doc = self.by_id.get(doc_id)
            if doc is not None:
                self.by_id.move_to_end(doc_id)
                self._fit()  # a restore may have added a version since
        if doc is None and doc_id in self.closed:
            raise LookupError(f"document {doc_id!r} was closed to keep the editor within its memory budget of "
                              f"{self.budget / 1e9:.2f} GB (--memory-budget); open the file again")
        if doc is None:
            raise LookupError(f"no document with id {doc_id!r} (it may have been opened by a server that has since "
                              "restarted)")
        return doc

    def _fit(self) -> None:
        """Close the least recently used documents while all of them hold more than the budget (the most
        recently used one stays open, whatever its size)."""
        total = sum(doc.nbytes for doc in self.by_id.values())
        while total > self.budget and len(self.by_id) > 1:
            doc_id, doc = self.by_id.popitem(last=False)
            self.closed.add(doc_id)
            total -= doc.nbytes


# --- jobs: restores and detections --------------------------------------------------------------


@dataclass
class Job:
    """A queued piece of work on a document: a restore (mask, methods) or a detection (`work`, a function
    of the job's progress hook returning the result the job reports). Once it ends it lets go of the
    document (and `work`, which holds it too), so a document closed for the memory budget is freed."""

    id: str
    document: Document | None
    mask: Mask | None = None
    methods: dict[int, str] = field(default_factory=dict)
    kind: str = "restore"
    work: Callable | None = None
    state: str = "queued"
    progress: float = 0.0
    error: str | None = None
    version: int | None = None
    result: dict | None = None
    cancel_flag: threading.Event = field(default_factory=threading.Event)
    document_id: str = ""

    def __post_init__(self):
        self.document_id = self.document.id

    def info(self) -> dict:
        return {"id": self.id, "document": self.document_id, "kind": self.kind, "state": self.state,
                "progress": self.progress, "error": self.error, "version": self.version, "result": self.result}


class JobProgress:
    """The progress hook of restore_signal and detect_signal: counts seconds of audio, raises Cancelled
    once the flag is set."""

    def __init__(self, job: Job, total: float):
        self.job, self.total, self.done = job, max(total, 1e-9), 0.0

    def update(self, seconds: float) -> None:
        self.done += seconds
        self.job.progress = min(1.0, self.done / self.total)
        if self.job.cancel_flag.is_set():
            raise Cancelled()

    def write(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass


def method_groups(mask: Mask, methods: dict[int, str], default: str = "model") -> list[tuple[str, Mask]]:
    """(method, the mask of its regions) for each method the regions use, in order of first use."""
    groups: dict[str, list[Region]] = {}
    for i, region in enumerate(mask.regions):
        groups.setdefault(methods.get(i, default), []).append(region)
    return [(m, Mask(mask.sample_rate, mask.num_samples, regions)) for m, regions in groups.items()]


class Restorers:
    """One restorer per method, built on first use (the model's weights load once), and the lock that
    makes restores run one at a time."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.by_method: dict = {}
        self.lock = threading.Lock()  # held for the whole of each restore

    def get(self, method: str):
        from ..restorers import make_restorer

        if method not in self.by_method:
            self.by_method[method] = make_restorer(method, device=self.device)
        return self.by_method[method]

    def restore(self, signal: np.ndarray, rate: int, mask: Mask, methods: dict[int, str] | None = None,
                progress=None, default: str = "model") -> np.ndarray:
        """Each method's regions restored by that method (default: `default`), in turn, on the running
        output (call with the lock held)."""
        out = signal
        for method, sub in method_groups(mask, methods or {}, default):
            if progress is not None and getattr(progress, "job", None) is not None and progress.job.cancel_flag.is_set():
                raise Cancelled()
            out = restore_signal(self.get(method), out, rate, sub, None, progress)
        if not mask.regions:
            out = signal.copy()
        return out


class Worker:
    """A single thread that runs the queued jobs (restores and detections) in turn."""

    def __init__(self, restorers: Restorers):
        self.restorers = restorers
        self.jobs: dict[str, Job] = {}
        self.queue: queue.Queue[Job] = queue.Queue()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, name="speechinpaint-restore", daemon=True)
        self.thread.start()

    def submit(self, document: Document, mask: Mask, methods: dict[int, str]) -> Job:
        check_signal(document.recording.samples.mean(axis=0).astype(np.float32), document.name)
        return self._queue(Job(secrets.token_urlsafe(9), document, mask, methods))

    def submit_detect(self, document: Document, work: Callable[[JobProgress], dict]) -> Job:
        """A detection job: work(progress) runs on the worker (progress counts channels x duration seconds
        of audio and raises Cancelled once the job is cancelled) and returns the job's result."""
        return self._queue(Job(secrets.token_urlsafe(9), document, kind="detect", work=work))

    def _queue(self, job: Job) -> Job:
        with self.lock:
            self.jobs[job.id] = job
        self.queue.put(job)
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise LookupError(f"no job with id {job_id!r}")
        return job

    def cancel(self, job: Job) -> None:
        job.cancel_flag.set()
        if job.state == "queued":
            job.state = "cancelled"

    def run(self) -> None:
        while True:
            job = self.queue.get()
            try:
                self.run_one(job)
            finally:
                job.document = job.work = None

    def run_one(self, job: Job) -> None:
        if job.cancel_flag.is_set():
            job.state = "cancelled"
            return
        job.state = "running"
        try:
            if job.kind == "detect":
                self.detect(job)
            else:
                self.restore(job)
            job.progress = 1.0
            job.state = "done"
        except Cancelled:
            job.state = "cancelled"
        except SpeechInpaintError as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # a bug must not stop the worker; the page shows one line
            job.error, job.state = f"{job.kind} failed: {type(exc).__name__}: {exc}", "failed"

    def restore(self, job: Job) -> None:
        doc = job.document
        groups = len(method_groups(job.mask, job.methods)) or 1
        progress = JobProgress(job, groups * doc.recording.channels * doc.duration)
        with self.restorers.lock:
            out = self.restorers.restore(doc.recording.samples, doc.rate, job.mask, job.methods, progress)
        if job.cancel_flag.is_set():
            raise Cancelled()
        job.version = doc.add_version(out)

    def detect(self, job: Job) -> None:
        doc = job.document
        result = job.work(JobProgress(job, doc.recording.channels * doc.duration))
        if job.cancel_flag.is_set():
            raise Cancelled()
        job.result = result


# --- the holes detector's probability ------------------------------------------------------------------


def probability_map(doc: Document, channel: int, t0: float, t1: float, which: str = "original",
                    version: int | None = None) -> tuple[np.ndarray, float]:
    """(probability [256 bins of 31.25 Hz, frames of 8 ms], the time of frame 0) covering [t0, t1) of a
    channel, from the shipped holes detector run at 16 kHz on the range plus context."""
    from ..detection import shipped_detector

    x = doc.samples(which, version)[channel]
    rate = doc.rate
    hop16 = 128
    if doc.duration <= WHOLE_PROBABILITY_SECONDS:
        key = (which, doc.current if version is None and which != "original" else version, channel)
        if key not in doc.probability_cache:
            doc.probability_cache[key] = shipped_detector().probabilities(resample(x, rate, SAMPLE_RATE))
        return doc.probability_cache[key], 0.0
    if t1 - t0 > MAX_PROBABILITY_SECONDS:
        raise SpeechInpaintError(f"the detector's probability is drawn for at most {MAX_PROBABILITY_SECONDS:.0f} s "
                                 f"at a time in a document this long; zoom in (asked for {t1 - t0:.0f} s)")
    start_frame = max(0, int((t0 - PROBABILITY_CONTEXT_SECONDS) * SAMPLE_RATE / hop16))
    a = int(start_frame * hop16 * rate / SAMPLE_RATE)
    b = min(len(x), int(np.ceil((t1 + PROBABILITY_CONTEXT_SECONDS) * rate)))
    segment = resample(x[a:b], rate, SAMPLE_RATE)
    return shipped_detector().probabilities(segment), a / rate


def probability_png(doc: Document, channel: int, view: View, style: str = "gray") -> bytes:
    """The detector's probability over a view: gray (0 black .. 1 white) or alpha (white, opacity p)."""
    prob, origin = probability_map(doc, channel, view.t0, view.t1)
    frames = np.clip(np.round((view.column_times() - origin) * SAMPLE_RATE / 128).astype(np.int64), 0, prob.shape[1] - 1)
    bins = np.round(view.row_freqs() / (SAMPLE_RATE / 512)).astype(np.int64)
    inside = (bins >= 0) & (bins < prob.shape[0])
    image = prob[np.clip(bins, 0, prob.shape[0] - 1)][:, frames]
    image[~inside] = 0.0
    image[:, view.column_times() >= doc.duration] = 0.0
    level = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if style == "alpha":
        rgba = np.full(level.shape + (4,), 255, dtype=np.uint8)
        rgba[..., 3] = level
        return png_bytes(rgba)
    return png_bytes(level)


def probability_json(doc: Document, channel: int, t0: float, t1: float, max_frames: int = 512,
                     max_bins: int = 128) -> dict:
    """The probability over [t0, t1) as times (s), freqs (Hz, bin centres) and p[freq][time], reduced by
    block maxima to at most max_bins x max_frames."""
    prob, origin = probability_map(doc, channel, t0, t1)
    times = origin + np.arange(prob.shape[1]) * 128 / SAMPLE_RATE
    keep = (times >= t0) & (times < t1)
    prob, times = prob[:, keep], times[keep]
    freqs = np.arange(prob.shape[0]) * SAMPLE_RATE / 512
    ft = max(1, -(-prob.shape[1] // max_frames))
    ff = max(1, -(-prob.shape[0] // max_bins))
    if prob.shape[1] == 0:
        return {"times": [], "freqs": freqs[::ff].tolist(), "p": [[] for _ in freqs[::ff]]}
    pad_t = (-prob.shape[1]) % ft
    pad_f = (-prob.shape[0]) % ff
    padded = np.pad(prob, ((0, pad_f), (0, pad_t)), constant_values=0.0)
    reduced = padded.reshape(padded.shape[0] // ff, ff, padded.shape[1] // ft, ft).max(axis=(1, 3))
    return {"times": np.round(times[::ft], 4).tolist(), "freqs": freqs[::ff].tolist(),
            "p": np.round(reduced, 3).tolist()}


# --- the before/after report ---------------------------------------------------------------------------


def region_levels(x: np.ndarray, rate: int, region: Region) -> dict:
    """Mean power in dB (re full scale) inside a region and in its surroundings (AROUND_* on each side,
    the region itself excluded), and their difference, on the native grid over that time range only."""
    grid = native_grid(rate)
    num_frames = grid.num_frames(len(x))
    times = np.arange(num_frames) * grid.hop / rate
    lo_t, hi_t = region.t0 - AROUND_SECONDS, region.t1 + AROUND_SECONDS
    frames = np.flatnonzero((times >= lo_t) & (times < hi_t))
    if len(frames) == 0:
        return {"inside_db": None, "around_db": None, "contrast_db": None}
    power = np.abs(frame_spectra(x, grid.n_fft, grid.hop, frames)) ** 2 * (2.0 / (grid.n_fft / 2)) ** 2
    freqs = grid.bin_freqs()
    ft = times[frames]
    in_t = (ft >= region.t0) & (ft < region.t1)
    in_f = (freqs >= region.f0) & (freqs <= region.f1)
    near_f = (freqs >= region.f0 - AROUND_HZ) & (freqs <= region.f1 + AROUND_HZ)
    inside = in_f[:, None] & in_t[None, :]
    around = near_f[:, None] & ~inside

    def db(sel: np.ndarray) -> float | None:
        return round(float(10 * np.log10(max(float(power[sel].mean()), 1e-20))), 2) if sel.any() else None

    inside_db, around_db = db(inside), db(around)
    contrast = None if inside_db is None or around_db is None else round(inside_db - around_db, 2)
    return {"inside_db": inside_db, "around_db": around_db, "contrast_db": contrast}


def report(doc: Document, mask: Mask, detect) -> dict:
    """Per region, its levels before (original) and after (the current version); and `detect` (a function
    of [channels, samples] returning a Detection) run on the current version."""
    before, after = doc.samples("original"), doc.samples("restored")
    rows = []
    for i, region in enumerate(mask.regions):
        channels = [region.channel] if region.channel is not None else range(doc.recording.channels)
        row = {"index": i, "region": {"t0": region.t0, "t1": region.t1, "f0": region.f0, "f1": region.f1,
                                      "channel": region.channel}}
        for key, signal in (("before", before), ("after", after)):
            levels = [region_levels(signal[c], doc.rate, region) for c in channels]
            row[key] = levels[0] if len(levels) == 1 else {
                name: (None if any(lv[name] is None for lv in levels) else
                       round(float(np.mean([lv[name] for lv in levels])), 2)) for name in levels[0]}
        rows.append(row)
    found = detect(after)
    return {"version": doc.current, "regions": rows, "detection": {"mask": found.mask.to_json(),
                                                                    "summary": found.summary()}}
