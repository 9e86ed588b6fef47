"""Prose for the notebooks, generated from measured figures.

Every number in the text comes from the arguments, and every comparison ("beat", "lower",
"matters", "gap", "overstates") follows the one rule of :mod:`deepfake_lib.notebook.claims`: it is
stated only when the two 95% intervals (or exact bounds) do not overlap; otherwise the sentence
says that this run cannot tell. A rate with no errors is given its exact bound, the same one the
tables print (:func:`~deepfake_lib.notebook.claims.describe_interval_convention`).

Functions return Markdown strings (or lists of Markdown bullets).
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

from deepfake_lib.audio.augmentation import AugmentConfig
from deepfake_lib.config import resolve_path
from deepfake_lib.evaluation.error_rates import format_rate, rate_interval
from deepfake_lib.modeling.baselines import CONTROL_FEATURES
from deepfake_lib.notebook.claims import (
    CONFIDENCE,
    compare_intervals,
    format_interval,
    interval_of,
    known,
    pct,
    state_difference,
)

__all__ = [
    "CONFIDENCE",
    "STUDY_CLAIM",
    "STUDY_LATENCY_TARGET_MS",
    "compare_intervals",
    "compose_reflection",
    "describe_baselines_vs_model",
    "describe_conditions",
    "describe_cross_source",
    "describe_errors",
    "describe_headline",
    "describe_latency",
    "describe_per_attack",
    "describe_protocols",
    "describe_second_source",
    "describe_source",
    "describe_study_claim",
    "describe_systems",
    "describe_threshold",
    "describe_unseen_attacks",
    "read_base_latency",
    "upper_bound",
]

STUDY_LATENCY_TARGET_MS = 100.0
"""The original study's target for near-real-time use, milliseconds per clip."""
STUDY_CLAIM: dict[str, Any] = {"correct": 9, "n_clips": 10}
"""The original study's headline: 9 of 10 validation clips right (90% accuracy)."""
LATENCY_RESULTS = "benchmarks/results/latency.json"
"""Where ``benchmarks/bench_latency.py`` saves its figures (relative to the project root)."""
CHANCE_EER = 0.5
"""The EER of a detector that cannot tell the classes apart."""


# --------------------------------------------------------------------------------------
# numbers as words
# --------------------------------------------------------------------------------------
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _ci(ci: Any) -> str:
    if not ci or any(_missing(v) for v in ci):
        return ""
    return f" (95% CI {pct(ci[0])} to {pct(ci[1])})"


def _report_ci(report: Mapping[str, Any], key: str) -> Any:
    return (report.get("ci") or {}).get(key)


def _ci_tuple(report: Mapping[str, Any], key: str) -> tuple[float, float]:
    ci = _report_ci(report, key)
    return (float(ci[0]), float(ci[1])) if ci and not any(_missing(v) for v in ci) else (math.nan, math.nan)


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


def _with_interval(row: Mapping[str, Any], key: str) -> str:
    return format_interval(row.get(key), interval_of(row, key))


# --------------------------------------------------------------------------------------
# the study's claim (notebook 01), the headline and the systems compared
# --------------------------------------------------------------------------------------
def describe_study_claim(correct: int = STUDY_CLAIM["correct"], n_clips: int = STUDY_CLAIM["n_clips"]) -> str:
    """The study's headline and what 10 clips can carry: its exact 95% interval (Markdown)."""
    low, high = rate_interval(correct, n_clips, confidence=CONFIDENCE)
    return (
        f"**The study's claim:** {pct(correct / n_clips, 0)} accuracy, measured on {n_clips} validation "
        f"clips ({correct} of {n_clips} right), the same clips that picked its best epoch. With "
        f"{n_clips} clips the exact 95% interval of that accuracy runs from {pct(low)} to {pct(high)}; "
        f"one clip more or less right moves it by {100 / n_clips:.0f} points."
    )


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


def _control_features(shortcut: Mapping[str, Any]) -> str:
    """What the shortcut control was fitted on, from its ``features`` list (older runs lack it)."""
    features = [str(f) for f in shortcut.get("features") or []]
    if not features:
        return "cheap properties of each clip"
    if features == list(CONTROL_FEATURES):
        return (
            f"{len(features)} cheap cues of each clip (levels, silences, band energies, pitch statistics, "
            "sample shape, zero runs and the sample rate)"
        )
    return f"{len(features)} features of each clip ({', '.join(features)})"


