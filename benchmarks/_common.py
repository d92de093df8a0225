"""What the benchmark scripts share: their entry point reports a user error as the CLI does.

A SpeechInpaintError (a corpus not prepared yet, a bad option, an unreadable checkpoint) is one line on
stderr, `speechinpaint: error: MESSAGE`, and exit status 1, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Callable

from speechinpaint.errors import SpeechInpaintError


def run_main(main: Callable[[], int | None]) -> int:
    """Call a script's main(); its return value (None: 0) is the exit status, a SpeechInpaintError is 1."""
    try:
        return int(main() or 0)
    except SpeechInpaintError as exc:
        print(f"speechinpaint: error: {exc}", file=sys.stderr)
        return 1
