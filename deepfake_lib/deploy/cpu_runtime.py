"""The mixed-precision CPU runtime: bf16 convolutions, int8 transformer layers, fp32 head.

Where a wav2vec2-class model spends its CPU time (one 4 s clip, wav2vec2-base, 2 threads):
about a third in the convolutional feature encoder, which dynamic int8 quantisation of
``nn.Linear`` layers does not touch, and most of the rest in the transformer's ``Linear``
layers. :class:`MixedCpuClassifier` speeds up both:

* the convolutional feature encoder and the positional convolution run under CPU bf16
  autocast when the CPU has native bf16 arithmetic (:func:`detect_bf16_support`: AVX512-BF16
  or AMX-BF16; never assumed), and in fp32 otherwise; their outputs are cast back to fp32 at
  the boundary, because dynamic int8 ``Linear`` layers refuse bf16 inputs;
* the transformer layers' ``Linear`` layers are dynamic int8
  (:func:`deepfake_lib.classifier.quantize_int8`);
* the feature projection, layer norms, attention softmax and the classification head stay fp32.

The runtime is a :class:`~deepfake_lib.classifier.Classifier`, so
:class:`~deepfake_lib.deploy.detector.Detector` and :mod:`deepfake_lib.scoring` use it unchanged.

**Parity gate** (:func:`check_gate`): a faster path is used by default only when, on the
parity clips, its labels agree with fp32 on every clip at the detector's threshold and its
largest absolute logit difference is at most :data:`GATE_MAX_LOGIT_DIFF`. :func:`measure_parity`
gives the figures (the same keys as :func:`deepfake_lib.deploy.export.check_parity`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.signal import resample
from deepfake_lib.classifier import INT8_METHOD, TorchClassifier, quantize_int8
from deepfake_lib.corpora.embedded import CorpusConfig, generate_utterance
from deepfake_lib.evaluation.probability import score_from_logits
from deepfake_lib.scoring import classify_waves

__all__ = [
    "BF16_CPU_FLAGS",
    "GATE_CLIPS",
    "GATE_MAX_LOGIT_DIFF",
    "Bf16Support",
    "MixedCpuClassifier",
    "build_mixed_model",
    "check_gate",
    "compare_logits",
    "detect_bf16_support",
    "make_gate_waves",
    "measure_parity",
]

BF16_CPU_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")
"""``/proc/cpuinfo`` flags that mean native bf16 arithmetic (AVX512-BF16 dot products, AMX tiles)."""

GATE_MAX_LOGIT_DIFF: float = 0.2
"""Largest absolute logit difference against fp32 (on any clip, either logit) a faster path
may show and still be the default. Scores are log-odds ``logit_real - logit_fake``, so a
score moves by at most twice this (0.4: a probability near 0.5 by at most 0.1). Measured:
int8 and bf16 variants stay under 0.04 on a trained tiny model (``benchmarks/results/latency.json``)."""

GATE_CLIPS: int = 8
"""Synthetic clips (1.5-6 s, from :mod:`deepfake_lib.corpora.embedded`) a load-time gate compares on
when the source carries no parity figures of its own."""

_CPUINFO = Path("/proc/cpuinfo")


# --------------------------------------------------------------------------------------
# bf16 detection
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Bf16Support:
    """Whether the CPU runs bf16 convolutions fast (``available``) and why (``reason``)."""

    available: bool
    reason: str


def read_cpu_flags(path: Path = _CPUINFO) -> set[str]:
    """The CPU feature flags of the first ``flags`` line of ``path`` (empty when unreadable)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return set()
    return set()


def detect_bf16_support() -> Bf16Support:
    """Native bf16 on this CPU: torch's vector capability must be AVX512 (its bf16 kernels need
    it) and the CPU must report AVX512-BF16 or AMX-BF16 (``/proc/cpuinfo``, else torch's own
    probe where it has one). Without both, bf16 autocast is emulated and slower than fp32."""
    capability = str(torch.backends.cpu.get_cpu_capability())
    if not capability.startswith("AVX512"):
        return Bf16Support(False, f"torch CPU capability {capability} (needs AVX512 with bf16)")
    flags = read_cpu_flags() & set(BF16_CPU_FLAGS)
    if flags:
        return Bf16Support(True, f"{capability} with {', '.join(sorted(flags))}")
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private torch probe, used only if present
    if callable(probe) and probe():
        return Bf16Support(True, f"{capability}; torch reports AVX512-BF16")
    return Bf16Support(False, f"{capability} without {' or '.join(BF16_CPU_FLAGS)}")


