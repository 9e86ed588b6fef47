"""Waveform augmentation and degradations.

Two uses of the same primitives:

1. on-the-fly training augmentation: :class:`Augmenter` draws fresh parameters from its own
   generator on every call (the collator calls it per example per epoch), so each epoch sees
   a different version of each clip and validation clips are never touched;
2. deterministic degradations for a robustness sweep: call the primitives directly with
   fixed parameters and a seeded ``np.random.Generator``.

Every primitive maps float32 ``[samples]`` to float32 ``[samples]`` of the same length and
never modifies its input.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from math import gcd

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from scipy import fft as sp_fft
from scipy import signal

from deepfake_lib.audio.errors import AudioError
from deepfake_lib.audio.io import FORMATS, decode_audio, encode_audio, supported_formats
from deepfake_lib.audio.signal import resample

__all__ = [
    "add_noise",
    "add_reverb",
    "apply_gain",
    "apply_mu_law",
    "AugmentConfig",
    "Augmenter",
    "available_codecs",
    "BABBLE_TALKERS",
    "band_limit",
    "clip_waveform",
    "CODECS",
    "ENVELOPE_RATE",
    "NOISE_KINDS",
    "quantize_bits",
    "roundtrip_codec",
    "shift_time",
    "simulate_telephone",
    "TELEPHONE_RATE",
]

NOISE_KINDS: tuple[str, ...] = ("white", "pink", "speech_shaped", "babble")
"""Noise colours accepted by :func:`add_noise`."""
CODECS: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "mp3": ("MP3", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "ogg-vorbis": ("OGG-VORBIS", None),
    "ogg-opus": ("OGG-OPUS", (8000, 12000, 16000, 24000, 48000)),
}
"""Codec name -> (key of :data:`deepfake_lib.audio.io.FORMATS`, sample rates the encoder
accepts in Hz, or None for any)."""
BABBLE_TALKERS = 6
"""Number of noise talkers summed in ``"babble"`` noise."""
TELEPHONE_RATE = 8_000
"""Sample rate (Hz) of the simulated telephone channel."""


def _as_wave(wave: np.ndarray) -> np.ndarray:
    """``wave`` as float32 ``[samples]`` (no copy when already float32)."""
    arr = np.asarray(wave)
    if arr.ndim != 1:
        raise ValueError(f"expected a [samples] waveform, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


# --------------------------------------------------------------------------- noise


@functools.lru_cache(maxsize=16)
def _noise_shape(n: int, sample_rate: int, kind: str) -> np.ndarray:
    """Amplitude response ``[n // 2 + 1]`` for shaping white noise of length ``n`` (cached)."""
    f = sp_fft.rfftfreq(n, d=1.0 / sample_rate)
    if kind == "pink":
        # 1/f power (-3 dB/octave) from 20 Hz up; nothing below (inaudible, would dominate power)
        shape = np.where(f >= 20.0, 1.0 / np.sqrt(np.maximum(f, 20.0)), 0.0)
    elif kind in ("speech_shaped", "babble"):
        # long-term speech spectrum: flat 100-500 Hz, -6 dB/octave above 500 Hz,
        # a second-order high-pass at 100 Hz
        low = (f / 100.0) ** 2 / (1.0 + (f / 100.0) ** 2)
        shape = low / np.sqrt(1.0 + (f / 500.0) ** 2)
    else:
        raise ValueError(f"no spectral shape for noise kind {kind!r}")
    shape = shape.astype(np.float64)
    shape.setflags(write=False)
    return shape


ENVELOPE_RATE = 100
"""Control rate (Hz) of the babble talkers' syllable-rate envelopes."""


def _syllabic_envelopes(k: int, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``[k, n]`` non-negative envelopes: 1-8 Hz band-limited noise with pauses, drawn at
    :data:`ENVELOPE_RATE` and linearly interpolated to ``sample_rate``."""
    n_ctrl = max(2, int(math.ceil(n * ENVELOPE_RATE / sample_rate)) + 1)
    f = sp_fft.rfftfreq(n_ctrl, d=1.0 / ENVELOPE_RATE)
    band = (f >= 1.0) & (f <= 8.0)
    ctrl = sp_fft.irfft(sp_fft.rfft(rng.standard_normal((k, n_ctrl)), axis=-1) * band, n_ctrl, axis=-1)
    ctrl /= np.std(ctrl, axis=-1, keepdims=True) + 1e-12
    ctrl = np.maximum(ctrl + 0.5, 0.0)
    pos = np.arange(n) * (ENVELOPE_RATE / sample_rate)
    i0 = np.minimum(pos.astype(np.int64), n_ctrl - 2)
    frac = (pos - i0).astype(np.float32)
    return ctrl[:, i0] * (1.0 - frac) + ctrl[:, i0 + 1] * frac


def _shaped_noise(n: int, sample_rate: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Float64 noise ``[n]`` of a kind (unnormalised level)."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind in ("pink", "speech_shaped"):
        spec = sp_fft.rfft(rng.standard_normal(n)) * _noise_shape(n, sample_rate, kind)
        return sp_fft.irfft(spec, n)
    if kind == "babble":
        k = BABBLE_TALKERS
        # each talker: speech-shaped noise with its own low-pass corner (a "voice"), gated
        # by a syllable-rate envelope with pauses, at its own level (float32 for speed)
        f = sp_fft.rfftfreq(n, d=1.0 / sample_rate)
        corner = rng.uniform(250.0, 900.0, size=(k, 1))
        tilt = np.sqrt(1.0 + (f / 500.0) ** 2) / np.sqrt(1.0 + (f / corner) ** 2)
        shape = (_noise_shape(n, sample_rate, "babble") * tilt).astype(np.float32)
        spec = sp_fft.rfft(rng.standard_normal((k, n), dtype=np.float32), axis=-1)
        talkers = sp_fft.irfft(spec * shape, n, axis=-1)
        talkers /= np.std(talkers, axis=-1, keepdims=True) + 1e-12
        gains = rng.uniform(0.5, 1.0, size=(k, 1)).astype(np.float32)
        env = _syllabic_envelopes(k, n, sample_rate, rng)
        return np.sum(talkers * env * gains, axis=0, dtype=np.float64)
    raise ValueError(f"kind={kind!r}; expected one of {NOISE_KINDS}")


def add_noise(
    wave: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    *,
    kind: str = "white",
    sample_rate: int = 16_000,
) -> np.ndarray:
    """Add noise at exactly ``snr_db`` dB SNR (signal power / added noise power).

    ``kind``: ``"white"``; ``"pink"`` (-3 dB/octave from 20 Hz); ``"speech_shaped"`` (flat
    100-500 Hz, -6 dB/octave above); ``"babble"`` (six speech-shaped noise talkers with their
    own spectral tilt, gated at syllable rate, 1-8 Hz). ``sample_rate`` (Hz) places the
    coloured spectra. The noise is scaled to the measured power of ``wave``, so the SNR is
    exact; a silent wave raises ValueError.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {NOISE_KINDS}")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    x = _as_wave(wave)
    p_signal = _power(x)
    if p_signal <= 0.0:
        raise ValueError("cannot set an SNR on a silent waveform")
    noise = _shaped_noise(x.size, int(sample_rate), kind, rng)
    p_noise = _power(noise)
    if p_noise <= 0.0:  # a 1-sample clip with a coloured kind has no non-DC bins
        noise = rng.standard_normal(x.size)
        p_noise = _power(noise)
    noise *= math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


# --------------------------------------------------------------------------- simple transforms


def shift_time(wave: np.ndarray, shift_samples: int, *, mode: str = "roll") -> np.ndarray:
    """Shift ``wave [samples]`` later by ``shift_samples`` (negative: earlier).
    ``mode="roll"`` wraps around; ``mode="zero"`` fills the vacated samples with zeros."""
    x = _as_wave(wave)
    s = int(shift_samples)
    if mode == "roll":
        return np.roll(x, s) if x.size else x.copy()
    if mode != "zero":
        raise ValueError(f"mode={mode!r}; expected 'roll' or 'zero'")
    out = np.zeros_like(x)
    if abs(s) < x.size:
        if s >= 0:
            out[s:] = x[: x.size - s]
        else:
            out[:s] = x[-s:]
    return out


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale ``wave`` by ``gain_db`` dB (amplitude factor 10**(gain_db/20)); no clipping."""
    if not math.isfinite(gain_db):
        raise ValueError(f"gain_db must be finite, got {gain_db}")
    return (_as_wave(wave) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def clip_waveform(wave: np.ndarray, threshold: float) -> np.ndarray:
    """Hard-clip ``wave`` at ±``threshold`` (linear amplitude, e.g. 0.3)."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    return np.clip(_as_wave(wave), -threshold, threshold).astype(np.float32)


def quantize_bits(wave: np.ndarray, bits: int) -> np.ndarray:
    """Round ``wave`` to signed ``bits``-bit PCM levels (step 2**(1-bits)), clipping to
    the integer range as a PCM writer would, and return float32."""
    bits = int(bits)
    if not 2 <= bits <= 32:
        raise ValueError(f"bits must be in [2, 32], got {bits}")
    scale = float(2 ** (bits - 1))
    q = np.clip(np.round(_as_wave(wave).astype(np.float64) * scale), -scale, scale - 1)
    return (q / scale).astype(np.float32)


def apply_mu_law(wave: np.ndarray, quantization_channels: int = 256) -> np.ndarray:
    """Mu-law encode and decode (``torchaudio.functional.mu_law_encoding``/``decoding``),
    as a G.711-style channel; input is clipped to [-1, 1] first."""
    if int(quantization_channels) < 2:
        raise ValueError(f"quantization_channels must be >= 2, got {quantization_channels}")
    x = np.clip(_as_wave(wave), -1.0, 1.0)
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(x))
        codes = AF.mu_law_encoding(t, int(quantization_channels))
        out = AF.mu_law_decoding(codes, int(quantization_channels))
    return out.numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------- filters


@functools.lru_cache(maxsize=64)
def _band_sos(sample_rate: int, low_hz: float, high_hz: float, order: int) -> np.ndarray:
    nyquist = sample_rate / 2.0
    if low_hz > 0 and high_hz < nyquist:
        sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    elif low_hz > 0:
        sos = signal.butter(order, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = signal.butter(order, high_hz, btype="lowpass", fs=sample_rate, output="sos")
    return sos  # left writable: scipy's sosfilt rejects read-only coefficient buffers


def band_limit(
    wave: np.ndarray,
    sample_rate: int,
    low_hz: float = 300.0,
    high_hz: float = 3400.0,
    *,
    order: int = 4,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass ``low_hz``-``high_hz`` Hz (``scipy.signal.sosfiltfilt``;
    the forward-backward pass doubles the attenuation of an order-``order`` design). A band
    edge at 0 Hz or at/above Nyquist drops that side. Filters are cached per rate and band."""
    x = _as_wave(wave)
    sample_rate = int(sample_rate)
    if not 0 <= low_hz < high_hz:
        raise ValueError(f"need 0 <= low_hz < high_hz, got {low_hz}, {high_hz}")
    if low_hz >= sample_rate / 2:
        raise ValueError(f"low_hz={low_hz} is at or above Nyquist ({sample_rate / 2} Hz)")
    if low_hz <= 0 and high_hz >= sample_rate / 2:
        return x.copy()
    sos = _band_sos(sample_rate, float(low_hz), float(high_hz), int(order))
    if x.size < 2:
        return x.copy()
    padlen = min(3 * (2 * sos.shape[0] + 1), x.size - 1)
    return signal.sosfiltfilt(sos, x.astype(np.float64), padlen=padlen).astype(np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``x`` at the end to ``n`` samples."""
    if x.size >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - x.size, dtype=x.dtype)])


