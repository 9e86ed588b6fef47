"""The channel every clip of the real-speech corpus goes through, bona fide and spoofed alike.

One chain, in this order (:func:`condition_clip`):

1. resample to :data:`CHANNEL_RATE` (8 kHz, polyphase);
2. band-pass :data:`BAND_HZ` (300-3300 Hz) with a linear-phase Kaiser FIR that is down about 75 dB
   20 Hz outside each edge. Both edges sit inside every source's own filters: the recordings were
   low-cut at production (about -49 dB at 80-100 Hz), and the generators' resampling round trips
   (8 kHz to their rate and back) start to attenuate only above 3.3 kHz (-0.3 dB at 3.4-3.5 kHz,
   -3.9 dB at 3.7-3.9 kHz). So neither the low band nor the 3.3-4 kHz band carries anything but
   the noise floor of step 5, whichever path a clip took;
3. trim leading and trailing silence and scale the active speech to :data:`TARGET_LEVEL_DBFS`;
4. a GSM 06.10 full-rate encode/decode round trip (libsndfile): two bona fide prompt sets ship
   only GSM-coded, so every clip carries the codec once more, then the band-pass and the level
   again (the codec leaks a little out of band);
5. a shared noise floor, white up to 4 kHz at :data:`NOISE_FLOOR_DBFS` from a per-clip seed, so no
   class has exact digital silence (Piper's pauses were runs of exact zeros);
6. resample to :data:`SAMPLE_RATE` (16 kHz); 16-bit quantisation happens when the WAV is written.
"""

from __future__ import annotations

import functools
import io

import numpy as np

from deepfake_lib.corpora import spoof_generators as spoof_methods

__all__ = [
    "BAND_HZ",
    "CHANNEL_RATE",
    "NOISE_FLOOR_DBFS",
    "SAMPLE_RATE",
    "TARGET_LEVEL_DBFS",
    "TRIM_MARGIN_S",
    "TRIM_TOP_DB",
    "band_pass",
    "condition_clip",
    "gsm_round_trip",
    "read_gsm",
    "trim_and_level",
]

SAMPLE_RATE = 16_000
"""Rate (Hz) of every clip in the corpus."""

CHANNEL_RATE = 8_000
"""Telephone rate (Hz) every clip passes through: the bona fide recordings' own rate."""

BAND_HZ = (300.0, 3300.0)
"""Pass band (Hz) applied to every clip at 8 kHz: inside every source's own filters."""

FIR_TAPS = 1023
"""Length of the band-pass FIR at 8 kHz (about 20 Hz transition bands, Kaiser beta 8)."""

TARGET_LEVEL_DBFS = -23.0
"""Active-speech RMS level (dBFS) of every clip."""

NOISE_FLOOR_DBFS = -66.0
"""RMS (dBFS) of the white noise floor added to every clip at 8 kHz (43 dB below the speech)."""

TRIM_TOP_DB = 40.0
"""10 ms frames more than this many dB below the loudest frame count as silence (trim, level)."""

TRIM_MARGIN_S = 0.03
"""Signal kept on either side of the first and last active frame (s)."""


def _frame_db(wave: np.ndarray, frame: int) -> np.ndarray:
    n = len(wave) // frame
    if n == 0:
        return np.array([20 * np.log10(max(float(np.sqrt(np.mean(np.square(wave)))), 1e-10))])
    power = np.mean(np.square(wave[: n * frame].reshape(n, frame)), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-20))


@functools.lru_cache(maxsize=4)
def _band_fir(band: tuple[float, float], rate: int, taps: int) -> np.ndarray:
    from scipy.signal import firwin

    return firwin(taps, list(band), pass_zero=False, fs=rate, window=("kaiser", 8.0))


def band_pass(wave_8k: np.ndarray, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """Linear-phase FIR band-pass of an 8 kHz clip, delay compensated: [samples] -> [samples] float64."""
    from scipy.signal import fftconvolve

    x = np.asarray(wave_8k, dtype=np.float64)
    h = _band_fir(tuple(float(b) for b in band), CHANNEL_RATE, FIR_TAPS)
    delay = (len(h) - 1) // 2
    return fftconvolve(x, h, mode="full")[delay : delay + len(x)]


def trim_and_level(wave: np.ndarray, rate: int, *, trim: bool = True) -> np.ndarray:
    """Scale the active frames' RMS to :data:`TARGET_LEVEL_DBFS`: [samples] -> float64.

    Active frames are 10 ms frames within :data:`TRIM_TOP_DB` of the loudest. With ``trim``,
    leading and trailing inactive frames go first (keeping :data:`TRIM_MARGIN_S`). The gain is
    lowered if the peak would pass -1 dBFS.
    """
    x = np.asarray(wave, dtype=np.float64)
    frame = max(1, rate // 100)
    db = _frame_db(x, frame)
    active = np.flatnonzero(db >= db.max() - TRIM_TOP_DB)
    if trim:
        margin = int(TRIM_MARGIN_S * rate)
        start = max(0, int(active[0]) * frame - margin)
        stop = min(len(x), (int(active[-1]) + 1) * frame + margin)
        x = x[start:stop]
    gain = 10 ** (TARGET_LEVEL_DBFS / 20) / np.sqrt(max(float(np.mean(10 ** (db[active] / 10))), 1e-20))
    peak = float(np.max(np.abs(x))) * gain
    if peak > 10 ** (-1 / 20):
        gain *= 10 ** (-1 / 20) / peak
    return x * gain


def gsm_round_trip(wave_8k: np.ndarray) -> np.ndarray:
    """GSM 06.10 full-rate encode and decode of an 8 kHz clip (libsndfile): [samples] -> float64."""
    import soundfile as sf

    x = np.clip(np.asarray(wave_8k, dtype=np.float64), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, CHANNEL_RATE, format="RAW", subtype="GSM610")
    buf.seek(0)
    y, _ = sf.read(buf, format="RAW", subtype="GSM610", samplerate=CHANNEL_RATE, channels=1, dtype="float64")
    out = np.zeros(len(x))
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def read_gsm(path: str) -> tuple[np.ndarray, int]:
    """Decode a raw GSM 06.10 file (Asterisk ``.gsm``: 33-byte frames, 8 kHz): ([samples] float32, 8000)."""
    import soundfile as sf

    try:
        wave, _ = sf.read(
            path, format="RAW", subtype="GSM610", samplerate=CHANNEL_RATE, channels=1, dtype="float32"
        )
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ValueError(f"{path}: not a raw GSM 06.10 file ({exc})") from exc
    if wave.size == 0:
        raise ValueError(f"{path}: empty GSM file")
    return wave, CHANNEL_RATE


def condition_clip(wave: np.ndarray, sample_rate: int, *, seed: int = 0) -> np.ndarray:
    """The whole chain (module docstring) for one clip: [samples] at ``sample_rate`` Hz -> float32 at 16 kHz.

    ``seed`` draws the clip's noise floor (the builder derives it from the clip id).
    """
    x = spoof_methods.resample_wave(np.asarray(wave, dtype=np.float64), sample_rate, CHANNEL_RATE)
    x = trim_and_level(band_pass(x), CHANNEL_RATE)
    x = trim_and_level(band_pass(gsm_round_trip(x)), CHANNEL_RATE, trim=False)
    x = x + np.random.default_rng(seed).standard_normal(len(x)) * 10 ** (NOISE_FLOOR_DBFS / 20)
    return spoof_methods.resample_wave(x, CHANNEL_RATE, SAMPLE_RATE).astype(np.float32)
