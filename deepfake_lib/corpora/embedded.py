"""The embedded corpus: procedurally synthesised speech and vocoder-style spoofs of it.

This is the offline stand-in for ``Hemg/Deepfake-Audio-Dataset``. It is written in the same
parquet schema (``audio`` = ``{"bytes", "path"}``, ``label`` = ClassLabel ``["Fake", "Real"]``)
plus the metadata columns ``utterance_id``, ``attack``, ``sample_rate`` and ``duration``.

Pipeline, per utterance:

1. :func:`synthesize_bonafide` makes a speech-like clip: a glottal source (pitch contour,
   jitter, shimmer, breath noise) through time-varying formant filters moving between phone
   targets, with fricatives, stops and pauses. The speech band (below 8 kHz) is synthesised
   at 16 kHz; for 22.05 and 44.1 kHz clips a fricative high band is added at the native rate.
2. :func:`spoof_utterance` resynthesises the same clip with one of :data:`ATTACKS`. Every
   attack works on the band below 8 kHz (the clip is resampled to 16 kHz, attacked and
   resampled back; the clean band above 8 kHz is kept), so every artefact survives the
   resampling to 16 kHz that every model applies, and nothing above 8 kHz tells the classes
   apart.
3. :func:`apply_channel` passes bona fide clips and spoofs alike through a random recording
   channel (microphone colouring, small-room reverb, background noise) and sets the level to
   a random RMS with a peak limiter, so that duration, loudness, peak level and sample rate
   do not separate the classes; a spectral-tilt post-filter on each spoof keeps the
   zero-crossing rate a weak cue.

Strength at the default difficulty 0.5 was calibrated so that a tiny wav2vec2 trained from
scratch for about two minutes on two CPU cores learns every attack (the artefacts change the
spectrum below 4.5 kHz in every voiced frame, where a raw-waveform model sees them first),
while a logistic regression on trivial features stays near chance.

Filtering is vectorised: time-varying filters are applied frame-wise in the STFT domain
(short-time Fourier transform, multiply, overlap-add), fixed filters with ``sosfilt`` or FFT
convolution over the whole signal.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch
import torchaudio

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.io import encode_audio, resample
from deepfake_lib.runs import torch_threads

GENERATOR_VERSION: int = 2
"""Bumped whenever the generator's output changes; part of :func:`corpus_filename`, so
cached corpora from older generators are never reused."""

ATTACKS: dict[str, str] = {
    "A01": "Griffin-Lim phase reconstruction from an over-smoothed, low-resolution mel spectrogram",
    "A02": "band-limited LPC vocoder: too-regular pulse excitation, no aspiration, over-wide formants",
    "A03": "neural-vocoder upsampler without anti-imaging filter: 0-2 kHz mirrored into 2-4 kHz",
    "A04": "transposed-convolution upsampler: checkerboard artefact, tonal lines at multiples of 1 kHz",
}
"""Attack id -> short description. Bona fide rows have attack ``"bonafide"``."""

BONAFIDE: str = "bonafide"
"""The ``attack`` value of bona fide rows."""

SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 44100)
"""Native sample rates (Hz) drawn per utterance; both classes share each utterance's rate."""