def describe_headline(metrics: Mapping[str, Any]) -> str:
    """One paragraph: the test EER with its interval against the shortcut control."""
    test = metrics["test"]
    text = (
        f"On {test['n']} test clips the fine-tuned model reaches an EER of {pct(test['eer'])}"
        f"{_ci(_report_ci(test, 'eer'))} and an AUC of {test['auc']:.3f}."
    )
    shortcut = metrics.get("shortcut_control")
    if shortcut:
        text += (
            f" The shortcut control is a logistic regression on {_control_features(shortcut)}, "
            "on the same clips. "
            + state_difference(
                "the model",
                test["eer"],
                _ci_tuple(test, "eer"),
                "the shortcut control",
                shortcut["eer"],
                _ci_tuple(shortcut, "eer"),
            )
        )
        if test["eer"] >= shortcut["eer"] and metrics.get("data_source") == "embedded":
            text += (
                " The model is not below what cheap cues give. On the embedded corpus that is expected: its "
                "attacks change the spectrum on purpose, and the cues' band energies and pitch see those "
                "artefacts themselves, so the control is a cheap artefact detector there."
            )
        elif test["eer"] >= shortcut["eer"]:
            text += " The model is not below what cheap cues give: it may have learned a shortcut."
    if metrics.get("caveat"):
        text += f" {metrics['caveat']}"
    return text


def _model_row(rows: pd.DataFrame, model: str | None) -> pd.Series:
    name = str(rows.loc[0, "system"]) if model is None else model
    if name not in set(rows["system"]):
        raise ValueError(f"describe_systems: no row for {name!r}; systems: {list(rows['system'])}")
    return rows[rows["system"] == name].iloc[0]


def describe_systems(table: pd.DataFrame, *, model: str | None = None) -> str:
    """Which system had the lowest test EER, and the model against each other system.

    ``table``: one row per system with ``system``, ``eer``, ``eer_low``, ``eer_high`` (the
    fine-tuned model's row first, then the classical baselines and the shortcut control).
    ``model``: the model's system name (default: first row). A system is said to beat another
    only where the intervals do not overlap.
    """
    if table.empty:
        raise ValueError("describe_systems: empty table")
    rows = table.reset_index(drop=True)
    me = _model_row(rows, model)
    best = rows.loc[rows["eer"].astype(float).idxmin()]
    tied_best = rows[rows["eer"].astype(float) == float(best["eer"])]["system"].tolist()
    if len(tied_best) > 1:
        lead = f"Lowest test EER (point estimate): a tie between {' and '.join(tied_best)} at {pct(best['eer'])}."
    else:
        lead = f"Lowest test EER (point estimate): **{best['system']}** at {_with_interval(best, 'eer')}."
    parts = [lead]
    for _, other in rows[rows["system"] != me["system"]].iterrows():
        parts.append(
            state_difference(
                "the model",
                float(me["eer"]),
                interval_of(me, "eer"),
                str(other["system"]),
                float(other["eer"]),
                interval_of(other, "eer"),
            )
        )
    reason = me.get("no_interval")
    if isinstance(reason, str) and reason:
        parts.append(
            f"No confidence intervals: the test split has {reason}, so no difference here is "
            "established and none is ranked."
        )
    return " ".join(parts)


def describe_baselines_vs_model(
    table: pd.DataFrame, *, model: str | None = None, shortcut: str = "shortcut"
) -> str:
    """Say plainly whether a classical baseline matches or beats the network on this run.

    ``table`` as for :func:`describe_systems`; rows whose name contains ``shortcut`` are not
    baselines. "Beats" needs non-overlapping intervals; a baseline whose EER is at or below the
    network's with overlapping intervals "matches" it (the run cannot show the network better).
    """
    rows = table.reset_index(drop=True)
    me = _model_row(rows, model)
    others = rows[(rows["system"] != me["system"]) & ~rows["system"].str.contains(shortcut)]
    beats, matches = [], []
    for _, other in others.iterrows():
        side = compare_intervals(interval_of(other, "eer"), interval_of(me, "eer"))
        if side < 0:
            beats.append(other)
        elif side == 0:
            matches.append(other)
    if beats:
        names = ", ".join(f"{o['system']} at {_with_interval(o, 'eer')}" for o in beats)
        return (
            f"**On this run a classical baseline beats the network:** {names} against the network's "
            f"{_with_interval(me, 'eer')}; the intervals do not overlap."
        )
    if matches:
        names = ", ".join(f"{o['system']} at {_with_interval(o, 'eer')}" for o in matches)
        estimated = known(interval_of(me, "eer")) and all(known(interval_of(o, "eer")) for o in matches)
        why = (
            "the intervals overlap, so a cheap LFCC system does as well as far as these test clips can tell."
            if estimated
            else "no interval could be estimated, so these test clips cannot order them."
        )
        return (
            f"**On this run the network is not shown to be better than a classical baseline:** {names} "
            f"against the network's {_with_interval(me, 'eer')}; {why}"
        )
    return "The network beats every classical baseline on this run: no interval overlaps the network's."


