"""Linear-frequency cepstral coefficients (LFCC), the ASVspoof baseline features: frame-level coefficients with deltas, and their utterance statistics."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torchaudio

from deepfake_lib.torch_settings import torch_threads

__all__ = [
    "extract_lfcc_frames",
    "extract_lfcc_stats",
]


@functools.lru_cache(maxsize=8)
def _lfcc_transform(sample_rate: int, n_lfcc: int) -> torchaudio.transforms.LFCC:
    """LFCC transform: 25 ms Hann frames every 10 ms, 512-point FFT, 70 linear filters."""
    win = int(round(0.025 * sample_rate))
    hop = int(round(0.010 * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    return torchaudio.transforms.LFCC(
        sample_rate=sample_rate,
        n_filter=70,
        n_lfcc=n_lfcc,
        log_lf=True,
        speckwargs={"n_fft": n_fft, "win_length": win, "hop_length": hop, "center": True},
    )


def extract_lfcc_frames(wave_16k: np.ndarray, sample_rate: int = 16000, n_lfcc: int = 20) -> np.ndarray:
    """Frame-level LFCCs and their deltas: [frames, 2 * n_lfcc] float32 (10 ms hop)."""
    x = np.asarray(wave_16k, dtype=np.float32)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"wave_16k: expected a mono clip [samples], got shape {x.shape}")
    with torch.no_grad(), torch_threads(1):
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
