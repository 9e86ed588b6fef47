"""Audit a built real-speech corpus: the 29 cheap cues of every clip, and each cue's EER alone,
pooled and attack by attack, against the label-permutation null."""

from __future__ import annotations

import os

import pandas as pd

from deepfake_lib.audio.cues import CHEAP_CUE_NAMES, extract_cheap_cues
from deepfake_lib.corpora.real_speech import load_corpus
from deepfake_lib.corpora.sources import load_example_native
from deepfake_lib.evaluation.shortcuts import audit_single_cues

__all__ = ["audit_corpus", "measure_corpus_cues"]


def measure_corpus_cues(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per clip of the corpus in ``folder``: clip_id, label, attack, speaker_id and the
    :data:`~deepfake_lib.audio.cues.CHEAP_CUE_NAMES` (units as :func:`extract_cheap_cues`)."""
    dd, _ = load_corpus(folder)
    rows = []
    for ex in dd["train"]:
        wave, sr = load_example_native(ex)
        rows.append(
            {
                "clip_id": ex["clip_id"],
                "label": int(ex["label"]),
                "attack": ex["attack"],
                "speaker_id": ex["speaker_id"],
                **extract_cheap_cues(wave, sr),
            }
        )
    return pd.DataFrame(rows)


def audit_corpus(folder: str | os.PathLike[str], *, n_permutations: int = 200, seed: int = 0) -> pd.DataFrame:
    """Single-cue EERs of the corpus in ``folder``, pooled ("all") and per attack, with the
    permutation null (columns as :func:`~deepfake_lib.evaluation.shortcuts.audit_single_cues`),
    strongest cue first within each attack."""
    table = measure_corpus_cues(folder)
    audit = audit_single_cues(
        table[list(CHEAP_CUE_NAMES)],
        table["label"],
        table["attack"],
        n_permutations=n_permutations,
        seed=seed,
    )
    return audit.sort_values(["attack", "eer"], kind="stable").reset_index(drop=True)
