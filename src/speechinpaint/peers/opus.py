"""The Opus codec's own packet-loss concealment as restoration methods: opus-plc, opus-deep-plc, opus-fec.

A real transmission, simulated: the signal is encoded at 32 kbit/s, wideband, in 20 ms packets (VOIP
mode); every packet that the mask marks lost is dropped; the decoder conceals it (classic PLC at decoder
complexity 0, Deep PLC at complexity 5, which libopus 1.5 turns on with OPUS_SET_COMPLEXITY on the
decoder); and only the concealed samples inside the gaps are spliced into the signal, so as inpainting
every intact sample stays the input's own (a receiver would play the decoded stream instead, with the
codec's coding error everywhere). opus-fec also encodes in-band FEC and, for a lost packet whose
successor arrived, decodes the redundant copy that successor carries (Deep PLC otherwise): it uses side
information the other methods lack, so it is an upper reference, and it needs the clean signal, since
the redundant copy must carry what was lost.

Packets line up with the mask: the codec's delay D (OPUS_GET_LOOKAHEAD, which libopus documents as the
delay of encoder and decoder together) is padded with silence in front to a whole number of packets, so
each decoded packet covers exactly one 20 ms packet of the input, on the multiples of 320 samples that
corrupt(..., "gaps") loses. A mask whose gaps are not whole packets is still handled: every packet that
overlaps a gap is dropped and concealed, and only the gap's own samples are spliced in.

The library is libopus 1.5 (Debian trixie's libopus0, which `make opus` unpacks into build/libopus),
loaded by path, never whatever the system has (bookworm ships 1.3, without Deep PLC). It is bound with
ctypes directly: opuslib (PyPI) looks the library up with ctypes.util.find_library at import time and
keeps one module-global handle, so it cannot be pointed at a path without patching ctypes or the
environment before the import, and it would bind the system's 1.3 wherever one is installed; the seven
calls needed here are written out below instead.
"""

from __future__ import annotations

import ctypes
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import SpeechInpaintError
from ..masks import Mask, gap_sample_mask
from ..recording import Restorer

METHODS = ("opus-plc", "opus-deep-plc", "opus-fec")
# src/speechinpaint/peers/opus.py -> the checkout's root, where `make opus` unpacks the library.
DEFAULT_LIBRARY = Path(__file__).resolve().parents[3] / "build" / "libopus" / "libopus.so.0"
LIBRARY_ENV = "SPEECHINPAINT_LIBOPUS"
INSTALL = "make opus"

PACKET = 320  # 20 ms at 16 kHz
BITRATE = 32000
MAX_PACKET_BYTES = 1500
DEEP_PLC_COMPLEXITY = 5  # libopus 1.5: decoder complexity 5 or more turns Deep PLC on

# opus_defines.h
OPUS_OK = 0
OPUS_APPLICATION_VOIP = 2048
OPUS_SIGNAL_VOICE = 3001
OPUS_BANDWIDTH_WIDEBAND = 1103
OPUS_SET_BITRATE = 4002
OPUS_SET_VBR = 4006
OPUS_SET_BANDWIDTH = 4008
OPUS_SET_COMPLEXITY = 4010
OPUS_SET_INBAND_FEC = 4012
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_SET_SIGNAL = 4024
OPUS_GET_LOOKAHEAD = 4027


def library_path() -> Path:
    """Where the Opus peers load libopus from: $SPEECHINPAINT_LIBOPUS, else build/libopus in the checkout."""
    return Path(os.environ.get(LIBRARY_ENV) or DEFAULT_LIBRARY)


def missing_line(method: str, why: str) -> str:
    """The one line a user gets when the peer's library is not there."""
    return (f"{method} needs libopus 1.5 or later ({why}): run `{INSTALL}` in the speechinpaint checkout, "
            f"or set {LIBRARY_ENV} to such a libopus.so.0")


