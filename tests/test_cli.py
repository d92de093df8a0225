"""The corrupt and restore commands end to end on real speech, and the CLI contract for bad input:
a non-zero exit, exactly one line `speechinpaint: error: ...` on stderr, no traceback, nothing overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechinpaint.audio import load_audio
from speechinpaint.batch import RECORD_NAME
from speechinpaint.cli import main
from speechinpaint.masks import Mask, Region, coverage, gap_sample_mask, load_mask, mask_path_for, save_mask
from speechinpaint.dsp.spectral import SEED_GRID

from conftest import lsd
from test_audio import BAD_INPUTS, write_bad

CLEAN_NAMES = ["a.wav", "c_stereo.wav", "sub/b.flac"]
OUT_NAMES = CLEAN_NAMES  # a folder's outputs keep their names and formats


def run(capsys, *argv) -> tuple[int, str]:
    """Run the CLI in this process; returns (exit code, stderr)."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_error_line(rc: int, err: str, expected: str = "") -> None:
    lines = err.strip().splitlines()
    assert rc != 0
    assert len(lines) == 1, err
    assert lines[0].startswith("speechinpaint: error: ") and expected in lines[0], err
    assert "Traceback" not in err


@pytest.fixture
def clean_dir(tmp_path, clips) -> Path:
    """A folder of real speech in three forms: wav, flac in a subfolder, and a stereo wav."""
    root = tmp_path / "clean"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", clips["da_mercury.wav"], 16000, subtype="PCM_16")
    sf.write(root / "sub" / "b.flac", clips["da_mars.wav"], 16000, subtype="PCM_16")
    lt = clips["lt_letters_d_a_b.wav"]
    sf.write(root / "c_stereo.wav", np.stack([lt, 0.5 * lt], axis=1), 16000, subtype="PCM_16")
    return root


def out_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["holes", "gaps", "band"])
def test_corrupt_folder(capsys, tmp_path, clean_dir, kind):
    before = snapshot(clean_dir)
    out = tmp_path / "bad"
    rc, _ = run(capsys, "corrupt", clean_dir, "-o", out, "--kind", kind, "--seed", 3)
    assert rc == 0
    expected = sorted(OUT_NAMES + [str(mask_path_for(Path(n)).as_posix()) for n in OUT_NAMES])
    assert out_files(out) == expected
    assert snapshot(clean_dir) == before
    for clean_name, out_name in zip(CLEAN_NAMES, OUT_NAMES):
        clean = load_audio(clean_dir / clean_name)
        info, source = sf.info(out / out_name), sf.info(clean_dir / clean_name)
        assert (info.samplerate, info.channels, info.subtype, info.format) == \
            (source.samplerate, source.channels, source.subtype, source.format)
        bad = load_audio(out / out_name, check=False)
        mask = load_mask(mask_path_for(out / out_name))
        assert len(bad) == len(clean) == mask.num_samples
        if kind == "holes":
            assert abs(coverage(mask, SEED_GRID) - 0.30) <= 0.02
        elif kind == "gaps":
            gap = gap_sample_mask(mask)
            assert 0.15 < gap.mean() < 0.25 and np.all(bad[gap] == 0)
            assert np.max(np.abs(bad[~gap] - clean[~gap])) <= 1 / 32768  # 16-bit rounding at most
        else:
            assert [(r.t0, r.f1) for r in mask.regions] == [(0.0, 8000.0)]


def test_corrupt_results_do_not_depend_on_the_other_files(capsys, tmp_path, clean_dir):
    rc, _ = run(capsys, "corrupt", clean_dir, "-o", tmp_path / "all", "--kind", "holes", "--seed", 9)
    assert rc == 0
    alone = tmp_path / "alone"
    (alone / "sub").mkdir(parents=True)
    (alone / "sub" / "b.flac").write_bytes((clean_dir / "sub" / "b.flac").read_bytes())
    rc, _ = run(capsys, "corrupt", alone, "-o", tmp_path / "one", "--kind", "holes", "--seed", 9)
    assert rc == 0
    assert snapshot(tmp_path / "one") == {k: v for k, v in snapshot(tmp_path / "all").items() if k.startswith("sub/")}
    # A single file gets the seed of its name, as it would inside a folder.
    rc, _ = run(capsys, "corrupt", clean_dir / "a.wav", "-o", tmp_path / "a_alone.wav", "--kind", "holes", "--seed", 9)
    assert rc == 0
    assert (tmp_path / "a_alone.wav").read_bytes() == (tmp_path / "all" / "a.wav").read_bytes()
    # Another seed gives other damage.
    rc, _ = run(capsys, "corrupt", clean_dir / "a.wav", "-o", tmp_path / "a_other.wav", "--kind", "holes", "--seed", 10)
    assert (tmp_path / "a_other.wav").read_bytes() != (tmp_path / "a_alone.wav").read_bytes()