def simulate_telephone(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Narrowband telephone channel: resample to 8 kHz and back, then band-pass 300-3400 Hz.

    Uses polyphase resampling (``scipy.signal.resample_poly``): a telephone channel needs no
    studio-grade kernel, and this one is about ten times cheaper than the data pipeline's.
    """

    x = _as_wave(wave)
    sample_rate = int(sample_rate)
    if x.size == 0:
        return x.copy()
    if sample_rate != TELEPHONE_RATE:
        g = gcd(sample_rate, TELEPHONE_RATE)
        up, down = TELEPHONE_RATE // g, sample_rate // g
        narrow = signal.resample_poly(x, up, down)
        x = _fit_length(signal.resample_poly(narrow, down, up).astype(np.float32), x.size)
    return band_limit(x, sample_rate, 300.0, 3400.0)


def add_reverb(
    wave: np.ndarray,
    sample_rate: int,
    rt60_s: float,
    rng: np.random.Generator,
    *,
    wet: float = 0.5,
) -> np.ndarray:
    """Room reverberation: convolve with a noise impulse response decaying by 60 dB over
    ``rt60_s`` seconds (``scipy.signal.fftconvolve``), trim to the input length, mix
    ``wet`` (0-1) of it with the dry signal at equal RMS, and match the input RMS."""
    x = _as_wave(wave)
    if not rt60_s > 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    if not 0.0 <= wet <= 1.0:
        raise ValueError(f"wet must be in [0, 1], got {wet}")
    rms_in = math.sqrt(_power(x))
    if rms_in == 0.0 or wet == 0.0:
        return x.copy()
    n_ir = max(2, int(round(rt60_s * sample_rate)))
    t = np.arange(n_ir) / float(sample_rate)
    ir = rng.standard_normal(n_ir) * np.exp(-math.log(1000.0) * t / rt60_s)
    ir[0] = abs(ir[0])
    reverberant = signal.fftconvolve(x.astype(np.float64), ir)[: x.size]
    rms_rev = math.sqrt(_power(reverberant))
    if rms_rev > 0:
        reverberant *= rms_in / rms_rev
    mixed = (1.0 - wet) * x + wet * reverberant
    rms_mix = math.sqrt(_power(mixed))
    if rms_mix > 0:
        mixed *= rms_in / rms_mix
    return mixed.astype(np.float32)


# --------------------------------------------------------------------------- codecs


def available_codecs() -> list[str]:
    """Codecs of :func:`roundtrip_codec` that this libsndfile can encode and decode."""
    formats = supported_formats()
    return [name for name, (key, _) in CODECS.items() if formats.get(key, False)]


def roundtrip_codec(
    wave: np.ndarray,
    sample_rate: int,
    codec: str,
    *,
    compression_level: float | None = None,
) -> np.ndarray:
    """Encode and decode ``wave`` through a lossy codec with libsndfile.

    ``codec``: ``"mp3"``, ``"ogg-vorbis"`` or ``"ogg-opus"``; ``compression_level`` in [0, 1]
    (0 = highest bitrate; None = libsndfile's default). Rates the encoder does not take
    (e.g. 44.1 kHz for Opus) go through the nearest higher rate it does. The output has the
    input's length (the decoder's priming and padding are trimmed or zero-filled). Raises
    :class:`AudioError` naming the codec when libsndfile here lacks it.
    """
    if codec not in CODECS:
        raise ValueError(f"codec={codec!r}; expected one of {tuple(CODECS)}")
    key, rates = CODECS[codec]
    source = f"codec {codec}"
    if not supported_formats().get(key, False):
        fmt, subtype = FORMATS[key]
        problem = f"libsndfile {sf.__libsndfile_version__} here cannot encode and decode {fmt}/{subtype}"
        raise AudioError(source, problem)
    x = _as_wave(wave)
    if x.size == 0:
        return x.copy()
    sample_rate = int(sample_rate)
    codec_rate = sample_rate
    if rates is not None and sample_rate not in rates:
        codec_rate = next((r for r in rates if r >= sample_rate), rates[-1])
    y = resample(x, sample_rate, codec_rate) if codec_rate != sample_rate else x
    data = encode_audio(y, codec_rate, key, compression_level=compression_level)
    try:
        decoded, rate = decode_audio(data, source=source)
    except AudioError as exc:
        if "silence" not in exc.problem:
            raise
        decoded, rate = np.zeros(y.size, dtype=np.float32), codec_rate
    if rate != sample_rate:
        decoded = resample(decoded, rate, sample_rate)
    return _fit_length(decoded.astype(np.float32, copy=False), x.size)


# --------------------------------------------------------------------------- training augmenter


def _check_range(
    name: str, value: Sequence[float], *, low: float = -math.inf, strict_low: bool = False
) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"AugmentConfig.{name} must be a (low, high) pair, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"AugmentConfig.{name} must be finite with low <= high, got {value!r}")
    if lo < low or (strict_low and lo <= low):
        bound = ">" if strict_low else ">="
        raise ValueError(f"AugmentConfig.{name} must be {bound} {low}, got {value!r}")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (0-1) and parameter ranges of the training :class:`Augmenter`.

    Each transform is applied independently with its probability, in the order shift,
    reverb, noise, telephone, mu-law, gain. SNRs and gains in dB, shift and RT60 in seconds.
    The defaults are mild: with noise on half the clips at 10-30 dB and twice the channel
    effects, the tiny default reached test EERs of 8.9/11.1/20.0% on seeds 0/1/2 of the embedded
    corpus, against 8.9/8.9/13.3% with these values (2 AVX-512 cores; ``bench_training.py`` repeats the
    seeds).
    """

    p_noise: float = 0.25
    snr_db_range: tuple[float, float] = (15.0, 35.0)
    noise_kinds: tuple[str, ...] = ("white", "pink", "speech_shaped")
    p_shift: float = 0.5
    max_shift_s: float = 0.5
    p_gain: float = 0.5
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    p_telephone: float = 0.05
    p_mu_law: float = 0.05
    p_reverb: float = 0.1
    rt60_range_s: tuple[float, float] = (0.1, 0.5)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name.startswith("p_"):
                value = getattr(self, field.name)
                is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if not is_number or not 0.0 <= value <= 1.0:
                    raise ValueError(
                        f"AugmentConfig.{field.name} must be a probability in [0, 1], got {value!r}"
                    )
        object.__setattr__(self, "snr_db_range", _check_range("snr_db_range", self.snr_db_range))
        object.__setattr__(self, "gain_db_range", _check_range("gain_db_range", self.gain_db_range))
        object.__setattr__(
            self, "rt60_range_s", _check_range("rt60_range_s", self.rt60_range_s, low=0.0, strict_low=True)
        )
        kinds = (self.noise_kinds,) if isinstance(self.noise_kinds, str) else tuple(self.noise_kinds)
        if not kinds or any(k not in NOISE_KINDS for k in kinds):
            raise ValueError(
                f"AugmentConfig.noise_kinds must be a non-empty subset of {NOISE_KINDS}, "
                f"got {self.noise_kinds!r}"
            )
        object.__setattr__(self, "noise_kinds", kinds)
        if not isinstance(self.max_shift_s, (int, float)) or not 0.0 <= self.max_shift_s < math.inf:
            raise ValueError(f"AugmentConfig.max_shift_s must be >= 0 seconds, got {self.max_shift_s!r}")


class Augmenter:
    """Random training augmentation, freshly drawn on every call.

    ``Augmenter(config, sample_rate=16_000, seed=0)(wave)`` returns an augmented float32
    copy of ``wave [samples]`` with the same length. Parameters come from the augmenter's
    own ``np.random.Generator``, so two augmenters with the same seed fed the same sequence
    of clips give identical outputs, and successive calls (epochs) differ. In DataLoader
    workers, call :meth:`reseed` with a per-worker seed, or every worker repeats the same
    draws.
    """

    def __init__(self, config: AugmentConfig = AugmentConfig(), sample_rate: int = 16_000, seed: int = 0):
        if not isinstance(config, AugmentConfig):
            raise TypeError(f"config must be an AugmentConfig, got {type(config).__name__}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.config = config
        self.sample_rate = int(sample_rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._last: list[str] = []

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` (e.g. per DataLoader worker)."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Augmenter({self.config!r}, sample_rate={self.sample_rate}, seed={self.seed!r})"

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Augmented float32 copy of ``wave [samples]`` (same length; input untouched)."""
        cfg, rng, sr = self.config, self._rng, self.sample_rate
        x = np.array(_as_wave(wave), dtype=np.float32, copy=True)
        applied: list[str] = []
        # one uniform per transform, always drawn, so the decision stream is fixed per call
        u_shift, u_reverb, u_noise, u_tel, u_mu, u_gain = rng.random(6)
        if x.size == 0:
            self._last = applied
            return x

        if u_shift < cfg.p_shift and cfg.max_shift_s > 0:
            max_shift = int(round(cfg.max_shift_s * sr))
            shift = int(rng.integers(-max_shift, max_shift + 1))
            x = shift_time(x, shift, mode="roll")
            applied.append(f"shift({shift:+d} samples = {shift / sr:+.3f} s, roll)")
        if u_reverb < cfg.p_reverb:
            rt60 = float(rng.uniform(*cfg.rt60_range_s))
            wet = float(rng.uniform(0.2, 0.6))
            x = add_reverb(x, sr, rt60, rng, wet=wet)
            applied.append(f"reverb(rt60={rt60:.2f} s, wet={wet:.2f})")
        if u_noise < cfg.p_noise:
            kind = cfg.noise_kinds[int(rng.integers(len(cfg.noise_kinds)))]
            snr = float(rng.uniform(*cfg.snr_db_range))
            if _power(x) > 0.0:
                x = add_noise(x, snr, rng, kind=kind, sample_rate=sr)
                applied.append(f"noise({kind}, snr={snr:.1f} dB)")
        if u_tel < cfg.p_telephone:
            x = simulate_telephone(x, sr)
            applied.append("telephone(8 kHz, 300-3400 Hz)")
        if u_mu < cfg.p_mu_law:
            x = apply_mu_law(x)
            applied.append("mu_law(256 levels)")
        if u_gain < cfg.p_gain:
            gain = float(rng.uniform(*cfg.gain_db_range))
            x = apply_gain(x, gain)
            applied.append(f"gain({gain:+.1f} dB)")
        self._last = applied
        return x.astype(np.float32, copy=False)

    def describe_last(self) -> list[str]:
        """Names and parameters of the transforms applied by the last call, in order."""
        return list(self._last)
