"""Command-line interface: argument parsing and file iteration only; the work lives in the modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .errors import SpeechInpaintError


def file_pairs(inp: str, out: str) -> list[tuple[Path, Path, str]]:
    """(input file, output .wav, relative name) for a file or every audio file of a folder.

    Refuses any pair whose output would replace its input.
    """
    from .audio import list_audio_files

    src, dst = Path(inp), Path(out)
    if src.is_dir():
        files = list_audio_files(src)
        if not files:
            raise SpeechInpaintError(f"{src}: no audio files in this folder")
        pairs = [(f, (dst / f.relative_to(src)).with_suffix(".wav"), f.relative_to(src).as_posix()) for f in files]
    elif src.is_file():
        target = dst / (src.stem + ".wav") if dst.is_dir() else dst
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


def for_each_file(pairs, work, desc: str) -> int:
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


def cmd_corrupt(args) -> int:
    from .audio import load_audio, save_audio
    from .corruptions import corrupt, file_seed
    from .masks import mask_path_for, save_mask

    def work(src, dst, name):
        audio = load_audio(src)
        bad, mask = corrupt(
            audio, args.kind, file_seed(args.seed, name), args.coverage, args.loss_rate, args.cutoff_hz
        )
        save_audio(dst, bad)
        save_mask(mask_path_for(dst), mask)

    return for_each_file(file_pairs(args.input, args.output), work, "corrupt")


def cmd_restore(args) -> int:
    from .audio import AUDIO_SUFFIXES, load_audio, save_audio
    from .masks import load_mask, mask_path_for
    from .restoration import restore

    inpainter = None
    if args.method == "model":
        from .inpainter import Inpainter

        inpainter = Inpainter.from_checkpoint(args.checkpoint)
    pairs = file_pairs(args.input, args.output)
    if args.mask not in (None, "auto") and len(pairs) > 1:
        raise SpeechInpaintError("--mask FILE applies to one input file; a folder reads NAME.mask.json beside each")

    def work(src, dst, name):
        audio = load_audio(src)
        if args.mask == "auto":
            from .detection import detect_mask

            mask = detect_mask(audio)
        else:
            mask = load_mask(args.mask or mask_path_for(src))
        mask.check_matches(len(audio), 16000, str(args.mask or mask_path_for(src)))
        reference = None
        if args.method == "oracle":
            if not args.reference:
                raise SpeechInpaintError("the oracle method needs --reference CLEAN (file or folder)")
            ref_root = Path(args.reference)
            ref = ref_root / name if ref_root.is_dir() else ref_root
            if ref_root.is_dir() and not ref.is_file():
                # corrupt writes NAME.wav whatever the clean file was (.flac, .ogg): match on NAME.
                same = [p for p in ref.parent.glob("*") if p.stem == ref.stem and p.suffix.lower() in AUDIO_SUFFIXES]
                ref = same[0] if len(same) == 1 else ref
            reference = load_audio(ref)
        save_audio(dst, restore(audio, mask, args.method, reference, args.iterations, inpainter))

    return for_each_file(pairs, work, "restore")


def cmd_evaluate(args) -> int:
    from .evaluate import run_evaluate

    return run_evaluate(args)


def cmd_plot(args) -> int:
    from .plot import run_plot

    return run_plot(args)


def cmd_train(args) -> int:
    from .train import run_train

    return run_train(args)


def cmd_data(args) -> int:
    from .corpora import run_data

    return run_data(args)


def cmd_detect(args) -> int:
    from .detection import run_detect

    return run_detect(args)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    from .restoration import METHODS

    p = argparse.ArgumentParser(prog="speechinpaint", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"speechinpaint {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corrupt", help="damage clean speech (holes, packet-loss gaps, missing band) and write masks")
    c.add_argument("input", help="audio file or folder")
    c.add_argument("-o", "--output", required=True, help="output .wav file or folder")
    c.add_argument("--kind", required=True, choices=("holes", "gaps", "band"))
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--coverage", type=float, default=0.30, help="holes: fraction of the spectrogram area")
    c.add_argument("--loss-rate", type=float, default=0.2, help="gaps: fraction of 20 ms packets lost")
    c.add_argument("--cutoff-hz", type=float, default=4000.0, help="band: upper band edge kept")
    c.set_defaults(func=cmd_corrupt)

    r = sub.add_parser("restore", help="fill the missing regions of corrupted speech")
    r.add_argument("input", help="corrupted audio file or folder (NAME.mask.json beside each)")
    r.add_argument("-o", "--output", required=True, help="output .wav file or folder")
    r.add_argument("--mask", help="mask file (default: NAME.mask.json beside the input), or 'auto' to detect it")
    r.add_argument("--method", default="model", choices=METHODS)
    r.add_argument("--checkpoint", help="your own trained checkpoint instead of the shipped model")
    r.add_argument("--reference", help="clean audio (file or folder), for the oracle method")
    r.add_argument("--iterations", type=int, default=32, help="phase reconstruction iterations")
    r.set_defaults(func=cmd_restore)

    e = sub.add_parser("evaluate", help="score restored audio against the clean original (STOI, PESQ, LSD)")
    e.add_argument("--reference", required=True, help="clean file or folder")
    e.add_argument("--estimate", required=True, help="estimated file or folder (same relative names)")
    e.add_argument("--mask", help="mask file or folder for LSD inside the mask (default: beside the estimate)")
    e.add_argument("--json", help="write per-file rows and the summary as JSON")
    e.add_argument("--csv", help="write per-file rows as CSV")
    e.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPU cores)")
    e.set_defaults(func=cmd_evaluate)

    pl = sub.add_parser("plot", help="three aligned spectrograms with the mask outlined")
    pl.add_argument("clean")
    pl.add_argument("corrupted")
    pl.add_argument("restored")
    pl.add_argument("-o", "--output", required=True, help="figure file (.png)")
    pl.add_argument("--mask", help="mask file (default: beside the corrupted file)")
    pl.set_defaults(func=cmd_plot)

    t = sub.add_parser("train", help="train the inpainting network or the holes detector (PyTorch Lightning)")
    t.add_argument("--config", required=True, help="configs/NAME.yaml")
    t.add_argument("--data", help="corpus folder with manifest.csv (overrides the config)")
    t.add_argument("--out", help="run folder (default: runs/CONFIG_NAME)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    t.add_argument("--devices", default=None, help="devices per node (Lightning syntax)")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("data", help="download and prepare corpora (vctk, starter, folder)")
    from .corpora import add_data_arguments

    add_data_arguments(d)
    d.set_defaults(func=cmd_data)

    dt = sub.add_parser("detect", help="estimate the mask of damaged audio from the audio alone")
    dt.add_argument("input", help="audio file or folder")
    dt.add_argument("-o", "--output", required=True, help="mask file (NAME.mask.json) or folder")
    dt.set_defaults(func=cmd_detect)

    dm = sub.add_parser("demo", help="corrupt and restore the bundled example, print the table")
    dm.add_argument("-o", "--output", default="demo-output")
    dm.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpeechInpaintError as exc:
        print(f"speechinpaint: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechinpaint: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
