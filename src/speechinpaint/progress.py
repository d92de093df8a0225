"""Progress of long work on stderr: a bar on a terminal, a plain line every few seconds elsewhere.

A log file or a CI console gets readable lines instead of a bar's carriage returns.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

# How often a plain progress line is written when stderr is not a terminal.
LINE_SECONDS = 10.0


class Progress:
    """Counts units of work (files, audio seconds) towards a total. parts: how many passes the work
    makes over the total (a restore goes over each channel of the same seconds), so each update counts
    1 / parts of its amount and a stereo minute shows as 60 s, not 120."""

    def __init__(self, total: float, desc: str, unit: str, enabled: bool = True, interval: float = LINE_SECONDS,
                 parts: int = 1):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.parts = max(1, parts)
        self.done = 0.0
        self.enabled = enabled
        # Whole counts on the bar: float seconds summed by chunks would show as 119.99999999999999/120.0.
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]") \
            if enabled and sys.stderr.isatty() else None
        self.last_line = time.monotonic()
        self.lines = 0

    def update(self, amount: float) -> None:
        amount /= self.parts
        self.done += amount
        if self.bar is not None:
            self.bar.update(amount)
        elif self.enabled and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            self.line()

    def line(self) -> None:
        self.lines += 1
        print(f"{self.desc}: {self.done:.0f} of {self.total:.0f} {self.unit} ({100 * self.done / max(self.total, 1e-9):.0f} %)",
              file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        """A line on stderr that does not break the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar; where plain lines were written, a last one says the work reached its end (the
        previous one may have been written at 90 %)."""
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            self.line()
