"""Audio input and output: decode, validate, mix to mono, resample, crop and frame.

Every waveform in the project is a float32 numpy array, mono, shape ``[samples]``, values
nominally in [-1, 1]. :func:`load_audio` is the one call the data pipeline makes: it decodes
bytes, a path or an array, mixes to mono, checks the result and resamples to 16 kHz.

Decoding goes through ``soundfile`` (libsndfile), never FFmpeg, so it works where
``datasets``/``torchaudio.load`` would need torchcodec. Resampling uses
``torchaudio.transforms.Resample`` with one cached kernel per rate pair.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import re
from collections.abc import Mapping
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 1_000
"""Lowest sample rate (Hz) accepted as audio."""
MAX_SAMPLE_RATE = 384_000
"""Highest sample rate (Hz) accepted as audio."""
SILENCE_PEAK = 1e-8
"""A waveform whose absolute peak is below this is treated as digital silence."""
CLIP_LEVEL = 0.999
"""Absolute sample value at or above which :func:`level_stats` counts a sample as clipped."""
DBFS_FLOOR = -200.0
"""Level (dBFS) reported for an all-zero signal instead of minus infinity."""

RESAMPLE_PARAMS: dict[str, Any] = {
    "lowpass_filter_width": 64,
    "rolloff": 0.9475937167399596,
    "resampling_method": "sinc_interp_kaiser",
    "beta": 14.769656459379492,
}
"""Kernel of every :func:`resample` call: the "kaiser_best" design of resampy/librosa.

torchaudio's default (Hann window, width 6) lets a 9 kHz tone through at -17 dB when going
from 44.1 to 16 kHz (aliased to 7 kHz); this design rejects it by over 140 dB for about 60 %
more compute per call, which caching makes cheap.
"""
MAX_KERNEL_ELEMENTS = 1 << 22
"""Rate pairs whose polyphase kernel would exceed this many taps (odd rates such as
44 056 Hz, whose reduced ratio has a large numerator and denominator) are resampled with an
FFT (``scipy.signal.resample``) instead, to keep memory and time bounded."""

FORMATS: dict[str, tuple[str, str]] = {
    "WAV": ("WAV", "PCM_16"),
    "FLAC": ("FLAC", "PCM_16"),
    "OGG-VORBIS": ("OGG", "VORBIS"),
    "OGG-OPUS": ("OGG", "OPUS"),
    "MP3": ("MP3", "MPEG_LAYER_III"),
}
"""Format names used by :func:`supported_formats`, mapped to libsndfile (format, subtype)."""

AudioInput = Union[bytes, bytearray, memoryview, str, os.PathLike, np.ndarray, BinaryIO, Mapping]


class AudioError(ValueError):
    """Bad audio: undecodable, truncated, empty, silent, non-finite or at an impossible rate.

    Attributes: ``source`` (where the audio came from: a file path, ``'bytes'``,
    ``'row 12 of train'``...) and ``problem`` (what is wrong with it).
    """

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = str(problem)
        super().__init__(f"{self.source}: {self.problem}")

    def __reduce__(self):  # keep pickling (DataLoader workers) working with two arguments
        return (type(self), (self.source, self.problem))


# --------------------------------------------------------------------------- validation


def _check_rate(sample_rate: Any, source: str) -> int:
    """Sample rate as an int in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE], else AudioError."""
    try:
        rate_f = float(sample_rate)
    except (TypeError, ValueError):
        raise AudioError(source, f"sample rate {sample_rate!r} is not a number") from None
    if not math.isfinite(rate_f) or rate_f != int(rate_f):
        raise AudioError(source, f"sample rate {sample_rate!r} is not a whole number of Hz")
    rate = int(rate_f)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            source,
            f"sample rate {rate} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz",
        )
    return rate


def validate_waveform(wave: np.ndarray, sample_rate: int, source: str) -> None:
    """Raise :class:`AudioError` naming ``source`` unless ``wave`` is usable audio.

    Checks: sample rate (Hz) within [1 kHz, 384 kHz]; at least one sample; no NaN or
    infinite samples; not digital silence (absolute peak below ``SILENCE_PEAK``).
    ``wave`` is ``[samples]`` (or ``[samples, channels]``; all channels are checked).
    """
    _check_rate(sample_rate, source)
    arr = np.asarray(wave)
    if arr.ndim == 0 or arr.size == 0:
        raise AudioError(source, "zero-length audio (no samples)")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise AudioError(source, f"samples of dtype {arr.dtype} are not real numbers")
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            n_bad = int(arr.size - np.count_nonzero(finite))
            raise AudioError(source, f"{n_bad} of {arr.size} samples are NaN or infinite")
    peak = float(np.max(np.abs(arr))) if arr.size else 0.0
    if np.issubdtype(arr.dtype, np.integer):
        peak /= float(np.iinfo(arr.dtype).max)
    if peak < SILENCE_PEAK:
        raise AudioError(source, f"digital silence (peak {peak:.1e} < {SILENCE_PEAK:.0e})")


# --------------------------------------------------------------------------- conversion


def convert_to_float32(wave: np.ndarray) -> np.ndarray:
    """Samples as float32; integer PCM is scaled to [-1, 1) (int16 by 1/32768, uint8 centred
    on 128). Float input is cast, not rescaled. Shape is kept."""
    arr = np.asarray(wave)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"cannot read samples of dtype {arr.dtype} as audio")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"cannot read complex samples ({arr.dtype}) as audio")
    if np.issubdtype(arr.dtype, np.signedinteger):
        scale = float(-np.iinfo(arr.dtype).min)
        return (arr.astype(np.float64) / scale).astype(np.float32)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        half = float(np.iinfo(arr.dtype).max // 2 + 1)
        return ((arr.astype(np.float64) - half) / half).astype(np.float32)
    return arr.astype(np.float32, copy=False)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Mix ``[samples]``, ``[samples, channels]`` or ``[channels, samples]`` to float32
    ``[samples]`` by averaging channels. For 2-D input the smaller axis is taken as channels
    (a square array is read as ``[samples, channels]``, soundfile's layout)."""
    arr = np.asarray(wave)
    if arr.ndim == 1:
        return arr.astype(np.float32, copy=False)
    if arr.ndim != 2:
        raise ValueError(f"expected [samples] or 2-D [samples, channels], got shape {arr.shape}")
    channel_axis = 0 if arr.shape[0] < arr.shape[1] else 1
    if arr.shape[channel_axis] == 1:
        return arr.reshape(-1).astype(np.float32, copy=False)
    return arr.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)


