"""Analysis of a trained detector: robustness sweep, per-attack and leave-one-attack-out EERs,
calibration, classical baselines, windows and occlusion, cross-source scoring, the study's protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from deepfake_lib.audio.augmentation import available_codecs
from deepfake_lib.evaluation.calibration import calibrate_scores
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.modeling.baselines import (
    CONTROL_FEATURES,
    SYSTEM_CONTROL_LR,
    SYSTEM_LFCC_GMM,
    SYSTEM_LFCC_LR,
    evaluate_classical_baselines,
    evaluate_shortcut_control,
)
from deepfake_lib.scoring import EvalClips
from deepfake_lib.studies.attacks import per_attack_eer
from deepfake_lib.studies.cross_source import evaluate_cross_source
from deepfake_lib.studies.explain import occlusion_map, score_windows
from deepfake_lib.studies.robustness import (
    Condition,
    degrade_waves,
    evaluate_robustness,
    robustness_conditions,
)
from deepfake_lib.studies.study_protocol import (
    build_study_protocol_data,
    compare_protocols,
    summarize_epoch_picking,
    waves_to_dataset,
)

SR = 16_000


def speech_like(seed: int, seconds: float = 1.0) -> np.ndarray:
    """A voiced, formant-coloured test clip [samples] at 16 kHz (energy across the band)."""
    from deepfake_lib.corpora.embedded_speech import synthesize_bonafide

    return synthesize_bonafide(np.random.default_rng(seed), SR, seconds).astype(np.float32)


def white(seed: int, seconds: float = 1.0, level: float = 0.1) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


@pytest.fixture(scope="module")
def tiny():
    from deepfake_lib.modeling.frontends import build_tiny_model

    return build_tiny_model(seed=0)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """A small embedded corpus (12 utterances, 2 spoofs each, 1-2 s clips) split by utterance."""
    from deepfake_lib.corpora.embedded import CorpusConfig
    from deepfake_lib.corpora.sources import load_source, make_splits

    cfg = CorpusConfig(
        n_utterances=12, spoofs_per_utterance=2, min_duration_s=1.0, max_duration_s=2.0, seed=0
    )
    dd, _ = load_source("embedded", corpus_config=cfg, cache_dir=tmp_path_factory.mktemp("corpus"))
    return make_splits(dd, seed=0)


def conditions_by_name() -> dict[str, Condition]:
    return {c.name: c for c in robustness_conditions()}


# --------------------------------------------------------------------------------------
# robustness conditions
# --------------------------------------------------------------------------------------
def test_conditions_cover_the_sweep():
    conds = robustness_conditions()
    names = [c.name for c in conds]
    assert names[0] == "clean" and len(set(names)) == len(names)
    families = {c.family for c in conds}
    assert {
        "clean",
        "noise (white)",
        "noise (speech-shaped)",
        "telephone",
        "reverb",
        "clipping",
        "gain",
    } <= families
    assert [c.parameter for c in conds if c.family == "codec"] == available_codecs()
    for fam in ("noise (white)", "noise (speech-shaped)"):
        assert sorted(c.parameter for c in conds if c.family == fam) == [0.0, 5.0, 10.0, 20.0]
    assert sorted(c.parameter for c in conds if c.family == "gain") == [-12.0, 12.0]
    assert all(c.note for c in conds)


def test_unavailable_codec_is_left_out(caplog):
    conds = robustness_conditions(codecs=["mp3", "no-such-codec"])
    assert "no-such-codec" not in [c.parameter for c in conds]
    assert "no-such-codec" in caplog.text


def test_degradations_are_deterministic_per_seed_clip_and_condition():
    waves = [speech_like(i, 0.6) for i in range(3)]
    for name in ("white noise 10 dB", "speech-shaped noise 5 dB", "reverb RT60 0.3 s"):
        cond = conditions_by_name()[name]
        a = degrade_waves(waves, cond, seed=3)
        b = degrade_waves(waves, cond, seed=3)
        c = degrade_waves(waves, cond, seed=4)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), name
        assert not np.array_equal(a[0], c[0]), name
        # clip i's degradation does not depend on which other clips are in the list
        assert np.array_equal(degrade_waves(waves[:2], cond, seed=3)[1], a[1]), name
        # the same clip under another condition (same function, other name) draws differently
        twin = Condition(name + " (twin)", cond.family, cond.parameter, cond.fn)
        assert not np.array_equal(degrade_waves(waves, twin, seed=3)[0], a[0]), name


@pytest.mark.parametrize("kind", ["white", "speech-shaped"])
@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0])
def test_noise_conditions_hit_the_requested_snr(kind, snr):
    cond = conditions_by_name()[f"{kind} noise {snr:g} dB"]
    for i, clean in enumerate([speech_like(1, 0.8), white(2, 0.5)]):
        noisy = degrade_waves([clean], cond, seed=i)[0]
        measured = 10 * np.log10(power(clean) / power(noisy - clean))
        assert abs(measured - snr) < 0.5, (kind, snr, measured)


@pytest.mark.parametrize("codec", available_codecs())
def test_codec_conditions_keep_the_length_and_change_the_signal(codec):
    cond = conditions_by_name()[codec]
    clean = speech_like(5, 1.05)
    out = degrade_waves([clean], cond)[0]
    assert out.shape == clean.shape and out.dtype == np.float32
    assert not np.allclose(out, clean, atol=1e-4)


def test_telephone_condition_removes_energy_above_4_khz():
    cond = conditions_by_name()["telephone 8 kHz"]
    clean = white(7, 1.0)
    out = degrade_waves([clean], cond)[0]
    spec_in = np.abs(np.fft.rfft(clean)) ** 2
    spec_out = np.abs(np.fft.rfft(out)) ** 2
    f = np.fft.rfftfreq(clean.size, 1 / SR)
    high = f > 4000
    assert spec_in[high].sum() / spec_in.sum() > 0.4  # white noise: about half its energy up there
    assert spec_out[high].sum() < 1e-3 * spec_in[high].sum()
    assert out.shape == clean.shape


def test_gain_conditions_scale_then_clip_like_a_recorder():
    by = conditions_by_name()
    clean = np.float32(0.5) * np.sin(2 * np.pi * 200 * np.arange(SR) / SR).astype(np.float32)
    loud = degrade_waves([clean], by["gain +12 dB"])[0]
    assert np.max(np.abs(loud)) == pytest.approx(1.0)
    assert np.mean(np.abs(loud) >= 0.999) > 0.3  # most of the sine is flattened
    quiet = degrade_waves([clean], by["gain -12 dB"])[0]
    np.testing.assert_allclose(quiet, clean * 10 ** (-12 / 20), rtol=1e-5)


def test_clipping_condition_cuts_at_a_fraction_of_the_peak():
    cond = next(c for c in robustness_conditions() if c.family == "clipping")
    clean = speech_like(3, 0.5)
    out = degrade_waves([clean], cond)[0]
    assert np.max(np.abs(out)) == pytest.approx(cond.parameter * np.max(np.abs(clean)), rel=1e-5)


def test_a_condition_that_changes_the_length_is_rejected():
    bad = Condition("trim", "bad", None, lambda w, sr, rng: w[:-1])
    with pytest.raises(ValueError, match="changed the length"):
        degrade_waves([white(0, 0.1)], bad)


def test_evaluate_robustness_on_a_tiny_model(tiny, tmp_path):
    waves = [speech_like(i, 0.5) for i in range(8)]  # one length: one batch shape, fast on CPU
    labels = [i % 2 for i in range(8)]
    ds = EvalClips.from_waves(
        waves,
        labels,
        groups=[f"u{i // 2}" for i in range(8)],
        attacks=["bonafide" if y else "A01" for y in labels],
    )
    by = conditions_by_name()
    chosen = [by[n] for n in ("clean", "white noise 10 dB", "gain +12 dB")]
    kwargs = dict(conditions=chosen, seed=0, n_bootstrap=50, batch_size=8, threshold=0.0)
    table = evaluate_robustness(tiny.model, tiny.feature_extractor, ds, out_dir=tmp_path, **kwargs)
    assert list(table["condition"]) == [c.name for c in chosen]
    for col in (
        "condition",
        "family",
        "parameter",
        "eer",
        "eer_low",
        "eer_high",
        "auc",
        "n",
        "delta_eer",
        "accuracy",
        "far",
        "frr",
        "clipped_fraction",
    ):
        assert col in table.columns, col
    assert (table["n"] == 8).all()
    assert table.loc[0, "delta_eer"] == 0.0
    inside = (table["eer_low"] <= table["eer"] + 1e-12) & (table["eer"] <= table["eer_high"] + 1e-12)
    # 8 clips in few groups: a grouped bootstrap is refused, and the row says so
    refused = table["no_interval"].str.contains("too few groups") & table["eer_low"].isna()
    assert (inside | refused).all()
    again = evaluate_robustness(
        tiny.model, tiny.feature_extractor, ds, **{**kwargs, "conditions": chosen[1:2]}
    )
    pd.testing.assert_frame_equal(
        table.iloc[[1]].drop(columns="delta_eer").reset_index(drop=True), again.drop(columns="delta_eer")
    )
    assert set(table.attrs["codecs"]) >= {"available", "unavailable", "ran"}
    assert {"robustness.csv", "robustness_scores.csv", "robustness_meta.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    scores = pd.read_csv(tmp_path / "robustness_scores.csv")
    assert len(scores) == 8 * len(chosen) and set(scores["attack"]) == {"bonafide", "A01"}
    meta = json.loads((tmp_path / "robustness_meta.json").read_text())
    assert [c["name"] for c in meta["conditions"]] == list(table["condition"])


def test_robustness_crop_limits_the_scored_audio(tiny):
    waves = [speech_like(i, 1.5) for i in range(4)]
    ds = EvalClips.from_waves(waves, [0, 1, 0, 1])
    clean = [robustness_conditions()[0]]
    table = evaluate_robustness(
        tiny.model,
        tiny.feature_extractor,
        ds,
        conditions=clean,
        n_bootstrap=0,
        max_duration_s=0.5,
        batch_size=4,
    )
    assert table.loc[0, "n"] == 4 and np.isnan(table.loc[0, "eer_low"])


# --------------------------------------------------------------------------------------
# per attack
# --------------------------------------------------------------------------------------
def attack_scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        rows.append(dict(utterance_id=f"u{i}", label=1, attack="bonafide", score=2.0 + rng.normal(0, 0.3)))
        rows.append(
            dict(utterance_id=f"u{i}", label=0, attack="A01", score=-3.0 + rng.normal(0, 0.3))
        )  # separated
        rows.append(
            dict(utterance_id=f"u{i}", label=0, attack="A02", score=2.0 + rng.normal(0, 0.3))
        )  # like bona fide
    return pd.DataFrame(rows)


def test_per_attack_eer_rows(tmp_path):
    table = per_attack_eer(attack_scores(), n_bootstrap=200, seed=0, out_dir=tmp_path)
    assert list(table["attack"]) == ["A01", "A02", "pooled"]
    t = table.set_index("attack")
    assert t.loc["A01", "eer"] == 0.0
    assert 0.3 < t.loc["A02", "eer"] < 0.7
    assert t.loc["A01", "eer"] < t.loc["pooled", "eer"] <= t.loc["A02", "eer"]
    assert (t["n_bonafide"] == 12).all()
    assert list(t["n_spoof"]) == [12, 12, 24]
    assert ((t["eer_low"] <= t["eer"]) & (t["eer"] <= t["eer_high"])).all()
    assert (tmp_path / "per_attack.csv").is_file()
    for key in ("min_dcf", "act_dcf", "accuracy"):
        assert ((t[key + "_low"] <= t[key]) & (t[key] <= t[key + "_high"])).all(), key
    assert (t["threshold_from"].str.contains("oracle")).all()


def test_per_attack_zero_errors_get_exact_bounds_not_zero_width():
    from deepfake_lib.evaluation.error_rates import format_rate

    table = per_attack_eer(attack_scores(), threshold=0.0, n_bootstrap=200, seed=0).set_index("attack")
    a01 = table.loc["A01"]  # separated from bona fide: no error at all
    assert a01["eer"] == 0.0 and "eer" in a01["degenerate"].split(",")
    assert a01["eer_low"] == 0.0 and a01["eer_high"] > 0.0  # never [0, 0]
    # the exact bound: one-sided Clopper-Pearson on 0 of 12 at 97.5% (both classes hold together at 95%)
    assert a01["eer_high"] == pytest.approx(1 - 0.025 ** (1 / 12))
    assert a01["auc_low"] < 1.0 and a01["min_dcf_high"] > 0.0
    assert set(a01["exact_bounds"].split(",")) >= {"eer", "auc", "min_dcf"}
    assert a01["n_spoof_accepted"] == 0 and a01["spoof_accepted"] == format_rate(0, 12)
    assert a01["spoof_accepted"].startswith("0 of 12, at most")
    a02 = table.loc["A02"]  # scored like bona fide: most accepted at threshold 0
    assert a02["n_spoof_accepted"] == 12 and a02["exact_bounds"] in ("", "accuracy")
    assert a02["eer_high"] > a02["eer_low"]
    assert table.loc["pooled", "n_spoof_accepted"] == 12
    assert (table["threshold_from"] == "the run's threshold").all()


def test_per_attack_groups_by_speaker_when_named():
    from deepfake_lib.evaluation.summaries import score_groups

    scores = attack_scores()
    assert list(score_groups(scores)) == list(scores["utterance_id"])
    scores["speaker_id"] = ["s" + str(int(u[1:]) % 3) for u in scores["utterance_id"]]
    assert list(score_groups(scores)) == list(scores["speaker_id"])
    scores["speaker_id"] = ""
    assert list(score_groups(scores)) == list(scores["utterance_id"])  # unnamed speakers: utterances
    assert score_groups(scores.drop(columns=["speaker_id", "utterance_id"])) is None


def test_per_attack_eer_needs_both_classes():
    df = attack_scores()
    with pytest.raises(ValueError, match="both"):
        per_attack_eer(df[df["label"] == 0], n_bootstrap=10)


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
def logit_table(n: int, seed: int, overconfidence: float = 5.0) -> pd.DataFrame:
    """Clips whose true log-odds are known; the logits are ``overconfidence`` times too large."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(0, 1.5, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_log_odds))).astype(int)
    score = overconfidence * true_log_odds
    return pd.DataFrame(
        {
            "label": labels,
            "logit_fake": -score / 2,
            "logit_real": score / 2,
            "score": score,
            "utterance_id": [f"u{i}" for i in range(n)],
        }
    )


