"""Runtime classifiers: normalised 16 kHz audio ``[batch, samples]`` to logits ``[batch, 2]``.

The :class:`~deepfake_lib.deploy.detector.Detector` and the evaluation path
(:mod:`deepfake_lib.scoring`) call a model through the :class:`Classifier` protocol; this
module holds its three runtimes: :class:`TorchClassifier` (fp32, or an int8 model from
:func:`quantize_int8`) and :class:`OnnxClassifier` (ONNX Runtime, for the graphs
:mod:`deepfake_lib.deploy.export` writes). Logits are always in the order ``[Fake, Real]``.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

__all__ = [
    "autocast_for",
    "Classifier",
    "INT8_METHOD",
    "INT8_METHODS",
    "OnnxClassifier",
    "quantize_int8",
    "TorchClassifier",
]

log = logging.getLogger(__name__)

INT8_METHODS: tuple[str, ...] = ("torch.ao", "torchao")
"""Ways :func:`quantize_int8` can quantise: ``torch.ao`` dynamic quantisation (deprecated in
torch 2.14 but the fastest eager path here) and torchao's ``Int8DynamicActivationInt8WeightConfig``."""

INT8_METHOD: str = "torch.ao"
"""The method :func:`quantize_int8` uses by default (chosen by measurement; see
:mod:`deepfake_lib.deploy.export` and ``benchmarks/results/latency.json``)."""


class Classifier(Protocol):
    """What the detector calls: normalised ``input_values`` float32 ``[batch, samples]``
    (and, when :attr:`accepts_attention_mask`, an int64 ``[batch, samples]`` mask, 1 = audio)
    to logits float32 ``[batch, 2]`` in the order ``[Fake, Real]``."""

    accepts_attention_mask: bool

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray: ...


def autocast_for(device: str, precision: str) -> Any:
    """The ``torch.autocast`` context for ``precision`` (``fp32``, ``fp16``, ``bf16``) on
    ``device``; disabled for fp32 and for fp16 on the CPU."""
    kind = device if device in ("cuda", "cpu") else "cpu"
    if precision == "bf16" or (precision == "fp16" and kind == "cuda"):
        return torch.autocast(kind, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)
    return torch.autocast(kind, enabled=False)


class TorchClassifier:
    """A PyTorch audio classifier (fp32 or int8) behind the :class:`Classifier` call.

    ``device``: where the model runs (it is moved there); ``precision``: ``fp32``, or
    ``fp16``/``bf16`` autocast (as in training evaluation). The model is put in eval mode.
    """

    def __init__(
        self, model: Any, *, device: str = "cpu", accepts_attention_mask: bool = True, precision: str = "fp32"
    ) -> None:
        self.device = device
        self.model = model.to(device).eval() if device != "cpu" else model.eval()
        self.accepts_attention_mask = accepts_attention_mask
        self.precision = precision

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """Logits float32 ``[batch, 2]`` for ``input_values`` ``[batch, samples]`` (and mask)."""
        with torch.inference_mode(), autocast_for(self.device, self.precision):
            x = torch.from_numpy(np.ascontiguousarray(input_values, dtype=np.float32)).to(self.device)
            kwargs = {}
            if attention_mask is not None and self.accepts_attention_mask:
                kwargs["attention_mask"] = torch.from_numpy(np.asarray(attention_mask, dtype=np.int64)).to(
                    self.device
                )
            out = self.model(x, **kwargs)
            logits = out.logits if hasattr(out, "logits") else out
            return logits.float().cpu().numpy()


def quantize_int8(model: Any, *, method: str = INT8_METHOD, inplace: bool = False) -> Any:
    """Dynamic int8 quantisation of the ``nn.Linear`` layers of ``model`` for CPU inference.

    Weights become int8 (per output channel for torchao, per tensor for torch.ao);
    activations are quantised on the fly per batch; convolutions and norms stay fp32.
    ``method``: one of :data:`INT8_METHODS`. Returns the quantised model in eval mode (a
    copy unless ``inplace``); call it exactly like the original.
    """
    if method not in INT8_METHODS:
        raise ValueError(f"method={method!r}; expected one of {', '.join(INT8_METHODS)}")
    target = model if inplace else copy.deepcopy(model)
    target = target.to("cpu").eval()
    if method == "torchao":
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        except ImportError as exc:  # optional: not installed by default (slower here without torch.compile)
            raise ImportError("method='torchao' needs `pip install torchao`") from exc

        quantize_(target, Int8DynamicActivationInt8WeightConfig())
        return target
    # torch.ao's quantize_dynamic is deprecated in torch 2.14 in favour of torchao, but it is
    # still the fastest eager int8 path on these CPUs (torchao needs torch.compile to match;
    # benchmarks/bench_latency.py reports both side by side). The warning is silenced here,
    # and only here, because the choice is deliberate and measured.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_dynamic.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        warnings.filterwarnings(
            "ignore", message=r".*quantize_per_tensor.*deprecated.*"
        )  # raised inside quantize_dynamic
        return torch.ao.quantization.quantize_dynamic(
            target, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )


class OnnxClassifier:
    """An ONNX Runtime session behind the :class:`Classifier` call:
    ``input_values`` float32 ``[batch, time]`` (and ``attention_mask`` when the graph takes
    one) to logits float32 ``[batch, 2]``. ``device`` ``"cuda"`` uses the CUDA execution
    provider when ONNX Runtime has it; ``threads`` sets intra-op threads (default: ORT's)."""

    def __init__(
        self, path: str | os.PathLike[str], *, device: str = "cpu", threads: int | None = None
    ) -> None:
        import onnxruntime as ort  # optional extra (pip install .[export]): imported only when used

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda":
            log.warning("%s: this onnxruntime has no CUDA provider; running on the CPU", self.path)
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.accepts_attention_mask = "attention_mask" in self.input_names

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """Logits float32 ``[batch, 2]`` for ``input_values`` ``[batch, samples]`` (and mask;
        all ones when the graph takes one and none is given)."""
        x = np.ascontiguousarray(input_values, dtype=np.float32)
        feed: dict[str, np.ndarray] = {"input_values": x}
        if self.accepts_attention_mask:
            feed["attention_mask"] = (
                np.ones(x.shape, dtype=np.int64)
                if attention_mask is None
                else np.ascontiguousarray(attention_mask, dtype=np.int64)
            )
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)
