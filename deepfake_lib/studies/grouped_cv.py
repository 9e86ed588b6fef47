"""Cross-validated scores and pooled EERs with group-level intervals (speaker- or prompt-grouped folds).

A system is a pair of callables: ``fit(train_index) -> model`` and ``score(model, test_index) ->
scores`` (higher = more bona fide), so any features or back-end plug in. :func:`cross_validate`
scores every clip once, by the model of the fold that held it out; :func:`summarize_pooled` reads
the pooled out-of-fold scores (all attacks and attack by attack) with a grouped bootstrap interval
(:func:`~deepfake_lib.evaluation.summaries.eer_row`, groups = speakers); :func:`leave_one_attack_out`
does the same with each attack also left out of training; :func:`permutation_null` reruns the
cross-validation on shuffled labels, the chance level that a control is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.evaluation.folds import iter_fold_masks
from deepfake_lib.evaluation.summaries import eer_row

__all__ = ["cross_validate", "leave_one_attack_out", "permutation_null", "summarize_pooled"]

Fit = Callable[[np.ndarray], Any]
Score = Callable[[Any, np.ndarray], np.ndarray]


def cross_validate(
    labels: np.ndarray,
    folds: np.ndarray,
    fit: Fit,
    score: Score,
    *,
    train_mask: np.ndarray | None = None,
    test_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold scores [clips] (NaN where a clip was not tested).

    Fold k trains ``fit`` on the clips of the other folds (within ``train_mask``) and scores its
    own clips (within ``test_mask``). ``labels`` [clips] 1 Real / 0 Fake; ``folds`` [clips] ints.
    A fold whose training clips hold a single class is skipped (its clips stay NaN).
    """
    y = np.asarray(labels)
    f = np.asarray(folds)
    if y.shape != f.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and folds {f.shape}: need two [clips] arrays")
    keep_train = np.ones(y.size, bool) if train_mask is None else np.asarray(train_mask, bool)
    keep_test = np.ones(y.size, bool) if test_mask is None else np.asarray(test_mask, bool)
    out = np.full(y.size, np.nan)
    for _, train, test in iter_fold_masks(f):
        tr = np.flatnonzero(train & keep_train)
        te = np.flatnonzero(test & keep_test)
        if te.size == 0 or len(set(y[tr].tolist())) < 2:
            continue
        out[te] = np.asarray(score(fit(tr), te), dtype=np.float64)
    return out


def _row(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_bootstrap: int, seed: int) -> dict:
    row = eer_row(labels, scores, groups, n_bootstrap=n_bootstrap, seed=seed)
    keep = ("eer", "eer_low", "eer_high", "no_interval")
    out = {k: row.get(k) for k in keep}
    out.update(n_bonafide=int((labels == 1).sum()), n_spoof=int((labels == 0).sum()))
    return out


def summarize_pooled(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    attacks: Sequence[str],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    bonafide: str = "bonafide",
) -> dict[str, dict[str, Any]]:
    """``{"all": row, <attack>: row}`` of the pooled out-of-fold ``scores`` (NaN clips dropped).

    A row holds ``eer`` with ``eer_low``/``eer_high`` (bootstrap over ``groups``, e.g. speakers;
    exact bounds at 0 errors), ``no_interval`` (why there are none) and the clip counts. An
    attack's row pools every bona fide clip with that attack's clips.
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(groups).astype(str)
    a = np.asarray(attacks).astype(str)
    ok = np.isfinite(s)
    out = {}
    for attack in ["all", *sorted({str(v) for v in a[(y == 0) & ok]})]:
        sel = ok & (np.ones(y.size, bool) if attack == "all" else (a == attack) | (a == bonafide))
        if len(set(y[sel].tolist())) < 2:
            continue
        out[attack] = _row(y[sel], s[sel], g[sel], n_bootstrap, seed)
    return out


def leave_one_attack_out(
    labels: np.ndarray,
    folds: np.ndarray,
    attacks: Sequence[str],
    groups: np.ndarray,
    fit: Fit,
    score: Score,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    bonafide: str = "bonafide",
) -> dict[str, dict[str, Any]]:
    """Per attack: trained on the other folds without that attack, scored on the fold's bona fide
    clips and that attack's; pooled over the folds into one row as :func:`summarize_pooled`'s."""
    y = np.asarray(labels)
    a = np.asarray(attacks).astype(str)
    out = {}
    for attack in sorted({str(v) for v in a[y == 0]}):
        s = cross_validate(
            y, folds, fit, score, train_mask=a != attack, test_mask=(a == attack) | (a == bonafide)
        )
        ok = np.isfinite(s)
        if len(set(y[ok].tolist())) == 2:
            out[attack] = _row(y[ok], s[ok], np.asarray(groups).astype(str)[ok], n_bootstrap, seed)
    return out


def permutation_null(
    labels: np.ndarray,
    folds: np.ndarray,
    attacks: Sequence[str],
    fit: Fit,
    score: Score,
    *,
    n_permutations: int = 20,
    seed: int = 0,
    bonafide: str = "bonafide",
) -> dict[str, dict[str, float]]:
    """Pooled out-of-fold EERs of the same system trained on shuffled labels, ``n_permutations`` times.

    Returns ``{"all" | attack: {"q05", "median", "n"}}``: the 5% quantile and median of those EERs.
    Labels are shuffled across all clips (folds and attacks kept), the whole cross-validation is
    rerun, and each EER is taken against the shuffled labels, on all clips and on each attack's
    clips with the bona fide ones (as the real rows). A system whose EER lies below ``q05`` beats
    chance on this many clips.
    """
    y = np.asarray(labels)
    a = np.asarray(attacks).astype(str)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(int(n_permutations)):
        shuffled = rng.permutation(y)
        s = cross_validate(shuffled, folds, fit, score)
        ok = np.isfinite(s)
        for attack in ["all", *sorted({str(v) for v in a[y == 0]})]:
            sel = ok & (np.ones(y.size, bool) if attack == "all" else (a == attack) | (a == bonafide))
            if len(set(shuffled[sel].tolist())) == 2:
                draws.setdefault(attack, []).append(float(compute_eer(shuffled[sel], s[sel]).eer))
    return {
        k: {"q05": float(np.quantile(v, 0.05)), "median": float(np.median(v)), "n": len(v)}
        for k, v in draws.items()
    }
