"""A dress rehearsal of the Colab run, offline: stand-ins for the Hub checkpoint and dataset.

``params/colab_t4.yaml`` fine-tunes ``mo-thecreator/Deepfake-audio-detection`` (wav2vec2-base
with a 2-class head) on ``Hemg/Deepfake-Audio-Dataset``. No machine here reaches the Hub, so
this module builds two local stand-ins that go through exactly the loaders that read Hub ids:

* :func:`build_checkpoint`: a folder written with ``save_pretrained`` (model + feature
  extractor) holding the published model's architecture, its own label names and its
  feature-extractor settings, with **random weights** (:data:`REFERENCE_CONFIG`,
  :data:`REFERENCE_ID2LABEL`, :data:`REFERENCE_FEATURE_EXTRACTOR` say where each value comes
  from);
* :func:`build_hemg_dataset`: a folder laid out like the Hub dataset repository
  (``data/train-00000-of-00001.parquet`` plus a card), 100 rows of about 10 s with only the
  ``audio`` (embedded bytes) and ``label`` (ClassLabel ``["Fake", "Real"]``) columns, made
  from the embedded corpus (:mod:`deepfake_lib.corpora.embedded`).

:func:`run_rehearsal` then runs the notebook series on them with ``params/rehearsal.yaml``
(colab_t4's values, the two sources swapped for the stand-ins, and a documented epoch cap)
and records wall time and the kernel's peak resident memory. Command line::

    python -m deepfake_lib.notebook.rehearsal build --out runs/rehearsal_standins
    python -m deepfake_lib.notebook.rehearsal run --run-dir runs/rehearsal --params params/rehearsal.yaml
    python -m deepfake_lib.notebook.rehearsal check --run-dir runs/rehearsal
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE

__all__ = [
    "build_checkpoint",
    "build_hemg_dataset",
    "build_standins",
    "check_standin",
    "HEMG_CLIP_S",
    "main",
    "MARKER",
    "missing_artefacts",
    "REFERENCE_CONFIG",
    "REFERENCE_FEATURE_EXTRACTOR",
    "REFERENCE_ID2LABEL",
    "REFERENCE_MODEL_ID",
    "resolve_source_paths",
    "RUN_ARTEFACTS",
    "run_rehearsal",
    "STANDIN_SOURCE_KEYS",
    "StandinError",
]

REFERENCE_MODEL_ID = "motheecreator/Deepfake-audio-detection"
"""The checkpoint's id as the Hub spells it (``params/colab_t4.yaml`` says ``mo-thecreator``)."""

REFERENCE_CONFIG: dict[str, Any] = dict(
    # Confirmed in the config.json of MelodyMachine/Deepfake-audio-detection-V2, a fine-tune whose
    # ``_name_or_path`` is motheecreator/Deepfake-audio-detection (same architecture):
    architectures=["Wav2Vec2ForSequenceClassification"],
    activation_dropout=0.0,
    attention_dropout=0.1,
    apply_spec_augment=True,
    classifier_proj_size=256,
    conv_bias=False,
    conv_dim=(512, 512, 512, 512, 512, 512, 512),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    ctc_loss_reduction="sum",
    do_stable_layer_norm=False,
    # The rest: facebook/wav2vec2-base's published config, which the model card names as its base
    # (these are also transformers' Wav2Vec2Config defaults).
    feat_extract_norm="group",
    feat_extract_activation="gelu",
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout=0.1,
    feat_proj_dropout=0.1,
    final_dropout=0.0,
    layerdrop=0.1,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    mask_time_prob=0.05,
    mask_time_length=10,
    use_weighted_layer_sum=False,
)
"""Architecture of the published checkpoint (wav2vec2-base, 94.6 M parameters with its head)."""

REFERENCE_ID2LABEL: dict[int, str] = {0: "fake", 1: "real"}
"""The checkpoint's own label names. Not confirmed from a stored copy of its config.json: the
checkpoint was trained with ``audiofolder`` from ``fake/`` and ``real/`` folders (Hub tags), which
names classes by folder, lower case, in sorted order. Lower case exercises the by-name,
case-insensitive alignment onto the dataset's ``["Fake", "Real"]``."""

