"""The seed's MFCC-MLP baseline: its features and their inversion against librosa, its network, its
shipped weights and `restore --method seed-mfcc` end to end on real speech."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from speechinpaint.audio import load_audio
from speechinpaint.baselines import seed_mfcc as s
from speechinpaint.cli import main
from speechinpaint.errors import SpeechInpaintError

librosa = pytest.importorskip("librosa")

DATA = Path(__file__).parent / "data"
CLIPS = sorted(DATA.glob("*.wav"))
LIBROSA_MFCC = dict(sr=16000, n_mfcc=32, n_fft=640, hop_length=320, n_mels=128, fmin=20, fmax=8000, lifter=0.6)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(DATA / "da_mars.wav")


def test_preemphasis_and_its_inverse_match_librosa(speech):
    pre = librosa.effects.preemphasis(speech.astype(np.float64), coef=0.97)
    np.testing.assert_allclose(s.preemphasis(speech), pre, atol=1e-9)
    np.testing.assert_allclose(s.deemphasis(pre), librosa.effects.deemphasis(pre, coef=0.97), atol=1e-9)
    np.testing.assert_allclose(s.deemphasis(s.preemphasis(speech)), speech, atol=1e-6)


def test_mel_basis_matches_librosa():
    ref = librosa.filters.mel(sr=16000, n_fft=640, n_mels=128, fmin=20, fmax=8000)
    np.testing.assert_allclose(s.mel_basis(), ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_mfcc_matches_librosa(clip):
    audio = load_audio(clip)
    ref = librosa.feature.mfcc(y=librosa.effects.preemphasis(audio, coef=0.97), **LIBROSA_MFCC)
    mine = s.mfcc(audio)
    assert mine.shape == ref.shape == (32, 1 + len(audio) // 320)
    # float32 STFTs on both sides: agreement to a few thousandths of a dB-scaled coefficient.
    np.testing.assert_allclose(mine, ref, atol=5e-3 * np.abs(ref).max())


def test_mfcc_to_mel_matches_librosa(speech):
    coeffs = s.mfcc(speech)
    ref = librosa.feature.inverse.mfcc_to_mel(coeffs, n_mels=128, lifter=0.6)
    np.testing.assert_allclose(s.mfcc_to_mel(coeffs), ref, rtol=1e-4)


def test_mel_to_power_solves_the_same_problem_as_librosa(speech):
    """The NNLS has many solutions (321 bins from 128 bands): ours must fit the mel bands as well as
    librosa's L-BFGS-B and land near the same magnitudes."""
    mel = s.mfcc_to_mel(s.mfcc(speech))
    ref_mag = librosa.feature.inverse.mel_to_stft(mel, sr=16000, n_fft=640, power=2.0, fmin=20, fmax=8000)
    power = s.mel_to_power(mel)
    assert power.min() >= 0
    basis = s.mel_basis()

    def residual(p):
        return np.linalg.norm(basis @ p - mel) / np.linalg.norm(mel)

    assert residual(power) <= 1.05 * residual(ref_mag**2)
    assert np.linalg.norm(np.sqrt(power) - ref_mag) / np.linalg.norm(ref_mag) < 0.05


def test_inversion_is_as_faithful_as_librosas(speech):
    """The resynthesised audio re-analyses to the MFCCs it came from as closely as librosa's mfcc_to_audio's does."""
    coeffs = s.mfcc(speech)
    mine = s.mfcc_to_audio(coeffs, len(speech))
    np.random.seed(0)  # librosa's Griffin-Lim draws its initial phase from numpy's global generator
    lib = librosa.feature.inverse.mfcc_to_audio(
        coeffs, n_mels=128, lifter=0.6, sr=16000, n_fft=640, hop_length=320, fmin=20, fmax=8000, length=len(speech)
    )
    lib = librosa.effects.deemphasis(lib, coef=0.97)
    assert mine.shape == speech.shape and mine.dtype == np.float32

    def error(audio):
        return float(np.sqrt(np.mean((s.mfcc(audio) - coeffs) ** 2)))

    assert error(mine) <= 1.25 * error(lib)
    # and far closer than an unrelated signal of the same level: the test can fail
    noise = np.random.default_rng(0).normal(scale=speech.std(), size=len(speech))
    assert error(mine) < 0.1 * error(noise)
    assert 0.5 < mine.std() / speech.std() < 1.5


