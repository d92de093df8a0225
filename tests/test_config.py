"""Training configs are read strictly: an unknown section or key, a value of the wrong kind or a bad
mixture is one clear error when the file is loaded, and `base:` lets a config list only what it changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speechinpaint.cli import main
from speechinpaint.errors import SpeechInpaintError
from speechinpaint.training.config import TrainingConfig, load_config
from speechinpaint.training.data import CropConfig, DataConfig
from speechinpaint.sections import from_mapping

CONFIGS = Path(__file__).parents[1] / "configs"


def write(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def default() -> dict:
    return yaml.safe_load((CONFIGS / "default.yaml").read_text())


def test_an_unknown_crop_key_names_itself_and_the_known_keys():
    with pytest.raises(SpeechInpaintError, match=r"unknown key 'coverge'; known keys: .*coverage"):
        from_mapping(CropConfig, {"coverge": [0.1, 0.2]}, "data")


@pytest.mark.parametrize("section, key, value, expected", [
    ("loss", "overshot_weight", 1.0, "unknown key 'overshot_weight'"),
    ("data", "mixture", {"holes": 0.5, "gapz": 0.5}, "mixture kinds must be some of holes, gaps, band"),
    ("data", "coverage", 0.3, "coverage must be a list"),
    ("data", "coverage", [0.4, 0.2], "low <= high"),
    ("optim", "lr", "fast", "lr must be a number"),
    ("train", "progress_bar", "yes", "progress_bar must be a bool"),
])
def test_load_config_refuses_a_bad_key_or_value(tmp_path, section, key, value, expected):
    config = default()
    config.setdefault(section, {})[key] = value
    with pytest.raises(SpeechInpaintError, match=expected) as caught:
        load_config(write(tmp_path / "bad.yaml", config))
    assert f"the {section} section is not understood" in str(caught.value)


def test_an_unknown_section_and_a_missing_one_are_errors(tmp_path):
    with pytest.raises(SpeechInpaintError, match="unknown section 'optimiser'"):
        load_config(write(tmp_path / "a.yaml", {**default(), "optimiser": {}}))
    config = default()
    del config["optim"]
    with pytest.raises(SpeechInpaintError, match="needs a 'optim' section"):
        load_config(write(tmp_path / "b.yaml", config))


def test_train_refuses_a_bad_config_before_reading_any_data(tmp_path, capsys):
    config = default()
    config["data"]["manifest"] = str(tmp_path / "nowhere" / "manifest.csv")
    config["loss"] = {"overshot_weight": 1.0}
    rc = main(["train", "--config", str(write(tmp_path / "typo.yaml", config)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "overshot_weight" in err[0] and "manifest" not in err[0]


def test_a_config_starts_from_its_base(tmp_path):
    write(tmp_path / "default.yaml", default())
    child = write(tmp_path / "ablations" / "more_gaps.yaml", {
        "base": "../default.yaml",
        "data": {"mixture": {"holes": 0.3, "gaps": 0.7}},
        "optim": {"lr": 0.0005},
        "loss": {"overshoot_weight": 1.0},
    })
    loaded, parent = load_config(child), load_config(tmp_path / "default.yaml")
    assert loaded.name == "more_gaps"  # named after its own file, not its base
    assert loaded.data.mixture == {"holes": 0.3, "gaps": 0.7}  # a mapping value replaces the base's whole
    assert loaded.optim.lr == 0.0005 and loaded.optim.warmup_steps == parent.optim.warmup_steps
    assert loaded.loss.overshoot_weight == 1.0 and loaded.model == parent.model and loaded.train == parent.train
    # The resolved config (what a checkpoint stores) reads back to the same settings.
    assert TrainingConfig.from_dict(loaded.to_dict()) == loaded


def test_a_base_cycle_and_a_missing_base_are_errors(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(SpeechInpaintError, match="lead back to itself"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"base": "missing.yaml"})
    with pytest.raises(SpeechInpaintError, match="missing.yaml: no such config"):
        load_config(tmp_path / "c.yaml")


def test_every_shipped_config_loads():
    names = {}
    for path in sorted(CONFIGS.rglob("*.yaml")):
        names[load_config(path).name] = path
    assert len(names) == len(list(CONFIGS.rglob("*.yaml")))  # no two runs share a folder


def test_data_config_keeps_the_crop_settings():
    data = from_mapping(DataConfig, {"crop_seconds": 0.5, "batch_size": 4}, "data")
    assert isinstance(data, CropConfig) and data.crop_seconds == 0.5 and data.batch_size == 4
