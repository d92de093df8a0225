"""Files on disk: which audio files a path names, which output each one gets, running a job over them,
and writing any output atomically.

Every command that takes a file or a folder pairs its inputs and outputs here, so the rules (a folder
means its audio files recursively, an output never replaces its input, a failed file is one line) are
the same for all of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import SpeechInpaintError
from .progress import Progress

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus"}


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path) on a temporary file beside path, then rename it into place.

    A crash or a full disk leaves either the old file or none, never a half-written one.
    """
    atomic_write_all([(path, write)])


def list_audio_files(root: str | os.PathLike) -> list[Path]:
    """Every audio file under a folder (recursive, sorted), or the file itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SpeechInpaintError(f"{root}: no such file or folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [p for p in files if not p.name.startswith(".")]


def is_folder_target(path: str | os.PathLike) -> bool:
    """An output path means a folder when it is one or is written with a trailing slash."""
    text = os.fspath(path)
    return Path(text).is_dir() or text.endswith(("/", os.sep))


def batch_folder(inp: str | os.PathLike, out: str | os.PathLike) -> Path | None:
    """The output folder of a command whose output is a folder (where its batch record goes), else None."""
    return Path(out) if Path(inp).is_dir() or is_folder_target(out) else None


def file_pairs(inp: str | os.PathLike, out: str | os.PathLike, suffix: str | None = None) -> list[tuple[Path, Path, str]]:
    """(input file, output file, relative name) for a file or every audio file of a folder.

    A folder's files keep their relative names under `out`; so does a file written into a folder (`out`
    is one, or ends in a slash). `suffix` replaces each name's own (None keeps it). Refuses any pair
    whose output would replace its input, and two inputs that would be written to one output.
    """
    src, dst = Path(inp), Path(out)

    def renamed(path: Path) -> Path:
        return path if suffix is None else path.with_name(path.stem + suffix)

    if src.is_dir():
        files = list_audio_files(src)
        if not files:
            raise SpeechInpaintError(f"{src}: no audio files in this folder")
        pairs = [(f, renamed(dst / f.relative_to(src)), f.relative_to(src).as_posix()) for f in files]
    elif src.is_file():
        target = renamed(dst / src.name) if is_folder_target(out) else dst
        pairs = [(src, target, src.name)]
    else:
        raise SpeechInpaintError(f"{src}: no such file or folder")
    written_by: dict[Path, Path] = {}
    for f, o, _ in pairs:
        refuse_overwrite(o, [f])
        if o in written_by:  # NAME.wav and NAME.flac both become NAME.wav: one would silently replace the other
            raise SpeechInpaintError(f"{written_by[o]} and {f} would both be written to {o}; rename one")
        written_by[o] = f
    return pairs


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links and relative paths resolved; neither need exist)."""
    return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(output: str | os.PathLike, inputs) -> None:
    """One clear error if the output path names any of the inputs (audio, mask, reference, estimate)."""
    for path in inputs:
        if path is not None and same_file(output, path):
            raise SpeechInpaintError(f"{output}: output would overwrite its input ({path}); choose another -o")


def atomic_write_all(writes: list[tuple[str | os.PathLike, Callable[[str], None]]]) -> None:
    """Several files written together or not at all: each to a temporary file beside it first, and only
    when all are complete renamed into place (a file renamed before a later rename fails is removed)."""
    staged: list[tuple[str, Path]] = []
    path = None
    try:
        for path, write in writes:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with _signals_held():  # a signal between creating the file and noting it would leave it behind
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
                os.close(fd)
                staged.append((tmp, path))
            write(tmp)
            _plain_permissions(tmp)
    except BaseException as exc:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise
    done: list[Path] = []
    try:
        for tmp, path in staged:
            with _signals_held():
                os.replace(tmp, path)
                done.append(path)
    except BaseException as exc:
        for done_path in done:
            done_path.unlink(missing_ok=True)
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise


@contextlib.contextmanager
def _signals_held():
    """Hold back SIGINT, SIGTERM and SIGHUP for the few steps inside (where the OS has them); one sent
    meanwhile is delivered, and its handler raises, as soon as they are done."""
    held = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _naming(exc: OSError, path: Path | None) -> OSError:
    """An OSError about a temporary .part file (or none) retold about the user's own path."""
    if path is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _plain_permissions(path: str) -> None:
    """mkstemp makes a file private (0600); give it the permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def for_each_file(pairs: list[tuple[Path, Path, str]], work: Callable[[Path, Path, str], None], desc: str,
                  done: str = "done") -> int:
    """Run work(in, out, name) on every pair: progress on stderr, one line per failed file, and for a
    batch a closing line ('19 restored, 1 failed (see above)'); returns 1 if any failed."""
    failures = 0
    progress = Progress(len(pairs), desc, "files", enabled=len(pairs) > 1)
    for src, dst, name in pairs:
        try:
            work(src, dst, name)
        except SpeechInpaintError as exc:
            failures += 1
            progress.write(f"speechinpaint: error: {exc}")
        except OSError as exc:  # a full disk, an unwritable or impossible output path: still one line
            failures += 1
            progress.write(f"speechinpaint: error: {os_error_line(exc, dst)}")
        progress.update(1)
    progress.close()
    if len(pairs) > 1:
        print(f"{len(pairs) - failures} {done}, {failures} failed" + (" (see above)" if failures else ""), file=sys.stderr)
    return 1 if failures else 0


def os_error_line(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """'PATH: cannot write (No space left on device)' from an OSError, without a traceback."""
    where = exc.filename or path
    return f"{where}: cannot write ({exc.strerror or exc})" if where else f"cannot write ({exc.strerror or exc})"


def check_room(outputs: list[tuple[Path, int]]) -> None:
    """Before long work (a model loading, a batch): each output's folder can be made and written, and each
    disk has room for the estimated bytes of the outputs it takes; else one line naming the user's path."""
    need: dict[int, tuple[int, Path, int]] = {}  # device -> (bytes needed, first output there, bytes free)
    for path, size in outputs:
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise SpeechInpaintError(f"{path}: cannot write ({folder} is not a folder)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SpeechInpaintError(f"{path}: cannot write (Permission denied)")
        stat = os.statvfs(folder)
        device = os.stat(folder).st_dev
        total, first, free = need.get(device, (0, Path(path), stat.f_bavail * stat.f_frsize))
        need[device] = (total + size, first, free)
    for total, first, free in need.values():
        if total > free:
            raise SpeechInpaintError(f"{first}: not enough free space ({total / 1e6:,.1f} MB to write, "
                                     f"{free / 1e6:,.1f} MB free)")
def remove_partial_files(outputs: list[Path]) -> None:
    """Remove the temporary files that atomic writes of these outputs (or of files named after them, as
    NAME.mask.json) left behind: a worker killed mid-write cannot remove its own."""
    stems: dict[Path, set[str]] = {}
    for out in outputs:
        stems.setdefault(out.parent, set()).add(out.name.split(".")[0])
    for folder, names in stems.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(".") and ".part" in entry and entry[1:].split(".")[0] in names:
                (folder / entry).unlink(missing_ok=True)
