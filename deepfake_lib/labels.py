"""Label names shared by every stage: bona fide / spoof names, synonyms and alignment by name.

Labels are 1 = bona fide (Real) and 0 = spoof (Fake), as in ``Hemg/Deepfake-Audio-Dataset``;
a model's own ``label2id`` is matched by name, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BONAFIDE", "UNKNOWN_ATTACK", "align_label_ids", "normalize_label_name"]

BONAFIDE = "bonafide"
"""The ``attack`` value of a bona fide clip."""
UNKNOWN_ATTACK = "unknown"
"""The ``attack`` value of a spoof whose generator is not known."""

_REAL_SYNONYMS = {"real", "bonafide", "bona-fide", "bona_fide", "bona fide", "genuine", "human", "1"}
_FAKE_SYNONYMS = {"fake", "spoof", "spoofed", "deepfake", "synthetic", "generated", "0"}


def normalize_label_name(name: Any) -> str:
    """Map a label name onto ``"Fake"`` or ``"Real"`` (case-insensitive, with synonyms).

    bonafide, genuine, real → Real; spoof, fake → Fake. Raises ``ValueError`` otherwise.
    """
    key = str(name).strip().lower()
    if key in _REAL_SYNONYMS:
        return "Real"
    if key in _FAKE_SYNONYMS:
        return "Fake"
    raise ValueError(
        f"label name {name!r} is neither a bona fide name ({', '.join(sorted(_REAL_SYNONYMS - {'1'}))}) "
        f"nor a spoof name ({', '.join(sorted(_FAKE_SYNONYMS - {'0'}))})"
    )


def align_label_ids(dataset_names: Sequence[str], model_label2id: Mapping[str, int]) -> dict[int, int] | None:
    """Map each dataset label index to the model's index of the same (normalised) name.

    Returns ``{dataset_id: model_id}``, or ``None`` when the model's names cannot all be
    normalised or do not form the same set (the caller then re-initialises the head).
    Positions are never assumed: ``{"real": 0, "fake": 1}`` maps Fake→1 and Real→0.
    """
    try:
        model_by_name = {normalize_label_name(n): int(i) for n, i in model_label2id.items()}
        data_names = [normalize_label_name(n) for n in dataset_names]
    except ValueError:
        return None
    if len(model_by_name) != len(model_label2id) or set(model_by_name) != set(data_names):
        return None
    return {i: model_by_name[n] for i, n in enumerate(data_names)}
