"""Tests for deepfake_lib.audio.io: decoding, validation, resampling, crops, windows, levels."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import soundfile as sf

from deepfake_lib.audio import io as audio
from deepfake_lib.audio import signal as audio_signal
from deepfake_lib.audio.errors import AudioError, AudioTooLongError
from deepfake_lib.audio.io import (
    MAX_DURATION_S,
    current_duration_limit,
    decode_audio,
    duration_limit,
    encode_audio,
    load_audio,
)
from deepfake_lib.audio.signal import BlockResampler, resample

LOSSLESS = {"WAV", "FLAC"}


# --------------------------------------------------------------------------- signal makers


def make_sine(freq_hz: float, sample_rate: int, duration_s: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def make_chirp(sample_rate: int, duration_s: float = 1.0) -> np.ndarray:
    """Speech-like: a harmonic voice whose pitch glides 120->220 Hz, with syllable-rate AM."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    f0 = 120.0 + 100.0 * t / duration_s
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8) if k * 220 < sample_rate / 2)
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t))
    wave = 0.3 * voice * envelope
    return (wave / np.max(np.abs(wave)) * 0.7).astype(np.float32)


def dominant_freq(wave: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / sample_rate)[np.argmax(spec)])


def write_wav(wave: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sample_rate, format="WAV", subtype=subtype)
    return buf.getvalue()


# --------------------------------------------------------------------------- formats


def test_supported_formats_reports_all_five_and_lossless_work():
    formats = audio.supported_formats()
    assert set(formats) == {"WAV", "FLAC", "OGG-VORBIS", "OGG-OPUS", "MP3"}
    assert formats["WAV"] and formats["FLAC"]
    assert audio.supported_formats() == formats  # cached probe, stable answer


@pytest.mark.parametrize("fmt", list(audio.FORMATS))
def test_format_round_trip(fmt):
    if not audio.supported_formats()[fmt]:
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot round-trip {fmt}")
    rate = 16_000
    wave = make_chirp(rate, 1.0)
    data = audio.encode_audio(wave, rate, fmt)
    assert isinstance(data, bytes) and len(data) > 100
    back, back_rate = audio.decode_audio(data)
    assert back_rate == rate
    assert back.dtype == np.float32 and back.ndim == 1
    if fmt in LOSSLESS:
        assert back.size == wave.size
        np.testing.assert_allclose(back, wave, atol=2 / 32768)
    else:
        assert abs(back.size - wave.size) <= wave.size // 100
        n = min(back.size, wave.size)
        assert np.corrcoef(back[:n], wave[:n])[0, 1] > 0.9


def test_lossy_format_at_44k_round_trip_keeps_rate():
    formats = audio.supported_formats()
    fmt = next((f for f in ("MP3", "OGG-VORBIS") if formats[f]), None)
    if fmt is None:
        pytest.skip("no lossy format here")
    wave = make_sine(1000, 44_100)
    back, rate = audio.decode_audio(audio.encode_audio(wave, 44_100, fmt))
    assert rate == 44_100
    assert dominant_freq(back, rate) == pytest.approx(1000, abs=2)


def test_encode_audio_errors_are_audio_errors():
    with pytest.raises(AudioError, match="NaN"):
        audio.encode_audio(np.array([0.1, np.nan], dtype=np.float32), 16_000)
    with pytest.raises(AudioError):
        audio.encode_audio(np.zeros(0, dtype=np.float32), 16_000)
    if audio.supported_formats()["OGG-OPUS"]:
        with pytest.raises(AudioError, match="OPUS"):
            audio.encode_audio(make_sine(440, 44_100), 44_100, "OGG-OPUS")


def test_encode_wav_clips_at_full_scale():
    data = audio.encode_audio(np.array([0.5, 1.5, -1.5, 0.1], dtype=np.float32), 16_000)
    back, _ = audio.decode_audio(data)
    assert np.all(np.abs(back) <= 1.0)
    assert back[1] > 0.99 and back[2] < -0.99


