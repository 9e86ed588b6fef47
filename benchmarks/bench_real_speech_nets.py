"""Benchmark: the trained detectors on the real-speech corpus, speaker-grouped cross-validation.

Each network (``rawnet``: RawNet2-style raw waveform, ``lcnn``: LCNN on LFCC, ``tiny``: the
tiny wav2vec2; all from scratch) is trained by :func:`deepfake_lib.modeling.training.fine_tune`
with the parameters of ``params/real_speech.yaml`` (the recipe notebook 03 runs) once per fold of
:func:`deepfake_lib.evaluation.folds.assign_speaker_folds`: the folds of
``benchmarks/bench_real_speech.py`` (one per bona fide speaker, spoofs of that speaker's prompts
with it; the text-to-speech voices spread over the folds). Inside a fold, a prompt-grouped
seventh of the training clips is the validation split that picks the epoch; the held-out
speaker is scored once, by the selected model. Every clip is scored once while its speaker was
unseen; the pooled out-of-fold EER (all attacks and attack by attack) carries a bootstrap interval
over speakers and voices (:func:`deepfake_lib.studies.grouped_cv.summarize_pooled`), beside the
per-fold EERs and the training seconds.

Usage: ``python benchmarks/bench_real_speech_nets.py [--out data/real_speech] [--systems rawnet lcnn]
[--epochs N]`` (``--epochs`` caps the epochs below the params file's, for a shorter run; each
system records its own cap). Writes ``benchmarks/results/real_speech_nets.json`` after every system (a killed
run keeps the systems it finished); ``benchmarks/report.py --update README.md`` renders it beside
the classical systems of ``real_speech.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict

from deepfake_lib.config import ExperimentConfig, resolve_path
from deepfake_lib.corpora import real_speech
from deepfake_lib.evaluation import folds as folds_mod
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.modeling.training import fine_tune
from deepfake_lib.studies import grouped_cv
from deepfake_lib.torch_settings import peak_rss_mb

RESULTS = Path(__file__).resolve().parent / "results"
PARAMS = Path(__file__).resolve().parent.parent / "params" / "real_speech.yaml"

NETS: dict[str, str] = {
    "rawnet": "RawNet2-style raw waveform, from scratch",
    "lcnn": "LCNN on LFCC, from scratch",
    "tiny": "tiny wav2vec2, from scratch",
}
"""``model_source`` -> name shown in the tables."""


def fold_splits(meta: Any, folds: np.ndarray, k: int, seed: int) -> dict[str, np.ndarray]:
    """Row indices of fold ``k``'s train, validation (a prompt-grouped seventh of the other
    folds' clips) and test (fold ``k``) splits."""
    test = np.flatnonzero(folds == k)
    rest = np.flatnonzero(folds != k)
    prompt_folds = folds_mod.assign_group_folds(meta["prompt_id"].to_numpy()[rest], n_folds=7, seed=seed)
    return {"train": rest[prompt_folds != 0], "validation": rest[prompt_folds == 0], "test": test}