def test_temperature_is_fitted_on_validation_only(tmp_path):
    from deepfake_lib.evaluation.probability import fit_temperature

    val, test = logit_table(400, 0), logit_table(300, 1)
    result = calibrate_scores(val, test, out_dir=tmp_path)
    expected = fit_temperature(val[["logit_fake", "logit_real"]].to_numpy(), val["label"])
    assert result["temperature"] == pytest.approx(expected)
    assert 3.0 < result["temperature"] < 8.0
    other_test = test.assign(logit_real=test["logit_real"] * 3 + 1.0)
    assert calibrate_scores(val, other_test)["temperature"] == result["temperature"]
    assert result["ece_after"] < result["ece_before"]
    assert result["nll_after"] < result["nll_before"]
    assert set(result["operating_points"]) == {"validation_eer", "probability_0.5"}
    assert set(result["operating_points"]["validation_eer"]["test"]) >= {"accuracy", "far", "frr"}
    rec = result["recommendation"]
    assert rec["threshold_name"] == "validation_eer" and rec["reasons"]
    assert isinstance(rec["test_agrees"], bool)
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["temperature"] == pytest.approx(result["temperature"])


def test_small_validation_recommends_the_probability_half():
    result = calibrate_scores(logit_table(12, 0), logit_table(100, 1), min_clips_per_class=10)
    assert result["recommendation"]["threshold_name"] == "probability_0.5"
    assert result["recommendation"]["score_threshold"] == 0.0


