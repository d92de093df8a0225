"""`speechinpaint demo` on the shipped model: its wavs, masks, figures, listening page and table."""

from __future__ import annotations

import re

import soundfile as sf

from speechinpaint.cli import main


def test_the_demo_writes_a_listening_page_whose_every_file_exists(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| holes / model | 1 |" in table and "ViSQOL" in table and "PLCMOS" in table
    page = (out / "index.html").read_text()
    linked = re.findall(r'(?:src)="([^"]+)"', page)
    assert {"clean.wav", "holes_corrupted.wav", "gaps_model.wav", "band_interp.wav", "holes.png"} <= set(linked)
    for name in linked:
        assert (out / name).is_file(), name
    assert sf.info(out / "gaps_model.wav").frames == sf.info(out / "clean.wav").frames
    assert page.count("<audio") == 3 * 4  # clean, corrupted, interp and model for each kind
