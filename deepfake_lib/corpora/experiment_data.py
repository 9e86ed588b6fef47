"""The data of an experiment: the source an :class:`~deepfake_lib.config.ExperimentConfig` names, loaded and split into train/validation/test by groups (the same split in every notebook)."""

from __future__ import annotations

from typing import Any

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.embedded import CorpusConfig
from deepfake_lib.corpora.sources import (
    load_source,
    make_splits,
)

__all__ = [
    "corpus_config_for",
    "prepare_data",
]


# --------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------
def corpus_config_for(cfg: ExperimentConfig) -> Any:
    """The :class:`~deepfake_lib.corpora.embedded.CorpusConfig` that ``cfg`` asks for."""
    return CorpusConfig(
        n_utterances=cfg.n_utterances,
        spoofs_per_utterance=cfg.spoofs_per_utterance,
        difficulty=cfg.difficulty,
        seed=cfg.seed,
    )


def prepare_data(cfg: ExperimentConfig) -> tuple[Any, Any]:
    """Load ``cfg.data_source`` and split it into train/validation/test by groups.

    Returns ``(DatasetDict, LoadReport)``. Deterministic given the config, so every notebook
    that calls it sees the same split.
    """
    dd, report = load_source(
        cfg.data_source,
        corpus_config=corpus_config_for(cfg) if cfg.is_embedded else None,
        skip_bad_audio=cfg.skip_bad_audio,
    )
    splits = make_splits(dd, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed)
    return splits, report
