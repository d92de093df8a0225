// speechinpaint editor: the spectrogram, the mask, detection, restoration and listening, in plain JavaScript.
// Everything is in seconds and Hz; the server draws each view (only the visible range is requested).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MARGIN = { left: 58, right: 10, top: 8, bottom: 30 };
  const HANDLE = 5;              // half size of a resize handle, CSS px
  const MIN_SPAN_T = 0.02;       // s
  const MIN_SPAN_F = 50;         // Hz
  const LOG_FLOOR_HZ = 50;       // the log frequency axis starts here (documents.LOG_FLOOR_HZ)
  const INITIAL_SPAN_T = 30;     // a long file opens on its first 30 s
  const METHODS = {
    hole: ["model", "interp"],
    gap: ["model", "interp", "ar", "opus-deep-plc", "opus-plc"],
    band: ["model", "interp", "sbr"],
  };

  // ---------------------------------------------------------------- state
  const state = {
    doc: null,                   // the server's document description
    view: { t0: 0, t1: 1, f0: 0, f1: 8000 },
    tool: "rect",
    regions: [],                 // {id, t0, t1, f0, f1, channel, method, origin: user|detected, accepted}
    selected: null,              // region id
    nextId: 1,
    restored: null,              // {mask, methods} of the restoration on the server, or null
    which: "original",
    channel: 0,
    logFreq: false,              // frequency axis: log (from LOG_FLOOR_HZ) or linear
    outline: false,              // regions drawn as outlines only, the spectrogram visible under them
    undo: [],
    redo: [],
    busy: new Map(),             // task -> label
    message: "",
    error: false,
    job: null,                   // the restore job on the server, while it runs
    detectJob: null,             // the detection job on the server, while it runs
    detected: false,
  };
  const images = { spec: null, prob: null };  // {bitmap, view, key}
  const requests = { spec: null, prob: null }; // AbortControllers
  let drawQueued = false;
  let fetchTimer = null;
  let taskCounter = 0;

  const canvas = $("spectrogram");
  const ctx = canvas.getContext("2d");

  // ---------------------------------------------------------------- status
  function renderStatus() {
    const el = $("status");
    const labels = [...state.busy.values()];
    let text;
    if (labels.length) text = labels[labels.length - 1] + "…";
    else text = (state.message ? state.message + " · " : "") + "ready";
    el.textContent = text;
    el.classList.toggle("error", state.error && !labels.length);
  }
  function begin(label) {
    const id = ++taskCounter;
    state.busy.set(id, label);
    renderStatus();
    return id;
  }
  function update(id, label) {
    if (state.busy.has(id)) { state.busy.set(id, label); renderStatus(); }
  }
  function end(id, message, error) {
    state.busy.delete(id);
    if (message !== undefined) { state.message = message; state.error = !!error; }
    renderStatus();
  }
  function say(message, error) {
    state.message = message; state.error = !!error; renderStatus();
  }

  // ---------------------------------------------------------------- HTTP
  async function detailOf(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) { /* not JSON */ }
    return `${response.status} ${response.statusText}`;
  }
  async function api(method, url, body, signal) {
    const init = { method, signal };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers = { "Content-Type": "application/json" }; }
    const response = await fetch(url, init);
    if (!response.ok) throw new Error(await detailOf(response));
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : response;
  }
  const docUrl = (suffix) => `/api/documents/${encodeURIComponent(state.doc.id)}/${suffix}`;
  const isAbort = (e) => e && (e.name === "AbortError");

  // ---------------------------------------------------------------- geometry
  function plotRect() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    return { x: MARGIN.left, y: MARGIN.top, w: Math.max(10, w - MARGIN.left - MARGIN.right), h: Math.max(10, h - MARGIN.top - MARGIN.bottom) };
  }
  const nyquist = () => (state.doc ? state.doc.sample_rate / 2 : 8000);
  const duration = () => (state.doc ? state.doc.duration : 1);
  function tToX(t) { const p = plotRect(), v = state.view; return p.x + (t - v.t0) / (v.t1 - v.t0) * p.w; }
  // The share of the view's height below f: linear, or on the log axis from max(f0, LOG_FLOOR_HZ) to f1.
  function logRange(v) { const lo = Math.min(Math.max(v.f0, LOG_FLOOR_HZ), v.f1 / 2); return [Math.log(lo), Math.log(v.f1)]; }
  function fShare(f, v) {
    if (!state.logFreq) return (f - v.f0) / (v.f1 - v.f0);
    const [a, b] = logRange(v);
    return (Math.log(Math.max(f, 1e-3)) - a) / (b - a);
  }
  function fToY(f) { const p = plotRect(), v = state.view; return p.y + p.h - fShare(f, v) * p.h; }
  function xToT(x) { const p = plotRect(), v = state.view; return v.t0 + (x - p.x) / p.w * (v.t1 - v.t0); }
  function yToF(y) {
    const p = plotRect(), v = state.view, share = (p.y + p.h - y) / p.h;
    if (!state.logFreq) return v.f0 + share * (v.f1 - v.f0);
    const [a, b] = logRange(v);
    return Math.exp(a + share * (b - a));
  }
  const clamp = (x, a, b) => Math.min(b, Math.max(a, x));

  function grid() {
    // The server's STFT grid for brush strokes: the model grid's 32 ms window and 8 ms hop at the file's rate
    // (recording.native_grid), unless the server names its own.
    const sr = state.doc ? state.doc.sample_rate : 16000;
    const g = state.doc && state.doc.grid;
    if (g && g.hop && g.n_fft) return { hop: g.hop, n_fft: g.n_fft, sr };
    const hop = Math.max(1, Math.round(128 / 16000 * sr));
    return { hop, n_fft: 4 * hop, sr };
  }

  // refetch: true (after a short pause, for wheel and drag), "now" (buttons and keys), false (no new image)
  function setView(v, refetch = true) {
    const dur = duration(), nyq = nyquist();
    let { t0, t1, f0, f1 } = v;
    let st = clamp(t1 - t0, Math.min(MIN_SPAN_T, dur), dur);
    t0 = clamp(t0, 0, dur - st); t1 = t0 + st;
    let sf = clamp(f1 - f0, Math.min(MIN_SPAN_F, nyq), nyq);
    f0 = clamp(f0, 0, nyq - sf); f1 = f0 + sf;
    state.view = { t0, t1, f0, f1 };
    requestDraw();
    if (refetch) scheduleFetch(refetch === "now");
  }
  function zoom(axis, factor, anchor, refetch = "now") {
    const v = { ...state.view };
    if (axis === "t") {
      const a = anchor === undefined ? (v.t0 + v.t1) / 2 : anchor;
      v.t0 = a - (a - v.t0) * factor; v.t1 = a + (v.t1 - a) * factor;
      if (v.t1 - v.t0 < MIN_SPAN_T) { v.t0 = a - MIN_SPAN_T / 2; v.t1 = a + MIN_SPAN_T / 2; }
    } else {
      const a = anchor === undefined ? (v.f0 + v.f1) / 2 : anchor;
      v.f0 = a - (a - v.f0) * factor; v.f1 = a + (v.f1 - a) * factor;
      if (v.f1 - v.f0 < MIN_SPAN_F) { v.f0 = a - MIN_SPAN_F / 2; v.f1 = a + MIN_SPAN_F / 2; }
    }
    setView(v, refetch);
  }
  function pan(dt, df, refetch = "now") {
    const v = state.view;
    setView({ t0: v.t0 + dt, t1: v.t1 + dt, f0: v.f0 + df, f1: v.f1 + df }, refetch);
  }
  function fit() { setView({ t0: 0, t1: duration(), f0: 0, f1: nyquist() }, "now"); }

  // ---------------------------------------------------------------- images
  function viewQuery(extra) {
    const p = plotRect(), dpr = window.devicePixelRatio || 1, v = state.view;
    const q = new URLSearchParams({
      channel: String(state.channel), t0: v.t0.toFixed(6), t1: v.t1.toFixed(6), f0: v.f0.toFixed(3), f1: v.f1.toFixed(3),
      width: String(Math.round(p.w * dpr)), height: String(Math.round(p.h * dpr)),
      scale: state.logFreq ? "log" : "linear", ...extra,
    });
    return q;
  }
  function scheduleFetch(now) {
    // now: at once, so the status is busy before whatever asked for it reports ready
    clearTimeout(fetchTimer);
    if (now) fetchImages();
    else fetchTimer = setTimeout(fetchImages, 120);
  }
  function fetchImages() {
    if (!state.doc) return;
    const dbMin = parseFloat($("db-min").value), dbMax = parseFloat($("db-max").value);
    const specQ = viewQuery({ which: state.which });
    if (state.which !== "original" && state.restored) specQ.set("version", String(state.restored.version));
    if (isFinite(dbMin) && isFinite(dbMax) && dbMin < dbMax) { specQ.set("db_min", String(dbMin)); specQ.set("db_max", String(dbMax)); }
    fetchImage("spec", docUrl("spectrogram.png?") + specQ.toString(), "drawing the spectrogram");
    if ($("show-probability").checked) fetchImage("prob", docUrl("probability.png?") + viewQuery({ style: "alpha" }).toString(), "drawing the holes probability");
    else images.prob = null;
  }
  async function fetchImage(kind, url, label) {
    if (images[kind] && images[kind].url === url) return;
    if (requests[kind]) requests[kind].abort();
    const controller = new AbortController();
    requests[kind] = controller;
    const view = { ...state.view };
    const task = begin(label);
    try {
      const response = await fetch(url, { signal: controller.signal });
      if (!response.ok) throw new Error(await detailOf(response));
      const blob = await response.blob();
      let bitmap = await createImageBitmap(blob);
      if (kind === "prob") bitmap = await heatMap(bitmap);
      if (requests[kind] === controller) {
        images[kind] = { bitmap, view, url };
        requestDraw();
      }
      end(task);
    } catch (e) {
      if (isAbort(e)) end(task);
      else end(task, `cannot draw the ${kind === "spec" ? "spectrogram" : "probability"}: ${e.message}`, true);
    } finally {
      if (requests[kind] === controller) requests[kind] = null;
    }
  }
  // The probability PNG (grey or alpha) as a heat map: transparent at 0, orange to yellow towards 1; above the
  // threshold it is stronger, so what the detector would mark stands out.
  async function heatMap(bitmap) {
    const off = document.createElement("canvas");
    off.width = bitmap.width; off.height = bitmap.height;
    const c = off.getContext("2d");
    c.drawImage(bitmap, 0, 0);
    const img = c.getImageData(0, 0, off.width, off.height), d = img.data;
    let opaque = true;
    for (let i = 3; i < d.length; i += 4 * 97) if (d[i] < 255) { opaque = false; break; }
    const threshold = parseFloat($("threshold").value);
    for (let i = 0; i < d.length; i += 4) {
      const p = (opaque ? d[i] : d[i + 3]) / 255;
      d[i] = 0; d[i + 1] = Math.round(140 + 115 * p); d[i + 2] = 255;
      d[i + 3] = Math.round(255 * (p >= threshold ? 0.2 + 0.2 * p : 0.15 * p));
    }
    c.putImageData(img, 0, 0);
    return createImageBitmap(off);
  }

  // ---------------------------------------------------------------- drawing
  function requestDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; draw(); });
  }
  function resizeCanvas() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr), h = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  }
  function drawImageInView(entry) {
    // An image drawn for an earlier view, placed where its range lies now (smooth zoom and pan while the
    // new one is on its way).
    const iv = entry.view;
    const x0 = tToX(iv.t0), x1 = tToX(iv.t1), y0 = fToY(iv.f1), y1 = fToY(iv.f0);
    ctx.drawImage(entry.bitmap, x0, y0, x1 - x0, y1 - y0);
  }
  function niceStep(span, target) {
    const raw = span / Math.max(1, target);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  function formatTime(t, step) {
    const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(step) + 1e-9)));
    if (t >= 60 && step >= 1) {
      const m = Math.floor(t / 60), s = t - m * 60;
      return `${m}:${s.toFixed(0).padStart(2, "0")}`;
    }
    return t.toFixed(digits);
  }
  function formatFreq(f, step) {
    if (step >= 1000 || (f >= 1000 && step % 100 === 0 && step >= 500)) return (f / 1000).toFixed(step >= 1000 ? 0 : 1) + "k";
    return f.toFixed(0);
  }
  function draw() {
    resizeCanvas();
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = canvas.clientWidth, H = canvas.clientHeight, p = plotRect(), v = state.view;
    ctx.fillStyle = "#0b0c0f"; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#000"; ctx.fillRect(p.x, p.y, p.w, p.h);
    if (!state.doc) {
      ctx.fillStyle = "#8a90a0"; ctx.font = "14px system-ui, sans-serif"; ctx.textAlign = "center";
      ctx.fillText("Open an audio file to begin", p.x + p.w / 2, p.y + p.h / 2);
      return;
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(p.x, p.y, p.w, p.h); ctx.clip();
    ctx.imageSmoothingEnabled = true;
    if (images.spec) drawImageInView(images.spec);
    if (images.prob && $("show-probability").checked) drawImageInView(images.prob);
    drawRegions();
    if (drag && drag.preview) drawPreview(drag.preview);
    if (drag && drag.cells) drawCells(drag);
    drawPlayhead();
    if (brushCursor && (state.tool === "brush" || state.tool === "erase")) {
      ctx.strokeStyle = state.tool === "erase" || brushCursor.alt ? "#ff8a4f" : "#ffffff";
      ctx.lineWidth = 1; ctx.beginPath();
      ctx.arc(brushCursor.x, brushCursor.y, brushRadius(), 0, 2 * Math.PI); ctx.stroke();
    }
    ctx.restore();
    drawAxes(p, v, W, H);
  }
  function drawAxes(p, v, W, H) {
    ctx.strokeStyle = "#5a606c"; ctx.lineWidth = 1;
    ctx.strokeRect(p.x + 0.5, p.y + 0.5, p.w - 1, p.h - 1);
    ctx.fillStyle = "#b8bcc6"; ctx.font = "11px system-ui, sans-serif";
    // time
    const ts = niceStep(v.t1 - v.t0, p.w / 90);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let t = Math.ceil(v.t0 / ts) * ts; t <= v.t1 + 1e-9; t += ts) {
      const x = Math.round(tToX(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, p.y + p.h); ctx.lineTo(x, p.y + p.h + 5); ctx.stroke();
      ctx.fillText(formatTime(t, ts), x, p.y + p.h + 7);
    }
    ctx.textAlign = "right"; ctx.fillText("s", W - 2, p.y + p.h + 17);
    // frequency
    const fs = niceStep(v.f1 - v.f0, p.h / 40);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    const ticks = [];
    if (state.logFreq) {  // 1, 2, 5 in each decade
      for (let d = 10; d <= v.f1; d *= 10) for (const m of [1, 2, 5]) if (m * d >= v.f0 && m * d <= v.f1) ticks.push(m * d);
    } else for (let f = Math.ceil(v.f0 / fs) * fs; f <= v.f1 + 1e-6; f += fs) ticks.push(f);
    for (const f of ticks) {
      const y = Math.round(fToY(f)) + 0.5;
      ctx.beginPath(); ctx.moveTo(p.x - 5, y); ctx.lineTo(p.x, y); ctx.stroke();
      ctx.fillText(state.logFreq ? formatFreq(f, f >= 1000 ? 1000 : 1) : formatFreq(f, fs), p.x - 7, y);
    }
    ctx.save(); ctx.translate(11, p.y + p.h / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center";
    ctx.fillText("Hz", 0, 0); ctx.restore();
  }
  function regionBox(r) {
    const x0 = tToX(r.t0), x1 = tToX(r.t1), y0 = fToY(r.f1), y1 = fToY(r.f0);
    return { x0, x1, y0, y1 };
  }
  function visibleOnChannel(r) { return r.channel === undefined || r.channel === null || r.channel === state.channel; }
  function drawRegions() {
    for (const r of state.regions) {
      if (!visibleOnChannel(r)) continue;
      const b = regionBox(r), sel = r.id === state.selected;
      const color = r.origin === "detected" && !r.accepted ? "255,138,79" : r.accepted ? "95,211,141" : "79,163,255";
      if (!state.outline) {
        ctx.fillStyle = `rgba(${color},${sel ? 0.28 : 0.14})`;
        ctx.fillRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      }
      ctx.strokeStyle = `rgba(${color},${sel ? 1 : 0.8})`; ctx.lineWidth = sel ? 2 : 1;
      ctx.strokeRect(b.x0 + 0.5, b.y0 + 0.5, b.x1 - b.x0 - 1, b.y1 - b.y0 - 1);
      if (sel) for (const h of handles(r)) {
        ctx.fillStyle = "#fff"; ctx.fillRect(h.x - HANDLE, h.y - HANDLE, 2 * HANDLE, 2 * HANDLE);
      }
    }
  }
  function drawPreview(r) {
    const b = regionBox(r);
    ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
    ctx.strokeStyle = r.subtract ? "#ff8a4f" : "#ffffff";
    ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0); ctx.setLineDash([]);
  }
  function drawCells(d) {
    const g = grid(), half = g.hop / g.sr / 2, df = g.sr / g.n_fft;
    ctx.fillStyle = d.subtract ? "rgba(255,138,79,0.45)" : "rgba(255,255,255,0.35)";
    for (const [frame, bins] of d.cells) {
      const t = frame * g.hop / g.sr, x0 = tToX(t - half), x1 = tToX(t + half);
      for (const k of bins) {
        const y0 = fToY((k + 0.5) * df), y1 = fToY((k - 0.5) * df);
        ctx.fillRect(x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
      }
    }
  }
  function drawPlayhead() {
    const t = player.position();
    if (t === null) return;
    const x = Math.round(tToX(t)) + 0.5, p = plotRect();
    ctx.strokeStyle = player.which === "restored" ? "#5fd38d" : player.which === "delta" ? "#ff8a4f" : "#ff4f6a";
    ctx.lineWidth = 1.5; ctx.beginPath(); ctx.moveTo(x, p.y); ctx.lineTo(x, p.y + p.h); ctx.stroke();
  }

  // ---------------------------------------------------------------- regions and history
  const kindOf = (r) => (r.f0 <= 0 && r.f1 >= nyquist() - 1e-6 ? "gap" : r.f1 >= nyquist() - 1e-6 ? "band" : "hole");
  function snapshot() {
    return { regions: state.regions.map((r) => ({ ...r })), selected: state.selected, restored: state.restored };
  }
  function pushHistory() {
    state.undo.push(snapshot());
    if (state.undo.length > 200) state.undo.shift();
    state.redo = [];
    renderHistoryButtons();
  }
  function renderHistoryButtons() {
    $("undo-button").disabled = !state.undo.length;
    $("redo-button").disabled = !state.redo.length;
  }
  function applySnapshot(s) {
    const before = state.restored;
    state.regions = s.regions.map((r) => ({ ...r }));
    state.selected = s.selected;
    renderRegions(); requestDraw();
    if (s.restored !== before) {
      setRestored(s.restored);
      syncServerVersion(before ? before.version : 0, s.restored ? s.restored.version : 0);
    }
  }
  // The server keeps every restore as a version (0 is the original); undo and redo across a restore move
  // its current version too, so the report and a later restore see the same state as the page.
  async function syncServerVersion(from, to) {
    try {
      for (let v = from; v < to; v++) await api("POST", docUrl("restored/redo"));
      for (let v = from; v > to; v--) await api("POST", docUrl("restored/undo"));
    } catch (e) { /* the page passes its version explicitly; only the server's default lags */ }
  }
  function undo() {
    if (!state.undo.length || state.job) return;
    state.redo.push(snapshot());
    applySnapshot(state.undo.pop());
    renderHistoryButtons(); say("undone");
  }
  function redo() {
    if (!state.redo.length || state.job) return;
    state.undo.push(snapshot());
    applySnapshot(state.redo.pop());
    renderHistoryButtons(); say("redone");
  }
  function defaultMethod(r) {
    const all = $("method-all").value;
    const options = METHODS[kindOf(r)];
    return all && options.includes(all) ? all : "model";
  }
  // The channel a region drawn now applies to: the one viewed, unless "all channels" is ticked (or the
  // file has one channel); null means every channel.
  function drawChannel() {
    return state.doc && state.doc.channels > 1 && !$("all-channels").checked ? state.channel : null;
  }
  function addRegion(r, select = true) {
    const region = { channel: drawChannel(), origin: "user", accepted: false, ...r, id: state.nextId++ };
    if (!region.method || !METHODS[kindOf(region)].includes(region.method)) region.method = defaultMethod(region);
    state.regions.push(region);
    if (select) state.selected = region.id;
    return region;
  }
  function normalise(r) {
    const dur = duration(), nyq = nyquist();
    const t0 = clamp(Math.min(r.t0, r.t1), 0, dur), t1 = clamp(Math.max(r.t0, r.t1), 0, dur);
    const f0 = clamp(Math.min(r.f0, r.f1), 0, nyq), f1 = clamp(Math.max(r.f0, r.f1), 0, nyq);
    return { ...r, t0, t1, f0, f1 };
  }
  const nonEmpty = (r) => r.t1 - r.t0 > 1e-6 && r.f1 - r.f0 > 1e-6;
  // A minus B as up to four rectangles.
  function subtractRect(a, b) {
    if (b.t0 >= a.t1 || b.t1 <= a.t0 || b.f0 >= a.f1 || b.f1 <= a.f0) return [a];
    // A cut on one channel leaves the other channels' regions; a region of every channel is cut for all.
    if (b.channel !== null && b.channel !== undefined && a.channel !== null && a.channel !== undefined && a.channel !== b.channel) return [a];
    const out = [];
    const ft0 = Math.max(a.t0, b.t0), ft1 = Math.min(a.t1, b.t1);
    if (b.f1 < a.f1) out.push({ ...a, t0: ft0, t1: ft1, f0: b.f1 });
    if (b.f0 > a.f0) out.push({ ...a, t0: ft0, t1: ft1, f1: b.f0 });
    if (b.t0 > a.t0) out.push({ ...a, t1: b.t0 });
    if (b.t1 < a.t1) out.push({ ...a, t0: b.t1 });
    return out.filter(nonEmpty);
  }
  function subtractFromAll(cuts) {
    let changed = false;
    let out = state.regions;
    for (const cut of cuts) {
      const next = [];
      for (const r of out) {
        const pieces = subtractRect(r, cut);
        if (pieces.length === 1 && pieces[0] === r) { next.push(r); continue; }
        changed = true;
        pieces.forEach((piece, i) => next.push(i === 0 ? { ...piece } : { ...piece, id: state.nextId++ }));
      }
      out = next;
    }
    state.regions = out;
    if (!out.some((r) => r.id === state.selected)) state.selected = null;
    return changed;
  }
  function maskJson() {
    const regions = state.regions.map((r) => {
      const o = { t0: round(r.t0, 6), t1: round(r.t1, 6), f0: round(r.f0, 3), f1: round(r.f1, 3) };
      if (r.channel !== null && r.channel !== undefined) o.channel = r.channel;
      return o;
    });
    return { format: "speechinpaint.mask/1", sample_rate: state.doc.sample_rate, num_samples: state.doc.num_samples, regions };
  }
  const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
  function methodsJson() {
    const out = {};
    state.regions.forEach((r, i) => { out[String(i)] = r.method; });
    return out;
  }
  function fmtT(t) { return t.toFixed(3); }
  function fmtF(f) { return f >= 1000 ? (f / 1000).toFixed(2) + "k" : f.toFixed(0); }
  function renderRegions() {
    const list = $("region-list");
    list.replaceChildren();
    state.regions.forEach((r, i) => {
      const li = document.createElement("li");
      li.dataset.id = String(r.id);
      li.dataset.testid = "region";
      li.setAttribute("data-testid", "region");
      li.className = [r.origin === "detected" ? "detected" : "user", r.accepted ? "accepted" : "", r.id === state.selected ? "selected" : ""].join(" ");
      const kind = kindOf(r);
      const idx = document.createElement("span"); idx.className = "idx"; idx.textContent = String(i);
      const where = document.createElement("span"); where.className = "where";
      where.textContent = `${fmtT(r.t0)}–${fmtT(r.t1)} s · ${fmtF(r.f0)}–${fmtF(r.f1)} Hz`;
      const kindEl = document.createElement("span"); kindEl.className = "kind";
      const channel = r.channel !== null && r.channel !== undefined ? " · ch " + r.channel : state.doc.channels > 1 ? " · all ch" : "";
      kindEl.textContent = `${kind}${r.origin === "detected" ? (r.accepted ? " · accepted" : " · detected") : ""}${channel}`;
      where.appendChild(document.createElement("br")); where.appendChild(kindEl);
      const actions = document.createElement("span"); actions.className = "row-actions";
      const select = document.createElement("select");
      select.className = "method"; select.setAttribute("data-testid", "region-method"); select.title = "Method for this region";
      for (const m of METHODS[kind]) { const o = document.createElement("option"); o.value = m; o.textContent = m; select.appendChild(o); }
      select.value = r.method;
      select.addEventListener("change", () => { pushHistory(); r.method = select.value; });
      select.addEventListener("click", (e) => e.stopPropagation());
      const button = (text, title, testid, fn) => {
        const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.title = title;
        b.setAttribute("data-testid", testid);
        b.addEventListener("click", (e) => { e.stopPropagation(); fn(); });
        return b;
      };
      actions.append(
        select,
        button("✓", "Accept", "region-accept", () => { pushHistory(); r.accepted = true; renderRegions(); requestDraw(); }),
        button("✗", "Reject (delete)", "region-reject", () => deleteRegion(r.id)),
        button("⤢", "Jump to it", "region-jump", () => jumpTo(r)),
      );
      li.append(idx, where, actions);
      li.addEventListener("click", () => { state.selected = r.id; renderRegions(); requestDraw(); });
      li.addEventListener("dblclick", () => jumpTo(r));
      list.appendChild(li);
    });
    $("region-count").textContent = String(state.regions.length);
  }
  function deleteRegion(id) {
    pushHistory();
    state.regions = state.regions.filter((r) => r.id !== id);
    if (state.selected === id) state.selected = null;
    renderRegions(); requestDraw();
  }
  function jumpTo(r) {
    state.selected = r.id;
    const st = Math.max(r.t1 - r.t0, MIN_SPAN_T), sf = r.f1 - r.f0;
    const tPad = Math.max(st * 0.5, 0.25);
    const v = { t0: r.t0 - tPad, t1: r.t1 + tPad, f0: 0, f1: nyquist() };
    if (kindOf(r) === "hole" && sf < nyquist() * 0.5) { v.f0 = r.f0 - sf; v.f1 = r.f1 + sf; }
    setView(v, "now"); renderRegions();
  }
  function selectedRegion() { return state.regions.find((r) => r.id === state.selected) || null; }

  // ---------------------------------------------------------------- mouse
  let drag = null;
  let brushCursor = null;
  function brushRadius() { return parseInt($("brush-size").value, 10) / 2; }
  function eventPos(e) { const b = canvas.getBoundingClientRect(); return { x: e.clientX - b.left, y: e.clientY - b.top }; }
  function inPlot(pos) { const p = plotRect(); return pos.x >= p.x && pos.x <= p.x + p.w && pos.y >= p.y && pos.y <= p.y + p.h; }
  function handles(r) {
    const b = regionBox(r), mx = (b.x0 + b.x1) / 2, my = (b.y0 + b.y1) / 2, k = kindOf(r);
    const hs = [];
    const timeOnly = k === "gap", freqOnly = r.t0 <= 1e-6 && r.t1 >= duration() - 1e-6 && k !== "gap";
    if (!freqOnly) { hs.push({ x: b.x0, y: my, e: "w" }, { x: b.x1, y: my, e: "e" }); }
    if (!timeOnly) { hs.push({ x: mx, y: b.y0, e: "n" }, { x: mx, y: b.y1, e: "s" }); }
    if (!timeOnly && !freqOnly) hs.push({ x: b.x0, y: b.y0, e: "nw" }, { x: b.x1, y: b.y0, e: "ne" }, { x: b.x0, y: b.y1, e: "sw" }, { x: b.x1, y: b.y1, e: "se" });
    return hs;
  }
  function hitHandle(pos) {
    const r = selectedRegion();
    if (!r || !visibleOnChannel(r)) return null;
    for (const h of handles(r)) if (Math.abs(pos.x - h.x) <= HANDLE + 2 && Math.abs(pos.y - h.y) <= HANDLE + 2) return { region: r, edge: h.e };
    return null;
  }
  function hitRegion(pos) {
    const sel = selectedRegion();
    const inside = (r) => { const b = regionBox(r); return pos.x >= b.x0 && pos.x <= b.x1 && pos.y >= b.y0 && pos.y <= b.y1; };
    if (sel && visibleOnChannel(sel) && inside(sel)) return sel;
    // the smallest region under the cursor, so a hole inside a band can be picked
    let best = null, area = Infinity;
    for (const r of state.regions) {
      if (!visibleOnChannel(r) || !inside(r)) continue;
      const a = (r.t1 - r.t0) * (r.f1 - r.f0) / ((duration() || 1) * nyquist());
      if (a < area) { best = r; area = a; }
    }
    return best;
  }
  function cursorFor(pos, e) {
    canvas.className = "";
    if (state.tool === "hand") { canvas.className = "hand"; return; }
    if (state.tool === "brush" || state.tool === "erase") { canvas.className = inPlot(pos) ? "brush" : ""; return; }
    if (e.shiftKey || e.altKey) return;
    const h = hitHandle(pos);
    if (h) {
      canvas.className = { w: "resize-ew", e: "resize-ew", n: "resize-ns", s: "resize-ns", nw: "resize-nwse", se: "resize-nwse", ne: "resize-nesw", sw: "resize-nesw" }[h.edge];
      return;
    }
    if (hitRegion(pos)) canvas.className = "move";
  }
  function readout(pos) {
    if (!state.doc || !inPlot(pos)) { $("readout").textContent = ""; return; }
    $("readout").textContent = `${xToT(pos.x).toFixed(3)} s · ${yToF(pos.y).toFixed(0)} Hz`;
  }

  // The frequency under the pointer, where the plot's last pixel rows mean the view's own bottom and
  // top: the bottom row's own frequency is a row (about 30 Hz) above it, so a rectangle drawn to the
  // bottom edge started there.
  const EDGE_PX = 2;
  function fAt(y) {
    const p = plotRect();
    return y >= p.y + p.h - EDGE_PX ? state.view.f0 : y <= p.y + EDGE_PX ? state.view.f1 : yToF(y);
  }
  function selectionFromDrag(d, pos) {
    const tA = d.startT, tB = xToT(pos.x), fA = d.startF, fB = fAt(pos.y);
    if (d.tool === "time") return normalise({ t0: tA, t1: tB, f0: 0, f1: nyquist() });
    if (d.tool === "band") return normalise({ t0: 0, t1: duration(), f0: fA, f1: fB });
    return normalise({ t0: tA, t1: tB, f0: fA, f1: fB });
  }

  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousedown", (e) => {
    if (!state.doc) return;
    const pos = eventPos(e);
    canvas.focus();
    if (e.button === 1 || (e.button === 0 && state.tool === "hand")) {
      e.preventDefault();
      drag = { kind: "pan", start: pos, view: { ...state.view } };
      canvas.className = "panning";
      return;
    }
    if (e.button !== 0 || !inPlot(pos)) return;
    e.preventDefault();
    const tool = state.tool;
    if (tool === "brush" || tool === "erase") {
      drag = { kind: "brush", subtract: tool === "erase" || e.altKey, cells: new Map(), last: pos };
      paintAt(drag, pos, pos);
      requestDraw();
      return;
    }
    if (!e.shiftKey && !e.altKey) {
      const h = hitHandle(pos);
      if (h) { drag = { kind: "resize", region: h.region, edge: h.edge, orig: { ...h.region }, start: pos, moved: false }; return; }
      const r = hitRegion(pos);
      if (r) {
        state.selected = r.id; renderRegions(); requestDraw();
        drag = { kind: "move", region: r, orig: { ...r }, start: pos, moved: false };
        return;
      }
    }
    drag = { kind: "select", tool, subtract: e.altKey, add: e.shiftKey, startT: xToT(pos.x), startF: fAt(pos.y), start: pos, preview: null };
  });
  window.addEventListener("mousemove", (e) => {
    const pos = eventPos(e);
    if (!drag) {
      if (state.doc) {
        cursorFor(pos, e); readout(pos);
        if (state.tool === "brush" || state.tool === "erase") { brushCursor = inPlot(pos) ? { ...pos, alt: e.altKey } : null; requestDraw(); }
      }
      return;
    }
    readout(pos);
    if (drag.kind === "pan") {
      const p = plotRect(), v = drag.view;
      const dt = -(pos.x - drag.start.x) / p.w * (v.t1 - v.t0), df = (pos.y - drag.start.y) / p.h * (v.f1 - v.f0);
      setView({ t0: v.t0 + dt, t1: v.t1 + dt, f0: v.f0 + df, f1: v.f1 + df });
    } else if (drag.kind === "brush") {
      paintAt(drag, drag.last, pos); drag.last = pos; brushCursor = { ...pos, alt: drag.subtract };
      requestDraw();
    } else if (drag.kind === "select") {
      drag.preview = { ...selectionFromDrag(drag, pos), subtract: drag.subtract };
      requestDraw();
    } else if (drag.kind === "move" || drag.kind === "resize") {
      if (!drag.moved && Math.hypot(pos.x - drag.start.x, pos.y - drag.start.y) < 3) return;
      if (!drag.moved) { pushHistory(); drag.moved = true; }
      const dt = xToT(pos.x) - xToT(drag.start.x), df = yToF(pos.y) - yToF(drag.start.y);
      const o = drag.orig, r = drag.region, k = kindOf(o);
      if (drag.kind === "move") {
        const st = o.t1 - o.t0, sf = o.f1 - o.f0;
        if (k !== "band" || o.t0 > 1e-6 || o.t1 < duration() - 1e-6) { r.t0 = clamp(o.t0 + dt, 0, duration() - st); r.t1 = r.t0 + st; }
        if (k !== "gap") { r.f0 = clamp(o.f0 + df, 0, nyquist() - sf); r.f1 = r.f0 + sf; }
      } else {
        const e2 = drag.edge;
        let { t0, t1, f0, f1 } = o;
        if (e2.includes("w")) t0 = o.t0 + dt;
        if (e2.includes("e")) t1 = o.t1 + dt;
        if (e2.includes("n")) f1 = o.f1 + df;
        if (e2.includes("s")) f0 = o.f0 + df;
        const n = normalise({ t0, t1, f0, f1 });
        Object.assign(r, n);
      }
      requestDraw();
    }
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const d = drag; drag = null;
    const pos = eventPos(e);
    if (d.kind === "pan") { canvas.className = state.tool === "hand" ? "hand" : ""; scheduleFetch(true); return; }
    if (d.kind === "brush") { finishStroke(d); return; }
    if (d.kind === "move" || d.kind === "resize") {
      if (d.moved) {
        if (!nonEmpty(d.region)) state.regions = state.regions.filter((r) => r !== d.region);
        else if (!METHODS[kindOf(d.region)].includes(d.region.method)) d.region.method = defaultMethod(d.region);
        renderRegions();
      }
      requestDraw(); return;
    }
    if (d.kind === "select") {
      const moved = Math.hypot(pos.x - d.start.x, pos.y - d.start.y) >= 3;
      if (!moved) {
        // a click on empty space deselects and moves the playhead start there
        state.selected = null; cursorTime = clamp(xToT(pos.x), 0, duration());
        renderRegions(); requestDraw(); return;
      }
      const r = selectionFromDrag(d, pos);
      if (!nonEmpty(r)) { requestDraw(); return; }
      pushHistory();
      if (d.subtract) {
        if (!subtractFromAll([{ ...r, channel: drawChannel() }])) { state.undo.pop(); renderHistoryButtons(); }
      } else {
        addRegion(r);
      }
      renderRegions(); requestDraw();
    }
  });
  canvas.addEventListener("mouseleave", () => { brushCursor = null; $("readout").textContent = ""; requestDraw(); });
  canvas.addEventListener("wheel", (e) => {
    if (!state.doc) return;
    e.preventDefault();
    const pos = eventPos(e), p = plotRect();
    const horizontal = Math.abs(e.deltaX) > Math.abs(e.deltaY);
    if (horizontal) { pan(e.deltaX / p.w * (state.view.t1 - state.view.t0), 0, true); return; }
    const factor = Math.exp(clamp(e.deltaY, -300, 300) * 0.0015);
    if (e.shiftKey || pos.x < p.x) zoom("f", factor, clamp(yToF(pos.y), 0, nyquist()), true);
    else zoom("t", factor, clamp(xToT(pos.x), 0, duration()), true);
  }, { passive: false });

  // Brush: the bins of the server's grid whose centres the brush covers, on the screen.
  function paintAt(d, from, to) {
    const g = grid(), r = brushRadius();
    const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / Math.max(1, r / 2)));
    const df = g.sr / g.n_fft, frameDt = g.hop / g.sr, nBins = Math.floor(g.n_fft / 2) + 1;
    const nFrames = 1 + Math.floor(state.doc.num_samples / g.hop);
    for (let s = 0; s <= steps; s++) {
      const x = from.x + (to.x - from.x) * s / steps, y = from.y + (to.y - from.y) * s / steps;
      const fa = Math.max(0, Math.ceil(xToT(x - r) / frameDt)), fb = Math.min(nFrames - 1, Math.floor(xToT(x + r) / frameDt));
      const ka = Math.max(0, Math.ceil(yToF(y + r) / df)), kb = Math.min(nBins - 1, Math.floor(yToF(y - r) / df));
      if (fb - fa > 4000 || kb - ka > 4000) continue;  // zoomed far out: the brush is coarser than the grid
      for (let i = fa; i <= fb; i++) {
        const cx = tToX(i * frameDt);
        for (let k = ka; k <= kb; k++) {
          const cy = fToY(k * df);
          if ((cx - x) ** 2 + (cy - y) ** 2 <= r * r) {
            let set = d.cells.get(i);
            if (!set) { set = new Set(); d.cells.set(i, set); }
            set.add(k);
          }
        }
      }
    }
  }
  // Cells to rectangles as masks.cells_to_regions does: per frame, runs of bins, merged over consecutive frames
  // with identical runs.
  function cellsToRegions(cells) {
    const g = grid(), half = g.hop / g.sr / 2, df = g.sr / g.n_fft, dur = duration(), nyq = nyquist();
    const frames = [...cells.keys()].sort((a, b) => a - b);
    const runsOf = (i) => {
      const set = cells.get(i);
      if (!set) return [];
      const bins = [...set].sort((a, b) => a - b), runs = [];
      let a = bins[0], prev = bins[0];
      for (const k of bins.slice(1)) { if (k !== prev + 1) { runs.push([a, prev]); a = k; } prev = k; }
      runs.push([a, prev]);
      return runs;
    };
    const out = [];
    let open = new Map(); // "k0,k1" -> start frame
    const close = (key, start, stop) => {
      const [k0, k1] = key.split(",").map(Number);
      const t0 = Math.max(start * g.hop / g.sr - half, 0), t1 = Math.min(stop * g.hop / g.sr - half, dur);
      if (t1 > t0) out.push({ t0, t1, f0: Math.max((k0 - 0.5) * df, 0), f1: Math.min((k1 + 0.5) * df, nyq) });
    };
    if (!frames.length) return out;
    for (let i = frames[0]; i <= frames[frames.length - 1] + 1; i++) {
      const runs = new Set(runsOf(i).map((r) => r.join(",")));
      const next = new Map();
      for (const [key, start] of open) { if (runs.has(key)) next.set(key, start); else close(key, start, i); }
      for (const key of runs) if (!next.has(key)) next.set(key, i);
      open = next;
    }
    for (const [key, start] of open) close(key, start, frames[frames.length - 1] + 1);
    return out;
  }
  function finishStroke(d) {
    const rects = cellsToRegions(d.cells);
    requestDraw();
    if (!rects.length) return;
    pushHistory();
    if (d.subtract) {
      if (!subtractFromAll(rects.map((r) => ({ ...r, channel: drawChannel() })))) { state.undo.pop(); renderHistoryButtons(); }
      else say(`erased ${rects.length} rectangle${rects.length > 1 ? "s" : ""}`);
    } else {
      let last = null;
      for (const r of rects) last = addRegion(r, false);
      state.selected = last ? last.id : null;
      say(`brush stroke: ${rects.length} region${rects.length > 1 ? "s" : ""}`);
    }
    renderRegions(); requestDraw();
  }

  // ---------------------------------------------------------------- tools
  function setTool(tool) {
    state.tool = tool;
    for (const b of document.querySelectorAll("button.tool")) {
      const on = b.dataset.tool === tool;
      b.classList.toggle("active", on); b.setAttribute("aria-pressed", on ? "true" : "false");
    }
    canvas.className = tool === "hand" ? "hand" : "";
    if (tool !== "brush" && tool !== "erase") brushCursor = null;
    requestDraw();
  }
  for (const b of document.querySelectorAll("button.tool")) b.addEventListener("click", () => setTool(b.dataset.tool));

  // ---------------------------------------------------------------- documents
  function setDocument(doc) {
    player.stop();
    // a restore still running was for the previous document: cancel it
    if (state.job) { cancelJob(state.job).catch(() => {}); }
    // a detection still running was for the previous document: drop it
    detectSeq++;
    if (state.detectJob) { cancelJob(state.detectJob).catch(() => {}); state.detectJob = null; setCancellable(); }
    $("detect-button").disabled = false;
    state.doc = doc;
    state.regions = []; state.selected = null; state.undo = []; state.redo = []; state.restored = null;
    state.detected = false; state.which = "original"; state.channel = 0;
    images.spec = null; images.prob = null;
    $("doc-name").textContent = `${doc.name} · ${doc.sample_rate} Hz · ${doc.channels} ch · ${doc.duration.toFixed(2)} s${doc.subtype ? " · " + doc.subtype : ""}`;
    $("doc-name").title = $("doc-name").textContent;
    const ch = $("channel");
    ch.replaceChildren();
    for (let i = 0; i < doc.channels; i++) { const o = document.createElement("option"); o.value = String(i); o.textContent = String(i); ch.appendChild(o); }
    $("channel-label").hidden = doc.channels < 2;
    $("all-channels-label").hidden = doc.channels < 2;
    $("all-channels").checked = false;
    setRestored(null);
    renderRegions(); renderHistoryButtons();
    $("report").hidden = true;
    $("view-which").value = "original";
    setView({ t0: 0, t1: Math.min(doc.duration, INITIAL_SPAN_T), f0: 0, f1: doc.sample_rate / 2 }, "now");
  }
  function setRestored(restored) {
    state.restored = restored;
    const has = !!restored;
    $("play-restored").disabled = !has; $("play-delta").disabled = !has; $("ab-button").disabled = !has;
    $("report-button").disabled = !has;
    const opt = $("view-which").querySelector('option[value="restored"]');
    opt.disabled = !has;
    const a = $("download-audio");
    if (has && state.doc) {
      a.href = docUrl("download") + `?version=${restored.version}`;
      a.setAttribute("download", "");
      a.classList.remove("disabled"); a.removeAttribute("aria-disabled");
    } else {
      a.removeAttribute("href"); a.classList.add("disabled"); a.setAttribute("aria-disabled", "true");
    }
    const which = has ? "restored" : "original";
    if (state.which !== which) { state.which = which; $("view-which").value = which; images.spec = null; scheduleFetch(true); }
    if (player.which === "restored" || player.which === "delta") player.stop();
    player.invalidate();
  }
  async function upload(file) {
    const task = begin(`uploading ${file.name}`);
    try {
      const form = new FormData();
      form.append("audio", file, file.name);
      const doc = await api("POST", "/api/documents", form);
      setDocument(doc);
      end(task, `opened ${doc.name}`);
    } catch (e) {
      end(task, `cannot open ${file.name}: ${e.message}`, true);
    }
  }
  $("file-input").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) upload(file);
    e.target.value = "";
  });
  async function loadInitial() {
    const task = begin("looking for the file given on the command line");
    try {
      const response = await fetch("/api/documents/initial");
      // 204: no file was given on the command line
      if (response.status === 204) { end(task, "open an audio file to begin"); return; }
      if (!response.ok) throw new Error(await detailOf(response));
      const doc = await response.json();
      if (doc && doc.id) { setDocument(doc); end(task, `opened ${doc.name}`); }
      else end(task, "open an audio file to begin");
    } catch (e) {
      end(task, `cannot open the initial file: ${e.message}`, true);
    }
  }

  // ---------------------------------------------------------------- masks
  $("mask-input").addEventListener("change", async (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = "";
    if (!file) return;
    if (!state.doc) { say("open the audio before its mask", true); return; }
    try {
      const data = JSON.parse(await file.text());
      if (!data || data.format !== "speechinpaint.mask/1" || !Array.isArray(data.regions)) throw new Error("not a speechinpaint.mask/1 file");
      if (data.sample_rate !== state.doc.sample_rate || data.num_samples !== state.doc.num_samples)
        throw new Error(`made for ${data.num_samples} samples at ${data.sample_rate} Hz, but the audio has ${state.doc.num_samples} at ${state.doc.sample_rate} Hz`);
      const regions = data.regions.map((r, i) => {
        const o = { t0: Number(r.t0), t1: Number(r.t1), f0: Number(r.f0), f1: Number(r.f1), channel: r.channel === undefined ? null : r.channel };
        if (![o.t0, o.t1, o.f0, o.f1].every(Number.isFinite) || !(o.t0 < o.t1) || !(o.f0 < o.f1)) throw new Error(`region ${i} is malformed`);
        return o;
      });
      pushHistory();
      state.regions = []; state.selected = null;
      for (const r of regions) addRegion(r, false);
      renderRegions(); requestDraw();
      say(`loaded ${regions.length} region${regions.length === 1 ? "" : "s"} from ${file.name}`);
    } catch (err) {
      say(`cannot load ${file.name}: ${err.message}`, true);
    }
  });
  function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  $("download-mask").addEventListener("click", () => {
    if (!state.doc) { say("nothing to save: open an audio file first", true); return; }
    const name = state.doc.name.replace(/\.[^.]*$/, "") + ".mask.json";
    saveBlob(new Blob([JSON.stringify(maskJson(), null, 1) + "\n"], { type: "application/json" }), name);
    say(`saved ${name}`);
  });
  $("accept-all").addEventListener("click", () => {
    if (!state.regions.some((r) => !r.accepted)) return;
    pushHistory(); state.regions.forEach((r) => { r.accepted = true; }); renderRegions(); requestDraw();
  });
  $("clear-regions").addEventListener("click", () => {
    if (!state.regions.length) return;
    pushHistory(); state.regions = []; state.selected = null; renderRegions(); requestDraw();
  });
  $("method-all").addEventListener("change", () => {
    const m = $("method-all").value;
    if (!m || !state.regions.length) return;
    pushHistory();
    for (const r of state.regions) if (METHODS[kindOf(r)].includes(m)) r.method = m;
    renderRegions();
  });

  // ---------------------------------------------------------------- detect
  let detectSeq = 0;
  // A job on the server's worker, polled until it ends: progress goes to the task's status as "label N %".
  async function waitJob(job, task, label) {
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const s = await api("GET", `/api/jobs/${encodeURIComponent(job)}`);
      update(task, `${label} ${Math.round(100 * (Number(s.progress) || 0))} %`);
      if (s.state === "done" || s.state === "cancelled") return s;
      if (s.state === "failed") throw new Error(s.error || `the ${s.kind || "job"} failed`);
    }
  }
  function cancelJob(job) {
    return api("POST", `/api/jobs/${encodeURIComponent(job)}/cancel`);
  }
  function setCancellable() { $("cancel-button").disabled = !(state.job || state.detectJob); }
  async function detect() {
    if (!state.doc) { say("open an audio file first", true); return; }
    const kinds = [...document.querySelectorAll("input.kind:checked")].map((c) => c.value);
    if (!kinds.length) { say("choose what to detect: holes, gaps or band", true); return; }
    const threshold = parseFloat($("threshold").value);
    const seq = ++detectSeq;
    // a new detection (the threshold moved) replaces one still on its way
    if (state.detectJob) { cancelJob(state.detectJob).catch(() => {}); state.detectJob = null; }
    const task = begin("detecting");
    $("detect-button").disabled = true;
    let job = null;
    try {
      ({ job } = await api("POST", docUrl("detect"), { kinds, threshold }));
      if (seq !== detectSeq) { cancelJob(job).catch(() => {}); end(task); return; }
      state.detectJob = job; setCancellable();
      const s = await waitJob(job, task, "detecting");
      if (seq !== detectSeq) { end(task); return; }
      if (s.state === "cancelled") { end(task, "detection cancelled"); return; }
      const result = s.result || {};
      pushHistory();
      // detected regions replace the earlier detected ones that were not accepted; the user's stay
      state.regions = state.regions.filter((r) => r.origin !== "detected" || r.accepted);
      state.selected = null;
      const regions = (result.mask && result.mask.regions) || [];
      for (const r of regions) addRegion({ t0: r.t0, t1: r.t1, f0: r.f0, f1: r.f1, channel: r.channel === undefined ? null : r.channel, origin: "detected" }, false);
      state.detected = true;
      if (kinds.includes("holes") && !$("show-probability").checked) { $("show-probability").checked = true; }
      images.prob = null; scheduleFetch(true);
      renderRegions(); requestDraw();
      end(task, result.summary || `${regions.length} region${regions.length === 1 ? "" : "s"} detected`);
    } catch (e) {
      if (seq !== detectSeq) end(task);
      else end(task, `detection failed: ${e.message}`, true);
    } finally {
      if (state.detectJob === job && job !== null) state.detectJob = null;
      setCancellable();
      if (seq === detectSeq) $("detect-button").disabled = false;
    }
  }
  $("detect-button").addEventListener("click", detect);
  let thresholdTimer = null, pendingDetect = null;
  $("threshold").addEventListener("input", () => {
    $("threshold-value").textContent = parseFloat($("threshold").value).toFixed(2);
    if (images.prob) { images.prob = null; scheduleFetch(true); }
    clearTimeout(thresholdTimer);
    if (state.detected) {
      // busy from the first move of the slider, so "ready" means the new regions are in
      if (pendingDetect === null) pendingDetect = begin("detecting");
      thresholdTimer = setTimeout(() => { const t = pendingDetect; pendingDetect = null; detect().finally(() => end(t)); }, 400);
    }
  });
  $("show-probability").addEventListener("change", () => { images.prob = null; scheduleFetch(true); requestDraw(); });

  // ---------------------------------------------------------------- restore
  async function runRestore(mask, methods) {
    if (!state.doc || state.job) return;
    if (!mask.regions.length) { say("nothing to restore: the mask is empty (draw or detect regions first)", true); return; }
    const task = begin("restoring");
    $("restore-button").disabled = true;
    const doc = state.doc;
    let version = null;
    try {
      const { job } = await api("POST", docUrl("restore"), { mask, methods });
      state.job = job; setCancellable();
      const s = await waitJob(job, task, "restoring");
      if (s.state === "cancelled") { end(task, "restoration cancelled"); return; }
      // another file was opened meanwhile: the result is that document's (kept on the server), not this one's
      if (state.doc !== doc) { end(task, `restored ${doc.name} (no longer open)`); return; }
      version = s.version;
      pushHistory();
      // the heat map is the original's: hide it over the restored view (the checkbox brings it back)
      if ($("show-probability").checked) { $("show-probability").checked = false; images.prob = null; }
      setRestored({ mask, methods, version });
      images.spec = null; scheduleFetch(true);
      end(task, `restored ${mask.regions.length} region${mask.regions.length === 1 ? "" : "s"}`);
    } catch (e) {
      end(task, `restoration failed: ${e.message}`, true);
    } finally {
      state.job = null;
      $("restore-button").disabled = false; setCancellable();
    }
  }
  $("restore-button").addEventListener("click", () => { if (state.doc) runRestore(maskJson(), methodsJson()); else say("open an audio file first", true); });
  // Cancel stops what runs on the worker: the restore and the detection.
  $("cancel-button").addEventListener("click", async () => {
    const jobs = [state.job, state.detectJob].filter((j) => j);
    try { await Promise.all(jobs.map(cancelJob)); }
    catch (e) { say(`cannot cancel: ${e.message}`, true); }
  });

  // ---------------------------------------------------------------- report
  function cell(v) {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3);
    if (v === null || v === undefined) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function renderReport(data) {
    const box = $("report");
    box.replaceChildren();
    const h = document.createElement("h2"); h.textContent = "Report"; box.appendChild(h);
    const rows = Array.isArray(data) ? data : Array.isArray(data.regions) ? data.regions : null;
    if (data && !Array.isArray(data)) {
      for (const [k, v] of Object.entries(data)) {
        if (k === "detection" && v && v.summary !== undefined) {
          const p = document.createElement("p"); p.setAttribute("data-testid", "report-detection");
          p.textContent = `detector on the output: ${v.summary}`; box.appendChild(p); continue;
        }
        if (k === "regions" || (typeof v === "object" && v !== null)) continue;
        const p = document.createElement("p"); p.textContent = `${k.replace(/_/g, " ")}: ${typeof v === "object" ? JSON.stringify(v) : cell(v)}`;
        box.appendChild(p);
      }
    }
    if (rows && rows.length) {
      const flat = rows.map((r) => {
        const o = {};
        for (const [k, v] of Object.entries(r)) {
          if (v && typeof v === "object" && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) o[`${k} ${k2}`] = v2;
          else o[k] = v;
        }
        return o;
      });
      const keys = [...new Set(flat.flatMap((o) => Object.keys(o)))];
      const table = document.createElement("table");
      table.setAttribute("data-testid", "report-table");
      const head = table.insertRow();
      for (const k of keys) { const th = document.createElement("th"); th.textContent = k.replace(/_/g, " "); head.appendChild(th); }
      for (const o of flat) { const tr = table.insertRow(); for (const k of keys) tr.insertCell().textContent = cell(o[k]); }
      box.appendChild(table);
    }
    box.hidden = false;
  }
  $("report-button").addEventListener("click", async () => {
    if (!state.doc || !state.restored) return;
    const task = begin("measuring before and after");
    try {
      const data = await api("POST", docUrl("report"), { mask: state.restored.mask });
      renderReport(data);
      end(task, "report ready");
    } catch (e) {
      end(task, `report failed: ${e.message}`, true);
    }
  });

  // ---------------------------------------------------------------- playback
  let cursorTime = 0;
  const player = {
    audio: null, source: null, which: null, seg: null, startedAt: 0, offset: 0, buffers: new Map(), raf: 0,
    context() {
      if (!this.audio) this.audio = new (window.AudioContext || window.webkitAudioContext)();
      if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
      return this.audio;
    },
    invalidate() { this.buffers.clear(); },
    position() {
      if (!this.source || !this.seg) return null;
      const len = this.seg.t1 - this.seg.t0;
      let pos = this.offset + (this.audio.currentTime - this.startedAt);
      if (this.source.loop && len > 0) pos = pos % len;
      return this.seg.t0 + Math.min(pos, len);
    },
    async buffer(which, seg) {
      const version = which !== "original" && state.restored ? String(state.restored.version) : "";
      const key = `${which}|${version}|${seg.t0.toFixed(4)}|${seg.t1.toFixed(4)}|${state.channel}`;
      if (this.buffers.has(key)) return this.buffers.get(key);
      const q = new URLSearchParams({ which, t0: seg.t0.toFixed(6), t1: seg.t1.toFixed(6), channel: String(state.channel) });
      if (version) q.set("version", version);
      const response = await fetch(docUrl("audio.wav?") + q.toString());
      if (!response.ok) throw new Error(await detailOf(response));
      const data = await response.arrayBuffer();
      const buf = await this.context().decodeAudioData(data);
      this.buffers.set(key, buf);
      return buf;
    },
    stop() {
      if (this.source) { try { this.source.onended = null; this.source.stop(); } catch (e) { /* already stopped */ } }
      this.source = null; cancelAnimationFrame(this.raf); requestDraw();
    },
    async play(which, seg, offset = 0) {
      const task = begin(`loading the ${which} audio`);
      try {
        const buf = await this.buffer(which, seg);
        this.stop();
        const ac = this.context();
        const src = ac.createBufferSource();
        src.buffer = buf; src.loop = $("loop").checked;
        src.connect(ac.destination);
        src.onended = () => { if (this.source === src) { this.source = null; requestDraw(); } };
        this.source = src; this.which = which; this.seg = seg; this.offset = offset; this.startedAt = ac.currentTime;
        src.start(0, clamp(offset, 0, buf.duration));
        const tick = () => { if (this.source === src) { requestDraw(); this.raf = requestAnimationFrame(tick); } };
        this.raf = requestAnimationFrame(tick);
        end(task, `playing ${which} ${seg.t0.toFixed(2)}–${seg.t1.toFixed(2)} s${src.loop ? " (loop)" : ""}`);
      } catch (e) {
        end(task, `cannot play: ${e.message}`, true);
      }
    },
  };
  function playSegment() {
    // the selected region with pre- and post-roll, else the view from the last click
    const roll = Math.max(0, parseFloat($("roll").value) || 0);
    const r = selectedRegion(), dur = duration();
    if (r) return { t0: clamp(r.t0 - roll, 0, dur), t1: clamp(r.t1 + roll, 0, dur) };
    const v = state.view, start = cursorTime > v.t0 && cursorTime < v.t1 ? cursorTime : v.t0;
    return { t0: start, t1: v.t1 };
  }
  function play(which) {
    if (!state.doc) return;
    if ((which === "restored" || which === "delta") && !state.restored) { say("restore first", true); return; }
    player.play(which, playSegment());
  }
  function abSwitch() {
    if (!state.restored) return;
    const pos = player.position();
    const target = player.which === "restored" ? "original" : "restored";
    if (pos === null) { play(target); return; }
    const seg = player.seg;
    const len = seg.t1 - seg.t0;
    player.play(target, seg, Math.min(pos - seg.t0, len));
    state.which = target; $("view-which").value = target; images.spec = null; scheduleFetch(true);
  }
  $("play-original").addEventListener("click", () => play("original"));
  $("play-restored").addEventListener("click", () => play("restored"));
  $("play-delta").addEventListener("click", () => play("delta"));
  $("ab-button").addEventListener("click", abSwitch);
  $("stop-button").addEventListener("click", () => player.stop());
  $("loop").addEventListener("change", () => { if (player.source) player.source.loop = $("loop").checked; });

  // ---------------------------------------------------------------- view controls
  $("zoom-in-t").addEventListener("click", () => zoom("t", 0.5));
  $("zoom-out-t").addEventListener("click", () => zoom("t", 2));
  $("zoom-in-f").addEventListener("click", () => zoom("f", 0.5, state.view.f0));
  $("zoom-out-f").addEventListener("click", () => zoom("f", 2, state.view.f0));
  $("zoom-fit").addEventListener("click", fit);
  for (const id of ["db-min", "db-max"]) $(id).addEventListener("change", () => { images.spec = null; scheduleFetch(true); });
  $("log-freq").addEventListener("change", () => {
    state.logFreq = $("log-freq").checked; images.spec = null; images.prob = null; requestDraw(); scheduleFetch(true);
  });
  $("outline-regions").addEventListener("change", () => { state.outline = $("outline-regions").checked; requestDraw(); });
  $("view-which").addEventListener("change", () => { state.which = $("view-which").value; images.spec = null; scheduleFetch(true); });
  $("channel").addEventListener("change", () => {
    state.channel = parseInt($("channel").value, 10) || 0;
    images.spec = null; images.prob = null; player.invalidate(); scheduleFetch(true); requestDraw();
  });
  $("help-button").addEventListener("click", () => { const d = $("help"); if (d.open) d.close(); else d.showModal(); });
  window.addEventListener("resize", () => { requestDraw(); scheduleFetch(); });

  // ---------------------------------------------------------------- keyboard
  window.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "range" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    const ctrl = e.ctrlKey || e.metaKey, key = e.key.toLowerCase();
    if (ctrl && key === "z") { e.preventDefault(); if (e.shiftKey) redo(); else undo(); return; }
    if (ctrl && key === "y") { e.preventDefault(); redo(); return; }
    if (ctrl || e.altKey) return;
    const tools = { r: "rect", t: "time", f: "band", b: "brush", e: "erase", h: "hand" };
    if (tools[key]) { setTool(tools[key]); e.preventDefault(); return; }
    switch (e.key) {
      case " ":
        e.preventDefault();
        if (player.source) player.stop(); else play(state.restored && state.which === "restored" ? "restored" : "original");
        return;
      case "a": case "A": abSwitch(); return;
      case "d": case "D": play("delta"); return;
      case "l": case "L": $("loop").checked = !$("loop").checked; if (player.source) player.source.loop = $("loop").checked; return;
      case "Delete": case "Backspace": if (state.selected !== null) { e.preventDefault(); deleteRegion(state.selected); } return;
      case "Escape": player.stop(); state.selected = null; renderRegions(); requestDraw(); return;
      case "+": case "=": zoom("t", 0.5); return;
      case "-": case "_": zoom("t", 2); return;
      case "0": fit(); return;
      case "ArrowLeft": pan(-(state.view.t1 - state.view.t0) * 0.2, 0); e.preventDefault(); return;
      case "ArrowRight": pan((state.view.t1 - state.view.t0) * 0.2, 0); e.preventDefault(); return;
      case "ArrowUp": pan(0, (state.view.f1 - state.view.f0) * 0.2); e.preventDefault(); return;
      case "ArrowDown": pan(0, -(state.view.f1 - state.view.f0) * 0.2); e.preventDefault(); return;
      case "[": $("brush-size").value = String(Math.max(2, parseInt($("brush-size").value, 10) - 4)); requestDraw(); return;
      case "]": $("brush-size").value = String(Math.min(80, parseInt($("brush-size").value, 10) + 4)); requestDraw(); return;
      case "?": { const d = $("help"); if (d.open) d.close(); else d.showModal(); return; }
      default:
    }
  });
  $("undo-button").addEventListener("click", undo);
  $("redo-button").addEventListener("click", redo);

  // ---------------------------------------------------------------- start
  window.addEventListener("unhandledrejection", (e) => { e.preventDefault(); say(`unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`, true); });
  setTool("rect");
  renderStatus();
  requestDraw();
  loadInitial();
  // for tests and the console: a read-only look at the editor's state
  window.speechinpaintEditor = { state, maskJson: () => (state.doc ? maskJson() : null), view: () => ({ ...state.view }), tToX, fToY, yToF, plotRect };
})();