def describe_per_attack(per_attack: pd.DataFrame) -> str:
    """One bullet per attack: EER with its interval. With no error, the exact bound the table
    prints (``eer_high``: both error rates bounded together, notebook 01's convention), and the
    counts it rests on.

    ``per_attack``: ``attacks.per_attack_eer`` (attack, n_bonafide, n_spoof, eer, eer_low, eer_high).
    """
    lines = []
    for _, row in per_attack.iterrows():
        if float(row["eer"]) == 0.0:
            bound = row.get("eer_high")
            limit = f", at most {pct(bound)} (exact bound)" if not _missing(bound) else ""
            text = (
                f"no error: EER 0%{limit}; 0 of {int(row['n_spoof'])} spoofs accepted and 0 of "
                f"{int(row['n_bonafide'])} bona fide clips rejected at the EER threshold"
            )
        else:
            text = f"EER {_with_interval(row, 'eer')} on {int(row['n_spoof'])} spoofs"
        lines.append(f"- `{row['attack']}`: {text}")
    return "\n".join(lines)


KNOWN_SECOND_SOURCES: dict[str, str] = {
    "Hemg/Deepfakeaudio": (
        "**`Hemg/Deepfakeaudio` is no small second test set, and it may overlap the study's data.** Its Hub "
        "page (read in December 2026) lists 12 parquet shards and 10K-100K rows, against the 100 clips of "
        "`Hemg/Deepfake-Audio-Dataset`: downloading and scoring all of it takes long, even on a GPU. It comes "
        "from the same uploader, and whether it holds the same recordings has not been checked: clips shared "
        'with the training data would make this "other source" partly in-domain and flatter the model. '
        "Check for shared audio (for example, hash both datasets' audio bytes) before reading its EER as "
        "generalisation."
    ),
}
"""What is known about second sources a user is likely to try (Hub ids), shown before scoring them."""


def describe_second_source(source: str) -> str:
    """A warning about a known second source (size, overlap with the study's data); empty otherwise."""
    return KNOWN_SECOND_SOURCES.get(source.strip(), "")


# --------------------------------------------------------------------------------------
# the study's protocol against ours
# --------------------------------------------------------------------------------------
def _size_matched(clean: pd.Series, size_matched: Mapping[str, Any], n_train_study: int) -> str:
    matched = {
        "accuracy": size_matched.get("accuracy"),
        "accuracy_low": (_report_ci(size_matched, "accuracy") or [None, None])[0],
        "accuracy_high": (_report_ci(size_matched, "accuracy") or [None, None])[1],
    }
    side = compare_intervals(interval_of(clean, "accuracy"), interval_of(matched, "accuracy"))
    verdict = {
        0: "the intervals overlap, so at this size the protocol alone makes no measurable difference",
        1: "the study's protocol does better on clean test clips",
        -1: "our protocol does better on clean test clips",
    }[side]
    return (
        f"  Trained on {n_train_study} clips with our protocol, the model scores "
        f"{_with_interval(matched, 'accuracy')} on the same test split against "
        f"{_with_interval(clean, 'accuracy')} for the study's protocol: {verdict}."
    )


