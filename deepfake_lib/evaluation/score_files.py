"""Reading score files and protocols in every common layout (ASVspoof protocol lines, CSV/TSV with a header, JSON lines, deepfake-detect output) and matching their ids."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.audio.io import AUDIO_EXTENSIONS
from deepfake_lib.labels import BONAFIDE, UNKNOWN_ATTACK, normalize_label_name

__all__ = [
    "ATTACK_COLUMNS",
    "DETECT_COLUMNS",
    "ID_COLUMNS",
    "LABEL_COLUMNS",
    "match_scores",
    "MatchedScores",
    "normalize_id",
    "Protocol",
    "read_protocol",
    "read_scores",
    "RUN_METRICS_FILE",
    "RUN_SCORE_FILE",
    "SCORE_COLUMNS",
    "ScoreFile",
    "ScoreFileError",
    "SPEAKER_COLUMNS",
]

ID_COLUMNS: tuple[str, ...] = (
    "clip_id",
    "id",
    "filename",
    "file_name",
    "flac_file_name",
    "audio_file_name",
    "trial",
    "trial_anon",
    "trial_id",
    "utt",
    "utt_id",
    "file",
    "path",
    "utterance_id",
)
"""Header names of the trial id column, in order of preference (lower case, ``-`` read as ``_``)."""

SCORE_COLUMNS: tuple[str, ...] = ("score", "cm_score", "llr", "cm_llr")
"""Header names of the score column."""

LABEL_COLUMNS: tuple[str, ...] = ("label", "key", "cm_label", "cm_key", "trial_type", "class")
"""Header names of the ground-truth column (never read from ``deepfake-detect`` output)."""

ATTACK_COLUMNS: tuple[str, ...] = ("attack", "attack_label", "attack_anon", "attack_id", "system_id")
"""Header names of the attack column."""

SPEAKER_COLUMNS: tuple[str, ...] = ("speaker_id", "speaker", "spk", "tar_spk_anon", "spk_id")
"""Header names of the speaker column (the bootstrap group when present)."""

DETECT_COLUMNS: frozenset[str] = frozenset({"path", "prob_real", "score", "threshold", "error"})
"""Columns that mark a ``deepfake-detect`` results file."""

RUN_SCORE_FILE = "test_scores.csv"

RUN_METRICS_FILE = "metrics.json"

_KEY_TOKENS = {"bonafide": 1, "spoof": 0}

_ATTACK_TOKEN = re.compile(r"A\d{2,3}")

_EXAMPLES = 3


class ScoreFileError(ValueError):
    """A protocol or score file that cannot be read, or that does not match the other one."""


@dataclass(frozen=True)
class Protocol:
    """Ground truth per trial: ``ids`` [n] (normalised), ``labels`` [n] (1 = bona fide, 0 =
    spoof), ``attacks`` [n] (``"bonafide"`` for bona fide), ``groups`` [n] or None and
    ``group_kind`` (``"speaker"``, ``"utterance"`` or ``"clip"``: what the bootstrap resamples)."""

    path: Path
    layout: str
    ids: tuple[str, ...]
    labels: np.ndarray
    attacks: tuple[str, ...]
    groups: tuple[str, ...] | None
    group_kind: str


@dataclass(frozen=True)
class ScoreFile:
    """Scores per trial: ``ids`` [n] (normalised), ``scores`` [n] (higher = more bona fide),
    ``threshold`` (the system's own decision threshold when the file names one), ``failed``
    (ids whose row has no score, with the detector's error) and ``truth`` (the file's own
    labels, for a run's ``test_scores.csv``)."""

    path: Path
    layout: str
    ids: tuple[str, ...]
    scores: np.ndarray
    threshold: float | None
    threshold_source: str
    failed: dict[str, str]
    truth: Protocol | None


@dataclass(frozen=True)
class MatchedScores:
    """Protocol and scores aligned one to one: ``labels``, ``scores``, ``attacks`` and ``groups``
    are [n] in the protocol's order."""

    ids: tuple[str, ...]
    labels: np.ndarray
    scores: np.ndarray
    attacks: tuple[str, ...]
    groups: tuple[str, ...] | None
    group_kind: str


def normalize_id(raw: str) -> str:
    """A trial id as compared between files: the name without folders and without an audio
    extension (:data:`deepfake_lib.corpora.sources.AUDIO_EXTENSIONS`), e.g. ``/x/flac/LA_E_1.flac`` ->
    ``LA_E_1``."""
    name = re.split(r"[/\\]", str(raw).strip())[-1]
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in AUDIO_EXTENSIONS else name


def _column_key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _read_rows(path: Path) -> tuple[list[tuple[int, list[str]]], str]:
    """Non-empty, non-comment lines split into fields: ``([(line number, fields)], delimiter)``
    with delimiter ``","``, ``"\\t"`` or ``" "`` (any whitespace), chosen from the first line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScoreFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ScoreFileError(f"{path}: not a UTF-8 text file ({error})") from None
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ScoreFileError(f"{path}: the file has no entries")
    first = lines[0][1]
    delimiter = "," if "," in first else "\t" if "\t" in first else " "
    rows: list[tuple[int, list[str]]] = []
    if delimiter == ",":
        for n, line in lines:
            rows.append((n, [field.strip() for field in next(csv.reader([line]))]))
    elif delimiter == "\t":
        rows = [(n, [field.strip() for field in line.split("\t")]) for n, line in lines]
    else:
        rows = [(n, line.split()) for n, line in lines]
    return rows, delimiter


def _read_jsonl(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """JSON lines as a header and rows of strings (missing keys and nulls become ``""``)."""
    records: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ScoreFileError(f"{path}: line {n}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ScoreFileError(f"{path}: line {n}: expected a JSON object, got {type(record).__name__}")
        records.append((n, record))
    if not records:
        raise ScoreFileError(f"{path}: the file has no entries")
    header = list(dict.fromkeys(key for _, record in records for key in record))
    rows = [
        (n, ["" if record.get(key) is None else str(record.get(key)) for key in header])
        for n, record in records
    ]
    return header, rows


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [_column_key(name) for name in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def _check_widths(path: Path, rows: list[tuple[int, list[str]]], width: int) -> None:
    for n, fields in rows:
        if len(fields) != width:
            raise ScoreFileError(
                f"{path}: line {n}: expected {width} fields like the header, got {len(fields)}"
            )


def _parse_label(path: Path, n: int, value: str) -> int:
    try:
        return 1 if normalize_label_name(value) == "Real" else 0
    except ValueError:
        raise ScoreFileError(
            f"{path}: line {n}: label {value!r} is neither bona fide (bonafide, real, 1) nor spoof "
            "(spoof, fake, 0)"
        ) from None


def _parse_score(path: Path, n: int, value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise ScoreFileError(f"{path}: line {n}: score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise ScoreFileError(f"{path}: line {n}: score {value!r} is not finite")
    return score


def _protocol_from_table(
    path: Path, layout: str, header: list[str], rows: list[tuple[int, list[str]]], *, split: str | None
) -> Protocol:
    id_col = _find_column(header, ID_COLUMNS)
    label_col = _find_column(header, LABEL_COLUMNS)
    if id_col is None or label_col is None:
        raise ScoreFileError(
            f"{path}: header {header} lacks an id column (one of {', '.join(ID_COLUMNS)}) or a label "
            f"column (one of {', '.join(LABEL_COLUMNS)})"
        )
    split_col = _find_column(header, ("split",))
    if split is not None:
        if split_col is None:
            raise ScoreFileError(f"{path}: --split {split!r} given but the file has no 'split' column")
        rows = [(n, fields) for n, fields in rows if fields[split_col] == split]
        if not rows:
            raise ScoreFileError(f"{path}: no rows with split {split!r}")
    attack_col = _find_column(header, ATTACK_COLUMNS)
    speaker_col = _find_column(header, SPEAKER_COLUMNS)
    utterance_col = _find_column(header, ("utterance_id",))
    if speaker_col is not None and all(fields[speaker_col] for _, fields in rows):
        group_col, group_kind = speaker_col, "speaker"
    elif utterance_col not in (None, id_col) and all(fields[utterance_col] for _, fields in rows):
        group_col, group_kind = utterance_col, "utterance"
    else:
        group_col, group_kind = None, "clip"
    labels = np.array([_parse_label(path, n, fields[label_col]) for n, fields in rows], dtype=np.int64)
    attacks = tuple(
        BONAFIDE
        if label == 1
        else (fields[attack_col] if attack_col is not None and fields[attack_col] else UNKNOWN_ATTACK)
        for label, (_, fields) in zip(labels, rows, strict=True)
    )
    return Protocol(
        path=path,
        layout=layout,
        ids=tuple(normalize_id(fields[id_col]) for _, fields in rows),
        labels=labels,
        attacks=attacks,
        groups=None if group_col is None else tuple(fields[group_col] for _, fields in rows),
        group_kind=group_kind,
    )


_ASVSPOOF_LAYOUTS = {(5, 4): "ASVspoof 2019 LA", (8, 5): "ASVspoof 2021 LA", (10, 8): "ASVspoof 5"}


def _protocol_from_lines(path: Path, rows: list[tuple[int, list[str]]]) -> Protocol:
    ids, labels, attacks, speakers = [], [], [], []
    shapes = Counter()
    for n, fields in rows:
        keys = [i for i, field in enumerate(fields) if field.lower() in _KEY_TOKENS]
        if len(fields) < 2 or not keys:
            raise ScoreFileError(
                f"{path}: line {n}: expected 'speaker id ... bonafide|spoof' (an ASVspoof protocol line), "
                f"got {' '.join(fields)!r}"
            )
        label = _KEY_TOKENS[fields[keys[-1]].lower()]
        shapes[(len(fields), keys[-1])] += 1
        ids.append(normalize_id(fields[1] if len(fields) >= 3 else fields[0]))
        speakers.append(fields[0] if len(fields) >= 3 else "")
        labels.append(label)
        attack = next((field for field in reversed(fields) if _ATTACK_TOKEN.fullmatch(field)), UNKNOWN_ATTACK)
        attacks.append(BONAFIDE if label == 1 else attack)
    shape = shapes.most_common(1)[0][0]
    layout = _ASVSPOOF_LAYOUTS.get(shape, "ASVspoof-style") + f" protocol ({shape[0]} columns)"
    return Protocol(
        path=path,
        layout=layout,
        ids=tuple(ids),
        labels=np.array(labels, dtype=np.int64),
        attacks=tuple(attacks),
        groups=tuple(speakers) if all(speakers) else None,
        group_kind="speaker" if all(speakers) else "clip",
    )


def read_protocol(path: str | Path, *, split: str | None = None) -> Protocol:
    """Read a protocol or key file (layouts in the module docstring); ``split`` keeps the rows
    of one split of a file with a ``split`` column (e.g. a run's ``splits.csv``)."""
    path = Path(path)
    rows, _ = _read_rows(path)
    first = rows[0][1]
    has_header = (
        not any(field.lower() in _KEY_TOKENS for field in first)
        and _find_column(first, LABEL_COLUMNS) is not None
    )
    if has_header:
        header, body = first, rows[1:]
        if not body:
            raise ScoreFileError(f"{path}: the file has a header but no entries")
        _check_widths(path, body, len(header))
        return _protocol_from_table(path, "table with header", header, body, split=split)
    if split is not None:
        raise ScoreFileError(f"{path}: --split {split!r} needs a protocol with a header and a 'split' column")
    return _protocol_from_lines(path, rows)


def _run_threshold(folder: Path) -> float | None:
    metrics_file = folder / RUN_METRICS_FILE
    if not metrics_file.is_file():
        return None
    try:
        value = (json.loads(metrics_file.read_text()).get("threshold") or {}).get("value")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ScoreFileError(f"{metrics_file}: cannot read the run's threshold ({error})") from None
    return None if value is None else float(value)


def _scores_from_table(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> ScoreFile:
    keys = {_column_key(name) for name in header}
    if DETECT_COLUMNS <= keys:
        return _scores_from_detect(path, header, rows)
    score_col = _find_column(header, SCORE_COLUMNS)
    id_col = _find_column(header, ID_COLUMNS)
    if score_col is None or id_col is None:
        raise ScoreFileError(
            f"{path}: header {header} lacks an id column (one of {', '.join(ID_COLUMNS)}) or a score "
            f"column (one of {', '.join(SCORE_COLUMNS)})"
        )
    _check_widths(path, rows, len(header))
    ids = tuple(normalize_id(fields[id_col]) for _, fields in rows)
    scores = np.array([_parse_score(path, n, fields[score_col]) for n, fields in rows], dtype=np.float64)
    is_run = {"clip_id", "logit_fake", "logit_real", "label"} <= keys
    truth = None
    if _find_column(header, LABEL_COLUMNS) is not None:
        truth = _protocol_from_table(path, "labels in the score file", header, rows, split=None)
    threshold = _run_threshold(path.parent) if is_run else None
    return ScoreFile(
        path=path,
        layout="run test scores (test_scores.csv)" if is_run else "table with header",
        ids=ids,
        scores=scores,
        threshold=threshold,
        threshold_source=f"the run's {RUN_METRICS_FILE} (validation EER)" if threshold is not None else "",
        failed={},
        truth=truth,
    )


def _scores_from_detect(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> ScoreFile:
    _check_widths(path, rows, len(header))
    column = {_column_key(name): i for i, name in enumerate(header)}
    ids, scores, thresholds, failed = [], [], set(), {}
    for n, fields in rows:
        trial = normalize_id(fields[column["path"]])
        error, score = fields[column["error"]], fields[column["score"]]
        if error or not score:
            failed[trial] = error or "no score"
            continue
        ids.append(trial)
        scores.append(_parse_score(path, n, score))
        if fields[column["threshold"]]:
            thresholds.add(_parse_score(path, n, fields[column["threshold"]]))
    if len(thresholds) > 1:
        raise ScoreFileError(
            f"{path}: rows were scored at {len(thresholds)} different thresholds; score one model per file"
        )
    threshold = thresholds.pop() if thresholds else None
    return ScoreFile(
        path=path,
        layout="deepfake-detect results",
        ids=tuple(ids),
        scores=np.array(scores, dtype=np.float64),
        threshold=threshold,
        threshold_source="the detector's threshold column" if threshold is not None else "",
        failed=failed,
        truth=None,
    )


def _scores_from_lines(
    path: Path, rows: list[tuple[int, list[str]]], known_ids: set[str] | None
) -> ScoreFile:
    width = len(rows[0][1])
    _check_widths_plain(path, rows, width)
    numeric = [i for i in range(width) if all(_is_number(fields[i]) for _, fields in rows)]
    if not numeric:
        n, fields = next((n, f) for n, f in rows if not any(_is_number(x) for x in f))
        raise ScoreFileError(f"{path}: line {n}: no score (a finite number) in {' '.join(fields)!r}")
    score_col = numeric[-1]
    candidates = [
        i
        for i in range(width)
        if i != score_col and not any(fields[i].lower() in _KEY_TOKENS for _, fields in rows[:50])
    ]
    if not candidates:
        raise ScoreFileError(f"{path}: line {rows[0][0]}: expected an id column beside the score")

    def overlap(column: int) -> int:
        return len({normalize_id(fields[column]) for _, fields in rows} & known_ids) if known_ids else 0

    def unique(column: int) -> bool:
        values = [fields[column] for _, fields in rows]
        return len(set(values)) == len(values)

    id_col = max(candidates, key=lambda c: (overlap(c), unique(c), -c))
    ids = tuple(normalize_id(fields[id_col]) for _, fields in rows)
    scores = np.array([float(fields[score_col]) for _, fields in rows], dtype=np.float64)
    key_cols = [i for i in range(width) if all(fields[i].lower() in _KEY_TOKENS for _, fields in rows)]
    truth = None
    if key_cols:
        labels = np.array([_KEY_TOKENS[fields[key_cols[0]].lower()] for _, fields in rows], dtype=np.int64)
        attacks = tuple(
            BONAFIDE
            if label == 1
            else next((field for field in fields if _ATTACK_TOKEN.fullmatch(field)), UNKNOWN_ATTACK)
            for label, (_, fields) in zip(labels, rows, strict=True)
        )
        truth = Protocol(
            path=path,
            layout="labels in the score file",
            ids=ids,
            labels=labels,
            attacks=attacks,
            groups=None,
            group_kind="clip",
        )
    return ScoreFile(
        path=path,
        layout=f"ASVspoof-style score file ({width} columns)",
        ids=ids,
        scores=scores,
        threshold=None,
        threshold_source="",
        failed={},
        truth=truth,
    )


def _check_widths_plain(path: Path, rows: list[tuple[int, list[str]]], width: int) -> None:
    for n, fields in rows:
        if len(fields) != width:
            raise ScoreFileError(
                f"{path}: line {n}: expected {width} fields like the first line, got {len(fields)}"
            )


def read_scores(path: str | Path, *, known_ids: set[str] | None = None) -> ScoreFile:
    """Read a score file (layouts in the module docstring), or a run folder's
    ``test_scores.csv``. ``known_ids`` (the protocol's normalised ids) picks the id column of a
    score file without header."""
    path = Path(path)
    if path.is_dir():
        candidate = path / RUN_SCORE_FILE
        if not candidate.is_file():
            raise ScoreFileError(
                f"{path}: a folder without {RUN_SCORE_FILE}; pass a score file or a run folder"
            )
        path = candidate
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        header, rows = _read_jsonl(path)
        return _scores_from_table(path, header, rows)
    rows, _ = _read_rows(path)
    first = rows[0][1]
    if not any(_is_number(field) for field in first):
        if len(rows) < 2:
            raise ScoreFileError(f"{path}: the file has a header but no entries")
        return _scores_from_table(path, first, rows[1:])
    return _scores_from_lines(path, rows, known_ids)


def _examples(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:_EXAMPLES])
    return f" (e.g. {shown}{', ...' if len(values) > _EXAMPLES else ''})"


def match_scores(protocol: Protocol | None, scores: ScoreFile) -> MatchedScores:
    """Align ``scores`` to ``protocol`` one to one (to the score file's own labels when
    ``protocol`` is None). Raises :class:`ScoreFileError` counting the protocol's duplicated
    ids, the protocol ids without a score (and those the detector failed on), the ids scored
    more than once and the scored ids that the protocol does not list."""
    truth = protocol if protocol is not None else scores.truth
    if truth is None:
        raise ScoreFileError(
            f"{scores.path}: a {scores.layout} carries no ground truth; pass --protocol with the labels"
        )
    protocol_counts = Counter(truth.ids)
    duplicated_protocol = sorted(i for i, c in protocol_counts.items() if c > 1)
    if duplicated_protocol:
        raise ScoreFileError(
            f"{truth.path}: {len(duplicated_protocol)} id(s) are listed more than once"
            f"{_examples(duplicated_protocol)}; a protocol lists each trial once"
        )
    score_counts = Counter(scores.ids)
    duplicated = sorted(i for i, c in score_counts.items() if c > 1)
    failed = sorted(i for i in scores.failed if i in protocol_counts and i not in score_counts)
    missing = sorted(i for i in protocol_counts if i not in score_counts and i not in scores.failed)
    extra = sorted(i for i in score_counts if i not in protocol_counts)
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of {len(protocol_counts)} protocol id(s) have no score{_examples(missing)}"
        )
    if failed:
        first_error = scores.failed[failed[0]]
        problems.append(
            f"{len(failed)} protocol id(s) failed in the detector{_examples(failed)}, "
            f"first error: {first_error}"
        )
    if duplicated:
        problems.append(f"{len(duplicated)} id(s) are scored more than once{_examples(duplicated)}")
    if extra:
        problems.append(f"{len(extra)} scored id(s) are not in the protocol{_examples(extra)}")
    if problems:
        hint = ""
        if extra and len(extra) == len(score_counts):
            hint = (
                f"; no id matches at all: the protocol's ids look like {truth.ids[0]!r}, the scores' "
                f"like {scores.ids[0]!r}"
            )
        raise ScoreFileError(
            f"{scores.path} does not match {truth.path} one to one: " + "; ".join(problems) + hint
        )
    position = {trial: i for i, trial in enumerate(scores.ids)}
    order = np.array([position[trial] for trial in truth.ids], dtype=np.int64)
    return MatchedScores(
        ids=truth.ids,
        labels=truth.labels,
        scores=scores.scores[order],
        attacks=truth.attacks,
        groups=truth.groups,
        group_kind=truth.group_kind,
    )
