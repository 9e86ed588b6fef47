"""Bona fide clips of the embedded corpus: a glottal source with pitch contour, jitter, shimmer and breath noise through time-varying formant filters moving between phone targets, with fricatives, stops and pauses."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch

from deepfake_lib.audio.signal import resample
from deepfake_lib.corpora.embedded_dsp import (
    _HOP,
    _N_FFT,
    _SR,
    _WIN,
    _fit_length,
    _interp_frames,
    _istft,
    _min_phase,
    _rms,
    _smooth,
    _stft,
)

__all__ = [
    "synthesize_bonafide",
]

# --------------------------------------------------------------------------------------------
# bona fide speech
# --------------------------------------------------------------------------------------------
# Vowel formant targets F1-F3 (Hz) of an adult male voice (Peterson & Barney style).
_VOWELS = np.array(
    [
        [270, 2290, 3010],
        [390, 1990, 2550],
        [530, 1840, 2480],
        [660, 1720, 2410],
        [730, 1090, 2440],
        [570, 840, 2410],
        [440, 1020, 2240],
        [300, 870, 2240],
        [640, 1190, 2390],
        [490, 1350, 1690],
    ],
    dtype=np.float64,
)

# Voiced consonants (nasals m n, approximants l r w j): F1-F3 and a level in dB.
_SONORANTS = np.array(
    [
        [280, 1100, 2300, -9.0],
        [280, 1500, 2500, -9.0],
        [360, 1300, 2700, -4.0],
        [420, 1300, 1600, -4.0],
        [300, 700, 2200, -5.0],
        [280, 2200, 2900, -5.0],
    ],
    dtype=np.float64,
)

# Fricatives: noise centre (Hz), log2-width (octaves), level dB, voiced?
_FRICATIVES = [
    (6500.0, 0.55, -6.0, False),  # s
    (3300.0, 0.50, -5.0, False),  # sh
    (5000.0, 1.80, -16.0, False),  # f
    (4500.0, 1.60, -17.0, False),  # th
    (6500.0, 0.55, -9.0, True),  # z
    (5000.0, 1.80, -18.0, True),  # v
]

# Stops: burst centre (Hz), log2-width, voiced?
_STOPS = [
    (1200.0, 1.50, False),
    (4500.0, 0.80, False),
    (2300.0, 0.70, False),  # p t k
    (1200.0, 1.50, True),
    (4500.0, 0.80, True),
    (2300.0, 0.70, True),  # b d g
]


@dataclasses.dataclass
class _Tracks:
    """Control tracks at the 10 ms frame rate (frames along axis 0)."""

    formants: np.ndarray  # [frames, 5] Hz
    bandwidths: np.ndarray  # [frames, 5] Hz
    voicing: np.ndarray  # [frames] amplitude of the glottal source
    aspiration: np.ndarray  # [frames] noise amplitude through the formant filter (h, stop release)
    frication: np.ndarray  # [frames] amplitude of the frication noise
    fric_centre: np.ndarray  # [frames] Hz
    fric_width: np.ndarray  # [frames] octaves
    stress: np.ndarray  # [frames] 1 at accented vowels, else 0 (for the pitch contour)
    phrase: np.ndarray  # [frames] position within the phrase, 0..1 (declination)


def _plan_utterance(rng: np.random.Generator, n_frames: int, vtl: float, rate: float) -> _Tracks:
    """Phone sequence -> control tracks: formant targets, source amplitudes, frication shape.

    Long because one pass walks the phone sequence and draws every track in order from one
    generator: split into steps, the same draws would have to pass a dozen arrays between them
    and any reordering would change every corpus (its files are cached by generator version)."""
    f_targets = np.zeros((n_frames, 3))
    voicing = np.zeros(n_frames)
    aspiration = np.zeros(n_frames)
    frication = np.zeros(n_frames)
    fric_centre = np.full(n_frames, 5000.0)
    fric_width = np.ones(n_frames)
    stress = np.zeros(n_frames)
    phrase = np.zeros(n_frames)
    ms = 1000.0 * _HOP / _SR  # milliseconds per frame

    def frames(lo_ms: float, hi_ms: float) -> int:
        return max(1, int(round(rng.uniform(lo_ms, hi_ms) * rate / ms)))

    pos = frames(20, 120)
    phrase_start = pos
    phrase_len = int(rng.uniform(1.2, 2.6) * 1000 / ms)
    vowel = _VOWELS[rng.integers(len(_VOWELS))]
    f_targets[:pos] = vowel
    while pos < n_frames:
        nxt = _VOWELS[rng.integers(len(_VOWELS))]  # the syllable's vowel
        # onset: up to two consonants, with transitions from the last vowel towards the next
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            kind = rng.choice(["sonorant", "fricative", "stop"], p=[0.35, 0.3, 0.35])
            if kind == "sonorant":
                s = _SONORANTS[rng.integers(len(_SONORANTS))]
                k = frames(40, 80)
                sl = slice(pos, pos + k)
                f_targets[sl] = s[:3]
                voicing[sl] = 10 ** (s[3] / 20)
            elif kind == "fricative":
                fc, width, level, voiced = _FRICATIVES[rng.integers(len(_FRICATIVES))]
                k = frames(70, 140)
                sl = slice(pos, pos + k)
                f_targets[sl] = 0.5 * (vowel + nxt)
                frication[sl] = 10 ** (level / 20)
                fric_centre[sl] = fc * rng.uniform(0.9, 1.1)
                fric_width[sl] = width
                voicing[sl] = 0.3 if voiced else 0.0
            else:
                fc, width, voiced = _STOPS[rng.integers(len(_STOPS))]
                closure = frames(40, 80)
                sl = slice(pos, pos + closure)
                f_targets[sl] = 0.7 * nxt + 0.3 * np.array([250.0, 1500.0, 2500.0])
                voicing[sl] = 0.08 if voiced else 0.0  # voice bar
                p = pos + closure
                burst = max(1, int(round(8 / ms)))
                frication[p : p + burst] = 10 ** (-4 / 20)
                fric_centre[p : p + burst] = fc
                fric_width[p : p + burst] = width
                if not voiced:
                    asp = frames(25, 55)
                    aspiration[p + burst : p + burst + asp] = 10 ** (-14 / 20)
                    f_targets[p + burst : p + burst + asp] = nxt
                    k = closure + burst + asp
                else:
                    k = closure + burst
            pos += k
        # nucleus
        vowel = nxt
        k = frames(70, 200)
        sl = slice(pos, pos + k)
        f_targets[sl] = vowel
        level = rng.uniform(-4.0, 0.0)
        voicing[sl] = 10 ** (level / 20)
        if rng.random() < 0.45:
            stress[pos + k // 3 : pos + 2 * k // 3] = 1.0
        pos += k
        # optional coda nasal
        if rng.random() < 0.3:
            s = _SONORANTS[rng.integers(2)]
            k = frames(40, 80)
            f_targets[pos : pos + k] = s[:3]
            voicing[pos : pos + k] = 10 ** (s[3] / 20)
            pos += k
        # phrase boundary: a short pause
        if pos - phrase_start > phrase_len:
            phrase[phrase_start:pos] = np.linspace(0.0, 1.0, max(0, min(pos, n_frames) - phrase_start))
            k = frames(80, 260)
            f_targets[pos : pos + k] = vowel
            pos += k
            phrase_start = pos
            phrase_len = int(rng.uniform(1.2, 2.6) * 1000 / ms)
    end = min(pos, n_frames)
    if end > phrase_start:
        phrase[phrase_start:end] = np.linspace(0.0, 1.0, end - phrase_start)
    # fade the last 30-80 ms into silence so the clip ends cleanly
    tail = frames(30, 80)
    fade = np.linspace(1.0, 0.0, min(tail, n_frames))
    for arr in (voicing, aspiration, frication):
        arr[-len(fade) :] *= fade

    f_targets = _smooth(f_targets * vtl, 2.0)  # coarticulation: ~20 ms transitions
    f4 = 3500.0 * vtl * (1 + 0.03 * rng.standard_normal())
    f5 = 4500.0 * vtl * (1 + 0.03 * rng.standard_normal())
    formants = np.concatenate([f_targets, np.full((n_frames, 1), f4), np.full((n_frames, 1), f5)], axis=1)
    formants = np.minimum(formants, 0.46 * _SR * np.array([0.35, 0.5, 0.7, 0.85, 0.97]))
    bw = np.array([60.0, 90.0, 130.0, 200.0, 300.0]) * rng.uniform(0.8, 1.3, size=5)
    bandwidths = np.broadcast_to(bw, formants.shape) * (1 + 0.25 * (formants[:, :1] < 350))
    return _Tracks(
        formants=formants,
        bandwidths=np.ascontiguousarray(bandwidths),
        voicing=_smooth(voicing, 0.8),
        aspiration=_smooth(aspiration, 0.8),
        frication=_smooth(frication, 0.5),
        fric_centre=fric_centre,
        fric_width=fric_width,
        stress=_smooth(stress, 6.0),
        phrase=phrase,
    )


def _formant_log_envelope(formants: np.ndarray, bandwidths: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Natural-log magnitude [frames, bins] of a cascade of two-pole resonators (unit gain at DC)."""
    f = freqs.astype(np.float32)[None, :, None]
    fc = formants.astype(np.float32)[:, None, :]
    b2 = (0.5 * bandwidths.astype(np.float32)[:, None, :]) ** 2
    ratio = (fc * fc + b2) ** 2 / (((f - fc) ** 2 + b2) * ((f + fc) ** 2 + b2))
    return 0.5 * np.log(ratio.prod(axis=-1, dtype=np.float64))


