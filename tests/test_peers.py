"""The peers run side by side with our methods: Opus's concealment (classic PLC, Deep PLC, FEC) on the
library `make opus` unpacks, and the classic baselines for short gaps (ar) and the band (sbr)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from conftest import lsd
from speechinpaint.baselines.ar import ar_fill
from speechinpaint.corruptions import corrupt
from speechinpaint.dsp.spectral import MODEL_GRID
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.masks import Mask, Region, gap_sample_mask
from speechinpaint.peers import opus
from speechinpaint.restorers import make_restorer

SR = 16000


def have_libopus() -> bool:
    try:
        opus.load_libopus()
        return True
    except SpeechInpaintError:
        return False


needs_opus = pytest.mark.skipif(not have_libopus(), reason="libopus 1.5 not unpacked: run `make opus`")


@pytest.fixture(scope="module")
def six_seconds(speech_of_length):
    return speech_of_length(6 * SR)


@pytest.fixture(scope="module")
def lossy(six_seconds):
    corrupted, mask = corrupt(six_seconds, "gaps", 1)
    return corrupted, mask, gap_sample_mask(mask)


@needs_opus
def test_make_opus_library_has_deep_plc(six_seconds, lossy):
    """The library is 1.5 and Deep PLC is really on: decoder complexity 5 changes nothing while every
    packet arrives, and changes the concealment of the same lost packets."""
    _, mask, gaps = lossy
    codec = opus.OpusCodec()
    assert codec.version.startswith("libopus 1.5") or codec.version > "libopus 1.5"
    none = np.zeros(len(six_seconds) // opus.PACKET, dtype=bool)
    lost = opus.lost_packets(gaps)
    runs = {c: (opus.OpusCodec(decoder_complexity=c).transmit(six_seconds, none),
                opus.OpusCodec(decoder_complexity=c).transmit(six_seconds, lost)) for c in (0, opus.DEEP_PLC_COMPLEXITY)}
    (clean0, lossy0), (clean5, lossy5) = runs[0], runs[opus.DEEP_PLC_COMPLEXITY]
    np.testing.assert_array_equal(clean0, clean5)
    assert np.sqrt(np.mean((lossy0[gaps] - lossy5[gaps]) ** 2)) > 0.1 * np.sqrt(np.mean(six_seconds[gaps] ** 2))


@needs_opus
def test_codec_delay_lines_packets_up(six_seconds):
    """With the measured delay padded away the decoded signal sits on the input, not a few samples off."""
    codec = opus.OpusCodec()
    assert codec.delay > 0
    decoded = codec.transmit(six_seconds, np.zeros(len(six_seconds) // opus.PACKET, dtype=bool))
    assert len(decoded) == len(six_seconds)
    sos = butter(6, (1000, 3000), btype="band", fs=SR, output="sos")
    x, y = sosfiltfilt(sos, six_seconds)[SR:-SR], sosfiltfilt(sos, decoded)
    corr = {lag: float(np.dot(x, np.roll(y, lag)[SR:-SR])) for lag in range(-3, 4)}
    assert max(corr, key=corr.get) == 0
    assert corr[0] / np.sqrt(np.dot(x, x) * np.dot(y[SR:-SR], y[SR:-SR])) > 0.9


@needs_opus
def test_opus_peers_round_trip(six_seconds, lossy):
    """Intact samples bit-identical, every lost packet replaced, Deep PLC differs from classic PLC, and
    FEC (with side information) comes closest in the packets its redundant copies recover."""
    corrupted, mask, gaps = lossy
    out = {m: make_restorer(m, reference=six_seconds if m == "opus-fec" else None).restore(corrupted, mask)
           for m in ("opus-plc", "opus-deep-plc", "opus-fec")}
    lost = opus.lost_packets(gaps)
    for method, y in out.items():
        assert y.dtype == np.float32 and y.shape == corrupted.shape
        np.testing.assert_array_equal(y[~gaps], corrupted[~gaps])
        for p in np.flatnonzero(lost):
            packet = y[p * opus.PACKET:(p + 1) * opus.PACKET]
            assert np.any(packet != 0), f"{method}: lost packet {p} not replaced"
    plc, deep = out["opus-plc"], out["opus-deep-plc"]
    assert not np.array_equal(plc[gaps], deep[gaps])
    # FEC recovers the last packet of every burst from the packet after it.
    recovered = np.zeros_like(gaps)
    for p in np.flatnonzero(lost[:-1] & ~np.r_[lost[1:]]):
        recovered[p * opus.PACKET:(p + 1) * opus.PACKET] = True
    # Scored above 300 Hz: below it VOIP mode's high-pass filter keeps any waveform from matching.
    sos = butter(4, 300, btype="high", fs=SR, output="sos")
    clean = sosfiltfilt(sos, six_seconds)[recovered]
    err = {m: np.sum((sosfiltfilt(sos, y)[recovered] - clean) ** 2) for m, y in out.items()}
    assert err["opus-fec"] < 0.75 * min(err["opus-plc"], err["opus-deep-plc"])


@needs_opus
def test_opus_conceals_every_packet_a_stray_gap_overlaps(speech):
    """Gaps that are not whole 20 ms packets: each packet they touch is dropped and concealed, and only
    the gap's own samples are spliced in."""
    n = len(speech)
    gaps_at = [(0.1015, 0.1330), (1.0, 1.0071)]  # across a packet boundary; a 7 ms gap inside a packet
    mask = Mask(SR, n, [Region(a, b, 0.0, SR / 2) for a, b in gaps_at])
    gaps = gap_sample_mask(mask)
    corrupted = np.where(gaps, 0.0, speech).astype(np.float32)
    assert list(np.flatnonzero(opus.lost_packets(gaps))) == [5, 6, 50]
    y = make_restorer("opus-deep-plc").restore(corrupted, mask)
    np.testing.assert_array_equal(y[~gaps], corrupted[~gaps])
    assert np.sqrt(np.mean(y[gaps] ** 2)) > 0.1 * np.sqrt(np.mean(speech[gaps] ** 2))


