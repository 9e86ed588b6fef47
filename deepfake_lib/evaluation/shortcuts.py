"""Shortcut audits: how well does a single cheap cue tell bona fide from spoofed clips?

:func:`two_sided_eer` is the EER of one feature used in whichever direction separates better;
:func:`audit_single_cues` reports it per cue, pooled and per attack, next to the
label-permutation null (what a random feature reaches on the same clips), so a cue is flagged
only when it beats chance on this many clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepfake_lib.evaluation.error_rates import compute_eer

__all__ = ["audit_single_cues", "permutation_null", "rank_single_cues", "two_sided_eer"]


def two_sided_eer(labels: np.ndarray, values: np.ndarray) -> float:
    """EER of one feature [clips] used in whichever direction separates better (0.5 for a constant)."""
    y = np.asarray(labels)
    v = np.asarray(values, dtype=np.float64)
    if y.shape != v.shape:
        raise ValueError(f"labels {y.shape} and values {v.shape} differ in shape")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contain NaN or infinity")
    if np.ptp(v) == 0:
        return 0.5
    return float(min(compute_eer(y, v).eer, compute_eer(y, -v).eer))


def rank_single_cues(features: pd.DataFrame, labels: Sequence[int] | np.ndarray) -> pd.Series:
    """:func:`two_sided_eer` of each column of ``features`` [clips, cues] alone against ``labels``
    [clips] (1 Real, 0 Fake), indexed by column, lowest (most separating) first; ties keep the
    column order. A cue's NaN or infinite values are left out of its EER; a cue left with fewer
    than one clip of each class scores 0.5."""
    y = np.asarray(labels, dtype=np.int64)
    if len(features) != y.size:
        raise ValueError(f"features ({len(features)} rows) and labels ({y.size}) differ in length")
    eers = {}
    for name in features.columns:
        v = features[name].to_numpy(np.float64)
        keep = np.isfinite(v)
        both = 0 < int(y[keep].sum()) < int(keep.sum())
        eers[name] = two_sided_eer(y[keep], v[keep]) if both else 0.5
    return pd.Series(eers, dtype=np.float64, name="eer").sort_values(kind="stable")


def permutation_null(
    labels: np.ndarray, values: np.ndarray, *, n_permutations: int = 200, seed: int = 0
) -> np.ndarray:
    """Two-sided EERs [n_permutations] of ``values`` against shuffled ``labels``."""
    y = np.asarray(labels)
    v = np.asarray(values, dtype=np.float64)
    if np.ptp(v) == 0:
        return np.full(int(n_permutations), 0.5)
    rng = np.random.default_rng(seed)
    return np.array([two_sided_eer(rng.permutation(y), v) for _ in range(int(n_permutations))])


def audit_single_cues(
    cues: pd.DataFrame,
    labels: Sequence[int],
    attacks: Sequence[str],
    *,
    cue_names: Sequence[str] | None = None,
    n_permutations: int = 200,
    seed: int = 0,
    bonafide: str = "bonafide",
) -> pd.DataFrame:
    """Single-cue EERs, pooled (``attack`` = "all") and per attack (bona fide clips against that attack's).

    ``cues`` [clips, cues] (columns ``cue_names``, default all), ``labels`` [clips] (1 Real,
    0 Fake), ``attacks`` [clips] (``bonafide`` for bona fide clips). One row per (attack, cue):
    ``eer``, the permutation null's 1% quantile ``null_q01`` and median ``null_median``, and
    ``beats_null`` (eer below the 1% quantile). The same permutations serve every cue of an attack.
    """
    y = np.asarray(labels, dtype=np.int64)
    a = np.asarray(attacks).astype(str)
    names = list(cues.columns if cue_names is None else cue_names)
    missing = [c for c in names if c not in cues.columns]
    if missing:
        raise ValueError(f"cues: missing columns {missing}")
    if len(cues) != y.size or a.size != y.size:
        raise ValueError(f"cues ({len(cues)}), labels ({y.size}) and attacks ({a.size}) differ in length")
    rows = []
    for k, attack in enumerate(["all", *sorted({str(v) for v in a[y == 0]})]):
        sel = np.ones(y.size, bool) if attack == "all" else (a == attack) | (a == bonafide)
        for name in names:
            v = cues[name].to_numpy(np.float64)[sel]
            null = permutation_null(y[sel], v, n_permutations=n_permutations, seed=seed + k)
            eer = two_sided_eer(y[sel], v)
            q01 = float(np.quantile(null, 0.01))
            rows.append(
                {
                    "attack": attack,
                    "cue": name,
                    "eer": eer,
                    "null_q01": q01,
                    "null_median": float(np.median(null)),
                    "beats_null": bool(eer < q01),
                }
            )
    return pd.DataFrame(rows)