def describe_protocols(
    protocols: pd.DataFrame,
    *,
    n_train_study: int | None = None,
    n_train_ours: int | None = None,
    size_matched: Mapping[str, Any] | None = None,
) -> list[str]:
    """Bullets comparing the study's protocol with ours, from ``study_protocol.compare_protocols``.

    Rows, in order: the study protocol's reported accuracy; the same model on our clean test
    split; our protocol; optionally the epoch picked on random test subsets (its range is the
    5-95% spread of the draws, not a confidence interval, and the text says so). A difference is
    claimed only where the intervals do not overlap. ``n_train_study`` / ``n_train_ours``:
    training clips of the two models; when they differ the text says the gap mixes protocol with
    training-set size. ``size_matched``: our protocol trained on as many clips as the study's
    model (a report with ``accuracy`` and ``ci``), which separates the two.
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
    width = interval_of(reported, "accuracy")
    side = compare_intervals(interval_of(reported, "accuracy"), interval_of(clean, "accuracy"))
    if side > 0:
        lines.append(
            "- Scored honestly, the same model loses accuracy: its reported interval lies wholly above its "
            "clean-test interval, so the study's protocol overstates it."
        )
    elif side < 0:
        lines.append(
            "- Scored honestly, the same model does better than reported: the intervals do not overlap."
        )
    elif known(width):
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
            lines.append(_size_matched(clean, size_matched, n_train_study))
    if len(protocols) > 3:
        picked = protocols.iloc[3]
        lines.append(
            f"- **Picking the epoch on the test clips** you report gives {pct(picked['accuracy'])} on average "
            f"over random {int(picked['n_clips'])}-clip subsets (5th to 95th percentile of the draws, a spread, "
            f"not a confidence interval: {pct(picked['accuracy_low'])} to {pct(picked['accuracy_high'])}; "
            f"{picked['note']})."
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


_VARIANTS = {
    "mixed": (
        "`mixed`: the convolutional front-end in bf16, the transformer's linear layers in dynamic int8, "
        "the rest fp32"
    ),
    "int8": "`int8`: every linear layer in dynamic int8",
    "torch": "`torch`: plain fp32",
}


def describe_latency(
    latency_ms: float,
    *,
    model: str,
    clip_s: float | None = None,
    device: str = "cpu",
    base: Mapping[str, Any] | None = None,
    runtime: str | None = None,
) -> str:
    """The trained model's measured latency next to wav2vec2-base's measured CPU figure.

    ``model``: what was trained (e.g. ``metrics["model_source"]``); ``clip_s``: mean clip length
    of the timed clips, seconds; ``base``: :func:`read_base_latency` (None: not measured);
    ``runtime``: the detector's CPU runtime (defined in the text). The study's target (under
    :data:`STUDY_LATENCY_TARGET_MS` ms per clip for near-real-time use) is stated where first used.
    """
    target = f"{STUDY_LATENCY_TARGET_MS:.0f} ms"
    verdict = "within" if latency_ms <= STUDY_LATENCY_TARGET_MS else "above"
    clips = f" (mean clip {clip_s:.1f} s)" if clip_s else ""
    how = f" with runtime {_VARIANTS.get(runtime, f'`{runtime}`')}" if runtime else ""
    text = (
        f"- **Latency.** The study set itself a target of under {target} per clip for near-real-time use. "
        f"The model trained here (`{model}`) took {latency_ms:.0f} ms per test clip{clips} on {device}{how}, "
        f"{verdict} that target."
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
            f"clip on {base['threads']} CPU threads in fp32, {base_verdict} that target; its fastest measured "
            f"variant is {_VARIANTS.get(name, f'`{name}`')}, at {ms:.0f} ms "
            "(`benchmarks/results/latency.json`)."
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


def degraded_conditions(robustness: pd.DataFrame) -> tuple[pd.Series | None, pd.DataFrame, pd.DataFrame]:
    """``(clean row, degraded rows, rows whose EER interval lies wholly above clean's)``."""
    clean_rows = robustness[robustness["family"] == "clean"]
    degraded = robustness[robustness["family"] != "clean"]
    if not len(clean_rows):
        return None, degraded, degraded.iloc[0:0]
    clean = clean_rows.iloc[0]
    worse = degraded[
        [
            compare_intervals(interval_of(r, "eer"), interval_of(clean, "eer")) > 0
            for _, r in degraded.iterrows()
        ]
    ]
    return clean, degraded, worse


def describe_conditions(robustness: pd.DataFrame) -> str:
    """The robustness sweep under the rule: a condition "matters" only when its EER interval
    lies wholly above the clean one."""
    clean, degraded, worse = degraded_conditions(robustness)
    if clean is None or not len(degraded):
        return ""
    top = degraded.loc[degraded["eer"].astype(float).idxmax()]
    if len(worse):
        names = ", ".join(f"{r['condition']} ({_with_interval(r, 'eer')})" for _, r in worse.iterrows())
        return (
            f"- **Conditions matter.** Clean test EER {_with_interval(clean, 'eer')}; {len(worse)} of "
            f"{len(degraded)} degradations have an EER interval wholly above it: {names}."
        )
    return (
        f"- **Conditions: no measurable effect on these clips.** Clean test EER {_with_interval(clean, 'eer')}; "
        f"none of the {len(degraded)} degradations has an EER interval wholly above it (the highest point "
        f"estimate is {top['condition']} at {_with_interval(top, 'eer')}), so this run cannot tell whether "
        "any of them hurts. More test clips would narrow the intervals."
    )


def describe_unseen_attacks(loao: pd.DataFrame) -> str:
    """Leave-one-attack-out under the rule: a "gap" for an attack only when its unseen EER
    interval lies wholly above the same-budget control's; controls at chance are named."""
    gaps, at_chance = [], []
    for _, r in loao.iterrows():
        seen = interval_of(r, "seen_eer")
        if compare_intervals(interval_of(r, "unseen_eer"), seen) > 0:
            gaps.append(str(r["attack"]))
        if known(seen) and seen[1] >= CHANCE_EER:
            at_chance.append(f"{r['attack']} ({_with_interval(r, 'seen_eer')})")
    unseen, seen_mean = float(loao["unseen_eer"].mean()), float(loao["seen_eer"].mean())
    epochs = int(loao["epochs"].iloc[0]) if "epochs" in loao else None
    budget = f", {epochs}-epoch runs" if epochs else ""
    text = (
        f"- **Unseen attacks.** Each attack was held out of training and scored, next to a same-budget "
        f"control run that saw it (same training-set size{budget}). Mean EER {pct(unseen)} unseen against "
        f"{pct(seen_mean)} seen. "
    )
    if gaps:
        text += (
            f"For {', '.join(gaps)} the unseen interval lies wholly above the control's: a measured gap. "
            f"For the other {len(loao) - len(gaps)} the intervals overlap."
        )
    else:
        text += (
            f"For none of the {len(loao)} attacks does the unseen interval lie wholly above the control's, so "
            "this run cannot show an unseen-attack gap."
        )
    if at_chance:
        text += (
            f" The control's interval reaches chance ({pct(CHANCE_EER, 0)}) for {', '.join(at_chance)}: a "
            "control that has not learned the attack cannot show what missing it costs."
        )
    return text


def describe_cross_source(cross_source: Mapping[str, Any], *, shifted_embedded: bool) -> str:
    """The second source against the in-domain test split, under the rule."""
    m = cross_source["metrics"]
    in_domain = cross_source.get("in_domain_test", {})
    if "eer" not in m or in_domain.get("eer") is None:
        return ""
    what = (
        "a shifted copy of the embedded corpus (the same generator with another seed and fainter "
        "artefacts, so a harder version of the same data, not a new source)"
        if shifted_embedded
        else f"`{cross_source['source']}`"
    )
    return f"- **Another source.** On {cross_source['n_clips']} clips of {what}: " + state_difference(
        "this source",
        float(m["eer"]),
        _ci_tuple(m, "eer"),
        "the in-domain test",
        float(in_domain["eer"]),
        _ci_tuple(in_domain, "eer"),
    )


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
        text = describe_conditions(robustness)
        if text:
            lines.append(text)
    if loao is not None and len(loao):
        lines.append(describe_unseen_attacks(loao))
    if cross_source:
        text = describe_cross_source(
            cross_source,
            shifted_embedded=cross_source.get("source") == "embedded" and bool(metrics.get("caveat")),
        )
        if text:
            lines.append(text)
    return lines


def describe_training_augmentation(config: AugmentConfig | None = None) -> str:
    """What the training augmentation already applies, from its configuration."""
    c = config or AugmentConfig()
    return (
        f"noise on {pct(c.p_noise, 0)} of clips at {c.snr_db_range[0]:g}-{c.snr_db_range[1]:g} dB SNR, "
        f"reverb on {pct(c.p_reverb, 0)} (RT60 {c.rt60_range_s[0]:g}-{c.rt60_range_s[1]:g} s), "
        f"telephone band on {pct(c.p_telephone, 0)} and mu-law on {pct(c.p_mu_law, 0)}"
    )


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
            f"{100 * (ci[1] - ci[0]):.1f}-point EER interval, and most comparisons above that this run cannot "
            f"tell would become decidable. On 100-clip data, cross-validate (notebook 03)."
        )
    lines.append(
        "- **More kinds of fakes.** New generators are the normal case in deployment: training data should "
        "cover many (ASVspoof 2019/2021, In-the-Wild), and evaluation should hold some out."
    )
    if robustness is not None and len(robustness) > 1:
        _, _, worse = degraded_conditions(robustness)
        measured = (
            f"The conditions measured to hurt here are {', '.join(worse['condition'])}. "
            if len(worse)
            else "No condition was measured to hurt here. "
        )
        lines.append(
            f"- **Degraded audio.** {measured}The training augmentation already applies "
            f"{describe_training_augmentation()}; real re-recorded and transcoded speech is what it cannot "
            "stand in for."
        )
    lines.append(
        f"- **Compute.** This run trained for {metrics['train_seconds']:.0f} s on {metrics['device']} "
        f"({metrics['precision']}); a GPU makes wav2vec2-base-sized models and cross-validation practical."
    )
    return lines


