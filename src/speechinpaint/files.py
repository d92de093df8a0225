"""Files on disk: which audio files a path names, which output each one gets, running a job over them,
and writing any output atomically.

Every command that takes a file or a folder pairs its inputs and outputs here, so the rules (a folder
means its audio files recursively, an output never replaces its input, a failed file is one line) are
the same for all of them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from .errors import SpeechInpaintError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus"}


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path) on a temporary file beside path, then rename it into place.

    A crash or a full disk leaves either the old file or none, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def list_audio_files(root: str | os.PathLike) -> list[Path]:
    """Every audio file under a folder (recursive, sorted), or the file itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SpeechInpaintError(f"{root}: no such file or folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [p for p in files if not p.name.startswith(".")]


def file_pairs(inp: str | os.PathLike, out: str | os.PathLike, suffix: str = ".wav") -> list[tuple[Path, Path, str]]:
    """(input file, output file, relative name) for a file or every audio file of a folder.

    A folder's files keep their relative names under `out`, with `suffix` in place of their own; a file
    written into an existing folder is named after its input. Refuses any pair whose output would
    replace its input, and two inputs that would be written to one output.
    """
    src, dst = Path(inp), Path(out)
    if src.is_dir():
        files = list_audio_files(src)
        if not files:
            raise SpeechInpaintError(f"{src}: no audio files in this folder")
        pairs = [(f, (dst / f.relative_to(src)).with_name(f.stem + suffix), f.relative_to(src).as_posix()) for f in files]
    elif src.is_file():
        target = dst / (src.stem + suffix) if dst.is_dir() else dst
        pairs = [(src, target, src.name)]
    else:
        raise SpeechInpaintError(f"{src}: no such file or folder")
    written_by: dict[Path, Path] = {}
    for f, o, _ in pairs:
        if o.exists() and o.resolve() == f.resolve():
            raise SpeechInpaintError(f"{o}: output would overwrite its input; choose another -o")
        if o in written_by:  # NAME.wav and NAME.flac both become NAME.wav: one would silently replace the other
            raise SpeechInpaintError(f"{written_by[o]} and {f} would both be written to {o}; rename one")
        written_by[o] = f
    return pairs


def for_each_file(pairs: list[tuple[Path, Path, str]], work: Callable[[Path, Path, str], None], desc: str) -> int:
    """Run work(in, out, name) on every pair with a progress bar; one line per failed file, exit 1 if any."""
    failures = 0
    for src, dst, name in tqdm(pairs, desc=desc, unit="file", disable=len(pairs) < 2, file=sys.stderr):
        try:
            work(src, dst, name)
        except SpeechInpaintError as exc:
            failures += 1
            tqdm.write(f"speechinpaint: error: {exc}", file=sys.stderr)
        except OSError as exc:  # e.g. an output folder that cannot be created or written: still one line
            failures += 1
            tqdm.write(f"speechinpaint: error: {dst}: cannot write ({exc.strerror or exc}: {exc.filename})", file=sys.stderr)
    return 1 if failures else 0
