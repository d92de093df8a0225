"""Command-line interface: argument parsing only; each command maps its arguments onto one library
function. The modules are imported inside the commands so that `--help` does not load torch."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import SpeechInpaintError
from .files import os_error_line


def cmd_corrupt(args) -> int:
    from .corruptions import corrupt_files

    return corrupt_files(args.input, args.output, args.kind, args.seed, args.coverage, args.loss_rate, args.cutoff_hz,
                         args.subtype)


def cmd_restore(args) -> int:
    from .restorers import restore_files

    return restore_files(args.input, args.output, args.method, args.mask, args.checkpoint, args.reference,
                         args.iterations, args.device, args.sample_rate, args.subtype, args.detect, args.save_mask,
                         args.band_gain_db)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_files
    from .metrics import METRICS, parse_metrics

    metrics = parse_metrics(args.metrics) if args.metrics is not None else METRICS
    return evaluate_files(args.reference, args.estimate, args.mask, args.json, args.csv, args.jobs, metrics)


def cmd_plot(args) -> int:
    from .plot import plot_files

    return plot_files(args.clean, args.corrupted, args.restored, args.output, args.mask)


def cmd_train(args) -> int:
    from .training.run import train

    train(args.config, args.data, args.out, args.resume, args.devices, args.num_nodes, args.max_minutes,
          args.init_from)
    return 0


def cmd_data(args) -> int:
    if args.corpus == "starter":
        from .corpora.starter import build_starter

        build_starter(args.root)
    elif args.corpus == "vctk":
        from .corpora.vctk import build_vctk

        build_vctk(args.root, args.release, args.url, args.sha256, args.seed)
    else:
        from .corpora.folder import build_folder

        build_folder(args.root, args.out, args.language, args.seed)
    return 0


def cmd_detect(args) -> int:
    from .detection import detect_files

    return detect_files(args.input, args.output, args.device, args.detect)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.output)


def cmd_edit(args) -> int:
    from .editor.server import serve

    return serve(args.file, args.host, args.port, not args.no_browser)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The `speechinpaint data vctk|starter|folder` subcommands."""
    sub = parser.add_subparsers(dest="corpus", required=True)
    v = sub.add_parser("vctk", help="download and prepare VCTK as the seed did (speaker split 79/15/15)")
    v.add_argument("--root", required=True, help="folder for download/, original/, prepared/ and manifest.csv")
    v.add_argument("--release", choices=("2017", "0.92"), default="2017", help="VCTK release (default: 2017)")
    v.add_argument("--url", help="download from here instead of the Edinburgh DataShare")
    v.add_argument("--sha256", help="expected sha256 of the downloaded archive")
    v.add_argument("--seed", type=int, default=0, help="seed of the speaker split (default: 0)")
    s = sub.add_parser("starter", help="fetch and prepare the starter corpus (Tux Paint, Fish Fillets)")
    s.add_argument("--root", required=True, help="output folder (audio, manifest.csv, README.md, cache/)")
    f = sub.add_parser("folder", help="prepare a folder of your own recordings (speaker = parent folder)")
    f.add_argument("--root", required=True, help="input folder, searched recursively")
    f.add_argument("--out", required=True, help="output folder for the prepared wav files and manifest.csv")
    f.add_argument("--language", default="und", help="language code written to the manifest (default: und)")
    f.add_argument("--seed", type=int, default=0, help="seed of the speaker split (default: 0)")


METHODS = ("model", "interp", "zero", "oracle", "seed-mfcc", "ar", "janssen-tf", "sbr", "opus-plc", "opus-deep-plc",
           "opus-fec")  # restorers.METHODS, without importing torch
KINDS = ("holes", "gaps", "band")  # detection.KINDS, likewise


