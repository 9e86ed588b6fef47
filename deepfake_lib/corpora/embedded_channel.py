"""The recording channel of the embedded corpus, applied alike to bona fide clips and spoofs: microphone colouring, small-room reverb, background noise, level and peak limiting."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal

from deepfake_lib.corpora.embedded_dsp import (
    _rms,
)

__all__ = [
    "apply_channel",
    "draw_crest",
    "draw_level",
]


# --------------------------------------------------------------------------------------------
# recording channel
# --------------------------------------------------------------------------------------------
def _peaking_sos(f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ peaking-EQ biquad as one SOS row."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / sr
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _shelf_sos(f0: float, gain_db: float, sr: int) -> np.ndarray:
    """RBJ high-shelf biquad (slope 1) as one SOS row."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / sr
    alpha = np.sin(w) / np.sqrt(2)
    c = np.cos(w)
    b = np.array(
        [
            a * ((a + 1) + (a - 1) * c + 2 * np.sqrt(a) * alpha),
            -2 * a * ((a - 1) + (a + 1) * c),
            a * ((a + 1) + (a - 1) * c - 2 * np.sqrt(a) * alpha),
        ]
    )
    den = np.array(
        [
            (a + 1) - (a - 1) * c + 2 * np.sqrt(a) * alpha,
            2 * ((a - 1) - (a + 1) * c),
            (a + 1) - (a - 1) * c - 2 * np.sqrt(a) * alpha,
        ]
    )
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _room_impulse(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Small-room impulse response: direct path plus exponentially decaying noise tail."""
    rt60 = rng.uniform(0.12, 0.45)
    length = int(min(rt60, 0.3) * sr)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail = scipy.signal.sosfilt(scipy.signal.butter(1, min(6000.0, 0.45 * sr), fs=sr, output="sos"), tail)
    pre_delay = int(rng.uniform(0.002, 0.01) * sr)
    tail[:pre_delay] = 0.0
    drr_db = rng.uniform(0.0, 12.0)
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2) + 1e-12)
    tail[0] = 1.0
    return tail


def _coloured_noise(n: int, sr: int, slope_db_oct: float, rng: np.random.Generator) -> np.ndarray:
    """Noise [n] with a spectral slope of ``slope_db_oct`` dB per octave, unit RMS."""
    m = scipy.fft.next_fast_len(n, real=True)
    spec = scipy.fft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / sr)
    spec *= (np.maximum(f, 50.0) / 1000.0) ** (slope_db_oct / (20 * np.log10(2)))
    x = scipy.fft.irfft(spec, n=m)[:n]
    return x / (np.std(x) + 1e-12)


def _limit_peaks(x: np.ndarray, ceiling: float, sr: int) -> np.ndarray:
    """Smooth look-ahead peak limiter: gain never lets |x| exceed ``ceiling`` (linear)."""
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    if need.min() >= 1.0:
        return x
    width = max(3, int(0.004 * sr))
    gain = scipy.ndimage.minimum_filter1d(need, 2 * width + 1, mode="nearest")
    gain = scipy.ndimage.uniform_filter1d(gain, width, mode="nearest")
    gain = np.minimum(gain, need)
    return x * gain


def draw_level(rng: np.random.Generator) -> float:
    """A random RMS level for a clip: uniform in [-32, -20] dBFS."""
    return float(rng.uniform(-32.0, -20.0))


def draw_crest(rng: np.random.Generator) -> float:
    """A random crest-factor cap for the channel's peak limiter: uniform in [12, 16] dB."""
    return float(rng.uniform(12.0, 16.0))


def apply_channel(
    wave: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    level_dbfs: float | None = None,
    crest_db: float | None = None,
) -> np.ndarray:
    """A random recording channel, the same distribution for both classes: [samples] float32.

    Microphone colouring (high-pass 40-150 Hz, two peaking EQs of +-6 dB between 150 Hz and
    6 kHz, a high shelf of +-5 dB at 1.5-4 kHz), a small-room reverb (RT60 0.12-0.45 s, 80 %
    of clips), background noise (slope -6..0 dB/octave, SNR 28-45 dB), then gain to an RMS of
    -32..-20 dBFS, with a smooth peak limiter that caps the crest factor at 12-16 dB (most
    speech clips of either class reach the cap, so peak level follows the same distribution).
    ``level_dbfs`` and ``crest_db`` fix the RMS level and the crest cap instead of drawing
    them (the corpus draws them once per utterance and shares them with its spoofs).
    """
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"wave: expected a non-empty mono clip [samples], got shape {x.shape}")
    n = x.shape[0]
    sr = sample_rate
    sos = [scipy.signal.butter(2, rng.uniform(40, 150), btype="highpass", fs=sr, output="sos")]
    for _ in range(2):
        sos.append(
            _peaking_sos(
                np.exp(rng.uniform(np.log(150), np.log(6000))), rng.uniform(-6, 6), rng.uniform(0.7, 2.5), sr
            )
        )
    sos.append(_shelf_sos(rng.uniform(1500, 4000), rng.uniform(-5, 5), sr))
    x = scipy.signal.sosfilt(np.concatenate(sos), x)
    if rng.random() < 0.8:
        x = scipy.signal.oaconvolve(x, _room_impulse(sr, rng))[:n]
    speech_rms = _rms(x)
    snr_db = rng.uniform(28, 45)
    x = x + _coloured_noise(n, sr, rng.uniform(-6, 0), rng) * speech_rms * 10 ** (-snr_db / 20)
    level = draw_level(rng) if level_dbfs is None else float(level_dbfs)
    crest = draw_crest(rng) if crest_db is None else float(crest_db)
    if not (-60.0 <= level <= -6.0 and 6.0 <= crest <= 30.0 and level + crest <= -0.5):
        raise ValueError(
            f"level_dbfs = {level}, crest_db = {crest}: need -60..-6 dBFS, 6..30 dB, "
            "and a peak (their sum) of at most -0.5 dBFS"
        )
    for _ in range(3):  # limiting lowers the RMS a little, so limit again after renormalising
        x = _limit_peaks(x / _rms(x), 10 ** (crest / 20), sr)
    x *= 10 ** (level / 20) / _rms(x)  # exact RMS level; crest factor at most `crest` dB (+0.05)
    return x.astype(np.float32)