# --------------------------------------------------------------------------- decoding

_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}


def _truncation_problem(extra_info: str, declared_frames: int, read_frames: int) -> str | None:
    """Describe a truncation that libsndfile tolerated silently, or None.

    WAV/AIFF: libsndfile logs ``data : N (should be M)`` and shortens the frame count; a
    declared size larger than what is present means the file was cut (sizes 0 and 0xFFFFFFFF
    are the streaming writers' "unknown length" and are accepted). Ogg: an unexpected end of
    file is logged. MP3: fewer frames decode than the Xing/LAME header declares.
    """
    match = _DATA_CHUNK.search(extra_info)
    if match:
        declared, present = int(match.group(1)), int(match.group(2))
        if declared not in _STREAMING_SIZES and declared > present:
            return f"truncated data (header declares {declared} bytes of samples, {present} present)"
    if "ended unexpectedly" in extra_info:
        return "truncated Ogg stream (file ended without an end-of-stream page)"
    if declared_frames > 0 and read_frames < declared_frames:
        return f"truncated data (header declares {declared_frames} frames, {read_frames} decode)"
    return None


def _read_encoded(handle: Any, source: str) -> tuple[np.ndarray, int]:
    """Decode a path or file-like with libsndfile; AudioError on failure or truncation."""
    try:
        with sf.SoundFile(handle) as f:
            declared = int(f.frames)
            rate = int(f.samplerate)
            data = f.read(dtype="float32", always_2d=True)
            extra = f.extra_info
    except sf.LibsndfileError as exc:
        text = str(exc.error_string if hasattr(exc, "error_string") else exc)
        if "not recognised" in text.lower() or "not recognized" in text.lower():
            problem = "not a recognised audio format (WAV, FLAC, Ogg, MP3...)"
        elif "malformed" in text.lower() or "lost sync" in text.lower():
            problem = f"truncated or corrupt audio data (libsndfile: {text.strip()})"
        else:
            problem = f"cannot decode (libsndfile: {text.strip()})"
        raise AudioError(source, problem) from None
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(source, f"cannot decode ({exc})") from None
    problem = _truncation_problem(extra, declared, data.shape[0])
    if problem:
        raise AudioError(source, problem)
    return data, rate


