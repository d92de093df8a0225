"""`speechinpaint edit [FILE]`: a local web page to see the damage in a recording, mark it with a brush or
a rectangle, restore it, listen A/B and save (server.py serves static/ and the API below; documents.py
holds the per-upload state, the worker that runs restore and detection jobs, and the images).

Every 4xx answer is JSON {"detail": "one sentence"}; bad input never gives a 500. The server binds
127.0.0.1 unless told otherwise; the user's file is read once and never written. A request addressed
to another Host gets 400; a POST from another Origin, or any POST or /api/ request whose Sec-Fetch-Site
names another site or origin, gets 403 (requests without these headers, such as curl's, are served).

- GET /                                  the page (static/index.html); GET /static/NAME: a file of static/ (no
                                         subfolders; anything else 404)
- POST /api/detect       multipart audio  -> the detected mask (speechinpaint.mask/1 JSON, in the file's terms)
- POST /api/restore      multipart audio, mask (JSON text), method (default model)
                                         -> the restored file, byte for byte what `speechinpaint restore IN -o OUT
                                            --mask M --method X` writes (container by the upload's suffix)
- POST /api/documents    multipart audio  -> {id, name, sample_rate, channels, num_samples, duration, subtype,
                                            container, version, versions}
- GET /api/documents/initial (or /{id})  -> the same; initial: 204 No Content when no FILE was given
                                            (an unknown id: 404)
- GET /api/documents/{id}/spectrogram.png?which=original|restored|delta&version=&channel=0&t0=&t1=&f0=&f1=
  &width=1024&height=256&db_min=-100&db_max=0
                                         -> width x height PNG, magma, dB re full scale (a full-scale sine is 0 dB)
                                            on the native 32 ms / 8 ms grid, computed over the view only
- GET /api/documents/{id}/probability.png?channel&t0&t1&f0&f1&width&height&style=gray|alpha
                                         -> the holes detector's probability (gray: 0 black .. 1 white; alpha:
                                            white with opacity p); 0 above 8 kHz
- GET /api/documents/{id}/probability?channel&t0&t1 -> {"times", "freqs", "p": [freq][time]} (block maxima,
                                            at most 128 x 512)
- POST /api/documents/{id}/detect  {"kinds": [...], "threshold": 0.6} -> {"job"}: a detection job, in the
      same queue as the restores; when done its "result" is {"mask", "summary"}. Unknown kinds and audio
      that is too short, silent or not finite are refused at once (400), a threshold outside (0, 1) too (422).
- POST /api/documents/{id}/restore {"mask": ..., "methods": {"<region index>": "interp", ...}} -> {"job"}
      Each method restores the mask of its own regions (default: model), in turn, on the running output,
      starting from the original. Jobs (restores and detections) run one at a time on one worker.
- GET /api/jobs/{job}    -> {"id", "document", "kind": restore|detect, "state": queued|running|done|cancelled|
                             failed, "progress": 0..1, "error": str|null, "version": int|null (the document version a
                             restore made), "result": {"mask", "summary"} of a done detection, else null}
- POST /api/jobs/{job}/cancel -> the same (cancelled between channels and chunks: a detection between its
                             channels and the holes detector's chunks of about 33 s)
- Versions: 0 is the original, each finished restore appends one and makes it current (undone ones
  after the current are dropped). POST /api/documents/{id}/restored/undo and /restored/redo move the
  current version (409 when there is none to move to) and answer the document's info.
- GET /api/documents/{id}/audio.wav?which=original|restored|delta&version=&t0=&t1=&channel=
                                         -> 16-bit PCM wav at the document's rate (restored: the current version)
- GET /api/documents/{id}/download?version= -> the current (or given) version in the input's format and container,
                                            as NAME_restored.EXT
- POST /api/documents/{id}/report  {"mask"} -> {"version", "regions": [{"index", "region", "before": {inside_db,
                                            around_db, contrast_db}, "after": {...}}], "detection": {"mask", "summary"}}
"""
