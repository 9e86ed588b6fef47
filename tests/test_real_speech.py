"""The real-speech corpus: its channel, its requirements check, its marker, and the small slice.

The slice tests build ``SMALL_CONFIG`` once per session (about a minute on 2 cores). They
need the Debian Asterisk prompt packages and flite, and the ``realspeech`` extra. Under CI
(``CI=true``, root, apt-get present) the fixture installs the Debian packages; elsewhere a
missing package skips those tests with the install command as the reason.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.corpora import real_speech as rs
from deepfake_lib.corpora import real_speech_channel as rs_channel
from deepfake_lib.corpora import real_speech_inputs as rs_inputs
from deepfake_lib.corpora.sources import load_example_native


# --------------------------------------------------------------------------------------------
# the channel and the cues (no packages needed)
# --------------------------------------------------------------------------------------------
def test_condition_clip_band_limits_trims_and_levels_any_input_rate() -> None:
    rng = np.random.default_rng(0)
    sr = 44_100
    noise = 0.3 * rng.standard_normal(2 * sr)  # white: as much energy above 4 kHz as below
    wave = np.concatenate([np.zeros(sr // 2), noise, np.zeros(sr // 2)])
    out = rs_channel.condition_clip(wave, sr)
    cues = rs_channel.measure_clip_cues(out, rs_channel.SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(cues["duration_s"] - 2.0) < 0.1  # the half seconds of digital silence are gone
    assert cues["energy_above_4khz_db"] < -40  # was about -7 dB before the channel
    assert abs(cues["rms_dbfs"] - rs_channel.TARGET_LEVEL_DBFS) < 1.0
    assert cues["leading_silence_s"] < 0.05 and cues["trailing_silence_s"] < 0.05


def test_condition_clip_gives_the_same_length_from_8_and_22_khz() -> None:
    t8 = np.arange(int(1.5 * 8000)) / 8000
    t22 = np.arange(int(1.5 * 22050)) / 22050
    a = rs_channel.condition_clip(np.sin(2 * np.pi * 440 * t8) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t8)), 8000)
    b = rs_channel.condition_clip(
        np.sin(2 * np.pi * 440 * t22) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t22)), 22050
    )
    assert abs(len(a) - len(b)) <= 0.02 * rs_channel.SAMPLE_RATE


def test_shortcut_eers_flag_a_separating_cue_and_pass_a_random_one() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([1] * 30 + [0] * 90)
    cues = [
        {
            "duration_s": float(rng.normal(2.0, 0.3)),
            "rms_dbfs": -23.0 - 3.0 * y,
            "leading_silence_s": 0.0,
            "trailing_silence_s": float(rng.uniform(0, 0.05)),
            "sample_rate": 16000.0,
            "energy_above_4khz_db": float(rng.normal(-50, 2)),
        }
        for y in labels
    ]
    result = rs_channel.shortcut_eers(labels, cues, n_permutations=100)
    assert result["rms_dbfs"]["eer"] == 0.0 < result["rms_dbfs"]["null_q01"]
    assert result["duration_s"]["eer"] >= result["duration_s"]["null_q01"]
    assert result["sample_rate"]["eer"] == 0.5


def test_read_transcripts_and_clean_text(tmp_path: Path) -> None:
    path = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            "; Core Asterisk Sounds\n\nbeep: [this is a simple beep tone]\nvm-goodbye: Goodbye.  <pause> Bye!\n"
        )
    text = rs_inputs.read_transcripts(path)
    assert text == {"beep": "[this is a simple beep tone]", "vm-goodbye": "Goodbye.  <pause> Bye!"}
    assert rs_inputs.clean_transcript(text["vm-goodbye"]) == "Goodbye. Bye!"
    assert not rs_inputs._is_speech_prompt("beep", text["beep"]) and rs_inputs._is_speech_prompt(
        "vm-goodbye", text["vm-goodbye"]
    )


# --------------------------------------------------------------------------------------------
# requirements and the completion marker
# --------------------------------------------------------------------------------------------
def test_missing_packages_are_named_with_the_install_command(tmp_path: Path) -> None:
    problems = rs_inputs.check_requirements(
        rs_inputs.SMALL_CONFIG, sounds_root=str(tmp_path), docs_root=str(tmp_path)
    )
    text = "\n".join(problems)
    for pkg in ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-fr-wav", "asterisk-core-sounds-en"):
        assert pkg in text
    assert "apt-get install" in text or "no apt-get" in text


def test_build_stops_before_any_work_when_packages_are_missing(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    with pytest.raises(rs_inputs.MissingRequirementError, match="asterisk-core-sounds-en-wav"):
        rs.build_corpus(
            rs_inputs.SMALL_CONFIG, out, sounds_root=str(tmp_path / "none"), docs_root=str(tmp_path / "none")
        )
    assert not out.exists() and not list(tmp_path.glob(".corpus.building-*"))


def test_build_refuses_to_replace_a_folder_that_is_not_a_corpus(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a real-speech corpus"):
        rs.build_corpus(rs_inputs.SMALL_CONFIG, out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_folder_without_a_valid_marker_is_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / rs.PARQUET_NAME).write_bytes(b"not finished")
    assert rs.read_marker(folder) is None
    with pytest.raises(FileNotFoundError, match=rs.MARKER_NAME):
        rs.load_corpus(folder)
    (folder / rs.MARKER_NAME).write_text(json.dumps({"parquet_sha256": "0" * 64, "config_hash": "x"}))
    assert rs.read_marker(folder) is None  # checksum mismatch
    digest = hashlib.sha256(b"not finished").hexdigest()
    (folder / rs.MARKER_NAME).write_text(json.dumps({"parquet_sha256": digest, "config_hash": "x"}))
    assert rs.read_marker(folder) is not None


def test_config_rejects_tts_without_english() -> None:
    with pytest.raises(ValueError, match="English"):
        rs_inputs.RealSpeechConfig(languages=("fr",))
    assert rs_inputs.RealSpeechConfig(languages=("fr",), methods=("world",)).languages == ("fr",)


def test_main_lists_the_debian_packages(capsys: pytest.CaptureFixture[str]) -> None:
    assert rs.main(["--small", "--apt-packages"]) == 0
    assert capsys.readouterr().out.split() == [
        "asterisk-core-sounds-en-wav",
        "asterisk-core-sounds-en",
        "asterisk-core-sounds-fr-wav",
        "asterisk-core-sounds-fr",
        "flite",
    ]


# --------------------------------------------------------------------------------------------
# the small slice, built once
# --------------------------------------------------------------------------------------------
def _install_debian_packages(config: rs_inputs.RealSpeechConfig) -> None:
    """apt-get install the Debian packages (only under CI, as root, where apt-get exists)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *rs_inputs.apt_packages(config)],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``--small`` slice, built once per session (skips naming what to install if it cannot)."""
    config = rs_inputs.SMALL_CONFIG
    problems = rs_inputs.check_requirements(config)
    can_install = (
        os.environ.get("CI") == "true"
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("apt-get") is not None
    )
    if problems and can_install and any("Debian" in p for p in problems):
        try:
            _install_debian_packages(config)
        except (subprocess.SubprocessError, OSError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            pytest.skip(
                f"apt-get install {' '.join(rs_inputs.apt_packages(config))} failed: {exc} {stderr.decode()[-300:]}"
            )
        problems = rs_inputs.check_requirements(config)
    if problems:
        pytest.skip("real-speech corpus cannot be built here: " + "; ".join(problems))
    return rs.build_corpus(config, tmp_path_factory.mktemp("real_speech") / "small", workers=2)


@pytest.mark.slow
def test_small_corpus_loads_with_speakers_utterances_and_attacks(small_corpus: Path) -> None:
    dd, report = rs.load_corpus(small_corpus)
    ds = dd["train"]
    df = ds.select_columns(["label", "attack", "speaker_id", "utterance_id", "sample_rate"]).to_pandas()
    assert report.n_rows == len(df) == 16 + 16 * 3 + 8 * (1 + len(rs_inputs.FLITE_VOICES))
    assert set(df.loc[df["label"] == 1, "speaker_id"]) == {"allison_smith", "june_wallack"}
    assert set(df["attack"]) == {"bonafide", "hifigan", "world", "griffin_lim", "piper", "flite"}
    assert set(df["sample_rate"]) == {rs_channel.SAMPLE_RATE}
    bona_utts = set(df.loc[df["label"] == 1, "utterance_id"])
    resynth = df[df["attack"].isin(["hifigan", "world", "griffin_lim"])]
    assert set(resynth["utterance_id"]) == bona_utts  # re-synthesis spoofs pair with their bona fide clip
    tts = df[df["attack"].isin(["piper", "flite"])]
    assert not set(tts["speaker_id"]) & set(df.loc[df["label"] == 1, "speaker_id"])


@pytest.mark.slow
def test_small_corpus_manifest_matches_the_audio(small_corpus: Path) -> None:
    manifest = json.loads((small_corpus / "manifest.json").read_text())
    dd, _ = rs.load_corpus(small_corpus)
    for ex in dd["train"]:
        raw = ex["audio"]["bytes"]
        assert hashlib.sha256(raw).hexdigest() == manifest["clips"][ex["clip_id"]]
    readme = (small_corpus / "README.md").read_text()
    assert "CC-BY-SA-3.0" in readme and "Allison Smith" in readme and "June Wallack" in readme


@pytest.mark.slow
def test_small_corpus_cues_do_not_separate_the_classes(small_corpus: Path) -> None:
    """Duration, level, silences, rate and energy above 4 kHz sit inside the permutation null.

    With 16 bona fide and 88 spoofed clips the EER of a feature that carries no class
    information is itself noisy (the null's median is about 0.44 and its 1% quantile about
    0.33 for a continuous feature): a cue fails when its EER falls below that 1% quantile.
    """
    dd, _ = rs.load_corpus(small_corpus)
    labels, cues = [], []
    for ex in dd["train"]:
        wave, sr = load_example_native(ex)
        labels.append(ex["label"])
        cues.append(rs_channel.measure_clip_cues(wave, sr))
    result = rs_channel.shortcut_eers(labels, cues, n_permutations=200)
    for name, r in result.items():
        assert r["eer"] >= r["null_q01"], (
            f"{name} separates the classes: EER {r['eer']:.3f} < null 1% {r['null_q01']:.3f}"
        )


@pytest.mark.slow
def test_a_finished_corpus_is_reused_and_a_rebuild_is_identical(small_corpus: Path, tmp_path: Path) -> None:
    before = (small_corpus / rs.MARKER_NAME).stat().st_mtime_ns
    assert rs.build_corpus(rs_inputs.SMALL_CONFIG, small_corpus) == small_corpus
    assert (small_corpus / rs.MARKER_NAME).stat().st_mtime_ns == before
    tiny = dataclasses.replace(rs_inputs.SMALL_CONFIG, languages=("en",), prompts=1, flite_voices=("slt",))
    a = rs.build_corpus(tiny, tmp_path / "a", workers=1)  # in this process: the generators load once
    b = rs.build_corpus(tiny, tmp_path / "b", workers=1)
    clips_a = json.loads((a / "manifest.json").read_text())["clips"]
    assert len(clips_a) == 6 and clips_a == json.loads((b / "manifest.json").read_text())["clips"]