_SR: int = TARGET_SAMPLE_RATE  # rate (Hz) of the speech band and of every attack
_HOP: int = 160  # control-frame and synthesis hop at 16 kHz: 10 ms
_N_FFT: int = 512  # synthesis FFT size at 16 kHz (32 ms, zero-padded 20 ms window)
_WIN: int = 320


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Size, difficulty and seed of the embedded corpus.

    ``n_utterances`` utterances each give one bona fide clip and ``spoofs_per_utterance``
    spoofs (attacks assigned round-robin, so balanced across :data:`ATTACKS`).
    ``difficulty`` runs from 0 (blatant artefacts) to 1 (faint ones). Durations in seconds.
    """

    n_utterances: int = 300
    spoofs_per_utterance: int = 1
    difficulty: float = 0.5
    seed: int = 0
    min_duration_s: float = 1.5
    max_duration_s: float = 6.0

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, why: str) -> None:
            if not ok:
                raise ValueError(f"CorpusConfig.{field} = {getattr(self, field)!r}: {why}")

        for name in ("n_utterances", "spoofs_per_utterance", "seed"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, np.integer)) and not isinstance(value, bool),
                name,
                "must be an integer",
            )
        for name in ("difficulty", "min_duration_s", "max_duration_s"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, float, np.number))
                and not isinstance(value, bool)
                and math.isfinite(value),
                name,
                "must be a finite number",
            )
        need(self.n_utterances >= 1, "n_utterances", "must be at least 1")
        need(self.spoofs_per_utterance >= 1, "spoofs_per_utterance", "must be at least 1")
        need(0.0 <= self.difficulty <= 1.0, "difficulty", "must lie in [0, 1]")
        need(self.seed >= 0, "seed", "must be non-negative")
        need(self.min_duration_s >= 0.5, "min_duration_s", "must be at least 0.5 s")
        need(self.max_duration_s >= self.min_duration_s, "max_duration_s", "must be >= min_duration_s")
        need(self.max_duration_s <= 60.0, "max_duration_s", "must be at most 60 s")


def corpus_filename(config: CorpusConfig) -> str:
    """Cache file name for ``config``, e.g. ``embedded_n300_s1_d0.50_seed0_v2.parquet``.

    Includes :data:`GENERATOR_VERSION`; non-default durations add a ``_dur1.5-6.0`` part.
    """
    d = config.difficulty
    d_text = f"{d:.2f}" if round(d, 2) == d else f"{d:.6g}"
    name = f"embedded_n{config.n_utterances}_s{config.spoofs_per_utterance}_d{d_text}_seed{config.seed}"
    defaults = CorpusConfig()
    if (config.min_duration_s, config.max_duration_s) != (defaults.min_duration_s, defaults.max_duration_s):
        name += f"_dur{config.min_duration_s:g}-{config.max_duration_s:g}"
    return f"{name}_v{GENERATOR_VERSION}.parquet"


# --------------------------------------------------------------------------------------------
# small signal helpers
# --------------------------------------------------------------------------------------------
def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``wave`` to ``n`` samples."""
    if wave.shape[0] >= n:
        return wave[:n]
    return np.pad(wave, (0, n - wave.shape[0]))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


@functools.lru_cache(maxsize=8)
def _window(win: int) -> torch.Tensor:
    """Periodic Hann window of ``win`` samples (torch.stft pads it centrally to ``n_fft``)."""
    return torch.hann_window(win, periodic=True, dtype=torch.float32)


