"""Audio input and output: decode, validate, mix to mono, resample, crop and frame.

Every waveform in the project is a float32 numpy array, mono, shape ``[samples]``, values
nominally in [-1, 1]. :func:`load_audio` is the one call the data pipeline makes: it decodes
bytes, a path or an array, mixes to mono, checks the result and resamples to 16 kHz.

Decoding goes through ``soundfile`` (libsndfile), never FFmpeg, so it works where
``datasets``/``torchaudio.load`` would need torchcodec. Resampling uses
``torchaudio.transforms.Resample`` with one cached kernel per rate pair.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")
"""File name endings treated as audio when a folder is scanned."""
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

MAX_DURATION_S = 3600.0
"""Default longest audio (seconds) that :func:`decode_audio` and :func:`load_audio` accept;
change it per call (``max_duration_s``) or for a block of code (:func:`duration_limit`)."""
SERVICE_MAX_DURATION_S = 600.0
"""Default longest upload (seconds of audio) the web service scores."""
CLI_MAX_DURATION_S = 3600.0
"""Default longest file (seconds) ``deepfake-detect`` scores."""
LOADER_MAX_DURATION_S = 600.0
"""Default longest clip (seconds) the data loader accepts."""
READ_BLOCK_SAMPLES = 1 << 18
"""Samples (frames x channels) decoded per block: memory per block is 1 MiB of float32,
whatever the file's length, channel count or what its header claims."""
_UNKNOWN_LENGTH = 1 << 62
"""Frame counts at or above this are libsndfile's "length unknown" (SF_COUNT_MAX), not a claim."""

_duration_limit: contextvars.ContextVar[float] = contextvars.ContextVar(
    "max_duration_s", default=MAX_DURATION_S
)

AudioInput = bytes | bytearray | memoryview | str | os.PathLike | np.ndarray | BinaryIO | Mapping


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


class AudioTooLongError(AudioError):
    """Audio longer than the duration limit, by its header or while it was being decoded.

    ``duration_s`` is the declared or decoded length (seconds; a lower bound when decoding
    stopped at the limit) and ``limit_s`` the limit in force.
    """

    def __init__(self, source: str, problem: str, duration_s: float = math.nan, limit_s: float = math.nan):
        super().__init__(source, problem)
        self.duration_s = float(duration_s)
        self.limit_s = float(limit_s)

    def __reduce__(self):
        return (type(self), (self.source, self.problem, self.duration_s, self.limit_s))


def _check_limit(max_duration_s: float | None) -> float:
    """The duration limit in seconds: ``max_duration_s``, else the one of :func:`duration_limit`."""
    limit = _duration_limit.get() if max_duration_s is None else float(max_duration_s)
    if math.isnan(limit) or limit <= 0:
        raise ValueError(
            f"max_duration_s={max_duration_s!r}: must be a positive number of seconds (inf = no limit)"
        )
    return limit


@contextlib.contextmanager
def duration_limit(max_duration_s: float) -> Iterator[float]:
    """Within this block (and this thread or task), :func:`decode_audio` and :func:`load_audio`
    refuse audio longer than ``max_duration_s`` seconds unless a call passes its own limit.
    This is how callers bound decoding done for them (e.g. by ``Detector.predict``)."""
    token = _duration_limit.set(_check_limit(max_duration_s))
    try:
        yield _duration_limit.get()
    finally:
        _duration_limit.reset(token)


def current_duration_limit() -> float:
    """The duration limit (seconds) that applies now (see :func:`duration_limit`)."""
    return _duration_limit.get()


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


def _decode_problem(exc: BaseException) -> str:
    """A libsndfile error as a problem statement for :class:`AudioError`."""
    text = str(getattr(exc, "error_string", None) or exc).strip()
    low = text.lower()
    if "not recognised" in low or "not recognized" in low or "pipe" in low or "unknown format" in low:
        # libsndfile says "(possibly a pipe?)" when its MP3 probe gives up on arbitrary bytes
        return "not a recognised audio format (WAV, FLAC, Ogg, MP3...)"
    if "malformed" in low or "lost sync" in low:
        return f"truncated or corrupt audio data (libsndfile: {text})"
    return f"cannot decode (libsndfile: {text})"


