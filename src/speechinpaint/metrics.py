"""Scores of an estimate against the original clean speech, as each field reports them.

Intelligibility: STOI and eSTOI (pystoi). Quality against the reference: PESQ-wb and ViSQOL v3 in speech
mode (MOS-LQO, visqol-python with its deep-lattice mapper, the C++ default). Quality of the estimate
alone, as the packet-loss and noise-suppression challenges score it: PLCMOS v2 and DNSMOS P.835
SIG / BAK / OVRL (speechmos' bundled ONNX models). Spectral distance: LSD, LSD of the 4-8 kHz band
(bandwidth extension), LSD inside the mask; and SI-SDR.

A recording above 16 kHz is also scored over its own band (`score_full_band`): LSD over the whole band
and over 8 kHz to Nyquist (also inside the mask), on the LSD grid's 2048-point window at the file's rate,
and ViSQOL in audio mode (48 kHz, its SVR model), while the speech metrics stay on the 16 kHz downmix.

Everything that reports a number (evaluate, benchmarks, the demo) calls `score`, so every table in the
project uses one definition of each metric; `metrics=` picks a subset where speed matters. A metric that
cannot be computed for a file (PESQ finds no utterance, STOI has too few speech frames, LSD-in-mask has
no mask, ViSQOL fails on the pair) is None, never a made-up value, so tables can count it as missing
instead of silently dropping or flattering the file.

The learned metrics load their models lazily, once per process (a forked scoring worker loads its own on
first use), so importing this module stays cheap. Everything they need ships in their wheels: nothing is
downloaded at run time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pesq as pesq_lib
from pystoi import stoi as pystoi_stoi

from .audio import SAMPLE_RATE
from .errors import SpeechInpaintError
from .masks import Mask, rasterise
from .dsp.spectral import StftGrid

# The LSD convention of the bandwidth-extension literature (AERO / AP-BWE): log10 power of a 2048-point Hann STFT, hop 512.
LSD_GRID = StftGrid(2048, 512)
LSD_FLOOR = 1e-8
# lsd_high: the same LSD over the bins of this band only (the upper band a 8 kHz-rate codec or a band cut loses).
HIGH_BAND_HZ = (4000.0, 8000.0)
# Every key `score` can return, in table order.
METRICS = ("stoi", "estoi", "pesq", "visqol", "plcmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
           "lsd", "lsd_high", "lsd_mask", "si_sdr")
DNSMOS_METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
# The keys `score_full_band` can return, for a reference above 16 kHz.
FULL_BAND_METRICS = ("lsd_full", "lsd_above_8k", "lsd_above_8k_mask", "visqol_audio")
ALL_METRICS = METRICS + FULL_BAND_METRICS
# ViSQOL's audio mode compares 48 kHz signals.
VISQOL_AUDIO_RATE = 48000
# PLCMOS v2 averages its model over random "rater" embeddings; a fixed seed makes a file's score repeatable
# (the same embeddings as np.random.seed(PLCMOS_SEED) before speechmos' own PLCMOS call).
PLCMOS_SEED = 0
# Guards SI-SDR against 0/0 for silent or identical signals, far below any audible energy.
_SI_SDR_EPS = 1e-12
# Set in scoring worker processes (evaluate._parallel): numba's parallel loops in ViSQOL then run on one
# thread, as torch does, since the parallelism is across processes.
_ONE_THREAD = False


def use_one_thread() -> None:
    """Keep this process's metric computations on one thread (called in each scoring worker)."""
    global _ONE_THREAD
    _ONE_THREAD = True


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The requested metric names, validated, in the order given (duplicates dropped)."""
    chosen = tuple(dict.fromkeys(metrics))
    known = METRICS + FULL_BAND_METRICS
    unknown = [m for m in chosen if m not in known]
    if unknown or not chosen:
        raise SpeechInpaintError(
            f"unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: choose some of {','.join(known)}"
            if unknown else f"no metric chosen: choose some of {','.join(known)}"
        )
    return chosen


def parse_metrics(text: str) -> tuple[str, ...]:
    """'stoi, pesq' -> ('stoi', 'pesq'), validated (the form of `evaluate --metrics`)."""
    return check_metrics(m.strip() for m in text.split(",") if m.strip())


def check_pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as 1-D float arrays of the same length; anything else is a user error, not a score."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 1 or estimate.ndim != 1:
        raise SpeechInpaintError(
            f"expected mono signals, got reference shape {reference.shape} and estimate shape {estimate.shape}"
        )
    if reference.size != estimate.size:
        raise SpeechInpaintError(
            f"reference has {reference.size} samples but the estimate has {estimate.size}: "
            "they must be the same length to be compared"
        )
    if reference.size == 0:
        raise SpeechInpaintError("cannot score empty signals")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(estimate))):
        raise SpeechInpaintError("cannot score signals with NaN or infinite samples")
    return reference, estimate


def stoi(reference: np.ndarray, estimate: np.ndarray, extended: bool = False) -> float | None:
    """Classic STOI (eSTOI with `extended`); None where pystoi finds too few speech frames (it would
    otherwise return 1e-5)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(pystoi_stoi(reference, estimate, SAMPLE_RATE, extended=extended))
        except ValueError:  # numpy's AxisError: shorter than one STOI frame (about 26 ms)
            return None
    if any("Not enough STFT frames" in str(w.message) for w in caught) or not np.isfinite(value):
        return None
    return value