def describe_threshold(calibration: Mapping[str, Any]) -> str:
    """The threshold to deploy, against the other candidate on test, and what calibration did to ECE."""
    rec = calibration["recommendation"]
    names = {"validation_eer": "the validation-EER threshold", "probability_0.5": "probability 0.5"}
    chosen = rec["threshold_name"]
    other = next(k for k in names if k != chosen)
    bal = rec.get("test_balanced_accuracy", {})
    compare = (
        f"; on test its balanced accuracy is {pct(bal[chosen])} against {pct(bal[other])} at {names[other]}"
        if chosen in bal and other in bal
        else ""
    )
    before, after = calibration["ece_before"], calibration["ece_after"]
    ece = (
        f"leaves the test ECE at {after:.3f} (changed by less than 0.001)"
        if round(before, 3) == round(after, 3)
        else f"moves the test ECE from {before:.3f} to {after:.3f}"
    )
    return (
        f"- **Threshold.** Use {names[chosen]} (score {rec['score_threshold']:.3f}): {rec['reasons'][0]}"
        f"{compare}. Temperature scaling (T = {calibration['temperature']:.2f}, fitted on validation) {ece}; "
        "ECE (expected calibration error) is the clip-weighted gap between predicted P(Real) and the observed "
        "share of bona fide clips, over probability bins (0 = calibrated)."
    )


