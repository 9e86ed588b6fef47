"""Classical baselines: a shortcut control on cheap cues, LFCC statistics, LFCC-GMM.

* :func:`extract_control_features` + :func:`fit_logistic_baseline` is the shortcut control:
  on an honest corpus, the cheap cues of :mod:`deepfake_lib.audio.cues` (levels, silences,
  band energies, pitch statistics, sample shape, zero runs) and the native sample rate must
  not tell bona fide from spoofed clips (balanced accuracy near 0.5).
* :func:`extract_lfcc_stats` + :func:`fit_logistic_baseline` is a quick spectral baseline.
* :func:`fit_lfcc_gmm` is the ASVspoof-style LFCC-GMM: one Gaussian mixture per class on
  frame-level LFCCs, scored by the mean log-likelihood ratio.

:func:`evaluate_classical_baselines` trains the three on a split and scores its test clips;
:func:`evaluate_shortcut_control` runs the shortcut control alone (every training run reports it).
Every score follows the project's convention: higher means more bona fide (log-odds of Real).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.audio.cues import CHEAP_CUE_NAMES, extract_cheap_cues
from deepfake_lib.audio.signal import resample
from deepfake_lib.corpora.sources import group_column, load_example_audio, load_example_native
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.evaluation.metrics import summarize_scores
from deepfake_lib.evaluation.summaries import eer_row, require_columns, save_dir, score_groups
from deepfake_lib.modeling.lfcc import extract_lfcc_frames, extract_lfcc_stats

__all__ = [
    "evaluate_classical_baselines",
    "evaluate_shortcut_control",
    "CONTROL_FEATURES",
    "control_feature_table",
    "extract_control_features",
    "fit_lfcc_gmm",
    "fit_logistic_baseline",
    "LfccGmm",
    "score_baseline",
    "summarize_system",
    "SYSTEM_CONTROL_LR",
    "SYSTEM_LFCC_GMM",
    "SYSTEM_LFCC_LR",
]


CONTROL_FEATURES: tuple[str, ...] = (
    *CHEAP_CUE_NAMES,
    *(() if "sample_rate" in CHEAP_CUE_NAMES else ("sample_rate",)),
)
"""Names of the columns of :func:`extract_control_features`, in order: the cheap cues
(:data:`deepfake_lib.audio.cues.CHEAP_CUE_NAMES`), then the native sample rate (Hz), a cue of
its own on a corpus whose classes were recorded at different rates."""

SYSTEM_LFCC_GMM = "LFCC-GMM (ASVspoof baseline recipe)"
SYSTEM_LFCC_LR = "LFCC + logistic regression"
SYSTEM_CONTROL_LR = "cheap cues + logistic regression (shortcut control)"


def extract_control_features(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Shortcut-control features of a clip [samples] at its native rate: [len(CONTROL_FEATURES)] float64.

    In the order of :data:`CONTROL_FEATURES`: the cheap cues of
    :func:`deepfake_lib.audio.cues.extract_cheap_cues` (units there), then the sample rate (Hz).
    Undefined cues are NaN (kurtosis and skewness of a constant clip);
    :func:`fit_logistic_baseline` imputes them. Needs at least 0.1 s of audio.
    """
    x = np.asarray(wave)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"wave: expected a mono clip [samples] of at least 2 samples, got shape {x.shape}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate = {sample_rate}: must be positive")
    with warnings.catch_warnings():  # scipy warns on the moments of a constant clip; they come back NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        cues = extract_cheap_cues(x, int(sample_rate))
    cues["sample_rate"] = float(sample_rate)
    values = np.array([cues[name] for name in CONTROL_FEATURES], dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def fit_logistic_baseline(features_train: np.ndarray, labels_train: np.ndarray, seed: int = 0) -> Pipeline:
    """Median imputation + StandardScaler + class-balanced LogisticRegression on [clips, features].

    Labels 0 Fake / 1 Real. NaN features (an undefined cue) take the training median; a
    feature with no value in any training clip is dropped.
    """
    x = np.asarray(features_train, dtype=np.float64)
    y = np.asarray(labels_train)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"features_train {x.shape} and labels_train {y.shape}: need [clips, features] and [clips]"
        )
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(
            f"labels_train: need both classes 0 (Fake) and 1 (Real), got {sorted(set(np.unique(y)))}"
        )
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed),
    )
    return model.fit(x, y)