def run_fold(
    ds: Any, index: dict[str, np.ndarray], cfg: ExperimentConfig, work: Path
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train on the fold's train split, select on its validation split, score its test split:
    (clip id -> score, the run's figures)."""
    data = DatasetDict({name: ds.select(rows.tolist()) for name, rows in index.items()})
    t0 = time.perf_counter()
    result = fine_tune(cfg, data=data, run_dir=work, record_epoch_scores=False, shortcut_control=False)
    scores = dict(zip(result.test_scores["clip_id"].astype(str), result.test_scores["score"].astype(float)))
    info = {
        "seconds": round(time.perf_counter() - t0, 1),
        "n_train": len(index["train"]),
        "n_validation": len(index["validation"]),
        "n_test": len(index["test"]),
        "epochs_run": int(result.metrics.get("epochs_run", len(result.history))),
        "best_epoch": result.metrics.get("best_epoch"),
        "parameters": (result.metrics.get("n_parameters") or {}).get("total"),
    }
    return scores, info


def evaluate_net(
    name: str, ds: Any, meta: Any, folds: np.ndarray, base: ExperimentConfig, *, n_bootstrap: int
) -> dict[str, Any]:
    """Out-of-fold scores of network ``name`` over every fold, summarised."""
    y = meta["label"].to_numpy()
    clip_ids = meta["clip_id"].astype(str).tolist()
    scores = np.full(len(meta), np.nan)
    per_fold: list[dict[str, Any]] = []
    cfg = base.replace(model_source=name)
    for k in np.unique(folds[folds >= 0]):  # -1: never tested (a --quick run)
        index = fold_splits(meta, folds, int(k), base.seed)
        with tempfile.TemporaryDirectory(prefix=f"{name}_fold{k}_") as tmp:
            fold_scores, info = run_fold(ds, index, cfg.replace(run_dir=tmp), Path(tmp))
        for row in index["test"]:
            scores[row] = fold_scores[clip_ids[row]]
        sel = index["test"]
        info["fold"] = int(k)
        info["speakers"] = sorted(set(meta["speaker_id"].to_numpy()[sel]))
        info["eer"] = float(compute_eer(y[sel], scores[sel]).eer)
        per_fold.append(info)
        print(f"  {name} fold {k}: EER {100 * info['eer']:.1f}% ({info['seconds']} s)", flush=True)
    speakers = meta["speaker_id"].to_numpy()
    attacks = meta["attack"].to_numpy()
    eers = [f["eer"] for f in per_fold]
    return {
        "name": NETS[name],
        "pooled": grouped_cv.summarize_pooled(y, scores, speakers, attacks, n_bootstrap=n_bootstrap),
        "per_fold": {"mean": float(np.mean(eers)), "min": min(eers), "max": max(eers), "n_folds": len(eers)},
        "folds": per_fold,
        "seconds": round(sum(f["seconds"] for f in per_fold), 1),
        "epochs": int(base.epochs),
        "patience": int(base.patience),
    }


def _write_merged(path: Path, report: dict[str, Any]) -> None:
    """Write ``report``, keeping the systems another run wrote to ``path`` meanwhile on the same
    corpus, folds and recipe (two runs may measure different systems side by side)."""
    if path.is_file():
        other = json.loads(path.read_text())
        same = all(other.get(k) == report.get(k) for k in ("corpus", "speaker_folds"))
        if same:
            report["systems"] = {**other.get("systems", {}), **report["systems"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=float))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", default="data/real_speech", help="the built corpus (default data/real_speech)"
    )
    parser.add_argument("--systems", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument(
        "--epochs", type=int, default=None, help="epoch cap per fold (default: the params file's)"
    )
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--results", default=None, help="JSON path (default results/real_speech_nets.json)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the small slice (data/real_speech_small), one epoch, the first two folds; "
        "writes no results file unless --results is given",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.out = "data/real_speech_small" if args.out == "data/real_speech" else args.out
        args.epochs, args.n_bootstrap = 1, 100
    folder = resolve_path(args.out)
    dd, _ = real_speech.load_corpus(folder)
    ds = dd["train"]
    meta = ds.select_columns(["clip_id", "label", "attack", "speaker_id", "utterance_id"]).to_pandas()
    meta["prompt_id"] = meta["utterance_id"].str.split(":", n=1).str[1]
    folds = folds_mod.assign_speaker_folds(meta["speaker_id"].to_numpy(), meta["label"].to_numpy())
    base = ExperimentConfig.from_yaml(PARAMS).replace(
        data_source=str(folder),
        run_robustness=False,
        run_leave_one_attack_out=False,
        cross_source="",
        n_bootstrap=200,
        device="cpu",
    )
    if args.epochs is not None:
        base = base.replace(epochs=int(args.epochs))
    results_path = Path(args.results) if args.results else None
    if results_path is None and not args.quick:
        results_path = RESULTS / "real_speech_nets.json"
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
        "corpus": {"folder": folder.name, "clips": len(meta)},
        "params_file": "params/real_speech.yaml",
        "recipe": {
            k: getattr(base, k)
            for k in (
                "epochs",
                "patience",
                "batch_size",
                "learning_rate",
                "train_crop_s",
                "augment_training",
                "backend",
            )
        },
        "speaker_folds": {
            str(k): sorted(set(meta["speaker_id"].to_numpy()[folds == k])) for k in np.unique(folds)
        },
        "systems": {},
    }
    if (
        results_path is not None and results_path.is_file()
    ):  # keep the systems an earlier run finished and this one does not redo
        earlier = json.loads(results_path.read_text())
        if (
            earlier.get("corpus") == report["corpus"]
            and earlier.get("speaker_folds") == report["speaker_folds"]
        ):
            report["systems"] = {k: v for k, v in earlier.get("systems", {}).items() if k not in args.systems}
    for name in args.systems:
        print(f"{NETS[name]}: {len(report['speaker_folds'])} speaker folds", flush=True)
        use = folds if not args.quick else np.where(np.isin(folds, np.unique(folds)[:2]), folds, -1)
        report["systems"][name] = evaluate_net(name, ds, meta, use, base, n_bootstrap=args.n_bootstrap)
        pooled = report["systems"][name]["pooled"]["all"]
        low, high = pooled.get("eer_low"), pooled.get("eer_high")
        print(f"  pooled EER {100 * pooled['eer']:.1f}% [{100 * low:.1f}-{100 * high:.1f}]", flush=True)
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        report["machine"]["peak_rss_mb"] = round(peak_rss_mb())
        if results_path is not None:
            _write_merged(results_path, report)
    print(f"wrote {results_path}" if results_path is not None else "--quick: no results file written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