def test_calibration_needs_logit_columns():
    with pytest.raises(ValueError, match="logit_real"):
        calibrate_scores(logit_table(20, 0).drop(columns="logit_real"), logit_table(20, 1))


# --------------------------------------------------------------------------------------
# baselines and the shortcut control
# --------------------------------------------------------------------------------------
def test_classical_baselines_and_shortcut_control(splits, tmp_path):
    table = evaluate_classical_baselines(splits, n_bootstrap=50, seed=0, gmm_components=2, out_dir=tmp_path)
    assert list(table["system"]) == [SYSTEM_LFCC_GMM, SYSTEM_LFCC_LR, SYSTEM_CONTROL_LR]
    saved = pd.read_csv(tmp_path / "baselines_scores.csv")
    for system, row in table.set_index("system").iterrows():  # each row's EER is its saved scores' EER
        mine = saved[saved["system"] == system]
        assert row["eer"] == pytest.approx(compute_eer(mine["label"], mine["score"]).eer)
    assert (table["n_test"] == len(splits["test"])).all() and (table["n_train"] == len(splits["train"])).all()
    assert (table["threshold_from"] == "validation EER").all()
    assert {"baselines.csv", "baselines_scores.csv"} <= {p.name for p in tmp_path.iterdir()}
    control = evaluate_shortcut_control(splits, n_bootstrap=50, seed=0)
    json.dumps(control)  # goes into metrics.json
    assert control["n"] == len(splits["test"]) and control["threshold"] == 0.0
    assert control["features"] == list(CONTROL_FEATURES) and control["ci"]["n_bootstrap"] == 50
    assert control["system"] == SYSTEM_CONTROL_LR
    same = table.set_index("system").loc[SYSTEM_CONTROL_LR]
    assert control["auc"] == pytest.approx(same["auc"])


