"""Deployment formats for a detector: int8 PyTorch, ONNX, int8 ONNX, and their parity checks.

:func:`export_model` writes an export folder that :meth:`deepfake_lib.deploy.detector.Detector.from_source`
loads with any backend:

====================  ===================================================================
``export.json``       manifest: source, threshold (log-odds) and where it came from,
                      files, int8 recipe, library versions
``model/``            the fp32 model and its feature extractor (``save_pretrained``)
``model.onnx``        ONNX graph, inputs ``input_values [batch, time]`` (and
                      ``attention_mask [batch, time]`` for models that take one), output
                      ``logits [batch, 2]`` (``[Fake, Real]``); batch and time are dynamic
``model.int8.onnx``   the same with int8 MatMul/Gemm weights (ONNX Runtime dynamic
                      quantisation; convolutions stay fp32, which is faster on CPU)
``parity.json``       each variant against fp32 PyTorch: max/mean absolute logit
                      difference, label agreement at the threshold, number of clips
                      (``mixed``: the mixed-precision CPU runtime, whose gate decides
                      whether the ``auto`` backend uses it; see :mod:`deepfake_lib.deploy.cpu_runtime`)
``complete.json``     completion marker, written last (:func:`deepfake_lib.runs.mark_complete`);
                      a folder without it (a killed export) is refused by every loader
====================  ===================================================================

The int8 PyTorch variant is stored as a recipe (``export.json["int8"]``), not as pickled
quantised weights: :func:`~deepfake_lib.classifier.quantize_int8` is deterministic and takes well
under a second, so the ``int8`` backend re-derives the same weights from ``model/`` at load time, and no
pickle (unsafe to load from untrusted folders) is ever written.

int8 tool (see :data:`deepfake_lib.classifier.INT8_METHOD` and ``benchmarks/bench_latency.py``): on the
2-core CPU machines ``torch.ao.quantization.quantize_dynamic`` gives the fastest eager int8 model;
torchao's ``quantize_`` (``Int8DynamicActivationInt8WeightConfig``) is the maintained
successor, but it is only competitive under ``torch.compile``, whose compile time and
recompilations for every new input length do not suit a command line or a service.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.classifier import INT8_METHOD, INT8_METHODS, OnnxClassifier, TorchClassifier, quantize_int8
from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.experiment_data import prepare_data
from deepfake_lib.corpora.sources import load_example_audio
from deepfake_lib.deploy.cpu_runtime import MixedCpuClassifier, check_gate, make_gate_waves
from deepfake_lib.deploy.detector import check_head
from deepfake_lib.deploy.model_location import locate_model
from deepfake_lib.evaluation.probability import score_from_logits
from deepfake_lib.modeling.models import load_model, save_model
from deepfake_lib.runs import RUN_FILES, clear_complete, mark_complete, write_json
from deepfake_lib.scoring import MIN_DURATION_S, classify_waves

__all__ = [
    "EXPORT_FILES",
    "INT8_METHOD",
    "INT8_METHODS",
    "ONNX_OPSET",
    "OnnxClassifier",
    "check_parity",
    "export_model",
    "export_onnx",
    "load_run_test_waves",
    "make_parity_waves",
    "quantize_int8",
    "quantize_onnx_int8",
]

log = logging.getLogger(__name__)

ONNX_OPSET: int = 18
"""ONNX opset of exported graphs."""

EXPORT_FILES: dict[str, str] = {
    "manifest": "export.json",
    "model_dir": "model",
    "onnx": "model.onnx",
    "onnx_int8": "model.int8.onnx",
    "parity": "parity.json",
}
"""File names inside an export folder (see the module docstring)."""


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------
def _logits_wrapper(model: Any, with_attention_mask: bool) -> Any:
    """A module whose forward returns only ``.logits`` (transformers 5.x breaks export with
    ``config.return_dict=False``, so the output object is unwrapped here instead)."""

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        if with_attention_mask:

            def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                return self.inner(input_values, attention_mask=attention_mask).logits
        else:

            def forward(self, input_values: torch.Tensor) -> torch.Tensor:
                return self.inner(input_values).logits

    return LogitsOnly(model).eval()


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    with_attention_mask: bool = False,
    opset: int = ONNX_OPSET,
    min_samples: int | None = None,
) -> Path:
    """Export an audio classifier to one self-contained ONNX file (weights inside).

    Inputs: ``input_values`` float32 ``[batch, time]`` (normalised 16 kHz samples) and, when
    ``with_attention_mask``, ``attention_mask`` int64 ``[batch, time]``; output ``logits``
    float32 ``[batch, 2]``. Batch and time are dynamic; time must be at least
    ``min_samples`` (default :data:`deepfake_lib.scoring.MIN_DURATION_S` at 16 kHz). Uses the
    dynamo exporter; the model is exported in eval mode on the CPU.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    min_t = int(min_samples if min_samples is not None else round(MIN_DURATION_S * TARGET_SAMPLE_RATE))
    model = model.to("cpu").eval()
    wrapper = _logits_wrapper(model, with_attention_mask)
    example = torch.randn(2, max(2 * min_t, TARGET_SAMPLE_RATE))
    batch = torch.export.Dim("batch", min=1, max=1024)
    length = torch.export.Dim("time", min=min_t, max=TARGET_SAMPLE_RATE * 3600)
    args: tuple[Any, ...] = (example,)
    shapes: dict[str, Any] = {"input_values": {0: batch, 1: length}}
    names = ["input_values"]
    if with_attention_mask:
        args = (example, torch.ones(example.shape, dtype=torch.int64))
        shapes["attention_mask"] = {0: batch, 1: length}
        names.append("attention_mask")
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*will not be used, since it shares the same shape constraints.*"
        )
        torch.onnx.export(
            wrapper,
            args,
            str(out),
            input_names=names,
            output_names=["logits"],
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes=shapes,
            verbose=False,
        )
    return out


