"""The starter corpus: real recorded speech shipped in two Debian packages, prepared for training.

Why these: they are freely licensed (GPL-2), fetchable on any Debian/Ubuntu machine with `apt-get
download` (no root, no other network access), and hold many voices: Tux Paint's spoken stamp
descriptions (one volunteer per language) and Fish Fillets' Czech dialogue (a dozen characters).

Steps: fetch the .deb files into ROOT/cache (kept, so a rerun does not fetch again), unpack with
`dpkg -x`, keep the spoken clips only, drop byte-identical duplicates and clips recorded below 16 kHz,
measure every voice's 4-8 kHz band and drop the voices where it is noise or cut (quality.py), resample
to 16 kHz mono 16-bit wav under ROOT/audio, hold out whole voices for validation, write
ROOT/manifest.csv and a README crediting the sources.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from ..audio import SAMPLE_RATE, resample, save_audio
from ..files import atomic_write
from ..errors import SpeechInpaintError
from .manifest import Entry, summary_lines, write_manifest
from .quality import CUT_EDGE_DB, CUT_FRACTION, NOISE_SNR_DB, BandMeasure, Verdict, judge_voice, measure_band

PACKAGES = ("tuxpaint-stamps-default", "fillets-ng-data-cs")
TUXPAINT_DIR = "usr/share/tuxpaint/stamps"
FILLETS_DIR = "usr/share/games/fillets-ng/sound"
# Validation voices other sessions rely on (their scores are reported on them); more Tux Paint voices
# are added, smallest first, until VALID_FRACTION of the audio is held out.
FIXED_VALID = ("tuxpaint-da", "tuxpaint-lt")
VALID_FRACTION = 0.15
# The two fish of Fish Fillets carry most of its dialogue; holding one out would starve training.
MAIN_FILLETS = ("fillets-m", "fillets-v")
MIN_RATE = 16000

_TUX_NAME = re.compile(r"_desc(?:_([A-Za-z]{2,3}(?:_[A-Za-z]{2})?(?:@\w+)?))?\.ogg(?:\.ogg)?$")


@dataclass(frozen=True)
class Clip:
    source: Path  # the unpacked original (never modified)
    rel_out: str  # output path relative to ROOT
    speaker: str
    language: str


def tuxpaint_clip(path: Path, stamps_dir: Path) -> Clip | None:
    """A spoken description `NAME_desc[_LANG].ogg`; no language suffix is the English original."""
    m = _TUX_NAME.search(path.name)
    if m is None:
        return None
    lang = (m.group(1) or "en").lower()
    rel = path.relative_to(stamps_dir).as_posix()
    rel = re.sub(r"(\.ogg)+$", ".wav", rel)
    return Clip(path, f"audio/tuxpaint/{rel}", f"tuxpaint-{lang}", lang)


def fillets_speaker(stem: str) -> str:
    """The character code in a Fillets file name: LEVEL-CODE-WORD, CODE-WORD or WORD-CODE.

    `vit-hs-klid1` -> hs, `m-silou` -> m, `agenti-m` -> m, `dr-1-erik` -> dr1 (a numbered viking:
    the number alone would merge different characters), `help3` -> help.
    """
    parts = stem.split("-")
    if len(parts) >= 3:
        code = parts[1]
        return parts[0] + code if code.isdigit() else code
    if len(parts) == 2:
        return parts[0] if len(parts[0]) <= 3 else parts[1]
    return re.sub(r"\d+$", "", stem) or stem


def fillets_clip(path: Path, sound_dir: Path) -> Clip | None:
    """A Czech dialogue line `sound/**/cs/*.ogg`; speaker from the character code in its name."""
    rel = path.relative_to(sound_dir)
    if path.suffix != ".ogg" or "cs" not in rel.parts[:-1]:
        return None
    code = fillets_speaker(path.stem)
    return Clip(path, f"audio/fillets/{rel.with_suffix('.wav').as_posix()}", f"fillets-{code}", "cs")


def find_clips(unpacked: Path) -> list[Clip]:
    """Every spoken clip in an unpacked tree, in sorted order (so duplicate removal is reproducible)."""
    clips = []
    stamps = unpacked / TUXPAINT_DIR
    if stamps.is_dir():
        clips += [c for p in sorted(stamps.rglob("*_desc*.ogg")) if (c := tuxpaint_clip(p, stamps))]
    sound = unpacked / FILLETS_DIR
    if sound.is_dir():
        clips += [c for p in sorted(sound.rglob("*.ogg")) if (c := fillets_clip(p, sound))]
    return clips


@dataclass
class Screened:
    kept: list[Clip]
    duplicates: int
    low_rate: int
    unreadable: int
    verdicts: dict[str, Verdict]


def screen(clips: list[Clip], progress: bool = True) -> Screened:
    """Drop duplicates (sha256 of the file), clips below 16 kHz, and voices whose upper band fails."""
    seen: set[str] = set()
    measures: dict[str, list[BandMeasure]] = defaultdict(list)
    survivors: list[Clip] = []
    dup = low = bad = 0
    for clip in tqdm(clips, desc="measure", unit="clip", disable=None if progress else True, file=sys.stderr):
        digest = hashlib.sha256(clip.source.read_bytes()).hexdigest()
        if digest in seen:
            dup += 1
            continue
        seen.add(digest)
        try:
            data, rate = sf.read(str(clip.source), dtype="float32", always_2d=True)
        except Exception:  # soundfile raises several types for a damaged file
            bad += 1
            continue
        if rate < MIN_RATE:
            low += 1
            continue
        if data.shape[0] == 0:
            bad += 1
            continue
        survivors.append(clip)
        m = measure_band(data.mean(axis=1), rate)
        if m is not None:
            measures[clip.speaker].append(m)
    speakers = sorted({c.speaker for c in survivors})
    verdicts = {s: judge_voice(measures[s]) for s in speakers}
    kept = [c for c in survivors if verdicts[c.speaker].keep]
    return Screened(kept, dup, low, bad, verdicts)


def choose_valid(durations: dict[str, float]) -> list[str]:
    """Validation voices: FIXED_VALID, then the smallest other Tux Paint voices until 15 % is held out.

    Only Tux Paint voices are added: each is one known person, so holding one out is a clean
    unseen-speaker test; Fillets character codes may share actors across levels.
    """
    missing = [s for s in FIXED_VALID if s not in durations]
    if missing:
        raise SpeechInpaintError(f"validation voices {', '.join(missing)} are missing from the corpus")
    total = sum(durations.values())
    valid = list(FIXED_VALID)
    extra = sorted(
        (s for s in durations if s.startswith("tuxpaint-") and s not in valid), key=lambda s: (durations[s], s)
    )
    for s in extra:
        if sum(durations[v] for v in valid) >= VALID_FRACTION * total:
            break
        valid.append(s)
    assert not set(valid) & set(MAIN_FILLETS)
    return valid


def assign_splits(rows: list[Entry]) -> tuple[list[Entry], list[str]]:
    """Set each row's split from its speaker (whole voices held out); returns rows and valid voices."""
    durations: dict[str, float] = defaultdict(float)
    for r in rows:
        durations[r.speaker] += r.duration
    valid = set(choose_valid(durations))
    out = [Entry(r.path, r.speaker, r.language, r.duration, "valid" if r.speaker in valid else "train") for r in rows]
    return out, sorted(valid)