def _stft(x: np.ndarray, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """Complex STFT [frames, bins] of ``x`` [samples] (centred frames, Hann window)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    spec = torch.stft(t, n_fft, hop, win, _window(win), center=True, return_complex=True)
    return spec.T.contiguous()


def _istft(spec: torch.Tensor, n_fft: int, hop: int, win: int, length: int) -> np.ndarray:
    """Inverse of :func:`_stft` (weighted overlap-add), ``length`` samples, float32."""
    out = torch.istft(spec.T, n_fft, hop, win, _window(win), center=True, length=length)
    return out.numpy().astype(np.float32, copy=False)


def _min_phase(log_mag: np.ndarray, n_fft: int) -> np.ndarray:
    """Minimum-phase spectra [frames, bins] from natural-log magnitudes [frames, bins] (cepstrum)."""
    cep = np.fft.irfft(log_mag, n=n_fft, axis=-1)
    half = n_fft // 2
    cep[:, 1:half] *= 2.0
    cep[:, half + 1 :] = 0.0
    return np.exp(np.fft.rfft(cep, n=n_fft, axis=-1)).astype(np.complex64)


def _smooth(track: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (frames), edges held."""
    if sigma_frames <= 0:
        return track
    return scipy.ndimage.gaussian_filter1d(track, sigma_frames, axis=0, mode="nearest")


def _interp_frames(track: np.ndarray, n: int, hop: int) -> np.ndarray:
    """Per-frame values (frame k centred at k*hop) interpolated to ``n`` samples."""
    pos = np.arange(track.shape[0]) * hop
    return np.interp(np.arange(n), pos, track).astype(np.float32)


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
    """Phone sequence -> control tracks: formant targets, source amplitudes, frication shape."""
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


# --------------------------------------------------------------------------------------------
# attacks (all at 16 kHz)
# --------------------------------------------------------------------------------------------
def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _severity(difficulty: float) -> float:
    """Position between an attack's blatant (0) and faint (1) settings for ``difficulty``.

    Cubic, so that the default 0.5 (-> 0.125) keeps artefacts strong enough for a tiny
    model trained from scratch for two minutes, while 1.0 is still faint.
    """
    return difficulty**3


@functools.lru_cache(maxsize=8)
def _mel_matrices(n_mels: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Mel filterbank [bins, mels] (Slaney-normalised, 0-8 kHz) and its pseudo-inverse [mels, bins]."""
    fb = (
        torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, 0.0, _SR / 2, n_mels, _SR, norm="slaney", mel_scale="slaney"
        )
        .numpy()
        .astype(np.float64)
    )
    return fb, np.linalg.pinv(fb)


def _attack_griffin_lim(x: np.ndarray, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """A01: magnitude -> coarse mel -> time-smoothed -> pseudo-inverse -> Griffin-Lim.

    Difficulty 0 / 0.5 / 1: 12 / 15 / 80 mel bands, 2 / 2 / 24 fast Griffin-Lim iterations
    from random phase. Artefacts: harmonics smeared above ~1 kHz, phase incoherence
    (phasiness, smeared onsets) in every frame.
    """
    t = _severity(difficulty)
    n_fft, hop = 512, 128
    n_mels = int(round(12 * (80 / 12) ** t))
    n_iter = max(1, int(round(24**t)))
    smooth = _lerp(1.5, 0.3, t)  # over-smoothing of the "predicted" mel (frames of 8 ms)
    spec = _stft(x, n_fft, hop, n_fft)
    mag = spec.abs().numpy().astype(np.float64)
    fb, fb_pinv = _mel_matrices(n_mels, n_fft)
    log_mel = _smooth(np.log(mag @ fb + 1e-7), smooth)
    target = torch.from_numpy(np.maximum(np.exp(log_mel) @ fb_pinv, 0.0).astype(np.float32))
    angles = torch.from_numpy(np.exp(2j * np.pi * rng.random(target.shape)).astype(np.complex64))
    prev = torch.zeros_like(angles)
    momentum = 0.99
    n = x.shape[0]
    for _ in range(n_iter):
        rebuilt = _stft(_istft(target * angles, n_fft, hop, n_fft, n), n_fft, hop, n_fft)
        angles = rebuilt - (momentum / (1 + momentum)) * prev
        prev = rebuilt
        angles = angles / (angles.abs() + 1e-12)
    return _istft(target * angles, n_fft, hop, n_fft, n)


def _levinson(r: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """LPC coefficients [frames, order+1] (a[0] = 1) and prediction-error power [frames]."""
    frames = r.shape[0]
    a = np.zeros((frames, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = np.einsum("fj,fj->f", a[:, :i], r[:, i:0:-1])
        k = -acc / np.maximum(err, 1e-12)
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        err = err * (1.0 - k * k)
    return a, np.maximum(err, 1e-12)


def _block_filter(x: np.ndarray, h: np.ndarray, block: int, n_fft: int) -> np.ndarray:
    """Filter ``x`` [samples] with one frequency response per block of ``block`` samples.

    ``h`` [blocks, n_fft // 2 + 1]. Overlap-add of FFT-filtered blocks: the filter switches
    abruptly at block boundaries (the ringing of each block decays under its own filter).
    """
    n = x.shape[0]
    n_blocks = h.shape[0]
    blocks = np.zeros((n_blocks, block), np.float32)
    m = min(n, n_blocks * block)
    blocks.reshape(-1)[:m] = x[:m]
    y = np.fft.irfft(np.fft.rfft(blocks, n=n_fft, axis=1) * h, n=n_fft, axis=1).astype(np.float32)
    span = (n_blocks - 1) * block + n_fft
    out = torch.nn.functional.fold(
        torch.from_numpy(y).T[None], output_size=(1, span), kernel_size=(1, n_fft), stride=(1, block)
    )
    return _fit_length(out.reshape(-1).numpy(), n)


def _attack_lpc_vocoder(x: np.ndarray, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """A02: LPC-10-style vocoder: order-16 LPC per block, binary voicing, pulse excitation.

    Voiced blocks (20 ms at difficulty 0.5) are excited by single-sample pulses on a smoothed
    pitch track (jitter and aspiration noise grow from none to natural levels only towards
    difficulty 1), unvoiced blocks by white noise; the synthesis filter switches abruptly
    every block, its formant bandwidths are widened (coarse coefficient quantisation) and
    the vocoder runs at a reduced rate (bandwidth 4.5 kHz at 0.5). Artefacts in every voiced
    frame: buzzy, too-regular harmonics, blunt formants, nothing above the vocoder's band.
    """
    t = _severity(difficulty)
    order, n_fft = 16, 1024
    block = int(round(_lerp(320, 160, t)))  # 20 ms .. 10 ms parameter updates
    win = 400
    n = x.shape[0]
    pre = np.append(x[0], x[1:] - 0.97 * x[:-1]).astype(np.float32)
    # analysis frames centred on the middle of each synthesis block
    n_blocks = -(-n // block)
    padded = np.pad(pre, (win, win + block))
    starts = win + np.arange(n_blocks) * block + block // 2 - win // 2
    frames = padded[starts[:, None] + np.arange(win)[None, :]] * np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    r = np.fft.irfft(power, n=n_fft, axis=1)
    r[:, 0] *= 1.0001
    r[:, 1 : order + 1] *= np.exp(
        -0.5 * (2 * np.pi * 60.0 * np.arange(1, order + 1) / _SR) ** 2
    )  # lag window
    a, err = _levinson(r[:, : order + 1], order)
    a_spec = np.fft.rfft(a, n=n_fft, axis=1)
    # coarse quantisation of the reflection coefficients, approximated by a strong bandwidth
    # expansion: formant bandwidths widen by ~420 / 370 / 10 Hz at difficulty 0 / 0.5 / 1
    gamma = _lerp(0.92, 0.998, t)
    a_synth = a * gamma ** np.arange(order + 1)[None, :]
    # pitch from the autocorrelation of the whitened spectrum
    white = np.fft.irfft(power * np.abs(a_spec) ** 2, n=n_fft, axis=1)
    lo, hi = _SR // 400, _SR // 70
    lag_corr = white[:, lo:hi] / np.maximum(white[:, :1], 1e-12)
    lag = lo + np.argmax(lag_corr, axis=1)
    energy = r[:, 0]
    voiced = (lag_corr.max(axis=1) > 0.3) & (energy > 1e-4 * energy.max())
    voiced = scipy.signal.medfilt(voiced.astype(np.float64), 3) > 0.5
    f0 = scipy.signal.medfilt(_SR / lag.astype(np.float64), 5)
    if voiced.any():
        idx = np.flatnonzero(voiced)
        f0 = np.interp(np.arange(f0.shape[0]), idx, f0[idx])
    else:
        f0 = np.full_like(f0, 120.0)
    f0 = _smooth(f0, 2.0)
    # excitation: perfectly regular pulses, noise in unvoiced blocks, hard voicing switches
    centres = np.arange(n_blocks) * block + block // 2
    f0_s = np.interp(np.arange(n), centres, f0)
    jitter = _lerp(0.0, 0.01, t)
    phase = np.cumsum(f0_s / _SR)
    if jitter > 0:
        jit = 1 + jitter * rng.standard_normal(int(phase[-1]) + 2)
        phase = np.cumsum(f0_s * jit[phase.astype(np.int64)] / _SR)
    pulses = np.zeros(n, np.float32)
    at = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    pulses[at] = np.sqrt(_SR / f0_s[at])
    v = np.repeat(voiced.astype(np.float32), block)[:n]
    asp = _lerp(0.0, 0.3, t)  # aspiration noise in voiced blocks
    noise = rng.standard_normal(n).astype(np.float32)
    exc = v * (pulses + asp * noise) + (1.0 - v) * noise
    deemph = 1.0 / (1.0 - 0.97 * np.exp(-2j * np.pi * np.fft.rfftfreq(n_fft)))
    a_synth_spec = np.fft.rfft(a_synth, n=n_fft, axis=1)
    h = np.sqrt(err / np.sum(np.hanning(win) ** 2))[:, None] / a_synth_spec * deemph[None, :]
    y = _block_filter(exc, h.astype(np.complex64), block, n_fft)
    # the vocoder runs at a reduced rate: bandwidth 4 / 4.5 / 8 kHz for difficulty 0 / 0.5 / 1
    cutoff = _lerp(4000.0, 8000.0, t)
    if cutoff < 7800.0:
        y = scipy.signal.sosfiltfilt(_lowpass_sos(float(round(cutoff)), _SR), y)
    return y.astype(np.float32)


def _attack_imaging(x: np.ndarray, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """A03: multi-stage upsampler whose 4 -> 8 kHz stage lacks an anti-imaging filter.

    The vocoder's core runs at 4 kHz (content below 2 kHz); zero-insertion to 8 kHz with a
    weak interpolation filter mirrors 0-2 kHz into 2-4 kHz (image at f -> 4 kHz - f, at
    -3 / -5.6 / -40 dB for difficulty 0 / 0.5 / 1), and a clean 8 -> 16 kHz stage follows.
    The real 2-4 kHz content survives only partly (20 / 29 / 100 %), 4-8 kHz even less
    (5 / 16 / 100 %).
    """
    t = _severity(difficulty)
    n = x.shape[0]
    core = resample(x, _SR, 4000)
    stuffed = np.zeros(2 * core.shape[0], np.float32)
    stuffed[::2] = 2.0 * core
    sos = _lowpass_sos(1900.0, 8000)
    base = scipy.signal.sosfiltfilt(sos, stuffed)
    image = stuffed - base
    y8 = base + 10 ** ((-3.0 - 21.0 * t - 16.0 * t**4) / 20) * image
    y = _fit_length(resample(y8.astype(np.float32), 8000, _SR), n)
    below_4k = scipy.signal.sosfiltfilt(_lowpass_sos(3900.0, _SR), x)
    mid = below_4k - scipy.signal.sosfiltfilt(_lowpass_sos(1900.0, _SR), x)
    high = x - below_4k
    keep_mid, keep_high = 0.2 + 0.7 * t + 0.1 * t**4, 0.05 + 0.85 * t + 0.1 * t**4
    return (y + keep_mid * mid + keep_high * high).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _lowpass_sos(cutoff: float, sr: int) -> np.ndarray:
    """Elliptic low-pass (order 10, 0.1 dB ripple, 70 dB stop band) as SOS."""
    return scipy.signal.ellip(10, 0.1, 70, cutoff, fs=sr, output="sos")


@functools.lru_cache(maxsize=8)
def _butter_lowpass_sos(cutoff: float, sr: int) -> np.ndarray:
    """Gentle second-order Butterworth low-pass as SOS."""
    return scipy.signal.butter(2, cutoff, fs=sr, output="sos")


def _attack_checkerboard(x: np.ndarray, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """A04: transposed-convolution upsampler (stride 16): periodic "checkerboard" artefact.

    Uneven kernel overlap makes the output repeat a pattern every 16 samples, so tonal lines
    at multiples of 1 kHz (1-7 kHz) follow the speech envelope, at -6 / -9 / -40 dB relative
    to the speech for difficulty 0 / 0.5 / 1; the upsampler also dulls the band above 5 kHz.
    """
    t = _severity(difficulty)
    stride = 16
    k = np.arange(1, stride // 2)
    amps = rng.uniform(0.5, 1.0, size=k.shape[0]) / k  # lines fade towards high frequencies
    phases = rng.uniform(0, 2 * np.pi, size=k.shape[0])
    pattern = (
        amps[None, :] * np.cos(2 * np.pi * k[None, :] * np.arange(stride)[:, None] / stride + phases[None, :])
    ).sum(axis=1)
    pattern /= np.sqrt(np.mean(pattern**2))
    n = x.shape[0]
    env = np.sqrt(
        np.maximum(scipy.ndimage.uniform_filter1d(x.astype(np.float64) ** 2, 160, mode="nearest"), 0.0)
    )
    level = 10 ** ((-6.0 - 24.0 * t - 10.0 * t**4) / 20)
    tones = env * np.tile(pattern, -(-n // stride))[:n] * level
    dull = scipy.signal.sosfilt(_butter_lowpass_sos(5000.0, _SR), x)
    mix = 0.6 - 0.5 * t - 0.1 * t**4
    return ((1 - mix) * x + mix * dull + tones).astype(np.float32)


def _match_tilt(wave: np.ndarray, reference: np.ndarray, fraction: float = 0.3) -> np.ndarray:
    """``wave`` [samples] at 16 kHz through a spectral-tilt post-filter towards ``reference``.

    The tilt ``(f / 1 kHz) ** alpha`` (``f`` floored at 100 Hz, ``|alpha| <= 1.5``) is found
    by bisection so that the power-weighted mean-square frequency above 150 Hz, which sets
    the zero-crossing rate (Rice's formula), moves ``fraction`` of the way (geometrically)
    from ``wave``'s own value to ``reference``'s. A full match (1.0) would also undo much of
    the band-energy artefacts of A03 and A04; 0.3 keeps the zero-crossing rate a weak cue.
    """
    m = scipy.fft.next_fast_len(wave.shape[0], real=True)
    freqs = np.fft.rfftfreq(m, 1.0 / _SR)
    log_f = np.log(np.maximum(freqs, 100.0) / 1000.0)
    band = freqs >= 150.0
    spec = scipy.fft.rfft(wave, n=m)
    p_wave = (np.abs(spec) ** 2)[band]
    p_ref = (np.abs(scipy.fft.rfft(reference, n=m)) ** 2)[band]
    f2, lf = freqs[band] ** 2, log_f[band]

    def moment(alpha: float) -> float:
        w = p_wave * np.exp(2 * alpha * lf)
        return float(np.sum(f2 * w) / max(np.sum(w), 1e-30))

    own = moment(0.0)
    ref = np.sum(f2 * p_ref) / max(np.sum(p_ref), 1e-30)
    target = own ** (1 - fraction) * ref**fraction

    lo, hi = -1.5, 1.5
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if moment(mid) < target else (lo, mid)
    alpha = 0.5 * (lo + hi)
    return scipy.fft.irfft(spec * np.exp(alpha * log_f), n=m)[: wave.shape[0]].astype(np.float32)


_ATTACK_FUNCS = {
    "A01": _attack_griffin_lim,
    "A02": _attack_lpc_vocoder,
    "A03": _attack_imaging,
    "A04": _attack_checkerboard,
}


def spoof_utterance(
    clean: np.ndarray, sample_rate: int, attack: str, difficulty: float, rng: np.random.Generator
) -> np.ndarray:
    """Resynthesis of ``clean`` [samples] at ``sample_rate`` Hz with ``attack``: same length, float32.

    The attack runs on the band below 8 kHz at 16 kHz; the clean band above 8 kHz is kept.
    A spectral-tilt post-filter then moves the spoof's mean-square frequency 30 % of the way
    back to the clean clip's (so the zero-crossing rate stays a weak cue; see
    :func:`_match_tilt`), and the RMS level of ``clean`` is kept. ``difficulty`` in [0, 1]:
    0 blatant, 1 faint. The clip should be at least 0.1 s long.
    """
    if attack not in _ATTACK_FUNCS:
        raise ValueError(f"attack = {attack!r}: unknown; expected one of {sorted(_ATTACK_FUNCS)}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty = {difficulty!r}: must lie in [0, 1]")
    clean = np.asarray(clean, dtype=np.float32)
    if clean.ndim != 1 or clean.shape[0] < sample_rate // 10:
        raise ValueError(f"clean: expected a mono clip [samples] of at least 0.1 s, got shape {clean.shape}")
    n = clean.shape[0]
    low = resample(clean, sample_rate, _SR)
    spoof = _match_tilt(_ATTACK_FUNCS[attack](low, float(difficulty), rng), low)
    spoof *= _rms(low) / _rms(spoof)
    if sample_rate == _SR:
        return spoof.astype(np.float32)
    high = clean - _fit_length(resample(low, _SR, sample_rate), n)
    return (_fit_length(resample(spoof, _SR, sample_rate), n) + high).astype(np.float32)


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


# --------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------
def _hf_features_metadata() -> bytes:
    """The ``huggingface`` schema metadata that makes ``datasets`` load Audio and ClassLabel."""
    features = datasets.Features(
        {
            "audio": datasets.Audio(),
            "label": datasets.ClassLabel(names=list(LABEL_NAMES)),
            "utterance_id": datasets.Value("string"),
            "attack": datasets.Value("string"),
            "sample_rate": datasets.Value("int64"),
            "duration": datasets.Value("float64"),
        }
    )
    return json.dumps({"info": {"features": features.to_dict()}}).encode()


_SCHEMA = pa.schema(
    [
        ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("label", pa.int64()),
        ("utterance_id", pa.string()),
        ("attack", pa.string()),
        ("sample_rate", pa.int64()),
        ("duration", pa.float64()),
    ]
)


def _attack_for(index: int, spoof: int, per_utterance: int) -> str:
    ids = sorted(ATTACKS)
    return ids[(index * per_utterance + spoof) % len(ids)]


def generate_utterance(config: CorpusConfig, index: int) -> list[dict[str, Any]]:
    """Rows of utterance ``index`` of the corpus ``config``: its bona fide clip, then its spoofs.

    Each row: ``wave`` [samples] float32 after the channel, ``label`` (1 Real, 0 Fake),
    ``utterance_id``, ``attack``, ``sample_rate`` (Hz), ``duration`` (s). The utterance's
    clips share its sample rate, duration, RMS level and crest cap; each gets its own
    channel. Depends only on ``config`` and ``index`` (not on ``n_utterances``), so corpora
    of different sizes share their first utterances.
    """
    if not 0 <= index:
        raise ValueError(f"index = {index}: must be non-negative")
    seq = np.random.SeedSequence(entropy=config.seed, spawn_key=(index,))
    utt_rng, bona_rng, chan_rng, *spoof_rngs = [
        np.random.default_rng(s) for s in seq.spawn(3 + 2 * config.spoofs_per_utterance)
    ]
    sr = int(SAMPLE_RATES[utt_rng.integers(len(SAMPLE_RATES))])
    n = int(round(utt_rng.uniform(config.min_duration_s, config.max_duration_s) * sr))
    level = {"level_dbfs": draw_level(utt_rng), "crest_db": draw_crest(utt_rng)}
    meta = {"utterance_id": f"utt{index:04d}", "sample_rate": sr, "duration": n / sr}
    with torch_threads(1):
        clean = synthesize_bonafide(bona_rng, sr, n / sr)
        rows = [{"wave": apply_channel(clean, sr, chan_rng, **level), "label": 1, "attack": BONAFIDE, **meta}]
        for j in range(config.spoofs_per_utterance):
            attack = _attack_for(index, j, config.spoofs_per_utterance)
            spoof = spoof_utterance(clean, sr, attack, config.difficulty, spoof_rngs[2 * j])
            rows.append(
                {
                    "wave": apply_channel(spoof, sr, spoof_rngs[2 * j + 1], **level),
                    "label": 0,
                    "attack": attack,
                    **meta,
                }
            )
    return rows


def generate_corpus(config: CorpusConfig = CorpusConfig()) -> pa.Table:
    """The corpus as an Arrow table in the Hemg schema plus metadata columns.

    Columns: ``audio`` (struct ``bytes`` WAV PCM_16 / ``path`` like ``utt0007_A02.wav``),
    ``label`` (0 Fake, 1 Real), ``utterance_id``, ``attack``, ``sample_rate`` (Hz), ``duration``
    (s). Rows are ordered by utterance, bona fide first. Same config -> same table.
    """
    columns: dict[str, list] = {name: [] for name in _SCHEMA.names}
    for i in range(config.n_utterances):
        for row in generate_utterance(config, i):
            columns["audio"].append(
                {
                    "bytes": encode_audio(row["wave"], row["sample_rate"], "WAV", "PCM_16"),
                    "path": f"{row['utterance_id']}_{row['attack']}.wav",
                }
            )
            for key in ("label", "utterance_id", "attack", "sample_rate", "duration"):
                columns[key].append(row[key])
    table = pa.Table.from_pydict(columns, schema=_SCHEMA)
    return table.replace_schema_metadata({b"huggingface": _hf_features_metadata()})


def write_corpus(path: str | os.PathLike[str], config: CorpusConfig = CorpusConfig()) -> Path:
    """Generate the corpus and write it as one parquet file at ``path``; returns the path.

    ``load_dataset("parquet", data_files=...)`` reads ``audio`` as Audio and ``label`` as
    ClassLabel(["Fake", "Real"]). The write is atomic (temporary file, then rename): an
    interrupted write leaves no partial file and keeps any existing file intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = generate_corpus(config)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=64, write_statistics=False)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
