"""Prose for notebook 04, generated from measured figures.

Every number in the text comes from the arguments, and every comparison ("beat", "tied",
"overstates") is decided by the figures and their 95% intervals, so the reflection stays true
whatever a run measures:

- a difference is called a difference only when the two intervals do not overlap; otherwise the
  text says the clips cannot tell the two apart;
- a rate measured with no errors is given its exact upper bound ("0 of 11, at most 24% at 95%"),
  never a zero-width interval;
- the protocol comparison says when it mixes the protocol with training-set size.

Functions return Markdown strings.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import beta

from deepfake_lib.config import resolve_path
from deepfake_lib.evaluation.error_rates import format_rate

__all__ = [
    "compare_intervals",
    "compose_reflection",
    "CONFIDENCE",
    "describe_errors",
    "describe_headline",
    "describe_latency",
    "describe_per_attack",
    "describe_protocols",
    "describe_source",
    "describe_systems",
    "LATENCY_RESULTS",
    "read_base_latency",
    "STUDY_LATENCY_TARGET_MS",
    "upper_bound",
]

STUDY_LATENCY_TARGET_MS = 100.0
"""The original study's target for near-real-time use, milliseconds per clip."""
CONFIDENCE = 0.95
"""Confidence level of every interval and bound in the text."""
LATENCY_RESULTS = "benchmarks/results/latency.json"
"""Where ``benchmarks/bench_latency.py`` saves its figures (relative to the project root)."""


# --------------------------------------------------------------------------------------
# numbers as words
# --------------------------------------------------------------------------------------
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _pct(x: Any) -> str:
    return "n/a" if _missing(x) else f"{100 * float(x):.1f}%"


def _ci(ci: Any) -> str:
    if not ci or any(_missing(v) for v in ci):
        return ""
    return f" (95% CI {_pct(ci[0])} to {_pct(ci[1])})"


def _report_ci(report: Mapping[str, Any], key: str) -> Any:
    return (report.get("ci") or {}).get(key)


def upper_bound(errors: int, n: int, confidence: float = CONFIDENCE) -> float:
    """Exact one-sided upper confidence bound of a rate observed as ``errors`` of ``n``
    (Clopper-Pearson: the rate at which seeing ``errors`` or fewer has probability
    ``1 - confidence``). For 0 of 11 at 95% it is 0.238."""
    if n < 1 or not 0 <= errors <= n:
        raise ValueError(f"upper_bound: need 0 <= errors <= n and n >= 1, got {errors} of {n}")
    return 1.0 if errors == n else float(beta.ppf(confidence, errors + 1, n - errors))


def describe_errors(errors: int, n: int, noun: str = "clips") -> str:
    """``errors`` of ``n`` with its exact bound (:func:`deepfake_lib.evaluation.metrics.format_rate`), the
    ``noun`` after the count: ``"0 of 11 spoofs, at most 24% at 95%"``."""
    return format_rate(errors, n, confidence=CONFIDENCE).replace(f"of {n}", f"of {n} {noun}", 1)


def _interval(row: Mapping[str, Any], key: str) -> tuple[float, float]:
    lo, hi = row.get(f"{key}_low"), row.get(f"{key}_high")
    return (float("nan"), float("nan")) if _missing(lo) or _missing(hi) else (float(lo), float(hi))


def _with_interval(row: Mapping[str, Any], key: str) -> str:
    lo, hi = _interval(row, key)
    text = _pct(row.get(key))
    return text if math.isnan(lo) else f"{text} ({_pct(lo)} to {_pct(hi)})"


def compare_intervals(a: tuple[float, float], b: tuple[float, float]) -> int:
    """-1 when interval ``a`` lies wholly below ``b``, 1 when wholly above, 0 when they overlap
    (or either is unknown): only then do two measurements differ beyond sampling noise."""
    if any(math.isnan(v) for v in (*a, *b)):
        return 0
    if a[1] < b[0]:
        return -1
    if a[0] > b[1]:
        return 1
    return 0


