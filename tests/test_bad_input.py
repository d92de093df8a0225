"""Bad input and hostile conditions, each one line and a non-zero exit with nothing half-written: a
signal during a write, unwritable places named by the user's path, devices that are not there, option
ranges, clipped and truncated audio, and the API's own inputs (issue 21's rows)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechinpaint.cli import main
from speechinpaint.errors import SpeechInpaintError

from test_cli import assert_one_error_line, run

DATA = Path(__file__).parent / "data"


def signal_during_write(tmp_path, clips, signum, handler) -> tuple[subprocess.Popen, str, Path]:
    """`corrupt` a 5-minute stereo file in a process started with `handler` for `signum`, and send it
    `signum` while the output's hidden .part file exists; returns the process, its stderr and the folder."""
    x = np.tile(clips["da_7spoke.wav"], 120)[:16000 * 300]
    src = tmp_path / "long.wav"
    sf.write(src, np.stack([x, x], axis=1), 16000, subtype="PCM_16")
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "speechinpaint.cli", "corrupt", str(src), "-o", str(out / "long.wav"),
                             "--kind", "gaps", "--subtype", "FLOAT"], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signum, handler))
    try:
        deadline = time.monotonic() + 120
        while not any(".part" in name for name in os.listdir(out)):
            assert proc.poll() is None, f"finished before the write was seen: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the write never started"
            time.sleep(0.0005)
        proc.send_signal(signum)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, err, out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_write_leaves_nothing_behind(tmp_path, clips, signum):
    """A real signal sent while the output's hidden .part file exists: the command stops with 128 + the
    signal and one line, and neither the .part file nor a half output is left."""
    proc, err, out = signal_during_write(tmp_path, clips, signum, signal.SIG_DFL)  # as from a terminal
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines() == [f"speechinpaint: stopped by {signal.Signals(signum).name}"]
    assert os.listdir(out) == []


def test_a_hangup_ignored_by_nohup_stays_ignored(tmp_path, clips):
    """Under nohup (SIGHUP ignored when the command starts) a hangup does not stop the work."""
    proc, err, out = signal_during_write(tmp_path, clips, signal.SIGHUP, signal.SIG_IGN)
    assert proc.returncode == 0, err
    assert sorted(os.listdir(out)) == ["long.mask.json", "long.wav"]


def test_an_unwritable_place_is_named_by_the_users_path(capsys, tmp_path, clips):
    """Was '/proc/.b.wav.4y38lrkq.part.wav: cannot write': the hidden temporary file, not the user's path."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc, where nobody (root included) can create a file")
    sf.write(tmp_path / "a.wav", clips["da_mars.wav"], 16000, subtype="PCM_16")
    rc, err = run(capsys, "corrupt", tmp_path / "a.wav", "-o", "/proc/b.wav", "--kind", "gaps")
    assert_one_error_line(rc, err, "/proc/b.wav: cannot write (")
    assert ".part" not in err


def test_an_os_error_during_a_write_names_the_users_path(tmp_path):
    """What the write raises about its hidden temporary file is told about the user's path."""
    from speechinpaint.files import atomic_write

    target = tmp_path / "out.wav"

    def fails(tmp: str) -> None:
        raise OSError(28, "No space left on device", tmp)

    with pytest.raises(OSError) as info:
        atomic_write(target, fails)
    assert info.value.filename == str(target) and info.value.strerror == "No space left on device"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "bogus", "cuda:x", "meta"])
