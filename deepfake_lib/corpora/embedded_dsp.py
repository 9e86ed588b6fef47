"""Signal helpers shared by the embedded corpus's speech, attacks and channel: STFT at 16 kHz, minimum phase, smoothing of control tracks."""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch

from deepfake_lib import TARGET_SAMPLE_RATE

_SR: int = TARGET_SAMPLE_RATE  # rate (Hz) of the speech band and of every attack

_HOP: int = 160  # control-frame and synthesis hop at 16 kHz: 10 ms

_N_FFT: int = 512  # synthesis FFT size at 16 kHz (32 ms, zero-padded 20 ms window)

_WIN: int = 320


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
