"""The HTTP API of `speechinpaint edit` (editor/server.py): the contract the page codes against, restores
byte-identical to `speechinpaint restore`, safe static files, bounded uploads, one restore at a time,
cancellation, views, and the user's file never written."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speechinpaint.audio import read_recording
from speechinpaint.editor.server import create_app
from speechinpaint.masks import Mask, Region, gap_sample_mask
from speechinpaint.recording import restore_signal
from speechinpaint.restorers import ZeroRestorer, restore_files

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def initial(tmp_path_factory) -> Path:
    """A copy of a bundled clip, opened as the command line's FILE."""
    path = tmp_path_factory.mktemp("initial") / "take.wav"
    shutil.copy(DATA / "da_7spoke.wav", path)
    return path


def local_client(app) -> TestClient:
    """A client addressing the app as the page does, at 127.0.0.1 (the server refuses other Hosts)."""
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def client(initial) -> TestClient:
    return local_client(create_app(str(initial)))


def upload(client, url, path: Path, name: str | None = None, **fields):
    files = {"audio": (name or path.name, path.read_bytes(), "application/octet-stream")}
    return client.post(url, files=files, data=fields)


def open_doc(client, path: Path, name: str | None = None) -> dict:
    r = upload(client, "/api/documents", path, name)
    assert r.status_code == 200, r.text
    return r.json()


def wait_job(client, job: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}").json()
        if state["state"] in ("done", "cancelled", "failed"):
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job} did not finish")


def one_sentence(r, status: int | tuple[int, ...]) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    detail = body["detail"]
    assert "\n" not in detail and "Traceback" not in detail and detail.endswith("."), detail
    return detail


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_pixels(data: bytes) -> np.ndarray:
    """uint8 [height, width * samples per pixel] of our own PNGs (filter 0, one IDAT)."""
    width, height = png_size(data)
    at, idat = 8, b""
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, -1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def gaps_file(tmp_path: Path, name: str = "gaps.wav", channels: int = 1, subtype: str = "PCM_16") -> tuple[Path, Mask]:
    """A 16 kHz clip with three 20 ms packets zeroed in each channel, and its mask."""
    x, rate = sf.read(DATA / "da_mars.wav", dtype="float64")
    signal = np.stack([x * (0.9 - 0.2 * c) for c in range(channels)])
    regions = []
    for t in (0.6, 1.2, 1.9):
        a, b = int(t * rate), int(t * rate) + 320
        signal[:, a:b] = 0.0
        regions.append(Region(a / rate, b / rate, 0.0, rate / 2))
    path = tmp_path / name
    sf.write(path, signal.T, rate, subtype=subtype)
    return path, Mask(rate, signal.shape[1], regions)


def holes_mask(path: Path) -> Mask:
    info = sf.info(str(path))
    n, rate = info.frames, info.samplerate
    return Mask(rate, n, [Region(0.5, 0.9, 500.0, 2500.0), Region(1.4, 1.7, 3000.0, 6000.0)])


def test_the_page_and_its_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "html" in r.headers["content-type"]
    static = Path(__file__).parents[1] / "src" / "speechinpaint" / "editor" / "static"
    for name in [p.name for p in static.iterdir() if p.is_file()]:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.content == (static / name).read_bytes()


@pytest.mark.parametrize("url", [
    "/static/%2e%2e%2fserver.py", "/static/..%2Fserver.py", "/static/%2e%2e%2f%2e%2e%2fcli.py",
    "/static/..%5cserver.py", "/static/..\\server.py", "/static/%5C..%5Cserver.py", "/static/%2Fetc%2Fpasswd",
    "/static//etc/passwd", "/static/C:%5Cwindows%5Cwin.ini", "/static/",
    "/static/%2e%2e", "/static/.hidden", "/static/index.html%00.py", "/static/sub/index.html",
    "/static/nothing-here.js",
])
def test_static_refuses_anything_outside_its_folder(client, url):
    r = client.get(url)
    one_sentence(r, 404)
    assert b"import" not in r.content and b"root:" not in r.content