def kinds_list(text: str) -> tuple[str, ...]:
    """'holes,gaps' -> ('holes', 'gaps'); an unknown kind is argparse's one-line error."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"choose some of {','.join(KINDS)} (got {text!r})")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speechinpaint", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"speechinpaint {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corrupt", help="damage clean speech (holes, packet-loss gaps, missing band) and write masks")
    c.add_argument("input", help="audio file or folder (any rate from 8 kHz, any channels)")
    c.add_argument("-o", "--output", required=True, help="output audio file or folder (DIR/ makes a folder)")
    c.add_argument("--kind", required=True, choices=("holes", "gaps", "band"))
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--coverage", type=float, default=0.30, help="holes: fraction of the spectrogram area")
    c.add_argument("--loss-rate", type=float, default=0.2, help="gaps: fraction of 20 ms packets lost")
    c.add_argument("--cutoff-hz", type=float, default=4000.0, help="band: upper band edge kept")
    c.add_argument("--subtype", help="sample format of the output (PCM_16, PCM_24, FLOAT, ...; default: the input's)")
    c.set_defaults(func=cmd_corrupt)

    r = sub.add_parser("restore", help="fill the missing regions of corrupted speech")
    r.add_argument("input", help="corrupted audio file or folder (NAME.mask.json beside each)")
    r.add_argument("-o", "--output", required=True,
                   help="output file (its suffix names the container) or folder (DIR/ makes one; names kept)")
    r.add_argument("--mask", help="mask file (default: NAME.mask.json beside the input), or 'auto' to detect it")
    r.add_argument("--method", default="model", choices=METHODS)
    r.add_argument("--checkpoint", help="your own trained checkpoint instead of the shipped model")
    r.add_argument("--reference", help="clean audio (file or folder): the oracle's magnitude; what an Opus sender encoded")
    r.add_argument("--iterations", type=int, default=None,
                   help="phase reconstruction iterations (default: 16 for the model, 32 for interp and oracle)")
    r.add_argument("--band-gain-db", type=float, help="model: the level of an extended upper band against the "
                   "network's estimate (default: the checkpoint's; 0 for the full-level estimate)")
    r.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, cuda:1, mps)")
    r.add_argument("--sample-rate", type=int, help="output rate (default: the input's; higher than an input below "
                   "16 kHz extends its band)")
    r.add_argument("--subtype", help="output sample format (PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE; default: the input's)")
    r.add_argument("--detect", type=kinds_list, default=KINDS, help="with --mask auto: what to look for (default: "
                   "holes,gaps,band)")
    r.add_argument("--save-mask", action="store_true", help="also write the mask used as NAME.mask.json beside the output")
    r.set_defaults(func=cmd_restore)

    e = sub.add_parser("evaluate", help="score restored audio against the clean original (STOI, PESQ, ViSQOL, "
                       "PLCMOS, DNSMOS, LSD, ...)")
    e.add_argument("--reference", required=True, help="clean file or folder")
    e.add_argument("--estimate", required=True, help="estimated file or folder (same relative names)")
    e.add_argument("--mask", help="mask file or folder for LSD inside the mask (default: beside the estimate)")
    e.add_argument("--json", help="write per-file rows and the summary as JSON")
    e.add_argument("--csv", help="write per-file rows as CSV")
    e.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPU cores)")
    e.add_argument("--metrics", help="comma list of metrics to score (default: all of stoi,estoi,pesq,visqol,plcmos,"
                   "dnsmos_sig,dnsmos_bak,dnsmos_ovrl,lsd,lsd_high,lsd_mask,si_sdr)")
    e.set_defaults(func=cmd_evaluate)

    pl = sub.add_parser("plot", help="three aligned spectrograms with the mask outlined")
    pl.add_argument("clean")
    pl.add_argument("corrupted")
    pl.add_argument("restored")
    pl.add_argument("-o", "--output", required=True, help="figure file (.png)")
    pl.add_argument("--mask", help="mask file (default: beside the corrupted file)")
    pl.set_defaults(func=cmd_plot)

    t = sub.add_parser("train", help="train the inpainting network, its envelope head or the holes detector (PyTorch Lightning)")
    t.add_argument("--config", required=True, help="configs/NAME.yaml")
    t.add_argument("--data", help="corpus folder with manifest.csv (overrides the config)")
    t.add_argument("--out", help="run folder (default: runs/CONFIG_NAME)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    t.add_argument("--devices", default=None, help="devices per node (Lightning syntax)")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    t.add_argument("--init-from", help="start from this checkpoint's weights (overrides train.init_from)")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("data", help="download and prepare corpora (vctk, starter, folder)")
    add_data_arguments(d)
    d.set_defaults(func=cmd_data)

    dt = sub.add_parser("detect", help="estimate the mask of damaged audio from the audio alone")
    dt.add_argument("input", help="audio file or folder")
    dt.add_argument("-o", "--output", required=True, help="mask file (NAME.mask.json) or folder")
    dt.add_argument("--device", default="cpu", help="torch device of the holes detector (cpu, cuda, mps)")
    dt.add_argument("--detect", type=kinds_list, default=KINDS, help="what to look for (default: holes,gaps,band)")
    dt.set_defaults(func=cmd_detect)

    dm = sub.add_parser("demo", help="corrupt and restore the bundled example, print the table")
    dm.add_argument("-o", "--output", default="demo-output")
    dm.set_defaults(func=cmd_demo)

    ed = sub.add_parser("edit", help="a local web page to see the damage, mark it, restore, listen A/B and save")
    ed.add_argument("file", nargs="?", help="audio file to open (read once, never written)")
    ed.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ed.add_argument("--port", type=int, default=8765)
    ed.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    ed.set_defaults(func=cmd_edit)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpeechInpaintError as exc:
        print(f"speechinpaint: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk or an unwritable --json, plot -o, ...: one line, not a traceback
        print(f"speechinpaint: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechinpaint: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