def test_mlp_shapes():
    model = s.SeedMLP()
    assert [type(m) for m in model.children()] == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.Linear]
    assert model.hidden.weight.shape == (512, 32) and model.out.weight.shape == (32, 512)
    assert sum(p.numel() for p in model.parameters()) == 32 * 512 + 512 + 2 * 512 + 512 * 32 + 32
    assert model.eval()(torch.randn(7, 32)).shape == (7, 32)


def test_shipped_weights_load_and_were_trained():
    model = s.load_seed_mlp()
    record = torch.load(s.WEIGHTS, weights_only=True)["training"]
    assert record["epochs"] >= 1 and record["train_frames"] > 0
    assert not model.training
    # the trained network beats copying the corrupted MFCCs through, on held-out voices
    assert record["history"][-1]["valid_mse"] < record["identity_valid_mse"]


def test_restore_cli_runs_on_real_speech(tmp_path):
    corrupted = tmp_path / "corrupted"
    restored = tmp_path / "restored"
    assert main(["corrupt", str(DATA), "-o", str(corrupted), "--kind", "holes", "--seed", "3"]) == 0
    assert main(["restore", str(corrupted), "-o", str(restored), "--method", "seed-mfcc"]) == 0
    for clip in CLIPS:
        out = load_audio(restored / clip.name, check=False)
        original = load_audio(clip)
        assert out.shape == original.shape
        assert np.all(np.isfinite(out)) and out.std() > 0.1 * original.std()


def test_checkpoint_with_wrong_shapes_is_refused(tmp_path):
    wrong = s.SeedMLP(hidden=256)
    path = tmp_path / "wrong.pt"
    s.save_checkpoint(path, wrong, {"epochs": 0})
    with pytest.raises(SpeechInpaintError, match=r"hidden\.weight has shape \(256, 32\).*needs \(512, 32\)"):
        s.load_seed_mlp(path)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SpeechInpaintError, match="not a readable checkpoint"):
        s.load_seed_mlp(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(SpeechInpaintError, match="not a speechinpaint.seed_mfcc/1 checkpoint"):
        s.load_seed_mlp(other)
    with pytest.raises(SpeechInpaintError, match="no such"):
        s.load_seed_mlp(tmp_path / "missing.pt")


def test_training_entry_writes_a_loadable_checkpoint(tmp_path):
    for clip in CLIPS:
        shutil.copy(clip, tmp_path / clip.name)
    rows = [f"{c.name},x,da,0,{'valid' if i == 0 else 'train'}" for i, c in enumerate(CLIPS)]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,speaker,language,duration,split\n" + "\n".join(rows) + "\n")
    out = tmp_path / "seed.pt"
    assert s.main(["train", "--manifest", str(manifest), "--out", str(out), "--epochs", "2"]) == 0
    record = torch.load(out, weights_only=True)["training"]
    assert record["train_files"] == len(CLIPS) - 1 and len(record["history"]) == 2
    model = s.load_seed_mlp(out)
    corrupted = load_audio(tmp_path / CLIPS[0].name)
    from speechinpaint.masks import Mask

    restored = s.restore_seed_mfcc(corrupted, Mask(16000, len(corrupted), []), model)
    assert restored.shape == corrupted.shape and np.all(np.isfinite(restored))


def test_training_entry_reports_a_missing_manifest(tmp_path, capsys):
    assert s.main(["train", "--manifest", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.pt")]) == 1
    assert "speechinpaint: error:" in capsys.readouterr().err
