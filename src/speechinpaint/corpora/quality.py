"""Is the 4-8 kHz band of a voice real speech? Measured, so the starter corpus rule is data-driven.

A model that learns to fill the upper band (and holes up to 5 kHz) must see a real upper band in its
targets. Two defects make a recording useless for that, and each has one measurement per clip:

- noise: the 4-8 kHz band is a steady hiss that barely rises when the person speaks. Measured as the
  band's "speech-to-floor" ratio: mean 4-8 kHz power of the loudest 30 % of frames over that of the
  quietest 10 % (frames ranked by 100 Hz-8 kHz power). Clean speech gives 20-40 dB.
- cut: the recording was band-limited (e.g. made at 8 kHz and upsampled), leaving a cliff in the
  long-term spectrum. Measured as the steepest drop of the long-term spectrum of speech frames
  between 3.5 and 8 kHz: mean level of the 250 Hz below a frequency minus that of the 250 Hz above it.
  The search stops short of 45 % of the clip's own rate, where every recording at that rate rolls off
  (a 16 kHz file made by a good resampler shows a ~35 dB edge at 7.75 kHz that is no defect).

A voice (one speaker) is judged on all its clips: dropped as cut when more than CUT_FRACTION of its
clips have an edge above CUT_EDGE_DB, else as noise when its median ratio is below NOISE_SNR_DB.
Measured on all clips of the Tux Paint stamps (2022.06.04), the voices this removes are nl (noise:
median ratio 5.0 dB over 62 clips), ca (cut at ~3.9 kHz in 44 % of 804 clips) and el (cut near
7.6 kHz in 75 % of 681 clips). On samples of 40 clips per voice the nearest kept voices were fr
(median ratio ~12 dB) and bg (~15 % of clips with an edge), so both thresholds sit inside those gaps,
the noise one (6 dB) nearer the dropped side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_SNR_DB = 6.0
CUT_EDGE_DB = 15.0
CUT_FRACTION = 0.3
BAND = (4000.0, 8000.0)
EDGE_SEARCH = (3500.0, 8000.0)
EDGE_ROLLOFF = 0.45  # fraction of the clip's rate above which its anti-aliasing roll-off lies
EDGE_SPAN_HZ = 250.0


@dataclass(frozen=True)
class BandMeasure:
    snr_db: float  # 4-8 kHz power, loud frames over quiet frames
    edge_db: float  # steepest drop of the long-term spectrum inside 3.5-8 kHz


def measure_band(audio: np.ndarray, rate: int) -> BandMeasure | None:
    """Both measures for one clip at its native rate (so a resampler's own roll-off is not seen).

    None when the clip is shorter than a few analysis frames or silent: nothing to judge.
    """
    n = 1 << int(np.ceil(np.log2(rate * 0.032)))  # ~32 ms window at any rate
    hop = n // 4
    if audio.size < n + 4 * hop:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), n)[::hop] * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    top = min(BAND[1], rate / 2)
    full = power[:, (freqs >= 100) & (freqs < top)].sum(axis=1)
    band = power[:, (freqs >= BAND[0]) & (freqs < top)].sum(axis=1)
    if full.max() <= 1e-9:
        return None
    order = np.argsort(full)
    k = max(1, len(order) // 10)
    snr = 10 * np.log10(band[order[-3 * k :]].mean() / band[order[:k]].mean())
    speech = full > full.max() * 1e-3
    ltas = 10 * np.log10(power[speech].mean(axis=0))
    edge = 0.0
    last = min(EDGE_SEARCH[1], EDGE_ROLLOFF * rate) - EDGE_SPAN_HZ
    for f in np.arange(EDGE_SEARCH[0], last + 1, 50.0):
        below = ltas[(freqs >= f - EDGE_SPAN_HZ) & (freqs < f)]
        above = ltas[(freqs >= f) & (freqs < f + EDGE_SPAN_HZ)]
        if below.size and above.size:
            edge = max(edge, float(below.mean() - above.mean()))
    return BandMeasure(float(snr), edge)


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str  # "ok", "noise" or "cut"
    median_snr_db: float
    cut_fraction: float
    clips: int


def judge_voice(measures: list[BandMeasure]) -> Verdict:
    """Keep or drop one voice from the measures of its clips (see the module docstring)."""
    if not measures:
        return Verdict(True, "ok", float("nan"), 0.0, 0)
    snr = float(np.median([m.snr_db for m in measures]))
    cut = float(np.mean([m.edge_db > CUT_EDGE_DB for m in measures]))
    if cut > CUT_FRACTION:  # checked first: above a cut there is only the floor, which also reads as noise
        return Verdict(False, "cut", snr, cut, len(measures))
    if snr < NOISE_SNR_DB:
        return Verdict(False, "noise", snr, cut, len(measures))
    return Verdict(True, "ok", snr, cut, len(measures))
