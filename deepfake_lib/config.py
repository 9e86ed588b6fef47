"""Experiment configuration and path resolution.

One frozen dataclass, :class:`ExperimentConfig`, holds every parameter the notebooks and the
command line accept. Its defaults are the cheap offline configuration (the embedded corpus and
the tiny wav2vec2); a Hub run overrides a few fields (see ``params/colab_t4.yaml``).

Relative paths are resolved against :func:`project_root`, never the current directory, because
nbval starts kernels in the notebook's folder and papermill in the caller's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "HOME_ENV",
    "project_root",
    "quiet_libraries",
    "resolve_path",
    "resolve_source",
]

HOME_ENV = "DEEPFAKE_LIB_HOME"
"""Environment variable that, when set, is the folder relative paths resolve against."""


def project_root() -> Path:
    """Folder that relative paths (``run_dir``, caches) are resolved against.

    ``$DEEPFAKE_LIB_HOME`` when set; else the source checkout holding the package (an
    editable install, where ``pyproject.toml`` sits next to ``deepfake_lib/``); else
    ``~/deepfake_lib`` (a non-editable install, as on Colab).
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "deepfake_lib").is_dir():
        return checkout
    return (Path.home() / "deepfake_lib").resolve()


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Absolute path for ``path``: unchanged if absolute, else under :func:`project_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def resolve_source(source: str) -> str:
    """Where a data or model source points: a local path is made absolute, anything else kept.

    A relative path is looked up under :func:`project_root` first (notebooks run with
    ``notebooks/`` as their working folder, papermill callers with theirs), then under the
    working folder; a source that exists in neither (a Hub id such as ``owner/name``, or
    ``"embedded"``/``"tiny"``) is returned unchanged.
    """
    path = Path(source).expanduser()
    if path.is_absolute():
        return str(path)
    for candidate in (project_root() / path, Path.cwd() / path):
        if candidate.exists():
            return str(candidate)
    return source


class ConfigError(ValueError):
    """A parameter has the wrong type, an impossible value, or an unknown name."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Every parameter of a run; the notebooks' ``parameters`` cells use these names.

    Durations are in seconds, rates in Hz, fractions in [0, 1].
    """

    # data
    data_source: str = (
        "embedded"  # "embedded", a Hub dataset id, a parquet file/folder, an audiofolder, a protocol file
    )
    n_utterances: int = 300  # embedded corpus: utterances; each gives one bona fide clip and its spoofs
    spoofs_per_utterance: int = 1  # embedded corpus: spoofed versions per utterance
    difficulty: float = 0.5  # embedded corpus: from 0 (blatant artefacts) to 1 (faint ones)
    val_fraction: float = 0.15  # share of groups for validation (model selection)
    test_fraction: float = 0.15  # share of groups for the test split (reported once)
    skip_bad_audio: bool = False  # skip undecodable rows (and report them) instead of failing
    # model
    model_source: str = "tiny"  # "tiny", a Hub model id, or a local model folder
    freeze_feature_encoder: bool | None = (
        None  # None: freeze for pretrained checkpoints, train it for the tiny model
    )
    freeze_base: bool = False  # train only the classification head
    use_weighted_layer_sum: bool = False  # classify from a learned mix of all transformer layers
    keep_layers: int | None = None  # keep the first N transformer layers (None: all); saved with the model
    backend: str = "pooled_linear"  # classifier head by name: "pooled_linear" (the checkpoint's own), "attentive_stats", or a registered one
    # training
    epochs: int = 16  # upper bound; early stopping on validation EER decides
    patience: int = 4  # epochs without a better validation EER before stopping
    batch_size: int = 16  # clips per device step
    gradient_accumulation_steps: int = 1  # steps per optimiser update
    learning_rate: float = 5e-4  # peak learning rate (linear warm-up then decay)
    warmup_fraction: float = 0.1  # share of optimiser steps spent warming up
    weight_decay: float = 0.01  # AdamW weight decay
    train_crop_s: float = (
        1.5  # training crop length, seconds (random crop, repeat-pad; 4 s for pretrained models)
    )
    eval_window_s: float = 0.0  # evaluation: 0 scores whole clips, else the mean over windows of this length
    augment_training: bool = True  # on-the-fly augmentation of training clips (never validation/test)
    class_weighting: bool = True  # weight the loss by inverse class frequency when labels are imbalanced
    precision: str = "auto"  # "auto" (fp16 on CUDA, fp32 on CPU), "fp32", "fp16", "bf16"
    device: str = "auto"  # "auto", "cpu", "cuda"
    num_workers: int = 0  # DataLoader worker processes
    resume: bool = False  # continue from the last checkpoint in run_dir
    seed: int = 0  # one seed for the corpus, split, augmentation and initialisation
    run_dir: str = "runs/demo"  # relative to the project root; every stage reads and writes here
    params_file: str = ""  # a params YAML (path or http URL) a notebook applies over its parameters cell
    # evaluation and analysis
    n_bootstrap: int = 1000  # bootstrap resamples for 95% confidence intervals
    run_robustness: bool = True  # score the test split under noise, codecs, reverb, ...
    run_leave_one_attack_out: bool = True  # retrain with each attack held out (cheap runs)
    # Epochs of each leave-one-attack-out run and of its same-budget control (same epochs, same
    # training-set size). Default 4: cheap runs, fewer than the reference run's ``epochs``, so the
    # held-out EER is compared with its control, never with the reference run.
    loao_epochs: int = 4  # epochs for each leave-one-attack-out run and its same-budget control
    cross_source: str = "embedded"  # a second source to test on; "embedded": a fresh embedded corpus (other seed, fainter artefacts); "": none

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise ConfigError(
                    f"parameter {f.name!r} = {value!r} ({type(value).__name__}) "
                    f"is not of type {hints[f.name]}"
                )
        _check(self.n_utterances >= 4, "n_utterances must be at least 4")
        _check(self.spoofs_per_utterance >= 1, "spoofs_per_utterance must be at least 1")
        _check(0.0 <= self.difficulty <= 1.0, "difficulty must lie in [0, 1]")
        _check(
            0.0 < self.val_fraction < 1.0
            and 0.0 < self.test_fraction < 1.0
            and self.val_fraction + self.test_fraction < 1.0,
            "val_fraction and test_fraction must be in (0, 1) and sum to less than 1",
        )
        _check(self.keep_layers is None or self.keep_layers >= 1, "keep_layers must be None or at least 1")
        _check(self.epochs >= 1, "epochs must be at least 1")
        _check(self.patience >= 1, "patience must be at least 1")
        _check(self.batch_size >= 1, "batch_size must be at least 1")
        _check(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1")
        _check(self.learning_rate > 0, "learning_rate must be positive")
        _check(0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must lie in [0, 1)")
        _check(self.train_crop_s > 0, "train_crop_s must be positive")
        _check(self.eval_window_s >= 0, "eval_window_s must be >= 0 (0 = full clip)")
        _check(
            self.precision in {"auto", "fp32", "fp16", "bf16"}, "precision must be auto, fp32, fp16 or bf16"
        )
        _check(self.device in {"auto", "cpu", "cuda"}, "device must be auto, cpu or cuda")
        _check(self.num_workers >= 0, "num_workers must be >= 0")
        _check(self.n_bootstrap >= 0, "n_bootstrap must be >= 0")
        _check(self.loao_epochs >= 1, "loao_epochs must be at least 1")
        _check(bool(self.data_source) and bool(self.model_source), "data_source and model_source must be set")

    # construction ----------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        """Names of all parameters, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, strict: bool = False) -> ExperimentConfig:
        """Build from a mapping such as a notebook's ``globals()``.

        Keys that are not parameters are ignored (a notebook's namespace holds much else),
        unless ``strict`` is true, when they raise :class:`ConfigError` (for YAML files and
        the command line, where every key is meant as a parameter).
        """
        names = set(cls.field_names())
        renamed = sorted(
            k
            for k in params
            if k in RENAMED_PARAMETERS and (strict or isinstance(params[k], (bool, int, float)))
        )
        if renamed:
            raise ConfigError(
                "renamed parameter(s): " + ", ".join(f"{k} is now {RENAMED_PARAMETERS[k]}" for k in renamed)
            )
        if strict:
            unknown = sorted(k for k in params if k not in names)
            if unknown:
                raise ConfigError(
                    f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
                )
        return cls(**{k: v for k, v in params.items() if k in names})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Read a papermill-style parameter file (a flat YAML mapping)."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read parameters ({exc})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of parameter names to values")
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            # YAML 1.1 reads exponents without a dot (1e-3) as strings; numbers are meant
            if isinstance(value, str) and hints.get(key) is float:
                try:
                    data[key] = float(value)
                except ValueError:
                    pass
        try:
            return cls.from_params(data, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from exc

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # derived values --------------------------------------------------------------------
    @property
    def run_path(self) -> Path:
        """Absolute run folder."""
        return resolve_path(self.run_dir)

    @property
    def is_embedded(self) -> bool:
        """True when the data is the generated offline corpus."""
        return self.data_source == "embedded"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all parameters (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the parameters as indented JSON and return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return p


RENAMED_PARAMETERS: dict[str, str] = {
    "max_duration_s": "train_crop_s",
    "augment": "augment_training",
    "robustness": "run_robustness",
    "leave_one_attack_out": "run_leave_one_attack_out",
}
"""Old parameter name -> new name. An old name is refused with a message naming the new one (in a
notebook's namespace only when it holds a bool or a number, as the old parameter did)."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _matches(value: Any, hint: Any) -> bool:
    """True when ``value`` fits a simple annotation (no string booleans, ints accepted as floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return isinstance(value, hint)


def quiet_libraries() -> None:
    """Silence datasets' progress bars and the advisory logging of datasets and transformers.

    Called explicitly by the notebooks (never on import), so that executed notebooks hold
    results rather than progress-bar debris (transformers' own bars, e.g. "Writing model shards"
    on every save); warnings and errors still show. Downloads from the Hugging Face Hub keep
    their progress bars (a 378 MB checkpoint should not look like a hang): huggingface_hub's bars
    stay on, and :func:`deepfake_lib.corpora.sources.load_source` turns datasets' bars on around a Hub download.
    """
    # imported here, not at the top: config is the module the command line and every stage
    # read first, and it must not pull in the ML stack (seconds of import time)
    import datasets
    import huggingface_hub.utils
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # this also turns huggingface_hub's bars off,
    huggingface_hub.utils.enable_progress_bars()  # which downloads need: back on
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("deepfake_lib").setLevel(logging.WARNING)