def null_eer_bound(n_real: int, n_fake: int, *, quantile: float = 0.99, n_draws: int = 2000) -> float:
    """The ``quantile`` of |EER - 0.5| for scores that carry no information, with these class
    counts: how far from chance a label-blind system can land by luck on this many clips."""
    rng = np.random.default_rng(123)
    labels = np.r_[np.ones(n_real, int), np.zeros(n_fake, int)]
    return float(
        np.quantile(
            [abs(compute_eer(labels, rng.standard_normal(labels.size)).eer - 0.5) for _ in range(n_draws)],
            quantile,
        )
    )


def test_the_cheap_cue_control_finds_the_embedded_corpus_spectral_artefacts(tmp_path):
    """The embedded corpus's attacks change the spectrum below 4.5 kHz on purpose and its
    calibration holds only duration, level, peak, rate and zero-crossing rate at chance, so the
    cheap-cue control (band energies, pitch) is itself a cheap artefact detector there: the
    notebooks show it beside the model, and an embedded figure says the pipeline works, not that a
    detector beats cheap cues. A pipeline check of the embedded corpus, not real deepfakes."""
    from deepfake_lib.corpora.embedded import CorpusConfig
    from deepfake_lib.corpora.sources import load_source, make_splits

    cfg = CorpusConfig(
        n_utterances=60, spoofs_per_utterance=2, min_duration_s=1.0, max_duration_s=2.0, seed=0
    )
    dd, _ = load_source("embedded", corpus_config=cfg, cache_dir=tmp_path)
    data = make_splits(dd, val_fraction=0.1, test_fraction=0.5, seed=0)
    control = evaluate_shortcut_control(data, n_bootstrap=0, seed=0)
    bound = null_eer_bound(control["n_real"], control["n_fake"])
    assert 0.1 < bound < 0.25  # about 90 test clips: luck alone moves the EER this far from 0.5
    assert control["eer"] < 0.5 - bound, (
        f"cheap-cue control EER {control['eer']:.3f}, chance band 0.5 +- {bound:.3f}"
    )


