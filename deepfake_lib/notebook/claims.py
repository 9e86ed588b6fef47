"""One rule for every claim the notebooks print, and one convention for the intervals it reads.

**The rule.** A sentence may say that two figures differ, rank them, say that a condition
"matters" or that there is a "gap" only when their 95% intervals (or exact bounds) do not
overlap. Otherwise it says that this run cannot tell them apart, and why: the intervals overlap,
or no interval could be estimated. :func:`compare_intervals` decides; :func:`state_difference`
writes the sentence. Every generated sentence of :mod:`deepfake_lib.notebook.report` and
:mod:`deepfake_lib.notebook.captions` that compares goes through them.

**The interval convention** (:func:`describe_interval_convention`, shown once, in notebook 01):
a 95% interval is a bootstrap over utterance groups; a rate with no error has no bootstrap
spread, so it gets an exact (Clopper-Pearson) upper bound instead, and an EER with no error the
larger of the two rates' bounds, each at 97.5% so that both hold together at 95%. Tables and text
print the same bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CONFIDENCE",
    "compare_intervals",
    "describe_interval_convention",
    "format_interval",
    "interval_of",
    "known",
    "pct",
    "state_difference",
]

CONFIDENCE = 0.95
"""Confidence level of every interval and bound in the generated text."""

Interval = tuple[float, float]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: Any, digits: int = 1) -> str:
    """A rate (0..1) as a percentage with ``digits`` decimals; ``"n/a"`` when missing."""
    return "n/a" if _missing(x) else f"{100 * float(x):.{digits}f}%"


def interval_of(row: Mapping[str, Any], key: str) -> Interval:
    """``(row[key_low], row[key_high])``, or ``(nan, nan)`` when either bound is missing."""
    lo, hi = row.get(f"{key}_low"), row.get(f"{key}_high")
    return (math.nan, math.nan) if _missing(lo) or _missing(hi) else (float(lo), float(hi))


def known(interval: Interval | None) -> bool:
    """Whether both bounds of ``interval`` are numbers."""
    return interval is not None and not any(_missing(v) or math.isnan(float(v)) for v in interval)


def format_interval(value: Any, interval: Interval | None) -> str:
    """``"8.9% (4.4% to 15.6%)"``, or the value alone when the interval is unknown."""
    text = pct(value)
    return f"{text} ({pct(interval[0])} to {pct(interval[1])})" if known(interval) else text


def compare_intervals(a: Interval, b: Interval) -> int:
    """-1 when interval ``a`` lies wholly below ``b``, 1 when wholly above, 0 when they overlap
    or either is unknown: only then do two measurements differ beyond sampling noise."""
    if not (known(a) and known(b)):
        return 0
    if a[1] < b[0]:
        return -1
    if a[0] > b[1]:
        return 1
    return 0


def state_difference(
    name_a: str,
    value_a: float,
    interval_a: Interval | None,
    name_b: str,
    value_b: float,
    interval_b: Interval | None,
    *,
    quantity: str = "EER",
    better: str = "lower",
) -> str:
    """One sentence comparing ``quantity`` of ``a`` with ``b`` under the rule of this module.

    ``better``: ``"lower"`` (EER, error rates) or ``"higher"`` (AUC, accuracy); the sentence
    says which is better only when the intervals do not overlap. Example: ``"The EER of the model
    (8.9%, 4.4% to 15.6%) is lower (better) than that of the shortcut control (48.9%, 37.8% to
    57.8%): the intervals do not overlap."``
    """
    a_text = format_interval(value_a, interval_a).replace(" (", ", ", 1).rstrip(")")
    b_text = format_interval(value_b, interval_b).replace(" (", ", ", 1).rstrip(")")
    side = compare_intervals(interval_a or (math.nan, math.nan), interval_b or (math.nan, math.nan))
    if side != 0:
        word = "lower" if side < 0 else "higher"
        verdict = "better" if (side < 0) == (better == "lower") else "worse"
        return (
            f"The {quantity} of {name_a} ({a_text}) is {word} ({verdict}) than that of {name_b} ({b_text}): "
            "the intervals do not overlap."
        )
    why = (
        "the intervals overlap"
        if known(interval_a) and known(interval_b)
        else "no interval could be estimated for both"
    )
    return (
        f"The {quantity} of {name_a} ({a_text}) and that of {name_b} ({b_text}): {why}, so this run cannot "
        "tell which is better."
    )


def describe_interval_convention(confidence: float = CONFIDENCE) -> str:
    """The one interval convention of the series, in Markdown (notebook 01 shows it once)."""
    level = f"{100 * confidence:g}%"
    each = f"{100 * (1 - (1 - confidence) / 2):g}%"
    return (
        f"**Intervals.** Brackets and ranges hold a **{level} interval**: the test clips are resampled "
        "with replacement by utterance group (bootstrap), and the range covers the middle "
        f"{level} of the recomputed figure. When a rate has **no errors** (0 of n), every resample "
        "has none too, and the bootstrap would print a zero-width interval; the series prints instead "
        "the exact (Clopper-Pearson) upper bound: the largest true rate that still shows no error in n "
        f"clips with probability {100 * (1 - confidence):g}%. A single rate (an accuracy, a share of "
        f"spoofs accepted) gets its bound at {level}; an EER with no error needs two rates at once "
        f"(spoofs accepted, bona fide rejected), so each is bounded at {each} and the EER's bound is the "
        f"larger of the two, holding at {level} for both together. Tables and sentences print the same "
        'bound. **One rule for every claim:** a difference, a ranking, a condition that "matters" or a '
        '"gap" is stated only when the two intervals do not overlap; otherwise the sentence says that '
        "this run cannot tell."
    )
