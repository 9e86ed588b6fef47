"""Cheap cues of a clip: levels, band energies, pitch statistics, shape, zero runs, silence."""

from __future__ import annotations

import numpy as np

__all__ = ["CHEAP_CUE_NAMES", "BAND_EDGES_HZ", "extract_cheap_cues", "PYIN_SETTINGS"]

BAND_EDGES_HZ: tuple[tuple[float, float], ...] = (
    (0.0, 80.0),
    (80.0, 200.0),
    (200.0, 300.0),
    (300.0, 500.0),
    (500.0, 1000.0),
    (1000.0, 2000.0),
    (2000.0, 3000.0),
    (3000.0, 3300.0),
    (3300.0, 3500.0),
    (3500.0, 4000.0),
    (4000.0, 8000.0),
)
CHEAP_CUE_NAMES: tuple[str, ...] = (
    "duration_s",
    "rms_dbfs",
    "peak_dbfs",
    "crest_db",
    "leading_silence_s",
    "trailing_silence_s",
    "silence_fraction",
    "zero_crossing_rate",
    "kurtosis",
    "skewness",
    "longest_zero_run_s",
    "zero_fraction",
    "spectral_flatness",
    *(f"band_{int(lo)}_{int(hi)}_db" for lo, hi in BAND_EDGES_HZ),
    "f0_median_hz",
    "f0_spread_st",
    "f0_p10_hz",
    "f0_p90_hz",
    "voiced_fraction",
)
PYIN_SETTINGS: dict[str, float] = {
    "fmin": 60.0,
    "fmax": 400.0,
    "frame_length": 512,
    "hop_length": 320,
    "resolution": 0.25,
}
"""librosa.pyin settings of the pitch cues (at 8 kHz). Its Viterbi decoding costs (pitch bins x 2)^2
per frame: 0.1-semitone bins every 20 ms (the librosa defaults used until the cues became the
shortcut control) took about 200 ms a 4 s clip; quarter-semitone bins every 40 ms take about 30 ms,
with the same pitch range, statistics and voicing decision."""


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int(np.max(edges[1::2] - edges[::2]))


def extract_cheap_cues(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The :data:`CHEAP_CUE_NAMES` of one clip [samples] at ``sample_rate`` Hz.

    Levels in dBFS, durations in s, band energies in dB relative to the clip's total power,
    pitch (librosa pYIN, 60-400 Hz, on the clip at 8 kHz, 64 ms frames every 40 ms, quarter-semitone
    bins) in Hz and semitones; the silence fraction counts 20 ms frames more than 30 dB below the
    loudest. About 40 ms of CPU for a 4 s clip, most of it pYIN (:data:`PYIN_SETTINGS`).
    """
    import librosa
    from scipy.stats import kurtosis, skew

    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1 or x.size < sample_rate // 10:
        raise ValueError(f"wave: need a mono clip of at least 0.1 s, got shape {x.shape}")
    frame = max(1, int(0.02 * sample_rate))
    n = len(x) // frame
    frame_db = 10 * np.log10(np.maximum(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1), 1e-20))
    loud = np.flatnonzero(frame_db >= frame_db.max() - 30.0)
    rms = float(np.sqrt(np.mean(x**2)))
    peak = float(np.max(np.abs(x)))
    cues = {
        "duration_s": len(x) / sample_rate,
        "rms_dbfs": 20 * np.log10(max(rms, 1e-10)),
        "peak_dbfs": 20 * np.log10(max(peak, 1e-10)),
        "crest_db": 20 * np.log10(max(peak, 1e-10) / max(rms, 1e-10)),
        "leading_silence_s": int(loud[0]) * frame / sample_rate,
        "trailing_silence_s": (n - 1 - int(loud[-1])) * frame / sample_rate,
        "silence_fraction": float(np.mean(frame_db < frame_db.max() - 30.0)),
        "zero_crossing_rate": float(np.mean(np.abs(np.diff(np.signbit(x).astype(np.int8))))),
        "kurtosis": float(kurtosis(x)),
        "skewness": float(skew(x)),
        "longest_zero_run_s": _longest_run(x == 0.0) / sample_rate,
        "zero_fraction": float(np.mean(x == 0.0)),
    }
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=160)) ** 2
    cues["spectral_flatness"] = float(np.mean(librosa.feature.spectral_flatness(S=power)))
    spectrum = power.sum(axis=1)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=512)
    total = float(spectrum.sum()) + 1e-30
    for lo, hi in BAND_EDGES_HZ:
        band = float(spectrum[(freqs >= lo) & (freqs < hi)].sum())
        cues[f"band_{int(lo)}_{int(hi)}_db"] = 10 * np.log10(band / total + 1e-15)
    x8 = librosa.resample(x, orig_sr=sample_rate, target_sr=8000, res_type="polyphase")
    f0, voiced, _ = librosa.pyin(x8, sr=8000, **PYIN_SETTINGS)
    f0 = f0[voiced & np.isfinite(f0)]
    if f0.size < 3:
        f0 = np.array([100.0, 100.0, 100.0])
    cues.update(
        f0_median_hz=float(np.median(f0)),
        f0_spread_st=float(np.std(12 * np.log2(f0 / np.median(f0)))),
        f0_p10_hz=float(np.percentile(f0, 10)),
        f0_p90_hz=float(np.percentile(f0, 90)),
        voiced_fraction=float(np.mean(voiced)),
    )
    return cues