# --------------------------------------------------------------------------------------
# windows and occlusion
# --------------------------------------------------------------------------------------
def test_score_windows_cover_the_clip(tiny, tmp_path):
    wave = np.concatenate([speech_like(0, 1.2), speech_like(1, 1.1)])
    df = score_windows(tiny.model, tiny.feature_extractor, wave, window_s=1.0, hop_s=0.25, out_dir=tmp_path)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "windows.csv"), df)
    assert list(df.columns) == ["start_s", "end_s", "center_s", "score", "prob_real"]
    assert df["start_s"].iloc[0] == 0.0
    assert df["end_s"].iloc[-1] == pytest.approx(wave.size / SR)
    assert (df["end_s"] - df["start_s"]).round(6).eq(1.0).all()
    assert len(df) == 7  # starts 0, 0.25, ..., 1.25 and one aligned to the end
    assert np.isfinite(df["score"]).all() and df["prob_real"].between(0, 1).all()
    short = score_windows(tiny.model, tiny.feature_extractor, wave[:8000], window_s=1.0)
    assert len(short) == 1 and short["end_s"].iloc[0] == pytest.approx(0.5)


def test_occlusion_map_shape_and_edges(tiny, tmp_path):
    wave = speech_like(2, 1.0)
    bands = (0, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000)
    matrix, band_edges, seg_edges = occlusion_map(
        tiny.model, tiny.feature_extractor, wave, n_time_segments=4, band_edges_hz=bands, out_dir=tmp_path
    )
    np.testing.assert_allclose(json.loads((tmp_path / "occlusion.json").read_text())["matrix"], matrix)
    assert matrix.shape == (8, 4)
    assert np.isfinite(matrix).all()
    np.testing.assert_array_equal(band_edges, bands)
    np.testing.assert_allclose(seg_edges, [0, 0.25, 0.5, 0.75, 1.0])
    assert np.abs(matrix).max() > 0  # removing speech energy moves a random model's score a little
    with pytest.raises(ValueError, match="band_edges_hz"):
        occlusion_map(tiny.model, tiny.feature_extractor, wave, band_edges_hz=(0, 9000))


