"""Corpora: manifests and splits, the seed's preparation, the starter filters, VCTK over a local server.

The VCTK archives are built here from the bundled real clips, laid out as the two releases are, and
served by a threaded HTTP server on 127.0.0.1 that honours Range requests and can cut a transfer
half way, so download, resume, verification, extraction and preparation run for real.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechinpaint.audio import SAMPLE_RATE, resample
from speechinpaint.cli import main
from speechinpaint.corpora import starter
from speechinpaint.corpora.folder import build_folder
from speechinpaint.corpora.manifest import COLUMNS, read_manifest, speaker_split
from speechinpaint.corpora.prepare import PEAK_DBFS, prepare_audio, prepare_file
from speechinpaint.corpora.quality import CUT_EDGE_DB, NOISE_SNR_DB, judge_voice, measure_band
from speechinpaint.corpora.vctk import build_vctk
from speechinpaint.errors import SpeechInpaintError

RNG_SEED = 1234
# Clips are cut to this length where the test needs many files: the suite shares two cores.
SHORT = int(1.2 * SAMPLE_RATE)


def peak_dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.max(np.abs(x)))


def padded(clip: np.ndarray, rate: int, pad_s: float, seed: int) -> np.ndarray:
    """A real clip at `rate` with pad_s of faint noise (-70 dBFS) before and after, as VCTK's 2017
    recordings have long room-tone lead-ins."""
    x = resample(clip, SAMPLE_RATE, rate)
    rng = np.random.default_rng(seed)
    pad = lambda: rng.normal(0, 10 ** (-70 / 20), int(pad_s * rate)).astype(np.float32)  # noqa: E731
    return np.concatenate([pad(), x, pad()])


# ---------------------------------------------------------------- manifest and splits


def test_speaker_split_is_disjoint_fixed_and_in_the_seed_proportion():
    names = [f"p{n}" for n in range(225, 334)]  # 109 speakers, as VCTK 2017
    split = speaker_split(names, (79, 15, 15), seed=0)
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "valid", "test")}
    assert counts == {"train": 79, "valid": 15, "test": 15}
    assert split == speaker_split(list(reversed(names)), (79, 15, 15), seed=0)  # order of input irrelevant
    assert split != speaker_split(names, (79, 15, 15), seed=1)
    few = speaker_split(["a", "b", "c", "d", "e"], (79, 15, 15), seed=0)
    assert sorted(few.values()).count("train") == 3 and set(few.values()) == {"train", "valid", "test"}
    with pytest.raises(SpeechInpaintError):
        speaker_split([], (79, 15, 15), seed=0)


# ---------------------------------------------------------------- the seed's preparation


def test_prepare_sets_level_rate_and_trims_silence_on_a_real_clip(clips, tmp_path):
    clip = clips["da_7spoke.wav"]
    x = 0.5 * padded(clip, 44100, 0.6, RNG_SEED) / np.max(np.abs(clip))
    out = prepare_audio(x, 44100)
    assert abs(peak_dbfs(out) - PEAK_DBFS) < 0.05
    removed = (x.size / 44100) - out.size / SAMPLE_RATE
    # 1.2 s of padding removed, give or take the trim frame and the clip's own quiet edges.
    assert 1.1 < removed < 1.5
    # The speech itself is kept: the prepared clip is at least the clip minus its own quiet edges.
    assert out.size > clip.size - 0.3 * SAMPLE_RATE

    src = tmp_path / "in.flac"
    sf.write(src, x, 44100)
    before = src.read_bytes()
    duration = prepare_file(src, tmp_path / "out" / "in.wav")
    info = sf.info(str(tmp_path / "out" / "in.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    assert duration == pytest.approx(info.frames / SAMPLE_RATE)
    assert src.read_bytes() == before
    with pytest.raises(SpeechInpaintError, match="overwrite"):
        prepare_file(src, src)


# ---------------------------------------------------------------- starter corpus logic


def test_tuxpaint_and_fillets_names_give_voices():
    stamps = Path("/s")
    cases = {
        "animals/cat_desc_da.ogg": ("tuxpaint-da", "da", "audio/tuxpaint/animals/cat_desc_da.wav"),
        "town/inukshuk-photo_desc_da.ogg.ogg": ("tuxpaint-da", "da", "audio/tuxpaint/town/inukshuk-photo_desc_da.wav"),
        "animals/koala_desc.ogg": ("tuxpaint-en", "en", "audio/tuxpaint/animals/koala_desc.wav"),
        "x/y_desc_pt_BR.ogg": ("tuxpaint-pt_br", "pt_br", "audio/tuxpaint/x/y_desc_pt_BR.wav"),
    }
    for rel, (speaker, lang, out) in cases.items():
        c = starter.tuxpaint_clip(stamps / rel, stamps)
        assert (c.speaker, c.language, c.rel_out) == (speaker, lang, out)
    assert starter.tuxpaint_clip(stamps / "animals/cat.ogg", stamps) is None
    assert starter.tuxpaint_clip(stamps / "animals/cat_desc.txt", stamps) is None

    names = {"vit-hs-klid1": "hs", "let-m-divna": "m", "m-silou": "m", "agenti-m": "m", "b2-rikal2": "b2",
             "dr-1-erik": "dr1", "help3": "help"}
    assert {k: starter.fillets_speaker(k) for k in names} == names
    sound = Path("/f")
    assert starter.fillets_clip(sound / "city/cs/vit-v-proc.ogg", sound).speaker == "fillets-v"
    assert starter.fillets_clip(sound / "city/en/vit-v-proc.ogg", sound) is None


def test_band_measure_tells_speech_from_cut_and_noise(clips):
    rng = np.random.default_rng(RNG_SEED)
    good = clips["da_7spoke.wav"]
    cut = resample(resample(good, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE) + rng.normal(0, 1e-4, good.size)
    noisy = good + rng.normal(0, 0.01, good.size)
    g, c, n = (measure_band(x.astype(np.float32), SAMPLE_RATE) for x in (good, cut, noisy))
    assert g.snr_db > NOISE_SNR_DB + 10 and g.edge_db < CUT_EDGE_DB
    assert c.edge_db > CUT_EDGE_DB + 10
    assert n.snr_db < NOISE_SNR_DB and n.edge_db < CUT_EDGE_DB
    assert judge_voice([g, g, g]).keep
    assert judge_voice([c, c, g]).reason == "cut"
    assert judge_voice([n, n, g]).reason == "noise"
    assert measure_band(good[:100], SAMPLE_RATE) is None


def _write_ogg(path: Path, audio: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, format="OGG", subtype="VORBIS")


def test_screen_drops_duplicates_low_rates_and_bad_voices(clips, tmp_path):
    """A miniature unpacked tree: one good voice, a cut one, a noisy one, a duplicate, an 8 kHz clip."""
    rng = np.random.default_rng(RNG_SEED)
    stamps = tmp_path / starter.TUXPAINT_DIR
    sound = tmp_path / starter.FILLETS_DIR
    real = [clips[n][:SHORT] for n in ("da_mercury.wav", "da_mars.wav", "da_7spoke.wav")]
    for i, x in enumerate(real):
        _write_ogg(stamps / f"a/s{i}_desc_da.ogg", x, SAMPLE_RATE)
        cut = resample(resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE) + rng.normal(0, 1e-4, x.size)
        _write_ogg(stamps / f"a/s{i}_desc_ca.ogg", cut.astype(np.float32), SAMPLE_RATE)
        _write_ogg(stamps / f"a/s{i}_desc_nl.ogg", (x + rng.normal(0, 0.01, x.size)).astype(np.float32), SAMPLE_RATE)
        _write_ogg(sound / f"city/cs/vit-m-w{i}.ogg", x, SAMPLE_RATE)
    (stamps / "b").mkdir()
    shutil.copy(stamps / "a/s0_desc_da.ogg", stamps / "b/s0_desc_da.ogg")  # same bytes, another stamp
    _write_ogg(stamps / "a/s9_desc_lt.ogg", resample(real[0], SAMPLE_RATE, 8000), 8000)
    _write_ogg(sound / "city/en/vit-m-w0.ogg", real[0], SAMPLE_RATE)  # not Czech: not a clip

    found = starter.find_clips(tmp_path)
    assert len(found) == 3 * 4 + 2
    screened = starter.screen(found, progress=False)
    assert (screened.duplicates, screened.low_rate) == (1, 1)
    verdicts = {s: v.reason for s, v in screened.verdicts.items()}
    assert verdicts == {"tuxpaint-da": "ok", "tuxpaint-ca": "cut", "tuxpaint-nl": "noise", "fillets-m": "ok"}
    assert sorted({c.speaker for c in screened.kept}) == ["fillets-m", "tuxpaint-da"]
    assert "b/s0_desc_da" not in " ".join(c.rel_out for c in screened.kept)  # the later copy is the one dropped


def test_validation_voices_include_da_lt_reach_15_percent_and_spare_the_fish():
    durations = {"fillets-m": 2400.0, "fillets-v": 2500.0, "fillets-hs": 200.0, "tuxpaint-da": 300.0,
                 "tuxpaint-lt": 15.0, "tuxpaint-en": 50.0, "tuxpaint-be": 900.0, "tuxpaint-ro": 1500.0}
    valid = starter.choose_valid(durations)
    assert valid[:2] == ["tuxpaint-da", "tuxpaint-lt"]
    assert sum(durations[v] for v in valid) >= 0.15 * sum(durations.values())
    assert not set(valid) & {"fillets-m", "fillets-v", "fillets-hs"}
    assert "tuxpaint-ro" not in valid  # smallest first: stops before the largest voice is needed
    with pytest.raises(SpeechInpaintError, match="tuxpaint-lt"):
        starter.choose_valid({k: v for k, v in durations.items() if k != "tuxpaint-lt"})


def test_starter_without_apt_get_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["data", "starter", "--root", str(tmp_path / "starter")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get not found" in err[0]


@pytest.mark.network
def test_starter_corpus_builds_from_the_debian_archive(tmp_path):
    starter.build_starter(tmp_path, progress=False)
    rows = read_manifest(tmp_path)
    valid = {r.speaker for r in rows if r.split == "valid"}
    assert {"tuxpaint-da", "tuxpaint-lt"} <= valid and not valid & set(starter.MAIN_FILLETS)
    assert {"ca", "nl", "el"}.isdisjoint({r.language for r in rows})
    assert sum(r.duration for r in rows if r.split == "valid") >= 0.15 * sum(r.duration for r in rows)
    assert "GPL" in (tmp_path / "README.md").read_text()


# ---------------------------------------------------------------- VCTK over a local HTTP server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        srv.ranges.append(rng)
        start = 0
        if rng:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.path in srv.cut_once:  # announce everything, send half, hang up
            srv.cut_once.discard(self.path)
            body = body[: len(data) // 2 - start]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.ranges, srv.cut_once = {}, [], set()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _audio_bytes(x: np.ndarray, rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()


SPEAKERS = ("p225", "p226", "p227", "p228", "p229", "p230")


def vctk_archive(clips, release: str) -> bytes:
    """An outer zip holding the inner corpus zip, as DataShare serves both releases; 6 speakers x 2
    real clips at 48 kHz with 0.3 s of room tone either side."""
    real = [c[:SHORT] for c in clips.values()]
    inner = {}
    for s, spk in enumerate(SPEAKERS):
        for u in range(2):
            x = 0.3 * padded(real[(s + u) % len(real)], 48000, 0.3, s * 10 + u)
            if release == "2017":
                inner[f"VCTK-Corpus/wav48/{spk}/{spk}_00{u + 1}.wav"] = _audio_bytes(x, 48000, "WAV")
                inner[f"VCTK-Corpus/txt/{spk}/{spk}_00{u + 1}.txt"] = b"Please call Stella.\n"
            else:
                for mic in (1, 2):
                    inner[f"wav48_silence_trimmed/{spk}/{spk}_00{u + 1}_mic{mic}.flac"] = _audio_bytes(x, 48000, "FLAC")
    name = "VCTK-Corpus.zip" if release == "2017" else "VCTK-Corpus-0.92.zip"
    return _zip({name: _zip(inner), "license_text": b"CC BY 4.0\n"})


@pytest.fixture(scope="module")
def archives(clips):
    """Both releases' archives, built once for the module."""
    return {release: vctk_archive(clips, release) for release in ("2017", "0.92")}


