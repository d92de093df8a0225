"""Score many estimates in parallel and print the seed's kind of table (mean ± sd per metric).

`score_many` and `format_table` are shared by the `evaluate` command and every benchmark, so all tables
of the project are computed and laid out the same way. All metrics together cost about 1.2 s per 6 s
clip on one core (DNSMOS 0.65 s, ViSQOL 0.25 s, PLCMOS 0.2 s, the rest 0.15 s), so files are scored in
worker processes, one per CPU core by default, each on one thread and loading the learned metrics' models
once; `metrics=` (evaluate --metrics) picks a subset where speed matters.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio import SAMPLE_RATE, load_audio, read_mono, resample
from .files import atomic_write, list_audio_files, refuse_overwrite
from .errors import SpeechInpaintError
from .masks import Mask, load_mask, mask_path_for
from .metrics import ALL_METRICS, FULL_BAND_METRICS, METRICS, check_metrics, score, score_full_band, use_one_thread

# Headings and decimals of each metric in printed tables (the precision the seed's tables use).
LABELS = {"stoi": "STOI", "estoi": "eSTOI", "pesq": "PESQ-wb", "visqol": "ViSQOL", "plcmos": "PLCMOS",
          "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL", "lsd": "LSD",
          "lsd_high": "LSD 4-8k", "lsd_mask": "LSD mask", "si_sdr": "SI-SDR dB", "lsd_full": "LSD full",
          "lsd_above_8k": "LSD >8k", "lsd_above_8k_mask": "LSD >8k mask", "visqol_audio": "ViSQOL audio"}
DECIMALS = {"stoi": 3, "estoi": 3, "pesq": 2, "visqol": 2, "plcmos": 2, "dnsmos_sig": 2, "dnsmos_bak": 2,
            "dnsmos_ovrl": 2, "lsd": 2, "lsd_high": 2, "lsd_mask": 2, "si_sdr": 1, "lsd_full": 2, "lsd_above_8k": 2,
            "lsd_above_8k_mask": 2, "visqol_audio": 2}


def _init_worker() -> None:
    """One thread per worker (torch, ONNX Runtime, numba): the parallelism is across processes."""
    import torch

    torch.set_num_threads(1)
    use_one_thread()


def _parallel(fn: Callable, calls: Sequence[tuple], jobs: int | None, desc: str, progress: bool,
              ray_address: str | None = None, paths: Sequence[str] = ()) -> list:
    """[fn(*c) for c in calls] over `jobs` worker processes (or Ray tasks on the cluster at ray_address,
    each node first checked to see `paths`: cluster.py), in input order, with a progress bar.

    A failed call yields its exception in its place, so one bad file does not lose the others' scores.
    Workers are forked where the system can (a spawned worker spends seconds re-importing torch) and
    limited to one torch thread at once, which is what makes torch safe to use in a forked child (the
    same rule PyTorch's DataLoader workers follow).
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise SpeechInpaintError(f"--workers must be at least 1 (got {jobs})")
    jobs = min(jobs, max(len(calls), 1))
    results: list = [None] * len(calls)
    bar = tqdm(total=len(calls), desc=desc, unit="file", disable=not progress or len(calls) < 2, file=sys.stderr)
    with bar:
        if ray_address is not None:
            from .cluster import map_calls

            return map_calls(ray_address, fn, list(calls), list(paths), _init_worker, bar.update)
        if jobs == 1:
            for i, c in enumerate(calls):
                try:
                    results[i] = fn(*c)
                except SpeechInpaintError as exc:
                    results[i] = exc
                bar.update()
            return results
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker) as pool:
            futures = {pool.submit(fn, *c): i for i, c in enumerate(calls)}
            for fut in cf.as_completed(futures):
                try:
                    results[futures[fut]] = fut.result()
                except SpeechInpaintError as exc:
                    results[futures[fut]] = exc
                bar.update()
    return results


def score_many(
    items: Sequence[tuple[np.ndarray, np.ndarray, Mask | None]],
    jobs: int | None = None,
    desc: str = "score",
    progress: bool = True,
    metrics: Sequence[str] = METRICS,
) -> list[dict]:
    """metrics.score (of `metrics`, default all) for every (reference, estimate, mask) in parallel; rows in
    input order.

    Raises the first SpeechInpaintError (e.g. mismatched lengths): programmatic inputs that fail are bugs
    of the caller, not files to skip.
    """
    metrics = check_metrics(metrics)
    rows = _parallel(score, [(*item, metrics) for item in items], jobs, desc, progress)
    for row in rows:
        if isinstance(row, Exception):
            raise row
    return rows