def fetch_packages(cache: Path) -> list[Path]:
    """`apt-get download` each package into cache (skipped when its .deb is already there)."""
    if shutil.which("apt-get") is None:
        raise SpeechInpaintError(
            "apt-get not found: the starter corpus is fetched from the Debian archive with `apt-get download`; "
            "run this on a Debian or Ubuntu system, or prepare your own speech with `speechinpaint data folder`"
        )
    if shutil.which("dpkg") is None:
        raise SpeechInpaintError("dpkg not found: it is needed to unpack the fetched packages (`dpkg -x`)")
    cache.mkdir(parents=True, exist_ok=True)
    debs = []
    for pkg in PACKAGES:
        have = sorted(cache.glob(f"{pkg}_*.deb"))
        if not have:
            print(f"fetching {pkg} with apt-get download ...", file=sys.stderr)
            proc = subprocess.run(["apt-get", "download", pkg], cwd=cache, capture_output=True, text=True)
            have = sorted(cache.glob(f"{pkg}_*.deb"))
            if proc.returncode != 0 or not have:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise SpeechInpaintError(
                    f"apt-get download {pkg} failed ({last}); check the package sources (apt-get update)"
                )
        debs.append(have[-1])
    return debs


def unpack(debs: list[Path], dest: Path) -> None:
    """`dpkg -x` every package into dest (a fresh folder, so a stale tree never mixes in)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for deb in debs:
        proc = subprocess.run(["dpkg", "-x", str(deb), str(dest)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SpeechInpaintError(f"dpkg -x {deb.name} failed ({last}); delete it to fetch it again")


def convert(clips: list[Clip], root: Path, progress: bool = True) -> list[Entry]:
    """Resample each kept clip to 16 kHz mono 16-bit wav under root; rows with split left empty."""
    rows = []
    for clip in tqdm(clips, desc="resample", unit="clip", disable=None if progress else True, file=sys.stderr):
        data, rate = sf.read(str(clip.source), dtype="float32", always_2d=True)
        audio = resample(data.mean(axis=1), rate, SAMPLE_RATE)
        save_audio(root / clip.rel_out, audio)
        rows.append(Entry(clip.rel_out, clip.speaker, clip.language, audio.size / SAMPLE_RATE, ""))
    return rows


def readme_text(debs: list[Path], screened: Screened, valid: list[str], summary: list[str]) -> str:
    """The generated README: where the audio comes from, its licence, and what was dropped and why."""
    dropped = [
        f"- `{s}`: {v.reason} (median 4-8 kHz speech-to-floor ratio {v.median_snr_db:.1f} dB, "
        f"{100 * v.cut_fraction:.0f} % of {v.clips} clips with a spectral edge)"
        for s, v in screened.verdicts.items()
        if not v.keep
    ]
    lines = [
        "# Starter speech corpus (generated by `speechinpaint data starter`)",
        "",
        "Recorded speech taken from two Debian packages, resampled to 16 kHz mono 16-bit wav.",
        "",
        "## Sources and licence",
        "- `tuxpaint-stamps-default` (Tux Paint stamps, https://tuxpaint.org/, copyright 2002-2022 Bill Kendrick",
        "  and contributors): spoken stamp descriptions `*_desc*.ogg`, one volunteer per language. GPL-2.",
        "- `fillets-ng-data-cs` (Fish Fillets - Next Generation, Czech voices, https://fillets.sourceforge.net/,",
        "  ALTAR interactive and contributors): game dialogue `sound/**/cs/*.ogg`. GPL-2 or later.",
        f"- Packages used: {', '.join(d.name for d in debs)}. Their copyright files are in `licences/`.",
        "The audio here is a derived work of those packages and is distributed under the GNU GPL version 2",
        "(https://www.gnu.org/licenses/old-licenses/gpl-2.0.html).",
        "",
        "## What was kept",
        f"- Dropped {screened.duplicates} byte-identical duplicates, {screened.low_rate} clips recorded below"
        f" {MIN_RATE} Hz, {screened.unreadable} unreadable clips.",
        f"- Voices dropped because their 4-8 kHz band is noise (median ratio < {NOISE_SNR_DB:g} dB) or cut"
        f" (> {100 * CUT_FRACTION:.0f} % of clips with an edge > {CUT_EDGE_DB:g} dB):",
        *(dropped or ["- none"]),
        "- Speakers: `tuxpaint-LANG` (one volunteer per language; `en` = descriptions without a language"
        " suffix), `fillets-CODE` (the character code in the file name; `m` and `v` are the two fish).",
        "",
        "Every voice as measured (quality.py; clips too short to measure are not counted):",
        "",
        "| voice | measured clips | median 4-8 kHz speech-to-floor ratio (dB) | clips with an edge | verdict |",
        "|---|---|---|---|---|",
        *[
            f"| {s} | {v.clips} | {v.median_snr_db:.1f} | {100 * v.cut_fraction:.0f} % | {v.reason} |"
            for s, v in sorted(screened.verdicts.items())
        ],
        "",
        "## Splits (whole voices)",
        f"Validation voices: {', '.join(valid)}. Everything else is training.",
        "",
        *[f"- {s}" for s in summary],
        "",
        "`manifest.csv`: path (relative to this folder), speaker, language, duration (s), split.",
        "",
    ]
    return "\n".join(lines)


def build_starter(root: str | Path, progress: bool = True) -> list[str]:
    """Build the whole corpus under root; returns the summary lines it also prints."""
    root = Path(root)
    cache = root / "cache"
    debs = fetch_packages(cache / "debs")
    unpacked = cache / "unpacked"
    unpack(debs, unpacked)
    clips = find_clips(unpacked)
    if not clips:
        raise SpeechInpaintError(f"{unpacked}: the packages hold no spoken clips where expected")
    screened = screen(clips, progress)
    rows, valid = assign_splits(convert(screened.kept, root, progress))
    write_manifest(root, rows)
    licences = root / "licences"
    licences.mkdir(exist_ok=True)
    for pkg in PACKAGES:
        src = unpacked / "usr/share/doc" / pkg / "copyright"
        if src.is_file():
            atomic_write(licences / f"{pkg}.copyright", lambda tmp, s=src: shutil.copyfile(s, tmp))
    summary = summary_lines(rows)
    readme = readme_text(debs, screened, valid, summary)
    atomic_write(root / "README.md", lambda tmp: Path(tmp).write_text(readme, encoding="utf-8"))
    for s, v in screened.verdicts.items():
        if not v.keep:
            print(f"dropped voice {s}: {v.reason} (median 4-8 kHz ratio {v.median_snr_db:.1f} dB, "
                  f"{100 * v.cut_fraction:.0f} % clips with an edge)")
    print(f"validation voices: {' '.join(valid)}")
    for line in summary:
        print(line)
    return summary