def _default_source(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(data, np.ndarray):
        return "array"
    if isinstance(data, Mapping):
        path = data.get("path")
        return str(path) if path else "audio dict"
    name = getattr(data, "name", None)
    return str(name) if isinstance(name, str) else "file object"


def decode_audio(
    data: AudioInput,
    sample_rate: int | None = None,
    *,
    source: str | None = None,
) -> tuple[np.ndarray, int]:
    """Decode audio to ``(wave [samples] float32 mono, sample_rate in Hz)`` at its own rate.

    ``data`` is encoded bytes, a file path, a binary file object, a numpy array, or a
    ``datasets`` audio dict (``{"bytes", "path"}`` as given by ``Audio(decode=False)``, or
    ``{"array", "sampling_rate"}``). WAV, FLAC, Ogg Vorbis/Opus and MP3 decode through
    libsndfile. Arrays need ``sample_rate``; they may be ``[samples]``, ``[samples, channels]``
    or ``[channels, samples]`` (channels = the smaller axis) and integer PCM is scaled to
    [-1, 1]. For encoded input the header's rate is used; a different ``sample_rate`` is
    logged and ignored. ``source`` names the audio in errors (default: the path, ``'bytes'``
    or ``'array'``).

    Raises :class:`AudioError` (naming the source) for empty data, a missing file, truncated
    or non-audio data, zero length, NaN/inf samples, digital silence, or a rate outside
    [1 kHz, 384 kHz].
    """
    src = source if source is not None else _default_source(data)

    if isinstance(data, Mapping):
        if data.get("bytes") is not None:
            return decode_audio(data["bytes"], sample_rate, source=src)
        if data.get("array") is not None:
            rate = data.get("sampling_rate", sample_rate)
            return decode_audio(np.asarray(data["array"]), rate, source=src)
        if data.get("path"):
            return decode_audio(data["path"], sample_rate, source=src)
        raise AudioError(src, "audio dict has no 'bytes', 'array' or 'path'")

    if isinstance(data, np.ndarray):
        if sample_rate is None:
            raise AudioError(src, "an array needs sample_rate (Hz)")
        rate = _check_rate(sample_rate, src)
        if data.ndim not in (1, 2):
            raise AudioError(src, f"expected [samples] or a 2-D array, got shape {data.shape}")
        if data.size == 0:
            raise AudioError(src, "zero-length audio (no samples)")
        try:
            wave = to_mono(convert_to_float32(data))
        except ValueError as exc:
            raise AudioError(src, str(exc)) from None
        validate_waveform(wave, rate, src)
        peak = float(np.max(np.abs(wave)))
        if peak > 2.0:
            logger.warning("%s: samples peak at %.3g; expected [-1, 1] (unscaled PCM?)", src, peak)
        return wave, rate

    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) == 0:
            raise AudioError(src, "empty data (0 bytes)")
        raw, rate = _read_encoded(io.BytesIO(bytes(data)), src)
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise AudioError(src, "file not found")
        if os.path.isdir(path):
            raise AudioError(src, "is a directory, not an audio file")
        if os.path.getsize(path) == 0:
            raise AudioError(src, "empty file (0 bytes)")
        try:
            with open(path, "rb") as fh:
                raw, rate = _read_encoded(fh, src)
        except OSError as exc:
            raise AudioError(src, f"cannot read file ({exc.strerror or exc})") from None
    elif hasattr(data, "read"):
        raw, rate = _read_encoded(data, src)
    else:
        raise AudioError(src, f"cannot decode an object of type {type(data).__name__}")

    if sample_rate is not None and int(sample_rate) != rate:
        logger.warning("%s: header says %d Hz, caller said %s Hz; using the header",
                       src, rate, sample_rate)
    rate = _check_rate(rate, src)
    if raw.shape[0] == 0:
        raise AudioError(src, "zero-length audio (no samples)")
    if raw.shape[1] == 1:
        wave = raw[:, 0].copy()
    else:
        wave = raw.mean(axis=1, dtype=np.float64).astype(np.float32)
    validate_waveform(wave, rate, src)
    return wave, rate


