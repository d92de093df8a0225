"""Corpora: the starter corpus (Debian packages), VCTK (the seed's corpus) and any folder of speech.

Each writes 16 kHz mono wav and one manifest.csv (manifest.py) that training reads; the CLI only
calls the two entry points below.
"""

from __future__ import annotations


def add_data_arguments(parser) -> None:
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


def run_data(args) -> int:
    """Dispatch to the corpus builder; each prints hours, speakers and languages per split."""
    if args.corpus == "starter":
        from .starter import build_starter

        build_starter(args.root)
    elif args.corpus == "vctk":
        from .vctk import build_vctk

        build_vctk(args.root, args.release, args.url, args.sha256, args.seed)
    else:
        from .folder import build_folder

        build_folder(args.root, args.out, args.language, args.seed)
    return 0
