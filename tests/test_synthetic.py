"""The embedded corpus generator: schema, determinism, pairing, shortcut controls, atomic writes."""

from __future__ import annotations

import collections
import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.signal
import soundfile as sf

from deepfake_lib.corpora import embedded as synthetic
from deepfake_lib.corpora.embedded import (
    BONAFIDE,
    GENERATOR_VERSION,
    SAMPLE_RATES,
    CorpusConfig,
    corpus_filename,
    generate_corpus,
    generate_utterance,
    write_corpus,
)
from deepfake_lib.corpora.embedded_attacks import ATTACKS, spoof_utterance
from deepfake_lib.corpora.embedded_channel import apply_channel
from deepfake_lib.corpora.embedded_speech import synthesize_bonafide

SMALL = CorpusConfig(n_utterances=8, seed=3, min_duration_s=1.0, max_duration_s=2.0)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def small_table() -> pa.Table:
    return generate_corpus(SMALL)


@pytest.fixture(scope="module")
def small_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / corpus_filename(SMALL), SMALL)


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_utterances": 0}, "n_utterances"),
        ({"n_utterances": 2.5}, "n_utterances"),
        ({"spoofs_per_utterance": 0}, "spoofs_per_utterance"),
        ({"difficulty": 1.5}, "difficulty"),
        ({"difficulty": -0.1}, "difficulty"),
        ({"difficulty": float("nan")}, "difficulty"),
        ({"difficulty": True}, "difficulty"),
        ({"seed": -1}, "seed"),
        ({"min_duration_s": 0.1}, "min_duration_s"),
        ({"min_duration_s": 3.0, "max_duration_s": 2.0}, "max_duration_s"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"CorpusConfig\.{field}"):
        CorpusConfig(**changes)


def test_corpus_filename_is_a_versioned_cache_key():
    assert corpus_filename(CorpusConfig()) == f"embedded_n300_s1_d0.50_seed0_v{GENERATOR_VERSION}.parquet"
    names = {
        corpus_filename(c)
        for c in (
            CorpusConfig(),
            CorpusConfig(seed=1),
            CorpusConfig(difficulty=0.25),
            CorpusConfig(difficulty=0.255),
            CorpusConfig(n_utterances=10),
            CorpusConfig(spoofs_per_utterance=2),
            CorpusConfig(max_duration_s=4.0),
        )
    }
    assert len(names) == 7


# --------------------------------------------------------------------------------------
# schema and pairing
# --------------------------------------------------------------------------------------
def test_table_schema(small_table):
    schema = small_table.schema
    assert schema.names == ["audio", "label", "utterance_id", "attack", "sample_rate", "duration"]
    assert schema.field("audio").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("label").type == pa.int64()
    assert schema.field("sample_rate").type == pa.int64()
    assert schema.field("duration").type == pa.float64()
    assert small_table.num_rows == SMALL.n_utterances * (1 + SMALL.spoofs_per_utterance)


def test_load_dataset_sees_hemg_features(small_parquet):
    import datasets

    ds = datasets.load_dataset("parquet", data_files={"train": str(small_parquet)}, split="train")
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert isinstance(ds.features["label"], datasets.ClassLabel)
    assert ds.features["label"].names == ["Fake", "Real"]
    assert ds.num_rows == SMALL.n_utterances * 2
    row = ds.cast_column("audio", datasets.Audio(decode=False))[0]
    assert row["audio"]["path"] == "utt0000_bonafide.wav" and row["label"] == 1


def test_rows_are_wav_pcm16_matching_their_metadata(small_table):
    for row in small_table.to_pylist():
        info = sf.info(io.BytesIO(row["audio"]["bytes"]))
        wave, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
        assert sr == row["sample_rate"] and wave.shape[0] / sr == pytest.approx(row["duration"])
        assert row["audio"]["path"] == f"{row['utterance_id']}_{row['attack']}.wav"
        assert row["label"] == (1 if row["attack"] == BONAFIDE else 0)
        assert 0.001 < np.abs(wave).max() < 1.0


def test_utterances_pair_a_bona_fide_clip_with_its_spoofs():
    config = CorpusConfig(n_utterances=8, spoofs_per_utterance=2, min_duration_s=1.0, max_duration_s=1.5)
    rows = generate_corpus(config).drop(["audio"]).to_pylist()
    by_utt = collections.defaultdict(list)
    for r in rows:
        by_utt[r["utterance_id"]].append(r)
    assert len(by_utt) == 8
    for clips in by_utt.values():
        assert [c["label"] for c in clips] == [1, 0, 0]
        assert len({(c["sample_rate"], c["duration"]) for c in clips}) == 1
        assert len({c["attack"] for c in clips}) == 3
    counts = collections.Counter(r["attack"] for r in rows if r["label"] == 0)
    assert set(counts) == set(ATTACKS) and max(counts.values()) - min(counts.values()) <= 1


def test_both_classes_share_sample_rates_and_durations():
    config = CorpusConfig(n_utterances=24, seed=5, min_duration_s=1.0, max_duration_s=1.5)
    table = generate_corpus(config).drop(["audio"])
    cols = table.to_pydict()
    labels = np.array(cols["label"])
    for key in ("sample_rate", "duration"):
        values = np.array(cols[key])
        assert sorted(values[labels == 1]) == sorted(values[labels == 0])
    assert set(cols["sample_rate"]) == set(SAMPLE_RATES)
    durations = np.array(cols["duration"])
    assert durations.min() >= 1.0 - 1e-3 and durations.max() <= 1.5 + 1e-3