# --------------------------------------------------------------------------- inputs


def test_decode_path_str_and_pathlike(tmp_path):
    wave = make_sine(440, 22_050)
    path = tmp_path / "tone.flac"
    path.write_bytes(audio.encode_audio(wave, 22_050, "FLAC"))
    for arg in (path, str(path)):
        back, rate = audio.decode_audio(arg)
        assert rate == 22_050 and back.size == wave.size


def test_decode_file_object_and_dataset_dicts():
    wave = make_sine(440, 16_000)
    data = audio.encode_audio(wave, 16_000)
    back, rate = audio.decode_audio(io.BytesIO(data))
    assert rate == 16_000 and back.size == wave.size
    back, rate = audio.decode_audio({"bytes": data, "path": "clip_7.wav"})
    assert rate == 16_000 and back.size == wave.size
    back, rate = audio.decode_audio({"array": wave.astype(np.float64), "sampling_rate": 16_000})
    assert back.dtype == np.float32 and rate == 16_000
    with pytest.raises(AudioError, match="clip_9.wav"):
        audio.decode_audio({"bytes": b"garbage" * 20, "path": "clip_9.wav"})


def test_decode_int16_array_is_scaled():
    pcm = (make_sine(440, 16_000, amp=0.5) * 32768).astype(np.int16)
    wave, rate = audio.decode_audio(pcm, 16_000)
    assert wave.dtype == np.float32 and rate == 16_000
    assert np.max(np.abs(wave)) == pytest.approx(0.5, abs=1e-3)