def _deploy(
    metrics: Mapping[str, Any],
    calibration: Mapping[str, Any] | None,
    latency_ms: float | None,
    latency_clip_s: float | None,
    base_latency: Mapping[str, Any] | None,
    runtime: str | None,
) -> list[str]:
    lines = []
    if calibration:
        lines.append(describe_threshold(calibration))
    if latency_ms is not None:
        lines.append(
            describe_latency(
                latency_ms,
                model=str(metrics.get("model_source", "this run's model")),
                clip_s=latency_clip_s,
                device=str(metrics.get("device", "cpu")),
                base=base_latency,
                runtime=runtime,
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
    runtime: str | None = None,
) -> str:
    """The study's reflection questions, answered from this run's measurements (Markdown).

    ``systems``: the model and baselines table (:func:`describe_systems`); ``per_attack``:
    :func:`describe_per_attack`; ``study``: ``study_protocol.run_original_protocol`` (its training-set
    size); ``size_matched``: see :func:`describe_protocols`; ``base_latency``: wav2vec2-base's
    figure, by default read with :func:`read_base_latency` (None: not measured); ``runtime``: the
    detector's CPU runtime.
    """
    base = read_base_latency() if isinstance(base_latency, str) else base_latency
    sections: Sequence[tuple[str, list[str]]] = [
        ("What were the challenges?", _challenges(metrics, protocols, study, size_matched)),
        ("Research data versus real-world data", _real_world(metrics, robustness, loao, cross_source)),
        ("What data or resources would help?", _help(metrics, loao, robustness)),
        ("How would we deploy it?", _deploy(metrics, calibration, latency_ms, latency_clip_s, base, runtime)),
    ]
    parts = [describe_headline(metrics)]
    if systems is not None and len(systems) > 1:
        parts.append(describe_systems(systems) + "\n\n" + describe_baselines_vs_model(systems))
    if per_attack is not None and len(per_attack):
        parts.append("Per attack:\n\n" + describe_per_attack(per_attack))
    for title, lines in sections:
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(lines))
    return "\n\n".join(parts)