# --------------------------------------------------------------------------------------
# the mixed model
# --------------------------------------------------------------------------------------
class Bf16Island(torch.nn.Module):
    """Runs ``inner`` under CPU bf16 autocast and returns its (tensor) output as fp32."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden`` float32 (any shape ``inner`` takes) -> ``inner(hidden)`` as float32."""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.inner(hidden)
        return out.float()


def _parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The base model and its encoder of a wav2vec2-class classifier (wav2vec2, HuBERT, WavLM)."""
    base = getattr(model, "base_model", None)
    encoder = getattr(base, "encoder", None)
    if base is None or not hasattr(base, "feature_extractor") or not hasattr(encoder, "layers"):
        raise ValueError(
            f"{type(model).__name__}: the mixed CPU runtime needs a wav2vec2-class model "
            "(a conv feature_extractor and encoder.layers)"
        )
    return base, encoder


def _bake_weight_norm(module: torch.nn.Module) -> None:
    """Replace weight-normed ``Conv1d`` children (the positional conv) by plain ``Conv1d`` layers
    holding the same weight, computed once instead of at every call. New modules are made
    because removing a parametrisation edits the class the original model shares."""
    from torch.nn.utils import parametrize

    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not (isinstance(child, torch.nn.Conv1d) and parametrize.is_parametrized(child)):
                continue
            plain = torch.nn.Conv1d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                stride=child.stride,
                padding=child.padding,
                dilation=child.dilation,
                groups=child.groups,
                bias=child.bias is not None,
                padding_mode=child.padding_mode,
            )
            with torch.no_grad():
                plain.weight.copy_(child.weight)
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            setattr(parent, name, plain.eval())


def build_mixed_model(
    model: torch.nn.Module, *, bf16: bool, int8_method: str = INT8_METHOD
) -> torch.nn.Module:
    """A copy of ``model`` (wav2vec2-class, fp32) for the CPU: conv feature encoder and positional
    conv under bf16 autocast when ``bf16``, the transformer layers' ``Linear`` layers dynamic int8,
    the rest fp32. Raises ``ValueError`` for other architectures. Called like the original."""
    target = copy.deepcopy(model).to("cpu").eval()
    base, encoder = _parts(target)
    _bake_weight_norm(encoder)
    if bf16:
        base.feature_extractor = Bf16Island(base.feature_extractor)
        if isinstance(getattr(encoder, "pos_conv_embed", None), torch.nn.Module):
            encoder.pos_conv_embed = Bf16Island(encoder.pos_conv_embed)
    quantize_int8(encoder.layers, method=int8_method, inplace=True)
    return target


class MixedCpuClassifier(TorchClassifier):
    """The mixed-precision CPU runtime (see the module docstring) behind the
    :class:`~deepfake_lib.classifier.Classifier` call: normalised ``input_values`` float32
    ``[batch, samples]`` (and mask) to logits float32 ``[batch, 2]`` (``[Fake, Real]``).

    ``bf16``: ``None`` detects (:func:`detect_bf16_support`), ``False`` forces fp32 convolutions,
    ``True`` forces bf16 (slow where the CPU emulates it). ``model`` itself is not changed.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        bf16: bool | None = None,
        accepts_attention_mask: bool = True,
        int8_method: str = INT8_METHOD,
    ) -> None:
        support = detect_bf16_support() if bf16 is None else Bf16Support(bool(bf16), "set by the caller")
        super().__init__(
            build_mixed_model(model, bf16=support.available, int8_method=int8_method),
            device="cpu",
            accepts_attention_mask=accepts_attention_mask,
            precision="fp32",
        )
        self.bf16 = support.available
        self.bf16_reason = support.reason
        self.int8_method = int8_method

    def describe(self) -> dict[str, str]:
        """Precision per stage, and why the convolutions run in bf16 or fp32."""
        conv = "bf16 autocast" if self.bf16 else "fp32"
        return {
            "conv_feature_encoder": conv,
            "positional_conv": conv,
            "transformer_linear": f"int8 dynamic ({self.int8_method})",
            "head": "fp32",
            "bf16": f"{'on' if self.bf16 else 'off'}: {self.bf16_reason}",
        }