def test_convert_to_float32_integer_types():
    assert audio_signal.convert_to_float32(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]
    assert audio_signal.convert_to_float32(np.array([0, 128, 192], np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    assert audio_signal.convert_to_float32(np.array([-(2**31)], np.int32)).tolist() == [-1.0]
    with pytest.raises(ValueError):
        audio_signal.convert_to_float32(np.array([True, False]))


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_decode_multichannel_array_averages_channels(layout):
    left = make_sine(440, 16_000, amp=0.4)
    right = make_sine(880, 16_000, amp=0.2)
    stacked = np.stack([left, right]) if layout == "channels_first" else np.stack([left, right], axis=1)
    wave, _ = audio.decode_audio(stacked, 16_000)
    assert wave.shape == (16_000,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_decode_stereo_file_mixes_to_mono():
    left, right = make_sine(440, 16_000, amp=0.4), make_sine(660, 16_000, amp=0.4)
    data = write_wav(np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    wave, rate = audio.decode_audio(data)
    assert wave.shape == (16_000,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_to_mono_shapes():
    assert audio.to_mono(np.ones(5)).dtype == np.float32
    assert audio.to_mono(np.ones((1, 7))).shape == (7,)
    assert audio.to_mono(np.ones((7, 2))).shape == (7,)
    with pytest.raises(ValueError):
        audio.to_mono(np.ones((2, 3, 4)))


# --------------------------------------------------------------------------- errors


def _truncated_wav() -> bytes:
    data = write_wav(make_sine(440, 16_000), 16_000)
    return data[: len(data) // 2]


def _zero_length_wav() -> bytes:
    return write_wav(np.zeros(0, dtype=np.float32), 16_000)


BYTES_ERRORS = [
    ("empty", lambda: b"", "empty"),
    ("not audio", lambda: b"this is plainly not audio, just text " * 30, "not a recognised audio format"),
    ("truncated wav", _truncated_wav, "truncated"),
    ("header only", lambda: write_wav(make_sine(440, 16_000), 16_000)[:30], ""),
    ("zero length", _zero_length_wav, "zero-length"),
    ("silence", lambda: write_wav(np.zeros(1600, dtype=np.float32), 16_000), "silence"),
    ("rate too low", lambda: write_wav(make_sine(100, 500), 500), "outside"),
]


@pytest.mark.parametrize("name,make,problem", BYTES_ERRORS, ids=[b[0] for b in BYTES_ERRORS])
def test_bad_bytes_raise_audio_error_naming_source(name, make, problem):
    with pytest.raises(AudioError) as info:
        audio.decode_audio(make(), source="row 12 of train")
    exc = info.value
    assert exc.source == "row 12 of train"
    assert str(exc).startswith("row 12 of train: ")
    assert problem in exc.problem
    assert isinstance(exc, ValueError)


def test_default_source_for_bytes_is_bytes():
    with pytest.raises(AudioError, match=r"^bytes: empty"):
        audio.decode_audio(b"")


def test_truncated_mp3_is_detected():
    if not audio.supported_formats()["MP3"]:
        pytest.skip("no MP3 here")
    data = audio.encode_audio(make_chirp(16_000, 2.0), 16_000, "MP3")
    with pytest.raises(AudioError, match="truncated"):
        audio.decode_audio(data[: len(data) // 2])


def test_missing_and_bad_files_name_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "missing_clip.wav"
    with pytest.raises(AudioError, match="missing_clip.wav: file not found"):
        audio.decode_audio(missing)
    text = tmp_path / "notes_not_audio.wav"
    text.write_text("hello " * 200)
    with pytest.raises(AudioError, match="notes_not_audio.wav: not a recognised audio format"):
        audio.decode_audio(text)
    empty = tmp_path / "empty_clip.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty_clip.wav: empty file"):
        audio.decode_audio(empty)
    with pytest.raises(AudioError, match="directory"):
        audio.decode_audio(tmp_path)


ARRAY_ERRORS = [
    ("nan", np.array([0.1, np.nan, 0.2], np.float32), 16_000, "NaN or infinite"),
    ("inf", np.array([0.1, np.inf, 0.2], np.float32), 16_000, "NaN or infinite"),
    ("silence", np.zeros(100, np.float32), 16_000, "silence"),
    ("near silence", np.full(100, 1e-9, np.float32), 16_000, "silence"),
    ("empty", np.zeros(0, np.float32), 16_000, "zero-length"),
    ("rate low", np.ones(100, np.float32) * 0.1, 999, "outside"),
    ("rate high", np.ones(100, np.float32) * 0.1, 384_001, "outside"),
    ("no rate", np.ones(100, np.float32) * 0.1, None, "sample_rate"),
    ("3-D", np.ones((2, 2, 2), np.float32), 16_000, "shape"),
]


@pytest.mark.parametrize("name,wave,rate,problem", ARRAY_ERRORS, ids=[a[0] for a in ARRAY_ERRORS])
def test_bad_arrays_raise_audio_error(name, wave, rate, problem):
    with pytest.raises(AudioError) as info:
        audio.decode_audio(wave, rate)
    assert info.value.source == "array"
    assert problem in info.value.problem


def test_validate_waveform_accepts_good_audio_and_names_source():
    audio.validate_waveform(make_sine(440, 16_000), 16_000, "x")
    audio.validate_waveform(np.array([1, -3], np.int16), 1_000, "x")
    with pytest.raises(AudioError, match=r"^clip\.wav: digital silence"):
        audio.validate_waveform(np.zeros(10, np.float32), 16_000, "clip.wav")
    with pytest.raises(AudioError, match="whole number"):
        audio.validate_waveform(make_sine(440, 16_000), 16_000.5, "x")


def test_audio_error_pickles():
    exc = pickle.loads(pickle.dumps(AudioError("a.wav", "bad")))
    assert (exc.source, exc.problem, str(exc)) == ("a.wav", "bad", "a.wav: bad")


# --------------------------------------------------------------------------- resampling


def test_resample_reuses_one_cached_kernel_per_pair():
    audio_signal.get_resampler.cache_clear()
    wave = make_sine(440, 44_100, 0.2)
    audio_signal.resample(wave, 44_100, 16_000)
    first = audio_signal.get_resampler(44_100, 16_000)
    audio_signal.resample(wave, 44_100, 16_000)
    audio_signal.resample(wave, 22_050, 16_000)
    assert audio_signal.get_resampler(44_100, 16_000) is first
    info = audio_signal.get_resampler.cache_info()
    assert info.misses == 2  # one build per distinct pair
    assert info.hits >= 2


def test_resample_identity_is_a_float32_copy():
    wave = make_sine(440, 16_000)
    out = audio_signal.resample(wave, 16_000, 16_000)
    assert out is not wave and out.dtype == np.float32
    np.testing.assert_array_equal(out, wave)


def test_resample_keeps_1khz_and_removes_10khz():
    tone = make_sine(1000, 44_100, 1.0)
    out = audio_signal.resample(tone, 44_100, 16_000)
    assert out.dtype == np.float32 and out.size == 16_000
    assert dominant_freq(out, 16_000) == pytest.approx(1000, abs=1.5)
    core = slice(500, -500)
    rms_in, rms_out = np.sqrt(np.mean(tone**2)), np.sqrt(np.mean(out[core] ** 2))
    assert 20 * np.log10(rms_out / rms_in) == pytest.approx(0.0, abs=0.1)
    high = audio_signal.resample(make_sine(10_000, 44_100, 1.0), 44_100, 16_000)
    assert 20 * np.log10(np.sqrt(np.mean(high[core] ** 2)) / rms_in) < -60


def test_resample_lengths_batches_and_dtypes():
    out = audio_signal.resample(np.random.default_rng(0).standard_normal(1001), 22_050, 16_000)
    assert out.dtype == np.float32 and out.size == int(np.ceil(1001 * 16_000 / 22_050))
    batch = audio_signal.resample(np.zeros((3, 4410), np.float32), 44_100, 16_000)
    assert batch.shape == (3, 1600)
    up = audio_signal.resample(make_sine(440, 8_000), 8_000, 16_000)
    assert up.size == 16_000 and dominant_freq(up, 16_000) == pytest.approx(440, abs=1.5)
    with pytest.raises(ValueError):
        audio_signal.resample(np.zeros(10, np.float32), 0, 16_000)


def test_resample_odd_rate_uses_bounded_fallback():
    assert audio_signal._kernel_elements(44_056, 16_000) > audio_signal.MAX_KERNEL_ELEMENTS
    out = audio_signal.resample(make_sine(1000, 44_056), 44_056, 16_000)
    assert out.size == 16_000
    assert dominant_freq(out, 16_000) == pytest.approx(1000, abs=1.5)


def test_load_audio_decodes_and_resamples():
    data = write_wav(make_sine(1000, 44_100, 0.5), 44_100)
    wave = audio.load_audio(data)
    assert wave.dtype == np.float32 and wave.shape == (8000,)
    assert dominant_freq(wave, 16_000) == pytest.approx(1000, abs=2.5)
    assert audio.load_audio(data, target_sr=22_050).shape == (11_025,)


# --------------------------------------------------------------------------- crops


def test_crop_deterministic_without_rng():
    wave = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(audio_signal.crop_or_pad(wave, 30), wave[:30])


def test_random_crop_is_contiguous_reproducible_and_varies():
    wave = np.arange(1000, dtype=np.float32)
    starts = []
    for _ in range(20):
        out = audio_signal.crop_or_pad(wave, 100, rng=np.random.default_rng(len(starts)))
        assert np.all(np.diff(out) == 1)
        starts.append(int(out[0]))
    assert len(set(starts)) > 5
    a = audio_signal.crop_or_pad(wave, 100, rng=np.random.default_rng(7))
    b = audio_signal.crop_or_pad(wave, 100, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_pad_modes():
    wave = np.array([1, 2, 3], dtype=np.float32)
    np.testing.assert_array_equal(audio_signal.crop_or_pad(wave, 7), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(audio_signal.crop_or_pad(wave, 5, mode="zero"), [1, 2, 3, 0, 0])
    out = audio_signal.crop_or_pad(wave, 3)
    assert out is not wave and out.dtype == np.float32
    with pytest.raises(ValueError):
        audio_signal.crop_or_pad(wave, 5, mode="reflect")
    with pytest.raises(ValueError):
        audio_signal.crop_or_pad(wave, 0)


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    "n,window,hop", [(100, 30, 20), (90, 30, 30), (10, 30, 10), (31, 30, 1), (64_000, 16_000, 8_000)]
)
def test_windows_cover_every_sample(n, window, hop):
    wave = np.arange(n, dtype=np.float32) + 1
    frames = audio_signal.frame_windows(wave, window, hop)
    starts = audio_signal.window_starts(n, window, hop)
    assert frames.shape == (starts.size, window) and frames.dtype == np.float32
    covered = np.zeros(n, bool)
    for s, frame in zip(starts, frames):
        covered[s : s + window] = True
        stop = min(s + window, n)
        np.testing.assert_array_equal(frame[: stop - s], wave[s:stop])
    assert covered.all()
    assert starts[-1] < n  # no window starts past the clip


def test_windows_padding_modes():
    wave = np.arange(1, 101, dtype=np.float32)
    last = audio_signal.frame_windows(wave, 30, 20)[-1]  # starts at 80: 20 real samples + 10 padded
    np.testing.assert_array_equal(last, np.concatenate([wave[80:], wave[:10]]))
    last_zero = audio_signal.frame_windows(wave, 30, 20, mode="zero")[-1]
    np.testing.assert_array_equal(last_zero[20:], 0)
    short = audio_signal.frame_windows(np.array([1, 2, 3], np.float32), 7, 2)
    np.testing.assert_array_equal(short, [[1, 2, 3, 1, 2, 3, 1]])
    with pytest.raises(ValueError):
        audio_signal.window_starts(100, 10, 20)


# --------------------------------------------------------------------------- levels


def test_level_stats_full_scale_sine():
    stats = audio_signal.level_stats(make_sine(1000, 16_000, 2.0, amp=1.0), 16_000)
    assert stats["duration_s"] == pytest.approx(2.0)
    assert stats["peak_dbfs"] == pytest.approx(0.0, abs=1e-4)
    assert stats["rms_dbfs"] == pytest.approx(-3.0103, abs=0.005)
    assert stats["crest_db"] == pytest.approx(3.0103, abs=0.005)
    assert stats["zero_crossing_rate"] == pytest.approx(2 * 1000 / 16_000, rel=0.01)
    assert abs(stats["dc_offset"]) < 1e-4


def test_level_stats_offset_clipping_and_silence():
    wave = np.clip(make_sine(100, 16_000, amp=2.0), -1, 1) * 0.5 + 0.25
    stats = audio_signal.level_stats(wave, 16_000)
    assert stats["dc_offset"] == pytest.approx(0.25, abs=1e-3)
    loud = np.clip(make_sine(100, 16_000, amp=2.0), -1, 1)
    clipped = audio_signal.level_stats(loud, 16_000)["clipped_fraction"]
    assert 0.5 < clipped < 0.8  # sin > 0.5 two-thirds of the time
    quiet = audio_signal.level_stats(np.zeros(100, np.float32), 16_000)
    assert quiet["rms_dbfs"] == audio_signal.DBFS_FLOOR and quiet["crest_db"] == 0.0
    half = audio_signal.level_stats(make_sine(440, 16_000, amp=0.5), 16_000)
    assert half["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)


# --------------------------------------------------------------------------- bounded decoding


def _flac_with_total_samples(wave: np.ndarray, sr: int, total: int) -> bytes:
    """A FLAC of ``wave`` whose STREAMINFO claims ``total`` samples (0 = unknown length)."""
    data = bytearray(encode_audio(wave, sr, "FLAC"))
    field = int.from_bytes(data[18:26], "big")
    data[18:26] = ((field & ~((1 << 36) - 1)) | total).to_bytes(8, "big")
    return bytes(data)


def test_forged_header_length_is_refused_before_decoding():
    wave = (0.3 * np.sin(np.arange(32_000) / 5)).astype(np.float32)
    forged = _flac_with_total_samples(wave, 16_000, (1 << 36) - 1)
    with pytest.raises(
        AudioTooLongError, match=r"bytes: header declares 68719476735 samples .* limit of 600 s"
    ) as info:
        load_audio(forged, max_duration_s=600)
    assert info.value.limit_s == 600 and info.value.duration_s > 4e6


def test_length_is_enforced_while_decoding_when_the_header_says_nothing():
    wave = (0.3 * np.sin(np.arange(48_000) / 5)).astype(np.float32)  # 3 s at 16 kHz
    unknown = _flac_with_total_samples(wave, 16_000, 0)
    assert decode_audio(unknown, max_duration_s=5)[0].shape == (48_000,)
    with pytest.raises(AudioTooLongError, match="decodes to more than 2 s .* declared no length"):
        decode_audio(unknown, max_duration_s=2)
    with duration_limit(2.5):
        assert current_duration_limit() == 2.5
        with pytest.raises(AudioTooLongError):
            load_audio(unknown)
        assert load_audio(unknown, max_duration_s=4).shape == (48_000,)  # a call's own limit wins
    assert current_duration_limit() == MAX_DURATION_S
    with pytest.raises(AudioTooLongError, match="over the limit of 1 s"):
        load_audio(wave, 16_000, max_duration_s=1)  # arrays too
    with pytest.raises(ValueError, match="max_duration_s"):
        load_audio(wave, 16_000, max_duration_s=0)


@pytest.mark.parametrize("orig_sr", [8_000, 22_050, 44_100, 48_000, 96_000])
def test_block_resampler_equals_whole_signal_resampling(orig_sr):
    rng = np.random.default_rng(orig_sr)
    wave = (0.1 * rng.standard_normal(orig_sr * 3 + 137)).astype(np.float32)
    stream = BlockResampler(orig_sr, 16_000, block_frames=3_000)
    pieces = [stream.push(wave[i : i + 4_321]) for i in range(0, wave.size, 4_321)] + [stream.finish()]
    streamed = np.concatenate(pieces)
    whole = resample(wave, orig_sr, 16_000)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_block_resampler_fft_fallback_stays_close_to_the_tone():
    sr = 44_056  # a rate pair whose polyphase kernel is too large
    t = np.arange(sr * 3) / sr
    stream = BlockResampler(sr, 16_000, block_frames=10_000)
    wave = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = np.concatenate(
        [stream.push(wave[i : i + 9_999]) for i in range(0, wave.size, 9_999)] + [stream.finish()]
    )
    ideal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(out.size) / 16_000)
    assert out.size == 48_000
    assert np.max(np.abs(out - ideal)[2_000:-2_000]) < 0.05


def test_load_audio_streams_long_audio_equal_to_decode_then_resample():
    sr = 44_100
    wave = (0.3 * np.sin(2 * np.pi * 300 * np.arange(sr * 8) / sr)).astype(np.float32)
    data = encode_audio(np.stack([wave, 0.5 * wave], axis=1), sr, "WAV", "FLOAT")
    streamed = load_audio(data)
    native, rate = decode_audio(data)
    np.testing.assert_allclose(streamed, resample(native, rate, 16_000), atol=1e-5)


def test_links_and_random_bytes_get_clear_errors(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.symlink_to(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="broken.wav: broken link"):
        decode_audio(broken)
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop.name)
    with pytest.raises(AudioError, match="loop.wav: cannot read file .*symbolic links"):
        load_audio(loop)
    noise = np.random.default_rng(1).bytes(5000)  # libsndfile's MP3 probe says "possibly a pipe?"
    with pytest.raises(AudioError, match="not a recognised audio format") as info:
        decode_audio(noise)
    assert "pipe" not in str(info.value)