@pytest.fixture
def corrupted_dir(capsys, tmp_path, clean_dir) -> Path:
    out = tmp_path / "bad"
    rc, _ = run(capsys, "corrupt", clean_dir, "-o", out, "--kind", "holes", "--seed", 1)
    assert rc == 0
    return out


def test_restore_folder_with_each_method(capsys, tmp_path, clean_dir, corrupted_dir):
    before = snapshot(corrupted_dir)
    scores = {}
    for method in ("zero", "interp", "oracle"):
        out = tmp_path / method
        rc, err = run(capsys, "restore", corrupted_dir, "-o", out, "--method", method, "--reference", clean_dir,
                      "--iterations", 16)
        assert rc == 0, err
        assert out_files(out) == sorted([*OUT_NAMES, RECORD_NAME])  # the batch record beside the outputs
        scores[method] = np.mean([
            lsd(load_audio(clean_dir / c), load_audio(out / o)) for c, o in zip(CLEAN_NAMES, OUT_NAMES)
        ])
    assert snapshot(corrupted_dir) == before
    for name in OUT_NAMES:  # zero leaves the holes empty: the corrupted audio itself
        np.testing.assert_array_equal(load_audio(tmp_path / "zero" / name), load_audio(corrupted_dir / name))
    assert scores["oracle"] < scores["interp"] < scores["zero"], scores


def test_restore_single_files(capsys, tmp_path, clean_dir, corrupted_dir):
    rc, err = run(capsys, "restore", corrupted_dir / "a.wav", "-o", tmp_path / "r.wav", "--method", "interp",
                  "--iterations", 8)
    assert rc == 0, err
    assert len(load_audio(tmp_path / "r.wav")) == len(load_audio(clean_dir / "a.wav"))
    # Into an existing folder, with the mask named explicitly and a single clean file as the reference.
    (tmp_path / "into").mkdir()
    rc, err = run(capsys, "restore", corrupted_dir / "sub" / "b.flac", "-o", tmp_path / "into", "--method", "oracle",
                  "--mask", corrupted_dir / "sub" / "b.mask.json", "--reference", clean_dir / "sub" / "b.flac",
                  "--iterations", 8)
    assert rc == 0, err
    assert out_files(tmp_path / "into") == ["b.flac", RECORD_NAME]


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_corrupt_bad_audio(capsys, tmp_path, clips, kind):
    src = write_bad(tmp_path, kind, clips["da_7spoke.wav"])
    before = src.read_bytes() if src.exists() else None
    out = tmp_path / "out.wav"
    out.write_bytes(b"an older result")
    rc, err = run(capsys, "corrupt", src, "-o", out, "--kind", "holes")
    expected = "no such file" if kind == "missing" else BAD_INPUTS[kind]
    assert_one_error_line(rc, err, expected)
    assert (src.read_bytes() if src.exists() else None) == before
    assert out.read_bytes() == b"an older result"
    assert {p.name for p in tmp_path.iterdir()} == {"out.wav"} | ({src.name} if before is not None else set())


@pytest.mark.parametrize("kind", sorted(set(BAD_INPUTS) - {"missing"}))
def test_restore_bad_audio(capsys, tmp_path, clips, kind):
    src = write_bad(tmp_path, kind, clips["da_7spoke.wav"])
    save_mask(mask_path_for(src), Mask(16000, 16000, [Region(0.1, 0.2, 100.0, 200.0)]))
    before = src.read_bytes()
    rc, err = run(capsys, "restore", src, "-o", tmp_path / "out.wav", "--method", "interp")
    assert_one_error_line(rc, err, BAD_INPUTS[kind])
    assert src.read_bytes() == before
    assert not (tmp_path / "out.wav").exists()


def restore_case(tmp_path, speech, case):
    """Write a corrupted-looking input and its mask for one bad restore case; returns (input, output)."""
    src = tmp_path / "in.wav"
    sf.write(src, speech, 16000, subtype="PCM_16")
    n = len(speech)
    if case == "mask outside the signal":
        (tmp_path / "in.mask.json").write_text(
            '{"format": "speechinpaint.mask/1", "sample_rate": 16000, "num_samples": %d,'
            ' "regions": [{"t0": 1.0, "t1": 9.0, "f0": 0.0, "f1": 8000.0}]}' % n
        )
    elif case == "mask for another length":
        save_mask(tmp_path / "in.mask.json", Mask(16000, n + 160, [Region(0.5, 0.7, 0.0, 8000.0)]))
    elif case == "mask missing":
        pass
    elif case == "output is the input":
        save_mask(tmp_path / "in.mask.json", Mask(16000, n, [Region(0.5, 0.7, 0.0, 8000.0)]))
        return src, src
    else:
        raise AssertionError(case)
    return src, tmp_path / "out.wav"


RESTORE_CASES = {
    "mask outside the signal": "lies outside the signal",
    "mask for another length": "made for",
    "mask missing": "no such mask file",
    "output is the input": "overwrite its input",
}