@lru_cache(maxsize=None)
def _load(path: str) -> tuple[ctypes.CDLL, str]:
    """The library at path with the calls used here typed, and its version string; OSError if it will
    not load, ValueError if it is older than 1.5."""
    lib = ctypes.CDLL(path)
    lib.opus_get_version_string.restype = ctypes.c_char_p
    version = lib.opus_get_version_string().decode()
    found = re.search(r"(\d+)\.(\d+)", version)
    if not found or tuple(map(int, found.groups())) < (1, 5):
        raise ValueError(f"{path} is {version}")
    vp, i32 = ctypes.c_void_p, ctypes.c_int32
    err = ctypes.POINTER(ctypes.c_int)
    lib.opus_encoder_create.argtypes = (i32, ctypes.c_int, ctypes.c_int, err)
    lib.opus_encoder_create.restype = vp
    lib.opus_decoder_create.argtypes = (i32, ctypes.c_int, err)
    lib.opus_decoder_create.restype = vp
    lib.opus_encode_float.argtypes = (vp, ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_char_p, i32)
    lib.opus_encode_float.restype = i32
    lib.opus_decode_float.argtypes = (vp, ctypes.c_char_p, i32, ctypes.POINTER(ctypes.c_float), ctypes.c_int,
                                      ctypes.c_int)
    lib.opus_decode_float.restype = ctypes.c_int
    lib.opus_encoder_ctl.restype = ctypes.c_int  # variadic: arguments passed as c_int or a pointer
    lib.opus_decoder_ctl.restype = ctypes.c_int
    lib.opus_encoder_destroy.argtypes = lib.opus_decoder_destroy.argtypes = (vp,)
    return lib, version


def load_libopus(method: str = "the Opus peers") -> tuple[ctypes.CDLL, str]:
    """(library, version string) of libopus 1.5+, or one clear error naming the command that installs it."""
    path = library_path()
    if not path.is_file():
        raise SpeechInpaintError(missing_line(method, f"not found at {path}"))
    try:
        return _load(str(path))
    except (OSError, AttributeError) as exc:
        raise SpeechInpaintError(missing_line(method, f"{path} does not load: {exc}")) from None
    except ValueError as exc:
        raise SpeechInpaintError(missing_line(method, str(exc))) from None


def _check(code: int, what: str) -> int:
    if code < 0:
        raise SpeechInpaintError(f"libopus: {what} failed with error {code}")
    return code


def _ctl(lib, state, call, request: int, value: int) -> None:
    _check(call(ctypes.c_void_p(state), ctypes.c_int(request), ctypes.c_int(value)), f"ctl {request}={value}")