def _glottal_source(
    rng: np.random.Generator, f0: np.ndarray, sr: int, oq: float, ta: float, jitter: float, shimmer: float
) -> tuple[np.ndarray, np.ndarray]:
    """Glottal flow derivative [samples] for the pitch track ``f0`` [samples] (Hz).

    Per-cycle jitter and shimmer (relative standard deviations); KLGLOTT88-style open phase
    (open quotient ``oq``) with an exponential return phase (``ta``, fraction of a period).
    Also returns the open-phase indicator [samples] used to pulse the breath noise.
    """
    phase = np.cumsum(f0 / sr)
    n_cycles = int(phase[-1]) + 2
    jit = 1.0 + jitter * rng.standard_normal(n_cycles)
    phase = np.cumsum(f0 * jit[phase.astype(np.int64)] / sr)
    cycle = phase.astype(np.int64)
    frac = phase - cycle
    amp = np.maximum(0.2, 1.0 + shimmer * rng.standard_normal(n_cycles + 64))
    amp = amp[np.minimum(cycle, amp.shape[0] - 1)]
    x = frac / oq
    opening = 2.0 * x - 3.0 * x * x
    closing = -np.exp(-(frac - oq) / ta)
    src = np.where(frac < oq, opening, closing) * amp
    return src.astype(np.float32), (frac < oq).astype(np.float32)


