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
                         args.subtype, args.max_freq)


def cmd_restore(args) -> int:
    if args.detect is not None and args.mask != "auto":
        raise SpeechInpaintError("--detect chooses what --mask auto looks for; add --mask auto or leave --detect out")
    from .files import file_pairs

    file_pairs(args.input, args.output)  # a missing input, or an output onto it: told before torch loads
    from .devices import torch_device
    from .restorers import restore_files

    torch_device(args.device)  # before any file or weights are read
    return restore_files(args.input, args.output, args.method, args.mask, args.checkpoint, args.reference,
                         args.iterations, args.device, args.sample_rate, args.subtype, args.detect or KINDS,
                         args.save_mask, args.workers, args.ray, args.resume, args.band_gain_db)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_files
    from .metrics import ALL_METRICS, parse_metrics

    metrics = parse_metrics(args.metrics) if args.metrics is not None else ALL_METRICS
    return evaluate_files(args.reference, args.estimate, args.mask, args.json, args.csv, args.workers, metrics, args.ray)


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
    from .devices import torch_device

    torch_device(args.device)

    return detect_files(args.input, args.output, args.device, args.detect, args.workers, args.ray, args.resume)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.output)


def cmd_edit(args) -> int:
    from .editor.server import serve

    return serve(args.file, args.host, args.port, not args.no_browser, memory_budget=args.memory_budget)


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
# The highest output rate --sample-rate takes (8x 48 kHz; beyond it a rate is a typo, and costs memory).
MAX_SAMPLE_RATE = 384000


def kinds_list(text: str) -> tuple[str, ...]:
    """'holes,gaps' -> ('holes', 'gaps'); an unknown kind is argparse's one-line error."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"choose some of {','.join(KINDS)} (got {text!r})")
    return kinds


def int_in(low: int, high: int | None = None):
    """An argparse type: an integer in low .. high (high None: no upper bound), else a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must lie in {low} .. {high} (got {value})" if high is not None
                                             else f"must be at least {low} (got {value})")
        return value

    return parse


def byte_size(text: str) -> int:
    """'2G', '500M', '64k' or a plain number of bytes (decimal units) -> bytes."""
    units = {"": 1, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4}
    number, unit = text.strip().upper().rstrip("B"), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 2G or 500M, got {text!r}") from None
    if not value >= 1e6 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be at least 1M (got {text!r})")
    return int(value)


def add_batch_arguments(parser: argparse.ArgumentParser, record: bool = True, aliases: tuple[str, ...] = ()) -> None:
    """How a folder runs: on this machine's cores or a Ray cluster, and (with a record) resumed (batch.py)."""
    parser.add_argument("--workers", *aliases, type=int_in(1), default=None,
                        help="processes on this machine, each with its share of the cores (default: one per core)")
    parser.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: 'auto' (RAY_ADDRESS or the running "
                        "cluster) or HOST:PORT; inputs and outputs must be on storage every node mounts")
    if record:
        parser.add_argument("--resume", action="store_true", help="skip the files OUT/speechinpaint-batch.jsonl "
                            "records as finished (their outputs exist) and do the rest")


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
    c.add_argument("--max-freq", type=float, help="holes: the top of the band they are placed in, in Hz "
                   "(default: the file's Nyquist frequency)")
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
    r.add_argument("--iterations", type=int_in(1), default=None,
                   help="phase reconstruction iterations (default: 16 for the model, 32 for interp and oracle)")
    r.add_argument("--band-gain-db", type=float, help="model: the level of an extended upper band against the "
                   "network's estimate (default: the checkpoint's; 0 for the full-level estimate)")
    r.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, cuda:1, mps)")
    r.add_argument("--sample-rate", type=int_in(8000, MAX_SAMPLE_RATE),
                   help="output rate (default: the input's; higher than an input below 16 kHz extends its band)")
    r.add_argument("--subtype", help="output sample format (PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE; default: the input's)")
    r.add_argument("--detect", type=kinds_list, default=None, help="with --mask auto: what to look for (default: "
                   "holes,gaps,band)")
    r.add_argument("--save-mask", action="store_true", help="also write the mask used as NAME.mask.json beside the output")
    add_batch_arguments(r)
    r.set_defaults(func=cmd_restore)

    e = sub.add_parser("evaluate", help="score restored audio against the clean original (STOI, PESQ, ViSQOL, "
                       "PLCMOS, DNSMOS, LSD, ...)")
    e.add_argument("--reference", required=True, help="clean file or folder")
    e.add_argument("--estimate", required=True, help="estimated file or folder (same relative names)")
    e.add_argument("--mask", help="mask file or folder for LSD inside the mask (default: beside the estimate)")
    e.add_argument("--json", help="write per-file rows and the summary as JSON")
    e.add_argument("--csv", help="write per-file rows as CSV")
    add_batch_arguments(e, record=False, aliases=("--jobs",))
    e.add_argument("--metrics", help="comma list of metrics to score (default: all of stoi,estoi,pesq,visqol,plcmos,"
                   "dnsmos_sig,dnsmos_bak,dnsmos_ovrl,lsd,lsd_high,lsd_mask,si_sdr, and above 16 kHz lsd_full,lsd_above_8k,"
                   "lsd_above_8k_mask,visqol_audio)")
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
    add_batch_arguments(dt)
    dt.set_defaults(func=cmd_detect)

    dm = sub.add_parser("demo", help="corrupt and restore the bundled example, print the table")
    dm.add_argument("-o", "--output", default="demo-output")
    dm.set_defaults(func=cmd_demo)

    ed = sub.add_parser("edit", help="a local web page to see the damage, mark it, restore, listen A/B and save")
    ed.add_argument("file", nargs="?", help="audio file to open (read once, never written)")
    ed.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ed.add_argument("--port", type=int_in(1, 65535), default=8765)
    ed.add_argument("--memory-budget", type=byte_size, default=2 * 1000 ** 3, metavar="SIZE",
                    help="memory the open documents may hold, e.g. 2G or 500M (default: 2G); beyond it the least "
                    "recently used are closed")
    ed.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    ed.set_defaults(func=cmd_edit)
    return p


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is, as Ctrl+C raises KeyboardInterrupt: an atomic write
    in progress unwinds and removes its temporary file (files.atomic_write_all) instead of leaving it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def one_line_warnings(shown):
    """warnings.showwarning that writes this package's warnings (clipped samples) as one line each,
    'speechinpaint: warning: ...', and passes any other library's to `shown`."""

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("speechinpaint"):
            print(f"speechinpaint: warning: {message}", file=sys.stderr, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    terminating = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    on_main_thread = threading.current_thread() is threading.main_thread()  # where Python takes signals
    handlers = {sig: signal.signal(sig, raise_terminated) for sig in terminating} if on_main_thread else {}
    shown = warnings.showwarning
    warnings.showwarning = one_line_warnings(shown)
    try:
        return int(args.func(args) or 0)
    except Terminated as exc:
        print(f"speechinpaint: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except SpeechInpaintError as exc:
        print(f"speechinpaint: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk or an unwritable --json, plot -o, ...: one line, not a traceback
        print(f"speechinpaint: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechinpaint: interrupted", file=sys.stderr)
        return 130
    finally:  # main() called from Python leaves the caller's handlers as they were
        for sig, handler in handlers.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
