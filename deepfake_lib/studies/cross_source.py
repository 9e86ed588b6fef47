"""Cross-source evaluation: score another data source with a run's model at the run's threshold.

Conventions as in :mod:`deepfake_lib.evaluation.summaries`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from deepfake_lib.corpora.sources import load_source
from deepfake_lib.evaluation.error_rates import accuracy_at_threshold
from deepfake_lib.evaluation.metric_registry import bootstrap_keys
from deepfake_lib.evaluation.metrics import summarize_scores
from deepfake_lib.evaluation.summaries import save_dir, score_groups, slug
from deepfake_lib.modeling.models import load_model
from deepfake_lib.runs import RUN_FILES, write_json
from deepfake_lib.scoring import EvalClips, predict_logits, scores_table

__all__ = [
    "evaluate_cross_source",
]


def evaluate_cross_source(
    run_dir: str | os.PathLike[str],
    source: str,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    corpus_config: Any | None = None,
    max_clips: int | None = None,
    batch_size: int = 16,
    window_s: float = 0.0,
) -> dict[str, Any]:
    """Score every clip of another data source with a run's model, at the run's threshold.

    "Train on one source, test on another through the same call": ``source`` is anything
    :func:`deepfake_lib.corpora.sources.load_source` takes (a Hub id, a parquet file or folder, an
    audiofolder, ``"embedded"`` with ``corpus_config``); all its splits are pooled. The model
    comes from ``<run_dir>/model``, the threshold from ``metrics.json`` (validation EER of the
    run). ``max_clips`` takes a seeded random subset; ``window_s`` (s) scores by windows, as the
    run did (``0``: whole clips). Returns ``source``, ``train_source``,
    ``load_report``, ``n_clips``, ``threshold``, ``metrics`` (summarize_scores, or accuracy
    only when the source has a single class) and ``in_domain_test`` (the run's own test
    figures). Writes ``cross_source_<source>.json`` and ``..._scores.csv``.
    """
    run = Path(run_dir)
    metrics_path = run / RUN_FILES["metrics"]
    model_dir = run / RUN_FILES["model"]
    if not metrics_path.is_file() or not model_dir.is_dir():
        raise FileNotFoundError(
            f"{run}: needs {RUN_FILES['metrics']} and {RUN_FILES['model']}/ (a finished fine_tune run)"
        )
    run_metrics = json.loads(metrics_path.read_text())
    threshold = float(run_metrics["threshold"]["value"])
    loaded = load_model(str(model_dir))
    dd, report = load_source(source, corpus_config=corpus_config)
    pooled = datasets.concatenate_datasets(list(dd.values())) if len(dd) > 1 else next(iter(dd.values()))
    if max_clips is not None and len(pooled) > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(len(pooled), int(max_clips), replace=False))
        pooled = pooled.select(idx)
    clips = EvalClips.from_split(pooled)
    logits = predict_logits(
        loaded.model, loaded.feature_extractor, clips, batch_size=batch_size, window_s=window_s
    )
    table = scores_table(clips, logits)
    labels = table["label"].to_numpy(np.int64)
    if 0 < labels.sum() < labels.size:
        summary = summarize_scores(
            labels,
            table["score"],
            groups=score_groups(table),
            threshold=threshold,
            cllr_prior_real=(run_metrics.get("test") or {}).get("cllr_prior_real"),
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    else:
        summary = {
            "accuracy": accuracy_at_threshold(labels, table["score"], threshold),
            "n": int(labels.size),
            "n_real": int(labels.sum()),
            "n_fake": int(labels.size - labels.sum()),
            "note": "one class only: EER and AUC are undefined; accuracy = share classified correctly",
        }
    test = run_metrics.get("test", {})
    result = {
        "run_dir": str(run),
        "source": source,
        "train_source": run_metrics.get("data_source"),
        "load_report": report.summary(),
        "n_clips": int(labels.size),
        "threshold": threshold,
        "threshold_from": "the run's validation EER threshold",
        "metrics": summary,
        "in_domain_test": {k: test.get(k) for k in (*bootstrap_keys(), "n", "ci") if k in test},
    }
    folder = save_dir(out_dir)
    if folder is not None:
        name = slug(source)
        write_json(folder / f"cross_source_{name}.json", result)
        table.to_csv(folder / f"cross_source_{name}_scores.csv", index=False)
    return result
