"""Tests for deepfake_lib.audio.augmentation: primitives, codecs and the training Augmenter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import signal

from deepfake_lib.audio import augmentation as augment
from deepfake_lib.audio import io as audio
from deepfake_lib.audio.augmentation import AugmentConfig, Augmenter
from deepfake_lib.audio.errors import AudioError

SR = 16_000


def make_sine(freq_hz: float, duration_s: float = 1.0, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(duration_s * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def make_speech_like(duration_s: float = 1.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonic voice with a gliding pitch, syllable-rate AM and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * sr))) / sr
    phase = 2 * np.pi * np.cumsum(110.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t)) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 - np.cos(2 * np.pi * 3.5 * t))
    wave = voice * env + 0.01 * rng.standard_normal(t.size)
    return (0.5 * wave / np.max(np.abs(wave))).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


def band_power_db(wave: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    f, p = signal.welch(wave.astype(np.float64), fs=sr, nperseg=1024)
    band = (f >= lo) & (f < hi)
    return float(10 * np.log10(np.sum(p[band]) + 1e-30))


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", augment.NOISE_KINDS)
@pytest.mark.parametrize("target", [-5.0, 0.0, 10.0, 20.0, 35.0])
def test_add_noise_hits_snr(kind, target):
    clean = make_speech_like(1.0)
    noisy = augment.add_noise(clean, target, np.random.default_rng(3), kind=kind)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert snr_db(clean, noisy) == pytest.approx(target, abs=0.1)


def test_noise_kinds_have_their_colour():
    clean = make_sine(1000, 2.0)
    rng = np.random.default_rng(0)
    noise = {k: augment.add_noise(clean, 0.0, rng, kind=k) - clean for k in augment.NOISE_KINDS}
    tilt = {k: band_power_db(n, 200, 500) - band_power_db(n, 4000, 7000) for k, n in noise.items()}
    # band powers: white favours the wide high band; pink and speech-shaped the low band
    assert tilt["white"] < -5
    assert tilt["pink"] > tilt["white"] + 5
    assert tilt["speech_shaped"] > tilt["pink"]
    assert tilt["babble"] > tilt["pink"]

    def frame_energy_spread(x):
        frames = x[: x.size // 400 * 400].reshape(-1, 400)
        return float(np.std(10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)))

    # babble is amplitude-modulated (talkers pause); the stationary kinds are not
    assert frame_energy_spread(noise["babble"]) > 2 * frame_energy_spread(noise["speech_shaped"])


def test_add_noise_reproducible_and_checks_input():
    clean = make_speech_like(0.5)
    a = augment.add_noise(clean, 10, np.random.default_rng(1), kind="pink")
    b = augment.add_noise(clean, 10, np.random.default_rng(1), kind="pink")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="silent"):
        augment.add_noise(np.zeros(100, np.float32), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="kind"):
        augment.add_noise(clean, 10, np.random.default_rng(0), kind="brown")


# --------------------------------------------------------------------------- simple transforms


def test_shift_time_roll_and_zero():
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(augment.shift_time(x, 2), [4, 5, 1, 2, 3])
    np.testing.assert_array_equal(augment.shift_time(x, 2, mode="zero"), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(augment.shift_time(x, -2, mode="zero"), [3, 4, 5, 0, 0])
    np.testing.assert_array_equal(augment.shift_time(x, 9, mode="zero"), np.zeros(5))
    with pytest.raises(ValueError):
        augment.shift_time(x, 1, mode="wrap")


def test_apply_gain_scales_without_clipping():
    x = make_sine(440, amp=0.8)
    out = augment.apply_gain(x, 6.0)
    assert out.dtype == np.float32
    assert np.max(np.abs(out)) == pytest.approx(0.8 * 10 ** (6 / 20), rel=1e-4)  # above 1: not clipped
    np.testing.assert_allclose(augment.apply_gain(x, -20.0), x * 0.1, rtol=1e-5)


def test_clip_waveform():
    x = make_sine(440, amp=0.8)
    out = augment.clip_waveform(x, 0.3)
    assert np.max(np.abs(out)) == pytest.approx(0.3)
    small = np.abs(x) < 0.3
    np.testing.assert_array_equal(out[small], x[small])
    with pytest.raises(ValueError):
        augment.clip_waveform(x, 0.0)


def test_mu_law_round_trip_quantises():
    x = make_speech_like(0.5)
    out = augment.apply_mu_law(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert len(np.unique(out)) <= 256
    assert not np.array_equal(out, x)
    assert snr_db(x, out) > 25  # 8-bit mu-law keeps speech intelligible (~35-40 dB)
    coarse = augment.apply_mu_law(x, quantization_channels=16)
    assert len(np.unique(coarse)) <= 16 and snr_db(x, coarse) < snr_db(x, out)


def test_quantize_bits():
    x = make_sine(440, amp=0.9)
    out = augment.quantize_bits(x, 8)
    assert len(np.unique(out)) <= 256
    assert np.max(np.abs(out - x)) <= 0.5 / 128 + 1e-7
    assert len(np.unique(augment.quantize_bits(x, 3))) <= 8


# --------------------------------------------------------------------------- filters


def test_band_limit_removes_out_of_band_energy():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    out = augment.band_limit(noise, SR)
    assert out.shape == noise.shape and out.dtype == np.float32
    assert band_power_db(out, 20, 150) < band_power_db(noise, 20, 150) - 30
    assert band_power_db(out, 5000, 8000) < band_power_db(noise, 5000, 8000) - 30
    assert band_power_db(out, 800, 2500) == pytest.approx(band_power_db(noise, 800, 2500), abs=1.0)
    for freq, max_db in ((100, -20), (6000, -40)):
        tone = make_sine(freq)
        gain = 10 * np.log10(np.mean(augment.band_limit(tone, SR)[2000:-2000] ** 2) / np.mean(tone**2))
        assert gain < max_db
    passed = augment.band_limit(make_sine(1000), SR)
    assert np.corrcoef(passed, make_sine(1000))[0, 1] > 0.999  # zero phase: no delay


def test_simulate_telephone_is_narrowband_and_keeps_length():
    x = make_sine(1000) + make_sine(5000)
    out = augment.simulate_telephone(x, SR)
    assert out.shape == x.shape and out.dtype == np.float32
    assert band_power_db(out, 4500, 5500) < band_power_db(x, 4500, 5500) - 40
    assert band_power_db(out, 900, 1100) == pytest.approx(band_power_db(x, 900, 1100), abs=1.0)
    odd = augment.simulate_telephone(make_sine(1000, 0.3337, sr=22_050), 22_050)
    assert odd.size == round(0.3337 * 22_050)


def test_reverb_lengthens_decay():
    burst = np.zeros(SR, np.float32)
    burst[:3200] = np.random.default_rng(0).standard_normal(3200).astype(np.float32) * 0.3
    out = augment.add_reverb(burst, SR, rt60_s=0.4, rng=np.random.default_rng(1))
    assert out.shape == burst.shape and out.dtype == np.float32
    tail_before = np.sum(burst[3400:8000] ** 2)
    tail_after = np.sum(out[3400:8000].astype(np.float64) ** 2)
    assert tail_before == 0 and tail_after > 1e-3 * np.sum(burst**2)
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(burst**2)), rel=1e-3)
    longer = augment.add_reverb(burst, SR, rt60_s=0.8, rng=np.random.default_rng(1))
    assert np.sum(longer[6000:12000] ** 2) > np.sum(out[6000:12000] ** 2)
    np.testing.assert_array_equal(out, augment.add_reverb(burst, SR, 0.4, np.random.default_rng(1)))


# --------------------------------------------------------------------------- codecs


def test_available_codecs_match_libsndfile_and_one_lossy_codec_runs():
    formats = audio.supported_formats()
    codecs = augment.available_codecs()
    for name, (key, _) in augment.CODECS.items():
        assert (name in codecs) == formats[key]
    # this environment's libsndfile (1.1+) has MP3 and Vorbis; the robustness sweep needs one
    assert "mp3" in codecs or "ogg-vorbis" in codecs


@pytest.mark.parametrize("codec", list(augment.CODECS))
@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_roundtrip_codec_changes_signal_keeps_length(codec, rate):
    if codec not in augment.available_codecs():
        pytest.skip(f"{codec} not available in this libsndfile")
    x = make_speech_like(1.0, sr=rate)[: rate - 123]  # an odd length
    out = augment.roundtrip_codec(x, rate, codec)
    assert out.shape == x.shape and out.dtype == np.float32
    assert not np.allclose(out, x, atol=1e-4)
    assert np.corrcoef(out, x)[0, 1] > 0.9  # aligned: priming delay removed


def test_roundtrip_codec_errors(monkeypatch):
    with pytest.raises(ValueError, match="codec"):
        augment.roundtrip_codec(make_sine(440), SR, "aac")
    monkeypatch.setattr(augment, "supported_formats", lambda: dict.fromkeys(audio.FORMATS, False))
    with pytest.raises(AudioError, match="codec mp3"):
        augment.roundtrip_codec(make_sine(440), SR, "mp3")
    assert augment.available_codecs() == []


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field,value",
    [
        ("p_noise", 1.5),
        ("p_reverb", -0.1),
        ("snr_db_range", (30.0, 10.0)),
        ("snr_db_range", (10.0,)),
        ("gain_db_range", (float("nan"), 1.0)),
        ("noise_kinds", ()),
        ("noise_kinds", ("white", "brown")),
        ("max_shift_s", -1.0),
        ("rt60_range_s", (0.0, 0.5)),
    ],
)
def test_augment_config_rejects_bad_values_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_augment_config_normalises_sequences():
    cfg = AugmentConfig(snr_db_range=[5, 15], noise_kinds=["babble"])
    assert cfg.snr_db_range == (5.0, 15.0) and cfg.noise_kinds == ("babble",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.p_noise = 0.2  # type: ignore[misc]


# --------------------------------------------------------------------------- augmenter

ALWAYS = AugmentConfig(
    p_noise=1.0,
    p_shift=1.0,
    p_gain=1.0,
    p_telephone=1.0,
    p_mu_law=1.0,
    p_reverb=1.0,
    noise_kinds=augment.NOISE_KINDS,
)
NEVER = AugmentConfig(p_noise=0, p_shift=0, p_gain=0, p_telephone=0, p_mu_law=0, p_reverb=0)


def test_augmenter_reproducible_by_seed():
    clips = [make_speech_like(1.0, seed=i) for i in range(6)]
    a, b, c = Augmenter(seed=5), Augmenter(seed=5), Augmenter(seed=6)
    outs_a = [a(x) for x in clips]
    outs_b = [b(x) for x in clips]
    outs_c = [c(x) for x in clips]
    for xa, xb in zip(outs_a, outs_b):
        np.testing.assert_array_equal(xa, xb)
    assert any(not np.array_equal(xa, xc) for xa, xc in zip(outs_a, outs_c))
    a.reseed(5)
    np.testing.assert_array_equal(a(clips[0]), outs_a[0])


def test_augmenter_fresh_each_call_keeps_shape_and_input():
    x = make_speech_like(1.0)
    original = x.copy()
    aug = Augmenter(ALWAYS, seed=0)
    first, second = aug(x), aug(x)
    assert not np.array_equal(first, second)
    for out in (first, second):
        assert out.dtype == np.float32 and out.shape == x.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(x, original)
    names = [d.split("(")[0] for d in aug.describe_last()]
    assert names == ["shift", "reverb", "noise", "telephone", "mu_law", "gain"]


def test_augmenter_default_varies_across_epochs():
    x = make_speech_like(1.0)
    aug = Augmenter(seed=0)
    outs = [aug(x) for _ in range(8)]
    distinct = {o.tobytes() for o in outs}
    assert len(distinct) >= 6


def test_augmenter_never_is_identity_and_handles_dtypes():
    x = make_speech_like(0.5)
    aug = Augmenter(NEVER)
    np.testing.assert_array_equal(aug(x), x)
    assert aug.describe_last() == []
    out = Augmenter(ALWAYS, seed=2)(x.astype(np.float64))
    assert out.dtype == np.float32 and out.shape == x.shape
    silent = Augmenter(ALWAYS, seed=2)(np.zeros(SR // 2, np.float32))
    assert silent.shape == (SR // 2,) and np.isfinite(silent).all()
    with pytest.raises(ValueError):
        aug(np.zeros((2, 100), np.float32))