def test_documents_describe_the_file_in_its_own_terms(client, initial):
    info = client.get("/api/documents/initial").json()
    assert info == {**info, "id": "initial", "name": "take.wav", "sample_rate": 16000, "channels": 1,
                    "num_samples": 48298, "subtype": "PCM_16", "container": "WAV", "version": 0}
    assert info["duration"] == pytest.approx(48298 / 16000)
    doc = open_doc(client, DATA / "da_mars_44k.flac", "../../evil\\name.flac")
    assert doc["name"] == "name.flac" and doc["id"] != "initial"
    assert (doc["sample_rate"], doc["channels"], doc["container"], doc["subtype"]) == (44100, 1, "FLAC", "PCM_16")
    assert client.get(f"/api/documents/{doc['id']}").json() == doc
    # Without a FILE: 204 No Content (a 404 would be logged by the browser as an error on every load).
    r = local_client(create_app()).get("/api/documents/initial")
    assert r.status_code == 204 and r.content == b""


def test_unknown_documents_and_jobs_are_404(client):
    for r in (client.get("/api/documents/nope"), client.get("/api/documents/nope/spectrogram.png"),
              client.get("/api/documents/nope/audio.wav"), client.post("/api/documents/nope/restore", json={}),
              client.get("/api/jobs/nope"), client.post("/api/jobs/nope/cancel"), client.get("/api/nothing")):
        one_sentence(r, 404)


def test_detect_finds_the_lost_packets(client, tmp_path):
    path, mask = gaps_file(tmp_path)
    r = upload(client, "/api/detect", path)
    assert r.status_code == 200, r.text
    found = Mask.from_json(r.json())
    assert (found.sample_rate, found.num_samples) == (mask.sample_rate, mask.num_samples)
    assert np.array_equal(gap_sample_mask(found), gap_sample_mask(mask))
    doc = open_doc(client, path)
    r = client.post(f"/api/documents/{doc['id']}/detect", json={"kinds": ["gaps"], "threshold": 0.6})
    assert r.status_code == 200 and set(r.json()) == {"job"}
    state = wait_job(client, r.json()["job"])
    assert (state["kind"], state["state"], state["progress"], state["version"]) == ("detect", "done", 1.0, None)
    assert state["result"]["summary"].startswith("3 lost packets (60 ms)")
    assert Mask.from_json(state["result"]["mask"]).regions == found.regions
    # What fails at once is refused at once, as one sentence.
    one_sentence(client.post(f"/api/documents/{doc['id']}/detect", json={"kinds": ["cracks"]}), 400)
    one_sentence(client.post(f"/api/documents/{doc['id']}/detect", json={"threshold": 7}), 422)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(48000), 16000, subtype="PCM_16")
    assert "silent" in one_sentence(client.post(f"/api/documents/{open_doc(client, silent)['id']}/detect", json={}), 400)


def test_a_detection_reports_progress_and_can_be_cancelled(client, tmp_path, speech_of_length):
    """A minute of speech with holes: the holes detector runs it in two chunks, so a detection job reports
    progress strictly between 0 and 1 on the way, stops when cancelled, and otherwise finds what
    detect_signal finds."""
    from speechinpaint.corruptions import corrupt
    from speechinpaint.detection import detect_signal

    audio, _ = corrupt(speech_of_length(60 * 16000), "holes", seed=3)
    path = tmp_path / "minute.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    doc = open_doc(client, path)
    url = f"/api/documents/{doc['id']}/detect"
    job = client.post(url, json={}).json()["job"]
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}").json()
        assert state["state"] in ("queued", "running"), state
        seen.append(state["progress"])
        if 0.0 < state["progress"] < 1.0:
            break
        time.sleep(0.005)
    assert 0.0 < seen[-1] < 1.0 and seen == sorted(seen), seen[-5:]
    assert client.post(f"/api/jobs/{job}/cancel").json()["id"] == job
    state = wait_job(client, job)
    assert state["state"] == "cancelled" and state["result"] is None and state["error"] is None
    # Uncancelled: the same mask as detect_signal on the samples the document holds.
    state = wait_job(client, client.post(url, json={}).json()["job"])
    assert state["state"] == "done" and state["progress"] == 1.0, state
    expected = detect_signal(read_recording(path).samples, 16000)
    assert expected.mask.regions, "the holes were not found"
    assert state["result"] == {"mask": expected.mask.to_json(), "summary": expected.summary()}