REFERENCE_FEATURE_EXTRACTOR: dict[str, Any] = dict(
    feature_size=1,
    sampling_rate=TARGET_SAMPLE_RATE,
    padding_value=0.0,
    padding_side="right",
    do_normalize=True,
    return_attention_mask=False,
)
"""``preprocessor_config.json`` of wav2vec2-base (215 bytes on the Hub, as the checkpoint's):
zero padding without an attention mask, as group-norm wav2vec2 models were trained."""

MARKER = "rehearsal_standin.json"
"""Written last into each stand-in folder: a folder without it is incomplete."""

HEMG_CLIP_S = 10.0
"""Hemg clips last about 10 s."""

STANDIN_SOURCE_KEYS: tuple[str, str] = ("data_source", "model_source")
"""The only parameters (besides the cap) in which ``params/rehearsal.yaml`` differs from colab_t4."""

RUN_ARTEFACTS: tuple[str, ...] = (
    "series.json",
    "config.json",
    "splits.csv",
    "model/config.json",
    "model/model.safetensors",
    "model/preprocessor_config.json",
    "history.csv",
    "validation_scores.csv",
    "test_scores.csv",
    "epoch_scores.csv",
    "metrics.json",
    "notebooks/01_data_exploration.ipynb",
    "notebooks/02_preprocessing_augmentation.ipynb",
    "notebooks/03_fine_tuning.ipynb",
    "notebooks/04_analysis_reflection.ipynb",
    "figures/01_class_balance.png",
    "figures/02_augmentations.png",
    "figures/03_history.png",
    "figures/04_roc_det.png",
    "figures/04_robustness.png",
    "figures/04_protocols.png",
    "analysis/robustness.csv",
    "analysis/study_protocol.json",
)
"""Files a finished run folder holds whatever the hardware (a T4 run writes the same ones)."""


class StandinError(RuntimeError):
    """A stand-in folder is missing, incomplete, or cannot be written."""


