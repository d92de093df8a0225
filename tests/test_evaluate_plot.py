"""The evaluate and plot commands end to end on real clips, and the shared table helpers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speechinpaint.audio import load_audio, save_audio
from speechinpaint.cli import main
from speechinpaint.corruptions import corrupt
from speechinpaint.evaluate import format_rows, format_table, score_many, summarise
from speechinpaint.masks import load_mask
from speechinpaint.metrics import METRICS, score
from speechinpaint.plot import plot_triplet

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def corpus(tmp_path):
    """A clean folder with a subfolder, and its holes-corrupted copy with masks beside, made by the CLI."""
    clean = tmp_path / "clean"
    (clean / "da").mkdir(parents=True)
    (clean / "lt").mkdir()
    shutil.copy(DATA / "da_mercury.wav", clean / "da" / "mercury.wav")
    shutil.copy(DATA / "lt_letters_d_a_b.wav", clean / "lt" / "letters.wav")
    assert main(["corrupt", str(clean), "-o", str(tmp_path / "bad"), "--kind", "holes", "--seed", "1"]) == 0
    return clean, tmp_path / "bad"


def test_evaluate_folder_round_trip(corpus, tmp_path, capsys):
    clean, bad = corpus
    out_json, out_csv = tmp_path / "out" / "scores.json", tmp_path / "out" / "scores.csv"
    rc = main(["evaluate", "--reference", str(clean), "--estimate", str(bad),
               "--json", str(out_json), "--csv", str(out_csv), "--jobs", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "da/mercury.wav" in printed and "±" in printed
    doc = json.loads(out_json.read_text())
    assert [r["name"] for r in doc["files"]] == ["da/mercury.wav", "lt/letters.wav"]
    assert doc["failed"] == [] and doc["summary"]["files"] == 2
    new_keys = ["estoi", "visqol", "plcmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "lsd_high"]
    assert set(new_keys) < set(METRICS) and doc["metrics"] == list(METRICS)
    for row in doc["files"]:
        assert list(row) == ["name", *METRICS, "pesq_error"]
        assert all(isinstance(row[k], float) for k in new_keys)
        # the rows are the scores of the files on disk (the same in a worker as here: PLCMOS is seeded),
        # masks read from beside the estimates
        name = row["name"]
        expected = score(load_audio(clean / name), load_audio(bad / name), load_mask(bad / name.replace(".wav", ".mask.json")))
        for metric in METRICS:
            assert row[metric] == pytest.approx(expected[metric], rel=1e-6), metric
        assert row["stoi"] < 0.95 and row["lsd_mask"] > row["lsd"]
    for metric in METRICS:
        assert doc["summary"][metric]["n"] == 2, metric
    assert "DNSMOS OVRL" in printed and "ViSQOL" in printed and "LSD 4-8k" in printed
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["da/mercury.wav", "lt/letters.wav"]
    assert float(rows[1]["pesq"]) == pytest.approx(doc["files"][1]["pesq"])
    assert not [p for p in out_json.parent.iterdir() if ".part" in p.name]


def test_evaluate_scores_a_chosen_subset(corpus, tmp_path, capsys):
    clean, bad = corpus
    out_json, out_csv = tmp_path / "subset.json", tmp_path / "subset.csv"
    rc = main(["evaluate", "--reference", str(clean), "--estimate", str(bad), "--metrics", "lsd_high, estoi",
               "--json", str(out_json), "--csv", str(out_csv), "--jobs", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    head = printed.splitlines()[0].split()
    assert head == ["file", "LSD", "4-8k", "eSTOI"]
    assert "| estimate | files | LSD 4-8k | eSTOI |" in printed and "PESQ" not in printed
    doc = json.loads(out_json.read_text())
    assert doc["metrics"] == ["lsd_high", "estoi"]
    assert [list(r) for r in doc["files"]] == [["name", "estoi", "lsd_high"]] * 2
    assert list(doc["summary"]) == ["files", "lsd_high", "estoi"]
    with out_csv.open() as f:
        assert next(csv.reader(f)) == ["name", "lsd_high", "estoi"]
    assert main(["evaluate", "--reference", str(clean), "--estimate", str(bad), "--metrics", "stoi,nisqa"]) == 1
    assert "unknown metric nisqa" in capsys.readouterr().err


def test_evaluate_reports_missing_and_mismatched_files(corpus, tmp_path, capsys):
    clean, bad = corpus
    (bad / "lt" / "letters.wav").unlink()
    save_audio(bad / "da" / "mercury.wav", load_audio(bad / "da" / "mercury.wav")[:-800])
    shutil.copy(DATA / "da_mars.wav", clean / "mars.wav")
    shutil.copy(DATA / "da_mars.wav", bad / "mars.wav")
    out_json = tmp_path / "scores.json"
    rc = main(["evaluate", "--reference", str(clean), "--estimate", str(bad), "--json", str(out_json), "--jobs", "1"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "lt/letters.wav: no estimate" in captured.err
    assert "da/mercury.wav: reference has" in captured.err and "same length" in captured.err
    assert "Traceback" not in captured.err
    doc = json.loads(out_json.read_text())
    assert [r["name"] for r in doc["files"]] == ["mars.wav"] and len(doc["failed"]) == 2
    assert "2 of 3 files failed" in captured.out


def test_evaluate_single_file_with_explicit_mask_and_bad_inputs(corpus, tmp_path, capsys):
    clean, bad = corpus
    ref, est = clean / "lt" / "letters.wav", bad / "lt" / "letters.wav"
    mask = bad / "lt" / "letters.mask.json"
    assert main(["evaluate", "--reference", str(ref), "--estimate", str(est), "--mask", str(mask), "--jobs", "1"]) == 0
    assert main(["evaluate", "--reference", str(clean), "--estimate", str(est)]) == 1
    assert main(["evaluate", "--reference", str(ref), "--estimate", str(est), "--json", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "the estimate must be a folder too" in err and "is a folder" in err


def test_score_many_keeps_order_and_matches_score():
    clean = load_audio(DATA / "da_mars.wav")
    items = []
    for kind in ("holes", "gaps", "band"):
        bad, mask = corrupt(clean, kind, seed=5)
        items.append((clean, bad, mask))
    # Scored here first: the learned metrics' runtimes (numba's threads among them) are then live in this
    # process, and forking the workers must still work.
    expected = [score(ref, est, mask) for ref, est, mask in items]
    rows = score_many(items, jobs=2, progress=False)
    # eSTOI's numpy reductions can differ in the last digit across processes; everything else is equal
    assert [list(r) for r in rows] == [list(e) for e in expected]
    for row, exp in zip(rows, expected):
        for k, v in exp.items():
            assert row[k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
    subset = score_many(items[:2], jobs=2, progress=False, metrics=("plcmos", "lsd_high"))
    assert subset == [{k: row[k] for k in ("plcmos", "lsd_high")} for row in rows[:2]]


def test_format_table_shows_mean_sd_and_missing():
    """Mean ± sd over several scores; a single score is shown alone (no spread to give)."""
    rows_a = [{"stoi": 0.8, "pesq": 1.5, "lsd": 1.0}, {"stoi": 0.9, "pesq": None, "lsd": 2.0}]
    rows_b = [{"stoi": 0.7, "pesq": 2.5, "lsd": None}]
    metrics = ("stoi", "pesq", "lsd")
    table = format_table({"zero": summarise(rows_a, metrics), "interp": summarise(rows_b, metrics)}, metrics,
                         extra={"s / audio s": {"interp": "0.123"}})
    lines = table.splitlines()
    assert lines[0] == "| condition | files | STOI | PESQ-wb | LSD | PESQ missing | s / audio s |"
    assert lines[2] == "| zero | 2 | 0.850 ± 0.050 | 1.50 | 1.50 ± 0.50 | 1 |  |"
    assert lines[3] == "| interp | 1 | 0.700 | 2.50 | n/a | 0 | 0.123 |"


def test_tables_label_every_metric():
    row = {"name": "a.wav", **{m: 1.0 for m in METRICS}, "pesq_error": None}
    table = format_table({"x": summarise([row])})
    assert table.splitlines()[0] == ("| condition | files | STOI | eSTOI | PESQ-wb | ViSQOL | PLCMOS | DNSMOS SIG | "
                                     "DNSMOS BAK | DNSMOS OVRL | LSD | LSD 4-8k | LSD mask | SI-SDR dB | PESQ missing |")
    assert table.splitlines()[2] == ("| x | 1 | 1.000 | 1.000 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 "
                                     "| 1.00 | 1.0 | 0 |")
    head, line = format_rows([row, {**row, "name": "b.wav", "visqol": None}], ("visqol", "dnsmos_ovrl")).splitlines()[:2]
    assert head == "file      ViSQOL  DNSMOS OVRL"
    assert line == "a.wav       1.00         1.00"
    assert format_rows([{**row, "visqol": None}], ("visqol",)).splitlines()[1] == "a.wav          -"


def test_plot_writes_a_png(corpus, tmp_path, capsys):
    clean, bad = corpus
    fig = tmp_path / "figs" / "fig.png"
    ref, est = clean / "da" / "mercury.wav", bad / "da" / "mercury.wav"
    assert main(["plot", str(ref), str(est), str(est), "-o", str(fig)]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 20000
    assert [p.name for p in fig.parent.iterdir()] == ["fig.png"]
    assert main(["plot", str(ref), str(est), str(est), "-o", str(tmp_path / "fig.xyz")]) == 1
    assert main(["plot", str(ref), str(bad / "lt" / "letters.wav"), str(est), "-o", str(fig)]) == 1
    err = capsys.readouterr().err
    assert "unknown figure format" in err and "differ in length" in err
    assert not (tmp_path / "fig.xyz").exists()


def test_plot_triplet_without_mask(tmp_path):
    clean = load_audio(DATA / "da_mars.wav")
    path = tmp_path / "plain.png"
    plot_triplet(clean, np.zeros_like(clean), clean, None, path, titles=("a", "b", "c"))
    assert path.read_bytes()[:4] == b"\x89PNG"