def test_vctk_2017_download_is_resumed_verified_extracted_and_prepared(archives, server, tmp_path):
    data = archives["2017"]
    server.files["/DS_10283_2651.zip"] = data
    server.cut_once.add("/DS_10283_2651.zip")
    url = server.url + "/DS_10283_2651.zip"
    sha = hashlib.sha256(data).hexdigest()

    with pytest.raises(SpeechInpaintError, match="rerun the same command to resume"):
        build_vctk(tmp_path, "2017", url, sha, progress=False)
    part = tmp_path / "download" / "DS_10283_2651.zip.part"
    assert part.stat().st_size == len(data) // 2
    assert not (tmp_path / "original").exists()

    summary = build_vctk(tmp_path, "2017", url, sha, progress=False)
    assert server.ranges == [None, f"bytes={len(data) // 2}-"]
    assert (tmp_path / "download" / "DS_10283_2651.zip").read_bytes() == data and not part.exists()

    # Originals extracted intact (the inner zip is unpacked, then removed) and never touched.
    with zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(io.BytesIO(data)).read("VCTK-Corpus.zip"))) as inner:
        for name in inner.namelist():
            assert (tmp_path / "original" / name).read_bytes() == inner.read(name)
    assert not list((tmp_path / "original").rglob("*.zip"))

    rows = read_manifest(tmp_path)
    assert len(rows) == 12 and {r.speaker for r in rows} == set(SPEAKERS)
    by_speaker = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, set()).add(r.split)
    assert all(len(s) == 1 for s in by_speaker.values())  # speaker-disjoint
    assert sorted(s.pop() for s in by_speaker.values()) == ["test", "train", "train", "train", "train", "valid"]
    for r in rows:
        x, rate = sf.read(str(tmp_path / r.path), dtype="float32")
        assert rate == SAMPLE_RATE and abs(peak_dbfs(x) - PEAK_DBFS) < 0.1
        assert r.duration == pytest.approx(x.size / SAMPLE_RATE, abs=1e-3)
        original = sf.info(str(tmp_path / "original/VCTK-Corpus/wav48" / r.speaker / Path(r.path).with_suffix(".wav").name))
        assert r.duration < original.duration - 0.45  # most of the 0.6 s room tone trimmed
    assert any(line.startswith("train: ") for line in summary)

    # A rerun finds everything in place and writes the same manifest.
    before = (tmp_path / "manifest.csv").read_text()
    build_vctk(tmp_path, "2017", url, sha, progress=False)
    assert (tmp_path / "manifest.csv").read_text() == before and len(server.ranges) == 2