def test_a_device_that_is_not_here_is_one_line_before_anything_loads(capsys, tmp_path, device):
    """Was a 38-line traceback (cuda on a CPU build) or a RuntimeError (a bogus name); the API too."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the device")
    for command in (["restore", DATA / "da_mars.wav", "-o", tmp_path / "r.wav", "--mask", "auto"],
                    ["detect", DATA / "da_mars.wav", "-o", tmp_path / "m.mask.json"]):
        rc, err = run(capsys, *command, "--device", device)
        assert_one_error_line(rc, err, f"device {device!r}" if device in ("bogus", "cuda:x") else f"device {device}")
    assert os.listdir(tmp_path) == []
    from speechinpaint import HoleDetector, Inpainter

    for load in (Inpainter.from_pretrained, HoleDetector.from_checkpoint):
        with pytest.raises(SpeechInpaintError, match="device"):
            load(device=device)


@pytest.mark.parametrize("options, expected", [
    (["--iterations", "0"], "--iterations: must be at least 1"),
    (["--iterations", "-5"], "--iterations: must be at least 1"),
    (["--sample-rate", "10000000"], "--sample-rate: must lie in 8000 .. 384000"),
    (["--sample-rate", "16000.5"], "--sample-rate: expected an integer"),
])
def test_restore_option_ranges_are_checked_when_parsed(capsys, tmp_path, options, expected):
    with pytest.raises(SystemExit) as info:
        main(["restore", str(DATA / "da_mars.wav"), "-o", str(tmp_path / "r.wav"), *options])
    err = capsys.readouterr().err
    assert info.value.code == 2 and expected in err.strip().splitlines()[-1]


def test_detect_without_mask_auto_is_refused(capsys, tmp_path):
    rc, err = run(capsys, "restore", DATA / "da_mars.wav", "-o", tmp_path / "r.wav", "--detect", "gaps")
    assert_one_error_line(rc, err, "--detect chooses what --mask auto looks for")


@pytest.mark.parametrize("port", ["0", "80000", "-1", "http"])
def test_edit_port_outside_1_to_65535_is_refused_when_parsed(capsys, port):
    with pytest.raises(SystemExit) as info:
        main(["edit", "--no-browser", "--port", port])
    assert info.value.code == 2 and "--port" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_misspelt_mask_key_is_refused_by_name(capsys, tmp_path):
    import json

    from speechinpaint.masks import Mask, Region

    info = sf.info(str(DATA / "da_mars.wav"))
    data = Mask(16000, info.frames, [Region(0.5, 0.6, 0.0, 8000.0)]).to_json()
    data["regions"][0]["chanel"] = 1
    (tmp_path / "m.mask.json").write_text(json.dumps(data))
    rc, err = run(capsys, "restore", DATA / "da_mars.wav", "-o", tmp_path / "r.wav", "--mask", tmp_path / "m.mask.json",
                  "--method", "interp")
    assert_one_error_line(rc, err, "region 0 has the unknown key 'chanel'")
    assert not (tmp_path / "r.wav").exists()


@pytest.mark.parametrize("output, subtype", [("out.flac", "PCM_24"), ("out.wav", "PCM_16"), ("out.flac", None)])
def test_samples_beyond_full_scale_are_counted_when_clipped(capsys, tmp_path, clips, output, subtype):
    """A float file peaking above full scale written as PCM or FLAC was hard-clipped without a word."""
    from speechinpaint.masks import Mask, save_mask

    x = clips["da_mars.wav"].astype(np.float64)
    loud = x * (1.6 / np.abs(x).max())
    src = tmp_path / "loud.wav"
    sf.write(src, loud, 16000, subtype="FLOAT")
    save_mask(tmp_path / "loud.mask.json", Mask(16000, len(loud), []))
    rc, err = run(capsys, "restore", src, "-o", tmp_path / output, "--method", "interp",
                  *(["--subtype", subtype] if subtype else []))
    assert rc == 0, err
    bits = {"PCM_16": 16, "PCM_24": 24}[subtype or "PCM_16"]
    rounded = np.round(loud * 2 ** (bits - 1))
    count = int(np.count_nonzero((rounded > 2 ** (bits - 1) - 1) | (rounded < -2 ** (bits - 1))))
    warnings = [line for line in err.splitlines() if line.startswith("speechinpaint: warning:")]
    assert count > 0 and len(warnings) == 1, err
    assert f"{count:,} samples beyond full scale clipped to fit {subtype or 'PCM_16'}" in warnings[0]
    # A FLOAT output keeps them, and says nothing.
    rc, err = run(capsys, "restore", src, "-o", tmp_path / "float.wav", "--method", "interp")
    assert rc == 0 and "warning" not in err
    np.testing.assert_array_equal(sf.read(tmp_path / "float.wav", dtype="float64")[0], sf.read(src, dtype="float64")[0])


@pytest.mark.parametrize("container", ["WAV", "AIFF", "AU"])
def test_a_truncated_file_is_refused(capsys, tmp_path, clips, container):
    """A WAV cut in half restored with exit 0 and 'nothing found', silently shorter."""
    suffix = {"WAV": ".wav", "AIFF": ".aiff", "AU": ".au"}[container]
    sf.write(tmp_path / ("whole" + suffix), clips["da_mars.wav"], 16000, subtype="PCM_16", format=container)
    whole = (tmp_path / ("whole" + suffix)).read_bytes()
    (tmp_path / ("whole" + suffix)).unlink()
    cut = tmp_path / ("cut" + suffix)
    cut.write_bytes(whole[:len(whole) // 2])
    for command in (["restore", cut, "-o", tmp_path / "r.wav", "--mask", "auto", "--method", "interp"],
                    ["detect", cut, "-o", tmp_path / "m.mask.json"]):
        rc, err = run(capsys, *command)
        assert_one_error_line(rc, err, f"{cut}: the file is truncated")
    assert sorted(os.listdir(tmp_path)) == [cut.name]


def test_no_room_for_the_output_is_found_before_the_model_loads(capsys, tmp_path, small_disk, clips):
    """A full disk was found only after a 46 s restore; now from the input's header, before any work."""
    disk = small_disk
    src = tmp_path / "in.wav"
    x = np.tile(clips["da_mars.wav"], 2)
    sf.write(src, x, 16000, subtype="PCM_16")
    from speechinpaint.masks import Mask, Region, save_mask

    save_mask(tmp_path / "in.mask.json", Mask(16000, len(x), [Region(0.5, 0.7, 500.0, 2000.0)]))
    rc, err = run(capsys, "restore", src, "-o", disk / "sub" / "out.wav")
    assert_one_error_line(rc, err, f"{disk / 'sub' / 'out.wav'}: not enough free space")
    assert os.listdir(disk) == []


