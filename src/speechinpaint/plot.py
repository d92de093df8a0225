"""Spectrogram figures: clean, corrupted and restored speech one above the other, the mask outlined.

One shared colour scale makes the three panels comparable at a glance: a hole that was filled too
quietly or too loudly shows as a change of colour, not of normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, nor wanted on a server
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
import numpy as np  # noqa: E402

from .audio import SAMPLE_RATE, load_audio, read_mono, resample  # noqa: E402
from .files import atomic_write, refuse_overwrite  # noqa: E402
from .errors import SpeechInpaintError  # noqa: E402
from .masks import Mask, load_mask, mask_path_for, rasterise  # noqa: E402
from .dsp.spectral import StftGrid  # noqa: E402
from .recording import native_grid  # noqa: E402


def plot_grid(sample_rate: int) -> StftGrid:
    """The model's 32 ms / 8 ms grid at the signals' own rate: fine enough in time to show 20 ms packet
    gaps, and reaching the file's own Nyquist frequency."""
    return native_grid(sample_rate)
# Colours span this many dB below the loudest bin of the three panels; quieter is drawn as the floor.
DYNAMIC_RANGE_DB = 80.0
MASK_COLOUR = "white"


def _db(audio: np.ndarray, grid: StftGrid) -> np.ndarray:
    spec = grid.stft(np.asarray(audio, dtype=np.float32)).numpy()
    return 20 * np.log10(np.maximum(np.abs(spec), 1e-10))


def plot_triplet(
    clean: np.ndarray,
    corrupted: np.ndarray,
    restored: np.ndarray,
    mask: Mask | None,
    path: str | Path,
    titles: Sequence[str] = ("clean", "corrupted", "restored"),
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Write a figure of three aligned log-spectrograms (kHz vs s, one dB colour bar) to `path`; the
    signals are mono at sample_rate, the mask in their terms.

    The mask, when given, is outlined on every panel from its rasterisation on the plotted grid, so
    overlapping holes show as one contour and what is outlined is exactly what was missing.
    """
    signals = [np.asarray(s, dtype=np.float32) for s in (clean, corrupted, restored)]
    lengths = {len(s) for s in signals}
    if len(lengths) != 1:
        raise SpeechInpaintError(f"the three signals differ in length ({', '.join(str(len(s)) for s in signals)} samples)")
    if len(titles) != 3:
        raise SpeechInpaintError("plot_triplet needs three titles")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise SpeechInpaintError(f"{path}: unknown figure format {fmt!r}; use one of {', '.join(sorted(supported))}")
    if mask is not None:
        mask.check_matches(len(signals[0]), sample_rate)

    grid = plot_grid(sample_rate)
    specs = [_db(s, grid) for s in signals]
    vmax = max(float(s.max()) for s in specs)
    vmin = vmax - DYNAMIC_RANGE_DB
    num_frames = specs[0].shape[1]
    times = grid.frame_times(num_frames)
    freqs_khz = grid.bin_freqs() / 1000
    missing = rasterise(mask, grid, num_frames) if mask is not None and mask.regions else None

    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True, sharey=True, constrained_layout=True)
    for ax, spec, title in zip(axes, specs, titles):
        image = ax.pcolormesh(times, freqs_khz, spec, shading="nearest", cmap="magma", vmin=vmin, vmax=vmax,
                              rasterized=True)
        if missing is not None:
            ax.contour(times, freqs_khz, missing.astype(float), levels=[0.5], colors=MASK_COLOUR,
                       linewidths=0.9, linestyles="--")
        ax.set_title(title, loc="left")
        ax.set_ylabel("frequency (kHz)")
    axes[-1].set_xlabel("time (s)")
    colourbar = fig.colorbar(image, ax=list(axes), shrink=0.9, pad=0.01)
    colourbar.set_label("level (dB)")
    if missing is not None:
        axes[0].plot([], [], color=MASK_COLOUR, linestyle="--", label="missing region (mask)")
        axes[0].legend(loc="upper right", fontsize="small", facecolor="0.3", labelcolor="white", framealpha=0.8)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))
    finally:
        plt.close(fig)


def plot_files(clean_path: str | Path, corrupted_path: str | Path, restored_path: str | Path, output: str | Path,
               mask_path: str | Path | None = None) -> int:
    """`speechinpaint plot CLEAN CORRUPTED RESTORED -o FIG`: mask from `mask_path` or beside CORRUPTED, if any.

    Plotted at the clean file's own rate, up to its Nyquist frequency (the other two resampled to it
    if theirs differs), channels averaged; the mask may be in the clean file's terms or at 16 kHz."""
    mask_file = Path(mask_path) if mask_path else mask_path_for(corrupted_path)
    refuse_overwrite(output, [clean_path, corrupted_path, restored_path, mask_file])
    clean16 = load_audio(clean_path)  # the checks every command makes of its clean input
    clean, rate = read_mono(clean_path)
    corrupted, restored = (resample(*read_mono(p), rate) for p in (corrupted_path, restored_path))
    if not len(clean) == len(corrupted) == len(restored):
        raise SpeechInpaintError(
            f"the three files differ in length ({len(clean)}, {len(corrupted)}, {len(restored)} samples at {rate} Hz)"
        )
    mask = None
    if mask_path or mask_file.is_file():
        mask = load_mask(mask_file)
        if mask.sample_rate == SAMPLE_RATE and rate != SAMPLE_RATE:
            mask.check_matches(len(clean16), SAMPLE_RATE, str(mask_file))
            mask = mask.at_rate(rate, len(clean))
        else:
            mask.check_matches(len(clean), rate, str(mask_file))
    titles = [f"{role}: {Path(f).name}" for role, f in
              zip(("clean", "corrupted", "restored"), (clean_path, corrupted_path, restored_path))]
    plot_triplet(clean, corrupted, restored, mask, output, titles, rate)
    print(f"wrote {output}")
    return 0
