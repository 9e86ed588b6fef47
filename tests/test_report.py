"""The generated sentences follow the figures: invented figures, and the verdicts must flip.

One test per claim type of :mod:`deepfake_lib.notebook.claims`' rule: a difference (headline,
systems), a ranking (lowest EER, baselines against the network), "matters" (conditions), "gap"
(unseen attacks, another source), the protocol comparison, and the zero-error convention.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy.stats import binom

from deepfake_lib.modeling.baselines import CONTROL_FEATURES
from deepfake_lib.notebook import report

NAN = float("nan")


def metrics(
    eer: float = 0.089,
    ci: tuple[float, float] = (0.044, 0.156),
    shortcut: float = 0.489,
    shortcut_ci: tuple[float, float] = (0.38, 0.60),
) -> dict:
    return {
        "test": {"n": 90, "eer": eer, "auc": 0.95, "ci": {"eer": ci}},
        "shortcut_control": {"eer": shortcut, "ci": {"eer": shortcut_ci}},
        "n_clips": {"train": 420},
        "train_seconds": 200.0,
        "device": "cpu",
        "precision": "fp32",
        "model_source": "tiny",
        "caveat": "",
    }


def systems(model: float, lr: float, gmm: float, control: float = 0.49, width: float = 0.05) -> pd.DataFrame:
    rows = [
        ("fine-tuned wav2vec2 (this run)", model),
        ("LFCC-GMM (ASVspoof baseline recipe)", gmm),
        ("LFCC + logistic regression", lr),
        ("cheap cues + logistic regression (shortcut control)", control),
    ]
    return pd.DataFrame(
        [{"system": s, "eer": e, "eer_low": max(0.0, e - width), "eer_high": e + width} for s, e in rows]
    )


def test_upper_bound_is_the_exact_one_sided_clopper_pearson_bound():
    assert f"{100 * report.upper_bound(0, 11):.0f}%" == "24%"
    for errors, n in ((0, 11), (0, 14), (3, 20)):
        bound = report.upper_bound(errors, n)
        assert binom.cdf(errors, n, bound) == pytest.approx(0.05)  # at the bound, so few errors has p = 5%
    assert report.upper_bound(5, 5) == 1.0
    with pytest.raises(ValueError):
        report.upper_bound(3, 2)
    assert report.describe_errors(0, 11, "spoofs") == "0 of 11 spoofs, at most 24% at 95%"
    assert report.describe_errors(2, 8, "spoofs").startswith("2 of 8 spoofs (25%), 95% CI")


# -- a difference -----------------------------------------------------------------------------
def test_headline_compares_with_the_shortcut_control_by_intervals():
    clear = report.describe_headline(metrics())
    assert "is lower (better) than that of the shortcut control" in clear and "do not overlap" in clear
    assert "below what trivial features give" not in clear  # the old wording read as "worse"
    assert "logistic regression on cheap properties of each clip" in clear  # no feature list recorded
    named = metrics()
    named["shortcut_control"]["features"] = list(CONTROL_FEATURES)
    assert f"on {len(CONTROL_FEATURES)} cheap cues of each clip" in report.describe_headline(named)
    named["shortcut_control"]["features"] = ["duration_s", "rms_dbfs"]  # an older run's control
    assert "on 2 features of each clip (duration_s, rms_dbfs)" in report.describe_headline(named)
    overlapping = report.describe_headline(metrics(eer=0.30, ci=(0.2, 0.45)))
    assert (
        "intervals overlap" in overlapping
        and "cannot tell" in overlapping
        and "lower (better)" not in overlapping
    )
    shortcut = report.describe_headline(metrics(eer=0.5, ci=(0.4, 0.6), shortcut=0.3))
    assert "not below" in shortcut and "it may have learned a shortcut" in shortcut
    embedded = report.describe_headline(
        {**metrics(eer=0.5, ci=(0.4, 0.6), shortcut=0.3), "data_source": "embedded"}
    )
    assert "cheap artefact detector there" in embedded and "learned a shortcut" not in embedded
    below = report.describe_headline(
        {**metrics(eer=0.1, ci=(0.05, 0.2), shortcut=0.3), "data_source": "embedded"}
    )
    assert "not below" not in below


def test_headline_without_intervals_does_not_claim_they_overlap():
    m = metrics(eer=0.40, shortcut=0.407)
    m["test"]["ci"] = {"too_few_groups": {"bonafide": 1, "spoof": 2, "needed": 5}}
    m["shortcut_control"]["ci"] = {"too_few_groups": {"bonafide": 1, "spoof": 2, "needed": 5}}
    text = report.describe_headline(m)
    assert "no interval could be estimated" in text and "overlap" not in text


# -- a ranking --------------------------------------------------------------------------------
def test_systems_text_names_the_lowest_and_ranks_only_without_overlap():
    text = report.describe_systems(systems(model=0.089, lr=0.067, gmm=0.089))
    assert "**LFCC + logistic regression** at 6.7%" in text and "point estimate" in text
    assert "cannot tell which is better" in text
    assert "than that of LFCC" not in text  # overlapping with both LFCC systems: no ranking
    text = report.describe_systems(systems(model=0.02, lr=0.30, gmm=0.25, width=0.04))
    assert "**fine-tuned wav2vec2 (this run)** at 2.0%" in text
    assert "is lower (better) than that of LFCC + logistic regression" in text and "do not overlap" in text


def test_systems_text_ranks_nothing_without_intervals():
    table = systems(model=0.02, lr=0.30, gmm=0.25).assign(
        eer_low=NAN, eer_high=NAN, no_interval="too few groups for a grouped bootstrap: 1 bona fide"
    )
    text = report.describe_systems(table)
    assert "better)" not in text and "worse)" not in text
    assert "No confidence intervals: the test split has too few groups" in text
    assert "intervals overlap" not in text and "no interval could be estimated" in text


def test_baselines_against_the_network_say_plainly_who_matches_or_beats():
    matches = report.describe_baselines_vs_model(systems(model=0.089, lr=0.067, gmm=0.089))
    assert "not shown to be better than a classical baseline" in matches
    assert "LFCC + logistic regression at 6.7%" in matches and "shortcut" not in matches
    beats = report.describe_baselines_vs_model(systems(model=0.30, lr=0.05, gmm=0.32, width=0.03))
    assert beats.startswith("**On this run a classical baseline beats the network:** LFCC + logistic")
    assert "LFCC-GMM" not in beats
    network = report.describe_baselines_vs_model(systems(model=0.02, lr=0.30, gmm=0.25, width=0.04))
    assert "The network beats every classical baseline" in network
    bare = systems(model=0.35, lr=0.43, gmm=0.53)
    bare[["eer_low", "eer_high"]] = float("nan")
    text = report.describe_baselines_vs_model(bare)
    assert "no interval could be estimated" in text and "intervals overlap" not in text


# -- "matters" --------------------------------------------------------------------------------
def robustness(worst_low: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "condition": ["clean", "white noise 0 dB", "gain -12 dB"],
            "family": ["clean", "noise (white)", "gain"],
            "eer": [0.09, 0.40, 0.10],
            "eer_low": [0.04, worst_low, 0.05],
            "eer_high": [0.15, 0.50, 0.16],
        }
    )


def test_conditions_matter_only_when_an_interval_lies_above_clean():
    text = report.describe_conditions(robustness(worst_low=0.30))
    assert "**Conditions matter.**" in text and "1 of 2 degradations" in text and "white noise 0 dB" in text
    text = report.describe_conditions(robustness(worst_low=0.12))
    assert "Conditions matter" not in text and "no measurable effect" in text and "none of the 2" in text
    assert "cannot tell" in text


# -- "gap" ------------------------------------------------------------------------------------
def loao(unseen_low: float, seen_high: float = 0.3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "attack": ["A01", "A02"],
            "unseen_eer": [0.5, 0.25],
            "unseen_eer_low": [unseen_low, 0.13],
            "unseen_eer_high": [0.66, 0.38],
            "seen_eer": [0.2, 0.2],
            "seen_eer_low": [0.1, 0.02],
            "seen_eer_high": [seen_high, 0.29],
            "epochs": [4, 4],
        }
    )


def test_unseen_attack_gap_is_claimed_per_attack_only_without_overlap():
    gap = report.describe_unseen_attacks(loao(unseen_low=0.35))
    assert "For A01 the unseen interval lies wholly above the control's: a measured gap" in gap
    none = report.describe_unseen_attacks(loao(unseen_low=0.25))
    assert "cannot show an unseen-attack gap" in none and "measured gap" not in none
    chance = report.describe_unseen_attacks(loao(unseen_low=0.25, seen_high=0.64))
    assert "reaches chance (50%) for A01" in chance


def test_another_source_gap_and_the_shifted_corpus_is_not_called_a_new_source():
    cross = {
        "source": "embedded",
        "n_clips": 120,
        "metrics": {"eer": 0.217, "ci": {"eer": [0.16, 0.283]}},
        "in_domain_test": {"eer": 0.089, "ci": {"eer": [0.044, 0.156]}},
    }
    text = report.describe_cross_source(cross, shifted_embedded=True)
    assert "not a new source" in text and "higher (worse)" in text and "do not overlap" in text
    cross["metrics"]["ci"]["eer"] = [0.1, 0.3]
    text = report.describe_cross_source(cross, shifted_embedded=False)
    assert "`embedded`" in text and "cannot tell" in text and "worse" not in text


def test_a_second_source_known_to_be_large_gets_a_size_and_overlap_warning():
    text = report.describe_second_source("Hemg/Deepfakeaudio")
    assert "shards" in text and "overlap" in text and "same uploader" in text
    assert report.describe_second_source("") == "" and report.describe_second_source("my/data") == ""


# -- the protocol comparison ------------------------------------------------------------------
def protocols(reported=(0.7, 0.348, 0.933), clean=(0.62, 0.52, 0.72), ours=(0.91, 0.86, 0.96), n_rep=10):
    def row(name, n, v):
        return {"protocol": name, "n_clips": n, "accuracy": v[0], "accuracy_low": v[1], "accuracy_high": v[2]}

    return pd.DataFrame(
        [
            row("study protocol: reported accuracy", n_rep, reported),
            row("study-protocol model on our clean test set", 90, clean),
            row("our protocol (validation-selected, test scored once)", 90, ours),
        ]
    )


def test_protocol_text_claims_no_difference_its_intervals_cannot_support():
    lines = " ".join(report.describe_protocols(protocols(), n_train_study=90, n_train_ours=420))
    assert "70.0% (34.8% to 93.3%)" in lines and "on 10 clips" in lines
    assert "intervals overlap" in lines and "supports no point difference" in lines
    assert "90 clips and ours on 420" in lines and "mixes the protocol" in lines
    lines = " ".join(report.describe_protocols(protocols(reported=(1.0, 0.95, 1.0), n_rep=60)))
    assert "overstates" in lines and "intervals overlap" not in lines
    assert "Training-set size" not in " ".join(
        report.describe_protocols(protocols(), n_train_study=90, n_train_ours=90)
    )


def test_epoch_picking_range_is_called_a_spread_not_an_interval():
    table = pd.concat(
        [
            protocols(),
            pd.DataFrame(
                [
                    {
                        "protocol": "picked",
                        "n_clips": 10,
                        "accuracy": 0.95,
                        "accuracy_low": 0.8,
                        "accuracy_high": 1.0,
                        "note": "honest accuracy 91.1%",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    last = report.describe_protocols(table)[-1]
    assert "not a confidence interval" in last and "80.0% to 100.0%" in last


def test_size_matched_run_separates_protocol_from_training_size():
    matched = {"accuracy": 0.60, "ci": {"accuracy": (0.50, 0.70)}}
    text = " ".join(
        report.describe_protocols(protocols(), n_train_study=90, n_train_ours=420, size_matched=matched)
    )
    assert "Trained on 90 clips with our protocol" in text and "no measurable difference" in text
    matched = {"accuracy": 0.90, "ci": {"accuracy": (0.85, 0.95)}}
    text = " ".join(
        report.describe_protocols(protocols(), n_train_study=90, n_train_ours=420, size_matched=matched)
    )
    assert "our protocol does better" in text


# -- the zero-error convention ----------------------------------------------------------------
def test_per_attack_zero_errors_print_the_tables_exact_bound():
    table = pd.DataFrame(
        [
            {"attack": "A03", "n_bonafide": 45, "n_spoof": 11, "eer": 0.0, "eer_low": 0.0, "eer_high": 0.285},
            {"attack": "A02", "n_bonafide": 45, "n_spoof": 14, "eer": 0.071, "eer_low": 0.0, "eer_high": 0.2},
        ]
    )
    text = report.describe_per_attack(table)
    assert "no error: EER 0%, at most 28.5% (exact bound)" in text  # the table's eer_high, not another bound
    assert "0 of 11 spoofs accepted and 0 of 45 bona fide clips rejected" in text
    assert "24%" not in text and "(0.0% to 0.0%)" not in text
    assert "EER 7.1% (0.0% to 20.0%) on 14 spoofs" in text


def test_study_claim_carries_its_exact_interval():
    text = report.describe_study_claim()
    assert "90% accuracy" in text and "10 validation clips" in text and "9 of 10" in text
    assert "55.5% to 99.7%" in text  # Clopper-Pearson for 9 of 10
    assert "50.0% to" not in report.describe_study_claim(10, 20)


# -- deployment -------------------------------------------------------------------------------
def calibration(before: float, after: float) -> dict:
    return {
        "temperature": 0.69,
        "ece_before": before,
        "ece_after": after,
        "recommendation": {
            "threshold_name": "validation_eer",
            "score_threshold": 0.074,
            "reasons": ["it was chosen on held-out validation clips"],
            "test_agrees": True,
            "test_balanced_accuracy": {"validation_eer": 0.911, "probability_0.5": 0.9},
        },
    }


def test_threshold_says_than_what_and_an_unchanged_ece_is_not_a_move():
    same = report.describe_threshold(calibration(0.0501, 0.0498))
    assert "leaves the test ECE at 0.050" in same and "from 0.050 to 0.050" not in same
    assert "91.1% against 90.0% at probability 0.5" in same and "expected calibration error" in same
    moved = report.describe_threshold(calibration(0.12, 0.05))
    assert "moves the test ECE from 0.120 to 0.050" in moved


def test_latency_defines_the_target_and_the_backend(tmp_path):
    results = {
        "clip_s": 4.0,
        "threads": 2,
        "models": {"base": {"fp32": {"batch1_ms_per_clip": 322.2}, "mixed": {"batch1_ms_per_clip": 147.2}}},
    }
    path = tmp_path / "latency.json"
    path.write_text(json.dumps(results))
    base = report.read_base_latency(path)
    assert base["ms"] == pytest.approx(322.2) and base["fastest"] == ("mixed", pytest.approx(147.2))
    text = report.describe_latency(11.0, model="tiny", clip_s=3.2, base=base, runtime="mixed")
    assert "target of under 100 ms per clip for near-real-time use" in text
    assert "`tiny`" in text and "11 ms" in text and "within that target" in text
    assert "322 ms per 4 s clip" in text and "above that target" in text
    assert "bf16" in text and "int8" in text  # "mixed" defined where it is used
    assert "not measured" in report.describe_latency(11.0, model="tiny", base=None)
    assert "above that target" in report.describe_latency(250.0, model="facebook/wav2vec2-base", base=base)
    assert report.read_base_latency(tmp_path / "missing.json") is None


def test_reflection_assembles_every_part():
    text = report.compose_reflection(
        metrics(),
        protocols=protocols(),
        robustness=robustness(worst_low=0.30),
        loao=loao(unseen_low=0.25),
        systems=systems(0.089, 0.067, 0.089),
        study={"n_train": 90},
        latency_ms=11.0,
        base_latency=None,
    )
    assert "Lowest test EER" in text and "mixes the protocol" in text
    assert "not shown to be better than a classical baseline" in text
    assert "1 of 2 degradations" in text and "cannot show an unseen-attack gap" in text
    assert "The training augmentation already applies noise on 25% of clips" in text
    assert "The unseen-attack gap says" not in text  # claimed only when measured
    assert not math.isnan(report.upper_bound(0, 1))


def test_source_label_marks_embedded_results_as_pipeline_checks():
    assert "pipeline check" in report.describe_source("embedded")
    assert "not the performance" in report.describe_source("embedded")
    hub = report.describe_source("Hemg/Deepfake-Audio-Dataset")
    assert "pipeline check" not in hub and "`Hemg/Deepfake-Audio-Dataset`" in hub