# --------------------------------------------------------------------------------------
# cross source
# --------------------------------------------------------------------------------------
def test_cross_source_through_a_local_parquet(tiny, splits, tmp_path):
    from deepfake_lib.modeling.models import save_model

    run = tmp_path / "run"
    save_model(tiny, run / "model")
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "data_source": "somewhere",
                "threshold": {"value": 0.01},
                "test": {"eer": 0.3, "auc": 0.7, "accuracy": 0.7, "n": 10},
            }
        )
    )
    parquet = tmp_path / "other" / "data.parquet"
    parquet.parent.mkdir()
    splits["test"].to_parquet(str(parquet))
    result = evaluate_cross_source(run, str(parquet), n_bootstrap=50, seed=0, out_dir=tmp_path / "analysis")
    assert result["n_clips"] == len(splits["test"])
    assert result["threshold"] == 0.01 and result["train_source"] == "somewhere"
    assert result["metrics"]["threshold"] == 0.01
    scored = pd.read_csv(next((tmp_path / "analysis").glob("cross_source_*_scores.csv")))
    assert scored["clip_id"].astype(str).tolist() == [str(c) for c in splits["test"]["clip_id"]]
    assert result["metrics"]["eer"] == pytest.approx(compute_eer(scored["label"], scored["score"]).eer)
    assert result["in_domain_test"]["eer"] == 0.3
    files = {p.name for p in (tmp_path / "analysis").iterdir()}
    assert any(f.startswith("cross_source_") and f.endswith(".json") for f in files)
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        evaluate_cross_source(tmp_path / "nowhere", str(parquet))


# --------------------------------------------------------------------------------------
# the study's protocol
# --------------------------------------------------------------------------------------
def test_waves_to_dataset_keeps_the_common_schema():
    from deepfake_lib.corpora.sources import _features, load_example_audio

    waves = [white(0, 0.3), white(1, 0.2, level=1.5)]  # the second exceeds full scale: float WAV keeps it
    rows = pd.DataFrame({"label": [1, 0], "clip_id": ["a", "b"], "attack": ["bonafide", "A01"]})
    ds = waves_to_dataset(waves, rows)
    assert ds.features == _features()
    assert list(ds["duration"]) == [0.3, 0.2] and list(ds["utterance_id"]) == ["a", "b"]
    np.testing.assert_allclose(load_example_audio(ds[1]), waves[1], atol=1e-6)


def test_study_protocol_data_is_augmented_before_a_group_blind_split(splits):
    from deepfake_lib.corpora.sources import _features, load_example_audio

    data, info = build_study_protocol_data(splits, n_clips=20, n_val=10, seed=0)
    assert len(data["train"]) == 10 and len(data["validation"]) == 10
    assert list(data["validation"]["clip_id"]) == list(data["test"]["clip_id"])
    assert 0 < sum(data["validation"]["label"]) < 10
    assert sum(data["train"]["label"]) + sum(data["validation"]["label"]) == 10  # balanced selection
    assert data["validation"].features == _features()
    assert len(info["augmentation"]) == 20 and info["val_labels"] == list(data["validation"]["label"])
    test_ids = set(splits["test"]["clip_id"])
    pool = {
        cid: i
        for i, cid in enumerate(list(splits["train"]["clip_id"]) + list(splits["validation"]["clip_id"]))
    }
    import datasets

    pooled = datasets.concatenate_datasets([splits["train"], splits["validation"]])
    for ex in data["validation"]:
        original_id = ex["clip_id"].removeprefix("study-")
        assert original_id not in test_ids and original_id in pool
        clean = load_example_audio(pooled[pool[original_id]])
        augmented = load_example_audio(ex)
        assert augmented.shape == clean.shape
        assert not np.allclose(augmented, clean, atol=1e-3)
    again, _ = build_study_protocol_data(splits, n_clips=20, n_val=10, seed=0)
    assert list(again["validation"]["clip_id"]) == list(data["validation"]["clip_id"])
    with pytest.raises(ValueError, match="n_val"):
        build_study_protocol_data(splits, n_clips=6, n_val=6)