def test_utterances_do_not_depend_on_corpus_size():
    a = generate_utterance(CorpusConfig(n_utterances=3), 2)
    b = generate_utterance(CorpusConfig(n_utterances=50), 2)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra["wave"], rb["wave"])


# --------------------------------------------------------------------------------------
# determinism and atomic writes
# --------------------------------------------------------------------------------------
def test_same_config_gives_a_byte_identical_file(tmp_path, small_parquet):
    again = write_corpus(tmp_path / "again.parquet", SMALL)
    assert sha256(again) == sha256(small_parquet)
    other = write_corpus(
        tmp_path / "other.parquet",
        CorpusConfig(n_utterances=8, seed=4, min_duration_s=1.0, max_duration_s=2.0),
    )
    assert sha256(other) != sha256(small_parquet)


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    config = CorpusConfig(n_utterances=1, min_duration_s=1.0, max_duration_s=1.0)
    target = tmp_path / "corpus.parquet"

    def broken_write(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(synthetic.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_corpus(target, config)
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"a good old corpus")
    with pytest.raises(OSError, match="disk full"):
        write_corpus(target, config)
    assert target.read_bytes() == b"a good old corpus"
    assert list(tmp_path.iterdir()) == [target]


# --------------------------------------------------------------------------------------
# the stages
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("sr", SAMPLE_RATES)
def test_bonafide_clip_is_speech_like(sr):
    wave = synthesize_bonafide(np.random.default_rng(0), sr, 1.5)
    assert wave.dtype == np.float32 and wave.shape == (int(round(1.5 * sr)),)
    assert np.isfinite(wave).all() and -23 < rms_db(wave) < -17
    f, p = scipy.signal.welch(wave, sr, nperseg=1024)
    assert p[(f > 100) & (f < 1000)].sum() > p[(f > 4000) & (f < 8000)].sum()  # speech tilt
    if sr > 16000:
        assert p[f > 8500].sum() > 1e-6 * p.sum()  # a fricative high band


def test_bonafide_clip_has_pauses_and_voicing():
    wave = synthesize_bonafide(np.random.default_rng(1), 16000, 4.0)
    frames = wave[: 4 * 16000].reshape(-1, 320)  # 20 ms frames
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert (level < level.max() - 30).mean() > 0.02  # closures and pauses
    assert (level > level.max() - 20).mean() > 0.5  # mostly speech


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_spoof_keeps_length_level_and_everything_above_8khz(attack):
    sr = 44100
    clean = synthesize_bonafide(np.random.default_rng(2), sr, 1.2)
    spoof = spoof_utterance(clean, sr, attack, 0.5, np.random.default_rng(3))
    assert spoof.dtype == np.float32 and spoof.shape == clean.shape and np.isfinite(spoof).all()
    assert rms_db(spoof) == pytest.approx(rms_db(clean), abs=1.0)
    above = scipy.signal.butter(8, 9000, btype="highpass", fs=sr, output="sos")
    below = scipy.signal.butter(8, 7000, fs=sr, output="sos")
    high_clean, high_spoof = (scipy.signal.sosfiltfilt(above, x) for x in (clean, spoof))
    low_clean, low_spoof = (scipy.signal.sosfiltfilt(below, x) for x in (clean, spoof))
    # the high band is the clean one; the speech band is changed
    assert rms_db(high_spoof - high_clean) < rms_db(high_clean) - 20
    assert rms_db(low_spoof - low_clean) > rms_db(low_clean) - 12


def test_spoof_rejects_bad_arguments():
    clean = synthesize_bonafide(np.random.default_rng(0), 16000, 0.5)
    with pytest.raises(ValueError, match="attack"):
        spoof_utterance(clean, 16000, "A99", 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="difficulty"):
        spoof_utterance(clean, 16000, "A01", 2.0, np.random.default_rng(0))


def test_difficulty_scales_the_artefact():
    clean = synthesize_bonafide(np.random.default_rng(4), 16000, 1.5)

    def change_db(difficulty: float) -> float:
        spoof = spoof_utterance(clean, 16000, "A03", difficulty, np.random.default_rng(5))
        return rms_db(spoof - clean) - rms_db(clean)

    assert change_db(0.0) > change_db(0.5) > change_db(1.0)


def test_channel_sets_level_and_caps_the_crest_factor():
    clean = synthesize_bonafide(np.random.default_rng(6), 22050, 1.5)
    out = apply_channel(clean, 22050, np.random.default_rng(7), level_dbfs=-26.0, crest_db=13.0)
    assert out.dtype == np.float32 and out.shape == clean.shape
    assert rms_db(out) == pytest.approx(-26.0, abs=0.01)
    assert 20 * np.log10(np.abs(out).max()) <= -26.0 + 13.0 + 0.05
    drawn = apply_channel(clean, 22050, np.random.default_rng(8))
    assert -32.01 < rms_db(drawn) < -19.99
    with pytest.raises(ValueError, match="level_dbfs"):
        apply_channel(clean, 22050, np.random.default_rng(7), level_dbfs=-3.0, crest_db=13.0)


def test_channel_is_random_but_seeded():
    clean = synthesize_bonafide(np.random.default_rng(9), 16000, 1.0)
    a, b, c = (apply_channel(clean, 16000, np.random.default_rng(s)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
