"""The one manifest format every corpus writes and the training data reads.

`manifest.csv` beside the audio: path (relative to the corpus folder, so the folder can be moved),
speaker, language, duration (seconds), split. Splits are whole speakers, so a score on `valid` or
`test` is a score on voices the model never heard.
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write
from ..errors import SpeechInpaintError

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("path", "speaker", "language", "duration", "split")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Entry:
    """One row of a manifest; `path` is relative to the corpus folder, `root`, which the manifest does not store."""

    path: str
    speaker: str
    language: str
    duration: float
    split: str
    root: str = ""

    @property
    def file(self) -> Path:
        """The audio file itself."""
        return Path(self.root) / self.path


def write_manifest(root: str | os.PathLike, entries: list[Entry]) -> Path:
    """Write root/manifest.csv atomically, rows sorted by path so reruns give identical files."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in sorted(entries, key=lambda e: e.path):
        writer.writerow((e.path, e.speaker, e.language, f"{e.duration:.3f}", e.split))
    target = Path(root) / MANIFEST_NAME
    atomic_write(target, lambda tmp: Path(tmp).write_text(buf.getvalue(), encoding="utf-8"))
    return target


def read_manifest(root: str | os.PathLike, split: str | None = None) -> list[Entry]:
    """Rows of root/manifest.csv (or of the manifest file itself), of one split if given.

    A missing file, a wrong header or a split with no rows is one clear error naming the file.
    """
    path = Path(root)
    if not path.is_file() and path.suffix != ".csv":  # a corpus folder, not a manifest file
        path = path / MANIFEST_NAME
    if not path.is_file():
        corpus = path.parent
        raise SpeechInpaintError(f"{path}: no manifest; prepare the corpus first, e.g. `speechinpaint data starter "
                                 f"--root {corpus}` (or `speechinpaint data folder --root RECORDINGS --out {corpus}`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header != COLUMNS:
            raise SpeechInpaintError(f"{path}: expected columns {','.join(COLUMNS)}, found {','.join(header)}")
        rows = [Entry(r[0], r[1], r[2], float(r[3]), r[4], str(path.parent)) for r in reader if r]
    if split is not None:
        rows = [r for r in rows if r.split == split]
        if not rows:
            raise SpeechInpaintError(f"{path}: no rows for split {split!r}")
    return rows


def speaker_split(speakers, fractions: tuple[int, ...], seed: int) -> dict[str, str]:
    """Assign whole speakers to train/valid/test by count, shuffled with a fixed seed.

    `fractions` are counts in the seed's proportion (79/15/15 of VCTK's 109); for another number of
    speakers they are scaled, with at least one speaker in each held-out split when there are enough.
    """
    names = sorted(set(speakers))
    rng = random.Random(seed)
    rng.shuffle(names)
    total = sum(fractions)
    held = [round(len(names) * f / total) for f in fractions[1:]]
    if len(names) >= len(fractions):
        held = [max(1, h) for h in held]
    n_train = len(names) - sum(held)
    if n_train < 1:
        raise SpeechInpaintError(f"{len(names)} speakers are too few for a speaker-disjoint split")
    out = {}
    start = 0
    for split, n in zip(SPLITS, [n_train, *held]):
        for name in names[start : start + n]:
            out[name] = split
        start += n
    return out


def summary_lines(entries: list[Entry]) -> list[str]:
    """Hours, speakers and languages per split: what a person checks before training on a corpus."""
    by_split: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_split[e.split].append(e)
    lines = []
    for split in [s for s in SPLITS if s in by_split]:
        rows = by_split[split]
        hours = sum(e.duration for e in rows) / 3600
        speakers = sorted({e.speaker for e in rows})
        languages = sorted({e.language for e in rows})
        lines.append(
            f"{split}: {hours:.2f} h, {len(rows)} clips, {len(speakers)} speakers, "
            f"{len(languages)} languages ({' '.join(languages)})"
        )
    return lines


# The seed's speaker split (79 train / 15 valid / 15 test of VCTK's 109), scaled for other counts.
SPLIT_COUNTS = (79, 15, 15)


def finish_corpus(root: str | os.PathLike, rows: list[Entry], seed: int, failed: int, total: int) -> list[str]:
    """Split the prepared rows by speaker, write manifest.csv, print and return the per-split summary."""
    splits = speaker_split([r.speaker for r in rows], SPLIT_COUNTS, seed)
    rows = [Entry(r.path, r.speaker, r.language, r.duration, splits[r.speaker]) for r in rows]
    write_manifest(root, rows)
    summary = summary_lines(rows)
    if failed:
        print(f"skipped {failed} of {total} files (see the warnings above)")
    for line in summary:
        print(line)
    return summary