def random_epoch_scores(seed: int, n_epochs: int = 8, n_test: int = 60, n_val: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in (("test", n_test), ("validation", n_val)):
        labels = rng.integers(0, 2, n)
        for epoch in range(1, n_epochs + 1):
            rows.append(
                pd.DataFrame(
                    {
                        "epoch": epoch,
                        "split": split,
                        "clip_id": [f"{split}{i}" for i in range(n)],
                        "utterance_id": [f"{split}{i}" for i in range(n)],
                        "label": labels,
                        "attack": "x",
                        "score": rng.normal(0, 1, n),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_epoch_picking_on_ten_clips_flatters_random_scores():
    inflations = []
    for seed in range(5):
        summary = summarize_epoch_picking(random_epoch_scores(seed), n_val=10, n_draws=300, seed=seed)
        inflations.append(summary["inflation"])
        assert 0.3 < summary["honest_accuracy"] < 0.7  # random scores: the selected epoch is at chance
    assert (
        np.mean(inflations) > 0.1
    )  # random scores: picking out of 8 epochs on 10 clips reads well above chance


def test_epoch_picking_finds_the_one_perfect_epoch():
    """Epoch 5 classifies every test clip right, the others every clip wrong: picking on any
    subset finds epoch 5 (accuracy 1), and the honest figure is that of the selected epoch."""
    df = random_epoch_scores(0, n_epochs=6)
    test = df["split"] == "test"
    right = np.where(df["label"] == 1, 1.0, -1.0)
    df.loc[test, "score"] = np.where(df.loc[test, "epoch"] == 5, right[test], -right[test])
    on_perfect = summarize_epoch_picking(df, selected_epoch=5, n_val=10, n_draws=100, seed=0)
    assert on_perfect["picked"]["draws"] == [1.0] * 100 and on_perfect["honest_accuracy"] == 1.0
    assert on_perfect["inflation"] == 0.0
    on_wrong = summarize_epoch_picking(df, selected_epoch=2, n_val=10, n_draws=100, seed=0)
    assert on_wrong["honest_accuracy"] == 0.0 and on_wrong["inflation"] == 1.0


def test_epoch_picking_at_each_epochs_validation_eer_threshold():
    """All scores shifted by +5: at score 0 every clip reads bona fide (accuracy = share of bona
    fide), at each epoch's validation-EER threshold the shift cancels out."""
    from deepfake_lib.evaluation.error_rates import compute_eer

    df = random_epoch_scores(1, n_epochs=3)
    right = np.where(df["label"] == 1, 1.0, -1.0)
    df["score"] = right + 5.0
    at_zero = summarize_epoch_picking(df, selected_epoch=2, n_val=10, n_draws=50, seed=0)
    share_real = float(df[(df["split"] == "test") & (df["epoch"] == 2)]["label"].mean())
    assert at_zero["honest_accuracy"] == pytest.approx(share_real) and at_zero["threshold"] == 0.0
    own = summarize_epoch_picking(
        df, selected_epoch=2, n_val=10, n_draws=50, seed=0, threshold="validation_eer"
    )
    val = df[(df["split"] == "validation") & (df["epoch"] == 2)]
    assert compute_eer(val["label"], val["score"]).threshold > 4.0  # the cut moved with the scores
    assert own["honest_accuracy"] == 1.0 and own["threshold"] == "validation_eer"


def test_epoch_picking_uses_the_given_epoch_and_checks_input(tmp_path):
    df = random_epoch_scores(0)
    summary = summarize_epoch_picking(df, selected_epoch=3, n_draws=50, out_dir=tmp_path)
    assert summary["selected_epoch"] == 3 and (tmp_path / "epoch_picking.json").is_file()
    with pytest.raises(ValueError, match="selected_epoch"):
        summarize_epoch_picking(df, selected_epoch=99)
    with pytest.raises(ValueError, match="test rows"):
        summarize_epoch_picking(df[df["split"] == "validation"])


def test_compare_protocols_table(tmp_path):
    report = {
        "eer": 0.2,
        "auc": 0.85,
        "accuracy": 0.8,
        "n": 90,
        "ci": {"eer": (0.1, 0.3), "auc": (0.8, 0.9), "accuracy": (0.7, 0.9)},
    }
    study = {
        "reported_accuracy": 0.9,
        "reported_accuracy_ci": [0.55, 0.997],
        "val_labels": [1, 0] * 5,
        "clean_test": {**report, "eer": 0.35, "accuracy": 0.6},
    }
    picking = summarize_epoch_picking(random_epoch_scores(1), n_draws=100)
    table = compare_protocols(study, {"test": report}, picking, out_dir=tmp_path)
    assert len(table) == 4
    assert table.loc[0, "accuracy"] == 0.9 and table.loc[0, "n_clips"] == 10 and np.isnan(table.loc[0, "eer"])
    assert table.loc[2, "eer_low"] == 0.1 and table.loc[2, "n_clips"] == 90
    assert "inflation" in table.loc[3, "note"]
    assert (tmp_path / "protocol_comparison.csv").is_file()
    assert len(compare_protocols(study, {"test": report})) == 3


# --------------------------------------------------------------------------------------
# training-based analyses (slow)
# --------------------------------------------------------------------------------------
def quick_config(tmp_path: Path, **changes):
    from deepfake_lib.config import ExperimentConfig

    return ExperimentConfig(
        run_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=8,
        train_crop_s=1.0,
        n_bootstrap=50,
        device="cpu",
        patience=1,
        **changes,
    )


@pytest.mark.slow
def test_leave_one_attack_out_cheap_run(splits, tmp_path):
    cfg = quick_config(tmp_path)
    attack = sorted(set(a for a, y in zip(splits["test"]["attack"], splits["test"]["label"]) if y == 0))[0]
    table = leave_one_attack_out_(cfg, splits, attack, tmp_path / "analysis")
    row = table.iloc[0]
    assert row["attack"] == attack and row["epochs"] == 1 and "same-budget control" in row["note"]
    assert row["n_unseen_spoof"] >= 1 and row["n_other_spoof"] >= 1
    assert row["n_unseen_spoof"] + row["n_other_spoof"] + row["n_bonafide"] == len(splits["test"])
    assert row["n_train"] == row["control_n_train"]  # same budget: same epochs, same training-set size
    run_dir = Path(row["run_dir"])
    scored = pd.read_csv(run_dir / "test_scores.csv")
    unseen = scored[(scored["label"] == 1) | (scored["attack"] == attack)]
    others = scored[(scored["label"] == 1) | ((scored["label"] == 0) & (scored["attack"] != attack))]
    assert row["unseen_eer"] == pytest.approx(compute_eer(unseen["label"], unseen["score"]).eer)
    assert row["others_eer"] == pytest.approx(compute_eer(others["label"], others["score"]).eer)
    control = pd.read_csv(Path(row["control_run_dir"]) / "test_scores.csv")
    seen = control[(control["label"] == 1) | (control["attack"] == attack)]
    assert row["seen_eer"] == pytest.approx(compute_eer(seen["label"], seen["score"]).eer)
    assert row["unseen_minus_seen"] == pytest.approx(row["unseen_eer"] - row["seen_eer"])
    control_trained_on = pd.read_csv(Path(row["control_run_dir"]) / "splits.csv")
    assert (control_trained_on["split"] == "train").sum() == row["n_train"]
    assert (run_dir / "model").is_dir() and not (run_dir / "checkpoints").exists()
    trained_on = pd.read_csv(run_dir / "splits.csv")
    assert not ((trained_on["split"] != "test") & (trained_on["attack"] == attack)).any()
    assert (tmp_path / "analysis" / "loao.csv").is_file()


def test_loao_control_has_the_held_out_run_budget(splits):
    from deepfake_lib.studies.attacks import loao_training_sets

    attacks = sorted({a for a, y in zip(splits["train"]["attack"], splits["train"]["label"]) if y == 0})
    assert len(attacks) >= 2
    for attack in attacks:
        held, control = loao_training_sets(splits, attack, seed=0)
        for name in ("train", "validation"):
            assert len(control[name]) == len(held[name])  # the same budget
            assert sum(held[name]["label"]) == sum(control[name]["label"]) == sum(splits[name]["label"])
            assert attack not in {a for a, y in zip(held[name]["attack"], held[name]["label"]) if y == 0}
        assert len(held["train"]) < len(splits["train"])
        assert attack in {a for a, y in zip(control["train"]["attack"], control["train"]["label"]) if y == 0}
        assert len(held["test"]) == len(control["test"]) == len(splits["test"])
        again = loao_training_sets(splits, attack, seed=0)[1]
        assert list(again["train"]["clip_id"]) == list(control["train"]["clip_id"])  # seeded


def leave_one_attack_out_(cfg, splits, attack, out_dir):
    from deepfake_lib.studies.attacks import leave_one_attack_out

    return leave_one_attack_out(cfg, splits, epochs=1, out_dir=out_dir, attacks=[attack])


@pytest.mark.slow
def test_run_original_protocol_reports_both_figures(splits, tmp_path):
    from deepfake_lib.studies.study_protocol import run_original_protocol

    cfg = quick_config(tmp_path)
    report = run_original_protocol(cfg, splits, n_clips=20, n_val=10, epochs=1, out_dir=tmp_path / "analysis")
    assert report["n_val"] == 10
    val = pd.read_csv(tmp_path / "analysis" / "study_protocol" / "validation_scores.csv")
    assert report["reported_accuracy"] == pytest.approx(np.mean((val["score"] >= 0) == (val["label"] == 1)))
    k, n = int(round(report["reported_accuracy"] * 10)), 10  # Clopper-Pearson from the beta quantiles
    expected = [
        beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0,
        beta.ppf(0.975, k + 1, n - k) if k < n else 1.0,
    ]
    np.testing.assert_allclose(report["reported_accuracy_ci"], expected, atol=1e-9)
    assert report["clean_test"]["n"] == len(splits["test"]) and report["clean_test"]["threshold"] == 0.0
    assert report["epochs"] == 1
    saved = json.loads((tmp_path / "analysis" / "study_protocol.json").read_text())
    assert saved["reported_accuracy"] == report["reported_accuracy"]
    table = compare_protocols(report, {"test": report["clean_test"]})
    assert len(table) == 3