# --------------------------------------------------------------------------- resampling


def _as_rate(value: Any, name: str) -> int:
    try:
        rate_f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a sample rate in Hz") from None
    if not math.isfinite(rate_f) or rate_f <= 0 or rate_f != int(rate_f):
        raise ValueError(f"{name}={value!r} must be a positive whole number of Hz")
    return int(rate_f)


def _kernel_elements(orig_sr: int, target_sr: int) -> int:
    """Taps in torchaudio's polyphase kernel for this pair with :data:`RESAMPLE_PARAMS`."""
    g = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // g, target_sr // g
    base = min(orig, new) * RESAMPLE_PARAMS["rolloff"]
    width = math.ceil(RESAMPLE_PARAMS["lowpass_filter_width"] * orig / base)
    return new * (2 * width + orig)


@functools.lru_cache(maxsize=32)
def get_resampler(orig_sr: int, target_sr: int):
    """The cached ``torchaudio.transforms.Resample`` (kernel :data:`RESAMPLE_PARAMS`) for
    one (orig_sr, target_sr) pair in Hz; built once, then shared."""
    import torchaudio  # heavy import, deferred until the first resampling

    return torchaudio.transforms.Resample(orig_sr, target_sr, **RESAMPLE_PARAMS).eval()


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = 16_000) -> np.ndarray:
    """Resample ``[samples]`` (or ``[..., samples]``) from ``orig_sr`` to ``target_sr`` Hz.

    Uses one cached ``torchaudio.transforms.Resample`` per rate pair (see
    :func:`get_resampler`; ``get_resampler.cache_info()`` shows reuse). Identity (a float32
    copy) when the rates are equal. Output length is ``ceil(samples * target_sr / orig_sr)``,
    float32. Rate pairs whose kernel would be huge fall back to an FFT resampler.
    """
    orig = _as_rate(orig_sr, "orig_sr")
    target = _as_rate(target_sr, "target_sr")
    arr = np.asarray(wave)
    if arr.ndim == 0:
        raise ValueError("resample needs at least one axis of samples")
    arr = convert_to_float32(arr) if not np.issubdtype(arr.dtype, np.floating) else arr
    if orig == target:
        return np.array(arr, dtype=np.float32, copy=True)
    n = arr.shape[-1]
    n_out = math.ceil(n * target / orig)
    if n == 0:
        return np.zeros(arr.shape[:-1] + (0,), dtype=np.float32)
    if _kernel_elements(orig, target) > MAX_KERNEL_ELEMENTS:
        from scipy.signal import resample as fft_resample

        logger.debug("resample %d -> %d Hz: kernel too large, using FFT resampling", orig, target)
        return fft_resample(arr.astype(np.float64), n_out, axis=-1).astype(np.float32)

    import torch

    module = get_resampler(orig, target)
    tensor = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    with torch.inference_mode():
        out = module(tensor)
    return out.numpy().astype(np.float32, copy=False)


def load_audio(
    data: AudioInput,
    sample_rate: int | None = None,
    *,
    target_sr: int = 16_000,
    source: str | None = None,
) -> np.ndarray:
    """Decode, mix to mono, validate and resample to ``target_sr`` Hz: float32 ``[samples]``.

    The one call the data pipeline uses; ``data``, ``sample_rate`` and ``source`` are as in
    :func:`decode_audio`, and :class:`AudioError` is raised for bad audio.
    """
    wave, rate = decode_audio(data, sample_rate, source=source)
    return resample(wave, rate, target_sr)


