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

from deepfake_lib.audio.errors import AudioError, AudioTooLongError
from deepfake_lib.audio.signal import (
    READ_BLOCK_SAMPLES,
    BlockResampler,
    _as_rate,
    convert_to_float32,
    resample,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioInput",
    "CLI_MAX_DURATION_S",
    "current_duration_limit",
    "decode_audio",
    "duration_limit",
    "encode_audio",
    "FORMATS",
    "load_audio",
    "LOADER_MAX_DURATION_S",
    "MAX_DURATION_S",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "SERVICE_MAX_DURATION_S",
    "SILENCE_PEAK",
    "supported_formats",
    "to_mono",
    "validate_waveform",
]

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")
"""File name endings treated as audio when a folder is scanned."""
MIN_SAMPLE_RATE = 1_000
"""Lowest sample rate (Hz) accepted as audio."""
MAX_SAMPLE_RATE = 384_000
"""Highest sample rate (Hz) accepted as audio."""
SILENCE_PEAK = 1e-8
"""A waveform whose absolute peak is below this is treated as digital silence."""


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
_UNKNOWN_LENGTH = 1 << 62
"""Frame counts at or above this are libsndfile's "length unknown" (SF_COUNT_MAX), not a claim."""

_duration_limit: contextvars.ContextVar[float] = contextvars.ContextVar(
    "max_duration_s", default=MAX_DURATION_S
)

AudioInput = bytes | bytearray | memoryview | str | os.PathLike | np.ndarray | BinaryIO | Mapping


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


# --------------------------------------------------------------------------- levels


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
