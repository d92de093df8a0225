"""Any folder of a user's own recordings as a corpus: `speechinpaint data folder --root DIR --out DIR2`.

Every readable audio file under DIR (recursive, any format soundfile reads) is prepared as the seed
prepared VCTK (prepare.py) into DIR2 with the same relative path, speaker taken from the parent
folder name (the usual layout: one folder per speaker), split speaker-disjoint like VCTK.
"""

from __future__ import annotations

from pathlib import Path

from ..files import list_audio_files
from ..errors import SpeechInpaintError
from .manifest import finish_corpus
from .prepare import prepare_files



def build_folder(root: str | Path, out: str | Path, language: str = "und", seed: int = 0, progress: bool = True):
    """Prepare every audio file under root into out and write out/manifest.csv; returns the summary."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if not root.is_dir():
        raise SpeechInpaintError(f"{root}: no such folder")
    if out == root or root in out.parents:
        raise SpeechInpaintError(f"{out}: the output folder must lie outside the input folder")
    files = list_audio_files(root)
    if not files:
        raise SpeechInpaintError(f"{root}: no audio files in this folder")
    jobs, taken = [], set()
    for src in files:
        rel = src.relative_to(root).with_suffix(".wav")
        if rel in taken:
            raise SpeechInpaintError(f"{src}: another file of the same name already became {out / rel}")
        taken.add(rel)
        jobs.append((src, rel, src.parent.name))
    rows, failed = prepare_files(jobs, out, language, progress)
    if not rows:
        raise SpeechInpaintError(f"{root}: none of the {len(files)} audio files could be prepared")
    return finish_corpus(out, rows, seed, failed, len(files))
