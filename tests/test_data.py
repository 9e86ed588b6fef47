"""The one data loader: Hub-format parquet, audiofolder, protocol files, labels, splits, summaries."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from deepfake_lib.audio.errors import AudioError
from deepfake_lib.corpora.source_kinds import DataSourceError, detect_source_kind
from deepfake_lib.corpora.sources import (
    assign_split_by_hash,
    assign_splits,
    count_split_labels,
    iter_group_kfold,
    load_example_audio,
    load_source,
    make_splits,
    summarize_splits,
)
from deepfake_lib.labels import align_label_ids, normalize_label_name

SR = 22_050


def wav_bytes(seed: int, seconds: float = 0.5, sr: int = SR, fmt: str = "WAV") -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed % 7) * t) + 0.01 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), sr, format=fmt)
    return buf.getvalue()


def hemg_style_dataset(
    audio: list[dict], labels: list[int], names: tuple[str, str] = ("Fake", "Real")
) -> datasets.Dataset:
    """Rows in the exact schema of Hemg/Deepfake-Audio-Dataset: ``audio`` (Audio) + ``label`` (ClassLabel).

    Built as a plain struct and cast to ``Audio()`` at the Arrow level, because
    ``Audio.encode_example`` in datasets >= 4 needs torchcodec even for raw bytes.
    """
    import datasets

    struct = datasets.Features(
        {
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "label": datasets.ClassLabel(names=list(names)),
        }
    )
    return datasets.Dataset.from_dict({"audio": audio, "label": labels}, features=struct).cast_column(
        "audio", datasets.Audio()
    )


def write_hemg_parquet(path: Path, n: int = 20, names: tuple[str, str] = ("Fake", "Real")) -> Path:
    """A parquet file in the Hemg schema with ``n`` short WAV clips, alternating labels."""
    ds = hemg_style_dataset(
        [{"bytes": wav_bytes(i), "path": None} for i in range(n)], [i % 2 for i in range(n)], names
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


HEMG_CARD = """---
dataset_info:
  features:
  - name: audio
    dtype: audio
  - name: label
    dtype:
      class_label:
        names:
          '0': Fake
          '1': Real
  splits:
  - name: train
    num_examples: 20
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
"""


@pytest.fixture()
def hub_folder(tmp_path: Path) -> Path:
    """A local copy laid out like the Hub repository Hemg/Deepfake-Audio-Dataset."""
    root = tmp_path / "Deepfake-Audio-Dataset"
    write_hemg_parquet(root / "data" / "train-00000-of-00001.parquet")
    (root / "README.md").write_text(HEMG_CARD)
    return root


def test_label_names_are_normalised_with_synonyms() -> None:
    for name in ("Real", "REAL", "bonafide", "genuine", " Bona-Fide "):
        assert normalize_label_name(name) == "Real"
    for name in ("fake", "Spoof", "FAKE"):
        assert normalize_label_name(name) == "Fake"
    with pytest.raises(ValueError, match="neither"):
        normalize_label_name("LABEL_0")


def test_label_alignment_is_by_name_not_position() -> None:
    assert align_label_ids(["Fake", "Real"], {"real": 0, "fake": 1}) == {0: 1, 1: 0}
    assert align_label_ids(["Fake", "Real"], {"spoof": 0, "bonafide": 1}) == {0: 0, 1: 1}
    assert align_label_ids(["Fake", "Real"], {"LABEL_0": 0, "LABEL_1": 1}) is None
    assert align_label_ids(["Fake", "Real"], {"fake": 0, "real": 1, "other": 2}) is None


def test_hub_layout_loads_offline_through_the_hub_code_path(
    hub_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert detect_source_kind(str(hub_folder)) == "hub"
    assert detect_source_kind("Hemg/Deepfake-Audio-Dataset") == "hub"
    dd, report = load_source(str(hub_folder))
    ds = dd["train"]
    assert report.kind == "hub" and report.n_rows == 20 and report.n_skipped == 0
    assert ds.features["label"].names == ["Fake", "Real"]
    assert ds["label"][:4] == [0, 1, 0, 1]
    assert set(ds["attack"]) == {"bonafide", "unknown"}
    assert set(ds["sample_rate"]) == {SR}
    assert np.allclose(ds["duration"], 0.5)
    assert len(set(ds["clip_id"])) == 20 and ds["utterance_id"] == ds["clip_id"]
    wave = load_example_audio(ds[0])
    assert wave.dtype == np.float32 and abs(len(wave) - 8000) <= 1


def test_hub_id_that_cannot_be_reached_names_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError, match="no-such-owner/no-such-dataset"):
        load_source("no-such-owner/no-such-dataset")


def test_local_parquet_with_reversed_label_order_is_remapped(tmp_path: Path) -> None:
    path = write_hemg_parquet(tmp_path / "rev.parquet", n=6, names=("bonafide", "spoof"))
    dd, _ = load_source(str(path))
    # stored 0 = bonafide -> Real (1), 1 = spoof -> Fake (0)
    assert dd["train"]["label"] == [1, 0, 1, 0, 1, 0]


def test_audiofolder_layout(tmp_path: Path) -> None:
    for sub, n in (("bonafide", 3), ("spoof", 4)):
        (tmp_path / sub / "nested").mkdir(parents=True)
        for i in range(n):
            (tmp_path / sub / "nested" / f"{sub}{i}.flac").write_bytes(wav_bytes(i, fmt="FLAC"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("ignored")
    assert detect_source_kind(str(tmp_path)) == "audiofolder"
    dd, report = load_source(str(tmp_path))
    ds = dd["train"]
    assert report.n_rows == 7
    assert sorted(ds["label"]) == [0, 0, 0, 0, 1, 1, 1]
    assert "bonafide/nested/bonafide0" in ds["clip_id"]


def test_asvspoof_protocol(tmp_path: Path) -> None:
    (tmp_path / "flac").mkdir()
    lines = []
    for i, (spk, key, attack) in enumerate(
        [
            ("LA_0001", "bonafide", "-"),
            ("LA_0001", "spoof", "A01"),
            ("LA_0002", "bonafide", "-"),
            ("LA_0002", "spoof", "A02"),
        ]
    ):
        (tmp_path / "flac" / f"LA_T_{i:07d}.flac").write_bytes(wav_bytes(i, fmt="FLAC"))
        lines.append(f"{spk} LA_T_{i:07d} - {attack} {key}")
    proto = tmp_path / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.write_text("\n".join(lines) + "\n")
    dd, _ = load_source(str(proto))
    ds = dd["train"]
    assert ds["label"] == [1, 0, 1, 0]
    assert ds["attack"] == ["bonafide", "A01", "bonafide", "A02"]
    assert ds["speaker_id"] == ["LA_0001", "LA_0001", "LA_0002", "LA_0002"]


def test_protocol_attack_names_are_kept_as_given(tmp_path: Path) -> None:
    (tmp_path / "flac").mkdir()
    lines = [
        "LA_0001 F_0 - - bonafide",
        "LA_0001 F_1 - A19 spoof",
        "LA_0002 F_2 - TTS_vocoder3 spoof",
        "T_0003 F_3 F - - - AC3 A05 spoof -",
        "DF_9 F_4 mp3m4a asvspoof A14 spoof notrim eval",
        "LA_0004 F_5 - - spoof",
    ]
    for i in range(len(lines)):
        (tmp_path / "flac" / f"F_{i}.flac").write_bytes(wav_bytes(i, fmt="FLAC"))
    proto = tmp_path / "protocol.txt"
    proto.write_text("\n".join(lines) + "\n")
    dd, _ = load_source(str(proto))
    assert dd["train"]["attack"] == ["bonafide", "A19", "TTS_vocoder3", "A05", "A14", "unknown"]


def test_protocol_errors_name_file_and_line(tmp_path: Path) -> None:
    proto = tmp_path / "p.txt"
    proto.write_text("LA_0001 LA_T_missing - - bonafide\n")
    with pytest.raises(DataSourceError, match=r"p\.txt: line 1: audio for 'LA_T_missing' not found"):
        load_source(str(proto))
    proto.write_text("just garbage\n")
    with pytest.raises(DataSourceError, match=r"p\.txt: line 1"):
        load_source(str(proto))


def _parquet_with_bad_rows(path: Path) -> Path:
    good = [wav_bytes(i) for i in range(6)]
    bad = [b"", b"RIFF\x00\x00not really audio", good[0][:40]]
    rows = [{"bytes": b, "path": f"clip{i}.wav"} for i, b in enumerate(good + bad)]
    hemg_style_dataset(rows, [i % 2 for i in range(len(rows))]).to_parquet(str(path))
    return path


def test_bad_rows_raise_with_row_and_name_or_are_skipped_and_reported(tmp_path: Path) -> None:
    path = _parquet_with_bad_rows(tmp_path / "bad.parquet")
    with pytest.raises(AudioError, match=r"row 6: clip6"):
        load_source(str(path))
    dd, report = load_source(str(path), skip_bad_audio=True)
    assert len(dd["train"]) == 6 and report.n_skipped == 3
    assert "3 skipped" in report.summary()
    assert all("bad.parquet" in name for name, _ in report.skipped)


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("nan", "NaN or infinite"),
        ("silent", "digital silence"),
        ("short", "too short for the model"),
        ("truncated", "truncated"),
    ],
)
def test_default_load_decodes_and_checks_every_row(tmp_path: Path, kind: str, problem: str) -> None:
    good = [wav_bytes(i) for i in range(4)]
    wave = {
        "nan": np.full(SR // 2, np.nan),
        "silent": np.zeros(SR // 2),
        "short": 0.3 * np.ones(300),
        "truncated": 0.3 * np.sin(np.arange(SR // 2)),
    }[kind]
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), SR, format="WAV", subtype="FLOAT")
    bad = buf.getvalue()[:-1000] if kind == "truncated" else buf.getvalue()
    rows = [{"bytes": b, "path": f"clip{i}.wav"} for i, b in enumerate(good + [bad])]
    path = tmp_path / "rows.parquet"
    hemg_style_dataset(rows, [i % 2 for i in range(len(rows))]).to_parquet(str(path))
    with pytest.raises(AudioError, match=rf"row 4: clip4\]: .*{problem}"):
        load_source(str(path))
    dd, report = load_source(str(path), skip_bad_audio=True)
    assert len(dd["train"]) == 4 and len(report.skipped) == 1 and problem in report.skipped[0][1]
    assert f"clip4]: {report.skipped[0][1]}" in report.summary()


def test_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no such file"):
        load_source(str(tmp_path / "missing" / "x"))
    empty = tmp_path / "empty_af"
    (empty / "real").mkdir(parents=True)
    with pytest.raises(DataSourceError, match="no audio files"):
        load_source(str(empty))


def test_group_aware_stratified_split_keeps_groups_together() -> None:
    groups = np.repeat([f"utt{i}" for i in range(100)], 2)
    labels = np.tile([1, 0], 100)  # each utterance: a bona fide clip and its spoof
    names = assign_splits(groups, labels, seed=3)
    per_group = pd.DataFrame({"g": groups, "s": names}).groupby("g")["s"].nunique()
    assert per_group.max() == 1
    counts = pd.Series(names).value_counts()
    assert counts["train"] == 140 and counts["validation"] == 30 and counts["test"] == 30
    assert not np.array_equal(names, assign_splits(groups, labels, seed=4))
    assert np.array_equal(names, assign_splits(groups, labels, seed=3))


def test_split_of_independent_clips_is_stratified() -> None:
    groups = [f"c{i}" for i in range(100)]
    labels = [0] * 70 + [1] * 30
    names = assign_splits(groups, labels, seed=0)
    df = pd.DataFrame({"y": labels, "s": names})
    share = df.groupby("s")["y"].mean()
    assert all(abs(v - 0.3) < 0.08 for v in share)


def test_hash_split_is_stable_and_roughly_proportional() -> None:
    names = [assign_split_by_hash(f"g{i}", seed=1) for i in range(4000)]
    assert names == [assign_split_by_hash(f"g{i}", seed=1) for i in range(4000)]
    share = pd.Series(names).value_counts(normalize=True)
    assert abs(share["test"] - 0.15) < 0.03 and abs(share["train"] - 0.70) < 0.03


def test_make_splits_keeps_real_groups_disjoint(toy_corpus: Path) -> None:
    dd, _ = load_source(str(toy_corpus))  # 24 utterances, each a bona fide clip and its spoof
    assert len(set(dd["train"]["utterance_id"])) == 24 and len(dd["train"]) == 48
    splits = make_splits(dd, seed=0)
    groups = {name: set(v["utterance_id"]) for name, v in splits.items()}
    assert all(groups.values())
    assert not (
        groups["train"] & groups["validation"]
        or groups["train"] & groups["test"]
        or groups["validation"] & groups["test"]
    )
    for v in splits.values():  # both clips of every utterance landed together
        assert sorted(pd.Series(v["utterance_id"]).value_counts().unique()) == [2]


def test_make_splits_names_a_single_speaker_as_the_cause(tmp_path: Path) -> None:
    (tmp_path / "flac").mkdir()
    lines = []
    for i in range(12):
        (tmp_path / "flac" / f"LA_T_{i:07d}.flac").write_bytes(wav_bytes(i, fmt="FLAC"))
        lines.append(f"LA_0001 LA_T_{i:07d} - {'-' if i % 2 else 'A01'} {'bonafide' if i % 2 else 'spoof'}")
    proto = tmp_path / "protocol.txt"
    proto.write_text("\n".join(lines) + "\n")
    dd, _ = load_source(str(proto))
    with pytest.raises(DataSourceError, match=r"all 12 clips belong to 1 speaker \(speaker_id\)"):
        make_splits(dd)


def test_make_splits_kfold_and_summaries(hub_folder: Path) -> None:
    dd, _ = load_source(str(hub_folder))
    splits = make_splits(dd, seed=0)
    assert list(splits) == ["train", "validation", "test"]
    assert sum(len(v) for v in splits.values()) == 20
    table = count_split_labels(splits)
    assert table["total"].sum() == 20 and list(table.columns) == ["Fake", "Real", "total"]
    summary = summarize_splits(splits)
    assert {"split", "class", "attack", "clips", "duration_mean_s", "sample_rates"} <= set(summary.columns)
    assert summary["clips"].sum() == 20
    folds = list(iter_group_kfold(dd["train"], n_folds=5, seed=0))
    assert len(folds) == 5
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(20))
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert set(np.asarray(dd["train"]["label"])[te]) == {0, 1}


def test_streaming_source_splits_by_hash(hub_folder: Path) -> None:
    import datasets

    dd, report = load_source(str(hub_folder / "data" / "train-00000-of-00001.parquet"), streaming=True)
    assert isinstance(dd, datasets.IterableDatasetDict)
    splits = make_splits(dd, seed=0)
    seen = {name: [ex["clip_id"] for ex in splits[name]] for name in ("train", "validation", "test")}
    assert sum(len(v) for v in seen.values()) == 20
    first = next(iter(splits["train"]))
    assert set(first) >= {"audio", "label", "clip_id", "utterance_id", "attack"}