@pytest.mark.parametrize("source, subtype, method", [("da_7spoke_44k.flac", None, "interp"),
                                                      ("da_mercury.wav", "PCM_24", "interp"),
                                                      ("da_mercury.wav", None, "model")])
def test_restore_is_byte_identical_to_the_cli(client, tmp_path, source, subtype, method):
    src = tmp_path / source
    if subtype:  # a stereo 24-bit file, to cover channels and sample formats
        x, rate = sf.read(DATA / source, dtype="float64")
        sf.write(src, np.stack([x, 0.5 * x], axis=1), rate, subtype=subtype)
    else:
        shutil.copy(DATA / source, src)
    mask = holes_mask(src)
    mask_path = tmp_path / "m.mask.json"
    mask_path.write_text(json.dumps(mask.to_json()))
    out = tmp_path / ("out" + src.suffix)
    assert restore_files(src, out, method, str(mask_path)) == 0
    fields = {"mask": json.dumps(mask.to_json())} | ({} if method == "model" else {"method": method})
    r = upload(client, "/api/restore", src, **fields)
    assert r.status_code == 200, r.text
    assert r.content == out.read_bytes()
    assert f'filename="{src.stem}_restored{src.suffix}"' in r.headers["content-disposition"]


def test_bad_uploads_are_one_sentence(client, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for url in ("/api/documents", "/api/detect"):
        assert "cannot read audio" in one_sentence(upload(client, url, text), 400)
        assert "empty" in one_sentence(upload(client, url, empty), 400)
        one_sentence(client.post(url, data={"other": "x"}), 400)
        one_sentence(client.post(url, content=b"{}", headers={"content-type": "application/json"}), 400)
        one_sentence(client.post(url, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}), 400)
    clip = DATA / "da_mars.wav"
    assert "mask" in one_sentence(upload(client, "/api/restore", clip), 400)
    assert "not JSON" in one_sentence(upload(client, "/api/restore", clip, mask="{nope"), 400)
    other = Mask(16000, 1000, []).to_json()
    assert "num_samples" in one_sentence(upload(client, "/api/restore", clip, mask=json.dumps(other)), 400)
    n = sf.info(str(clip)).frames
    outside = Mask(16000, n, [Region(0.5, 99.0, 0, 1000)]).to_json()
    assert "outside" in one_sentence(upload(client, "/api/restore", clip, mask=json.dumps(outside)), 400)
    good = json.dumps(Mask(16000, n, []).to_json())
    assert "unknown method" in one_sentence(upload(client, "/api/restore", clip, mask=good, method="magic"), 422)
    assert "reference" in one_sentence(upload(client, "/api/restore", clip, mask=good, method="oracle"), 422)
    doc = client.get("/api/documents/initial").json()["id"]
    one_sentence(client.post(f"/api/documents/{doc}/restore", content=b"[1,", headers={"content-type": "application/json"}), 400)
    one_sentence(client.post(f"/api/documents/{doc}/restore", json={"mask": {"format": "x"}}), 400)
    m = Mask(16000, 48298, [Region(0.5, 0.6, 0, 1000)]).to_json()
    one_sentence(client.post(f"/api/documents/{doc}/restore", json={"mask": m, "methods": {"3": "interp"}}), 422)
    one_sentence(client.post(f"/api/documents/{doc}/restore", json={"mask": m, "methods": {"0": "magic"}}), 422)


