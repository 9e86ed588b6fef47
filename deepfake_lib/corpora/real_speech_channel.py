"""The common channel of the real-speech corpus and the cheap cues it must neutralise: conditioning of every clip alike, per-clip cue measurements, single-cue EERs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepfake_lib.corpora import spoof_generators as spoof_methods

__all__ = [
    "BAND_HZ",
    "CHANNEL_RATE",
    "condition_clip",
    "CUE_NAMES",
    "measure_clip_cues",
    "SAMPLE_RATE",
    "shortcut_eers",
    "TARGET_LEVEL_DBFS",
    "TRIM_MARGIN_S",
    "TRIM_TOP_DB",
    "two_sided_eer",
]

SAMPLE_RATE = 16_000
"""Rate (Hz) of every clip in the corpus."""

CHANNEL_RATE = 8_000
"""Telephone rate (Hz) every clip passes through: the bona fide recordings' own rate."""

BAND_HZ = (80.0, 3800.0)
"""Pass band (Hz) applied to every clip at 8 kHz."""

TARGET_LEVEL_DBFS = -23.0
"""Active-speech RMS level (dBFS) of every clip."""

TRIM_TOP_DB = 40.0
"""10 ms frames more than this many dB below the loudest frame count as silence (trim, level)."""

TRIM_MARGIN_S = 0.03
"""Signal kept on either side of the first and last active frame (s)."""


# --------------------------------------------------------------------------------------------
# the common channel and the cues it neutralises
# --------------------------------------------------------------------------------------------
def _frame_db(wave: np.ndarray, frame: int) -> np.ndarray:
    n = len(wave) // frame
    if n == 0:
        return np.array([20 * np.log10(max(float(np.sqrt(np.mean(np.square(wave)))), 1e-10))])
    power = np.mean(np.square(wave[: n * frame].reshape(n, frame)), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-20))


def condition_clip(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The channel every clip of both classes goes through: [samples] float32 at 16 kHz.

    Resample to 8 kHz, band-pass :data:`BAND_HZ` (8th-order Butterworth, zero phase), resample
    to 16 kHz and low-pass again at the band edge (removes the resampler's images), trim leading and trailing silence (10 ms frames :data:`TRIM_TOP_DB` below the
    loudest, keeping :data:`TRIM_MARGIN_S`), scale the active frames' RMS to
    :data:`TARGET_LEVEL_DBFS` (lowered if the peak would pass -1 dBFS).
    """
    from scipy.signal import butter, sosfiltfilt

    x = spoof_methods.resample_wave(np.asarray(wave, dtype=np.float64), sample_rate, CHANNEL_RATE)
    sos = butter(8, BAND_HZ, btype="bandpass", fs=CHANNEL_RATE, output="sos")
    x = spoof_methods.resample_wave(sosfiltfilt(sos, x), CHANNEL_RATE, SAMPLE_RATE)
    x = sosfiltfilt(
        butter(10, BAND_HZ[1], btype="lowpass", fs=SAMPLE_RATE, output="sos"), x
    )  # resampling images
    frame = SAMPLE_RATE // 100
    db = _frame_db(x, frame)
    active = np.flatnonzero(db >= db.max() - TRIM_TOP_DB)
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start = max(0, int(active[0]) * frame - margin)
    stop = min(len(x), (int(active[-1]) + 1) * frame + margin)
    x = x[start:stop]
    active_power = np.mean(10 ** (db[active] / 10))
    gain = 10 ** (TARGET_LEVEL_DBFS / 20) / np.sqrt(max(active_power, 1e-20))
    peak = float(np.max(np.abs(x))) * gain
    if peak > 10 ** (-1 / 20):
        gain *= 10 ** (-1 / 20) / peak
    return (x * gain).astype(np.float32)


CUE_NAMES: tuple[str, ...] = (
    "duration_s",
    "rms_dbfs",
    "leading_silence_s",
    "trailing_silence_s",
    "sample_rate",
    "energy_above_4khz_db",
)
"""Cues that must not separate the classes: :func:`measure_clip_cues`' keys."""


def measure_clip_cues(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Non-speech cues of one clip, measured differently from :func:`condition_clip`'s rules.

    duration (s); RMS of the whole clip (dBFS); leading and trailing silence (s: 20 ms frames
    more than 30 dB below the loudest); sample rate (Hz); energy above 4 kHz relative to the
    whole clip's (dB, from the power spectrum).
    """
    x = np.asarray(wave, dtype=np.float64)
    frame = max(1, int(0.02 * sample_rate))
    db = _frame_db(x, frame)
    loud = np.flatnonzero(db >= db.max() - 30.0)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    high = float(spectrum[freqs > 4000].sum())
    return {
        "duration_s": len(x) / sample_rate,
        "rms_dbfs": 20 * np.log10(max(float(np.sqrt(np.mean(x**2))), 1e-10)),
        "leading_silence_s": int(loud[0]) * frame / sample_rate,
        "trailing_silence_s": (len(db) - 1 - int(loud[-1])) * frame / sample_rate,
        "sample_rate": float(sample_rate),
        "energy_above_4khz_db": 10 * np.log10(max(high, 1e-30) / max(float(spectrum.sum()), 1e-30)),
    }


def two_sided_eer(labels: np.ndarray, values: np.ndarray) -> float:
    """EER of a single feature used in whichever direction separates better (0.5 for a constant)."""
    from deepfake_lib.evaluation.error_rates import compute_eer

    v = np.asarray(values, dtype=np.float64)
    if np.ptp(v) == 0:
        return 0.5
    return float(min(compute_eer(labels, v).eer, compute_eer(labels, -v).eer))


def shortcut_eers(
    labels: Sequence[int], cues: Sequence[dict[str, float]], *, n_permutations: int = 200, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per cue: its two-sided EER and the label-permutation null's 1% quantile and median.

    A cue whose EER lies inside the null (EER >= the 1% quantile) separates the classes no
    better than a random feature would on this many clips: that is the sample-size band.
    """
    y = np.asarray(labels, dtype=int)
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(y) for _ in range(n_permutations)]
    out = {}
    for name in CUE_NAMES:
        v = np.array([c[name] for c in cues])
        null = (
            np.array([two_sided_eer(p, v) for p in perms]) if np.ptp(v) > 0 else np.full(n_permutations, 0.5)
        )
        out[name] = {
            "eer": two_sided_eer(y, v),
            "null_q01": float(np.quantile(null, 0.01)),
            "null_median": float(np.median(null)),
        }
    return out
