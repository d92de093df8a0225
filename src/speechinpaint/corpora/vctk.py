"""VCTK, the seed's corpus: download (resumable), verify, extract, prepare as the seed did, split.

`speechinpaint data vctk --root DIR [--release 2017|0.92] [--url URL] [--sha256 HEX]` lays out DIR as
  download/NAME.zip   the archive as fetched (NAME.zip.part while incomplete; a rerun resumes it)
  original/           the archive's contents, never modified
  prepared/SPK/*.wav  16 kHz, -26 dBFS peak, silence trimmed (prepare.py)
  manifest.csv        paths relative to DIR; speakers split 79/15/15 with a fixed seed, as the seed did
The archives are ~11 GB, so the download resumes with an HTTP Range request where it stopped, and
extraction goes to a temporary folder renamed into place only when complete: an interrupted or
corrupt archive never leaves a half-extracted corpus that a later run would mistake for a whole one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from tqdm import tqdm

from ..errors import SpeechInpaintError
from .manifest import finish_corpus
from .prepare import prepare_files

CHUNK = 1 << 20


@dataclass(frozen=True)
class Release:
    url: str
    audio_dir: str  # the folder holding one subfolder per speaker
    pattern: str  # the files of one speaker to use
    # sha256 of inner archives, checked only for the official download (a --url may serve anything).
    inner_sha256: dict[str, str]


RELEASES = {
    # 109 speakers, 48 kHz wav; the outer zip holds VCTK-Corpus.zip.
    "2017": Release("https://datashare.ed.ac.uk/download/DS_10283_2651.zip", "wav48", "*.wav", {}),
    # 110 speakers, FLAC, two microphones: mic1 only, so a sentence is not counted twice.
    "0.92": Release(
        "https://datashare.ed.ac.uk/download/DS_10283_3443.zip",
        "wav48_silence_trimmed",
        "*_mic1.flac",
        # As published with torchaudio's VCTK_092 loader for VCTK-Corpus-0.92.zip.
        {"VCTK-Corpus-0.92.zip": "f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c"},
    ),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _total_from_content_range(value: str | None) -> tuple[int, int | None]:
    """(first byte, total size) from `bytes START-END/TOTAL` or `bytes */TOTAL`."""
    m = re.fullmatch(r"bytes (\d+|\*)(?:-\d+)?/(\d+|\*)", (value or "").strip())
    if m is None:
        raise SpeechInpaintError(f"the server sent an unreadable Content-Range header ({value!r})")
    start = 0 if m.group(1) == "*" else int(m.group(1))
    return start, None if m.group(2) == "*" else int(m.group(2))


def download(url: str, dest: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Fetch url to dest, resuming dest.part with a Range request; verify size and sha256.

    The size is checked against what the server announced; an interrupted transfer keeps its
    .part file and asks for a rerun, which continues from the last byte received.
    """
    if dest.is_file():
        if sha256 and sha256_of(dest) != sha256.lower():
            raise SpeechInpaintError(f"{dest}: sha256 does not match {sha256}; delete it to download again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urlopen(request, timeout=60)
    except HTTPError as exc:
        if exc.code == 416 and have:  # nothing after the bytes we have: the .part may be complete
            _, total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total != have:
                raise SpeechInpaintError(f"{part}: {have} bytes but the server has {total}; delete it") from None
            return _finish(part, dest, sha256)
        raise SpeechInpaintError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (URLError, OSError) as exc:
        raise SpeechInpaintError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        if response.status == 206:
            start, total = _total_from_content_range(response.headers.get("Content-Range"))
            if start != have:
                raise SpeechInpaintError(f"the server resumed at byte {start}, not {have}; delete {part}")
            mode = "ab"
        else:  # a server that ignores Range sends everything again
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
        with part.open(mode) as fh, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
            disable=None if progress else True, file=sys.stderr,
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.IncompleteRead, OSError):
                    break  # the size check below reports it
                if not chunk:
                    break
                fh.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise SpeechInpaintError(
            f"download of {url} stopped at {size} of {total} bytes; rerun the same command to resume it"
        )
    return _finish(part, dest, sha256)


def _finish(part: Path, dest: Path, sha256: str | None) -> Path:
    """Check the checksum of a complete .part and move it into place."""
    if sha256:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink()
            raise SpeechInpaintError(f"{dest.name}: sha256 {got} does not match {sha256}; the download was removed")
    os.replace(part, dest)
    return dest


def _extract_all(archive: Path, into: Path, progress: bool) -> None:
    """Extract every member, refusing paths that would land outside `into`."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for m in members:
            p = PurePosixPath(m.filename)
            if p.is_absolute() or ".." in p.parts:
                raise SpeechInpaintError(f"{archive}: unsafe member path {m.filename!r}")
        for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=None if progress else True,
                      file=sys.stderr):
            zf.extract(m, into)


def extract(archive: Path, dest: Path, inner_sha256: dict[str, str], progress: bool = True) -> Path:
    """Extract archive (and the VCTK-Corpus*.zip it contains) into dest, all or nothing."""
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _extract_all(archive, tmp, progress)
        for inner in sorted(tmp.rglob("VCTK-Corpus*.zip")):
            expected = inner_sha256.get(inner.name)
            if expected and sha256_of(inner) != expected:
                raise SpeechInpaintError(f"{archive}: the inner {inner.name} does not match its published sha256")
            _extract_all(inner, inner.parent, progress)
            inner.unlink()  # the outer download still holds it; no need for 11 GB twice
        os.replace(tmp, dest)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SpeechInpaintError(
            f"{archive}: corrupt archive ({exc}); nothing was extracted; delete it and rerun to download it again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def find_speaker_files(original: Path, release: Release) -> dict[str, list[Path]]:
    """Audio files per speaker under the release's audio folder (e.g. wav48/p225/p225_001.wav)."""
    dirs = sorted(d for d in original.rglob(release.audio_dir) if d.is_dir())
    if len(dirs) != 1:
        raise SpeechInpaintError(
            f"{original}: expected one {release.audio_dir}/ folder, found {len(dirs)}; is --release right?"
        )
    speakers = {}
    for spk in sorted(d for d in dirs[0].iterdir() if d.is_dir()):
        files = sorted(spk.glob(release.pattern))
        if files:
            speakers[spk.name] = files
    if not speakers:
        raise SpeechInpaintError(f"{dirs[0]}: no speaker folders with {release.pattern} files")
    return speakers


def build_vctk(
    root: str | Path,
    release: str = "2017",
    url: str | None = None,
    sha256: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """Download, extract, prepare and split VCTK under root; returns the summary lines it prints."""
    if release not in RELEASES:
        raise SpeechInpaintError(f"unknown VCTK release {release!r}; choose one of {', '.join(RELEASES)}")
    rel = RELEASES[release]
    root = Path(root)
    name = Path(urlparse(url or rel.url).path).name or f"vctk-{release}.zip"
    archive = download(url or rel.url, root / "download" / name, sha256, progress)
    original = extract(archive, root / "original", rel.inner_sha256 if url is None else {}, progress)
    speakers = find_speaker_files(original, rel)
    jobs = [(f, Path("prepared") / spk / (f.stem + ".wav"), spk) for spk, files in speakers.items() for f in files]
    # reuse: files prepared by an earlier, interrupted run are kept, so a restart goes on where it stopped.
    rows, failed = prepare_files(jobs, root, "en", progress, reuse=True)
    if not rows:
        raise SpeechInpaintError(f"{original}: none of the audio files could be prepared")
    return finish_corpus(root, rows, seed, failed, len(jobs))