@dataclasses.dataclass
class LfccGmm:
    """ASVspoof-style LFCC-GMM: a diagonal GMM per class on frame-level LFCCs (+ deltas)."""

    real: GaussianMixture
    fake: GaussianMixture
    sample_rate: int = 16000
    n_lfcc: int = 20

    def score_frames(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Mean per-frame log-likelihood ratio (Real vs Fake) of each [frames, dims] matrix: [clips]."""
        return np.array(
            [float(np.mean(self.real.score_samples(f) - self.fake.score_samples(f))) for f in frames]
        )

    def score(self, waves_16k: Sequence[np.ndarray]) -> np.ndarray:
        """Scores [clips] of 16 kHz clips; higher = more bona fide."""
        return self.score_frames([extract_lfcc_frames(w, self.sample_rate, self.n_lfcc) for w in waves_16k])


def fit_lfcc_gmm(
    waves_16k: Sequence[np.ndarray],
    labels: Sequence[int],
    n_components: int = 32,
    n_lfcc: int = 20,
    sample_rate: int = 16000,
    max_frames_per_class: int = 30000,
    seed: int = 0,
) -> LfccGmm:
    """Fit one diagonal GMM per class on frame-level LFCCs of 16 kHz clips (labels 0 Fake / 1 Real).

    At most ``max_frames_per_class`` frames (drawn at random with ``seed``) train each GMM.
    """
    y = np.asarray(labels)
    if len(waves_16k) != y.shape[0]:
        raise ValueError(f"waves_16k ({len(waves_16k)}) and labels ({y.shape[0]}) differ in length")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"labels: need both classes 0 (Fake) and 1 (Real), got {sorted(set(np.unique(y)))}")
    rng = np.random.default_rng(seed)
    frames = [extract_lfcc_frames(w, sample_rate, n_lfcc) for w in waves_16k]
    gmms = {}
    for cls in (0, 1):
        data = np.concatenate([f for f, label in zip(frames, y) if label == cls])
        if data.shape[0] > max_frames_per_class:
            data = data[rng.choice(data.shape[0], max_frames_per_class, replace=False)]
        gmms[cls] = GaussianMixture(
            n_components=n_components, covariance_type="diag", max_iter=100, reg_covar=1e-3, random_state=seed
        ).fit(data)
    return LfccGmm(real=gmms[1], fake=gmms[0], sample_rate=sample_rate, n_lfcc=n_lfcc)


def score_baseline(model: Pipeline | LfccGmm, features: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Log-odds of Real [clips] (higher = more bona fide).

    ``model`` from :func:`fit_logistic_baseline` takes ``features`` [clips, features];
    an :class:`LfccGmm` takes a sequence of 16 kHz clips [samples].
    """
    if isinstance(model, LfccGmm):
        return model.score(features)
    return np.asarray(model.decision_function(np.asarray(features, dtype=np.float64)))


# --------------------------------------------------------------------------------------
# evaluation on a split
# --------------------------------------------------------------------------------------
def _decode_split(ds: Any) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
    """Native-rate waves, their rates (Hz) and 16 kHz waves of every clip of a split."""
    native, rates, w16 = [], [], []
    for ex in ds:
        sr = int(ex["sample_rate"])
        wave = load_example_audio(ex, target_sr=sr)
        native.append(wave)
        rates.append(sr)
        w16.append(resample(wave, sr, TARGET_SAMPLE_RATE))
    return native, rates, w16


def _control_matrix(native: Sequence[np.ndarray], rates: Sequence[int]) -> np.ndarray:
    """:func:`extract_control_features` of native-rate clips: [clips, len(CONTROL_FEATURES)]."""
    return np.stack([extract_control_features(w, r) for w, r in zip(native, rates)])


def control_feature_table(ds: Any) -> pd.DataFrame:
    """The shortcut control's features of every clip of a split, in its order: [clips, CONTROL_FEATURES].

    Decodes each clip at its native rate; costs about 40 ms of CPU a 4 s clip (mostly pitch).
    """
    native = [load_example_native(ex) for ex in ds]
    if not native:
        return pd.DataFrame(columns=list(CONTROL_FEATURES), dtype=np.float64)
    matrix = _control_matrix([w for w, _ in native], [sr for _, sr in native])
    return pd.DataFrame(matrix, columns=list(CONTROL_FEATURES))


def summarize_system(
    system: str,
    scores: pd.DataFrame,
    *,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the baseline table for any scored system (e.g. the fine-tuned model's
    ``test_scores``): system, eer/auc/accuracy with ``_low``/``_high`` bounds, threshold, n_test.

    ``scores`` needs ``label`` and ``score`` (``speaker_id`` or ``utterance_id`` for grouped
    intervals, see :func:`~deepfake_lib.evaluation.summaries.score_groups`);
    accuracy is taken at ``threshold`` (a score; default the test EER threshold, which flatters).
    ``extra`` columns are appended as they are.
    """
    require_columns(scores, ("label", "score"), "scores")
    labels = scores["label"].to_numpy(np.int64)
    values = scores["score"].to_numpy(float)
    groups = score_groups(scores)
    thr = compute_eer(labels, values).threshold if threshold is None else float(threshold)
    row = {"system": system}
    row.update(eer_row(labels, values, groups, n_bootstrap=n_bootstrap, seed=seed, threshold=thr))
    row.update(threshold=thr, n_test=int(labels.size), **extra)
    return row


def evaluate_classical_baselines(
    splits: Any,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    gmm_components: int = 32,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """LFCC-GMM, LFCC + logistic regression and the cheap-cue shortcut control.

    Each system is trained on the train split only and scored on test: EER, AUC and accuracy
    with grouped bootstrap intervals. Accuracy is taken at the validation EER threshold when
    the splits have a validation split (as for the fine-tuned model), else at score 0.
    Rows in the order of :data:`SYSTEM_LFCC_GMM`, :data:`SYSTEM_LFCC_LR`,
    :data:`SYSTEM_CONTROL_LR`; columns as :func:`summarize_system` plus n_train, features,
    threshold_from, seconds. Writes ``baselines.csv`` and ``baselines_scores.csv``.
    """
    names = [s for s in ("train", "validation", "test") if s in splits]
    decoded = {s: _decode_split(splits[s]) for s in names}
    labels = {s: np.asarray(splits[s]["label"], dtype=np.int64) for s in names}
    systems: dict[str, tuple[Callable[[], Any], Callable[[Any, str], np.ndarray], str]] = {}
    lfcc = {s: np.stack([extract_lfcc_stats(w) for w in decoded[s][2]]) for s in names}
    control = {s: _control_matrix(decoded[s][0], decoded[s][1]) for s in names}
    systems[SYSTEM_LFCC_GMM] = (
        lambda: fit_lfcc_gmm(decoded["train"][2], labels["train"], n_components=gmm_components, seed=seed),
        lambda m, s: score_baseline(m, decoded[s][2]),
        "frame LFCC (20) + deltas, one diagonal GMM per class",
    )
    systems[SYSTEM_LFCC_LR] = (
        lambda: fit_logistic_baseline(lfcc["train"], labels["train"], seed=seed),
        lambda m, s: score_baseline(m, lfcc[s]),
        "mean and std of LFCC (20) + deltas",
    )
    systems[SYSTEM_CONTROL_LR] = (
        lambda: fit_logistic_baseline(control["train"], labels["train"], seed=seed),
        lambda m, s: score_baseline(m, control[s]),
        ", ".join(CONTROL_FEATURES),
    )
    rows, frames = [], []
    meta_columns = ["clip_id", "utterance_id", "label", "attack"]
    if group_column(splits["test"]) == "speaker_id":
        meta_columns.append("speaker_id")
    test_meta = splits["test"].select_columns(meta_columns).to_pandas()
    for system, (fit, score, features) in systems.items():
        started = time.perf_counter()
        model = fit()
        test_scores = test_meta.assign(score=score(model, "test"))
        if "validation" in names:
            threshold = compute_eer(labels["validation"], score(model, "validation")).threshold
            source = "validation EER"
        else:
            threshold, source = 0.0, "score 0 (no validation split)"
        rows.append(
            summarize_system(
                system,
                test_scores,
                threshold=threshold,
                n_bootstrap=n_bootstrap,
                seed=seed,
                n_train=int(labels["train"].size),
                features=features,
                threshold_from=source,
                seconds=round(time.perf_counter() - started, 2),
            )
        )
        frames.append(test_scores.assign(system=system))
    table = pd.DataFrame(rows)
    folder = save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "baselines.csv", index=False)
        pd.concat(frames, ignore_index=True).to_csv(folder / "baselines_scores.csv", index=False)
    return table


def evaluate_shortcut_control(splits: Any, *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Can cheap cues (levels, silences, band energies, pitch statistics, sample rate ...) tell the classes apart?

    A class-balanced logistic regression on :func:`deepfake_lib.modeling.baselines.extract_control_features`
    (the :data:`CONTROL_FEATURES` of native-rate clips) is trained on the train split and scored on test. Returns
    :func:`~deepfake_lib.evaluation.metrics.summarize_scores` (grouped by the split's grouping column,
    :func:`~deepfake_lib.corpora.sources.group_column`: speaker when known, else utterance) at score 0, the
    regression's own decision boundary (no threshold tuned on test), plus ``system``,
    ``features`` (the :data:`CONTROL_FEATURES` names), ``n_train`` and ``threshold_from``. On an honest corpus the AUC and balanced
    accuracy stay near 0.5.
    """
    train_native, train_rates, _ = _decode_split(splits["train"])
    test_native, test_rates, _ = _decode_split(splits["test"])
    model = fit_logistic_baseline(
        _control_matrix(train_native, train_rates), np.asarray(splits["train"]["label"]), seed=seed
    )
    scores = score_baseline(model, _control_matrix(test_native, test_rates))
    report = summarize_scores(
        np.asarray(splits["test"]["label"]),
        scores,
        groups=np.asarray(splits["test"][group_column(splits["test"])]),
        threshold=0.0,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    report.update(
        system=SYSTEM_CONTROL_LR,
        features=list(CONTROL_FEATURES),
        n_train=len(train_native),
        threshold_from="score 0 (the regression's decision boundary)",
    )
    return report
