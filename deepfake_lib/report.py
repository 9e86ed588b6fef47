"""Prose for notebook 04, generated from measured figures.

Every number in the text comes from the arguments, and every comparison ("worse", "flattered")
is decided by the figures, so the reflection stays true whatever a run measures. Functions
return Markdown strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

STUDY_LATENCY_TARGET_MS = 100.0
"""The original study's target for near-real-time use, milliseconds per clip."""


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _ci(ci: Any) -> str:
    if not ci or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci):
        return ""
    return f" (95% CI {_pct(ci[0])} to {_pct(ci[1])})"


def _report_ci(report: Mapping[str, Any], key: str) -> Any:
    return (report.get("ci") or {}).get(key)


def describe_headline(metrics: Mapping[str, Any]) -> str:
    """One paragraph: the test EER with its interval against the shortcut control."""
    test = metrics["test"]
    text = (f"On {test['n']} test clips the fine-tuned model reaches an EER of {_pct(test['eer'])}"
            f"{_ci(_report_ci(test, 'eer'))} and an AUC of {test['auc']:.3f}.")
    shortcut = metrics.get("shortcut_control")
    if shortcut:
        better = "well below" if shortcut["eer"] - test["eer"] > 0.1 else "below" if shortcut["eer"] > test["eer"] else "not below"
        text += (f" The shortcut control (a logistic regression on duration, level, sample rate and "
                 f"zero-crossing rate) scores an EER of {_pct(shortcut['eer'])} on the same clips, so the model is "
                 f"{better} what trivial features give.")
    if metrics.get("caveat"):
        text += f" {metrics['caveat']}"
    return text


def _challenges(metrics: Mapping[str, Any], protocols: pd.DataFrame | None) -> list[str]:
    test = metrics["test"]
    lines = []
    ci = _report_ci(test, "eer")
    if ci:
        lines.append(f"- **Small test sets carry wide intervals.** With {test['n']} test clips the EER interval spans "
                     f"{100 * (ci[1] - ci[0]):.1f} points; the study's 10 validation clips could not support a percentage "
                     f"at all (one clip is 10 points).")
    if protocols is not None and len(protocols) >= 2:
        reported = protocols.iloc[0]
        clean = protocols.iloc[1]
        gap = reported["accuracy"] - clean["accuracy"]
        verdict = (f"flatters the model by {100 * gap:.1f} accuracy points" if gap > 0
                   else f"did not flatter the model in this run ({100 * gap:+.1f} points)")
        lines.append(f"- **The study's protocol** (augment before the split, pick the epoch on the clips you report) "
                     f"reported {_pct(reported['accuracy'])} on {int(reported['n_clips'])} clips; the same model scores "
                     f"{_pct(clean['accuracy'])} on our clean, group-disjoint test split: the old protocol {verdict}.")
        picked = protocols[protocols["protocol"].str.contains("epoch picked", regex=False)]
        if len(picked):
            row = picked.iloc[0]
            lines.append(f"- **Picking the epoch on the test clips** you report gives {_pct(row['accuracy'])} on average "
                         f"over random {int(row['n_clips'])}-clip subsets ({row['note']}).")
    return lines


def _real_world(metrics: Mapping[str, Any], robustness: pd.DataFrame | None, loao: pd.DataFrame | None,
                cross_source: Mapping[str, Any] | None) -> list[str]:
    lines = []
    if metrics.get("caveat"):
        lines.append("- **These clips are synthetic.** The embedded corpus is a controlled stand-in: its artefacts "
                     "are known and present in every frame. Real deepfakes come from unknown generators and are "
                     "re-recorded, compressed and mixed with noise; treat every figure here as a pipeline check.")
    if robustness is not None and len(robustness) > 1:
        clean = robustness.loc[robustness["family"] == "clean", "eer"]
        base = float(clean.iloc[0]) if len(clean) else float("nan")
        degraded = robustness[robustness["family"] != "clean"]
        worst = degraded.loc[degraded["eer"].idxmax()]
        n_worse = int((degraded["eer"] - base > 0.05).sum())
        lines.append(f"- **Conditions matter.** Clean test EER {_pct(base)}; the worst of {len(degraded)} degradations is "
                     f"{worst['condition']} at {_pct(worst['eer'])}, and {n_worse} of {len(degraded)} conditions raise the "
                     f"EER by more than 5 points. Real calls and uploads bring such conditions by default.")
    if loao is not None and len(loao):
        unseen, seen = float(loao["unseen_eer"].mean()), float(loao["seen_eer"].mean())
        word = "higher" if unseen > seen else "not higher"
        lines.append(f"- **Unseen attacks.** Trained without an attack and tested on it, the mean EER is {_pct(unseen)}, "
                     f"{word} than the {_pct(seen)} on the attacks it did see (cheap runs of "
                     f"{int(loao['epochs'].iloc[0])} epochs). New generators are the normal case in deployment.")
    if cross_source:
        m = cross_source["metrics"]
        in_domain = cross_source.get("in_domain_test", {}).get("eer")
        if "eer" in m and in_domain is not None:
            lines.append(f"- **Another source.** On {cross_source['n_clips']} clips from `{cross_source['source']}` the "
                         f"EER is {_pct(m['eer'])}{_ci(_report_ci(m, 'eer'))}, against {_pct(in_domain)} in-domain.")
    return lines