def test_uploads_beyond_the_limit_are_refused_while_streaming(tmp_path):
    client = local_client(create_app(max_upload_bytes=4000))
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(700_000, np.int16), 16000, subtype="PCM_16")  # 1.4 MB: beyond limit + envelope
    assert "limit of 4,000 bytes" in one_sentence(upload(client, "/api/documents", big), 413)
    # Beyond the limit, within the envelope: refused once the file part is known.
    one_sentence(upload(client, "/api/documents", DATA / "da_mars.wav"), 413)
    # Chunked, without a Content-Length: refused as the count passes the limit.
    sent = []

    def chunks():
        yield b"--x\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(400):
            sent.append(1)
            yield b"\0" * 65536
        yield b"\r\n--x--\r\n"

    r = client.post("/api/documents", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    one_sentence(r, 413)
    # The test client reads a body before sending it, so the server's own reading is counted at the ASGI level.
    import asyncio

    calls, sent_messages = [], []

    async def receive():
        calls.append(1)
        if len(calls) == 1:
            return {"type": "http.request", "body": chunks().__next__(), "more_body": True}
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": len(calls) < 400}

    async def send(message):
        sent_messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/documents", "raw_path": b"/api/documents", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=x")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    asyncio.run(client.app(scope, receive, send))
    assert sent_messages[0]["status"] == 413 and len(calls) < 40, len(calls)
    small = local_client(create_app(max_upload_bytes=200_000))
    assert small.post("/api/documents", files={"audio": ("a.wav", (DATA / "da_mars.wav").read_bytes())}).status_code == 200


def test_a_gaps_restore_keeps_every_sample_outside_the_gaps(client, tmp_path):
    path, mask = gaps_file(tmp_path, "stereo.wav", channels=2)
    doc = open_doc(client, path)
    url = f"/api/documents/{doc['id']}"
    one_sentence(client.post(f"{url}/restored/undo"), 409)
    r = client.post(f"{url}/restore", json={"mask": mask.to_json(), "methods": {"0": "interp", "1": "interp", "2": "interp"}})
    state = wait_job(client, r.json()["job"])
    assert state["state"] == "done" and state["progress"] == 1.0 and state["error"] is None and state["version"] == 1
    downloaded = tmp_path / "restored.wav"
    r = client.get(f"{url}/download")
    assert r.status_code == 200 and 'filename="stereo_restored.wav"' in r.headers["content-disposition"]
    downloaded.write_bytes(r.content)
    original, restored = read_recording(path), read_recording(downloaded)
    assert (restored.sample_rate, restored.channels, restored.subtype) == (16000, 2, "PCM_16")
    outside = ~gap_sample_mask(mask)
    assert np.array_equal(restored.samples[:, outside], original.samples[:, outside])
    assert not np.array_equal(restored.samples, original.samples)
    # Audio for the browser: the versions, a range of one channel, the delta.
    wav = lambda **q: sf.read(__import__("io").BytesIO(client.get(f"{url}/audio.wav", params=q).content), dtype="float64")
    whole, rate = wav(which="restored")
    assert rate == 16000 and whole.shape == (original.num_samples, 2)
    part, _ = wav(which="original", t0=0.5, t1=1.0, channel=1)
    assert part.shape == (8000,) and np.array_equal(part, original.samples[1, 8000:16000])
    delta, _ = wav(which="delta")
    assert np.allclose(delta[outside], 0.0) and np.abs(delta).max() > 0
    assert np.array_equal(wav(which="restored", version=0)[0], wav(which="original")[0])
    one_sentence(client.get(f"{url}/audio.wav", params={"which": "restored", "version": 5}), 404)
    one_sentence(client.get(f"{url}/audio.wav", params={"which": "sideways"}), 400)
    one_sentence(client.get(f"{url}/audio.wav", params={"t0": 2, "t1": 1}), 422)
    one_sentence(client.get(f"{url}/audio.wav", params={"channel": 2}), 422)
    # Undo and redo move between versions.
    assert client.post(f"{url}/restored/undo").json()["version"] == 0
    assert client.get(f"{url}/download").content == path.read_bytes()
    one_sentence(client.post(f"{url}/restored/undo"), 409)
    assert client.post(f"{url}/restored/redo").json()["version"] == 1
    one_sentence(client.post(f"{url}/restored/redo"), 409)
    # The report: before and after per region, and the detector on the output.
    r = client.post(f"{url}/report", json={"mask": mask.to_json()})
    assert r.status_code == 200, r.text
    rows = r.json()["regions"]
    assert len(rows) == 3 and all(row["after"]["contrast_db"] > row["before"]["contrast_db"] + 1 for row in rows)
    assert "no lost packets" in r.json()["detection"]["summary"] or r.json()["detection"]["summary"] == "nothing found"