@contextlib.contextmanager
def _encoded_handle(data: Any, source: str) -> Iterator[Any]:
    """A binary handle on encoded ``data`` (bytes, a path or a file object); AudioError for an
    empty, missing or unreadable input."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) == 0:
            raise AudioError(source, "empty data (0 bytes)")
        yield io.BytesIO(bytes(data))
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problem = "broken link (its target does not exist)" if os.path.islink(path) else "file not found"
            raise AudioError(source, problem) from None
        except OSError as exc:  # ELOOP for a looping link, EACCES...
            raise AudioError(source, f"cannot read file ({exc.strerror or exc})") from None
        if os.path.isdir(path):
            raise AudioError(source, "is a directory, not an audio file")
        if st.st_size == 0:
            raise AudioError(source, "empty file (0 bytes)")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below; only opening errors are caught
        except OSError as exc:
            raise AudioError(source, f"cannot read file ({exc.strerror or exc})") from None
        with fh:
            yield fh
    elif hasattr(data, "read"):
        yield data
    else:
        raise AudioError(source, f"cannot decode an object of type {type(data).__name__}")


@contextlib.contextmanager
def _open_sound(handle: Any, source: str, limit_s: float) -> Iterator[sf.SoundFile]:
    """Open ``handle`` with libsndfile and check its header (rate, channels, declared length
    against ``limit_s`` seconds) before any sample is decoded."""
    try:
        f = sf.SoundFile(handle)
    except sf.LibsndfileError as exc:
        raise AudioError(source, _decode_problem(exc)) from None
    except (RuntimeError, TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise AudioError(source, f"cannot decode ({type(exc).__name__}: {exc})") from None
    with f:
        rate = _check_rate(f.samplerate, source)
        if f.channels < 1:
            raise AudioError(source, f"header declares {f.channels} channels")
        declared = int(f.frames)
        if 0 < declared < _UNKNOWN_LENGTH and declared / rate > limit_s:
            raise AudioTooLongError(
                source,
                f"header declares {declared} samples at {rate} Hz ({declared / rate:.1f} s), "
                f"over the limit of {limit_s:g} s",
                declared / rate,
                limit_s,
            )
        yield f


def _read_block_unknown_length(f: sf.SoundFile, frames: int) -> np.ndarray:
    """Read up to ``frames`` frames, float32 ``[frames, channels]``, from a file whose header
    gives no length (FLAC with 0 total samples...).

    ``SoundFile.read`` seeks to the new position after each read, and libsndfile cannot
    seek to the end of such a stream ("psf_fseek() failed"), which would lose the last
    block; so this calls libsndfile's ``sf_readf_float`` through soundfile's own binding.
    """
    out = np.empty((frames, f.channels), dtype=np.float32)
    got = sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", out.ctypes.data), frames)
    err = sf._snd.sf_error(f._file)
    if err:
        raise sf.LibsndfileError(err)
    return out[:got]


def _read_mono_blocks(f: sf.SoundFile, source: str, limit_s: float) -> Iterator[np.ndarray]:
    """Decode an open file in blocks of :data:`READ_BLOCK_SAMPLES` samples, each mixed to mono
    float32 ``[frames]``; AudioTooLongError as soon as more than ``limit_s`` seconds decode
    (whatever the header said), AudioError for corrupt data or a truncation libsndfile tolerated."""
    rate = int(f.samplerate)
    declared = int(f.frames)
    block_frames = max(1, READ_BLOCK_SAMPLES // int(f.channels))
    max_frames = math.floor(limit_s * rate) if math.isfinite(limit_s) else None
    n_read = 0
    unknown_length = declared >= _UNKNOWN_LENGTH
    while True:
        try:
            block = (
                _read_block_unknown_length(f, block_frames)
                if unknown_length
                else f.read(block_frames, dtype="float32", always_2d=True)
            )
        except sf.LibsndfileError as exc:
            raise AudioError(source, f"{_decode_problem(exc)} after {n_read} samples") from None
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise AudioError(
                source, f"cannot decode after {n_read} samples ({type(exc).__name__}: {exc})"
            ) from None
        if block.shape[0] == 0:
            break
        n_read += block.shape[0]
        if max_frames is not None and n_read > max_frames:
            raise AudioTooLongError(
                source,
                f"decodes to more than {limit_s:g} s (the limit) at {rate} Hz; the header declared "
                + (f"{declared / rate:.1f} s" if 0 < declared < _UNKNOWN_LENGTH else "no length"),
                n_read / rate,
                limit_s,
            )
        yield (
            block[:, 0].copy()
            if block.shape[1] == 1
            else block.mean(axis=1, dtype=np.float64).astype(np.float32)
        )
    problem = _truncation_problem(f.extra_info, declared if declared < _UNKNOWN_LENGTH else 0, n_read)
    if problem:
        raise AudioError(source, problem)


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


def _unwrap(data: Any, sample_rate: int | None, source: str) -> tuple[Any, int | None]:
    """The payload of a ``datasets`` audio dict (bytes, array or path) and its rate."""
    while isinstance(data, Mapping):
        if data.get("bytes") is not None:
            data = data["bytes"]
        elif data.get("array") is not None:
            sample_rate = data.get("sampling_rate", sample_rate)
            data = np.asarray(data["array"])
        elif data.get("path"):
            data = data["path"]
        else:
            raise AudioError(source, "audio dict has no 'bytes', 'array' or 'path'")
    return data, sample_rate


def _decode_array(
    data: np.ndarray, sample_rate: int | None, source: str, limit_s: float
) -> tuple[np.ndarray, int]:
    if sample_rate is None:
        raise AudioError(source, "an array needs sample_rate (Hz)")
    rate = _check_rate(sample_rate, source)
    if data.ndim not in (1, 2):
        raise AudioError(source, f"expected [samples] or a 2-D array, got shape {data.shape}")
    if data.size == 0:
        raise AudioError(source, "zero-length audio (no samples)")
    n = max(data.shape)
    if n / rate > limit_s:
        raise AudioTooLongError(
            source, f"{n / rate:.1f} s of audio, over the limit of {limit_s:g} s", n / rate, limit_s
        )
    try:
        wave = to_mono(convert_to_float32(data))
    except ValueError as exc:
        raise AudioError(source, str(exc)) from None
    validate_waveform(wave, rate, source)
    peak = float(np.max(np.abs(wave)))
    if peak > 2.0:
        logger.warning("%s: samples peak at %.3g; expected [-1, 1] (unscaled PCM?)", source, peak)
    return wave, rate


def _warn_rate(source: str, rate: int, sample_rate: int | None) -> None:
    if sample_rate is not None and int(sample_rate) != rate:
        logger.warning(
            "%s: header says %d Hz, caller said %s Hz; using the header", source, rate, sample_rate
        )


def decode_audio(
    data: AudioInput,
    sample_rate: int | None = None,
    *,
    source: str | None = None,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode audio to ``(wave [samples] float32 mono, sample_rate in Hz)`` at its own rate.

    ``data`` is encoded bytes, a file path, a binary file object, a numpy array, or a
    ``datasets`` audio dict (``{"bytes", "path"}`` as given by ``Audio(decode=False)``, or
    ``{"array", "sampling_rate"}``). WAV, FLAC, Ogg Vorbis/Opus and MP3 decode through
    libsndfile, in blocks of :data:`READ_BLOCK_SAMPLES` samples mixed to mono as they come.
    Arrays need ``sample_rate``; they may be ``[samples]``, ``[samples, channels]``
    or ``[channels, samples]`` (channels = the smaller axis) and integer PCM is scaled to
    [-1, 1]. For encoded input the header's rate is used; a different ``sample_rate`` is
    logged and ignored. ``source`` names the audio in errors (default: the path, ``'bytes'``
    or ``'array'``). ``max_duration_s`` (seconds; default :func:`current_duration_limit`,
    normally :data:`MAX_DURATION_S`) is checked against the header before decoding and
    enforced while decoding, so a forged header or a decompression bomb costs at most the
    limit's worth of memory.

    Raises :class:`AudioTooLongError` over the limit, and :class:`AudioError` (naming the
    source) for empty data, a missing file or broken link, truncated or non-audio data, zero
    length, NaN/inf samples, digital silence, or a rate outside [1 kHz, 384 kHz].
    """
    src = source if source is not None else _default_source(data)
    limit = _check_limit(max_duration_s)
    data, sample_rate = _unwrap(data, sample_rate, src)
    if isinstance(data, np.ndarray):
        return _decode_array(data, sample_rate, src, limit)
    with _encoded_handle(data, src) as handle, _open_sound(handle, src, limit) as f:
        rate = int(f.samplerate)
        blocks = list(_read_mono_blocks(f, src, limit))
    _warn_rate(src, rate, sample_rate)
    if not blocks:
        raise AudioError(src, "zero-length audio (no samples)")
    wave = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
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


