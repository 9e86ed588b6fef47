"""The one rule for claims, and the one interval convention."""

from __future__ import annotations

import math

from deepfake_lib.notebook import claims

NAN = float("nan")


def test_compare_intervals_only_separates_disjoint_known_intervals():
    assert claims.compare_intervals((0.01, 0.05), (0.06, 0.10)) == -1
    assert claims.compare_intervals((0.06, 0.10), (0.01, 0.05)) == 1
    assert claims.compare_intervals((0.01, 0.06), (0.06, 0.10)) == 0  # touching is overlapping
    assert claims.compare_intervals((NAN, NAN), (0.5, 0.6)) == 0
    assert not claims.known((0.1, NAN)) and claims.known((0.0, 0.0))


def test_state_difference_names_better_and_worse_by_the_quantitys_direction():
    lower = claims.state_difference("A", 0.03, (0.01, 0.05), "B", 0.08, (0.06, 0.10))
    assert lower.startswith(
        "The EER of A (3.0%, 1.0% to 5.0%) is lower (better) than that of B (8.0%, 6.0% to 10.0%)"
    )
    auc = claims.state_difference(
        "A", 0.70, (0.6, 0.8), "B", 0.95, (0.9, 0.99), quantity="AUC", better="higher"
    )
    assert "is lower (worse)" in auc
    overlap = claims.state_difference("A", 0.03, (0.01, 0.07), "B", 0.08, (0.06, 0.10))
    assert "intervals overlap" in overlap and "cannot tell" in overlap and "better)" not in overlap
    unknown = claims.state_difference("A", 0.03, None, "B", 0.30, (NAN, NAN))
    assert "no interval could be estimated" in unknown and "cannot tell" in unknown


def test_convention_states_both_bounds_and_the_rule_from_the_level():
    text = claims.describe_interval_convention()
    assert "95% interval" in text and "97.5%" in text and "Clopper-Pearson" in text
    assert "do not overlap" in text and "cannot tell" in text
    assert "99.5%" in claims.describe_interval_convention(0.99)
    assert claims.format_interval(0.089, (0.044, 0.156)) == "8.9% (4.4% to 15.6%)"
    assert claims.format_interval(0.089, (NAN, 1.0)) == "8.9%" and claims.pct(None) == "n/a"
    assert not math.isnan(claims.interval_of({"eer_low": 0.1, "eer_high": 0.2}, "eer")[0])