def test_each_region_is_restored_by_its_own_method(client, tmp_path):
    src = tmp_path / "mixed.wav"
    shutil.copy(DATA / "da_7spoke.wav", src)
    mask = holes_mask(src)
    doc = open_doc(client, src)
    r = client.post(f"/api/documents/{doc['id']}/restore", json={"mask": mask.to_json(), "methods": {"1": "zero"}})
    assert wait_job(client, r.json()["job"])["state"] == "done"
    rec = read_recording(src)
    first = Mask(mask.sample_rate, mask.num_samples, mask.regions[:1])
    second = Mask(mask.sample_rate, mask.num_samples, mask.regions[1:])
    from speechinpaint.inpainter import Inpainter

    expected = restore_signal(ZeroRestorer(), restore_signal(Inpainter.from_pretrained(), rec.samples, 16000, first),
                              16000, second)
    got, _ = sf.read(__import__("io").BytesIO(client.get(f"/api/documents/{doc['id']}/audio.wav",
                                                         params={"which": "restored"}).content), dtype="float64")
    assert np.array_equal(got, np.clip(np.round(expected[0] * 32768), -32768, 32767) / 32768)


def test_two_tabs_restoring_at_once_get_their_own_results(client, tmp_path):
    docs = []
    for name in ("da_mars.wav", "lt_letters_d_a_b.wav"):
        shutil.copy(DATA / name, tmp_path / name)
        docs.append((open_doc(client, tmp_path / name), tmp_path / name))
    results = {}

    def tab(doc, path):
        mask = holes_mask(path)
        job = client.post(f"/api/documents/{doc['id']}/restore",
                          json={"mask": mask.to_json(), "methods": {"0": "interp", "1": "interp"}}).json()["job"]
        assert wait_job(client, job)["state"] == "done"
        results[doc["id"]] = client.get(f"/api/documents/{doc['id']}/download").content

    threads = [threading.Thread(target=tab, args=pair) for pair in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for doc, path in docs:
        out = tmp_path / ("cli_" + path.name)
        mask_path = tmp_path / "m.mask.json"
        mask_path.write_text(json.dumps(holes_mask(path).to_json()))
        restore_files(path, out, "interp", str(mask_path))
        assert results[doc["id"]] == out.read_bytes()


def test_a_restore_can_be_cancelled(client, tmp_path):
    x, rate = sf.read(DATA / "da_7spoke.wav", dtype="float64")
    path = tmp_path / "eight.wav"
    sf.write(path, np.stack([x] * 8, axis=1), rate, subtype="PCM_16")
    doc = open_doc(client, path)
    mask = holes_mask(path).to_json()
    url = f"/api/documents/{doc['id']}/restore"
    running = client.post(url, json={"mask": mask, "methods": {"0": "interp", "1": "interp"}}).json()["job"]
    queued = client.post(url, json={"mask": mask, "methods": {"0": "interp", "1": "interp"}}).json()["job"]
    assert client.post(f"/api/jobs/{queued}/cancel").json()["state"] == "cancelled"
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{running}").json()["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.005)
    client.post(f"/api/jobs/{running}/cancel")
    assert wait_job(client, running)["state"] == "cancelled"
    assert wait_job(client, queued)["state"] == "cancelled"
    assert client.get(f"/api/documents/{doc['id']}").json()["version"] == 0


def test_the_spectrogram_is_drawn_for_the_view(client):
    url = "/api/documents/initial/spectrogram.png"
    images = {}
    for key, q in {"whole": {}, "early": {"t0": 0, "t1": 1}, "late": {"t0": 1.5, "t1": 2.5},
                   "low": {"t0": 1.5, "t1": 2.5, "f0": 0, "f1": 2000}, "loud": {"db_min": -60, "db_max": -20}}.items():
        r = client.get(url, params={"width": 321, "height": 123, **q})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert png_size(r.content) == (321, 123)
        images[key] = png_pixels(r.content)
        assert images[key].shape == (123, 321 * 3)
    assert len({v.tobytes() for v in images.values()}) == len(images)
    assert png_size(client.get(url).content) == (1024, 256)
    for bad in ({"width": 0}, {"height": 99999}, {"t0": 2, "t1": 1}, {"t0": 50}, {"f0": 3000, "f1": 100},
                {"db_min": 0, "db_max": -10}, {"channel": 1}, {"which": "future"}, {"t0": "nan"}):
        one_sentence(client.get(url, params=bad), (400, 422))
    one_sentence(client.get(url, params={"width": "wide"}), 422)