class BlockResampler:
    """Resample a stream of ``[frames]`` blocks from ``orig_sr`` to ``target_sr`` Hz with
    bounded memory: :meth:`push` blocks in, collect what it returns, then :meth:`finish`.

    The concatenated output equals :func:`resample` of the whole signal (same cached kernel,
    float32 rounding aside): input is cut at multiples of the reduced rate ratio and each
    piece is resampled with enough real neighbouring samples on both sides that the kernel
    never sees a cut. Rate pairs whose kernel is too large (see :data:`MAX_KERNEL_ELEMENTS`)
    use FFT resampling of pieces of at least one second with half a second of context on
    each side (close to, not equal to, the whole-signal FFT result).
    """

    def __init__(self, orig_sr: int, target_sr: int, *, block_frames: int = READ_BLOCK_SAMPLES) -> None:
        self.orig_sr = _as_rate(orig_sr, "orig_sr")
        self.target_sr = _as_rate(target_sr, "target_sr")
        g = math.gcd(self.orig_sr, self.target_sr)
        self._orig_u, self._new_u = self.orig_sr // g, self.target_sr // g
        self._identity = self.orig_sr == self.target_sr
        self._fft = (
            not self._identity and _kernel_elements(self.orig_sr, self.target_sr) > MAX_KERNEL_ELEMENTS
        )
        if self._identity:
            context = 0
        elif self._fft:
            context = max(self.orig_sr // 2, 1)
        else:
            context = int(get_resampler(self.orig_sr, self.target_sr).width)
        unit = self._orig_u
        self._context = -(-context // unit) * unit  # rounded up to whole units
        self._step = max(unit, (max(int(block_frames), self.orig_sr if self._fft else 1) // unit) * unit)
        self._buf = np.zeros(0, dtype=np.float32)
        self._start = 0  # input position of _buf[0]
        self._next = 0  # input position of the next output unit
        self._n_in = 0

    def _run(self, segment: np.ndarray) -> np.ndarray:
        """Resample a piece whose start is a whole number of units into the signal."""
        n_out = math.ceil(segment.shape[0] * self._new_u / self._orig_u)
        if self._fft:
            from scipy.signal import resample as fft_resample

            return fft_resample(segment.astype(np.float64), n_out).astype(np.float32)
        import torch

        with torch.inference_mode():
            out = get_resampler(self.orig_sr, self.target_sr)(torch.from_numpy(np.ascontiguousarray(segment)))
        return out.numpy()[:n_out]

    def _emit(self, end: int) -> np.ndarray:
        """Output for input positions [_next, end) (``end`` a whole number of units, or the end)."""
        right = min(end + self._context, self._start + self._buf.shape[0])
        out = self._run(self._buf[: right - self._start])
        first = (self._next - self._start) // self._orig_u * self._new_u
        last = math.ceil((end - self._start) * self._new_u / self._orig_u)
        result = out[first:last].copy()
        self._next = end
        keep_from = max(0, end - self._context)
        self._buf = self._buf[keep_from - self._start :]
        self._start = keep_from
        return result

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add float32 ``[frames]`` input; returns the output samples that are now final."""
        arr = np.asarray(block, dtype=np.float32).reshape(-1)
        self._n_in += arr.shape[0]
        if self._identity:
            return arr.copy()
        self._buf = np.concatenate([self._buf, arr]) if self._buf.size else arr.copy()
        available = self._start + self._buf.shape[0] - self._context
        end = self._next + (available - self._next) // self._orig_u * self._orig_u
        if end - self._next < self._step:
            return np.zeros(0, dtype=np.float32)
        return self._emit(end)

    def finish(self) -> np.ndarray:
        """The remaining output; the total is ``ceil(n_in * target_sr / orig_sr)`` samples."""
        if self._identity or self._n_in == self._next:
            return np.zeros(0, dtype=np.float32)
        return self._emit(self._n_in)


def load_audio(
    data: AudioInput,
    sample_rate: int | None = None,
    *,
    target_sr: int = 16_000,
    source: str | None = None,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Decode, mix to mono, validate and resample to ``target_sr`` Hz: float32 ``[samples]``.

    The one call the data pipeline uses; ``data``, ``sample_rate``, ``source`` and
    ``max_duration_s`` (seconds, checked against the header and while decoding) are as in
    :func:`decode_audio`, and :class:`AudioError` is raised for bad audio. Encoded audio is
    decoded and resampled block by block (:class:`BlockResampler`), so peak memory is the
    16 kHz result plus a few blocks, whatever the source rate and channel count.
    """
    src = source if source is not None else _default_source(data)
    limit = _check_limit(max_duration_s)
    payload, rate_hint = _unwrap(data, sample_rate, src)
    if isinstance(payload, np.ndarray):
        wave, rate = _decode_array(payload, rate_hint, src, limit)
        return resample(wave, rate, target_sr)
    target = _as_rate(target_sr, "target_sr")
    pieces: list[np.ndarray] = []
    n_in, n_bad, peak = 0, 0, 0.0
    with _encoded_handle(payload, src) as handle, _open_sound(handle, src, limit) as f:
        rate = int(f.samplerate)
        stream = BlockResampler(rate, target)
        for block in _read_mono_blocks(f, src, limit):
            n_in += block.shape[0]
            finite = np.isfinite(block)
            if not finite.all():
                n_bad += int(block.size - np.count_nonzero(finite))
            elif n_bad == 0:
                peak = max(peak, float(np.max(np.abs(block))))
            if n_bad == 0:
                pieces.append(stream.push(block))
    _warn_rate(src, rate, rate_hint)
    if n_in == 0:
        raise AudioError(src, "zero-length audio (no samples)")
    if n_bad:
        raise AudioError(src, f"{n_bad} of {n_in} samples are NaN or infinite")
    if peak < SILENCE_PEAK:
        raise AudioError(src, f"digital silence (peak {peak:.1e} < {SILENCE_PEAK:.0e})")
    pieces.append(stream.finish())
    return np.concatenate(pieces).astype(np.float32, copy=False)


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