@pytest.mark.parametrize("case", sorted(RESTORE_CASES))
def test_restore_bad_mask_or_output(capsys, tmp_path, speech, case):
    src, out = restore_case(tmp_path, speech, case)
    before = snapshot(tmp_path)
    rc, err = run(capsys, "restore", src, "-o", out, "--method", "interp")
    assert_one_error_line(rc, err, RESTORE_CASES[case])
    assert snapshot(tmp_path) == before  # the input untouched, nothing written


def test_corrupt_output_is_the_input(capsys, tmp_path, clean_dir):
    before = snapshot(clean_dir)
    rc, err = run(capsys, "corrupt", clean_dir / "a.wav", "-o", clean_dir / "a.wav", "--kind", "gaps")
    assert_one_error_line(rc, err, "overwrite its input")
    rc, err = run(capsys, "corrupt", clean_dir, "-o", clean_dir, "--kind", "gaps")
    assert_one_error_line(rc, err, "overwrite its input")
    assert snapshot(clean_dir) == before


@pytest.mark.parametrize("option", [["--kind", "holes", "--coverage", "1.5"], ["--kind", "gaps", "--loss-rate", "0"],
                                    ["--kind", "band", "--cutoff-hz", "9000"]])
def test_corrupt_bad_option(capsys, tmp_path, clean_dir, option):
    rc, err = run(capsys, "corrupt", clean_dir / "a.wav", "-o", tmp_path / "o.wav", *option)
    assert_one_error_line(rc, err)
    assert not (tmp_path / "o.wav").exists()


def test_stereo_input_is_accepted_and_kept(capsys, tmp_path, clean_dir):
    rc, err = run(capsys, "corrupt", clean_dir / "c_stereo.wav", "-o", tmp_path / "c.wav", "--kind", "gaps")
    assert rc == 0 and err == ""
    assert sf.info(tmp_path / "c.wav").channels == 2


def test_folder_with_one_bad_file_reports_it_and_does_the_rest(capsys, tmp_path, clean_dir):
    (clean_dir / "broken.wav").write_bytes(b"not audio at all")
    rc, err = run(capsys, "corrupt", clean_dir, "-o", tmp_path / "out", "--kind", "gaps")
    assert rc == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "speechinpaint: error:" in line]
    assert len(errors) == 1 and "broken.wav" in errors[0]
    assert sorted(OUT_NAMES) == sorted(n for n in out_files(tmp_path / "out") if not n.endswith(".mask.json"))


def console_script() -> Path:
    script = Path(sys.executable).parent / "speechinpaint"
    assert script.is_file(), "the speechinpaint console script is installed beside the Python running the tests"
    return script


def test_installed_console_script(tmp_path, clean_dir):
    # Each start imports torch (a few seconds); the generous timeout only guards against a hang on a
    # starved shared CPU, where one start was measured at over 120 s.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ok = subprocess.run([console_script(), "corrupt", clean_dir / "a.wav", "-o", tmp_path / "a.wav", "--kind", "gaps"],
                        capture_output=True, text=True, env=env, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "a.wav").is_file() and (tmp_path / "a.mask.json").is_file()

    (tmp_path / "junk.wav").write_bytes(b"\x00\x01junk" * 100)
    bad = subprocess.run([console_script(), "restore", tmp_path / "junk.wav", "-o", tmp_path / "r.wav", "--method", "zero"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert_one_error_line(bad.returncode, bad.stderr, "cannot read audio")


def test_two_inputs_for_one_output_are_refused(capsys, tmp_path, clean_dir):
    (clean_dir / "a.flac").write_bytes((clean_dir / "sub" / "b.flac").read_bytes())  # -> a.mask.json twice
    rc, err = run(capsys, "detect", clean_dir, "-o", tmp_path / "out")
    assert_one_error_line(rc, err, "would both be written to")
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_one_line(capsys, tmp_path, clean_dir):
    (tmp_path / "a_file").write_text("not a folder")
    rc, err = run(capsys, "corrupt", clean_dir / "a.wav", "-o", tmp_path / "a_file" / "x.wav", "--kind", "gaps")
    assert_one_error_line(rc, err, "cannot write")
    assert (tmp_path / "a_file").read_text() == "not a folder"


@pytest.mark.parametrize("method", ["model", "interp"])
def test_restore_iterations_reach_every_method(capsys, tmp_path, clips, method):
    """--iterations sets the phase iterations of the method that runs, the network's included."""
    src = tmp_path / "holes.wav"
    sf.write(tmp_path / "clean.wav", clips["da_mars.wav"], 16000, subtype="PCM_16")
    assert main(["corrupt", str(tmp_path / "clean.wav"), "-o", str(src), "--kind", "holes", "--seed", "3"]) == 0
    outputs = {}
    for n in (1, 32):
        out = tmp_path / f"{method}_{n}.wav"
        rc, err = run(capsys, "restore", src, "-o", out, "--method", method, "--iterations", n)
        assert rc == 0, err
        outputs[n] = out.read_bytes()
    assert outputs[1] != outputs[32]