def test_a_long_document_draws_a_short_view_fast(client, tmp_path):
    long = tmp_path / "long.flac"
    x, rate = sf.read(DATA / "da_7spoke.wav", dtype="float64")
    sf.write(long, np.tile(x, 200), rate, subtype="PCM_16")  # 10 minutes
    doc = open_doc(client, long)
    url = f"/api/documents/{doc['id']}/spectrogram.png"
    start = time.perf_counter()
    r = client.get(url, params={"t0": 300, "t1": 303, "width": 800, "height": 200})
    assert r.status_code == 200 and time.perf_counter() - start < 1.0
    assert png_size(client.get(url, params={"width": 800, "height": 200}).content) == (800, 200)
    r = client.get(f"/api/documents/{doc['id']}/probability.png", params={"t0": 300, "t1": 303, "width": 200, "height": 64})
    assert r.status_code == 200 and png_size(r.content) == (200, 64)
    one_sentence(client.get(f"/api/documents/{doc['id']}/probability.png", params={"width": 200}), 400)


def test_the_detector_probability_covers_the_view(client, tmp_path):
    x, rate = sf.read(DATA / "da_7spoke.wav", dtype="float64")
    grid_hop = 128
    spec_hole = x.copy()
    path = tmp_path / "hole.wav"
    # A zeroed rectangle: 1-2 kHz over 1.0-1.4 s, made on the model grid.
    from speechinpaint.dsp.spectral import MODEL_GRID
    import torch

    spec = MODEL_GRID.stft(torch.from_numpy(spec_hole.astype(np.float32)))
    frames = np.arange(spec.shape[1]) * grid_hop / rate
    bins = MODEL_GRID.bin_freqs()
    sel = torch.from_numpy(((bins >= 1000) & (bins <= 2000))[:, None] & ((frames >= 1.0) & (frames < 1.4))[None, :])
    sf.write(path, MODEL_GRID.istft(spec.masked_fill(sel, 0), len(x)).numpy(), rate, subtype="PCM_16")
    doc = open_doc(client, path)
    url = f"/api/documents/{doc['id']}/probability.png"
    r = client.get(url, params={"t0": 0.5, "t1": 2.0, "f0": 0, "f1": 4000, "width": 150, "height": 80})
    assert r.status_code == 200 and png_size(r.content) == (150, 80)
    gray = png_pixels(r.content).astype(float) / 255
    inside = gray[int(80 * (1 - 1800 / 4000)):int(80 * (1 - 1200 / 4000)), int(150 * 0.6 / 1.5):int(150 * 0.8 / 1.5)]
    assert inside.mean() > 0.5 > gray[:10].mean()
    alpha = png_pixels(client.get(url, params={"width": 40, "height": 20, "style": "alpha"}).content)
    assert alpha.shape == (20, 40 * 4)
    table = client.get(f"/api/documents/{doc['id']}/probability", params={"t0": 0.5, "t1": 2.0}).json()
    p = np.array(table["p"])
    assert p.shape == (len(table["freqs"]), len(table["times"])) and p.shape[0] <= 128 and p.shape[1] <= 512
    assert table["times"][0] >= 0.5 and table["times"][-1] < 2.0 and 0.0 <= p.min() and p.max() <= 1.0


