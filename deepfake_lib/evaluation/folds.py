"""Cross-validation folds by speaker and by generator, for corpora that name both.

Speaker-grouped folds (:func:`speaker_folds`): fold k holds out bona fide speaker(s) k together
with every spoof made from their recordings (re-synthesis keeps the source speaker's id) and a
share of the text-to-speech voices, so each bona fide speaker and each voice is scored exactly
once while unseen in training. Generator folds (:func:`leave_one_out_masks`) cross those with
the attack: train without one generator and without the fold's speakers, test on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["assign_group_folds", "assign_speaker_folds", "iter_fold_masks", "leave_one_attack_out_masks"]


def assign_speaker_folds(
    speakers: Sequence[str], labels: Sequence[int], *, n_folds: int | None = None
) -> np.ndarray:
    """Fold index [clips] (0..n_folds-1) for clips with a ``speakers`` id and ``labels`` (1 Real, 0 Fake).

    Bona fide speakers (ids that own a bona fide clip), sorted, go round-robin over the folds:
    one per fold when ``n_folds`` is None. Spoof-only ids (text-to-speech voices), sorted, go
    round-robin too, starting after the last bona fide fold, so no fold is left without spoofs
    when there are at least as many voices as folds. Deterministic: no seed.
    """
    spk = np.asarray(speakers).astype(str)
    y = np.asarray(labels)
    if spk.shape != y.shape or spk.ndim != 1:
        raise ValueError(f"speakers {spk.shape} and labels {y.shape}: need two [clips] arrays")
    bona = sorted(set(spk[y == 1]))
    if len(bona) < 2:
        raise ValueError(f"need at least 2 bona fide speakers for speaker folds, got {bona}")
    k = len(bona) if n_folds is None else int(n_folds)
    if not 2 <= k <= len(bona):
        raise ValueError(f"n_folds = {n_folds}: need 2 <= n_folds <= {len(bona)} (bona fide speakers)")
    fold = {s: i % k for i, s in enumerate(bona)}
    voices = sorted(set(spk) - set(bona))
    fold.update({v: (len(bona) + i) % k for i, v in enumerate(voices)})
    return np.array([fold[s] for s in spk], dtype=np.int64)


def assign_group_folds(groups: Sequence[str], *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index [clips] with every group (a prompt id, say) on one fold: the distinct groups,
    shuffled with ``seed``, go round-robin over ``n_folds`` folds."""
    g = np.asarray(groups).astype(str)
    unique = np.unique(g)
    if not 2 <= int(n_folds) <= unique.size:
        raise ValueError(f"n_folds = {n_folds}: need 2 <= n_folds <= {unique.size} (distinct groups)")
    order = np.random.default_rng(seed).permutation(unique.size)
    fold = {unique[j]: i % int(n_folds) for i, j in enumerate(order)}
    return np.array([fold[x] for x in g], dtype=np.int64)


def iter_fold_masks(folds: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(fold, train mask, test mask)`` for each fold index in ``folds`` [clips], in order."""
    f = np.asarray(folds)
    for k in np.unique(f):
        yield int(k), f != k, f == k


def leave_one_attack_out_masks(
    folds: np.ndarray, attacks: Sequence[str], attack: str, *, bonafide: str = "bonafide"
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per fold: train on other folds without ``attack``; test the fold's bona fide and ``attack`` clips."""
    a = np.asarray(attacks).astype(str)
    if attack not in set(a):
        raise ValueError(f"attack {attack!r} is not in the corpus ({sorted(set(a))})")
    for k, train, test in iter_fold_masks(folds):
        yield k, train & (a != attack), test & ((a == attack) | (a == bonafide))
