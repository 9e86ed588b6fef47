"""Exports: int8 PyTorch, ONNX (dynamic batch and length), int8 ONNX, parity and export folders.

The ONNX exports take several seconds each on two cores, so one export folder is built per
module and shared; those tests are marked slow.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deepfake_lib.classifier import INT8_METHODS, OnnxClassifier, TorchClassifier, quantize_int8
from deepfake_lib.deploy.detector import Detector
from deepfake_lib.deploy.export import EXPORT_FILES, check_parity, export_model, export_onnx
from deepfake_lib.runs import mark_complete

SR = 16_000


def waves_for(seed: int, lengths_s=(1.3, 2.5, 4.0)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for seconds in lengths_s:
        t = np.arange(int(seconds * SR)) / SR
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) * np.sin(2 * np.pi * 0.5 * t) ** 2
        out.append((tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def tiny():
    from deepfake_lib.modeling.frontends import build_tiny_model

    return build_tiny_model(seed=5)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny):
    from deepfake_lib.modeling.models import save_model

    run = tmp_path_factory.mktemp("run") / "demo"
    save_model(tiny, run / "model")
    (run / "metrics.json").write_text(
        json.dumps({"threshold": {"value": 0.02, "chosen_on": "validation EER"}})
    )
    mark_complete(run, "run", writer="test fixture")
    return run


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, run_dir):
    out = tmp_path_factory.mktemp("export") / "tiny_export"
    export_model(run_dir, out, parity_waves=waves_for(0))
    return out


def wave_logits(classifier, fe, wave: np.ndarray) -> np.ndarray:
    feats = fe([wave], sampling_rate=SR, return_tensors="np", return_attention_mask=True)
    return classifier(feats["input_values"], feats["attention_mask"].astype(np.int64))[0]


# ------------------------------------------------------------------------------- parity
def test_check_parity_figures():
    ref = {0: np.array([0.0, 1.0]), 1: np.array([0.5, 0.0])}
    cand = {0: np.array([0.0, 1.25]), 1: np.array([0.0, 0.25])}
    waves = [np.zeros(3), np.ones(3)]
    result = check_parity(lambda w: ref[int(w[0])], lambda w: cand[int(w[0])], waves, threshold=0.0)
    assert result["n"] == 2
    assert result["max_abs_logit_diff"] == pytest.approx(0.5)
    assert result["mean_abs_logit_diff"] == pytest.approx((0 + 0.25 + 0.5 + 0.25) / 4)
    assert result["max_abs_score_diff"] == pytest.approx(0.75)  # -0.5 -> +0.25 flips the label
    assert result["label_agreement"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        check_parity(lambda w: w, lambda w: w, [])


# ---------------------------------------------------------------------------------- int8
@pytest.mark.parametrize("method", INT8_METHODS)
def test_int8_parity_on_the_tiny_model(tiny, method):
    import torch

    if method == "torchao":
        pytest.importorskip("torchao", reason="torchao is optional (pip install torchao)")

    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    qmodel = quantize_int8(tiny.model, method=method)
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items()), (
        "original model changed"
    )
    fe = tiny.feature_extractor
    ref, cand = TorchClassifier(tiny.model), TorchClassifier(qmodel)
    result = check_parity(lambda w: wave_logits(ref, fe, w), lambda w: wave_logits(cand, fe, w), waves_for(1))
    assert 0 < result["max_abs_logit_diff"] < 0.02
    assert result["label_agreement"] == 1.0
    with pytest.raises(ValueError, match="method"):
        quantize_int8(tiny.model, method="fp8")


# ---------------------------------------------------------------------------------- ONNX
@pytest.mark.slow
def test_onnx_parity_with_dynamic_batch_and_length(export_dir, tiny):
    clf = OnnxClassifier(export_dir / EXPORT_FILES["onnx"])
    assert clf.accepts_attention_mask and clf.input_names == ["input_values", "attention_mask"]
    ref = TorchClassifier(tiny.model)
    rng = np.random.default_rng(2)
    for batch, length in ((1, 20_000), (3, 52_000)):
        x = rng.standard_normal((batch, length)).astype(np.float32)
        mask = np.ones((batch, length), dtype=np.int64)
        np.testing.assert_allclose(clf(x, mask), ref(x, mask), atol=1e-4)
    # mixed lengths in one padded batch, as the Detector sends them
    x = rng.standard_normal((2, 30_000)).astype(np.float32)
    mask = np.ones((2, 30_000), dtype=np.int64)
    x[1, 18_000:] = 0.0
    mask[1, 18_000:] = 0
    np.testing.assert_allclose(clf(x, mask), ref(x, mask), atol=1e-4)


@pytest.mark.slow
def test_onnx_export_without_attention_mask(tmp_path):
    from deepfake_lib.modeling.frontends import build_tiny_model

    group_norm = build_tiny_model(seed=6, feat_extract_norm="group", do_stable_layer_norm=False).model
    path = export_onnx(group_norm, tmp_path / "m.onnx", with_attention_mask=False)
    clf = OnnxClassifier(path)
    assert clf.input_names == ["input_values"] and not clf.accepts_attention_mask
    ref = TorchClassifier(group_norm)
    for length in (16_000, 41_000):
        x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
        np.testing.assert_allclose(clf(x), ref(x), atol=1e-4)


@pytest.mark.slow
def test_export_folder_contents_and_parity(export_dir):
    for key in ("manifest", "onnx", "onnx_int8", "parity"):
        assert (export_dir / EXPORT_FILES[key]).is_file(), key
    assert (export_dir / "model" / "config.json").is_file()
    assert (export_dir / "model" / "preprocessor_config.json").is_file()
    assert not [p for p in export_dir.iterdir() if p.name.startswith(("onnx_", "tmp"))], (
        "temporary files left"
    )
    manifest = json.loads((export_dir / EXPORT_FILES["manifest"]).read_text())
    assert manifest["threshold"] == pytest.approx(0.02) and "validation EER" in manifest["threshold_source"]
    assert manifest["int8"]["method"] in INT8_METHODS
    parity = json.loads((export_dir / EXPORT_FILES["parity"]).read_text())["variants"]
    assert set(parity) == {"int8", "mixed", "onnx", "onnx_int8"}
    assert parity["onnx"]["max_abs_logit_diff"] < 1e-4
    assert manifest["mixed"]["gate"]["passed"] is True and "passed" in manifest["mixed"]["gate"]["reason"]
    assert manifest["mixed"]["transformer_linear"].startswith("int8") and manifest["mixed"]["head"] == "fp32"
    for name in ("int8", "mixed", "onnx_int8"):
        assert parity[name]["max_abs_logit_diff"] < 0.02, name
    assert all(p["n"] == 3 and p["label_agreement"] == 1.0 for p in parity.values())


@pytest.mark.slow
def test_detector_backends_load_from_an_export_folder(export_dir):
    wave = waves_for(3, (9.0,))[0]
    scores = {}
    for backend in ("torch", "int8", "mixed", "onnx", "onnx-int8"):
        det = Detector.from_source(export_dir, backend=backend, device="cpu")
        assert det.threshold == pytest.approx(0.02) and det.backend == backend
        pred = det.predict(wave, SR)
        assert pred.n_windows == 4
        scores[backend] = pred.score
    assert scores["onnx"] == pytest.approx(scores["torch"], abs=1e-4)
    assert scores["int8"] == pytest.approx(scores["torch"], abs=0.02)
    assert scores["mixed"] == pytest.approx(scores["torch"], abs=0.02)
    auto = Detector.from_source(export_dir, device="cpu")  # default: gate read from the export's parity
    assert auto.backend == "mixed" and auto.describe()["backend_choice"]["reason"].startswith("export parity")
    assert scores["onnx-int8"] == pytest.approx(scores["torch"], abs=0.02)


@pytest.mark.slow
def test_onnx_backend_needs_the_file_in_the_export(export_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(export_dir, partial)
    (partial / EXPORT_FILES["onnx_int8"]).unlink()
    manifest = json.loads((partial / EXPORT_FILES["manifest"]).read_text())
    del manifest["files"]["onnx_int8"]
    (partial / EXPORT_FILES["manifest"]).write_text(json.dumps(manifest))
    mark_complete(partial, "export")  # a consistent, finished export that simply has no int8 graph
    with pytest.raises(ValueError, match="no onnx_int8 model"):
        Detector.from_source(partial, backend="onnx-int8")
    with pytest.raises(ValueError, match="already an export folder"):
        export_model(partial, tmp_path / "again")


@pytest.mark.slow
def test_int8_only_export_loads_with_the_int8_backend(run_dir, tmp_path):
    manifest = export_model(
        run_dir, tmp_path / "int8_only", onnx=False, onnx_int8=False, mixed=False, parity_waves=waves_for(4)
    )
    assert set(manifest["files"]) == {"model_dir", "parity"} and set(manifest["parity"]) == {"int8"}
    det = Detector.from_source(tmp_path / "int8_only", backend="int8")
    assert det.predict(waves_for(5, (2.0,))[0], SR).label in ("Real", "Fake")
    with pytest.raises(ValueError, match="onnx"):
        Detector.from_source(tmp_path / "int8_only", backend="onnx")
