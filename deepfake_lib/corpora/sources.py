"""One loader for every data source, label normalisation, group-aware splits and summaries.

Every source becomes a :class:`datasets.DatasetDict` in one schema:

=============  ==============================================================================
``audio``      ``Audio(decode=False)``: ``{"bytes": ..., "path": ...}``, decoded on demand by
               :mod:`deepfake_lib.audio.io` (soundfile; no torchcodec or FFmpeg needed)
``label``      ``ClassLabel(names=["Fake", "Real"])``: 0 = Fake (spoof), 1 = Real (bona fide)
``clip_id``    unique clip name
``utterance_id``  group key: a bona fide clip and its spoofs share it (else the clip id)
``speaker_id``  speaker when the source names one (else ``""``)
``attack``     attack id (``"A01"``...), ``"bonafide"`` for real clips, ``"unknown"`` if not given
``sample_rate``  native sample rate, Hz (read from the file header when the source lacks it)
``duration``   seconds (likewise)
=============  ==============================================================================

Sources, all through :func:`load_source`:

* ``"embedded"``: the generated corpus (:mod:`deepfake_lib.corpora.embedded`), written as parquet in
  the Hemg schema and then loaded exactly like a local parquet file;
* a Hub dataset id such as ``"Hemg/Deepfake-Audio-Dataset"`` (or a local folder laid out
  like a Hub repository), through :func:`datasets.load_dataset`;
* a local ``.parquet`` file, or a folder of them;
* an audiofolder: a folder with ``real/`` and ``fake/`` (or ``bonafide/`` and ``spoof/``)
  subfolders of audio files;
* an ASVspoof-style protocol file (``speaker file - attack key`` lines) next to a folder of
  FLAC files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.errors import AudioError
from deepfake_lib.audio.io import LOADER_MAX_DURATION_S, decode_audio, load_audio
from deepfake_lib.config import resolve_source
from deepfake_lib.corpora.source_kinds import (
    SOURCE_KINDS,
    DataSourceError,
    LoadOptions,
    detect_source_kind,
)
from deepfake_lib.labels import BONAFIDE, UNKNOWN_ATTACK, normalize_label_name

__all__ = [
    "assign_split_by_hash",
    "assign_splits",
    "audio_source_name",
    "check_clip_length",
    "count_split_labels",
    "describe_clips",
    "group_column",
    "iter_group_kfold",
    "load_example_audio",
    "load_example_native",
    "load_source",
    "LoadReport",
    "make_splits",
    "MIN_CLIP_SAMPLES",
    "pick_examples",
    "SPLIT_NAMES",
    "split_table",
    "summarize_splits",
]


log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "validation", "test")
MIN_CLIP_SAMPLES = 400
"""Fewest samples (at 16 kHz) a clip needs: one frame of the wav2vec2-style feature encoder
(25 ms); the loader refuses shorter clips because the model raises on them."""

_LABEL_COLUMNS = ("label", "labels", "class", "target", "key", "is_real")
_AUDIO_COLUMNS = ("audio", "file", "path", "filename", "wav")


# --------------------------------------------------------------------------------------
# source detection and loading
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class LoadReport:
    """What :func:`load_source` read: the kind of source, row counts and skipped rows."""

    source: str
    kind: str
    n_rows: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        """Rows dropped because their audio could not be decoded."""
        return len(self.skipped)

    def summary(self, max_rows: int = 20) -> str:
        """One line for humans; when rows were skipped, then one line per skipped row (the
        first ``max_rows``) naming it and why."""
        line = f"{self.source} ({self.kind}): {self.n_rows} clips"
        if self.skipped:
            line += f", {self.n_skipped} skipped:"
            line += "".join(f"\n  {name}: {reason}" for name, reason in self.skipped[:max_rows])
            if self.n_skipped > max_rows:
                line += f"\n  ... and {self.n_skipped - max_rows} more (LoadReport.skipped lists them all)"
        return line


def load_source(
    source: str = "embedded",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    corpus_config: Any | None = None,
    streaming: bool = False,
    skip_bad_audio: bool = False,
    label_column: str | None = None,
    audio_column: str | None = None,
    revision: str | None = None,
    max_duration_s: float = LOADER_MAX_DURATION_S,
) -> tuple[Any, LoadReport]:
    """Load any supported source into the common schema.

    Args:
        source: ``"embedded"``, a Hub id, a parquet file/folder, an audiofolder or a protocol file.
        cache_dir: where the embedded corpus is written (default ``<project root>/data``).
        corpus_config: a :class:`deepfake_lib.corpora.embedded.CorpusConfig` for ``"embedded"``.
        streaming: return an ``IterableDatasetDict`` (Hub and parquet sources) for data too
            large for memory or disk; header statistics and skipping happen lazily then.
        skip_bad_audio: drop bad rows and list each with its reason in the report (and the
            log); otherwise the first bad row raises :class:`~deepfake_lib.audio.io.AudioError`
            naming it. Every row is decoded and checked either way (not only its header):
            it must decode completely, hold finite samples, not be digital silence, be at
            least :data:`MIN_CLIP_SAMPLES` long at 16 kHz and at most ``max_duration_s``.
        label_column, audio_column: override column detection.
        revision: Hub revision (commit, tag or branch) for reproducible Hub runs.
        max_duration_s: longest clip accepted, seconds (checked against the header, and
            while decoding, so a forged header or a decompression bomb is refused cheaply).

    Returns:
        ``(DatasetDict, LoadReport)``; the dict holds the source's own splits (often just
        ``"train"``); use :func:`make_splits` to get train/validation/test.
    """
    import datasets

    local = resolve_source(source)  # a relative folder is looked up under the project root first
    kind = detect_source_kind(local)
    report = LoadReport(source=source, kind=kind)
    options = LoadOptions(
        cache_dir=cache_dir, corpus_config=corpus_config, streaming=streaming, revision=revision
    )
    raw = SOURCE_KINDS[kind].load(local, options)

    out = {}
    for split, ds in raw.items():
        ds = _to_common_schema(
            ds, source=source, split=split, label_column=label_column, audio_column=audio_column
        )
        if not streaming:
            ds = _fill_header_columns(
                ds,
                source=source,
                split=split,
                skip_bad=skip_bad_audio,
                report=report,
                max_duration_s=max_duration_s,
            )
            report.n_rows += len(ds)
        out[split] = ds
    dd = datasets.IterableDatasetDict(out) if streaming else datasets.DatasetDict(out)
    if report.skipped:
        log.warning(report.summary())
    return dd, report


def _features() -> Any:
    import datasets

    return datasets.Features(
        {
            "audio": datasets.Audio(decode=False),
            "label": datasets.ClassLabel(names=list(LABEL_NAMES)),
            "clip_id": datasets.Value("string"),
            "utterance_id": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "attack": datasets.Value("string"),
            "sample_rate": datasets.Value("int64"),
            "duration": datasets.Value("float64"),
        }
    )


def _to_common_schema(
    ds: Any, *, source: str, split: str, label_column: str | None, audio_column: str | None
) -> Any:
    """Rename, normalise labels and add missing metadata columns (map-style or iterable)."""
    import datasets

    features = ds.features
    if features is None:  # some streaming sources only know their features after a peek
        features = datasets.Features.from_arrow_schema(
            next(iter(ds.with_format("arrow").iter(1))).schema
        )  # pragma: no cover
    cols = list(features)
    a_col = audio_column or next((c for c in cols if isinstance(features[c], datasets.Audio)), None)
    a_col = a_col or next((c for c in _AUDIO_COLUMNS if c in cols), None)
    l_col = label_column or next((c for c in _LABEL_COLUMNS if c in cols), None)
    if a_col is None or a_col not in cols:
        raise DataSourceError(source, f"split {split!r} has no audio column (columns: {cols})")
    if l_col is None or l_col not in cols:
        raise DataSourceError(
            source, f"split {split!r} has no label column (columns: {cols}); pass label_column="
        )

    label_feature = features[l_col]
    if isinstance(label_feature, datasets.ClassLabel):
        try:
            id_map = {
                i: LABEL_NAMES.index(normalize_label_name(n)) for i, n in enumerate(label_feature.names)
            }
        except ValueError as exc:
            raise DataSourceError(source, f"label column {l_col!r}: {exc}") from exc
    else:
        id_map = None  # strings or ints: normalise value by value
    if isinstance(features[a_col], datasets.Audio):
        ds = ds.cast_column(a_col, datasets.Audio(decode=False))

    has = set(cols)
    prefix = f"{split}-"

    def convert(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        n = len(indices)
        audio = [_as_audio_field(a, source) for a in batch[a_col]]
        if id_map is not None:
            labels = [id_map[int(v)] for v in batch[l_col]]
        else:
            try:
                labels = [LABEL_NAMES.index(normalize_label_name(v)) for v in batch[l_col]]
            except ValueError as exc:
                raise DataSourceError(source, f"label column {l_col!r}: {exc}") from exc
        clip_ids = (
            batch["clip_id"]
            if "clip_id" in has
            else [
                Path(a["path"]).stem if a.get("path") else f"{prefix}{i:06d}" for a, i in zip(audio, indices)
            ]
        )
        # a path may repeat (e.g. Hub parquet rows all named "audio.wav"); fall back to the row index
        clip_ids = [c if c else f"{prefix}{i:06d}" for c, i in zip(clip_ids, indices)]
        attacks = (
            batch["attack"] if "attack" in has else [BONAFIDE if y == 1 else UNKNOWN_ATTACK for y in labels]
        )
        attacks = [
            BONAFIDE if y == 1 else (a if a not in (None, "", "-") else UNKNOWN_ATTACK)
            for a, y in zip(attacks, labels)
        ]
        return {
            "audio": audio,
            "label": labels,
            "clip_id": [str(c) for c in clip_ids],
            "utterance_id": [str(u) for u in batch["utterance_id"]]
            if "utterance_id" in has
            else [str(c) for c in clip_ids],
            "speaker_id": [str(s) for s in batch["speaker_id"]] if "speaker_id" in has else [""] * n,
            "attack": attacks,
            "sample_rate": [int(s) for s in batch["sample_rate"]] if "sample_rate" in has else [-1] * n,
            "duration": [float(d) for d in batch["duration"]] if "duration" in has else [-1.0] * n,
        }

    kwargs: dict[str, Any] = dict(batched=True, with_indices=True, remove_columns=cols, features=_features())
    if isinstance(ds, datasets.Dataset):
        kwargs["desc"] = None
        kwargs["load_from_cache_file"] = False
    ds = ds.map(convert, **kwargs)
    if isinstance(ds, datasets.Dataset) and len(set(ds["clip_id"])) != len(ds):
        ds = ds.map(
            lambda b, idx: {"clip_id": [f"{prefix}{i:06d}" for i in idx]},
            batched=True,
            with_indices=True,
            load_from_cache_file=False,
        )
        if "utterance_id" not in has:
            ds = ds.map(lambda b: {"utterance_id": b["clip_id"]}, batched=True, load_from_cache_file=False)
    return ds


def _as_audio_field(value: Any, source: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, str):
        return {"bytes": None, "path": value}
    raise DataSourceError(source, f"unsupported audio value of type {type(value).__name__}")


def audio_source_name(example: Mapping[str, Any], fallback: str = "clip") -> str:
    """Human-readable name of an example's audio for error messages."""
    audio = example.get("audio") or {}
    return str(example.get("clip_id") or audio.get("path") or fallback)


