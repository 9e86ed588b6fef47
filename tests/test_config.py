"""ExperimentConfig validation, parameter loading and path resolution."""

import dataclasses
from pathlib import Path

import pytest

from deepfake_lib.config import ConfigError, ExperimentConfig, project_root, resolve_path


def test_defaults_are_the_offline_configuration() -> None:
    cfg = ExperimentConfig()
    assert cfg.data_source == "embedded" and cfg.model_source == "tiny"
    assert cfg.is_embedded
    assert cfg.precision == "auto" and cfg.device == "auto"


def test_from_params_ignores_foreign_names_but_strict_rejects_them() -> None:
    cfg = ExperimentConfig.from_params({"epochs": 3, "In": [], "_oh": {}, "np": object()})
    assert cfg.epochs == 3
    with pytest.raises(ConfigError, match="unknown parameter.*epohcs"):
        ExperimentConfig.from_params({"epohcs": 3}, strict=True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"augment_training": "False"}, "augment_training"),  # no string booleans
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"learning_rate": "3e-4"}, "learning_rate"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum to less than 1"),
        ({"precision": "fp8"}, "precision"),
        ({"difficulty": 1.5}, "difficulty"),
        ({"patience": 0}, "patience"),
        ({"freeze_feature_encoder": "yes"}, "freeze_feature_encoder"),
    ],
)
def test_bad_values_fail_loudly(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**changes)


def test_int_is_accepted_for_float_and_none_for_optional_bool() -> None:
    cfg = ExperimentConfig(learning_rate=1, freeze_feature_encoder=None, train_crop_s=4)
    assert cfg.learning_rate == 1 and cfg.freeze_feature_encoder is None


def test_frozen_and_replace_revalidates() -> None:
    cfg = ExperimentConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    assert cfg.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError):
        cfg.replace(batch_size=0)


def test_yaml_round_trip_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text("model_source: some/model\nepochs: 7\nprecision: fp16\nlearning_rate: 1e-3\n")
    cfg = ExperimentConfig.from_yaml(good)
    assert (cfg.model_source, cfg.epochs, cfg.precision) == ("some/model", 7, "fp16")
    assert cfg.learning_rate == 1e-3  # YAML 1.1 reads 1e-3 as a string; numbers are meant
    typo = tmp_path / "typo.yaml"
    typo.write_text("epoch: 7\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*epoch"):
        ExperimentConfig.from_yaml(typo)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        ExperimentConfig.from_yaml(listy)


def test_shipped_parameter_files_are_valid() -> None:
    files = sorted((Path(__file__).parents[1] / "params").glob("*.yaml"))
    assert files, "params/*.yaml should ship at least the Colab T4 configuration"
    for f in files:
        ExperimentConfig.from_yaml(f)


def test_json_round_trip(tmp_path: Path) -> None:
    cfg = ExperimentConfig(epochs=4, freeze_feature_encoder=True)
    path = cfg.to_json(tmp_path / "sub" / "config.json")
    import json

    assert ExperimentConfig.from_params(json.loads(path.read_text()), strict=True) == cfg


def test_paths_resolve_against_project_root_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFAKE_LIB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert project_root() == (tmp_path / "home").resolve()
    assert resolve_path("runs/x") == (tmp_path / "home").resolve() / "runs/x"
    assert resolve_path("/abs/x") == Path("/abs/x")
    assert ExperimentConfig(run_dir="runs/a").run_path == (tmp_path / "home").resolve() / "runs/a"


def test_project_root_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPFAKE_LIB_HOME", raising=False)
    assert (project_root() / "pyproject.toml").is_file()


def test_resolve_source_finds_relative_folders_under_the_project_root(tmp_path, monkeypatch):
    from deepfake_lib.config import HOME_ENV, resolve_source

    (tmp_path / "data" / "corpus").mkdir(parents=True)
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.chdir(elsewhere)  # as a kernel started in notebooks/
    assert resolve_source("data/corpus") == str(tmp_path / "data" / "corpus")
    assert resolve_source("owner/name") == "owner/name"  # not a local path: a Hub id
    assert resolve_source("embedded") == "embedded"
    assert resolve_source(str(tmp_path / "x")) == str(tmp_path / "x")


@pytest.mark.parametrize(
    "old, new",
    [
        ("max_duration_s", "train_crop_s"),
        ("augment", "augment_training"),
        ("robustness", "run_robustness"),
        ("leave_one_attack_out", "run_leave_one_attack_out"),
    ],
)
def test_a_renamed_parameter_is_refused_with_its_new_name(old, new, tmp_path):
    with pytest.raises(ConfigError, match=f"{old} is now {new}"):
        ExperimentConfig.from_params({old: True}, strict=True)
    with pytest.raises(ConfigError, match=f"{old} is now {new}"):
        ExperimentConfig.from_params({old: 1.0})  # a notebook namespace holding the old parameter
    path = tmp_path / "old.yaml"
    path.write_text(f"{old}: true\n")
    with pytest.raises(ConfigError, match="old.yaml: renamed parameter"):
        ExperimentConfig.from_yaml(path)
    assert new in ExperimentConfig.field_names() and old not in ExperimentConfig.field_names()


def test_a_module_of_the_same_name_in_a_notebook_namespace_is_not_a_parameter():
    import types

    cfg = ExperimentConfig.from_params({"augment": types.ModuleType("augment"), "epochs": 2})
    assert cfg.epochs == 2
