"""Every benchmark that reads a corpus says in one line that its manifest is missing, before loading a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Each script that reads a manifest, with the arguments that point it at one.
SCRIPTS = {
    "baselines": ["--limit", "1"],
    "batch": ["--files", "1"],
    "detect": ["--limit", "1"],
    "detector_threshold": ["--crops", "1"],
    "envelope_probe": ["--count", "1"],
    "janssen_tf": ["--count", "1"],
    "loss_alignment": ["--count", "1"],
    "model_steps": ["--count", "1"],
    "quality": ["--count", "1"],
    "seed": ["--limit", "1"],
    "fullband": ["--clips", "1"],
    "speed": ["--threads", "1"],
    "upper_band_levels": ["--seconds", "1"],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_missing_manifest_is_one_line(name, tmp_path):
    manifest = tmp_path / "corpus" / "manifest.csv"
    result = subprocess.run(
        [sys.executable, f"benchmarks/{name}.py", "--manifest", str(manifest), *SCRIPTS[name]],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("speechinpaint: error:"), result.stderr
    assert str(manifest) in lines[0]
    assert f"{manifest}/manifest.csv" not in lines[0]
    assert "speechinpaint data" in lines[0]
    assert result.stdout == ""


def test_every_script_that_takes_a_manifest_is_checked():
    takes_manifest = {p.stem for p in (REPO / "benchmarks").glob("*.py") if '"--manifest"' in p.read_text()}
    assert takes_manifest == set(SCRIPTS)
