"""The from-scratch networks (LCNN on LFCC, RawNet2-style raw waveform): shapes, frame counts,
padding, save/reload through ``load_model``, the sinc filters' band, and (slow) a run trained by
``fine_tune`` scored by the Detector, the CLI's export and the service alike."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_lib.modeling.frontends import FRONTENDS, frontend_for_source
from deepfake_lib.modeling.models import load_model, save_model
from deepfake_lib.modeling.rawnet import SincBandPass
from deepfake_lib.modeling.scratch_nets import ENCODERS, ScratchNetForAudioClassification

NETS = sorted(ENCODERS)


@pytest.mark.parametrize("name", NETS)
def test_each_net_is_a_network_frontend_and_gives_two_logits(name):
    assert FRONTENDS[name].build is not None and frontend_for_source(name).name == name
    loaded = load_model(name, seed=0)
    assert isinstance(loaded.model, ScratchNetForAudioClassification)
    assert loaded.model.config.encoder == name
    with torch.no_grad():
        out = loaded.model.eval()(torch.randn(3, 16_000) * 0.1).logits
    assert out.shape == (3, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("samples", [1, 700, 1_600, 8_000, 16_001, 40_000])
def test_frame_counts_match_the_frames_the_encoder_gives(name, samples):
    encoder = load_model(name).model.encoder.eval()
    n = max(samples, encoder.min_samples)
    with torch.no_grad():
        frames = encoder(torch.randn(1, n)).shape[1]
    assert int(encoder.frame_counts(torch.tensor([n]))[0]) == frames >= 1


@pytest.mark.parametrize("name", NETS)
def test_a_clip_shorter_than_the_receptive_field_is_scored(name):
    with torch.no_grad():
        out = load_model(name).model.eval()(torch.randn(1, 50), attention_mask=torch.ones(1, 50)).logits
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NETS)
def test_padding_in_a_batch_moves_a_clip_s_logits_only_at_the_edge(name):
    """A clip scored alone and padded in a batch differ only by the convolution's edge frames."""
    model = load_model(name, seed=1).model.eval()
    long, short = torch.randn(1, 32_000) * 0.1, torch.randn(1, 16_000) * 0.1
    batch = torch.cat([long, torch.nn.functional.pad(short, (0, 16_000))])
    mask = torch.ones(2, 32_000, dtype=torch.long)
    mask[1, 16_000:] = 0
    with torch.no_grad():
        together = model(batch, attention_mask=mask).logits[1]
        alone = model(short, attention_mask=torch.ones(1, 16_000, dtype=torch.long)).logits[0]
        unmasked = model(batch).logits[1]
    assert (together - alone).abs().max() < 0.1 * (unmasked - alone).abs().max() + 0.02


@pytest.mark.parametrize("name", NETS)
def test_a_saved_net_reloads_through_load_model_with_the_same_logits(name, tmp_path):
    loaded = load_model(name, seed=2, backend="attentive_stats")
    save_model(loaded, tmp_path / "m")
    assert frontend_for_source(str(tmp_path / "m")).name == name
    again = load_model(str(tmp_path / "m"))
    assert again.model.config.backend == "attentive_stats"
    assert any(f"{name} network loaded" in n for n in again.notes)
    x = torch.randn(2, 12_000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(x).logits, again.model(x).logits)
    with pytest.raises(ValueError, match="cannot swap its back-end"):
        load_model(str(tmp_path / "m"), backend="pooled_linear")


def test_a_saved_net_with_foreign_weights_is_refused_naming_the_file(tmp_path):
    save_model(load_model("lcnn"), tmp_path / "m")
    rawnet = load_model("rawnet").model
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in rawnet.state_dict().items()}, str(tmp_path / "m" / "model.safetensors")
    )
    with pytest.raises(ValueError, match="model.safetensors: not the weights of a lcnn network"):
        load_model(str(tmp_path / "m"))


def test_sinc_filters_pass_their_band_and_stop_above_4_khz():
    sinc = SincBandPass(n_filters=8, kernel_size=129, stride=1)
    with torch.no_grad():
        h = sinc.filters()[:, 0, :].numpy()
    response = np.abs(np.fft.rfft(h, n=4096, axis=1))
    freqs = np.fft.rfftfreq(4096, 1 / 16_000)
    low = sinc.low_hz.detach().abs().numpy()[:, 0]
    high = low + sinc.band_hz.detach().abs().numpy()[:, 0]
    for k in range(h.shape[0]):
        peak = freqs[np.argmax(response[k])]
        assert low[k] - 100 <= peak <= high[k] + 100, (k, peak, low[k], high[k])
        above = response[k][freqs > 5_000].max() / response[k].max()
        assert above < 0.05, (k, above)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rawnet"])
def test_a_trained_net_scores_the_same_in_the_detector_export_and_service(
    name: str, toy_corpus: Path, tmp_path: Path
):
    import soundfile as sf
    from fastapi.testclient import TestClient

    from deepfake_lib.config import ExperimentConfig
    from deepfake_lib.deploy import service
    from deepfake_lib.deploy.detector import Detector
    from deepfake_lib.deploy.export import export_model
    from deepfake_lib.modeling.training import fine_tune

    cfg = ExperimentConfig(
        data_source=str(toy_corpus),
        model_source=name,
        run_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=8,
        n_bootstrap=20,
        train_crop_s=1.0,
        augment_training=False,
        val_fraction=0.2,
        test_fraction=0.3,
        device="cpu",
    )
    run = fine_tune(cfg, shortcut_control=False)
    wave = np.random.default_rng(0).normal(size=20_000).astype(np.float32) * 0.1
    detector = Detector.from_source(str(run.run_dir), device="cpu")
    assert any(f"{name} network loaded" in n for n in detector.notes)
    predicted = detector.predict(wave, 16_000)
    manifest = export_model(run.run_dir, tmp_path / "export", mixed=True, parity_waves=[wave])
    assert "skipped" in manifest["mixed"] or manifest["mixed"] is None or "gate" in manifest["mixed"]
    assert manifest["parity"]["onnx"]["max_abs_score_diff"] < 1e-4
    exported = {
        runtime: Detector.from_source(str(tmp_path / "export"), device="cpu", runtime=runtime).predict(
            wave, 16_000
        )
        for runtime in ("torch", "onnx")
    }
    assert exported["onnx"].score == pytest.approx(exported["torch"].score, abs=1e-4)
    buf = io.BytesIO()
    sf.write(buf, wave, 16_000, format="WAV", subtype="FLOAT")
    with TestClient(service.create_app(str(run.run_dir), device="cpu")) as client:
        response = client.post("/predict", files={"file": ("clip.wav", buf.getvalue(), "audio/wav")})
    assert response.status_code == 200
    assert response.json()["score"] == pytest.approx(predicted.score, abs=1e-4)