def test_a_checkpoint_with_code_does_not_repeat_pytorchs_unsafe_advice(capsys, tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("never run",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "speechinpaint.model/1", "config": Payload(), "state_dict": {}}, evil)
    rc, err = run(capsys, "restore", DATA / "da_mars.wav", "-o", tmp_path / "r.wav", "--mask", "auto",
                  "--checkpoint", evil)
    assert_one_error_line(rc, err, "holds objects other than weights, which this tool never loads")
    assert "weights_only" not in err and "never run" not in err


# --- the Python API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interp():
    from speechinpaint.restorers import make_restorer

    return make_restorer("interp", iterations=4)


def test_uint8_audio_is_unsigned_pcm_centred_on_128(interp, clips):
    """uint8 had a -0.5 DC offset: 128 (unsigned PCM's silence) came back as -0.5."""
    from speechinpaint.masks import Mask, Region

    x = clips["da_mars.wav"]
    pcm8 = np.clip(np.round(x * 128.0) + 128, 0, 255).astype(np.uint8)
    mask = Mask(16000, len(x), [Region(0.5, 0.52, 0.0, 8000.0)])
    out = interp.restore(pcm8, mask)
    keep = np.ones(len(x), bool)
    keep[int(0.5 * 16000) - 1:int(0.52 * 16000) + 1] = False
    np.testing.assert_allclose(out[keep], (pcm8[keep].astype(np.float64) - 128) / 128, atol=1e-6)
    assert abs(float(np.mean(out))) < 0.01
    silence = interp.restore(np.full(16000, 128, np.uint8), Mask(16000, 16000, []))
    assert np.all(silence == 0.0)


def test_lists_are_one_clip_of_numbers_or_clips_with_as_many_masks(interp, clips):
    """A plain list of numbers said 'got shape ()'; a list of masks shorter than the clips was cut silently."""
    from speechinpaint.masks import Mask, Region

    x = clips["da_mars.wav"]
    mask = Mask(16000, len(x), [Region(0.5, 0.6, 500.0, 2000.0)])
    np.testing.assert_array_equal(interp.restore(x.tolist(), mask), interp.restore(x, mask))
    assert len(interp.restore([x, x], mask)) == 2
    with pytest.raises(SpeechInpaintError, match="a list of 1 masks for a list of 2 clips"):
        interp.restore([x, x], [mask])


