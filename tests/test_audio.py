"""Audio I/O: every format soundfile reads comes back as mono float32 at 16 kHz, writes are atomic,
and each kind of bad input is refused with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from speechinpaint.audio import MIN_SAMPLES, SAMPLE_RATE, check_signal, load_audio, save_audio
from speechinpaint.files import atomic_write, list_audio_files
from speechinpaint.errors import SpeechInpaintError

from conftest import DATA


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_load_wav_is_mono_float32_at_16k(speech):
    data, rate = sf.read(DATA / "da_7spoke.wav", dtype="float32")
    assert rate == SAMPLE_RATE
    assert speech.dtype == np.float32 and speech.ndim == 1
    np.testing.assert_array_equal(speech, data)


def test_load_flac_is_lossless(tmp_path, speech):
    sf.write(tmp_path / "a.flac", speech, SAMPLE_RATE, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.flac"), speech)


def test_load_ogg_vorbis(tmp_path, speech):
    sf.write(tmp_path / "a.ogg", speech, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    out = load_audio(tmp_path / "a.ogg")
    assert out.dtype == np.float32 and len(out) == len(speech)
    assert snr_db(speech, out) > 10  # lossy, but the same speech


def test_stereo_is_mixed_to_mono(tmp_path, speech):
    sf.write(tmp_path / "st.wav", np.stack([speech, 0.5 * speech], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "st.wav"), 0.75 * speech, atol=1e-7)


@pytest.mark.parametrize("rate", [44100, 22050])
def test_other_rates_are_resampled_to_16k(tmp_path, speech, rate):
    sf.write(tmp_path / "hi.wav", soxr.resample(speech, SAMPLE_RATE, rate, quality="VHQ"), rate, subtype="FLOAT")
    out = load_audio(tmp_path / "hi.wav")
    assert abs(len(out) - len(speech)) <= 1
    n = min(len(out), len(speech))
    # Up and back down through soxr: the same speech to within the resampler's error, away from the edges.
    assert snr_db(speech[100 : n - 100], out[100 : n - 100]) > 40


def test_resampling_keeps_frequencies(tmp_path, speech):
    """Independent of soxr's round trip: a 44.1 kHz recording of a 1 kHz tone plus speech keeps its peak at 1 kHz."""
    t = np.arange(int(1.5 * 44100)) / 44100
    speech_441 = soxr.resample(speech, SAMPLE_RATE, 44100)[: len(t)]
    signal = 0.1 * speech_441 + 0.5 * np.sin(2 * np.pi * 1000 * t)
    sf.write(tmp_path / "tone.wav", signal.astype(np.float32), 44100, subtype="FLOAT")
    out = load_audio(tmp_path / "tone.wav")
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    freqs = np.fft.rfftfreq(len(out), 1 / SAMPLE_RATE)
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 2


def test_save_round_trip_and_no_temp_files(tmp_path, speech):
    path = tmp_path / "sub" / "out.wav"
    save_audio(path, speech)
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    np.testing.assert_array_equal(load_audio(path), speech)  # the clip is already 16-bit
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]


def test_save_clips_instead_of_wrapping(tmp_path, speech):
    save_audio(tmp_path / "loud.wav", 4 * speech)
    out = load_audio(tmp_path / "loud.wav")
    assert out.max() > 0.99 and out.min() < -0.99
    assert np.all(np.sign(out[np.abs(4 * speech) > 1]) == np.sign(speech[np.abs(4 * speech) > 1]))


def test_atomic_write_replaces_only_on_success(tmp_path, speech):
    path = tmp_path / "out.wav"
    save_audio(path, speech)
    before = path.read_bytes()

    def crash_half_way(tmp):
        with open(tmp, "wb") as f:
            f.write(before[: len(before) // 2])
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, crash_half_way)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]

    save_audio(path, 0.5 * speech)
    assert path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_save_that_fails_in_soundfile_leaves_the_old_file(tmp_path, speech):
    path = tmp_path / "out.wav"
    save_audio(path, speech)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_audio(path, np.zeros((2, 2, 2), np.float32))  # soundfile cannot write a 3-D array
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def write_bad(tmp_path, kind: str, speech: np.ndarray):
    """Write one kind of bad input file and return its path."""
    path = tmp_path / f"{kind}.wav"
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    elif kind == "short":
        sf.write(path, speech[8000 : 8000 + MIN_SAMPLES - 1], SAMPLE_RATE)
    elif kind == "silent":
        sf.write(path, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    elif kind == "nan":
        bad = speech.copy()
        bad[1234] = np.nan
        sf.write(path, bad, SAMPLE_RATE, subtype="FLOAT")
    elif kind == "lowrate":
        sf.write(path, speech[:6000], 6000)
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)
    return path


BAD_INPUTS = {
    "missing": "no such file",
    "garbage": "cannot read audio",
    "empty": "holds no samples",
    "short": "shorter than one analysis window",
    "silent": "silent",
    "nan": "NaN",
    "lowrate": "below the supported minimum",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_line(tmp_path, speech, kind):
    path = write_bad(tmp_path, kind, speech)
    with pytest.raises(SpeechInpaintError) as info:
        load_audio(path)
    message = str(info.value)
    assert BAD_INPUTS[kind] in message and str(path) in message
    assert "\n" not in message


def test_shortest_accepted_signal_is_one_window(speech):
    check_signal(speech[8000 : 8000 + MIN_SAMPLES])
    with pytest.raises(SpeechInpaintError):
        check_signal(speech[8000 : 8000 + MIN_SAMPLES - 1])


def test_list_audio_files_finds_audio_recursively(tmp_path, speech):
    for rel in ["b.wav", "sub/a.flac", "sub/deep/c.ogg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, speech[:4000], SAMPLE_RATE)
    (tmp_path / "b.mask.json").write_text("{}")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_audio_files(tmp_path)]
    assert found == ["b.wav", "sub/a.flac", "sub/deep/c.ogg"]


def test_saved_files_get_the_usual_permissions(tmp_path):
    import os

    import numpy as np

    from speechinpaint.audio import save_audio

    umask = os.umask(0o022)
    try:
        save_audio(tmp_path / "x.wav", np.zeros(1000, np.float32))
    finally:
        os.umask(umask)
    assert (tmp_path / "x.wav").stat().st_mode & 0o777 == 0o644