def _synthesize_speech_band(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speech band at 16 kHz: returns (wave [n], frication track, voicing track) (tracks per frame)."""
    n_frames = n // _HOP + 1
    female = rng.random() < 0.5
    vtl = rng.uniform(1.12, 1.25) if female else rng.uniform(0.92, 1.05)
    f0_base = rng.uniform(170, 240) if female else rng.uniform(90, 140)
    tracks = _plan_utterance(rng, n_frames, vtl, rate=rng.uniform(0.85, 1.2))

    # pitch: declination over each phrase, accents on stressed vowels, slow drift
    drift = _smooth(rng.standard_normal(n_frames), 12.0)
    drift /= np.std(drift) + 1e-9
    f0_frames = (
        f0_base
        * (1.12 - 0.2 * tracks.phrase)
        * (1 + rng.uniform(0.12, 0.3) * tracks.stress)
        * (1 + 0.04 * drift)
    )
    f0 = _interp_frames(f0_frames, n, _HOP).astype(np.float64)
    src, open_phase = _glottal_source(
        rng,
        f0,
        _SR,
        oq=rng.uniform(0.5, 0.7),
        ta=rng.uniform(0.02, 0.05),
        jitter=rng.uniform(0.006, 0.015),
        shimmer=rng.uniform(0.04, 0.09),
    )
    breath = 10 ** (rng.uniform(-30, -20) / 20)
    noise_a = rng.standard_normal(n).astype(np.float32)
    noise_f = rng.standard_normal(n).astype(np.float32)
    av = _interp_frames(tracks.voicing, n, _HOP)
    ah = _interp_frames(tracks.aspiration, n, _HOP)
    an = _interp_frames(tracks.frication, n, _HOP)
    pulsed = 0.35 + 0.65 * np.convolve(open_phase, np.ones(8, np.float32) / 8, mode="same")
    voiced_path = av * src + (ah + breath * av * pulsed) * noise_a

    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / _SR)
    log_env = _formant_log_envelope(tracks.formants, tracks.bandwidths, freqs)
    tilt_fc = rng.uniform(1500, 4000)
    log_env += -0.5 * np.log1p((freqs / tilt_fc) ** 2)[None, :]  # extra source tilt
    log_env += np.log((freqs**2 + 1e-3) / (freqs**2 + 60.0**2))[None, :]  # DC block
    h_voiced = torch.from_numpy(_min_phase(log_env, _N_FFT))
    logf = np.log2(np.maximum(freqs, 50.0))[None, :]
    fric_log = (
        -0.5 * ((logf - np.log2(tracks.fric_centre)[:, None]) / (0.5 * tracks.fric_width[:, None])) ** 2
    )
    fric_log = np.maximum(fric_log, -6.0)  # keep a broadband floor
    h_fric = torch.from_numpy(np.exp(fric_log).astype(np.float32))

    spec = (
        _stft(voiced_path, _N_FFT, _HOP, _WIN) * h_voiced + _stft(an * noise_f, _N_FFT, _HOP, _WIN) * h_fric
    )
    wave = _istft(spec, _N_FFT, _HOP, _WIN, n)
    return wave, tracks.frication, tracks.voicing


def synthesize_bonafide(rng: np.random.Generator, sample_rate: int, duration_s: float) -> np.ndarray:
    """A speech-like clip before the recording channel: [round(duration_s * sample_rate)] float32.

    The speech band (below 8 kHz) is synthesised at 16 kHz and resampled; above 8 kHz
    (22.05 and 44.1 kHz clips) a fricative and breath high band is added at the native rate.
    Level: RMS about -20 dBFS.
    """
    if sample_rate < _SR:
        raise ValueError(f"sample_rate = {sample_rate} Hz: must be at least {_SR} Hz")
    if not duration_s > 0:
        raise ValueError(f"duration_s = {duration_s!r}: must be positive")
    n = int(round(duration_s * sample_rate))
    n16 = int(math.ceil(n * _SR / sample_rate))
    band, fric, voicing = _synthesize_speech_band(rng, n16)
    band *= 0.1 / _rms(band)
    if sample_rate == _SR:
        return band[:n].astype(np.float32)
    wave = _fit_length(resample(band, _SR, sample_rate), n).astype(np.float64)
    # high band (8.2 kHz up to 16 kHz or 0.45 x the rate): frication noise, a little breath
    high = scipy.signal.sosfilt(_high_band_sos(sample_rate), rng.standard_normal(n))
    env = np.interp(
        np.arange(n) * (_SR / sample_rate) / _HOP, np.arange(fric.shape[0]), fric + 0.03 * voicing
    )
    high *= env * (1.6 * _rms(band) * 10 ** (rng.uniform(-10, -4) / 20))
    return (wave + high).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _high_band_sos(sample_rate: int) -> np.ndarray:
    """Band-pass (8.2 kHz to min(16 kHz, 0.45 x rate)) for the high band, as SOS."""
    return scipy.signal.butter(
        6, [8200.0, min(16000.0, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos"
    )