def quantize_onnx_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    preprocess: bool = True,
) -> Path:
    """Dynamic int8 quantisation of an ONNX model's ``MatMul`` and ``Gemm`` weights.

    Convolutions are left in fp32: quantising them too (ONNX Runtime's default) makes
    wav2vec2 slower than fp32 on CPU. ``preprocess`` runs ONNX Runtime's
    ``quant_pre_process`` (graph optimisation, no symbolic shape inference, which fails on
    the dynamo exporter's graph) in a temporary folder that is removed afterwards.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic  # optional extra (pip install .[export])

    src_p, dst_p = Path(src), Path(dst)
    dst_p.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onnx_int8_", dir=dst_p.parent) as tmp:
        model_in = src_p
        if preprocess:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            model_in = Path(tmp) / "preprocessed.onnx"
            quant_pre_process(str(src_p), str(model_in), skip_symbolic_shape=True)
        quantize_dynamic(
            str(model_in), str(dst_p), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8
        )
    return dst_p


# --------------------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------------------
def check_parity(
    reference_fn: Callable[[np.ndarray], np.ndarray],
    candidate_fn: Callable[[np.ndarray], np.ndarray],
    waves: Sequence[np.ndarray],
    *,
    threshold: float = 0.0,
) -> dict[str, Any]:
    """Compare two scorers on the same clips.

    Each function maps one 16 kHz waveform ``[samples]`` to its logits ``[2]`` (or
    ``[1, 2]``; ``[Fake, Real]``). Returns ``n`` (clips), ``max_abs_logit_diff`` and
    ``mean_abs_logit_diff``, ``max_abs_score_diff`` (log-odds) and ``label_agreement``
    (share of clips given the same label at ``threshold``, in [0, 1]).
    """
    if len(waves) == 0:
        raise ValueError("check_parity needs at least one waveform")
    ref = np.stack([np.asarray(reference_fn(w), dtype=np.float64).reshape(-1) for w in waves])
    cand = np.stack([np.asarray(candidate_fn(w), dtype=np.float64).reshape(-1) for w in waves])
    if ref.shape != cand.shape or ref.shape[1] != len(LABEL_NAMES):
        raise ValueError(f"logit shapes differ or are not [n, 2]: {ref.shape} vs {cand.shape}")
    s_ref, s_cand = score_from_logits(ref), score_from_logits(cand)
    diff = np.abs(ref - cand)
    return {
        "n": int(len(waves)),
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_score_diff": float(np.max(np.abs(s_ref - s_cand))),
        "label_agreement": float(np.mean((s_ref >= threshold) == (s_cand >= threshold))),
        "threshold": float(threshold),
    }


def make_parity_waves(n_clips: int = 8, *, seed: int = 0) -> list[np.ndarray]:
    """``n_clips`` synthetic 16 kHz clips ``[samples]`` (1.5-6 s, bona fide and spoofed) from
    the embedded corpus generator, for parity checks when no trained run's test split is given:
    the clips of the load-time gate (:func:`deepfake_lib.deploy.cpu_runtime.make_gate_waves`)."""
    return make_gate_waves(n_clips, seed=seed)


def load_run_test_waves(run_dir: str | os.PathLike[str], *, max_clips: int = 64) -> list[np.ndarray]:
    """The test clips of a finished run folder as 16 kHz waveforms ``[samples]`` (at most
    ``max_clips``, in test-table order): the run's data is re-split with its own
    ``config.json`` (deterministic) and checked against its ``test_scores.csv``."""
    run = Path(run_dir)
    cfg_file, scores_file = run / RUN_FILES["config"], run / RUN_FILES["test_scores"]
    for f in (cfg_file, scores_file):
        if not f.is_file():
            raise FileNotFoundError(f"{run}: not a finished run folder (missing {f.name})")
    cfg = ExperimentConfig.from_params(json.loads(cfg_file.read_text()))
    wanted = pd.read_csv(scores_file, dtype={"clip_id": str})["clip_id"].tolist()[:max_clips]
    splits, _ = prepare_data(cfg)
    test = splits["test"]
    index = {cid: i for i, cid in enumerate(test["clip_id"])}
    missing = [c for c in wanted if c not in index]
    if missing:
        raise ValueError(
            f"{run}: {len(missing)} test clips of {scores_file.name} are not in the re-made test split "
            f"(first: {missing[0]}); has the data source changed?"
        )
    return [load_example_audio(test[index[c]]) for c in wanted]


# --------------------------------------------------------------------------------------
# the export folder
# --------------------------------------------------------------------------------------
def _wave_fn(classifier: Any, feature_extractor: Any) -> Callable[[np.ndarray], np.ndarray]:
    """One waveform ``[samples]`` -> logits ``[2]`` through :func:`deepfake_lib.scoring.classify_waves`."""

    def fn(wave: np.ndarray) -> np.ndarray:
        return classify_waves(classifier, feature_extractor, [np.asarray(wave, dtype=np.float32)])[0]

    return fn


def export_model(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    int8: bool = True,
    onnx: bool = True,
    onnx_int8: bool = True,
    mixed: bool = True,
    parity_waves: Sequence[np.ndarray] | None = None,
    int8_method: str = INT8_METHOD,
    opset: int = ONNX_OPSET,
) -> dict[str, Any]:
    """Write an export folder for ``source`` (run folder, model folder or Hub id) into ``out_dir``.

    Always writes ``model/`` (fp32) and ``export.json``; ``int8`` records the int8 recipe,
    ``mixed`` the mixed-precision CPU runtime's recipe and parity gate (wav2vec2-class models),
    ``onnx`` writes ``model.onnx`` and ``onnx_int8`` ``model.int8.onnx`` (which needs the
    ONNX export, made in a temporary folder when ``onnx`` is false). Every variant is
    compared with fp32 PyTorch on ``parity_waves`` (16 kHz ``[samples]`` clips; default
    :func:`make_parity_waves`) and the figures go to ``parity.json``. Returns the manifest.
    """
    import onnxruntime  # noqa: F401  optional extra (pip install .[export]): fail before any work

    loc = locate_model(source)
    if loc.kind == "export":
        raise ValueError(f"{source}: is already an export folder; export from its run or model folder")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clear_complete(out)  # a re-export is trusted again only once it has finished
    loaded = load_model(loc.model_source, freeze_feature_encoder=False)
    check_head(loaded.notes, loc.model_source)
    model = loaded.model.to("cpu").eval()
    fe = loaded.feature_extractor
    uses_mask = bool(getattr(fe, "return_attention_mask", False))
    save_model(loaded, out / EXPORT_FILES["model_dir"])

    waves = list(parity_waves) if parity_waves is not None else make_parity_waves()
    reference = _wave_fn(TorchClassifier(model), fe)
    parity: dict[str, Any] = {"n_clips": len(waves), "reference": "fp32 PyTorch", "variants": {}}
    files: dict[str, str] = {"model_dir": EXPORT_FILES["model_dir"]}
    timings: dict[str, float] = {}

    def record(name: str, classifier: Any) -> None:
        parity["variants"][name] = check_parity(
            reference, _wave_fn(classifier, fe), waves, threshold=loc.threshold
        )

    if int8:
        t = time.perf_counter()
        qmodel = quantize_int8(model, method=int8_method)
        timings["int8_s"] = time.perf_counter() - t
        record("int8", TorchClassifier(qmodel, accepts_attention_mask=True))
        del qmodel
    mixed_info: dict[str, Any] | None = None
    if mixed:
        try:
            runtime = MixedCpuClassifier(model, int8_method=int8_method)
        except ValueError as exc:  # not a wav2vec2-class model: no mixed variant
            mixed_info = {"skipped": str(exc)}
        else:
            record("mixed", runtime)
            passed, why = check_gate(parity["variants"]["mixed"])
            mixed_info = {
                **runtime.describe(),
                "gate": {"passed": passed, "reason": why},
                "weights": "derived from model/ at load time",
            }
            del runtime
    if onnx or onnx_int8:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="onnx_export_", dir=out) as tmp:
            onnx_path = out / EXPORT_FILES["onnx"] if onnx else Path(tmp) / EXPORT_FILES["onnx"]
            export_onnx(model, onnx_path, with_attention_mask=uses_mask, opset=opset)
            timings["onnx_s"] = time.perf_counter() - t
            if onnx:
                files["onnx"] = EXPORT_FILES["onnx"]
                record("onnx", OnnxClassifier(onnx_path))
            if onnx_int8:
                t = time.perf_counter()
                quantize_onnx_int8(onnx_path, out / EXPORT_FILES["onnx_int8"])
                timings["onnx_int8_s"] = time.perf_counter() - t
                files["onnx_int8"] = EXPORT_FILES["onnx_int8"]
                record("onnx_int8", OnnxClassifier(out / EXPORT_FILES["onnx_int8"]))
    files["parity"] = EXPORT_FILES["parity"]
    write_json(out / EXPORT_FILES["parity"], parity)
    manifest = _export_manifest(
        source,
        loc,
        files=files,
        uses_mask=uses_mask,
        int8_method=int8_method if int8 else None,
        mixed_info=mixed_info,
        opset=opset if (onnx or onnx_int8) else None,
        timings=timings,
        parity=parity,
    )
    write_json(out / EXPORT_FILES["manifest"], manifest)
    mark_complete(out, "export", writer="deepfake_lib.deploy.export.export_model")
    return manifest


def _export_manifest(
    source: str | os.PathLike[str],
    loc: Any,
    *,
    files: dict[str, str],
    uses_mask: bool,
    int8_method: str | None,
    mixed_info: dict[str, Any] | None,
    opset: int | None,
    timings: dict[str, float],
    parity: dict[str, Any],
) -> dict[str, Any]:
    """The ``export.json`` manifest: where the export came from, its threshold, labels and
    files, each variant's recipe (None when not exported), timings (s), versions and parity."""
    import onnxruntime

    return {
        "source": os.fspath(source),
        "source_kind": loc.kind,
        "model_id": os.fspath(source),
        "model_dir": EXPORT_FILES["model_dir"],
        "threshold": loc.threshold,
        "threshold_source": loc.threshold_source,
        "labels": list(LABEL_NAMES),
        "sample_rate": TARGET_SAMPLE_RATE,
        "uses_attention_mask": uses_mask,
        "files": files,
        "int8": {"method": int8_method, "layers": "nn.Linear", "weights": "derived from model/ at load time"}
        if int8_method is not None
        else None,
        "mixed": mixed_info,
        "onnx_opset": opset,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "parity": parity["variants"],
    }
