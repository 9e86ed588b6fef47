"""Process settings every stage shares: one seed, the device and precision, torch threads, peak memory."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator

import torch
import transformers

__all__ = [
    "peak_rss_mb",
    "resolve_device",
    "resolve_precision",
    "set_seed",
    "torch_threads",
]


# --------------------------------------------------------------------------------------
# reproducibility, devices, memory, threads
# --------------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch on every device (``transformers.set_seed``) and ask torch for
    deterministic kernels, warning instead of failing where an operation has none."""
    transformers.set_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for or available (auto), else ``"cpu"``."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but no CUDA device is available")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(precision: str, device: str) -> str:
    """fp32 on CPU; on CUDA ``auto`` means bf16 where supported (Ampere+), else fp16 (T4)."""
    if device != "cuda":
        if precision in ("fp16",):
            raise ValueError("fp16 training needs a CUDA device; use precision='fp32' (or 'auto') on CPU")
        return "bf16" if precision == "bf16" else "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous count afterwards.

    Small torch ops (STFTs, LFCCs of a few seconds of audio) spend longer synchronising than
    computing with more threads, most of all on a busy machine; wrap them in ``torch_threads(1)``.
    """
    previous = torch.get_num_threads()
    if previous == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