def test_vctk_092_through_the_cli_uses_mic1_only(archives, server, tmp_path, capsys):
    server.files["/DS_10283_3443.zip"] = archives["0.92"]
    code = main(["data", "vctk", "--root", str(tmp_path), "--release", "0.92", "--url", server.url + "/DS_10283_3443.zip"])
    assert code == 0
    with open(tmp_path / "manifest.csv", newline="") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == COLUMNS
        paths = [row[0] for row in reader]
    assert len(paths) == 12 and all(p.endswith("_mic1.wav") for p in paths)
    out = capsys.readouterr().out
    assert re.search(r"train: [\d.]+ h, 8 clips, 4 speakers, 1 languages \(en\)", out)


def test_corrupt_vctk_zip_is_a_clear_error_and_leaves_nothing_extracted(archives, server, tmp_path, capsys):
    data = bytearray(archives["2017"])
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # damage compressed data, keep the central directory
    server.files["/v.zip"] = bytes(data)
    assert main(["data", "vctk", "--root", str(tmp_path), "--url", server.url + "/v.zip"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt archive" in err[-1] and "nothing was extracted" in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download"]
    assert not (tmp_path / "manifest.csv").exists()


def test_vctk_checksum_mismatch_removes_the_download(archives, server, tmp_path):
    server.files["/v.zip"] = archives["2017"]
    with pytest.raises(SpeechInpaintError, match="does not match"):
        build_vctk(tmp_path, "2017", server.url + "/v.zip", "0" * 64, progress=False)
    assert list((tmp_path / "download").iterdir()) == []
    with pytest.raises(SpeechInpaintError, match="HTTP 404"):
        build_vctk(tmp_path / "x", "2017", server.url + "/missing.zip", progress=False)


# ---------------------------------------------------------------- any folder


def test_folder_corpus_recurses_reads_any_format_and_takes_speaker_from_parent(clips, tmp_path, capsys):
    src = tmp_path / "mine"
    real = [c[:SHORT] for c in clips.values()]
    for i, spk in enumerate(("alice", "bob", "carol", "dave")):
        x = 0.4 * padded(real[i], 22050, 0.4, i)
        (src / spk / "day1").mkdir(parents=True)
        sf.write(src / spk / f"{spk}_a.flac", x, 22050)
        _write_ogg(src / spk / "day1" / f"{spk}_b.ogg", x, 22050)
    (src / "alice" / "broken.wav").write_bytes(b"RIFF not really audio")
    with pytest.raises(SpeechInpaintError, match="outside the input"):
        build_folder(src, src / "out", progress=False)
    summary = build_folder(src, tmp_path / "prepared", language="xx", progress=False)
    assert "skipped 1 of 9 files" in capsys.readouterr().out
    rows = read_manifest(tmp_path / "prepared")
    assert len(rows) == 8
    assert {r.path: r.speaker for r in rows}["alice/day1/alice_b.wav"] == "day1"
    assert {r.speaker for r in rows} == {"alice", "bob", "carol", "dave", "day1"}
    for r in rows:
        info = sf.info(str(tmp_path / "prepared" / r.path))
        assert info.samplerate == SAMPLE_RATE and r.language == "xx"
    splits = {}
    for r in rows:
        splits.setdefault(r.speaker, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert len(summary) == 3  # 5 speakers: train, valid and test each get at least one