def test_a_sample_rate_must_be_a_whole_number(interp, clips):
    from speechinpaint.masks import Mask

    x = clips["da_mars.wav"]
    with pytest.raises(SpeechInpaintError, match="sample_rate must be a whole number of Hz, got 16000.5"):
        interp.restore(x, Mask(16000, len(x), []), sample_rate=16000.5)
    assert interp.restore(x, Mask(16000, len(x), []), sample_rate=16000.0).shape == x.shape


def test_restorers_are_exported_lazily_and_writes_raise_one_sentence(tmp_path):
    code = ("import sys, speechinpaint as si; assert 'speechinpaint.restorers' not in sys.modules; "
            "r = si.restorers.make_restorer('zero'); print(type(r).__name__, 'restorers' in si.__all__)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.split() == ["ZeroRestorer", "True"], done.stderr
    import speechinpaint as si

    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc, where no file can be created")
    for write in (lambda: si.save_audio("/proc/out.wav", np.zeros(1600, np.float32)),
                  lambda: si.write_recording("/proc/out.wav", np.zeros((1, 1600)), 16000, "PCM_16")):
        with pytest.raises(SpeechInpaintError, match=r"^/proc/out\.wav: cannot write \("):
            write()


# --- smaller rows: progress, the detection summary ------------------------------------------------------


def test_a_stereo_restore_counts_its_seconds_once_and_ends_at_100_percent(capsys, speech_of_length):
    """Progress counted a stereo file as twice its audio, and off a terminal its last line could be 90 %."""
    from speechinpaint.corruptions import corrupt
    from speechinpaint.progress import Progress
    from speechinpaint.recording import restore_signal
    from speechinpaint.restorers import InterpRestorer

    bad, mask = corrupt(speech_of_length(40 * 16000), "gaps", seed=1)
    progress = Progress(40.0, "long.wav", "s of audio", interval=0.0, parts=2)
    restore_signal(InterpRestorer(iterations=1), np.stack([bad, bad]).astype(np.float64), 16000, mask, None, progress)
    progress.interval = 1e9  # no line for a while: close still says where the work ended
    progress.update(0.0)
    progress.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == "long.wav: 40 of 40 s of audio (100 %)"
    assert all(" of 40 s of audio" in line for line in lines) and len(lines) == 2 * 2 + 1  # two chunks a channel
    assert lines[1].startswith("long.wav: 20 of 40 ") and lines[3].startswith("long.wav: 40 of 40 ")


def test_the_progress_bar_shows_whole_seconds(monkeypatch):
    import io

    from speechinpaint.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    progress = Progress(120.0, "take.wav", "s of audio")
    for _ in range(1200):
        progress.update(0.1)
    progress.close()
    shown = screen.getvalue().split("\r")[-1]
    assert "120/120 s of audio" in shown and "119.99" not in screen.getvalue(), shown


def test_one_dropout_on_both_channels_is_one_lost_packet(clips):
    """Was '2 lost packets (120 ms)' for one 60 ms dropout on a stereo file."""
    from speechinpaint.detection import detect_signal

    x = clips["da_7spoke.wav"].astype(np.float64)
    stereo = np.stack([x, 0.7 * x])
    a = int(1.0 * 16000)
    stereo[:, a:a + 960] = 0.0
    found = detect_signal(stereo, 16000, ("gaps",))
    assert found.summary() == "1 lost packet (60 ms)"
    assert sorted(r.channel for r in found.mask.regions) == [0, 1]


def test_a_missing_input_is_told_before_torch_loads(tmp_path):
    """Every bad input cost 3.5-6 s of imports before its error; a missing one or an output onto the input
    now needs none of them."""
    code = ("import sys; from speechinpaint.cli import main; "
            f"rc = [main(['restore', {str(tmp_path / 'none.wav')!r}, '-o', 'x.wav']), "
            f"main(['restore', {str(DATA / 'da_mars.wav')!r}, '-o', {str(DATA / 'da_mars.wav')!r}])]; "
            "print(rc, 'torch' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip() == "[1, 1] False", done.stderr
    assert "no such file or folder" in done.stderr and "overwrite its input" in done.stderr
