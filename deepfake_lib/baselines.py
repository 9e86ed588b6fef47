"""Classical baselines: a shortcut control on trivial features, LFCC statistics, LFCC-GMM.

* :func:`extract_trivial_features` + :func:`fit_logistic_baseline` is the shortcut control:
  on an honest corpus, duration, level, peak, sample rate and zero-crossing rate must not
  tell bona fide from spoofed clips (balanced accuracy near 0.5).
* :func:`extract_lfcc_stats` + :func:`fit_logistic_baseline` is a quick spectral baseline.
* :func:`fit_lfcc_gmm` is the ASVspoof-style LFCC-GMM: one Gaussian mixture per class on
  frame-level LFCCs, scored by the mean log-likelihood ratio.

Every score follows the project's convention: higher means more bona fide (log-odds of Real).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torchaudio
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfake_lib.audio import level_stats

TRIVIAL_FEATURES: tuple[str, ...] = ("duration_s", "rms_dbfs", "peak_dbfs", "sample_rate", "zero_crossing_rate")
"""Names of the columns of :func:`extract_trivial_features`, in order."""

def extract_trivial_features(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Shortcut-control features of a clip at its native rate: [5] float64.

    In the order of :data:`TRIVIAL_FEATURES`: duration (s), RMS level (dBFS), peak level
    (dBFS), sample rate (Hz) and zero-crossing rate (sign changes per sample, 0..1), as
    :func:`deepfake_lib.audio.level_stats` measures them.
    """
    x = np.asarray(wave)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"wave: expected a mono clip [samples] of at least 2 samples, got shape {x.shape}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate = {sample_rate}: must be positive")
    stats = level_stats(x, sample_rate)
    stats["sample_rate"] = float(sample_rate)
    return np.array([stats[name] for name in TRIVIAL_FEATURES], dtype=np.float64)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run small torch ops on one intra-op thread (many times faster than two on a busy host)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=8)
def _lfcc_transform(sample_rate: int, n_lfcc: int) -> torchaudio.transforms.LFCC:
    """LFCC transform: 25 ms Hann frames every 10 ms, 512-point FFT, 70 linear filters."""
    win = int(round(0.025 * sample_rate))
    hop = int(round(0.010 * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    return torchaudio.transforms.LFCC(
        sample_rate=sample_rate, n_filter=70, n_lfcc=n_lfcc, log_lf=True,
        speckwargs={"n_fft": n_fft, "win_length": win, "hop_length": hop, "center": True},
    )


def extract_lfcc_frames(wave_16k: np.ndarray, sample_rate: int = 16000, n_lfcc: int = 20) -> np.ndarray:
    """Frame-level LFCCs and their deltas: [frames, 2 * n_lfcc] float32 (10 ms hop)."""
    x = np.asarray(wave_16k, dtype=np.float32)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"wave_16k: expected a mono clip [samples], got shape {x.shape}")
    with torch.no_grad(), _one_torch_thread():
        tensor = torch.tensor(x)  # a copy: the input may be a read-only array
        lfcc = _lfcc_transform(int(sample_rate), int(n_lfcc))(tensor)
        lfcc = torch.nan_to_num(lfcc, nan=0.0, neginf=-100.0, posinf=100.0)
        delta = torchaudio.functional.compute_deltas(lfcc[None])[0]
        frames = torch.cat([lfcc, delta], dim=0).T
    return frames.numpy()


def extract_lfcc_stats(wave_16k: np.ndarray, sample_rate: int = 16000, n_lfcc: int = 20) -> np.ndarray:
    """Utterance-level LFCC statistics: mean and std over time of LFCCs and deltas, [4 * n_lfcc]."""
    frames = extract_lfcc_frames(wave_16k, sample_rate, n_lfcc).astype(np.float64)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


def fit_logistic_baseline(features_train: np.ndarray, labels_train: np.ndarray, seed: int = 0) -> Pipeline:
    """StandardScaler + class-balanced LogisticRegression on [clips, features]; labels 0 Fake / 1 Real."""
    x = np.asarray(features_train, dtype=np.float64)
    y = np.asarray(labels_train)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features_train {x.shape} and labels_train {y.shape}: need [clips, features] and [clips]")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"labels_train: need both classes 0 (Fake) and 1 (Real), got {sorted(set(np.unique(y)))}")
    model = make_pipeline(
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
        return np.array([float(np.mean(self.real.score_samples(f) - self.fake.score_samples(f))) for f in frames])

    def score(self, waves_16k: Sequence[np.ndarray]) -> np.ndarray:
        """Scores [clips] of 16 kHz clips; higher = more bona fide."""
        return self.score_frames([extract_lfcc_frames(w, self.sample_rate, self.n_lfcc) for w in waves_16k])


def fit_lfcc_gmm(waves_16k: Sequence[np.ndarray], labels: Sequence[int], n_components: int = 32,
                 n_lfcc: int = 20, sample_rate: int = 16000, max_frames_per_class: int = 30000,
                 seed: int = 0) -> LfccGmm:
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
        gmms[cls] = GaussianMixture(n_components=n_components, covariance_type="diag", max_iter=100,
                                    reg_covar=1e-3, random_state=seed).fit(data)
    return LfccGmm(real=gmms[1], fake=gmms[0], sample_rate=sample_rate, n_lfcc=n_lfcc)


def score_baseline(model: Pipeline | LfccGmm, features: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Log-odds of Real [clips] (higher = more bona fide).

    ``model`` from :func:`fit_logistic_baseline` takes ``features`` [clips, features];
    an :class:`LfccGmm` takes a sequence of 16 kHz clips [samples].
    """
    if isinstance(model, LfccGmm):
        return model.score(features)
    return np.asarray(model.decision_function(np.asarray(features, dtype=np.float64)))