def estoi(reference: np.ndarray, estimate: np.ndarray) -> float | None:
    """Extended STOI (Jensen & Taal 2016), which also sees the damage of modulated noise and gaps."""
    return stoi(reference, estimate, extended=True)


def pesq_wb(reference: np.ndarray, estimate: np.ndarray) -> tuple[float | None, str | None]:
    """Wide-band PESQ, or (None, reason) for a file PESQ cannot score.

    PesqError covers no utterance found and buffers too short; an all-zero estimate makes the C code
    produce NaN internally, which surfaces as a ValueError. Inputs were validated before, so both mean
    "this file has no PESQ", not a bug.
    """
    try:
        return float(pesq_lib.pesq(SAMPLE_RATE, reference, estimate, "wb")), None
    except (pesq_lib.PesqError, ValueError) as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):  # the C extension reports its messages as bytes
            detail = detail.decode(errors="replace")
        return None, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _fork_safe_numba() -> None:
    """Have numba run its parallel loops (ViSQOL's kernels) on its workqueue layer, fork-safe everywhere.

    Numba picks the layer at its first parallel loop, by default GNU OpenMP where installed, and then
    aborts any later fork of the process: a script that scored one file itself and then forks scoring
    workers (score_many) would die. Set before ViSQOL or librosa load numba, and on numba's config in case
    something imported it earlier; a layer the user chose (NUMBA_THREADING_LAYER) is kept.
    """
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    numba = sys.modules.get("numba")
    if numba is not None and getattr(numba.config, "THREADING_LAYER", None) == "default":
        numba.config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]


@functools.cache
def _visqol_api(mode: str = "speech"):
    """ViSQOL v3 in speech mode (16 kHz, VAD patch selection, the deep-lattice MOS mapper of the C++
    default) or audio mode (48 kHz, its bundled SVR model), created once per process. The speech mapper
    is asked for explicitly, so a missing runtime is an ImportError instead of a silent switch to the
    polynomial mapper (which scores degraded speech 1-2 points higher)."""
    _fork_safe_numba()
    from visqol import VisqolApi

    _fork_safe_numba()
    api = VisqolApi()
    with _quiet_stderr():  # TFLite's C++ logs "INFO: Created ... XNNPACK delegate" in every process
        if mode == "speech":
            api.create(mode="speech", use_lattice_model=True)
        else:
            api.create(mode="audio")
    return api


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (where C++ libraries log) for the block; Python exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _numba_one_thread() -> None:
    """ViSQOL's numba kernels (parallel=True) on one thread, in this thread (numba's setting is per thread)."""
    from visqol.numba_accel import has_numba

    if has_numba():
        import numba

        numba.set_num_threads(1)


def visqol(reference: np.ndarray, estimate: np.ndarray, mode: str = "speech") -> float | None:
    """ViSQOL MOS-LQO (1-5) in speech mode (16 kHz signals) or audio mode (VISQOL_AUDIO_RATE signals);
    None where it cannot compare the pair (e.g. too short)."""
    api = _visqol_api(mode)
    if _ONE_THREAD:
        _numba_one_thread()
    try:
        with np.errstate(all="ignore"):  # a silent estimate scales to NaN inside: no score, not a warning
            result = api.measure_from_arrays(reference, estimate, SAMPLE_RATE if mode == "speech" else VISQOL_AUDIO_RATE)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):
        return None
    value = float(result.moslqo)
    return value if np.isfinite(value) else None


