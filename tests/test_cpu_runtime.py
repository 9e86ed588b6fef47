"""The mixed-precision CPU runtime, its bf16 detection and parity gate, the ``auto`` backend,
and first-layers models (tiny random wav2vec2 models only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfake_lib.classifier import TorchClassifier
from deepfake_lib.config import ConfigError, ExperimentConfig
from deepfake_lib.deploy import cpu_runtime
from deepfake_lib.deploy.cpu_runtime import (
    GATE_MAX_LOGIT_DIFF,
    Bf16Island,
    MixedCpuClassifier,
    check_gate,
    compare_logits,
    detect_bf16_support,
    make_gate_waves,
    measure_parity,
)
from deepfake_lib.deploy.detector import Detector, choose_backend
from deepfake_lib.deploy.model_location import locate_model
from deepfake_lib.modeling.frontends import build_tiny_model
from deepfake_lib.modeling.models import load_model, load_model_for, save_model

SR = 16_000


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=5)


@pytest.fixture(scope="module")
def waves():
    return make_gate_waves(4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny):
    return save_model(tiny, tmp_path_factory.mktemp("model") / "tiny")


def islands(model: torch.nn.Module) -> int:
    return sum(isinstance(m, Bf16Island) for m in model.modules())


def quantised_linears(model: torch.nn.Module) -> int:
    return sum("quantized" in type(m).__module__ and type(m).__name__ == "Linear" for m in model.modules())


# ---------------------------------------------------------------------------------- the runtime
@pytest.mark.parametrize("bf16", [True, False])
def test_mixed_logits_match_fp32_within_the_gate_bound(tiny, waves, bf16):
    fp32 = TorchClassifier(tiny.model)
    mixed = MixedCpuClassifier(tiny.model, bf16=bf16)
    parity = measure_parity(fp32, mixed, tiny.feature_extractor, waves)
    assert parity["n"] == len(waves) and parity["max_abs_logit_diff"] <= GATE_MAX_LOGIT_DIFF
    assert parity["label_agreement"] == 1.0 and check_gate(parity)[0]
    assert islands(mixed.model) == (2 if bf16 else 0)  # conv feature encoder and positional conv
    n_layers = tiny.model.config.num_hidden_layers
    assert quantised_linears(mixed.model) == 6 * n_layers  # q, k, v, out, two feed-forward per layer
    assert isinstance(mixed.model.classifier, torch.nn.Linear) and isinstance(
        mixed.model.projector, torch.nn.Linear
    )
    assert mixed.describe()["head"] == "fp32"


def test_the_original_model_is_untouched(tiny, waves):
    x = np.asarray(tiny.feature_extractor([waves[0]], sampling_rate=SR, return_tensors="np")["input_values"])
    before = TorchClassifier(tiny.model)(x)
    MixedCpuClassifier(tiny.model, bf16=True)
    assert islands(tiny.model) == 0 and quantised_linears(tiny.model) == 0
    np.testing.assert_array_equal(
        TorchClassifier(tiny.model)(x), before
    )  # still fp32, weight norm still works


def test_other_architectures_are_refused():
    with pytest.raises(ValueError, match="wav2vec2-class"):
        MixedCpuClassifier(torch.nn.Sequential(torch.nn.Linear(4, 2)))


# ---------------------------------------------------------------------------------- bf16 detection
def test_bf16_needs_avx512_and_a_bf16_flag(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(cpu_runtime, "read_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert detect_bf16_support().available
    monkeypatch.setattr(cpu_runtime, "read_cpu_flags", lambda: {"avx512f"})
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    support = detect_bf16_support()
    assert not support.available and "avx512_bf16" in support.reason
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(cpu_runtime, "read_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert not detect_bf16_support().available  # the flag alone is not enough: torch's kernels need AVX512


def test_the_runtime_falls_back_to_fp32_convolutions_without_bf16(monkeypatch, tiny):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    mixed = MixedCpuClassifier(tiny.model)
    assert not mixed.bf16 and islands(mixed.model) == 0 and quantised_linears(mixed.model) > 0
    info = mixed.describe()
    assert info["conv_feature_encoder"] == "fp32" and info["bf16"].startswith(
        "off: torch CPU capability AVX2"
    )


def test_read_cpu_flags_of_a_missing_file_is_empty(tmp_path):
    assert cpu_runtime.read_cpu_flags(tmp_path / "cpuinfo") == set()
    (tmp_path / "cpuinfo").write_text("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    assert cpu_runtime.read_cpu_flags(tmp_path / "cpuinfo") == {"fpu", "avx512f", "avx512_bf16"}


# ---------------------------------------------------------------------------------- parity gate
def test_gate_needs_full_agreement_and_a_small_difference():
    ref = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.3]])
    assert check_gate(compare_logits(ref, ref + 0.05))[0]
    flipped = ref.copy()
    flipped[2] = [0.3, 0.2]  # the third clip changes label at threshold 0
    ok, why = check_gate(compare_logits(ref, flipped))
    assert not ok and why.startswith("failed") and "67%" in why
    ok, why = check_gate(compare_logits(ref, ref + np.array([0.0, GATE_MAX_LOGIT_DIFF + 0.01])))
    assert not ok and "bound" in why
    assert check_gate({"n": 0})[0] is False
    with pytest.raises(ValueError, match="shapes"):
        compare_logits(ref, ref[:2])


def fake_parity(agreement_by_kind: dict[type, float]):
    """A measure_parity stand-in giving each candidate type a chosen label agreement."""

    def measure(reference, candidate, fe, waves, *, threshold=0.0):
        agree = agreement_by_kind.get(type(candidate), 1.0)
        return {
            "n": len(waves),
            "max_abs_logit_diff": 0.01,
            "mean_abs_logit_diff": 0.01,
            "max_abs_score_diff": 0.02,
            "label_agreement": agree,
            "threshold": threshold,
        }

    return measure


def test_auto_takes_the_next_best_path_when_a_gate_fails(monkeypatch, model_dir, tiny):
    import deepfake_lib.deploy.detector as infer

    loc = locate_model(model_dir)
    monkeypatch.setattr(infer, "make_gate_waves", lambda: make_gate_waves(2))
    monkeypatch.setattr(infer, "measure_parity", fake_parity({MixedCpuClassifier: 0.5}))
    classifier, choice = choose_backend(tiny.model, tiny.feature_extractor, loc, threshold=0.0)
    assert (
        choice["chosen"] == "int8"
        and type(classifier) is TorchClassifier
        and quantised_linears(classifier.model)
    )
    assert not choice["gates"]["mixed"]["passed"] and "50%" in choice["gates"]["mixed"]["reason"]
    monkeypatch.setattr(infer, "measure_parity", fake_parity({MixedCpuClassifier: 0.5, TorchClassifier: 0.9}))
    classifier, choice = choose_backend(tiny.model, tiny.feature_extractor, loc, threshold=0.0)
    assert choice["chosen"] == "torch" and quantised_linears(classifier.model) == 0
    assert choice["reason"].startswith("fp32 PyTorch: no faster path passed")


def test_auto_uses_fp32_off_the_cpu(monkeypatch, model_dir, tiny):
    import deepfake_lib.deploy.detector as infer

    made = []
    monkeypatch.setattr(
        infer, "TorchClassifier", lambda model, device: made.append(device) or "fp32 classifier"
    )
    classifier, choice = choose_backend(
        tiny.model, tiny.feature_extractor, locate_model(model_dir), threshold=0.0, device="cuda"
    )
    assert classifier == "fp32 classifier" and made == ["cuda"]
    assert choice["chosen"] == "torch" and "cuda" in choice["reason"] and choice["gates"] == {}


def test_the_default_backend_and_its_reason_are_in_describe(model_dir):
    det = Detector.from_source(model_dir, device="cpu")
    info = det.describe()
    choice = info["backend_choice"]
    assert choice["requested"] == "auto" and info["backend"] == choice["chosen"] == "mixed"
    assert "load-time gate" in choice["reason"] and choice["gates"]["mixed"]["passed"]
    assert info["runtime"]["transformer_linear"].startswith("int8") and info["runtime"]["bf16"].startswith(
        ("on", "off")
    )
    assert det.predict(make_gate_waves(1)[0], SR).label in ("Real", "Fake")
    explicit = Detector.from_source(model_dir, device="cpu", backend="torch").describe()
    assert explicit["backend_choice"]["requested"] == "torch" and "runtime" not in explicit


# ---------------------------------------------------------------------------------- first layers
@pytest.fixture(scope="module")
def four_layer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    plain = save_model(build_tiny_model(seed=2, num_hidden_layers=4), root / "plain")
    mixed = save_model(
        build_tiny_model(seed=2, num_hidden_layers=4, use_weighted_layer_sum=True), root / "wls"
    )
    return plain, mixed


@pytest.mark.parametrize("weighted", [False, True])
def test_first_layers_save_and_load_round_trip(four_layer_dirs, tmp_path, weighted):
    plain, _ = four_layer_dirs
    full = load_model(str(plain)).model.eval()
    loaded = load_model(str(plain), keep_layers=2, use_weighted_layer_sum=weighted)
    model = loaded.model.eval()
    assert model.config.num_hidden_layers == 2 and len(model.wav2vec2.encoder.layers) == 2
    assert any("first 2 of 4" in n for n in loaded.notes)
    for k in range(2):  # the first layers are the checkpoint's own
        assert torch.equal(
            model.wav2vec2.encoder.layers[k].attention.q_proj.weight,
            full.wav2vec2.encoder.layers[k].attention.q_proj.weight,
        )
    if weighted:
        assert model.layer_weights.shape == (3,)  # one weight per kept layer plus the embeddings
        # not in the checkpoint: an equal mix, never uninitialised memory (it was NaN at times)
        torch.testing.assert_close(model.layer_weights.detach(), torch.full((3,), 1 / 3))
    saved = save_model(loaded, tmp_path / "trunc")
    again = load_model(str(saved)).model.eval()
    assert again.config.num_hidden_layers == 2 and again.config.use_weighted_layer_sum == weighted
    x = torch.randn(1, SR)
    with torch.no_grad():
        torch.testing.assert_close(again(x).logits, model(x).logits)


def test_first_layers_of_a_checkpoint_with_a_layer_mix(four_layer_dirs):
    _, wls = four_layer_dirs
    loaded = load_model(str(wls), keep_layers=3)
    assert loaded.model.config.num_hidden_layers == 3 and loaded.model.layer_weights.shape == (4,)


def test_keep_layers_is_validated(four_layer_dirs):
    plain, _ = four_layer_dirs
    with pytest.raises(ValueError, match="has 4 transformer layers"):
        load_model(str(plain), keep_layers=5)
    with pytest.raises(ValueError, match="keep_layers"):
        load_model(str(plain), keep_layers=0)
    with pytest.raises(ValueError, match="tiny model has 2"):
        load_model("tiny", keep_layers=3)
    with pytest.raises(ConfigError, match="keep_layers"):
        ExperimentConfig(keep_layers=0)
    with pytest.raises(ConfigError, match="keep_layers"):
        ExperimentConfig.from_params({"keep_layers": "2"})


def test_load_model_for_a_config_keeps_its_layers(four_layer_dirs):
    plain, _ = four_layer_dirs
    cfg = ExperimentConfig(model_source=str(plain), keep_layers=1)
    assert load_model_for(cfg).model.config.num_hidden_layers == 1
    assert load_model_for(ExperimentConfig(keep_layers=1)).model.config.num_hidden_layers == 1  # tiny
