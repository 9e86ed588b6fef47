"""Attacks: the EER of each spoofing attack, and leave-one-attack-out retraining (how a
detector does on an attack it never saw, against a same-budget control that saw it).

Conventions as in :mod:`deepfake_lib.evaluation.summaries`.
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
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.evaluation.summaries import eer_row, require_columns, save_dir, score_groups, slug
from deepfake_lib.modeling.training import fine_tune
from deepfake_lib.runs import RUN_FILES

__all__ = [
    "leave_one_attack_out",
    "loao_training_sets",
    "per_attack_eer",
]

log = logging.getLogger(__name__)


def per_attack_eer(
    scores: pd.DataFrame,
    *,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """EER, AUC and minDCF of each attack's spoofs against all bona fide clips, plus the pooled
    row, and at the run's threshold the accepted spoofs and actDCF.

    ``scores``: a per-clip table with ``label``, ``attack``, ``score`` (and ``speaker_id`` or
    ``utterance_id`` for grouped intervals, :func:`~deepfake_lib.evaluation.summaries.score_groups`), e.g.
    ``test_scores.csv``. ``threshold``: the run's decision threshold (its validation EER
    threshold, ``metrics.json["threshold"]["value"]``); None takes the pooled EER threshold of
    ``scores`` (an oracle, and the ``threshold_from`` column says so). Returns rows attack,
    n_bonafide, n_spoof, the columns of :func:`~deepfake_lib.evaluation.summaries.eer_row` (eer, auc,
    min_dcf, accuracy, act_dcf with ``_low``/``_high``; far, frr; ``n_spoof_accepted`` and
    ``spoof_accepted``, e.g. ``"0 of 11, at most 24% at 95%"``; ``degenerate``,
    ``exact_bounds``), threshold, threshold_from; the last row is ``"pooled"`` (all spoofs). An
    attack with no error never shows a zero-width interval: its bounds are exact
    (``exact_bounds``). Writes ``per_attack.csv``.
    """
    require_columns(scores, ("label", "attack", "score"), "scores")
    labels = scores["label"].to_numpy(dtype=np.int64)
    values = scores["score"].to_numpy(float)
    bona = labels == 1
    if not bona.any() or bona.all():
        raise ValueError("per_attack_eer: scores need both bona fide (label 1) and spoofed (label 0) clips")
    if threshold is None:
        thr, source = (
            compute_eer(labels, values).threshold,
            "pooled test EER (oracle; pass the run's threshold)",
        )
    else:
        thr, source = float(threshold), "the run's threshold"
    groups = score_groups(scores)
    attacks = sorted(set(scores.loc[~bona, "attack"].astype(str)))
    rows = []
    for attack in [*attacks, "pooled"]:
        keep = bona | ((scores["attack"].astype(str) == attack).to_numpy() if attack != "pooled" else ~bona)
        row = {"attack": attack, "n_bonafide": int(bona.sum()), "n_spoof": int((keep & ~bona).sum())}
        row.update(
            eer_row(
                labels[keep],
                values[keep],
                groups[keep] if groups is not None else None,
                n_bootstrap=n_bootstrap,
                seed=seed,
                threshold=thr,
            )
        )
        row.update(threshold=thr, threshold_from=source)
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


def _drop_random_spoofs(ds: Any, n_drop: int, rng: np.random.Generator) -> Any:
    """``ds`` without ``n_drop`` spoofs drawn at random from all attacks (bona fide all kept)."""
    spoofs = np.flatnonzero(np.asarray(ds["label"], dtype=np.int64) == 0)
    dropped = set(rng.choice(spoofs, size=int(n_drop), replace=False).tolist()) if n_drop else set()
    return ds.select([i for i in range(len(ds)) if i not in dropped])


def loao_training_sets(splits: Any, attack: str, *, seed: int = 0) -> tuple[Any, Any]:
    """``(held_out, control)``: the two training sets of one leave-one-attack-out contrast.

    ``held_out``: train and validation without ``attack``'s spoofs. ``control`` (same budget,
    attack seen): train and validation with as many spoofs dropped at random from all attacks
    (``attack`` included) as ``held_out`` lost, so both have the same size and class balance in
    each split and differ only in whether ``attack`` was seen. Both keep the full test split.
    ``seed`` fixes the random drop.
    """
    rng = np.random.default_rng([int(seed), *map(ord, attack)])
    held: dict[str, Any] = {}
    control: dict[str, Any] = {}
    for name in ("train", "validation"):
        held[name] = _drop_attack(splits[name], attack)
        control[name] = _drop_random_spoofs(splits[name], len(splits[name]) - len(held[name]), rng)
    held["test"] = control["test"] = splits["test"]
    return datasets.DatasetDict(held), datasets.DatasetDict(control)


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
    """Retrain with each attack held out, and a same-budget control that saw it, and compare the
    attack's EER in the two (how much not seeing the attack costs, at equal training budget).

    For each attack A (``attacks``; default every spoof attack in the train split), two runs of
    ``cfg`` for ``epochs`` epochs (the analysis passes ``cfg.loao_epochs``, default 4: cheap
    runs, below the reference run's ``cfg.epochs``, which is why each is compared with its
    control and not with the reference run), on the training sets of
    :func:`loao_training_sets`: the held-out run (train and validation without A's spoofs, into
    ``<out_dir>/loao_<A>``) and the control (as many spoofs dropped at random from all attacks,
    into ``<out_dir>/loao_<A>_control``): same epochs, same training-set size and class balance,
    A seen. Both score the full test split. Columns (each EER with ``_low``/``_high`` grouped
    bootstrap bounds, exact where no error, see :func:`~deepfake_lib.evaluation.summaries.eer_row`; also
    AUC and minDCF with the same prefixes):

    - ``unseen_eer``: held-out run, test bona fide vs A's test spoofs;
    - ``seen_eer``: control run, test bona fide vs A's test spoofs (same budget, A seen);
    - ``unseen_minus_seen``: the difference (what being unseen costs);
    - ``others_eer``: held-out run, test bona fide vs the other attacks' spoofs;
    - n_bonafide, n_unseen_spoof, n_other_spoof, n_train and control_n_train (equal by
      construction), epochs, epochs_run, best_epoch, control_epochs_run, control_best_epoch,
      seconds, run_dir, control_run_dir, note.

    ``n_bootstrap`` defaults to ``cfg.n_bootstrap``. Writes ``<out_dir>/loao.csv``. Checkpoint
    folders are deleted unless ``keep_checkpoints``.
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
        held_data, control_data = loao_training_sets(splits, attack, seed=cfg.seed)
        started = time.perf_counter()
        results = {}
        for kind, data in (("held_out", held_data), ("control", control_data)):
            run_dir = out / (f"loao_{slug(attack)}" + ("_control" if kind == "control" else ""))
            results[kind] = (
                run_dir,
                fine_tune(
                    cfg.replace(epochs=int(epochs), run_dir=str(run_dir)),
                    data=data,
                    run_dir=run_dir,
                    record_epoch_scores=False,
                    shortcut_control=False,
                ),
            )
            if not keep_checkpoints:
                shutil.rmtree(run_dir / RUN_FILES["checkpoints"], ignore_errors=True)
        row: dict[str, Any] = {"attack": attack}
        for kind, prefixes in (("held_out", ("unseen_", "others_")), ("control", ("seen_",))):
            t = results[kind][1].test_scores
            labels = t["label"].to_numpy(np.int64)
            scores = t["score"].to_numpy(float)
            groups = score_groups(t)
            bona = labels == 1
            is_a = (t["attack"].astype(str) == attack).to_numpy() & ~bona
            masks = {"unseen_": bona | is_a, "seen_": bona | is_a, "others_": bona | (~bona & ~is_a)}
            for prefix in prefixes:
                mask = masks[prefix]
                row.update(
                    eer_row(
                        labels[mask],
                        scores[mask],
                        groups[mask] if groups is not None else None,
                        n_bootstrap=n_boot,
                        seed=cfg.seed,
                        prefix=prefix,
                    )
                )
        held, control = results["held_out"][1], results["control"][1]
        t = held.test_scores
        bona = t["label"].to_numpy(np.int64) == 1
        is_a = (t["attack"].astype(str) == attack).to_numpy() & ~bona
        row.update(
            unseen_minus_seen=row["unseen_eer"] - row["seen_eer"],
            n_bonafide=int(bona.sum()),
            n_unseen_spoof=int(is_a.sum()),
            n_other_spoof=int((~bona & ~is_a).sum()),
            n_train=len(held_data["train"]),
            control_n_train=len(control_data["train"]),
            epochs=int(epochs),
            epochs_run=held.metrics.get("epochs_run"),
            best_epoch=held.metrics.get("best_epoch"),
            control_epochs_run=control.metrics.get("epochs_run"),
            control_best_epoch=control.metrics.get("best_epoch"),
            seconds=round(time.perf_counter() - started, 1),
            run_dir=str(results["held_out"][0]),
            control_run_dir=str(results["control"][0]),
            note=(
                f"{int(epochs)}-epoch runs; seen = a same-budget control (same epochs, "
                f"{len(control_data['train'])} training clips, spoofs dropped at random), "
                "not the reference run"
            ),
        )
        rows.append(row)
        log.info(
            "LOAO %s: unseen EER %.3f, same-budget seen EER %.3f",
            attack,
            row["unseen_eer"],
            row["seen_eer"],
        )
    table = pd.DataFrame(rows)
    table.to_csv(out / "loao.csv", index=False)
    return table
