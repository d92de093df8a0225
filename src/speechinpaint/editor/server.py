"""The HTTP side of `speechinpaint edit`: a FastAPI app serving the page (static/) and its API.

`create_app(path)` builds the app (documents in memory, one worker for restore and detection jobs);
`serve` runs it with uvicorn on 127.0.0.1 unless told otherwise. Every 4xx answer is JSON
{"detail": "one sentence"}; the user's input file is read once and never written. The endpoints are
listed in the package docstring.
"""

from __future__ import annotations

import math
import mimetypes
import re
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SpeechInpaintError
from .documents import (DEFAULT_MEMORY_BUDGET, Document, Documents, Restorers, Worker, encode_file, make_view,
                        output_name, probability_json, probability_png, read_upload, report, safe_name,
                        spectrogram_png, wav_bytes)

STATIC = Path(__file__).parent / "static"
# The largest upload by default: an hour of 48 kHz stereo 16-bit audio (about 691 MB).
DEFAULT_MAX_UPLOAD = 3600 * 48000 * 2 * 2
# Beyond the audio file itself a multipart body holds its envelope and the mask text.
ENVELOPE_BYTES = 1024 * 1024
MAX_MASK_BYTES = ENVELOPE_BYTES
STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# Methods that change the server's state: only the page itself (its own origin) may send them.
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Sec-Fetch-Site values a browser sends for the page's own requests and for ones the user started.
OWN_FETCH_SITES = {"same-origin", "none"}


class ApiError(Exception):
    """An answer other than 2xx, with one sentence for the page."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class UploadTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuses a request body larger than `limit` bytes, by its Content-Length before
    reading anything, or while it streams in (chunked uploads) as soon as the count passes the limit."""

    def __init__(self, app, limit: int, max_file: int):
        self.app, self.limit, self.max_file = app, limit, max_file

    def too_large(self) -> str:
        return f"the upload is larger than the limit of {self.max_file:,} bytes."

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await JSONResponse({"detail": self.too_large()}, status_code=413)(scope, receive, send)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise UploadTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except UploadTooLarge:
            if not started:
                await JSONResponse({"detail": self.too_large()}, status_code=413)(scope, receive, send)


