"""Spoofing attacks of the embedded corpus, each a vocoder-style resynthesis of a bona fide clip below 8 kHz (all at 16 kHz)."""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch
import torchaudio

from deepfake_lib.audio.signal import resample
from deepfake_lib.corpora.embedded_dsp import (
    _SR,
    _fit_length,
    _istft,
    _rms,
    _smooth,
    _stft,
)

__all__ = [
    "ATTACKS",
    "spoof_utterance",
]

ATTACKS: dict[str, str] = {
    "A01": "Griffin-Lim phase reconstruction from an over-smoothed, low-resolution mel spectrogram",
    "A02": "band-limited LPC vocoder: too-regular pulse excitation, no aspiration, over-wide formants",
    "A03": "neural-vocoder upsampler without anti-imaging filter: 0-2 kHz mirrored into 2-4 kHz",
    "A04": "transposed-convolution upsampler: checkerboard artefact, tonal lines at multiples of 1 kHz",
}
"""Attack id -> short description. Bona fide rows have attack ``"bonafide"``."""


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
