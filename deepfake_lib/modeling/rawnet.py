"""A small raw-waveform network in the style of RawNet2 (Tak et al., ICASSP 2021), sized to
train from scratch on a CPU.

Layout: learnable band-pass sinc filters (SincNet: each filter is the difference of two
windowed sinc low-passes whose cut-offs are trained) below 4 kHz, applied with stride 2; the
absolute value, a max-pool, batch norm; four residual 1-D convolution blocks, each ending in a
max-pool of 3; a 1-D convolution over the remaining frames (about 30 per second) where RawNet2
runs a GRU (``torch.export`` unrolls a GRU to the length it traced, so the ONNX export would lose
its dynamic time axis). Each frame is a feature vector for a back-end of
:mod:`~deepfake_lib.modeling.backends` (RawNet2 keeps the GRU's last state; the back-end pools
over the valid frames instead). Unlike magnitude features (LFCC), the filters see the waveform
itself, phase included.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepfake_lib import TARGET_SAMPLE_RATE

__all__ = ["MaxPoolTime", "RawNetEncoder", "SincBandPass"]


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincBandPass(nn.Module):
    """``n_filters`` learnable band-pass filters of ``kernel_size`` taps (odd), cut-offs initialised
    mel-spaced between ``f_min`` and ``f_max`` Hz: [batch, samples] -> [batch, n_filters, frames]."""

    def __init__(
        self,
        n_filters: int = 20,
        kernel_size: int = 129,
        stride: int = 2,
        f_min: float = 30.0,
        f_max: float = 4000.0,
        sample_rate: int = TARGET_SAMPLE_RATE,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size}: must be odd")
        self.kernel_size, self.stride, self.sample_rate = kernel_size, stride, sample_rate
        edges = _mel_to_hz(torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_filters + 1))
        self.low_hz = nn.Parameter(edges[:-1].clone().unsqueeze(1))
        self.band_hz = nn.Parameter((edges[1:] - edges[:-1]).clone().unsqueeze(1))
        half = (kernel_size - 1) // 2
        self.register_buffer("t", torch.arange(-half, half + 1, dtype=torch.float32) / sample_rate)
        self.register_buffer("window", torch.hamming_window(kernel_size, periodic=False))
        self.max_hz = f_max

    def filters(self) -> torch.Tensor:
        """The current impulse responses [n_filters, 1, kernel_size], peak gain about 1."""
        low = self.low_hz.abs().clamp(max=self.max_hz - 50.0)
        high = (low + self.band_hz.abs() + 10.0).clamp(max=self.max_hz)
        t = self.t.unsqueeze(0)
        band = 2 * high * torch.special.sinc(2 * high * t) - 2 * low * torch.special.sinc(2 * low * t)
        band = band * self.window / (2 * (high - low))
        return band.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, samples] -> [batch, n_filters, frames]."""
        return nn.functional.conv1d(x.unsqueeze(1), self.filters(), stride=self.stride)


class MaxPoolTime(nn.Module):
    """Max-pool of ``k`` frames along time: [batch, channels, frames] -> [batch, channels, frames // k].
    Runs as a 2-D pool (``nn.MaxPool1d`` makes ``torch.export`` fix the time axis to the length
    it traced)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d((1, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x.unsqueeze(2)).squeeze(2)


class _ResidualBlock(nn.Module):
    """BN, LeakyReLU, conv3, BN, LeakyReLU, conv3, plus a 1x1 shortcut when the width changes,
    then a max-pool of 3: [batch, c_in, frames] -> [batch, c_out, frames // 3]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(c_in),
            nn.LeakyReLU(0.3),
            nn.Conv1d(c_in, c_out, 3, padding=1),
            nn.BatchNorm1d(c_out),
            nn.LeakyReLU(0.3),
            nn.Conv1d(c_out, c_out, 3, padding=1),
        )
        self.shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.pool = MaxPoolTime(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x) + self.shortcut(x))


class RawNetEncoder(nn.Module):
    """16 kHz audio [batch, samples] -> frame features [batch, frames, ``output_size``]."""

    def __init__(
        self,
        n_filters: int = 20,
        kernel_size: int = 129,
        widths: tuple[int, ...] = (32, 32, 48, 48),
        context_size: int = 64,
    ) -> None:
        super().__init__()
        self.sinc = SincBandPass(n_filters, kernel_size, stride=2)
        self.front = nn.Sequential(MaxPoolTime(3), nn.BatchNorm1d(n_filters), nn.SELU())
        blocks, c_in = [], n_filters
        for width in widths:
            blocks.append(_ResidualBlock(c_in, width))
            c_in = width
        self.blocks = nn.Sequential(*blocks, nn.BatchNorm1d(c_in), nn.LeakyReLU(0.3))
        self.context = nn.Sequential(nn.Conv1d(c_in, context_size, 3, padding=1), nn.LeakyReLU(0.3))
        self.output_size = context_size
        self._pools = 1 + len(widths)
        self.min_samples = kernel_size + 2 * (3**self._pools - 1)

    def frame_counts(self, samples: torch.Tensor) -> torch.Tensor:
        """Output frames of clips of ``samples`` [batch] valid samples -> [batch] (long)."""
        k = self.sinc.kernel_size
        frames = torch.div(samples.clamp_min(k) - k, self.sinc.stride, rounding_mode="floor") + 1
        for _ in range(self._pools):
            frames = torch.div(frames, 3, rounding_mode="floor")
        return frames

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """[batch, samples] (at least ``min_samples``) -> [batch, frames, output_size]."""
        x = self.blocks(self.front(self.sinc(input_values).abs()))  # [batch, channels, frames]
        return self.context(x).transpose(1, 2)
