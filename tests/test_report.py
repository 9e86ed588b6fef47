"""The reflection's sentences follow the figures: invented figures, and the verdicts must flip."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy.stats import binom

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


def systems(model: float, lr: float, gmm: float, trivial: float = 0.49, width: float = 0.05) -> pd.DataFrame:
    rows = [
        ("fine-tuned wav2vec2 (this run)", model),
        ("LFCC-GMM (ASVspoof baseline recipe)", gmm),
        ("LFCC + logistic regression", lr),
        ("trivial features + logistic regression (shortcut control)", trivial),
    ]
    return pd.DataFrame(
        [{"system": s, "eer": e, "eer_low": max(0.0, e - width), "eer_high": e + width} for s, e in rows]
    )


def test_upper_bound_is_the_exact_one_sided_clopper_pearson_bound():
    assert f"{100 * report.upper_bound(0, 11):.0f}%" == "24%"
    for errors, n in ((0, 11), (0, 14), (3, 20)):
        bound = report.upper_bound(errors, n)
        assert binom.cdf(errors, n, bound) == pytest.approx(
            0.05
        )  # at the bound, seeing so few errors has p = 5%
    assert report.upper_bound(5, 5) == 1.0
    with pytest.raises(ValueError):
        report.upper_bound(3, 2)
    assert report.describe_errors(0, 11, "spoofs") == "0 of 11 spoofs, at most 24% at 95%"
    assert report.describe_errors(2, 8, "spoofs").startswith("2 of 8 spoofs (25%), 95% CI")


def test_systems_text_names_the_winner_and_flips_with_the_figures():
    text = report.describe_systems(systems(model=0.089, lr=0.067, gmm=0.089))
    assert "**LFCC + logistic regression** at 6.7%" in text
    assert "(8.9%) had a higher EER than LFCC + logistic regression" in text  # overlapping: no "lost"
    assert "lost to" not in text
    assert "tied with LFCC-GMM" in text
    assert "cannot rank" in text  # intervals overlap: no claim of a real difference
    text = report.describe_systems(systems(model=0.02, lr=0.30, gmm=0.25, width=0.04))
    assert "**fine-tuned wav2vec2 (this run)** at 2.0%" in text
    assert "beat LFCC + logistic regression" in text and "do not overlap" in text
    assert "lost to" not in text
    assert "beat trivial features" in text


def test_headline_without_intervals_does_not_claim_they_overlap():
    m = metrics(eer=0.40, shortcut=0.407)
    m["test"]["ci"] = {"too_few_groups": {"bonafide": 1, "spoof": 2, "needed": 5}}
    m["shortcut_control"]["ci"] = {"too_few_groups": {"bonafide": 1, "spoof": 2, "needed": 5}}
    text = report.describe_headline(m)
    assert "no interval could be estimated" in text and "overlap" not in text


def test_systems_text_ranks_nothing_without_intervals():
    # One bona fide test speaker: the grouped bootstrap refuses, the bounds are NaN and the
    # rows say why; far-apart point estimates must still not be called a win.
    table = systems(model=0.02, lr=0.30, gmm=0.25).assign(
        eer_low=float("nan"),
        eer_high=float("nan"),
        no_interval="too few groups for a grouped bootstrap: 1 bona fide",
    )
    text = report.describe_systems(table)
    assert "beat" not in text and "lost to" not in text
    assert "had a lower EER than LFCC + logistic regression" in text
    assert "No confidence intervals: the test split has too few groups" in text
    assert "intervals overlap" not in text and "there are no intervals" in text


def test_headline_compares_with_the_shortcut_control_by_intervals():
    clear = report.describe_headline(metrics())
    assert "8.9%" in clear and "48.9%" in clear and "do not overlap" in clear
    overlapping = report.describe_headline(metrics(eer=0.30, ci=(0.2, 0.45)))
    assert "intervals overlap" in overlapping
    shortcut = report.describe_headline(metrics(eer=0.5, ci=(0.4, 0.6), shortcut=0.3))
    assert "not below" in shortcut and "shortcut" in shortcut


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
    assert "flatters the model by" not in lines and "points" in lines
    assert "90 clips and ours on 420" in lines and "mixes the protocol" in lines
    # reported far above the honest interval: now the text may say it overstates
    lines = " ".join(report.describe_protocols(protocols(reported=(1.0, 0.95, 1.0), n_rep=60)))
    assert "overstates" in lines and "intervals overlap" not in lines
    # same training size: no size caveat
    assert "Training-set size" not in " ".join(
        report.describe_protocols(protocols(), n_train_study=90, n_train_ours=90)
    )


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


def test_per_attack_zero_errors_get_an_upper_bound():
    table = pd.DataFrame(
        [
            {"attack": "A01", "n_bonafide": 45, "n_spoof": 11, "eer": 0.0, "eer_low": 0.0, "eer_high": 0.0},
            {"attack": "A02", "n_bonafide": 45, "n_spoof": 14, "eer": 0.071, "eer_low": 0.0, "eer_high": 0.2},
        ]
    )
    text = report.describe_per_attack(table)
    assert (
        "no error: accepted 0 of 11 spoofs (at most 24% at 95%) and rejected 0 of 45 bona fide clips" in text
    )
    assert "0.000 [0.000, 0.000]" not in text and "(0.0% to 0.0%)" not in text
    assert "EER 7.1% (0.0% to 20.0%) on 14 spoofs" in text


def test_latency_is_stated_for_the_trained_model_next_to_wav2vec2_base(tmp_path):
    results = {
        "clip_s": 4.0,
        "threads": 2,
        "models": {
            "base": {"fp32": {"batch1_ms_per_clip": 322.2}, "onnx int8": {"batch1_ms_per_clip": 147.2}}
        },
    }
    path = tmp_path / "latency.json"
    path.write_text(json.dumps(results))
    base = report.read_base_latency(path)
    assert base["ms"] == pytest.approx(322.2) and base["fastest"] == ("onnx int8", pytest.approx(147.2))
    text = report.describe_latency(11.0, model="tiny", clip_s=3.2, base=base)
    assert "`tiny`" in text and "11 ms" in text and "within the study's 100 ms" in text
    assert "wav2vec2-base" in text and "322 ms per 4 s clip" in text and "above that target" in text
    assert "not measured" in report.describe_latency(11.0, model="tiny", base=None)
    assert "above the study's" in report.describe_latency(250.0, model="facebook/wav2vec2-base", base=base)
    assert report.read_base_latency(tmp_path / "missing.json") is None


def test_reflection_assembles_every_part():
    robustness = pd.DataFrame(
        {
            "condition": ["clean", "white noise 0 dB", "gain -12 dB"],
            "family": ["clean", "noise (white)", "gain"],
            "eer": [0.09, 0.40, 0.10],
            "eer_low": [0.04, 0.30, 0.05],
            "eer_high": [0.15, 0.50, 0.16],
        }
    )
    text = report.compose_reflection(
        metrics(),
        protocols=protocols(),
        robustness=robustness,
        systems=systems(0.089, 0.067, 0.089),
        study={"n_train": 90},
        latency_ms=11.0,
        base_latency=None,
    )
    assert "Lowest test EER" in text and "mixes the protocol" in text
    assert "1 of 2 conditions have an EER interval wholly above the clean one" in text
    assert "not measured" in text
    assert not math.isnan(report.upper_bound(0, 1))


def test_source_label_marks_embedded_results_as_pipeline_checks():
    assert "pipeline check" in report.describe_source("embedded")
    assert "not the performance" in report.describe_source("embedded")
    hub = report.describe_source("Hemg/Deepfake-Audio-Dataset")
    assert "pipeline check" not in hub and "`Hemg/Deepfake-Audio-Dataset`" in hub
