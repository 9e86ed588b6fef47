"""A small light CNN (LCNN) on LFCC, the architecture of the ASVspoof 2019/2021 LFCC-LCNN
baseline, scaled down to train from scratch on a CPU.

The encoder computes LFCCs inside the network (``torchaudio.transforms.LFCC``: 20 linear
filters over 0-4 kHz, the band every telephone-band clip shares, 25 ms frames every 10 ms, plus
deltas and double deltas: 60 dims), treats them as a one-channel image [frames, 60] and runs
convolutions with max-feature-map (MFM) activations, batch norm and three 2x2 max-pools. Each of
the remaining frames (80 ms apart) becomes a feature vector for a back-end of
:mod:`~deepfake_lib.modeling.backends`.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from deepfake_lib import TARGET_SAMPLE_RATE

__all__ = ["LcnnEncoder", "MaxFeatureMap2d"]

_WIN = 400  # 25 ms at 16 kHz
_N_FFT = 512  # frames span n_fft samples (center=False)
_HOP = 160  # 10 ms
_N_LFCC = 20
_POOLS = 3  # 2x2 max-pools, each halves the frames and the feature axis


def _deltas(x: torch.Tensor) -> torch.Tensor:
    """Regression deltas over 5 frames with edge frames repeated, the formula of
    ``torchaudio.functional.compute_deltas`` (whose grouped convolution the ONNX exporter cannot
    take with a dynamic channel count): [batch, dims, frames] -> the same shape."""
    p = nn.functional.pad(x, (2, 2), mode="replicate")
    return (p[..., 3:-1] - p[..., 1:-3] + 2 * (p[..., 4:] - p[..., :-4])) / 10.0


class MaxFeatureMap2d(nn.Module):
    """Max-feature-map: a convolution with ``2 * out`` channels, then the element-wise maximum of
    its two halves [batch, 2 * out, h, w] -> [batch, out, h, w]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, in, h, w] -> [batch, out, h, w]."""
        a, b = torch.split(self.conv(x), self.out_channels, dim=1)
        return torch.maximum(a, b)


class LcnnEncoder(nn.Module):
    """16 kHz audio [batch, samples] -> frame features [batch, frames, ``output_size``]."""

    def __init__(self, channels: tuple[int, int, int] = (16, 24, 32)) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.lfcc = torchaudio.transforms.LFCC(
            sample_rate=TARGET_SAMPLE_RATE,
            n_filter=_N_LFCC,
            n_lfcc=_N_LFCC,
            f_min=0.0,
            f_max=4000.0,
            speckwargs={"n_fft": _N_FFT, "win_length": _WIN, "hop_length": _HOP, "center": False},
        )
        self.blocks = nn.Sequential(
            MaxFeatureMap2d(1, c1, 5),
            nn.MaxPool2d(2),
            MaxFeatureMap2d(c1, c1, 1),
            nn.BatchNorm2d(c1),
            MaxFeatureMap2d(c1, c2, 3),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c2),
            MaxFeatureMap2d(c2, c2, 1),
            nn.BatchNorm2d(c2),
            MaxFeatureMap2d(c2, c3, 3),
            nn.MaxPool2d(2),
            nn.Dropout(0.1),
        )
        dims = 3 * _N_LFCC
        for _ in range(_POOLS):
            dims //= 2
        self.output_size = c3 * dims
        self.min_samples = _N_FFT + _HOP * (2**_POOLS - 1)

    def features(self, input_values: torch.Tensor) -> torch.Tensor:
        """LFCC with deltas and double deltas: [batch, samples] -> [batch, frames, 60]."""
        lfcc = self.lfcc(input_values)  # [batch, 20, frames]
        delta = _deltas(lfcc)
        delta2 = _deltas(delta)
        return torch.cat([lfcc, delta, delta2], dim=1).transpose(1, 2)

    def frame_counts(self, samples: torch.Tensor) -> torch.Tensor:
        """Output frames of clips of ``samples`` [batch] valid samples -> [batch] (long)."""
        frames = torch.div(samples.clamp_min(_N_FFT) - _N_FFT, _HOP, rounding_mode="floor") + 1
        for _ in range(_POOLS):
            frames = torch.div(frames, 2, rounding_mode="floor")
        return frames

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """[batch, samples] (at least ``min_samples``) -> [batch, frames, output_size]."""
        x = self.blocks(self.features(input_values).unsqueeze(1))  # [batch, c3, frames, dims]
        return x.permute(0, 2, 1, 3).flatten(2)