# --------------------------------------------------------------------------- crops and windows

CROP_MODES = ("repeat", "zero")


def crop_or_pad(
    wave: np.ndarray,
    n_samples: int,
    *,
    mode: str = "repeat",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Return float32 ``[n_samples]`` from ``wave [samples]``.

    Longer clips: a random crop when ``rng`` is given (training), else the first
    ``n_samples`` (evaluation, deterministic). Shorter clips: ``mode="repeat"`` tiles the
    clip, ``mode="zero"`` zero-pads at the end. Always a new array.
    """
    if mode not in CROP_MODES:
        raise ValueError(f"mode={mode!r}; expected one of {CROP_MODES}")
    n_samples = int(n_samples)
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected [samples], got shape {arr.shape}")
    n = arr.shape[0]
    if n == 0:
        raise ValueError("cannot crop or pad an empty waveform")
    if n >= n_samples:
        start = int(rng.integers(0, n - n_samples + 1)) if rng is not None else 0
        return arr[start : start + n_samples].copy()
    if mode == "repeat":
        return np.resize(arr, n_samples)
    out = np.zeros(n_samples, dtype=np.float32)
    out[:n] = arr
    return out


def _check_window(window: int, hop: int) -> tuple[int, int]:
    window, hop = int(window), int(hop)
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    if hop > window:
        raise ValueError(f"hop ({hop}) > window ({window}) would leave samples uncovered")
    return window, hop


def window_starts(n_samples: int, window: int, hop: int) -> np.ndarray:
    """Start sample of each window that :func:`frame_windows` makes from ``n_samples``
    samples (int64 ``[n_windows]``; divide by the rate for timestamps in seconds)."""
    window, hop = _check_window(window, hop)
    n_samples = int(n_samples)
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    n_windows = 1 + math.ceil(max(0, n_samples - window) / hop)
    return np.arange(n_windows, dtype=np.int64) * hop


def frame_windows(wave: np.ndarray, window: int, hop: int, *, mode: str = "repeat") -> np.ndarray:
    """Cut ``wave [samples]`` into float32 ``[n_windows, window]`` windows every ``hop``
    samples, covering every sample. Where the last window runs past the end it is padded by
    looping the clip (``mode="repeat"``, as :func:`crop_or_pad` does for a short clip) or with
    zeros (``mode="zero"``). A clip shorter than ``window`` gives one padded window."""
    if mode not in CROP_MODES:
        raise ValueError(f"mode={mode!r}; expected one of {CROP_MODES}")
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected [samples], got shape {arr.shape}")
    starts = window_starts(arr.shape[0], window, hop)
    window, hop = int(window), int(hop)
    needed = int(starts[-1]) + window
    if needed > arr.shape[0]:
        if mode == "repeat":
            arr = np.resize(arr, needed)
        else:
            arr = np.concatenate([arr, np.zeros(needed - arr.shape[0], dtype=np.float32)])
    views = np.lib.stride_tricks.sliding_window_view(arr, window)[::hop]
    return np.ascontiguousarray(views[: starts.shape[0]])


# --------------------------------------------------------------------------- levels


def _dbfs(amplitude: float) -> float:
    return DBFS_FLOOR if amplitude <= 10 ** (DBFS_FLOOR / 20) else 20.0 * math.log10(amplitude)


def level_stats(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Level figures of ``wave [samples]`` at ``sample_rate`` Hz.

    ``duration_s`` (seconds); ``rms_dbfs`` and ``peak_dbfs`` (dB re. full scale 1.0, so a
    full-scale sine is 0 dBFS peak and -3.01 dBFS RMS; silence gives ``DBFS_FLOOR``);
    ``crest_db`` (peak minus RMS, dB); ``zero_crossing_rate`` (sign changes per sample pair);
    ``clipped_fraction`` (share of samples with ``|x| >= 0.999``); ``dc_offset`` (mean).
    """
    rate = _as_rate(sample_rate, "sample_rate")
    arr = np.asarray(wave, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty [samples] array, got shape {arr.shape}")
    rms = math.sqrt(float(np.mean(arr * arr)))
    peak = float(np.max(np.abs(arr)))
    signs = np.signbit(arr)
    crossings = int(np.count_nonzero(signs[1:] != signs[:-1]))
    rms_db, peak_db = _dbfs(rms), _dbfs(peak)
    return {
        "duration_s": arr.size / rate,
        "rms_dbfs": rms_db,
        "peak_dbfs": peak_db,
        "crest_db": peak_db - rms_db,
        "zero_crossing_rate": crossings / max(arr.size - 1, 1),
        "clipped_fraction": float(np.count_nonzero(np.abs(arr) >= CLIP_LEVEL)) / arr.size,
        "dc_offset": float(np.mean(arr)),
    }


# --------------------------------------------------------------------------- encoding


def _resolve_format(format: str, subtype: str | None) -> tuple[str, str]:
    key = str(format).upper().replace("_", "-")
    if key in FORMATS:
        fmt, default_sub = FORMATS[key]
    elif key == "OGG":
        fmt, default_sub = "OGG", "VORBIS"
    else:
        fmt, default_sub = key, None
    sub = subtype.upper() if subtype else default_sub
    if key in ("OGG-VORBIS", "OGG-OPUS") and subtype and sub != default_sub:
        raise ValueError(f"format {format!r} conflicts with subtype {subtype!r}")
    return fmt, sub


def encode_audio(
    wave: np.ndarray,
    sample_rate: int,
    format: str = "WAV",
    subtype: str | None = None,
    *,
    compression_level: float | None = None,
) -> bytes:
    """Encode ``wave [samples]`` (or ``[samples, channels]``) at ``sample_rate`` Hz to bytes
    with libsndfile.

    ``format``: ``"WAV"`` (default subtype PCM_16), ``"FLAC"`` (PCM_16), ``"OGG"`` or
    ``"OGG-VORBIS"`` (VORBIS), ``"OGG-OPUS"`` (OPUS; 8/12/16/24/48 kHz only), ``"MP3"``
    (MPEG_LAYER_III; 8-48 kHz standard rates only), or any other libsndfile format name.
    ``compression_level`` in [0, 1] (0 = best quality) for lossy/FLAC codecs. Integer PCM
    subtypes clip at full scale. Raises :class:`AudioError` if libsndfile cannot write it.
    """
    fmt, sub = _resolve_format(format, subtype)
    source = f"{fmt}/{sub} encoder" if sub else f"{fmt} encoder"
    rate = _check_rate(sample_rate, source)
    arr = np.asarray(wave)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise AudioError(
            source, f"expected a non-empty [samples] or [samples, channels] array, got shape {arr.shape}"
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise AudioError(source, "cannot encode NaN or infinite samples")
        arr = arr.astype(np.float32, copy=False)
    buffer = io.BytesIO()
    try:
        sf.write(buffer, arr, rate, format=fmt, subtype=sub, compression_level=compression_level)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        text = getattr(exc, "error_string", None) or str(exc)
        problem = f"libsndfile {sf.__libsndfile_version__} cannot write this: {text}"
        raise AudioError(source, problem) from None
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def _probe_formats() -> tuple[tuple[str, bool], ...]:
    rate = 16_000
    t = np.arange(rate // 5) / rate
    probe = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    results = []
    for name in FORMATS:
        ok = False
        try:
            data = encode_audio(probe, rate, name)
            back, back_rate = decode_audio(data, source=f"{name} probe")
            n = min(back.size, probe.size)
            ok = (
                back_rate == rate
                and abs(back.size - probe.size) <= probe.size // 100
                and float(np.corrcoef(back[:n], probe[:n])[0, 1]) > 0.9
            )
        except (AudioError, ValueError, RuntimeError) as exc:
            logger.debug("format %s unavailable: %s", name, exc)
        results.append((name, bool(ok)))
    return tuple(results)


def supported_formats() -> dict[str, bool]:
    """Which of WAV, FLAC, OGG-VORBIS, OGG-OPUS and MP3 this libsndfile can write and read
    back faithfully (probed once with a 0.2 s tone, then cached)."""
    return dict(_probe_formats())