def _onnx_session(path: str):
    """An ONNX Runtime CPU session on one thread: the models are small and scoring is parallel across files."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures raise; no second copy on stderr
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


@functools.cache
def _plcmos_model():
    """speechmos' PLCMOS v2 (its bundled ONNX model), once per process, on a one-thread session."""
    from speechmos.plcmos import PLCMOS

    model = PLCMOS()
    model.session = _onnx_session(model.model_path)
    return model


@functools.cache
def _dnsmos_model():
    """speechmos' DNSMOS P.835 (the non-personalised SIG/BAK/OVRL model), once per process."""
    _fork_safe_numba()
    from speechmos import dnsmos as dnsmos_lib  # imports librosa, and so numba

    folder = os.path.join(os.path.dirname(os.path.abspath(dnsmos_lib.__file__)), "dnsmos_models")
    primary, p808 = os.path.join(folder, "sig_bak_ovr.onnx"), os.path.join(folder, "model_v8.onnx")
    model = dnsmos_lib.DNSMOS(primary, p808)
    model.onnx_sess, model.p808_onnx_sess = _onnx_session(primary), _onnx_session(p808)
    return model


def _file_samples(audio: np.ndarray) -> np.ndarray:
    """The samples a PCM file of this signal holds (float32, clipped to [-1, 1]): the non-intrusive
    models take audio as a file gives it and refuse anything louder."""
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def plcmos(estimate: np.ndarray) -> float | None:
    """PLCMOS v2 of the estimate alone (no reference): the mean of the model over `embed_rounds` rater
    embeddings, drawn from a generator seeded with PLCMOS_SEED, so a file always gets the same score.
    None for a clip too short for the model's convolutions (under about 0.3 s)."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    model = _plcmos_model()
    features = np.float32(model.stft_transform(_file_samples(estimate)))[np.newaxis, np.newaxis, ...]
    rng = np.random.RandomState(PLCMOS_SEED)  # the draws of np.random.seed(PLCMOS_SEED); np.random.normal
    total = 0.0
    for _ in range(model.embed_rounds):
        embed = np.asarray(rng.normal(size=(1, 64)), dtype=np.float32).reshape(1, -1)
        try:
            out = model.session.run(None, {"degraded_audio": features, "rater_embed": embed})[0]
        except InvalidArgument:
            return None
        total += float(np.asarray(out).reshape(-1)[0])
    return total / model.embed_rounds


def dnsmos(estimate: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 of the estimate alone: {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} (1-5 each).

    As the DNS challenge's script does, a clip shorter than the model's 9.01 s input is repeated to
    fill it, and a longer one is scored on 9.01 s windows every second, averaged.
    """
    out = _dnsmos_model()(_file_samples(estimate), SAMPLE_RATE, False)
    return {"dnsmos_sig": float(out["sig_mos"]), "dnsmos_bak": float(out["bak_mos"]),
            "dnsmos_ovrl": float(out["ovrl_mos"])}


def log_power(audio: np.ndarray, grid: StftGrid = LSD_GRID) -> np.ndarray:
    """log10 power [bins, frames] on the LSD grid (or another), floored so silent bins stay finite."""
    spec = grid.stft(audio.astype(np.float32)).numpy()
    return np.log10(np.maximum(np.abs(spec) ** 2, LSD_FLOOR))


def lsd_from_log_power(ref_log: np.ndarray, est_log: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """RMS over frequency of the log-power difference per frame, mean over frames.

    With `region` (bool [bins, frames]) the RMS runs over the region's bins of each frame that has any,
    and the mean over those frames only; None when the region is empty.
    """
    sq = (ref_log - est_log) ** 2
    if region is None:
        return float(np.mean(np.sqrt(np.mean(sq, axis=0))))
    counts = region.sum(axis=0)
    frames = counts > 0
    if not frames.any():
        return None
    per_frame = np.sqrt((sq * region).sum(axis=0)[frames] / counts[frames])
    return float(per_frame.mean())


def high_band_bins() -> np.ndarray:
    """Bool [bins] of the LSD grid: the bins of HIGH_BAND_HZ, edges included (4000 to 8000 Hz)."""
    freqs = LSD_GRID.bin_freqs()
    return (freqs >= HIGH_BAND_HZ[0]) & (freqs <= HIGH_BAND_HZ[1])


def lsd(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Log-spectral distance in the AERO / AP-BWE convention (LSD_GRID, log10 power)."""
    return lsd_from_log_power(log_power(reference), log_power(estimate))


def lsd_high(reference: np.ndarray, estimate: np.ndarray) -> float:
    """LSD over the 4-8 kHz bins only: what bandwidth extension is scored on."""
    band = high_band_bins()
    return lsd_from_log_power(log_power(reference)[band], log_power(estimate)[band])


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), on zero-mean signals."""
    ref = reference - reference.mean()
    est = estimate - estimate.mean()
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + _SI_SDR_EPS)
    target = alpha * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + _SI_SDR_EPS) / (np.dot(noise, noise) + _SI_SDR_EPS)))


