"""A waveform fill for time gaps from both sides: each edge's last pitch period repeated into the gap,
the two cross-faded.

Classic packet-loss concealment repeats the last pitch period before a loss; an inpainter also has the
speech after it, so the period after the gap is repeated backwards too, and a raised cosine over the
whole gap hands one over to the other. The period is the lag (2-20 ms) at which the edge's last 10 ms
best match the samples one lag further from the gap (normalised cross-correlation). The fill carries
the harmonic detail across the gap that a magnitude interpolated between the edges smears; the network
supplies the envelope over it (inpainter.py).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..audio import SAMPLE_RATE
from ..masks import true_runs

MIN_LAG = SAMPLE_RATE // 500  # 2 ms: a 500 Hz voice
MAX_LAG = SAMPLE_RATE // 50  # 20 ms: a 50 Hz voice
MATCH = SAMPLE_RATE // 100  # 10 ms of the edge are matched
CONTEXT = MATCH + MAX_LAG  # samples an edge needs for the full lag range


def pitch_lag(context: np.ndarray) -> int | None:
    """The lag at which the last MATCH samples of `context` repeat best, or None if it is too short."""
    match = min(MATCH, len(context) // 3)
    max_lag = min(MAX_LAG, len(context) - match)
    if match < MIN_LAG or max_lag < MIN_LAG:
        return None
    tail = context[-match:]
    # windows[i] starts at sample i; the window `lag` samples before the tail starts at len - match - lag.
    windows = sliding_window_view(context[len(context) - match - max_lag:len(context) - MIN_LAG], match)[::-1]
    energy = np.sqrt((windows * windows).sum(axis=1) * (tail @ tail)) + 1e-12
    return MIN_LAG + int(np.argmax(windows @ tail / energy))


def repeat_period(context: np.ndarray, length: int) -> np.ndarray | None:
    """`length` samples continuing `context` by repeating its last pitch period; None without one."""
    lag = pitch_lag(context)
    if lag is None:
        return None
    return context[len(context) - lag:][np.arange(length) % lag]


def fill_gaps(audio: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Audio [samples] with every run of `gap` (bool [samples]) filled from both sides; other samples kept.

    Gaps are filled in order, so a gap's left context includes the fill of the one before it; its right
    context stops at the next gap. An edge too short to hold a period (the file's start or end, or a
    gap right after another) leaves the other side to fill alone, and with neither the gap stays zero.
    """
    dtype = audio.dtype if audio.dtype.kind == "f" else np.float32
    out = audio.astype(np.float64)
    runs = true_runs(gap)
    for i, (a, b) in enumerate(runs):
        length = b - a
        stop = min(len(out), b + CONTEXT, runs[i + 1][0] if i + 1 < len(runs) else len(out))
        before = repeat_period(out[max(0, a - CONTEXT):a], length)
        after = repeat_period(out[b:stop][::-1], length)
        if after is not None:
            after = after[::-1]
        if before is None and after is None:
            out[a:b] = 0.0
        elif after is None:
            out[a:b] = before
        elif before is None:
            out[a:b] = after
        else:
            fade = 0.5 * (1 + np.cos(np.pi * (np.arange(length) + 0.5) / length))
            out[a:b] = fade * before + (1 - fade) * after
    return out.astype(dtype)
