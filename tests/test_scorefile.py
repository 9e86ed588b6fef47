"""Tests for deepfake_lib.evaluation.score_report: protocols, score files, id matching and ``deepfake-lib score``."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from deepfake_lib.cli.main import RESULT_COLUMNS, ResultsWriter, main, result_row
from deepfake_lib.cli.score import score_files
from deepfake_lib.evaluation.costs import DetectionCosts
from deepfake_lib.evaluation.error_rates import format_rate
from deepfake_lib.evaluation.metrics import compute_metrics
from deepfake_lib.evaluation.score_files import ScoreFileError, normalize_id, read_protocol, read_scores

N_BOOT = 40


def _trials(
    n_bona: int = 12, attacks: tuple[str, ...] = ("A07", "A08", "A09"), per_attack: int = 10, seed: int = 0
):
    """(ids, speakers, labels, attacks, scores): bona fide first, then each attack's spoofs."""
    rng = np.random.default_rng(seed)
    ids, speakers, labels, attack_of, scores = [], [], [], [], []
    for i in range(n_bona + per_attack * len(attacks)):
        bona = i < n_bona
        attack = "-" if bona else attacks[(i - n_bona) // per_attack]
        ids.append(f"LA_E_{100000 + i}")
        speakers.append(f"LA_{i % 5:04d}")
        labels.append(int(bona))
        attack_of.append(attack)
        # A09 is separated perfectly (no spoof above any bona fide clip); the others overlap.
        shift = 3.0 if bona else (-9.0 if attack == "A09" else 1.5)
        scores.append(round(float(rng.normal() + shift), 4))
    return ids, speakers, labels, attack_of, scores


def _write_2019(tmp_path, trials, *, score_lines=None):
    ids, speakers, labels, attacks, scores = trials
    protocol = tmp_path / "ASVspoof2019.LA.cm.eval.trl.txt"
    protocol.write_text(
        "".join(
            f"{s} {i} - {a} {'bonafide' if y else 'spoof'}\n"
            for i, s, y, a in zip(ids, speakers, labels, attacks)
        )
    )
    score_file = tmp_path / "scores.txt"
    lines = score_lines if score_lines is not None else [f"{i} {s}" for i, s in zip(ids, scores)]
    score_file.write_text("\n".join(lines) + "\n")
    return protocol, score_file


# ------------------------------------------------------------------------------------------
# foreign ASVspoof layouts
# ------------------------------------------------------------------------------------------


def test_asvspoof2019_protocol_and_foreign_score_file(tmp_path):
    trials = _trials()
    ids, _speakers, labels, attacks, scores = trials
    # the score file lists the trials in another order: matching is by id, not by position
    order = np.random.default_rng(1).permutation(len(ids))
    protocol, score_file = _write_2019(tmp_path, trials, score_lines=[f"{ids[k]} {scores[k]}" for k in order])
    report = score_files(score_file, protocol, n_bootstrap=N_BOOT)
    assert report["protocol_layout"].startswith("ASVspoof 2019 LA")
    assert (report["n"], report["n_bonafide"], report["n_spoof"]) == (42, 12, 30)
    assert report["bootstrap_groups"] == "speaker" and report["threshold_is_system"] is False
    expected = compute_metrics(labels, scores)
    for key in ("eer", "min_dcf", "act_dcf", "cllr", "min_cllr", "auc"):
        assert report["pooled"][key] == pytest.approx(expected[key]), key
    assert report["act_dcf_threshold"] == pytest.approx(-math.log(1.9))
    per_attack = {row["attack"]: row for row in report["per_attack"]}
    assert sorted(per_attack) == ["A07", "A08", "A09"] and per_attack["A07"]["n_spoof"] == 10
    keep = [k for k, a in enumerate(attacks) if a in ("-", "A08")]
    a08 = compute_metrics([labels[k] for k in keep], [scores[k] for k in keep])
    assert per_attack["A08"]["eer"] == pytest.approx(a08["eer"])
    # A09 has no error: the bootstrap is degenerate, the count gets an exact bound instead.
    assert per_attack["A09"]["eer"] == 0.0 and "eer" in per_attack["A09"]["degenerate"]
    assert per_attack["A09"]["spoofs_accepted_text"] == format_rate(0, 10) == "0 of 10, at most 26% at 95%"
    json.dumps(report)


def test_asvspoof5_protocol_and_tab_score_file_with_header(tmp_path):
    ids, speakers, labels, attacks, scores = _trials(attacks=("A17", "A18"))
    protocol = tmp_path / "ASVspoof5.eval.track_1.tsv"
    protocol.write_text(
        "".join(
            f"{s.replace('LA', 'E')} {i} F - - - {'-' if y else 'AC1'} {'bonafide' if y else a} "
            f"{'bonafide' if y else 'spoof'} -\n"
            for i, s, y, a in zip(ids, speakers, labels, attacks)
        )
    )
    score_file = tmp_path / "cm_scores.tsv"
    score_file.write_text("filename\tcm-score\n" + "".join(f"{i}\t{s}\n" for i, s in zip(ids, scores)))
    report = score_files(score_file, protocol, n_bootstrap=N_BOOT)
    assert report["protocol_layout"].startswith("ASVspoof 5")
    assert [row["attack"] for row in report["per_attack"]] == ["A17", "A18"]
    assert report["pooled"]["eer"] == pytest.approx(compute_metrics(labels, scores)["eer"])


def test_score_file_that_carries_its_own_keys_needs_no_protocol(tmp_path):
    # ASVspoof 5 package README layout: speaker, utterance, score, trial type
    ids, speakers, labels, _attacks, scores = _trials()
    score_file = tmp_path / "cm_scores.txt"
    score_file.write_text(
        "".join(
            f"{s} {i} {v} {'bonafide' if y else 'spoof'}\n"
            for i, s, y, v in zip(ids, speakers, labels, scores)
        )
    )
    report = score_files(score_file, n_bootstrap=N_BOOT)
    assert report["protocol"] is None and report["n"] == len(ids)
    assert report["pooled"]["eer"] == pytest.approx(compute_metrics(labels, scores)["eer"])


def test_asvspoof2019_baseline_score_layout_picks_the_id_column(tmp_path):
    trials = _trials()
    ids, _speakers, labels, attacks, scores = trials
    lines = [
        f"{i} {a} {'bonafide' if y else 'spoof'} {v}" for i, a, y, v in zip(ids, attacks, labels, scores)
    ]
    protocol, score_file = _write_2019(tmp_path, trials, score_lines=lines)
    scored = read_scores(score_file, known_ids=set(read_protocol(protocol).ids))
    assert scored.ids == tuple(ids)
    assert score_files(score_file, protocol, n_bootstrap=0)["pooled"]["eer_ci"] is None


# ------------------------------------------------------------------------------------------
# this project's own outputs
# ------------------------------------------------------------------------------------------


def _write_run(tmp_path, trials, threshold=0.25):
    ids, _speakers, labels, attacks, scores = trials
    run = tmp_path / "run"
    run.mkdir()
    rows = ["clip_id,utterance_id,label,attack,logit_fake,logit_real,score,prob_real"]
    for i, y, a, s in zip(ids, labels, attacks, scores):
        attack = "bonafide" if y else a
        rows.append(f"{i},utt{i[-2:]},{y},{attack},{-s / 2},{s / 2},{s},{1 / (1 + math.exp(-s))}")
    (run / "test_scores.csv").write_text("\n".join(rows) + "\n")
    (run / "metrics.json").write_text(
        json.dumps({"threshold": {"value": threshold, "chosen_on": "validation EER"}})
    )
    splits = ["split,clip_id,utterance_id,speaker_id,label,attack,sample_rate,duration"]
    splits += [
        f"test,{i},utt{i[-2:]},,{y},{'bonafide' if y else a},16000,2.0"
        for i, y, a in zip(ids, labels, attacks)
    ]
    splits += ["train,other_clip,utt_x,,1,bonafide,16000,2.0"]
    (run / "splits.csv").write_text("\n".join(splits) + "\n")
    return run


def test_run_folder_scores_itself_at_the_runs_threshold(tmp_path):
    trials = _trials()
    run = _write_run(tmp_path, trials, threshold=0.25)
    report = score_files(run, n_bootstrap=N_BOOT)
    assert report["scores_layout"].startswith("run test scores")
    assert report["threshold"] == 0.25 and report["act_dcf_threshold"] == 0.25
    assert report["threshold_is_system"] is True and "metrics.json" in report["threshold_source"]
    assert report["bootstrap_groups"] == "utterance"
    expected = compute_metrics(trials[2], trials[4], threshold=0.25)
    assert report["pooled"]["act_dcf"] == pytest.approx(expected["act_dcf"])
    assert report["pooled"]["spoofs_accepted"] == expected["confusion_matrix"][0][1]


def test_run_splits_csv_as_protocol_with_split(tmp_path):
    trials = _trials()
    run = _write_run(tmp_path, trials)
    protocol = read_protocol(run / "splits.csv", split="test")
    assert len(protocol.ids) == len(trials[0]) and protocol.group_kind == "utterance"
    report = score_files(run / "test_scores.csv", run / "splits.csv", split="test", n_bootstrap=N_BOOT)
    assert report["n"] == len(trials[0])
    with pytest.raises(ScoreFileError, match="1 scored id|1 of 43 protocol id"):
        score_files(run / "test_scores.csv", run / "splits.csv", n_bootstrap=0)  # train clip has no score


def _write_detect(path, trials, *, fmt, fail=()):
    ids, _, _, _, scores = trials
    with path.open("w") as stream:
        writer = ResultsWriter(stream, fmt, write_header=True)
        for i, s in zip(ids, scores):
            if i in fail:
                result = SimpleNamespace(ok=False, error="cannot decode audio")
            else:
                result = SimpleNamespace(
                    ok=True,
                    label="Real" if s >= 0.1 else "Fake",
                    prob_real=1 / (1 + math.exp(-s)),
                    score=s,
                    threshold=0.1,
                    duration_s=2.0,
                    n_windows=1,
                    max_fake_prob=0.5,
                    suspicious_segments=[],
                )
            writer.write(result_row(f"/data/eval/flac/{i}.flac", result))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_deepfake_detect_output(tmp_path, fmt):
    trials = _trials()
    protocol, _ = _write_2019(tmp_path, trials)
    results = tmp_path / f"results.{fmt}"
    _write_detect(results, trials, fmt=fmt)
    assert "path" in RESULT_COLUMNS
    report = score_files(results, protocol, n_bootstrap=N_BOOT)
    assert report["scores_layout"] == "deepfake-detect results"
    assert report["threshold"] == 0.1 and report["threshold_is_system"] is True
    assert report["pooled"]["eer"] == pytest.approx(compute_metrics(trials[2], trials[4])["eer"])


def test_deepfake_detect_failures_are_reported(tmp_path):
    trials = _trials()
    protocol, _ = _write_2019(tmp_path, trials)
    results = tmp_path / "results.csv"
    _write_detect(results, trials, fmt="csv", fail={trials[0][3], trials[0][4]})
    with pytest.raises(ScoreFileError, match="2 protocol id.*failed in the detector.*cannot decode audio"):
        score_files(results, protocol, n_bootstrap=0)


# ------------------------------------------------------------------------------------------
# id errors and bad input
# ------------------------------------------------------------------------------------------


def _lines(trials):
    return [f"{i} {s}" for i, s in zip(trials[0], trials[4])]


def test_missing_duplicated_and_extra_ids_are_counted(tmp_path):
    trials = _trials()
    lines = _lines(trials)
    protocol, score_file = _write_2019(tmp_path, trials, score_lines=lines[3:])
    with pytest.raises(
        ScoreFileError, match=r"3 of 42 protocol id\(s\) have no score \(e\.g\. 'LA_E_100000'"
    ):
        score_files(score_file, protocol, n_bootstrap=0)
    _write_2019(tmp_path, trials, score_lines=lines + lines[:2])
    with pytest.raises(ScoreFileError, match=r"2 id\(s\) are scored more than once"):
        score_files(score_file, protocol, n_bootstrap=0)
    _write_2019(
        tmp_path, trials, score_lines=lines + ["LA_E_999991 0.5", "LA_E_999992 0.1", "LA_E_999993 0.2"]
    )
    with pytest.raises(ScoreFileError, match=r"3 scored id\(s\) are not in the protocol"):
        score_files(score_file, protocol, n_bootstrap=0)
    # all three at once, in one message
    _write_2019(tmp_path, trials, score_lines=lines[1:] + lines[5:6] + ["X_1 0.0"])
    with pytest.raises(ScoreFileError) as error:
        score_files(score_file, protocol, n_bootstrap=0)
    message = str(error.value)
    assert "1 of 42 protocol id(s) have no score" in message
    assert (
        "1 id(s) are scored more than once" in message and "1 scored id(s) are not in the protocol" in message
    )
    assert str(score_file) in message and str(protocol) in message


def test_duplicated_protocol_ids_and_no_overlap_hint(tmp_path):
    trials = _trials()
    protocol, score_file = _write_2019(tmp_path, trials)
    protocol.write_text(protocol.read_text() + protocol.read_text().splitlines()[0] + "\n")
    with pytest.raises(ScoreFileError, match=r"1 id\(s\) are listed more than once"):
        score_files(score_file, protocol, n_bootstrap=0)
    _write_2019(tmp_path, trials)
    score_file.write_text("".join(f"utt{k} 0.{k}\n" for k in range(5)))
    with pytest.raises(ScoreFileError, match="no id matches at all"):
        score_files(score_file, protocol, n_bootstrap=0)


@pytest.mark.parametrize(
    ("protocol_text", "score_text", "message"),
    [
        (
            "LA_1 LA_E_1 - A01 spoof\nLA_1 LA_E_2 - A01 maybe\n",
            "LA_E_1 0.1\n",
            r"line 2: expected 'speaker id",
        ),
        (
            "LA_1 LA_E_1 - - bonafide\nLA_1 LA_E_2 - A01 spoof\n",
            "LA_E_1 0.1\nLA_E_2\n",
            r"line 2: expected 2 fields",
        ),
        (
            "LA_1 LA_E_1 - - bonafide\nLA_1 LA_E_2 - A01 spoof\n",
            "id,score\nLA_E_1,0.1\nLA_E_2,high\n",
            r"line 3: score 'high' is not a number",
        ),
        (
            "LA_1 LA_E_1 - - bonafide\nLA_1 LA_E_2 - A01 spoof\n",
            "id,value\nLA_E_1,0.1\n",
            "lacks an id column",
        ),
        ("clip_id,label\nLA_E_1,maybe\n", "LA_E_1 0.1\n", r"line 2: label 'maybe'"),
        ("", "LA_E_1 0.1\n", "no entries"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, protocol_text, score_text, message):
    protocol = tmp_path / "protocol.txt"
    protocol.write_text(protocol_text)
    score_file = tmp_path / "scores.txt"
    score_file.write_text(score_text)
    with pytest.raises(ScoreFileError, match=message):
        score_files(score_file, protocol, n_bootstrap=0)


def test_scores_without_labels_need_a_protocol(tmp_path):
    trials = _trials()
    _, score_file = _write_2019(tmp_path, trials)
    with pytest.raises(ScoreFileError, match="pass --protocol"):
        score_files(score_file, n_bootstrap=0)


def test_normalize_id():
    assert normalize_id("/data/eval/flac/LA_E_1.flac") == "LA_E_1"
    assert normalize_id("C:\\eval\\LA_E_1.WAV") == "LA_E_1"
    assert normalize_id("LA_E_1") == "LA_E_1"
    assert normalize_id("speaker.01") == "speaker.01"  # not an audio extension


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------


def test_score_command_table_json_and_exit_codes(tmp_path, capsys):
    trials = _trials()
    protocol, score_file = _write_2019(tmp_path, trials)
    base = ["score", "--protocol", str(protocol), "--scores", str(score_file), "--n-bootstrap", "20"]
    assert main(base) == 0
    table = capsys.readouterr().out
    assert (
        "minDCF" in table and "pooled" in table and "A09" in table and "0 of 10, at most 26% at 95%" in table
    )
    assert main([*base, "--json", "--c-fa", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["costs"] == {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 5.0}
    expected = compute_metrics(trials[2], trials[4], costs=DetectionCosts(c_fa=5.0))
    assert report["pooled"]["min_dcf"] == pytest.approx(expected["min_dcf"])
    score_file.write_text("\n".join(_lines(trials)[2:]) + "\n")
    assert main(base) == 2
    assert "2 of 42 protocol id(s) have no score" in capsys.readouterr().err
    assert main(["score", "--scores", str(tmp_path / "absent.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
