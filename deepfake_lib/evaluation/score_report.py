"""Score any detector's score file against a protocol: ``deepfake-lib score``.

``deepfake-lib score --protocol P --scores S [--json]`` reads a protocol (the labels, and the
attack and speaker of each trial) and a score file (one score per trial, higher = more bona
fide), checks that their ids match one to one, and prints EER, minDCF, actDCF, Cllr, minCllr
and AUC with 95% intervals, pooled and per attack (:func:`score_report`).

Protocols (:func:`read_protocol`):

- whitespace-separated ASVspoof lines without header, the id in the second column and a
  ``bonafide``/``spoof`` key somewhere on the line: ASVspoof 2019 LA
  (``speaker id - attack key``), ASVspoof 2021 LA/DF (``speaker id codec transmission attack key
  ...``), ASVspoof 5 (``speaker id gender codec codec_q codec_seed attack_tag attack key -``);
  the attack is the token of the form ``A01``... and the speaker the first column;
- a table with a header (comma, tab or whitespace separated; e.g. the ASVspoof 5 key file
  ``filename cm-label`` or a run's ``splits.csv``): an id column (``clip_id``, ``filename``,
  ``trial``, ``id``, ...), a label column (``label``, ``key``, ``cm-label``: bonafide / spoof,
  Real / Fake, 1 / 0), optional ``attack``, speaker (``speaker_id``, ``speaker``) or utterance
  column for grouping and a ``split`` column (choose one with ``--split``).

Score files (:func:`read_scores`):

- whitespace ASVspoof score files without header: ``id score`` (2021 submissions), ``id attack
  key score`` (2019 baselines) or ``speaker id score key`` (ASVspoof 5 package README); the
  score is the numeric column and the id the column that matches the protocol's ids;
- a table with a header, e.g. ``filename cm-score`` (ASVspoof 5) or any CSV with an id and a
  ``score`` column;
- this project's run folder or its ``test_scores.csv`` (it carries labels, attacks and
  utterances, so no protocol is needed; the threshold comes from the run's ``metrics.json``);
- ``deepfake-detect`` output, CSV or JSON lines (``path``, ``score``, ``threshold``, ``error``
  columns; its ``label`` column is the prediction and is ignored).

Ids are compared after :func:`normalize_id` (the file name without folders and audio
extension), so ``/data/flac/LA_E_1.flac`` in a detector's output matches ``LA_E_1`` in a
protocol. Bad input raises :class:`ScoreFileError` naming the file, and the line for parse
errors; the command prints it and exits with code 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepfake_lib.evaluation.costs import ASVSPOOF5_COSTS, DetectionCosts
from deepfake_lib.evaluation.error_rates import format_rate
from deepfake_lib.evaluation.metric_registry import METRICS, metric_meanings, table_keys
from deepfake_lib.evaluation.metrics import summarize_scores
from deepfake_lib.evaluation.score_files import (
    MatchedScores,
)

__all__ = [
    "format_report",
    "score_report",
]

EXIT_OK, EXIT_USAGE = 0, 2


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = table_keys()
    ci = report.get("ci") or {}
    out: dict[str, Any] = {key: report[key] for key in keys}
    out.update({f"{key}_ci": list(ci[key]) if key in ci else None for key in keys})
    out["degenerate"] = list(ci.get("degenerate", []))
    return out


def score_report(
    matched: MatchedScores,
    *,
    threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics pooled and per attack (all bona fide trials against the attack's spoofs).

    ``threshold``: the system's own decision threshold (actDCF and the accepted spoofs are taken
    there); None reads the scores as LLRs and uses the Bayes threshold of ``costs``, and counts
    accepted spoofs at the pooled EER threshold. Intervals: percentile bootstrap over
    ``matched.groups`` (speakers when the protocol names them) for the metrics, exact
    Clopper-Pearson for the counted rates. JSON-serialisable.
    """
    act_threshold = costs.bayes_threshold if threshold is None else float(threshold)
    groups = None if matched.groups is None else np.asarray(matched.groups)
    pooled = summarize_scores(
        matched.labels,
        matched.scores,
        groups=groups,
        threshold=threshold,
        act_dcf_threshold=act_threshold,
        costs=costs,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    operating = pooled["threshold"]
    bona = matched.labels == 1
    attacks = np.asarray(matched.attacks)
    (tn, fp), (fn, tp) = pooled["confusion_matrix"]
    rows = []
    for attack in sorted(set(attacks[~bona])):
        keep = bona | (attacks == attack)
        report = summarize_scores(
            matched.labels[keep],
            matched.scores[keep],
            groups=None if groups is None else groups[keep],
            threshold=operating,
            act_dcf_threshold=act_threshold,
            costs=costs,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
        n_spoof = report["n_fake"]
        accepted = report["confusion_matrix"][0][1]
        rows.append(
            {
                "attack": str(attack),
                "n_spoof": n_spoof,
                **_summary(report),
                "spoofs_accepted": accepted,
                "spoofs_accepted_text": format_rate(accepted, n_spoof, confidence=confidence),
            }
        )
    return {
        "n": pooled["n"],
        "n_bonafide": pooled["n_real"],
        "n_spoof": pooled["n_fake"],
        "costs": costs.as_dict(),
        "threshold": operating,
        "threshold_is_system": threshold is not None,
        "act_dcf_threshold": act_threshold,
        "confidence": confidence,
        "n_bootstrap": n_bootstrap,
        "bootstrap_groups": matched.group_kind,
        "pooled": {
            **_summary(pooled),
            "spoofs_accepted": fp,
            "spoofs_accepted_text": format_rate(fp, fp + tn, confidence=confidence),
            "bonafide_rejected": fn,
            "bonafide_rejected_text": format_rate(fn, fn + tp, confidence=confidence),
        },
        "per_attack": rows,
        "meanings": metric_meanings(),
    }


def _cell(value: float, interval: list[float] | None, *, scale: float = 1.0, digits: int = 3) -> str:
    text = f"{scale * value:.{digits}f}"
    if interval is not None:
        text += f" [{scale * interval[0]:.{digits}f}, {scale * interval[1]:.{digits}f}]"
    return text


def format_report(report: dict[str, Any], *, title: str = "") -> str:
    """The report of :func:`score_report` as a text table (EER in %, the others as fractions)."""
    level = f"{100 * report['confidence']:g}%"
    where = "the system's threshold" if report["threshold_is_system"] else "the pooled EER threshold"
    lines = [title] if title else []
    intervals = (
        f"{level} intervals: bootstrap over {report['bootstrap_groups']}s ({report['n_bootstrap']} resamples), "
        "exact (Clopper-Pearson) for counted rates"
        if report["n_bootstrap"]
        else "no intervals (--n-bootstrap 0)"
    )
    lines += [
        f"{report['n']} trials: {report['n_bonafide']} bona fide, {report['n_spoof']} spoof; {intervals}",
        f"DCF costs p_spoof {report['costs']['p_spoof']:g}, C_miss {report['costs']['c_miss']:g}, "
        f"C_fa {report['costs']['c_fa']:g}; actDCF at {report['act_dcf_threshold']:.4g}"
        + ("" if report["threshold_is_system"] else " (Bayes threshold, scores read as LLRs)")
        + f"; accepted spoofs counted at {report['threshold']:.4g} ({where})",
        "",
    ]
    keys = [k for k in table_keys() if k in report["pooled"]]
    columns = tuple("EER %" if k == "eer" else METRICS[k].label for k in keys)
    table = [("attack", "n spoof", *columns, "spoofs accepted")]
    for name, row in [("pooled", report["pooled"]), *((r["attack"], r) for r in report["per_attack"])]:
        n_spoof = report["n_spoof"] if name == "pooled" else row["n_spoof"]
        cells = [
            _cell(row[k], row[f"{k}_ci"], scale=100.0 if k == "eer" else 1.0, digits=2 if k == "eer" else 3)
            for k in keys
        ]
        table.append((name, str(n_spoof), *cells, row["spoofs_accepted_text"]))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
    lines += [
        "",
        f"bona fide rejected at {report['threshold']:.4g}: {report['pooled']['bonafide_rejected_text']}",
    ]
    lines += [f"{METRICS[k].label}: {METRICS[k].meaning}" for k in keys]
    return "\n".join(lines)