# --------------------------------------------------------------------------------------
# the checkpoint
# --------------------------------------------------------------------------------------
def build_checkpoint(
    folder: str | os.PathLike[str],
    *,
    seed: int = 0,
    id2label: Mapping[int, str] | None = None,
    **overrides: Any,
) -> Path:
    """Write a random-weight stand-in for the published checkpoint with ``save_pretrained``.

    Args:
        folder: output folder (created; an existing marker is replaced last).
        seed: torch seed for the random weights.
        id2label: the head's label names (default :data:`REFERENCE_ID2LABEL`).
        overrides: replace entries of :data:`REFERENCE_CONFIG` (tests shrink the layers; the
            rehearsal itself uses none).

    Returns the folder, which ``deepfake_lib.modeling.models.load_model`` reads like a Hub id.
    """
    import torch
    from transformers import (
        AutoModelForAudioClassification,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
    )

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    labels = {int(k): str(v) for k, v in (id2label or REFERENCE_ID2LABEL).items()}
    values = {**REFERENCE_CONFIG, **overrides}
    cfg = Wav2Vec2Config(
        **values, num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    torch.manual_seed(seed)
    model = AutoModelForAudioClassification.from_config(cfg)
    model.save_pretrained(out, safe_serialization=True)
    Wav2Vec2FeatureExtractor(**REFERENCE_FEATURE_EXTRACTOR).save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    _write_marker(
        out,
        {
            "kind": "checkpoint",
            "stands_in_for": REFERENCE_MODEL_ID,
            "random_weights": True,
            "seed": seed,
            "n_parameters": int(n_params),
            "id2label": labels,
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        },
    )
    return out


# --------------------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------------------
def _hemg_features_metadata() -> bytes:
    import datasets

    features = datasets.Features(
        {"audio": datasets.Audio(), "label": datasets.ClassLabel(names=list(LABEL_NAMES))}
    )
    return json.dumps({"info": {"features": features.to_dict()}}).encode()


def _dataset_card(n_rows: int, clip_s: float, seed: int) -> str:
    return (
        "---\n"
        "configs:\n"
        "- config_name: default\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: data/train-*\n"
        "---\n"
        f"# Stand-in for Hemg/Deepfake-Audio-Dataset\n\n"
        f"{n_rows} rows of about {clip_s:g} s generated by deepfake_lib.corpora.embedded (seed {seed}); columns "
        "`audio` (embedded WAV bytes) and `label` (ClassLabel: 0 = Fake, 1 = Real), as the Hub dataset.\n"
    )


def build_hemg_dataset(
    folder: str | os.PathLike[str],
    *,
    n_rows: int = 100,
    clip_s: float = HEMG_CLIP_S,
    seed: int = 0,
    difficulty: float = 0.5,
) -> Path:
    """Write a Hemg-layout dataset folder: ``data/train-00000-of-00001.parquet`` and ``README.md``.

    ``n_rows`` (even) clips of ``clip_s`` ± 0.5 s from ``n_rows / 2`` embedded-corpus utterances
    (one bona fide clip and one spoof each), at the corpus' mixed native rates; rows are
    shuffled with ``seed``. Only ``audio`` ({"bytes", "path"}) and ``label`` are kept, as on the
    Hub, so no utterance id is known to the loader (as with Hemg itself).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepfake_lib.corpora.embedded import CorpusConfig, generate_corpus

    if n_rows < 4 or n_rows % 2:
        raise ValueError(
            f"n_rows = {n_rows}: need an even number of at least 4 (one bona fide clip and one spoof each)"
        )
    if clip_s < 1.0:
        raise ValueError(f"clip_s = {clip_s}: clips must last at least 1 s")
    out = Path(folder)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    corpus = generate_corpus(
        CorpusConfig(
            n_utterances=n_rows // 2,
            spoofs_per_utterance=1,
            difficulty=difficulty,
            seed=seed,
            min_duration_s=clip_s - 0.5,
            max_duration_s=clip_s + 0.5,
        )
    )
    order = np.random.default_rng(seed).permutation(corpus.num_rows)
    table = corpus.select(["audio", "label"]).take(pa.array(order))
    # neutral file names, as on the Hub: the corpus' own names carry the utterance and the attack
    audio = [
        {"bytes": a["bytes"], "path": f"clip_{i:03d}.wav"}
        for i, a in enumerate(table.column("audio").to_pylist())
    ]
    table = table.set_column(0, "audio", pa.array(audio, type=table.schema.field("audio").type))
    table = table.replace_schema_metadata({b"huggingface": _hemg_features_metadata()})
    pq.write_table(table, out / "data" / "train-00000-of-00001.parquet", row_group_size=64)
    (out / "README.md").write_text(_dataset_card(n_rows, clip_s, seed))
    labels = table.column("label").to_pylist()
    _write_marker(
        out,
        {
            "kind": "dataset",
            "stands_in_for": "Hemg/Deepfake-Audio-Dataset",
            "n_rows": n_rows,
            "n_real": int(sum(labels)),
            "clip_s": clip_s,
            "seed": seed,
            "difficulty": difficulty,
        },
    )
    return out


def build_standins(
    out_dir: str | os.PathLike[str], *, n_rows: int = 100, clip_s: float = HEMG_CLIP_S, seed: int = 0
) -> dict[str, Path]:
    """Both stand-ins under ``out_dir``: ``{"data_source": out_dir/data, "model_source": out_dir/model}``."""
    root = Path(out_dir)
    return {
        "data_source": build_hemg_dataset(root / "data", n_rows=n_rows, clip_s=clip_s, seed=seed),
        "model_source": build_checkpoint(root / "model", seed=seed),
    }


def _write_marker(folder: Path, info: Mapping[str, Any]) -> None:
    (folder / MARKER).write_text(json.dumps(dict(info), indent=2) + "\n")


def check_standin(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The marker of a complete stand-in folder; raises :class:`StandinError` naming the folder otherwise."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        raise StandinError(
            f"{folder}: not a complete stand-in (no {MARKER}); run "
            "`python -m deepfake_lib.notebook.rehearsal build` (or `make rehearse`)"
        )
    return json.loads(marker.read_text())


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
def resolve_source_paths(params_file: str | os.PathLike[str]) -> dict[str, str]:
    """The stand-in sources of a params file as absolute paths, checked complete.

    The notebooks run with the ``notebooks/`` folder as working directory, where a relative
    source path would not resolve, so relative paths are taken against the project root.
    """
    import yaml

    from deepfake_lib.config import resolve_path

    values = yaml.safe_load(Path(params_file).read_text()) or {}
    out = {}
    for key in STANDIN_SOURCE_KEYS:
        if key not in values:
            raise StandinError(
                f"{params_file}: no {key!r}; the rehearsal swaps both sources for local stand-ins"
            )
        path = resolve_path(str(values[key]))
        check_standin(path)
        out[key] = str(path)
    return out


def run_rehearsal(
    run_dir: str | os.PathLike[str],
    params_file: str | os.PathLike[str],
    *,
    notebooks: Sequence[str] | None = None,
    log_output: bool = False,
) -> dict[str, Any]:
    """Run the notebook series on the stand-ins; returns the series summary plus measurements.

    Adds ``wall_seconds`` and ``kernel_peak_rss_mb`` (the largest resident memory of any kernel
    this process started and waited for, MB; run one notebook per process to get it per notebook).
    """
    from deepfake_lib.notebook.series import NOTEBOOKS, run_series

    sources = resolve_source_paths(params_file)
    started = time.perf_counter()
    summary = run_series(
        run_dir,
        params_file=params_file,
        parameters=sources,
        notebooks=tuple(notebooks or NOTEBOOKS),
        log_output=log_output,
    )
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["kernel_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1)
    return summary


def missing_artefacts(run_dir: str | os.PathLike[str], expected: Sequence[str] = RUN_ARTEFACTS) -> list[str]:
    """Entries of ``expected`` (paths relative to ``run_dir``) that the run folder lacks."""
    run = Path(run_dir)
    return [name for name in expected if not (run / name).exists()]


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deepfake_lib.notebook.rehearsal {build,run,check}``."""
    from deepfake_lib.config import resolve_path

    parser = argparse.ArgumentParser(
        prog="python -m deepfake_lib.notebook.rehearsal", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build the checkpoint and dataset stand-ins")
    p.add_argument("--out", default="runs/rehearsal_standins", help="folder (relative to the project root)")
    p.add_argument("--n-rows", type=int, default=100, help="dataset rows (default 100, as Hemg)")
    p.add_argument("--clip-s", type=float, default=HEMG_CLIP_S, help="clip length, seconds (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("run", help="run notebooks on the stand-ins")
    p.add_argument("--run-dir", default="runs/rehearsal", help="run folder (relative to the project root)")
    p.add_argument(
        "--params", default="params/rehearsal.yaml", help="params file (relative to the project root)"
    )
    p.add_argument(
        "--notebook", action="append", help="run only this notebook (repeatable; default all four)"
    )
    p.add_argument("--report", help="write the summary and measurements as JSON here")
    p = sub.add_parser("check", help="list the artefacts a finished run folder lacks")
    p.add_argument("--run-dir", default="runs/rehearsal")
    args = parser.parse_args(argv)

    if args.command == "build":
        paths = build_standins(resolve_path(args.out), n_rows=args.n_rows, clip_s=args.clip_s, seed=args.seed)
        for key, path in paths.items():
            print(f"{key}: {path}")
        return 0
    if args.command == "run":
        summary = run_rehearsal(
            resolve_path(args.run_dir), resolve_path(args.params), notebooks=args.notebook
        )
        if args.report:
            Path(args.report).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"{summary['wall_seconds']:.0f} s, kernel peak RSS {summary['kernel_peak_rss_mb']:.0f} MB")
        return 0
    missing = missing_artefacts(resolve_path(args.run_dir))
    for name in missing:
        print(f"missing: {name}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
