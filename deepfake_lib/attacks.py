"""Attacks: the EER of each spoofing attack, and leave-one-attack-out retraining (how a
detector does on an attack it never saw).

Conventions as in :mod:`deepfake_lib.summaries`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.runs import RUN_FILES
from deepfake_lib.summaries import eer_row, require_columns, save_dir, slug
from deepfake_lib.train import fine_tune

log = logging.getLogger(__name__)


def per_attack_eer(
    scores: pd.DataFrame,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """EER of each attack's spoofs against all bona fide clips, plus the pooled row.

    ``scores``: a per-clip table with ``label``, ``attack``, ``score`` (and ``utterance_id`` for
    grouped intervals), e.g. ``test_scores.csv``. Returns rows attack, n_bonafide, n_spoof,
    eer, eer_low, eer_high, auc, auc_low, auc_high; the last row is ``"pooled"`` (all spoofs).
    Writes ``per_attack.csv``.
    """
    require_columns(scores, ("label", "attack", "score"), "scores")
    labels = scores["label"].to_numpy(dtype=np.int64)
    bona = labels == 1
    if not bona.any() or bona.all():
        raise ValueError("per_attack_eer: scores need both bona fide (label 1) and spoofed (label 0) clips")
    groups = scores["utterance_id"].astype(str).to_numpy() if "utterance_id" in scores else None
    attacks = sorted(set(scores.loc[~bona, "attack"].astype(str)))
    rows = []
    for attack in [*attacks, "pooled"]:
        keep = bona | ((scores["attack"].astype(str) == attack).to_numpy() if attack != "pooled" else ~bona)
        row = {"attack": attack, "n_bonafide": int(bona.sum()), "n_spoof": int((keep & ~bona).sum())}
        row.update(
            eer_row(
                labels[keep],
                scores["score"].to_numpy(float)[keep],
                groups[keep] if groups is not None else None,
                n_bootstrap=n_bootstrap,
                seed=seed,
            )
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    folder = save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "per_attack.csv", index=False)
    return table


def _spoof_attacks(ds: Any) -> list[str]:
    return sorted({a for a, y in zip(ds["attack"], ds["label"]) if int(y) == 0})


def _drop_attack(ds: Any, attack: str) -> Any:
    keep = [i for i, (a, y) in enumerate(zip(ds["attack"], ds["label"])) if not (int(y) == 0 and a == attack)]
    return ds.select(keep)


def leave_one_attack_out(
    cfg: ExperimentConfig,
    splits: Any,
    *,
    epochs: int,
    out_dir: str | os.PathLike[str],
    attacks: Sequence[str] | None = None,
    n_bootstrap: int | None = None,
    keep_checkpoints: bool = False,
) -> pd.DataFrame:
    """Retrain with each attack held out and compare its (unseen) EER with the seen attacks'.

    For each attack A (``attacks``; default every spoof attack in the train split): fine-tune
    ``cfg`` for ``epochs`` epochs (cheap runs) on train and validation without A's spoofs, into
    ``<out_dir>/loao_<A>``, and score the full test split. Unseen EER: test bona fide vs test
    spoofs of A; seen EER: test bona fide vs the other attacks' spoofs; both with grouped
    bootstrap intervals (``n_bootstrap``, default ``cfg.n_bootstrap``). Returns one row per
    attack (attack, unseen_eer, unseen_eer_low, unseen_eer_high, seen_eer, ..., n_bonafide,
    n_unseen_spoof, n_seen_spoof, epochs, epochs_run, best_epoch, run_dir, note) and writes
    ``<out_dir>/loao.csv``. Checkpoint folders are deleted unless ``keep_checkpoints``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_attacks = _spoof_attacks(splits["train"])
    attacks = list(attacks) if attacks is not None else all_attacks
    if len(all_attacks) < 2:
        raise ValueError(
            f"leave_one_attack_out needs at least two spoof attacks in the train split, found {all_attacks}"
        )
    unknown = [a for a in attacks if a not in all_attacks]
    if unknown:
        raise ValueError(
            f"attacks {unknown} have no spoofs in the train split (attacks there: {all_attacks})"
        )
    n_boot = cfg.n_bootstrap if n_bootstrap is None else n_bootstrap
    rows = []
    for attack in attacks:
        run_dir = out / f"loao_{slug(attack)}"
        data = datasets.DatasetDict(
            {
                "train": _drop_attack(splits["train"], attack),
                "validation": _drop_attack(splits["validation"], attack),
                "test": splits["test"],
            }
        )
        started = time.perf_counter()
        result = fine_tune(
            cfg.replace(epochs=int(epochs), run_dir=str(run_dir)),
            data=data,
            run_dir=run_dir,
            record_epoch_scores=False,
            shortcut_control=False,
        )
        t = result.test_scores
        labels = t["label"].to_numpy(np.int64)
        scores = t["score"].to_numpy(float)
        groups = t["utterance_id"].astype(str).to_numpy()
        bona = labels == 1
        is_a = (t["attack"].astype(str) == attack).to_numpy() & ~bona
        other = ~bona & ~is_a
        row: dict[str, Any] = {"attack": attack}
        for prefix, mask in (("unseen_", bona | is_a), ("seen_", bona | other)):
            row.update(
                eer_row(
                    labels[mask], scores[mask], groups[mask], n_bootstrap=n_boot, seed=cfg.seed, prefix=prefix
                )
            )
        row.update(
            n_bonafide=int(bona.sum()),
            n_unseen_spoof=int(is_a.sum()),
            n_seen_spoof=int(other.sum()),
            epochs=int(epochs),
            epochs_run=result.metrics.get("epochs_run"),
            best_epoch=result.metrics.get("best_epoch"),
            seconds=round(time.perf_counter() - started, 1),
            run_dir=str(run_dir),
            note=f"cheap run: {int(epochs)} epoch(s), not the full training budget",
        )
        rows.append(row)
        if not keep_checkpoints:
            shutil.rmtree(run_dir / RUN_FILES["checkpoints"], ignore_errors=True)
        log.info("LOAO %s: unseen EER %.3f, seen EER %.3f", attack, row["unseen_eer"], row["seen_eer"])
    table = pd.DataFrame(rows)
    table.to_csv(out / "loao.csv", index=False)
    return table