def score(reference: np.ndarray, estimate: np.ndarray, mask: Mask | None = None,
          metrics: Sequence[str] = METRICS) -> dict:
    """The chosen metrics (default: all) of one estimate against its clean reference (16 kHz mono, same length).

    Returns {metric: value or None} for each chosen metric in METRICS order, plus "pesq_error" (reason or
    None) when PESQ is chosen. With a mask, it must belong to a signal of this length; `lsd_mask` is None
    without a mask or for an empty one. PLCMOS and DNSMOS look at the estimate only.
    """
    chosen = set(check_metrics(metrics))
    reference, estimate = check_pair(reference, estimate)
    if mask is not None:
        mask.check_matches(reference.size, SAMPLE_RATE)
    out: dict = {}
    if chosen & {"lsd", "lsd_high", "lsd_mask"}:
        ref_log, est_log = log_power(reference), log_power(estimate)
    if chosen & set(DNSMOS_METRICS):
        dns = dnsmos(estimate)
    pesq_error = None
    for m in METRICS:
        if m not in chosen:
            continue
        if m == "stoi":
            out[m] = stoi(reference, estimate)
        elif m == "estoi":
            out[m] = estoi(reference, estimate)
        elif m == "pesq":
            out[m], pesq_error = pesq_wb(reference, estimate)
        elif m == "visqol":
            out[m] = visqol(reference, estimate)
        elif m == "plcmos":
            out[m] = plcmos(estimate)
        elif m in DNSMOS_METRICS:
            out[m] = dns[m]
        elif m == "lsd":
            out[m] = lsd_from_log_power(ref_log, est_log)
        elif m == "lsd_high":
            band = high_band_bins()
            out[m] = lsd_from_log_power(ref_log[band], est_log[band])
        elif m == "lsd_mask":
            out[m] = None if mask is None else lsd_from_log_power(
                ref_log, est_log, rasterise(mask, LSD_GRID, ref_log.shape[1]))
        elif m == "si_sdr":
            out[m] = si_sdr(reference, estimate)
    if "pesq" in chosen:
        out["pesq_error"] = pesq_error
    return out


def score_full_band(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, mask: Mask | None = None,
                    metrics: Sequence[str] = FULL_BAND_METRICS) -> dict:
    """The chosen FULL_BAND_METRICS of mono signals at their own rate (above 16 kHz): LSD over the whole
    band and over 8 kHz to Nyquist (with a mask in the signals' terms, also over its bins above 8 kHz;
    None without one or where it has none), on a 2048-point Hann window with hop 512 at sample_rate;
    ViSQOL in audio mode after resampling both to 48 kHz."""
    from .audio import resample

    chosen = [m for m in check_metrics(metrics) if m in FULL_BAND_METRICS]
    reference, estimate = check_pair(reference, estimate)
    if mask is not None:
        mask.check_matches(reference.size, sample_rate)
    grid = StftGrid(LSD_GRID.n_fft, LSD_GRID.hop, sample_rate)
    out: dict = {}
    if set(chosen) & {"lsd_full", "lsd_above_8k", "lsd_above_8k_mask"}:
        ref_log, est_log = log_power(reference, grid), log_power(estimate, grid)
        upper = grid.bin_freqs() >= SAMPLE_RATE / 2
    for m in chosen:
        if m == "lsd_full":
            out[m] = lsd_from_log_power(ref_log, est_log)
        elif m == "lsd_above_8k":
            out[m] = lsd_from_log_power(ref_log[upper], est_log[upper])
        elif m == "lsd_above_8k_mask":
            out[m] = None if mask is None else lsd_from_log_power(
                ref_log[upper], est_log[upper], rasterise(mask, grid, ref_log.shape[1])[upper])
        elif m == "visqol_audio":
            ref48, est48 = (resample(x, sample_rate, VISQOL_AUDIO_RATE).astype(np.float64) for x in (reference, estimate))
            out[m] = visqol(ref48, est48, mode="audio")
    return out