def _help(metrics: Mapping[str, Any], loao: pd.DataFrame | None, robustness: pd.DataFrame | None) -> list[str]:
    test = metrics["test"]
    lines = []
    ci = _report_ci(test, "eer")
    if ci:
        lines.append(f"- **More labelled clips.** An interval shrinks roughly with the square root of the number of "
                     f"clips: four times the {test['n']} test clips would roughly halve the current "
                     f"{100 * (ci[1] - ci[0]):.1f}-point EER interval. On 100-clip data, cross-validate (notebook 03).")
    if loao is not None and len(loao) and float(loao["unseen_eer"].mean()) > float(loao["seen_eer"].mean()):
        lines.append("- **More kinds of fakes.** The unseen-attack gap says the model learns the attacks it is shown; "
                     "training data should cover many generators (ASVspoof 2019/2021, In-the-Wild), and evaluation "
                     "should hold some out.")
    if robustness is not None and len(robustness) > 1:
        lines.append("- **Degraded audio in training.** The conditions that hurt most are the ones to add to "
                     "augmentation, and real re-recorded or transcoded data is better still.")
    lines.append(f"- **Compute.** This run trained for {metrics['train_seconds']:.0f} s on {metrics['device']} "
                 f"({metrics['precision']}); a GPU makes wav2vec2-base-sized models and cross-validation practical.")
    return lines


def _deploy(metrics: Mapping[str, Any], calibration: Mapping[str, Any] | None, latency_ms: float | None) -> list[str]:
    lines = []
    if calibration:
        rec = calibration["recommendation"]
        name = "the validation-EER threshold" if rec["threshold_name"] == "validation_eer" else "probability 0.5"
        agrees = "and on test it was at least as good" if rec["test_agrees"] else "although on test the other threshold did better"
        lines.append(f"- **Threshold.** Use {name} (score {rec['score_threshold']:.3f}): {rec['reasons'][0]}; {agrees}. "
                     f"Temperature scaling (T = {calibration['temperature']:.2f}, fitted on validation) moves the test "
                     f"ECE from {calibration['ece_before']:.3f} to {calibration['ece_after']:.3f}.")
    if latency_ms is not None:
        verdict = "within" if latency_ms <= STUDY_LATENCY_TARGET_MS else "above"
        lines.append(f"- **Latency.** The `Detector` took {latency_ms:.0f} ms per test clip here, {verdict} the study's "
                     f"{STUDY_LATENCY_TARGET_MS:.0f} ms target; `benchmarks/bench_latency.py` measures int8 and ONNX "
                     f"exports of wav2vec2-base side by side.")
    lines.append("- **Service and monitoring.** `make serve` runs the FastAPI service on this run folder; every "
                 "prediction can be logged as JSON lines (time, file hash, score, label, model) to review false "
                 "positives and negatives and feed them back into training.")
    return lines


def compose_reflection(
    metrics: Mapping[str, Any],
    *,
    protocols: pd.DataFrame | None = None,
    robustness: pd.DataFrame | None = None,
    loao: pd.DataFrame | None = None,
    calibration: Mapping[str, Any] | None = None,
    cross_source: Mapping[str, Any] | None = None,
    latency_ms: float | None = None,
) -> str:
    """The study's reflection questions, answered from this run's measurements (Markdown)."""
    sections = [
        ("What were the challenges?", _challenges(metrics, protocols)),
        ("Research data versus real-world data", _real_world(metrics, robustness, loao, cross_source)),
        ("What data or resources would help?", _help(metrics, loao, robustness)),
        ("How would we deploy it?", _deploy(metrics, calibration, latency_ms)),
    ]
    parts = [describe_headline(metrics)]
    for title, lines in sections:
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(lines))
    return "\n\n".join(parts)
