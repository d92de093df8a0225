"""Corpora: VCTK, the starter corpus, any folder; manifests. (Being written: see issue 3.)"""


def add_data_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="corpus", required=True)
    sub.add_parser("starter")


def run_data(args) -> int:
    raise NotImplementedError