# --------------------------------------------------------------------------------------
# the headline and the systems compared
# --------------------------------------------------------------------------------------
def describe_source(data_source: str) -> str:
    """How to read a result measured on ``data_source``: on the embedded corpus, a pipeline check.

    ``data_source``: the run's ``data_source`` (``"embedded"``, a Hub id, a folder or a file).
    """
    if data_source == "embedded":
        return (
            "Measured on the embedded synthetic corpus: a pipeline check (does the code learn and "
            "measure correctly?), not the performance of a detector on real deepfakes."
        )
    return f"Measured on `{data_source}`: these figures describe that data and nothing wider."


def describe_headline(metrics: Mapping[str, Any]) -> str:
    """One paragraph: the test EER with its interval against the shortcut control."""
    test = metrics["test"]
    text = (
        f"On {test['n']} test clips the fine-tuned model reaches an EER of {_pct(test['eer'])}"
        f"{_ci(_report_ci(test, 'eer'))} and an AUC of {test['auc']:.3f}."
    )
    shortcut = metrics.get("shortcut_control")
    if shortcut:
        model_ci = _report_ci(test, "eer") or (float("nan"), float("nan"))
        shortcut_ci = _report_ci(shortcut, "eer") or (float("nan"), float("nan"))
        side = compare_intervals(tuple(model_ci), tuple(shortcut_ci))
        if side < 0:
            verdict = "below what trivial features give, and the two intervals do not overlap"
        elif test["eer"] < shortcut["eer"]:
            why = (
                "no interval could be estimated"
                if any(math.isnan(float(v)) for v in (*model_ci, *shortcut_ci))
                else "the intervals overlap"
            )
            verdict = f"below what trivial features give, but {why}, so these clips cannot separate them"
        else:
            verdict = "not below what trivial features give: the model may have learned a shortcut"
        text += (
            f" The shortcut control (a logistic regression on duration, level, sample rate and "
            f"zero-crossing rate) scores an EER of {_pct(shortcut['eer'])}{_ci(shortcut_ci)} on the same clips, "
            f"so the model is {verdict}."
        )
    if metrics.get("caveat"):
        text += f" {metrics['caveat']}"
    return text


def describe_systems(table: pd.DataFrame, *, model: str | None = None) -> str:
    """Which system won on the test split, the model against each baseline, with intervals.

    ``table``: one row per system with ``system``, ``eer``, ``eer_low``, ``eer_high`` (the
    fine-tuned model's row from ``baselines.summarize_system`` followed by
    ``baselines.evaluate_classical_baselines``: LFCC-GMM, LFCC + logistic regression, the
    trivial-feature shortcut control). ``model``: the model's system name (default: first row).
    The lowest EER wins; it is called a clear win only where the intervals do not overlap.
    """
    if table.empty:
        raise ValueError("describe_systems: empty table")
    rows = table.reset_index(drop=True)
    model_name = str(rows.loc[0, "system"]) if model is None else model
    if model_name not in set(rows["system"]):
        raise ValueError(f"describe_systems: no row for {model_name!r}; systems: {list(rows['system'])}")
    me = rows[rows["system"] == model_name].iloc[0]
    best = rows.loc[rows["eer"].astype(float).idxmin()]
    tied_best = rows[rows["eer"].astype(float) == float(best["eer"])]["system"].tolist()
    if len(tied_best) > 1:
        lead = f"Lowest test EER: a tie between {' and '.join(tied_best)} at {_pct(best['eer'])}."
    else:
        lead = f"Lowest test EER: **{best['system']}** at {_with_interval(best, 'eer')}."
    parts = [lead]
    for _, other in rows[rows["system"] != model_name].iterrows():
        diff = float(me["eer"]) - float(other["eer"])
        side = compare_intervals(_interval(me, "eer"), _interval(other, "eer"))
        if side != 0:  # a real difference: the intervals do not overlap
            verb = "beat" if diff < 0 else "lost to"
            support = "the intervals do not overlap"
        else:  # point estimates only: say which is lower, claim no ranking
            verb = (
                "tied with"
                if diff == 0
                else ("had a lower EER than" if diff < 0 else "had a higher EER than")
            )
            support = (
                "there are no intervals, so this test split cannot rank the two"
                if any(math.isnan(v) for v in (*_interval(me, "eer"), *_interval(other, "eer")))
                else "the intervals overlap, so this test split cannot rank the two"
            )
        parts.append(
            f"The model ({_pct(me['eer'])}) {verb} {other['system']} at {_with_interval(other, 'eer')}: "
            f"{support}."
        )
    reason = me.get("no_interval")
    if isinstance(reason, str) and reason:
        parts.append(
            f"No confidence intervals: the test split has {reason}, so no difference here is "
            "established and none is ranked."
        )
    return " ".join(parts)