def test_missing_opus_is_one_line_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv(opus.LIBRARY_ENV, str(tmp_path / "nowhere" / "libopus.so.0"))
    for method in opus.METHODS:
        with pytest.raises(SpeechInpaintError) as caught:
            make_restorer(method, reference=np.zeros(SR, np.float32))
        message = str(caught.value)
        assert "\n" not in message and "make opus" in message and method in message


def test_opus_refuses_what_it_cannot_do(speech):
    with pytest.raises(SpeechInpaintError, match="reference"):
        make_restorer("opus-fec")
    if have_libopus():
        holes, mask = corrupt(speech, "holes", 0)
        with pytest.raises(SpeechInpaintError, match=r"\(time gaps\) only"):
            make_restorer("opus-plc").restore(holes, mask)


def test_ar_fills_a_short_gap_in_a_predictable_signal():
    t = np.arange(4000)
    s = np.sin(2 * np.pi * 200 * t / SR) + 0.5 * np.sin(2 * np.pi * 730 * t / SR + 1)
    gaps = np.zeros(len(s), dtype=bool)
    gaps[2000:2320] = True
    filled = ar_fill(np.where(gaps, 0.0, s), gaps)
    assert np.abs(filled[gaps] - s[gaps]).max() < 0.02


def test_ar_fills_gaps_and_beats_zero(six_seconds, lossy):
    corrupted, mask, gaps = lossy
    y = make_restorer("ar").restore(corrupted, mask)
    np.testing.assert_array_equal(y[~gaps], corrupted[~gaps])
    assert np.all(np.isfinite(y)) and np.any(y[gaps] != 0)
    assert lsd(six_seconds, y) < lsd(six_seconds, corrupted) - 0.05


def test_ar_refuses_a_mask_that_is_not_gaps(speech):
    holes, mask = corrupt(speech, "holes", 0)
    with pytest.raises(SpeechInpaintError, match="time gaps only.*interp"):
        make_restorer("ar").restore(holes, mask)


def test_sbr_fills_the_band_and_beats_zero(six_seconds):
    narrow, mask = corrupt(six_seconds, "band", 0, cutoff_hz=4000)
    y = make_restorer("sbr").restore(narrow, mask)
    assert y.shape == narrow.shape and np.all(np.isfinite(y))
    assert lsd(six_seconds, y) < 0.6 * lsd(six_seconds, narrow)
    # Only the band changes: below its edge (less the window's main lobe, where the new band leaks into
    # the re-analysed spectrum) the output's spectrum is the input's.
    edge = int(np.ceil(mask.regions[0].f0 / (SR / MODEL_GRID.n_fft)))
    below_in, below_out = (MODEL_GRID.stft(a).numpy()[:edge - 4] for a in (narrow, y))
    assert np.abs(below_out - below_in).max() < 1e-3 * np.abs(below_in).max()
    # Above the resampler's transition band the input is empty; the copy-up is of the clean one's order.
    power = {name: np.mean(np.abs(MODEL_GRID.stft(a).numpy()[int(4500 / (SR / MODEL_GRID.n_fft)):]) ** 2)
             for name, a in (("narrow", narrow), ("sbr", y), ("clean", six_seconds))}
    assert power["sbr"] > 100 * power["narrow"] and 0.1 < power["sbr"] / power["clean"] < 10


def test_sbr_refuses_a_mask_that_is_not_one_band(speech):
    gapped, mask = corrupt(speech, "gaps", 0)
    with pytest.raises(SpeechInpaintError, match="one missing upper band"):
        make_restorer("sbr").restore(gapped, mask)
