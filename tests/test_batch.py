"""Batches of files (batch.py): the record of each file, --resume, Ctrl-C, and --workers writing the same
bytes as one process. Real speech (the bundled clips), the real model and real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from speechinpaint.batch import RECORD_NAME, BatchProgress, cpu_cores
from speechinpaint.jobs import Outcome
from speechinpaint.cli import main

from conftest import CLIP_NAMES, DATA


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def record(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / RECORD_NAME).read_text().splitlines()]


def audio_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != RECORD_NAME}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """The four bundled clips with seeded holes (NAME.wav + NAME.mask.json), one in a subfolder."""
    root = tmp_path_factory.mktemp("batch")
    clean = root / "clean"
    (clean / "sub").mkdir(parents=True)
    for i, name in enumerate(CLIP_NAMES):
        (clean / ("sub" if i == 3 else "") / name).write_bytes((DATA / name).read_bytes())
    assert main(["corrupt", str(clean), "-o", str(root / "holes"), "--kind", "holes", "--seed", "3"]) == 0
    return root / "holes"


def test_the_record_has_a_line_per_file_and_a_closing_line(capsys, tmp_path, damaged):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(damaged.glob("*.wav"))[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.wav").write_bytes(b"not audio at all")
    rc, out, err = run(capsys, "restore", src, "-o", tmp_path / "out", "--mask", "auto", "--method", "zero",
                       "--detect", "gaps,band", "--workers", "1")
    assert rc == 1
    assert err.strip().splitlines()[-1] == "2 restored, 1 failed (see above)"
    lines = record(tmp_path / "out")
    opening, files, closing = lines[0], lines[1:-1], lines[-1]
    assert opening["batch"] == "restore" and opening["inputs"] == 3
    by_name = {f["name"]: f for f in files}
    assert sorted(by_name) == ["broken.wav", *sorted(p.name for p in damaged.glob("*.wav"))[:2]]
    assert by_name["broken.wav"]["status"] == "failed" and "cannot read audio" in by_name["broken.wav"]["error"]
    for name, line in by_name.items():
        assert Path(line["input"]) == src / name and Path(line["output"]) == tmp_path / "out" / name
        assert line["wall_seconds"] >= 0 and line["worker"]
        if name != "broken.wav":
            assert line["status"] == "restored" and line["error"] is None
            assert line["audio_seconds"] == pytest.approx(sf.info(src / name).duration)
            # What --mask auto found is in the record and on stdout alike (holes are not looked for).
            assert line["found"] and f"{name}: {line['found']}" in out.splitlines()
    assert closing["summary"] == "2 restored, 1 failed, 0 skipped" and closing["interrupted"] is False


def test_resume_rewrites_no_finished_file_and_does_the_rest(capsys, tmp_path, damaged):
    out = tmp_path / "out"
    rc, _, _ = run(capsys, "restore", damaged, "-o", out, "--method", "interp", "--workers", "1")
    assert rc == 0
    whole = audio_files(out)
    # As after a crash: one output never written, one written but its line lost (cut short), one whose
    # record says it failed.
    (out / "da_mars.wav").unlink()
    lines = (out / RECORD_NAME).read_text().splitlines()
    kept = [line for line in lines if '"name": "da_mercury.wav"' not in line]
    cut = next(line for line in lines if '"name": "da_mercury.wav"' in line)[:40]
    failed = [line.replace('"status": "restored"', '"status": "failed"') if '"name": "da_7spoke.wav"' in line else line
              for line in kept[:-1]]
    (out / RECORD_NAME).write_text("\n".join(failed + [cut]) + "\n")
    before = {p.name: os.stat(p).st_mtime_ns for p in out.rglob("*.wav")}

    rc, _, err = run(capsys, "restore", damaged, "-o", out, "--method", "interp", "--resume", "--workers", "1")
    assert rc == 0 and err.strip().splitlines()[-1] == "3 restored, 0 failed, 1 skipped", err
    after = {p.name: os.stat(p).st_mtime_ns for p in out.rglob("*.wav")}
    assert after["lt_letters_d_a_b.wav"] == before["lt_letters_d_a_b.wav"]  # finished: not rewritten
    for name in ("da_mercury.wav", "da_7spoke.wav"):
        assert after[name] != before[name]
    assert audio_files(out) == whole  # and everything is as the first batch wrote it
    resumed = record(out)
    opening = max(i for i, line in enumerate(resumed) if "batch" in line)
    statuses = {line["name"]: line["status"] for line in resumed[opening + 1:-1]}
    assert statuses["sub/lt_letters_d_a_b.wav"] == "skipped"
    assert resumed[-1]["summary"] == "3 restored, 0 failed, 1 skipped"
    # A second resume finds everything finished.
    rc, _, err = run(capsys, "restore", damaged, "-o", out, "--method", "interp", "--resume", "--workers", "1")
    assert rc == 0 and err.strip().splitlines()[-1] == "0 restored, 0 failed, 4 skipped"


def test_workers_write_the_bytes_of_one_process(capsys, tmp_path, damaged):
    workers = 2
    threads = max(1, cpu_cores() // workers)  # what each worker gets: the one-process run uses as many
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert run(capsys, "restore", damaged, "-o", tmp_path / "one", "--workers", "1")[0] == 0
        assert run(capsys, "detect", damaged, "-o", tmp_path / "masks_one", "--workers", "1")[0] == 0
    finally:
        torch.set_num_threads(before)
    rc, _, err = run(capsys, "restore", damaged, "-o", tmp_path / "two", "--workers", workers)
    assert rc == 0 and err.strip().splitlines()[-1] == "4 restored, 0 failed", err
    assert audio_files(tmp_path / "two") == audio_files(tmp_path / "one")
    assert len({line["worker"] for line in record(tmp_path / "two")[1:-1]}) == workers
    rc, out, _ = run(capsys, "detect", damaged, "-o", tmp_path / "masks_two", "--workers", workers)
    assert rc == 0 and len(out.splitlines()) == 4
    assert audio_files(tmp_path / "masks_two") == audio_files(tmp_path / "masks_one")


def test_ctrl_c_stops_the_batch_with_the_record_intact(tmp_path, damaged):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):  # enough files that the batch is still running when interrupted
        (src / f"f{i:02d}.wav").write_bytes((damaged / "da_mars.wav").read_bytes())
        (src / f"f{i:02d}.mask.json").write_bytes((damaged / "da_mars.mask.json").read_bytes())
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "speechinpaint.cli", "restore", str(src), "-o", str(out),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job ignores it
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
                (out / RECORD_NAME).is_file() and (out / RECORD_NAME).read_text().count("\n") >= 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "speechinpaint: interrupted" in err, err
    lines = record(out)
    assert lines[-1]["interrupted"] is True and lines[-1]["not_done"] > 0, lines[-1]
    done = [line for line in lines[1:-1] if line["status"] == "restored"]
    assert len(done) == 12 - lines[-1]["not_done"]
    # Every output is a whole file with a line, and no other file (no temporary one) is left.
    assert sorted(p.name for p in out.iterdir()) == sorted([RECORD_NAME, *(Path(d["output"]).name for d in done)])
    for d in done:
        assert sf.info(d["output"]).frames == sf.info(src / "f00.wav").frames


def test_batch_progress_is_plain_lines_off_a_terminal(capsys):
    progress = BatchProgress("restore", 4, 4 * 1800.0, enabled=True, interval=0.0)
    for _ in range(2):
        progress.update(Outcome("in.wav", "out.wav", "restored", audio_seconds=1800.0))
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("restore: 1 of 4 files, 0.50 of 2.00 h of audio, ")
    # The rate is audio hours per hour of wall time; the time left follows from it (H:MM:SS).
    assert lines[1].startswith("restore: 2 of 4 files, 1.00 of 2.00 h of audio, ") and " h of audio per hour, " in lines[1]
    assert lines[1].endswith(" left") and lines[1].split(", ")[-1].count(":") == 2