def host_names(host: str) -> set[str]:
    """The names a request's Host may carry for a server bound to `host`: the loopback names, the address
    bound, and for a wildcard (0.0.0.0, ::) this machine's own name and addresses as well."""
    names = {*LOCAL_HOSTS, host.strip("[]").lower()}
    if host in WILDCARD_HOSTS:
        import socket

        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        try:
            names |= {info[4][0].lower() for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:  # a machine whose name does not resolve: the loopback names still work
            pass
    return names - {""}


def split_host(value: str) -> tuple[str, int | None]:
    """('127.0.0.1', 8765) from '127.0.0.1:8765', ('::1', None) from '[::1]'; ('', None) when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (None if not rest else "bad")
    else:
        name, colon, port = value.partition(":")
        port = port if colon else None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return "", None
    return name, None if port is None else int(port)


class OwnPageOnly:
    """ASGI middleware: the server answers only requests addressed to it by a name it listens under (a
    page on attacker.example that resolves to 127.0.0.1, DNS rebinding, gets 400), and takes requests that
    change state (POST, ...) and API reads only from its own page: a request whose Origin is another one,
    or whose Sec-Fetch-Site says another site sent it, gets 403. Scripts (curl, httpx) send neither header
    and keep working without a token."""

    def __init__(self, app, names: set[str], port: int | None):
        self.app, self.names, self.port = app, names, port

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        name, port = split_host(host)
        default = 443 if scope.get("scheme") == "https" else 80
        if name not in self.names or (self.port is not None and (port or default) != self.port):
            return 400, (f"this editor answers only requests addressed to it (127.0.0.1, localhost or [::1] and "
                         f"its port), not to Host {host!r}")
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{host.strip().lower()}"
        changes = scope.get("method", "GET").upper() in STATE_CHANGING
        if site is not None and site.lower() not in OWN_FETCH_SITES and (changes or scope["path"].startswith("/api/")):
            return 403, f"this editor takes requests only from its own page, not from another site ({site})"
        if changes and origin is not None and origin.strip().lower() != own:
            return 403, f"this editor takes requests only from its own page ({own}), not from {origin!r}"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope)
        if refused is not None:
            return await JSONResponse({"detail": sentence(refused[1])}, status_code=refused[0])(scope, receive, send)
        return await self.app(scope, receive, send)


def sentence(text: str) -> str:
    """One line, ending with a full stop."""
    line = " ".join(str(text).split())
    return line if line.endswith((".", "?", "!")) else line + "."


def create_app(path: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD, device: str = "cpu",
               host: str = "127.0.0.1", port: int | None = None,
               memory_budget: int = DEFAULT_MEMORY_BUDGET) -> FastAPI:
    """The editor's app; with `path`, that file is read once (never written) and offered as document
    'initial'. max_upload_bytes: the largest audio upload accepted (refused while it streams in).
    host, port: what the server listens on; requests addressed elsewhere are refused (port None: any port).
    memory_budget: bytes the open documents may hold before the least recently used are closed."""
    documents = Documents(memory_budget)
    restorers = Restorers(device)
    worker = Worker(restorers)
    if path is not None:
        documents.add(Path(path).name, read_upload(Path(path), str(path)), "initial")

    app = FastAPI(title="speechinpaint edit", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.documents, app.state.worker, app.state.restorers = documents, worker, restorers
    app.add_middleware(BodyLimit, limit=max_upload_bytes + ENVELOPE_BYTES, max_file=max_upload_bytes)
    app.add_middleware(OwnPageOnly, names=host_names(host), port=port)  # added last: it runs first

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return JSONResponse({"detail": sentence(exc.detail)}, status_code=exc.status)

    @app.exception_handler(SpeechInpaintError)
    async def user_error(request, exc: SpeechInpaintError):
        return JSONResponse({"detail": sentence(str(exc))}, status_code=400)

    @app.exception_handler(LookupError)
    async def not_found(request, exc: LookupError):
        return JSONResponse({"detail": sentence(exc.args[0] if exc.args else "not found")}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request, exc: RequestValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "the request"
            detail = f"{where}: {first.get('msg', 'invalid value')}"
        else:
            detail = "the request's parameters are invalid"
        return JSONResponse({"detail": sentence(detail)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is nothing at {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed at {request.url.path}"
        return JSONResponse({"detail": sentence(detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request, exc: Exception):
        return JSONResponse({"detail": sentence(f"internal error: {type(exc).__name__}: {exc}")}, status_code=500)

    # --- the page ------------------------------------------------------------------------------------

    def static_file(name: str) -> Response:
        target = STATIC / name
        if not STATIC_NAME.match(name) or name not in _listing() or not target.is_file():
            raise ApiError(404, f"there is no file {name!r} in the editor's static folder")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            kind = "text/javascript"
        return FileResponse(target, media_type=kind, headers={"Cache-Control": "no-cache"})

    def _listing() -> set[str]:
        return {p.name for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else set()

    @app.get("/")
    def page():
        return static_file("index.html")

    @app.get("/static/{name}")
    def static(name: str):
        return static_file(name)

    # --- uploads -------------------------------------------------------------------------------------

    async def form(request: Request):
        kind = request.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise ApiError(400, "send the audio as multipart/form-data with the file in the field 'audio'")
        try:
            return await request.form(max_files=2, max_fields=8, max_part_size=MAX_MASK_BYTES)
        except UploadTooLarge:
            raise
        except Exception as exc:  # python-multipart and starlette raise several types for a broken body
            raise ApiError(400, f"the multipart body cannot be read ({exc})") from None

    def upload_of(data, field: str = "audio") -> tuple[tempfile.TemporaryDirectory, Path, str]:
        """(temp folder, the upload saved in it under its own name, that name); empty uploads refused."""
        item = data.get(field)
        if item is None or isinstance(item, str) or not hasattr(item, "file"):
            raise ApiError(400, f"the request needs an audio file in the multipart field '{field}'")
        name = safe_name(item.filename)
        item.file.seek(0, 2)
        size = item.file.tell()
        item.file.seek(0)
        if size == 0:
            raise ApiError(400, f"{name}: the upload is empty")
        if size > max_upload_bytes:
            raise ApiError(413, f"the upload is larger than the limit of {max_upload_bytes:,} bytes")
        tmp = tempfile.TemporaryDirectory(prefix="speechinpaint-edit-")
        target = Path(tmp.name) / ("upload" + Path(name).suffix.lower()[:10])
        with open(target, "wb") as out:
            shutil.copyfileobj(item.file, out, 1024 * 1024)
        return tmp, target, name

    def read_form_upload(data) -> tuple[str, object]:
        tmp, target, name = upload_of(data)
        try:
            return name, read_upload(target, name)
        finally:
            tmp.cleanup()

    # --- one-shot endpoints --------------------------------------------------------------------------

    def _detector(threshold: float | None = None):
        from ..detection import shipped_detector
        from ..hole_detector import HoleDetector

        detector = shipped_detector(device)
        if threshold is not None:
            if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
                raise ApiError(422, f"threshold must be a number between 0 and 1 (got {threshold!r})")
            detector = HoleDetector(detector.model, threshold=float(threshold), device=device)
        return detector

    def _detect(signal: np.ndarray, rate: int, kinds=None, threshold: float | None = None):
        from ..detection import KINDS, detect_signal

        return detect_signal(signal, rate, tuple(kinds) if kinds is not None else KINDS, _detector(threshold), device)

    @app.post("/api/detect")
    async def detect_upload(request: Request):
        data = await form(request)
        name, recording = await run_sync(read_form_upload, data)
        found = await run_sync(_detect, recording.samples, recording.sample_rate)
        return found.mask.to_json()

    @app.post("/api/restore")
    async def restore_upload(request: Request):
        data = await form(request)
        mask_text = data.get("mask")
        if mask_text is None or not isinstance(mask_text, str):
            raise ApiError(400, "the request needs the mask JSON as text in the multipart field 'mask'")
        method = data.get("method") or "model"
        check_method(method)
        name, recording = await run_sync(read_form_upload, data)
        doc = Document("upload", name, recording)
        mask = doc.mask(mask_text)

        def work():
            from ..audio import check_signal

            check_signal(recording.samples.mean(axis=0).astype(np.float32), name)
            with restorers.lock:
                restored = restorers.restore(recording.samples, recording.sample_rate, mask, {}, None, method)
            target = output_name(name, recording.container)
            return target, encode_file(restored, recording.sample_rate, recording.subtype, target)

        target, body = await run_sync(work)
        return Response(body, media_type=mimetypes.guess_type(target)[0] or "application/octet-stream",
                        headers={"Content-Disposition": disposition(restored_name(target))})

    def check_method(method) -> None:
        from ..restorers import METHODS, NEEDS_REFERENCE

        if not isinstance(method, str) or method not in METHODS:
            raise ApiError(422, f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if method in NEEDS_REFERENCE:
            raise ApiError(422, f"the {method} method needs the clean reference, which the editor does not take")

    # --- documents -----------------------------------------------------------------------------------

    @app.post("/api/documents")
    async def open_document(request: Request):
        data = await form(request)
        name, recording = await run_sync(read_form_upload, data)
        return documents.add(name, recording).info()

    @app.get("/api/documents/initial")
    def initial_document():
        # 204, not 404, when no FILE was given: the page asks on every load, and a browser logs a 404
        # as an error the user sees.
        if "initial" not in documents.by_id and "initial" not in documents.closed:
            return Response(status_code=204)
        return documents.get("initial").info()

    @app.get("/api/documents/{doc_id}")
    def document_info(doc_id: str):
        return documents.get(doc_id).info()

    def channel_of(doc: Document, channel: int) -> int:
        if not 0 <= channel < doc.recording.channels:
            raise ApiError(422, f"channel must lie in 0 .. {doc.recording.channels - 1} (got {channel})")
        return channel

    @app.get("/api/documents/{doc_id}/spectrogram.png")
    def spectrogram(doc_id: str, which: str = "original", channel: int = 0, version: int | None = None,
                    t0: float | None = None, t1: float | None = None, f0: float | None = None,
                    f1: float | None = None, width: int | None = None, height: int | None = None,
                    db_min: float | None = None, db_max: float | None = None, scale: str | None = None):
        doc = documents.get(doc_id)
        view = make_view(doc.duration, doc.rate / 2, t0, t1, f0, f1, width, height, db_min, db_max, scale)
        x = doc.samples(which, version)[channel_of(doc, channel)]
        return Response(spectrogram_png(x, doc.rate, view), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/documents/{doc_id}/probability.png")
    def probability_image(doc_id: str, channel: int = 0, t0: float | None = None, t1: float | None = None,
                          f0: float | None = None, f1: float | None = None, width: int | None = None,
                          height: int | None = None, style: str = "gray", scale: str | None = None):
        doc = documents.get(doc_id)
        if style not in ("gray", "alpha"):
            raise ApiError(422, f"style must be gray or alpha (got {style!r})")
        view = make_view(doc.duration, doc.rate / 2, t0, t1, f0, f1, width, height, scale=scale)
        return Response(probability_png(doc, channel_of(doc, channel), view, style), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/documents/{doc_id}/probability")
    def probability(doc_id: str, channel: int = 0, t0: float | None = None, t1: float | None = None):
        doc = documents.get(doc_id)
        view = make_view(doc.duration, doc.rate / 2, t0, t1)
        return probability_json(doc, channel_of(doc, channel), view.t0, min(view.t1, doc.duration))

    async def json_body(request: Request) -> dict:
        try:
            body = await request.json()
        except UploadTooLarge:
            raise
        except Exception:
            raise ApiError(400, "the request body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    @app.post("/api/documents/{doc_id}/detect")
    async def detect_document(doc_id: str, request: Request):
        doc = documents.get(doc_id)
        body = await json_body(request)
        kinds = body.get("kinds")
        if kinds is not None and not (isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)):
            raise ApiError(422, "kinds must be a list such as [\"holes\", \"gaps\", \"band\"]")
        threshold = body.get("threshold")
        # What would fail at once fails here, as a 4xx: unknown kinds, a bad threshold, audio that is too
        # short, silent or not finite. The detection itself runs as a job on the worker.
        from ..detection import KINDS, _check_detectable, detect_signal

        chosen = tuple(kinds) if kinds is not None else KINDS
        unknown = sorted(set(chosen) - set(KINDS))
        if unknown or not chosen:
            raise ApiError(400, f"kinds takes some of {', '.join(KINDS)} (got {', '.join(chosen) or 'nothing'})")
        detector = _detector(threshold)
        await run_sync(lambda: [_check_detectable(channel, doc.rate) for channel in doc.recording.samples])

        def work(progress):
            found = detect_signal(doc.recording.samples, doc.rate, chosen, detector, device, progress)
            return {"mask": found.mask.to_json(), "summary": found.summary()}

        return {"job": worker.submit_detect(doc, work).id}

    def methods_of(doc_mask, methods) -> dict[int, str]:
        if methods is None:
            return {}
        if not isinstance(methods, dict):
            raise ApiError(422, "methods must be an object mapping region indices to method names")
        out = {}
        for key, method in methods.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ApiError(422, f"methods: {key!r} is not a region index") from None
            if not 0 <= index < len(doc_mask.regions):
                raise ApiError(422, f"methods: region {index} does not exist (the mask has {len(doc_mask.regions)} regions)")
            check_method(method)
            out[index] = method
        return out

    async def mask_of(doc, request: Request):
        """(JSON body, the document's Mask from its "mask" field) of a request."""
        body = await json_body(request)
        if "mask" not in body:
            raise ApiError(422, "the request body needs the mask as {\"mask\": ...}")
        return body, doc.mask(body["mask"])

    @app.post("/api/documents/{doc_id}/restore")
    async def restore_document(doc_id: str, request: Request):
        doc = documents.get(doc_id)
        body, mask = await mask_of(doc, request)
        methods = methods_of(mask, body.get("methods"))
        job = worker.submit(doc, mask, methods)
        return {"job": job.id}

    @app.post("/api/documents/{doc_id}/restored/undo")
    def undo(doc_id: str):
        return step(doc_id, -1)

    @app.post("/api/documents/{doc_id}/restored/redo")
    def redo(doc_id: str):
        return step(doc_id, +1)

    def step(doc_id: str, delta: int):
        doc = documents.get(doc_id)
        try:
            doc.step(delta)
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None
        return doc.info()

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: str):
        return worker.get(job_id).info()

    @app.post("/api/jobs/{job_id}/cancel")
    def job_cancel(job_id: str):
        job = worker.get(job_id)
        worker.cancel(job)
        return job.info()

    @app.get("/api/documents/{doc_id}/audio.wav")
    def audio(doc_id: str, which: str = "original", t0: float | None = None, t1: float | None = None,
              channel: int | None = None, version: int | None = None):
        doc = documents.get(doc_id)
        samples = doc.samples(which, version)
        if channel is not None:
            samples = samples[channel_of(doc, channel)][None]
        start = 0.0 if t0 is None else t0
        stop = doc.duration if t1 is None else t1
        if not (math.isfinite(start) and math.isfinite(stop) and 0.0 <= start < stop):
            raise ApiError(422, f"the time range needs 0 <= t0 < t1 (got t0={t0}, t1={t1})")
        a, b = int(round(start * doc.rate)), min(samples.shape[1], int(round(stop * doc.rate)))
        if a >= samples.shape[1]:
            raise ApiError(422, f"t0={start} lies beyond the end of the document ({doc.duration:.3f} s)")
        return Response(wav_bytes(samples[:, a:b], doc.rate), media_type="audio/wav",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/documents/{doc_id}/download")
    def download(doc_id: str, version: int | None = None):
        doc = documents.get(doc_id)
        samples = doc.samples("restored", version)
        target = output_name(doc.name, doc.recording.container)
        body = encode_file(samples, doc.rate, doc.recording.subtype, target)
        return Response(body, media_type=mimetypes.guess_type(target)[0] or "application/octet-stream",
                        headers={"Content-Disposition": disposition(restored_name(target))})

    @app.post("/api/documents/{doc_id}/report")
    async def report_document(doc_id: str, request: Request):
        doc = documents.get(doc_id)
        _, mask = await mask_of(doc, request)
        return await run_sync(report, doc, mask, lambda signal: _detect(signal, doc.rate))

    return app


async def run_sync(function, *args):
    """A blocking call on a worker thread, so the server keeps answering (job polls) meanwhile."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def restored_name(name: str) -> str:
    path = Path(name)
    return f"{path.stem}_restored{path.suffix}"


def disposition(name: str) -> str:
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def serve(path: str | None = None, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Run the editor until interrupted: print its URL (and a warning when it listens beyond this machine)."""
    import socket

    import uvicorn

    app = create_app(path, max_upload_bytes, host=host, port=port, memory_budget=memory_budget)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SpeechInpaintError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    print(f"speechinpaint edit: open {url} (Ctrl+C stops)", flush=True)
    if host not in LOCAL_HOSTS:
        print(f"speechinpaint edit: note: listening on {host}, so the page is reachable from the network: anyone "
              "who can reach this port can open, restore and download audio here", flush=True)
    if open_browser:
        import webbrowser

        local = url if host not in ("0.0.0.0", "::") else f"http://127.0.0.1:{port}/"
        threading.Timer(1.0, webbrowser.open, args=(local,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