class OpusCodec:
    """One encoder and one decoder of mono 16 kHz Opus in 20 ms packets, freed when garbage collected."""

    def __init__(self, fec: bool = False, loss_percent: int = 0, decoder_complexity: int = 0,
                 method: str = "the Opus peers"):
        self.lib, self.version = load_libopus(method)
        lib, err = self.lib, ctypes.c_int(0)
        self.encoder = lib.opus_encoder_create(SAMPLE_RATE, 1, OPUS_APPLICATION_VOIP, ctypes.byref(err))
        _check(err.value, "opus_encoder_create")
        self.decoder = lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(err))
        _check(err.value, "opus_decoder_create")
        enc = lib.opus_encoder_ctl
        for request, value in ((OPUS_SET_BITRATE, BITRATE), (OPUS_SET_BANDWIDTH, OPUS_BANDWIDTH_WIDEBAND),
                               (OPUS_SET_VBR, 1), (OPUS_SET_COMPLEXITY, 10), (OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE),
                               (OPUS_SET_INBAND_FEC, int(fec)), (OPUS_SET_PACKET_LOSS_PERC, loss_percent)):
            _ctl(lib, self.encoder, enc, request, value)
        # libopus before 1.5 has no decoder complexity (OPUS_UNIMPLEMENTED): _check refuses it.
        _ctl(lib, self.decoder, lib.opus_decoder_ctl, OPUS_SET_COMPLEXITY, decoder_complexity)
        lookahead = ctypes.c_int(0)
        _check(enc(ctypes.c_void_p(self.encoder), ctypes.c_int(OPUS_GET_LOOKAHEAD), ctypes.byref(lookahead)),
               "OPUS_GET_LOOKAHEAD")
        self.delay = lookahead.value

    def __del__(self):
        lib = getattr(self, "lib", None)
        if lib is not None:
            if getattr(self, "encoder", None):
                lib.opus_encoder_destroy(self.encoder)
            if getattr(self, "decoder", None):
                lib.opus_decoder_destroy(self.decoder)

    def encode(self, audio: np.ndarray) -> list[bytes]:
        """One packet per 320 samples (the length must be a multiple of 320)."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        packets = []
        for start in range(0, len(audio), PACKET):
            frame = audio[start:start + PACKET]
            size = _check(self.lib.opus_encode_float(ctypes.c_void_p(self.encoder),
                                                     frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                                     PACKET, out, MAX_PACKET_BYTES), "opus_encode_float")
            packets.append(out.raw[:size])
        return packets

    def decode(self, packet: bytes | None, fec: bool = False) -> np.ndarray:
        """320 samples: the packet decoded, concealed when it is None, or with fec the redundant copy of
        the packet before it (which libopus conceals if the packet carries none)."""
        pcm = np.zeros(PACKET, dtype=np.float32)
        n = _check(self.lib.opus_decode_float(ctypes.c_void_p(self.decoder), packet, len(packet) if packet else 0,
                                              pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), PACKET, int(fec)),
                   "opus_decode_float")
        if n != PACKET:
            raise SpeechInpaintError(f"libopus: decoded {n} samples where {PACKET} were expected")
        return pcm

    def transmit(self, audio: np.ndarray, lost: np.ndarray, fec: bool = False) -> np.ndarray:
        """audio (16 kHz) through the codec with the 20 ms packets marked in `lost` (one flag per packet
        of the audio, from sample 0) dropped and concealed; returns the decoded signal aligned with the
        audio sample for sample, of its length."""
        n = len(audio)
        packets_in = -(-n // PACKET)
        lead = -self.delay % PACKET  # silence in front so that delay + lead is whole packets
        shift = (self.delay + lead) // PACKET
        total = packets_in + shift
        signal = np.zeros(total * PACKET, dtype=np.float32)
        signal[lead:lead + n] = audio
        packets = self.encode(signal)
        dropped = np.zeros(total, dtype=bool)
        dropped[shift:] = lost[:packets_in]
        frames = []
        for j, packet in enumerate(packets):
            if not dropped[j]:
                frames.append(self.decode(packet))
            elif fec and j + 1 < total and not dropped[j + 1]:
                frames.append(self.decode(packets[j + 1], fec=True))
            else:
                frames.append(self.decode(None))
        return np.concatenate(frames)[shift * PACKET:shift * PACKET + n]


def lost_packets(gaps: np.ndarray) -> np.ndarray:
    """One flag per 20 ms packet (from sample 0): does it overlap a gap?"""
    padded = np.zeros(-(-len(gaps) // PACKET) * PACKET, dtype=bool)
    padded[:len(gaps)] = gaps
    return padded.reshape(-1, PACKET).any(axis=1)


class OpusRestorer(Restorer):
    """Opus's concealment of the lost packets, spliced into the intact signal (module doc).

    method: opus-plc, opus-deep-plc or opus-fec. reference: the clean 16 kHz signal the sender encoded;
    opus-fec needs it (the redundant copies carry the lost audio), the others encode the input as it
    arrived when it is None (only the codec's lookahead into a gap sees the difference). The codec runs
    over the whole signal in one piece, as a stream would; it only fills time gaps.
    """

    def __init__(self, method: str = "opus-deep-plc", reference: np.ndarray | None = None):
        super().__init__(chunk_seconds=float("inf"))
        if method not in METHODS:
            raise SpeechInpaintError(f"unknown Opus method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "opus-fec" and reference is None:
            raise SpeechInpaintError("the opus-fec method needs the clean reference (--reference): its redundant "
                                     "copies carry the lost audio, side information the other methods lack")
        self.method = method
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float32)
        load_libopus(method)  # a missing library is refused now, not at the first file

    def restore_16k(self, audio: np.ndarray, mask: Mask) -> np.ndarray:
        if not all(mask.is_full_band(r) for r in mask.regions):
            raise SpeechInpaintError(f"{self.method} conceals lost packets (time gaps) only; this mask has holes or "
                                     "a band: use interp or model (or sbr for a missing upper band)")
        if self.reference is not None and len(self.reference) != len(audio):
            raise SpeechInpaintError("the reference and the corrupted audio differ in length")
        gaps = gap_sample_mask(mask)
        lost = lost_packets(gaps)
        fec = self.method == "opus-fec"
        codec = OpusCodec(fec=fec, loss_percent=int(np.clip(round(100 * lost.mean()), 1, 100)) if fec else 0,
                          decoder_complexity=0 if self.method == "opus-plc" else DEEP_PLC_COMPLEXITY,
                          method=self.method)
        sent = self.reference if self.reference is not None else audio
        decoded = codec.transmit(sent, lost, fec=fec)
        return np.where(gaps, decoded, audio).astype(np.float32)