# --------------------------------------------------------------------------------------
# parity gate
# --------------------------------------------------------------------------------------
def compare_logits(reference: np.ndarray, candidate: np.ndarray, *, threshold: float = 0.0) -> dict[str, Any]:
    """Parity figures of ``candidate`` logits against ``reference`` logits (both ``[n, 2]``,
    ``[Fake, Real]``): ``n``, ``max_abs_logit_diff``, ``mean_abs_logit_diff``,
    ``max_abs_score_diff`` (log-odds), ``label_agreement`` (share in [0, 1] given the same label at
    ``threshold``) and ``threshold``."""
    ref, cand = np.asarray(reference, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2 or ref.shape[1] != len(LABEL_NAMES) or ref.shape[0] == 0:
        raise ValueError(f"logit shapes differ or are not [n >= 1, 2]: {ref.shape} vs {cand.shape}")
    s_ref, s_cand = score_from_logits(ref), score_from_logits(cand)
    diff = np.abs(ref - cand)
    return {
        "n": int(ref.shape[0]),
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_score_diff": float(np.max(np.abs(s_ref - s_cand))),
        "label_agreement": float(np.mean((s_ref >= threshold) == (s_cand >= threshold))),
        "threshold": float(threshold),
    }


def measure_parity(
    reference: Any,
    candidate: Any,
    feature_extractor: Any,
    waves: Sequence[np.ndarray],
    *,
    threshold: float = 0.0,
) -> dict[str, Any]:
    """:func:`compare_logits` of two classifiers on 16 kHz clips ``[samples]``, each clip scored
    whole through :func:`deepfake_lib.scoring.classify_waves` (one call per clip)."""
    ref = np.concatenate([classify_waves(reference, feature_extractor, [w]) for w in waves])
    cand = np.concatenate([classify_waves(candidate, feature_extractor, [w]) for w in waves])
    return compare_logits(ref, cand, threshold=threshold)


def check_gate(parity: Mapping[str, Any], *, max_logit_diff: float = GATE_MAX_LOGIT_DIFF) -> tuple[bool, str]:
    """Whether a path with these parity figures may be the default, and a one-line reason:
    100% label agreement and ``max_abs_logit_diff <= max_logit_diff`` on at least one clip."""
    n = int(parity.get("n", 0))
    agree = float(parity.get("label_agreement", float("nan")))
    diff = float(parity.get("max_abs_logit_diff", float("nan")))
    figures = (
        f"labels agree on {agree:.0%} of {n} clips, max |logit diff| {diff:.3g} (bound {max_logit_diff:g})"
    )
    if n < 1:
        return False, "no parity clips"
    ok = agree == 1.0 and math.isfinite(diff) and diff <= max_logit_diff
    return ok, ("passed: " if ok else "failed: ") + figures


def make_gate_waves(n_clips: int = GATE_CLIPS, *, seed: int = 0) -> list[np.ndarray]:
    """``n_clips`` synthetic 16 kHz clips ``[samples]`` (bona fide and spoofed, 1.5-6 s) for a
    load-time parity gate (also the default parity clips of :func:`deepfake_lib.deploy.export.make_parity_waves`)."""
    config = CorpusConfig(n_utterances=max(1, math.ceil(n_clips / 2)), spoofs_per_utterance=1, seed=seed)
    waves: list[np.ndarray] = []
    for i in range(config.n_utterances):
        for row in generate_utterance(config, i):
            waves.append(resample(row["wave"], row["sample_rate"], TARGET_SAMPLE_RATE))
    return waves[:n_clips]