def test_the_input_file_is_never_written(client, initial):
    before = (initial.stat().st_mtime_ns, initial.read_bytes())
    mask = Mask(16000, 48298, [Region(0.5, 0.8, 500, 2000)]).to_json()
    job = client.post("/api/documents/initial/restore", json={"mask": mask, "methods": {"0": "interp"}}).json()["job"]
    assert wait_job(client, job)["state"] == "done"
    assert client.get("/api/documents/initial/download").status_code == 200
    assert client.post("/api/documents/initial/report", json={"mask": mask}).status_code == 200
    assert (initial.stat().st_mtime_ns, initial.read_bytes()) == before
    assert sorted(p.name for p in initial.parent.iterdir()) == ["take.wav"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_cli_prints_its_url_and_serves_the_page(host):
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "speechinpaint.cli", "edit", "--no-browser", "--host", host,
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline()]
        if host != "127.0.0.1":
            lines.append(proc.stdout.readline())
        assert f"http://{host}:{port}/" in lines[0]
        assert ("reachable from the network" in lines[-1]) == (host != "127.0.0.1")
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        assert r.status_code == 200 and "html" in r.headers["content-type"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --- only its own page: Host, Origin and Sec-Fetch-Site against a real server ---------------------------


@pytest.fixture(scope="module")
def live(initial):
    """The editor under uvicorn on 127.0.0.1 (its port known to the app, as `speechinpaint edit` runs it)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(str(initial), port=port), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the editor's server did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_a_foreign_host_is_refused_dns_rebinding(live):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{live}", timeout=10) as http:
        for host in (f"attacker.example:{live}", "attacker.example", f"127.0.0.1.attacker.example:{live}",
                     f"127.0.0.1:{live + 1}", "127.0.0.1", f"localhost:{live}@evil", ""):
            for url in ("/", "/api/documents/initial", "/api/documents/initial/audio.wav"):
                r = http.get(url, headers={"Host": host})
                detail = one_sentence(r, 400)
                assert "addressed to it" in detail and b"RIFF" not in r.content
        for host in (f"127.0.0.1:{live}", f"localhost:{live}", f"LOCALHOST:{live}", f"[::1]:{live}"):
            r = http.get("/api/documents/initial/audio.wav", headers={"Host": host})
            assert r.status_code == 200 and r.content[:4] == b"RIFF", (host, r.status_code)


def test_requests_from_another_origin_cannot_change_anything(live, tmp_path):
    """What a page on another origin sends (a no-cors POST, text/plain JSON, a form upload) is refused; the
    page's own requests and scripts without Origin keep working."""
    import httpx

    own = f"http://127.0.0.1:{live}"
    path, mask = gaps_file(tmp_path)
    body = json.dumps({"mask": mask.to_json(), "methods": {"0": "interp", "1": "interp", "2": "interp"}})
    foreign = [{"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"},
               {"Origin": "http://evil.test:%d" % live, "Sec-Fetch-Site": "cross-site"},
               {"Origin": "null"}, {"Origin": "http://127.0.0.1:9999"}, {"Sec-Fetch-Site": "cross-site"},
               {"Sec-Fetch-Site": "same-site"}]
    with httpx.Client(base_url=own, timeout=30) as http:
        doc = http.post("/api/documents", files={"audio": ("gaps.wav", path.read_bytes())}).json()
        restore = f"/api/documents/{doc['id']}/restore"
        for headers in foreign:
            attempts = [
                http.post(restore, content=body, headers={**headers, "Content-Type": "text/plain"}),
                http.post(f"/api/documents/{doc['id']}/restored/undo", headers=headers),
                http.post(f"/api/documents/{doc['id']}/detect", content="{}", headers=headers),
                http.post("/api/documents", files={"audio": ("x.wav", path.read_bytes())}, headers=headers),
            ]
            for r in attempts:
                assert "own page" in one_sentence(r, 403)
        # A page on another site cannot read the API either (the browser says who sent it).
        one_sentence(http.get(f"/api/documents/{doc['id']}/audio.wav", headers={"Sec-Fetch-Site": "cross-site"}), 403)
        assert http.get(f"/api/documents/{doc['id']}").json()["versions"] == 0  # nothing was restored
        # The page itself, and a script that sends no Origin, still restore and undo.
        page = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
        for headers in (page, {}):
            job = http.post(restore, content=body, headers={**headers, "Content-Type": "application/json"}).json()["job"]
            deadline = time.monotonic() + 60
            while http.get(f"/api/jobs/{job}").json()["state"] not in ("done", "failed", "cancelled"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert http.post(f"/api/documents/{doc['id']}/restored/undo", headers=headers).status_code == 200


def test_documents_beyond_the_memory_budget_are_closed_least_recently_used(tmp_path):
    """Uploads were never freed (three added 270 MB for good); now the least recently used are closed
    beyond the budget, and a closed one's memory is released even after jobs ran on it."""
    import gc
    import weakref

    path, mask = gaps_file(tmp_path, channels=2)
    one = read_recording(path).samples.nbytes
    client = local_client(create_app(memory_budget=int(2.5 * one)))
    first, second = open_doc(client, path)["id"], open_doc(client, path)["id"]
    job = client.post(f"/api/documents/{second}/restore", json={"mask": mask.to_json(), "methods": {"0": "interp"}})
    assert wait_job(client, job.json()["job"])["state"] == "done"
    closed = weakref.ref(client.app.state.documents.get(second))
    assert client.get(f"/api/documents/{first}").status_code == 200  # the first is now the most recently used
    third = open_doc(client, path)["id"]
    detail = one_sentence(client.get(f"/api/documents/{second}"), 404)
    assert "memory budget" in detail
    for doc_id in (first, third):
        assert client.get(f"/api/documents/{doc_id}").status_code == 200
    assert sum(d.nbytes for d in client.app.state.documents.by_id.values()) <= 2.5 * one
    assert client.get(f"/api/jobs/{job.json()['job']}").json()["document"] == second
    # The command line's FILE, once closed, says so (not 204, "no file was given").
    with_file = local_client(create_app(str(path), memory_budget=int(1.5 * one)))
    open_doc(with_file, path)
    assert "memory budget" in one_sentence(with_file.get("/api/documents/initial"), 404)
    deadline = time.monotonic() + 10  # the worker lets go of a job's document just after it ends
    while gc.collect() is not None and closed() is not None:
        assert time.monotonic() < deadline, "the closed document is still held"
        time.sleep(0.05)


def test_a_document_holds_at_most_half_again_its_samples(client, tmp_path):
    """Five restores and their undo history: the versions are held as what they changed, and the oldest
    are dropped before the document passes 1.5 x its decoded samples; the current one is exact."""
    path, mask = gaps_file(tmp_path, channels=2)
    doc_id = open_doc(client, path)["id"]
    doc = client.app.state.documents.get(doc_id)
    size = doc.recording.samples.nbytes
    wide = Mask(mask.sample_rate, mask.num_samples, [Region(0.2, 1.0, 0.0, 4000.0, channel=0)])
    for m in (mask, wide, mask, wide, wide):
        job = client.post(f"/api/documents/{doc_id}/restore", json={"mask": m.to_json(), "methods": {"0": "interp"}})
        assert wait_job(client, job.json()["job"])["state"] == "done"
        client.get(f"/api/documents/{doc_id}")
        assert doc.nbytes <= 1.5 * size, (doc.nbytes, size)
    expected = restore_signal(client.app.state.restorers.get("interp"), doc.recording.samples, doc.rate, wide)
    np.testing.assert_array_equal(doc.samples("restored"), expected)
    # Undo skips what was dropped and reaches the original at last.
    while client.post(f"/api/documents/{doc_id}/restored/undo").status_code == 200:
        pass
    np.testing.assert_array_equal(doc.samples("restored"), doc.recording.samples)


def test_a_deeply_nested_or_misspelt_mask_is_a_4xx(client, tmp_path):
    """A 100000-deep JSON mask was an HTTP 500 (RecursionError); a misspelt key was ignored silently."""
    path, mask = gaps_file(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested too deeply" in one_sentence(upload(client, "/api/restore", path, mask=deep, method="interp"), 400)
    one_sentence(client.post("/api/documents/initial/restore", content='{"mask": ' + deep + "}",
                             headers={"Content-Type": "application/json"}), (400, 422))
    data = mask.to_json()
    data["regions"][0]["chanel"] = 0
    detail = one_sentence(upload(client, "/api/restore", path, mask=json.dumps(data), method="interp"), 400)
    assert "unknown key 'chanel'" in detail
