"""Corpora: the starter corpus (Debian packages), VCTK (the seed's corpus) and any folder of speech.

Each writes 16 kHz mono wav and one manifest.csv (manifest.py) that training reads; the CLI only
calls the two entry points below.
"""

from __future__ import annotations


def add_data_arguments(parser) -> None:
    """The `speechinpaint data vctk|starter|folder` subcommands."""
    sub = parser.add_subparsers(dest="corpus", required=True)
    s = sub.add_parser("starter", help="fetch and prepare the starter corpus (Tux Paint, Fish Fillets)")
    s.add_argument("--root", required=True, help="output folder (audio, manifest.csv, README.md, cache/)")


def run_data(args) -> int:
    """Dispatch to the corpus builder; each prints hours, speakers and languages per split."""
    if args.corpus == "starter":
        from .starter import build_starter

        build_starter(args.root)
        return 0
    raise AssertionError(f"unhandled corpus {args.corpus}")