def _audio_payload(audio: Mapping[str, Any]) -> bytes | str:
    if audio.get("bytes") is not None:
        return audio["bytes"]  # b"" is empty audio, not a reason to look for a file named by "path"
    if audio.get("path"):
        return audio["path"]
    return b""


def check_clip_length(n_samples: int, sample_rate: int, source: str) -> None:
    """Raise :class:`AudioError` naming ``source`` when ``n_samples`` at ``sample_rate`` Hz are
    fewer than :data:`MIN_CLIP_SAMPLES` once resampled to 16 kHz."""
    at_target = n_samples * TARGET_SAMPLE_RATE / sample_rate
    if at_target < MIN_CLIP_SAMPLES:
        raise AudioError(
            source,
            f"too short for the model: {n_samples} samples at {sample_rate} Hz "
            f"({n_samples / sample_rate * 1000:.1f} ms; at least {MIN_CLIP_SAMPLES} "
            f"samples at {TARGET_SAMPLE_RATE} Hz are needed)",
        )


def _fill_header_columns(
    ds: Any, *, source: str, split: str, skip_bad: bool, report: LoadReport, max_duration_s: float
) -> Any:
    """Decode and check every row's audio; fill sample rate and duration where missing.

    A row must decode completely (no truncation), be finite, not silent, long enough for
    the model (:func:`check_clip_length`) and no longer than ``max_duration_s`` seconds. Bad
    rows are either skipped and reported with their reason (``skip_bad``) or raise
    :class:`AudioError` naming the row.
    """
    rates, durations, keep = [], [], []
    for i, ex in enumerate(ds):
        name = f"{source} [{split} row {i}: {audio_source_name(ex)}]"
        try:
            payload = _audio_payload(ex["audio"])
            if not payload:
                raise AudioError(name, "empty audio (0 bytes, or no bytes and no path)")
            wave, rate = decode_audio(payload, source=name, max_duration_s=max_duration_s)
            check_clip_length(wave.shape[0], rate, name)
        except AudioError as exc:
            if not skip_bad:
                raise
            report.skipped.append((name, exc.problem))
            log.info("skipping %s: %s", name, exc.problem)
            continue
        keep.append(i)
        rates.append(int(rate) if ex["sample_rate"] < 0 else int(ex["sample_rate"]))
        durations.append(float(wave.shape[0] / rate) if ex["duration"] < 0 else float(ex["duration"]))
    if len(keep) != len(ds):
        ds = ds.select(keep)
    ds = ds.remove_columns(["sample_rate", "duration"])
    ds = ds.add_column("sample_rate", rates).add_column("duration", durations)
    return ds.cast(_features())