def describe_per_attack(per_attack: pd.DataFrame) -> str:
    """One bullet per attack: EER with its interval, or, with no errors, the exact upper bound on
    the spoofs accepted ("0 of 11 spoofs, at most 24% at 95%").

    ``per_attack``: ``attacks.per_attack_eer`` (attack, n_bonafide, n_spoof, eer, eer_low, eer_high).
    """
    lines = []
    for _, row in per_attack.iterrows():
        if float(row["eer"]) == 0.0:
            spoof, bona = (
                describe_errors(0, int(row["n_spoof"]), "spoofs"),
                describe_errors(0, int(row["n_bonafide"]), "bona fide clips"),
            )
            text = (
                f"no error: accepted {spoof.replace(', ', ' (', 1)}) and rejected "
                f"{bona.replace(', ', ' (', 1)})"
            )
        else:
            text = f"EER {_with_interval(row, 'eer')} on {int(row['n_spoof'])} spoofs"
        lines.append(f"- `{row['attack']}`: {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# the study's protocol against ours
# --------------------------------------------------------------------------------------
def describe_protocols(
    protocols: pd.DataFrame,
    *,
    n_train_study: int | None = None,
    n_train_ours: int | None = None,
    size_matched: Mapping[str, Any] | None = None,
) -> list[str]:
    """Bullets comparing the study's protocol with ours, from ``study_protocol.compare_protocols``.

    Rows, in order: the study protocol's reported accuracy; the same model on our clean test
    split; our protocol; optionally the epoch picked on random test subsets. Each accuracy is
    stated with its interval; a difference is claimed only where the intervals do not overlap.
    ``n_train_study`` / ``n_train_ours``: training clips of the two models; when they differ the
    text says the gap mixes protocol with training-set size. ``size_matched``: our protocol
    trained on as many clips as the study's model (a report with ``accuracy`` and ``ci``), which
    separates the two.
    """
    if len(protocols) < 3:
        return []
    reported, clean, ours = (protocols.iloc[i] for i in range(3))
    lines = [
        (
            f"- **The study's protocol** (augment before the split, pick the epoch on the clips you report) "
            f"reported {_with_interval(reported, 'accuracy')} on {int(reported['n_clips'])} clips. The same "
            f"model scores {_with_interval(clean, 'accuracy')} on our clean, group-disjoint test split of "
            f"{int(clean['n_clips'])} clips, and our protocol's model {_with_interval(ours, 'accuracy')}."
        )
    ]
    width = _interval(reported, "accuracy")
    side = compare_intervals(_interval(reported, "accuracy"), _interval(clean, "accuracy"))
    if side > 0:
        lines.append(
            "- Scored honestly, the same model loses accuracy: its reported interval lies wholly above its "
            "clean-test interval, so the study's protocol overstates it."
        )
    elif side < 0:
        lines.append(
            "- Scored honestly, the same model does better than reported: the intervals do not overlap."
        )
    elif not math.isnan(width[0]):
        lines.append(
            f"- The intervals overlap: {int(reported['n_clips'])} clips give an interval "
            f"{100 * (width[1] - width[0]):.0f} points wide, too wide to measure how much the study's "
            f"protocol flatters a model. A percentage from so few clips supports no point difference."
        )
    if n_train_study is not None and n_train_ours is not None and n_train_study != n_train_ours:
        lines.append(
            f"- **Training-set size differs:** the study-protocol model trained on {n_train_study} clips and "
            f"ours on {n_train_ours}, so comparing the two models mixes the protocol with the amount of "
            f"training data."
        )
        if size_matched is not None:
            matched = {
                "accuracy": size_matched.get("accuracy"),
                "accuracy_low": (_report_ci(size_matched, "accuracy") or [None, None])[0],
                "accuracy_high": (_report_ci(size_matched, "accuracy") or [None, None])[1],
            }
            side = compare_intervals(_interval(clean, "accuracy"), _interval(matched, "accuracy"))
            verdict = {
                0: "the intervals overlap, so at this size the protocol alone makes no measurable difference",
                1: "the study's protocol does better on clean test clips",
                -1: "our protocol does better on clean test clips",
            }[side]
            lines.append(
                f"  Trained on {n_train_study} clips with our protocol, the model scores "
                f"{_with_interval(matched, 'accuracy')} on the same test split against "
                f"{_with_interval(clean, 'accuracy')} for the study's protocol: {verdict}."
            )
    if len(protocols) > 3:
        picked = protocols.iloc[3]
        lines.append(
            f"- **Picking the epoch on the test clips** you report gives {_pct(picked['accuracy'])} on average "
            f"over random {int(picked['n_clips'])}-clip subsets (5-95%: {_pct(picked['accuracy_low'])} to "
            f"{_pct(picked['accuracy_high'])}; {picked['note']})."
        )
    return lines


# --------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------
def read_base_latency(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """wav2vec2-base's measured CPU latency from ``bench_latency.py``'s results, or None.

    Returns ``{"ms": fp32 ms per clip at batch 1, "clip_s", "threads", "fastest": (variant, ms)}``
    read from ``path`` (default :data:`LATENCY_RESULTS` under the project root); None when the
    file or the base model's entry is missing.
    """
    p = resolve_path(path or LATENCY_RESULTS)
    try:
        results = json.loads(Path(p).read_text())
        base = results["models"]["base"]
        fp32 = float(base["fp32"]["batch1_ms_per_clip"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    variants = {
        k: float(v["batch1_ms_per_clip"])
        for k, v in base.items()
        if isinstance(v, Mapping) and "batch1_ms_per_clip" in v
    }
    fastest = min(variants.items(), key=lambda kv: kv[1])
    return {
        "ms": fp32,
        "clip_s": results.get("clip_s"),
        "threads": results.get("threads"),
        "fastest": fastest,
    }


def describe_latency(
    latency_ms: float,
    *,
    model: str,
    clip_s: float | None = None,
    device: str = "cpu",
    base: Mapping[str, Any] | None = None,
) -> str:
    """The trained model's measured latency next to wav2vec2-base's measured CPU figure.

    ``model``: what was trained (e.g. ``metrics["model_source"]``); ``clip_s``: mean clip length
    of the timed clips, seconds; ``base``: :func:`read_base_latency` (None: not measured).
    The study's 100 ms target is compared with the figure it belongs to.
    """
    verdict = "within" if latency_ms <= STUDY_LATENCY_TARGET_MS else "above"
    clips = f" (mean clip {clip_s:.1f} s)" if clip_s else ""
    text = (
        f"- **Latency.** The model trained here (`{model}`) took {latency_ms:.0f} ms per test clip{clips} on "
        f"{device}, {verdict} the study's {STUDY_LATENCY_TARGET_MS:.0f} ms target."
    )
    if base is None:
        text += (
            " wav2vec2-base, the model the study fine-tuned, was not measured on this machine "
            "(`benchmarks/bench_latency.py` measures it)."
        )
    else:
        base_verdict = "within" if base["ms"] <= STUDY_LATENCY_TARGET_MS else "above"
        name, ms = base["fastest"]
        text += (
            f" wav2vec2-base, the model the study fine-tuned, takes {base['ms']:.0f} ms per {base['clip_s']:g} s "
            f"clip on {base['threads']} CPU threads in fp32, {base_verdict} that target "
            f"(fastest measured variant: {name}, {ms:.0f} ms; `benchmarks/results/latency.json`)."
        )
    return text


# --------------------------------------------------------------------------------------
# the reflection
# --------------------------------------------------------------------------------------
def _challenges(
    metrics: Mapping[str, Any],
    protocols: pd.DataFrame | None,
    study: Mapping[str, Any] | None,
    size_matched: Mapping[str, Any] | None,
) -> list[str]:
    test = metrics["test"]
    lines = []
    ci = _report_ci(test, "eer")
    if ci:
        lines.append(
            f"- **Small test sets carry wide intervals.** With {test['n']} test clips the EER interval spans "
            f"{100 * (ci[1] - ci[0]):.1f} points; on 10 clips, as in the study, one clip moves a percentage "
            f"by 10 points."
        )
    if protocols is not None:
        n_train_ours = (metrics.get("n_clips") or {}).get("train")
        n_train_study = (study or {}).get("n_train")
        lines += describe_protocols(
            protocols, n_train_study=n_train_study, n_train_ours=n_train_ours, size_matched=size_matched
        )
    return lines


def _real_world(
    metrics: Mapping[str, Any],
    robustness: pd.DataFrame | None,
    loao: pd.DataFrame | None,
    cross_source: Mapping[str, Any] | None,
) -> list[str]:
    lines = []
    if metrics.get("caveat"):
        lines.append(
            "- **These clips are synthetic.** The embedded corpus is a controlled stand-in: its artefacts "
            "are known and present in every frame. Real deepfakes come from unknown generators and are "
            "re-recorded, compressed and mixed with noise; treat every figure here as a pipeline check."
        )
    if robustness is not None and len(robustness) > 1:
        clean_rows = robustness[robustness["family"] == "clean"]
        degraded = robustness[robustness["family"] != "clean"]
        if len(clean_rows) and len(degraded):
            clean = clean_rows.iloc[0]
            worst = degraded.loc[degraded["eer"].astype(float).idxmax()]
            worse = sum(
                compare_intervals(_interval(r, "eer"), _interval(clean, "eer")) > 0
                for _, r in degraded.iterrows()
            )
            lines.append(
                f"- **Conditions matter.** Clean test EER {_with_interval(clean, 'eer')}; the worst of "
                f"{len(degraded)} degradations is {worst['condition']} at {_with_interval(worst, 'eer')}. "
                f"{worse} of {len(degraded)} conditions have an EER interval wholly above the clean one. "
                f"Real calls and uploads bring such conditions by default."
            )
    if loao is not None and len(loao):
        unseen, seen = float(loao["unseen_eer"].mean()), float(loao["seen_eer"].mean())
        word = "higher" if unseen > seen else "not higher"
        lines.append(
            f"- **Unseen attacks.** Trained without an attack and tested on it, the mean EER is {_pct(unseen)}, "
            f"{word} than the {_pct(seen)} of same-budget controls that saw the attack in training (same "
            f"training-set size, {int(loao['epochs'].iloc[0])}-epoch runs). New generators are the normal case "
            f"in deployment."
        )
    if cross_source:
        m = cross_source["metrics"]
        in_domain = cross_source.get("in_domain_test", {}).get("eer")
        if "eer" in m and in_domain is not None:
            lines.append(
                f"- **Another source.** On {cross_source['n_clips']} clips from `{cross_source['source']}` the "
                f"EER is {_pct(m['eer'])}{_ci(_report_ci(m, 'eer'))}, against {_pct(in_domain)} in-domain."
            )
    return lines


def _help(
    metrics: Mapping[str, Any], loao: pd.DataFrame | None, robustness: pd.DataFrame | None
) -> list[str]:
    test = metrics["test"]
    lines = []
    ci = _report_ci(test, "eer")
    if ci:
        lines.append(
            f"- **More labelled clips.** An interval shrinks roughly with the square root of the number of "
            f"clips: four times the {test['n']} test clips would roughly halve the current "
            f"{100 * (ci[1] - ci[0]):.1f}-point EER interval. On 100-clip data, cross-validate (notebook 03)."
        )
    if loao is not None and len(loao) and float(loao["unseen_eer"].mean()) > float(loao["seen_eer"].mean()):
        lines.append(
            "- **More kinds of fakes.** The unseen-attack gap says the model learns the attacks it is shown; "
            "training data should cover many generators (ASVspoof 2019/2021, In-the-Wild), and evaluation "
            "should hold some out."
        )
    if robustness is not None and len(robustness) > 1:
        lines.append(
            "- **Degraded audio in training.** The conditions that hurt most are the ones to add to "
            "augmentation, and real re-recorded or transcoded data is better still."
        )
    lines.append(
        f"- **Compute.** This run trained for {metrics['train_seconds']:.0f} s on {metrics['device']} "
        f"({metrics['precision']}); a GPU makes wav2vec2-base-sized models and cross-validation practical."
    )
    return lines


def _deploy(
    metrics: Mapping[str, Any],
    calibration: Mapping[str, Any] | None,
    latency_ms: float | None,
    latency_clip_s: float | None,
    base_latency: Mapping[str, Any] | None,
) -> list[str]:
    lines = []
    if calibration:
        rec = calibration["recommendation"]
        name = (
            "the validation-EER threshold" if rec["threshold_name"] == "validation_eer" else "probability 0.5"
        )
        agrees = (
            "and on test it was at least as good"
            if rec["test_agrees"]
            else "although on test the other threshold did better"
        )
        lines.append(
            f"- **Threshold.** Use {name} (score {rec['score_threshold']:.3f}): {rec['reasons'][0]}; {agrees}. "
            f"Temperature scaling (T = {calibration['temperature']:.2f}, fitted on validation) moves the test "
            f"ECE from {calibration['ece_before']:.3f} to {calibration['ece_after']:.3f}."
        )
    if latency_ms is not None:
        lines.append(
            describe_latency(
                latency_ms,
                model=str(metrics.get("model_source", "this run's model")),
                clip_s=latency_clip_s,
                device=str(metrics.get("device", "cpu")),
                base=base_latency,
            )
        )
    lines.append(
        "- **Service and monitoring.** `make serve` runs the FastAPI service on this run folder; every "
        "prediction can be logged as JSON lines (time, file hash, score, label, model) to review false "
        "positives and negatives and feed them back into training."
    )
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
    systems: pd.DataFrame | None = None,
    per_attack: pd.DataFrame | None = None,
    study: Mapping[str, Any] | None = None,
    size_matched: Mapping[str, Any] | None = None,
    latency_clip_s: float | None = None,
    base_latency: Mapping[str, Any] | None | str = "read",
) -> str:
    """The study's reflection questions, answered from this run's measurements (Markdown).

    ``systems``: the model and baselines table (:func:`describe_systems`); ``per_attack``:
    :func:`describe_per_attack`; ``study``: ``study_protocol.run_original_protocol`` (its training-set
    size); ``size_matched``: see :func:`describe_protocols`; ``base_latency``: wav2vec2-base's
    figure, by default read with :func:`read_base_latency` (None: not measured).
    """
    base = read_base_latency() if isinstance(base_latency, str) else base_latency
    sections: Sequence[tuple[str, list[str]]] = [
        ("What were the challenges?", _challenges(metrics, protocols, study, size_matched)),
        ("Research data versus real-world data", _real_world(metrics, robustness, loao, cross_source)),
        ("What data or resources would help?", _help(metrics, loao, robustness)),
        ("How would we deploy it?", _deploy(metrics, calibration, latency_ms, latency_clip_s, base)),
    ]
    parts = [describe_headline(metrics)]
    if systems is not None and len(systems) > 1:
        parts.append(describe_systems(systems))
    if per_attack is not None and len(per_attack):
        parts.append("Per attack:\n\n" + describe_per_attack(per_attack))
    for title, lines in sections:
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(lines))
    return "\n\n".join(parts)
