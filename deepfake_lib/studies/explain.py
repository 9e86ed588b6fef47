"""Where the model listens: a score timeline over a long clip, and an occlusion map (the
score change when one frequency band in one time segment is removed).

Both score through :mod:`deepfake_lib.scoring`; waveforms are float32 ``[samples]`` at 16 kHz.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.evaluation.summaries import save_dir, slug
from deepfake_lib.runs import write_json
from deepfake_lib.scoring import score_waves, window_spans

__all__ = [
    "occlusion_map",
    "score_windows",
]


def score_windows(
    model: Any,
    feature_extractor: Any,
    wave: np.ndarray,
    *,
    window_s: float = 1.0,
    hop_s: float = 0.25,
    sample_rate: int = TARGET_SAMPLE_RATE,
    batch_size: int = 32,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "windows",
) -> pd.DataFrame:
    """Score timeline of a long clip: one score per window of ``window_s`` seconds every ``hop_s`` s.

    ``wave`` is float32 ``[samples]`` at ``sample_rate`` (16 kHz). Windows lie inside the clip
    (no padding); a last window is aligned to the end so every sample is covered; a clip shorter
    than one window is scored whole. Returns start_s, end_s, center_s, score, prob_real; writes
    ``<name>.csv`` to ``out_dir``.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"score_windows: expected a non-empty [samples] wave, got shape {x.shape}")
    if not (window_s > 0 and hop_s > 0):
        raise ValueError(f"score_windows: window_s ({window_s}) and hop_s ({hop_s}) must be positive seconds")
    win = int(round(window_s * sample_rate))
    hop = max(1, int(round(hop_s * sample_rate)))
    spans = window_spans(x.size, win, min(hop, win))
    starts = np.array([a for a, _ in spans])
    win = spans[0][1] - spans[0][0]
    windows = [x[s : s + win] for s in starts]
    scores = score_waves(model, feature_extractor, windows, batch_size=batch_size)
    table = pd.DataFrame(
        {
            "start_s": starts / sample_rate,
            "end_s": (starts + win) / sample_rate,
            "center_s": (starts + win / 2) / sample_rate,
            "score": scores,
            "prob_real": expit(scores),
        }
    )
    folder = save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / f"{slug(name)}.csv", index=False)
    return table


def occlusion_map(
    model: Any,
    feature_extractor: Any,
    wave: np.ndarray,
    *,
    n_time_segments: int = 8,
    band_edges_hz: Sequence[float] = (0, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000),
    sample_rate: int = TARGET_SAMPLE_RATE,
    n_fft: int = 512,
    hop_length: int = 128,
    batch_size: int = 16,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "occlusion",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score change when one frequency band in one time segment is removed.

    The clip's STFT (Hann, ``n_fft``, ``hop_length``) has the bins of band ``b``
    (``band_edges_hz[b] <= f < band_edges_hz[b+1]``; the top band includes Nyquist) in the
    frames centred in time segment ``s`` (``n_time_segments`` equal segments) set to zero, and
    is inverted. Returns ``(matrix [bands, segments], band_edges_hz [bands+1],
    segment_edges_s [segments+1])`` with ``matrix = score(occluded) - score(resynthesised
    original)`` in log-odds: negative where removing the region makes the clip look less
    bona fide (the model relied on it as evidence of Real), positive where it held spoof
    evidence. Zeroing leaves a spectral hole, itself unnatural; read the map comparatively.
    All ``bands x segments`` variants are scored in batches. Writes ``<name>.json`` (matrix,
    edges and the original's score) to ``out_dir``.
    """
    x = np.asarray(wave, dtype=np.float32)
    edges = np.asarray(band_edges_hz, dtype=np.float64)
    if x.ndim != 1 or x.size < n_fft:
        raise ValueError(
            f"occlusion_map: expected a [samples] wave of at least n_fft={n_fft} samples, got shape {x.shape}"
        )
    if (
        edges.ndim != 1
        or edges.size < 2
        or np.any(np.diff(edges) <= 0)
        or edges[0] < 0
        or edges[-1] > sample_rate / 2
    ):
        raise ValueError(
            f"occlusion_map: band_edges_hz must increase within [0, {sample_rate / 2:g}] Hz, "
            f"got {list(edges)}"
        )
    if int(n_time_segments) < 1:
        raise ValueError(f"occlusion_map: n_time_segments must be >= 1, got {n_time_segments}")
    n_seg = int(n_time_segments)
    window = torch.hann_window(n_fft)
    spec = torch.stft(torch.from_numpy(x), n_fft, hop_length, window=window, center=True, return_complex=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    frame_t = np.arange(spec.shape[-1]) * hop_length / sample_rate
    duration = x.size / sample_rate
    seg_edges = np.linspace(0.0, duration, n_seg + 1)
    seg_of_frame = np.clip(np.searchsorted(seg_edges, frame_t, side="right") - 1, 0, n_seg - 1)

    def invert(s: torch.Tensor) -> np.ndarray:
        return (
            torch.istft(s, n_fft, hop_length, window=window, center=True, length=x.size)
            .numpy()
            .astype(np.float32)
        )

    variants: list[np.ndarray] = [invert(spec)]
    for b in range(edges.size - 1):
        top = b == edges.size - 2
        in_band = (freqs >= edges[b]) & ((freqs <= edges[b + 1]) if top else (freqs < edges[b + 1]))
        masks = torch.ones((n_seg, *spec.shape), dtype=torch.float32)
        for s in range(n_seg):
            masks[s][np.ix_(in_band, seg_of_frame == s)] = 0.0
        out = invert(spec.unsqueeze(0) * masks)
        variants.extend(out[s] for s in range(n_seg))
    scores = score_waves(model, feature_extractor, variants, batch_size=batch_size)
    matrix = (scores[1:] - scores[0]).reshape(edges.size - 1, n_seg)
    folder = save_dir(out_dir)
    if folder is not None:
        write_json(
            folder / f"{slug(name)}.json",
            {
                "matrix": matrix,
                "band_edges_hz": edges,
                "segment_edges_s": seg_edges,
                "original_score": float(scores[0]),
                "n_fft": n_fft,
                "hop_length": hop_length,
            },
        )
    return matrix, edges, seg_edges