# --------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------
def group_column(ds: Any) -> str:
    """The column that keeps related clips together: speakers when named, else utterances."""
    if "speaker_id" in ds.column_names and any(ds["speaker_id"]):
        return "speaker_id"
    return "utterance_id"


def _group_labels(groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique groups and a stratum per group (its majority label, and whether it mixes labels)."""
    uniq, inverse = np.unique(groups, return_inverse=True)
    real = np.bincount(inverse, weights=labels, minlength=len(uniq))
    total = np.bincount(inverse, minlength=len(uniq))
    strata = np.where(real == 0, 0, np.where(real == total, 1, 2))
    return uniq, strata


def assign_splits(
    groups: Sequence[str],
    labels: Sequence[int],
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """Split name for every clip: groups never straddle splits, strata keep label balance.

    Groups are stratified by their label make-up (all fake, all real, mixed) and each stratum
    is shuffled with ``seed`` and cut at the requested fractions (largest remainder), so a
    dataset of paired bona fide/spoof utterances and one of independent clips both split
    evenly. Returns an array of ``"train"``/``"validation"``/``"test"`` of length ``len(groups)``.
    """
    groups_arr = np.asarray(groups).astype(str)
    labels_arr = np.asarray(labels, dtype=int)
    uniq, strata = _group_labels(groups_arr, labels_arr)
    rng = np.random.default_rng(seed)
    group_split = np.empty(len(uniq), dtype=object)
    for stratum in np.unique(strata):
        idx = np.flatnonzero(strata == stratum)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if n >= 3:  # keep every requested split non-empty
            n_test = max(n_test, 1) if test_fraction > 0 else 0
            n_val = max(n_val, 1) if val_fraction > 0 else 0
        group_split[idx[:n_test]] = "test"
        group_split[idx[n_test : n_test + n_val]] = "validation"
        group_split[idx[n_test + n_val :]] = "train"
    lookup = dict(zip(uniq, group_split))
    return np.array([lookup[g] for g in groups_arr])


def assign_split_by_hash(
    group: str, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0
) -> str:
    """Split of one group from a stable hash: for streaming sources that cannot be shuffled."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "big") / 2**64
    return "test" if h < test_fraction else "validation" if h < test_fraction + val_fraction else "train"


def make_splits(dd: Any, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0) -> Any:
    """Train/validation/test ``DatasetDict`` from any loaded source.

    A source that already has all three splits keeps them. Otherwise all its rows are pooled
    and split by :func:`assign_splits` over groups (see :func:`group_column`). Streaming
    sources are split by a stable hash of the group instead.
    """
    import datasets

    if set(SPLIT_NAMES) <= set(dd):
        return (
            datasets.DatasetDict({s: dd[s] for s in SPLIT_NAMES})
            if isinstance(dd, datasets.DatasetDict)
            else dd
        )
    if isinstance(dd, datasets.IterableDatasetDict):
        pooled = next(iter(dd.values())) if len(dd) == 1 else datasets.interleave_datasets(list(dd.values()))
        return datasets.IterableDatasetDict(
            {
                name: pooled.filter(
                    lambda ex, name=name: (
                        assign_split_by_hash(
                            ex["speaker_id"] or ex["utterance_id"],
                            val_fraction=val_fraction,
                            test_fraction=test_fraction,
                            seed=seed,
                        )
                        == name
                    )
                )
                for name in SPLIT_NAMES
            }
        )
    pooled = datasets.concatenate_datasets(list(dd.values())) if len(dd) > 1 else next(iter(dd.values()))
    col = group_column(pooled)
    names = assign_splits(
        pooled[col], pooled["label"], val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    out = {}
    for name in SPLIT_NAMES:
        idx = np.flatnonzero(names == name)
        if len(idx) == 0:
            n_groups = len(set(pooled[col]))
            if n_groups < 3:
                what = "speaker" if col == "speaker_id" else "utterance group"
                raise DataSourceError(
                    "splits",
                    f"the {name} split is empty: all {len(pooled)} clips belong to "
                    f"{n_groups} {what}{'s' if n_groups != 1 else ''} ({col}), and a group "
                    "never straddles splits; at least 3 groups are needed",
                )
            raise DataSourceError(
                "splits",
                f"the {name} split is empty: {len(pooled)} clips in {n_groups} groups "
                f"({col}) are too few for these fractions",
            )
        out[name] = pooled.select(idx)
    return datasets.DatasetDict(out)


def iter_group_kfold(ds: Any, *, n_folds: int = 5, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_indices, test_indices) for each of ``n_folds`` folds over groups, stratified.

    Uses scikit-learn's ``StratifiedGroupKFold`` so every fold holds both classes and no
    group is on both sides. Meant for tiny datasets (Hemg has 100 clips) where one
    15-clip test split cannot carry a percentage.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    col = group_column(ds)
    labels = np.asarray(ds["label"])
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    yield from splitter.split(np.zeros(len(labels)), labels, groups=np.asarray(ds[col]))


# --------------------------------------------------------------------------------------
# summaries and decoding
# --------------------------------------------------------------------------------------
def summarize_splits(dd: Mapping[str, Any]) -> pd.DataFrame:
    """One row per split and class/attack: clip counts, duration (s) and sample-rate statistics."""
    frames = []
    for split, ds in dd.items():
        df = ds.select_columns(["label", "attack", "duration", "sample_rate", "utterance_id"]).to_pandas()
        df["split"] = split
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["class"] = df["label"].map(dict(enumerate(LABEL_NAMES)))
    summary = (
        df.groupby(["split", "class", "attack"], sort=False)
        .agg(
            clips=("label", "size"),
            groups=("utterance_id", "nunique"),
            duration_mean_s=("duration", "mean"),
            duration_min_s=("duration", "min"),
            duration_max_s=("duration", "max"),
            sample_rates=("sample_rate", lambda s: ",".join(str(v) for v in sorted(set(s)))),
        )
        .reset_index()
    )
    order = {s: i for i, s in enumerate(SPLIT_NAMES)}
    summary["_o"] = summary["split"].map(lambda s: order.get(s, 99))
    return summary.sort_values(["_o", "class", "attack"]).drop(columns="_o").reset_index(drop=True)


def count_split_labels(dd: Mapping[str, Any]) -> pd.DataFrame:
    """Clips per split (rows) and class (columns), with totals."""
    table = (
        pd.DataFrame(
            {
                split: pd.Series(ds["label"]).map(dict(enumerate(LABEL_NAMES))).value_counts()
                for split, ds in dd.items()
            }
        )
        .T.fillna(0)
        .astype(int)
    )
    table = table.reindex(columns=list(LABEL_NAMES), fill_value=0)
    table["total"] = table.sum(axis=1)
    return table


def load_example_native(example: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """Decode one row's audio at its native rate: (mono float32 ``[samples]``, rate in Hz)."""
    from deepfake_lib.audio.io import decode_audio

    return decode_audio(_audio_payload(example["audio"]), source=audio_source_name(example))


def load_example_audio(example: Mapping[str, Any], *, target_sr: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Decode one row's audio to mono float32 ``[samples]`` at ``target_sr`` (Hz)."""
    return load_audio(
        _audio_payload(example["audio"]), target_sr=target_sr, source=audio_source_name(example)
    )


def split_table(dd: Mapping[str, Any]) -> pd.DataFrame:
    """clip_id, utterance_id, label, attack and split for every clip (written as ``splits.csv``)."""
    frames = []
    for split, ds in dd.items():
        df = ds.select_columns(
            ["clip_id", "utterance_id", "speaker_id", "label", "attack", "sample_rate", "duration"]
        ).to_pandas()
        df.insert(0, "split", split)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def describe_clips(ds: Any) -> pd.DataFrame:
    """Per-clip table at the native sample rate: ids, label, attack and level statistics.

    Columns: clip_id, utterance_id, label, class, attack, sample_rate (Hz), duration (s),
    rms_dbfs, peak_dbfs, crest_db, zero_crossing_rate (crossings per sample). Decodes every
    clip once (no resampling), so it costs about a millisecond per clip.
    """
    from deepfake_lib.audio.signal import level_stats

    rows = []
    for ex in ds:
        wave, sr = load_example_native(ex)
        stats = level_stats(wave, sr)
        rows.append(
            {
                "clip_id": ex["clip_id"],
                "utterance_id": ex["utterance_id"],
                "label": ex["label"],
                "class": LABEL_NAMES[ex["label"]],
                "attack": ex["attack"],
                "sample_rate": sr,
                "duration": stats["duration_s"],
                **{k: stats[k] for k in ("rms_dbfs", "peak_dbfs", "crest_db", "zero_crossing_rate")},
            }
        )
    return pd.DataFrame(rows)


def pick_examples(ds: Any, *, seed: int = 0) -> pd.DataFrame:
    """One utterance per attack with its bona fide clip: rows (index, clip_id, utterance_id, attack, label).

    For sources without shared utterances (each clip its own group), picks one clip per
    attack and one bona fide clip instead.
    """
    df = ds.select_columns(["clip_id", "utterance_id", "attack", "label"]).to_pandas()
    df["index"] = np.arange(len(df))
    rng = np.random.default_rng(seed)
    picked = []
    for attack in sorted(a for a in df["attack"].unique() if a != BONAFIDE):
        spoofs = df[df["attack"] == attack]
        paired = spoofs[spoofs["utterance_id"].isin(df.loc[df["label"] == 1, "utterance_id"])]
        pool = paired if len(paired) else spoofs
        row = pool.iloc[int(rng.integers(len(pool)))]
        picked.append(row)
        real = df[(df["label"] == 1) & (df["utterance_id"] == row["utterance_id"])]
        if len(real):
            picked.append(real.iloc[0])
    if not any(r["label"] == 1 for r in picked):
        reals = df[df["label"] == 1]
        if len(reals):
            picked.append(reals.iloc[int(rng.integers(len(reals)))])
    out = pd.DataFrame(picked)[["index", "clip_id", "utterance_id", "attack", "label"]]
    return out.drop_duplicates("clip_id").reset_index(drop=True)