def summarise(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> dict:
    """{"files": N, metric: {"mean", "sd", "n", "missing"}}; None values are counted as missing, not averaged.

    sd is the population standard deviation (numpy's default), as in the seed's tables.
    """
    out: dict = {"files": len(rows)}
    for m in metrics:
        values = np.array([r[m] for r in rows if r.get(m) is not None], dtype=np.float64)
        out[m] = {
            "mean": float(values.mean()) if values.size else None,
            "sd": float(values.std()) if values.size else None,
            "n": int(values.size),
            "missing": len(rows) - int(values.size),
        }
    return out


def _cell(stats: dict, metric: str, files: int) -> str:
    if not stats["n"]:
        return "n/a"
    d = DECIMALS.get(metric, 3)
    # One file has no spread to show: its score alone, not a "± 0".
    text = f"{stats['mean']:.{d}f}" if stats["n"] == 1 else f"{stats['mean']:.{d}f} ± {stats['sd']:.{d}f}"
    # PESQ has its own "missing" column; any other metric scored on fewer files says on how many.
    if metric != "pesq" and stats["n"] < files:
        text += f" (n={stats['n']})"
    return text


def format_table(
    summaries: Mapping[str, dict],
    metrics: Sequence[str] = METRICS,
    extra: Mapping[str, Mapping[str, str]] | None = None,
    label: str = "condition",
    marked: Sequence[str] = (),
) -> str:
    """A markdown table: one row per summary (condition or method), mean ± sd of each metric.

    Columns: label, files, the metrics (those in `marked` in bold: the ones a field ranks by), "PESQ
    missing" when PESQ is shown, then each `extra` column ({heading: {row name: text}}), e.g. the wall
    time of each method.
    """
    extra = extra or {}
    head = [label, "files"] + [f"**{LABELS.get(m, m)}**" if m in marked else LABELS.get(m, m) for m in metrics]
    if "pesq" in metrics:
        head.append("PESQ missing")
    head += list(extra)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name, s in summaries.items():
        cells = [name, str(s["files"])] + [_cell(s[m], m, s["files"]) for m in metrics]
        if "pesq" in metrics:
            cells.append(str(s["pesq"]["missing"]))
        cells += [col.get(name, "") for col in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_rows(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """Per-file scores, one aligned line each; a metric that could not be computed shows as '-'."""
    width = max([len("file")] + [len(r["name"]) for r in rows])
    widths = [max(9, len(LABELS.get(m, m))) for m in metrics]
    head = f"{'file':<{width}}  " + "  ".join(f"{LABELS.get(m, m):>{w}}" for m, w in zip(metrics, widths))
    lines = [head]
    for r in rows:
        cells = [
            f"{r[m]:>{w}.{DECIMALS.get(m, 3)}f}" if r.get(m) is not None else f"{'-':>{w}}"
            for m, w in zip(metrics, widths)
        ]
        lines.append(f"{r['name']:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def _find_estimate(root: Path, rel: Path) -> Path | None:
    """The estimate for a reference: NAME.wav (what restore writes), else the same file name."""
    for candidate in (root / rel.with_suffix(".wav"), root / rel):
        if candidate.is_file():
            return candidate
    return None


def pair_files(reference: str | Path, estimate: str | Path, mask: str | Path | None) -> list[tuple[str, Path, Path | None, Path | None]]:
    """(name, reference file, estimate file or None if absent, mask file or None) for a file or a folder.

    Masks come from --mask (a file for one pair, or a folder laid out like the estimates), else from
    NAME.mask.json beside each estimate when it exists.
    """
    ref, est = Path(reference), Path(estimate)
    if ref.is_dir():
        if not est.is_dir():
            raise SpeechInpaintError(f"{est}: the reference is a folder, so the estimate must be a folder too")
        refs = list_audio_files(ref)
        if not refs:
            raise SpeechInpaintError(f"{ref}: no audio files in this folder")
        pairs = [(r.relative_to(ref), r, _find_estimate(est, r.relative_to(ref))) for r in refs]
    elif ref.is_file():
        if est.is_dir():
            pairs = [(Path(ref.name), ref, _find_estimate(est, Path(ref.name)))]
        elif est.is_file():
            pairs = [(Path(ref.name), ref, est)]
        else:
            raise SpeechInpaintError(f"{est}: no such file or folder")
    else:
        raise SpeechInpaintError(f"{ref}: no such file or folder")

    mask_root = Path(mask) if mask else None
    if mask_root is not None and not mask_root.exists():
        raise SpeechInpaintError(f"{mask_root}: no such mask file or folder")
    if mask_root is not None and mask_root.is_file() and len(pairs) > 1:
        raise SpeechInpaintError("--mask FILE applies to one file; for folders give a folder of NAME.mask.json")
    out = []
    for rel, r, e in pairs:
        if mask_root is None:
            m = mask_path_for(e) if e is not None and mask_path_for(e).is_file() else None
        elif mask_root.is_file():
            m = mask_root
        else:
            m = mask_path_for(mask_root / rel.with_suffix(".wav"))  # missing: reported when scored
        out.append((rel.as_posix(), r, e, m))
    return out


def score_files(name: str, reference: Path, estimate: Path | None, mask: Path | None,
                metrics: Sequence[str] = METRICS) -> dict:
    """Load one pair (and its mask) and score it; a row {"name", metrics..., "pesq_error" with PESQ}.

    The speech metrics score the 16 kHz downmix; a reference above 16 kHz is also scored at its own rate
    (metrics.score_full_band; the estimate resampled to it if need be); a row at 16 kHz or below has no
    full-band keys. The mask may be in the reference's own terms or in the 16 kHz downmix's."""
    if estimate is None:
        raise SpeechInpaintError(f"{name}: no estimate file with this name (.wav) in the estimate folder")
    ref_audio = load_audio(reference)
    # A restored or corrupted estimate may legitimately be silent (zero-filled): score it, don't refuse it.
    est_audio = load_audio(estimate, check=False)
    if len(ref_audio) != len(est_audio):
        raise SpeechInpaintError(
            f"{name}: reference has {len(ref_audio)} samples but the estimate has {len(est_audio)} "
            "(at 16 kHz); they must be the same length"
        )
    full_band = [m for m in metrics if m in FULL_BAND_METRICS]
    ref_native, rate = read_mono(reference) if full_band or mask is not None else (None, SAMPLE_RATE)
    mask_obj = mask_native = None
    if mask is not None:
        mask_obj = load_mask(mask)
        if rate != SAMPLE_RATE and mask_obj.sample_rate == rate:
            mask_obj.check_matches(len(ref_native), rate, str(mask))
            mask_native, mask_obj = mask_obj, mask_obj.at_rate(SAMPLE_RATE, len(ref_audio))
        else:
            mask_obj.check_matches(len(ref_audio), SAMPLE_RATE, str(mask))
            mask_native = mask_obj.at_rate(rate, len(ref_native)) if rate > SAMPLE_RATE else None
    speech = [m for m in metrics if m in METRICS]
    row = {"name": name, **(score(ref_audio, est_audio, mask_obj, speech) if speech else {})}
    if full_band and rate > SAMPLE_RATE:
        est_native, est_rate = read_mono(estimate)
        est_native = resample(est_native, est_rate, rate)
        if len(est_native) != len(ref_native):
            raise SpeechInpaintError(f"{name}: reference has {len(ref_native)} samples at {rate} Hz but the estimate "
                                     f"has {len(est_native)}; they must be the same length")
        row.update(score_full_band(ref_native, est_native, rate, mask_native, full_band))
    return row


def _csv_text(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    buf = io.StringIO()
    fields = ["name", *metrics] + (["pesq_error"] if "pesq" in metrics else [])
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in writer.fieldnames})
    return buf.getvalue()


def _check_output(path: str | Path | None, option: str) -> None:
    if path and Path(path).is_dir():
        raise SpeechInpaintError(f"{option} {path}: is a folder; give a file name")


def evaluate_files(reference: str | Path, estimate: str | Path, mask: str | Path | None = None,
                   json_path: str | Path | None = None, csv_path: str | Path | None = None, jobs: int | None = None,
                   metrics: Sequence[str] = ALL_METRICS, ray: str | None = None) -> int:
    """`speechinpaint evaluate`: per-file rows, then the mean ± sd table; optionally the rows as JSON
    and CSV; returns the exit status (1 if any file failed). `metrics` (default all) picks the columns;
    the full-band ones are left out of the printed tables when no reference is above 16 kHz. jobs: worker
    processes (default one per core); ray: score on that Ray cluster instead."""
    metrics = check_metrics(metrics)
    _check_output(json_path, "--json")
    _check_output(csv_path, "--csv")
    pairs = pair_files(reference, estimate, mask)
    inputs = [path for pair in pairs for path in pair[1:]]
    for out in (json_path, csv_path):
        if out:
            refuse_overwrite(out, inputs)
    if ray is not None:  # paths as every node names them on the shared storage
        pairs = [(name, *(None if p is None else Path(os.path.abspath(p)) for p in paths)) for name, *paths in pairs]
    calls = [(*pair, metrics) for pair in pairs]
    results = _parallel(score_files, calls, jobs, "evaluate", True, ray, [str(pairs[0][1])] if pairs else [])
    rows = [r for r in results if isinstance(r, dict)]
    failed = [{"name": p[0], "error": str(r)} for p, r in zip(pairs, results) if isinstance(r, Exception)]
    for f in failed:
        print(f"speechinpaint: error: {f['error']}", file=sys.stderr)
    if not rows:
        raise SpeechInpaintError(f"no file could be scored ({len(failed)} failed)")
    metrics = tuple(m for m in metrics if m not in FULL_BAND_METRICS or any(r.get(m) is not None for r in rows))
    summary = summarise(rows, metrics)
    print(format_rows(rows, metrics))
    print()
    print(format_table({str(estimate): summary}, metrics, label="estimate"))
    missing = summary["pesq"]["missing"] if "pesq" in metrics else 0
    if missing:
        print(f"PESQ could not score {missing} of {len(rows)} files (see pesq_error in --json/--csv)")
    if failed:
        print(f"{len(failed)} of {len(pairs)} files failed and are not in the table")
    if json_path:
        doc = {"reference": str(reference), "estimate": str(estimate), "metrics": list(metrics), "files": rows,
               "failed": failed, "summary": summary}
        text = json.dumps(doc, indent=1)
        atomic_write(json_path, lambda tmp: Path(tmp).write_text(text + "\n"))
    if csv_path:
        text = _csv_text(rows, metrics)
        atomic_write(csv_path, lambda tmp: Path(tmp).write_text(text))
    return 1 if failed else 0
