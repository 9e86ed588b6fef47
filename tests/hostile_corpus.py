"""A corpus of hostile and broken audio inputs, generated in code (nothing is downloaded).

Each :class:`HostileItem` is one kind of bad (or merely unusual) input with what every
consumer must do with it: score it, or reject it with an error matching ``problem``. The
same items run through the data loader, ``deepfake-detect`` and the web service
(``tests/test_hostile_input.py``). Files are written by :func:`write_corpus`, which also adds
the kinds that only exist on a file system (broken and looping links, odd file names).
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16_000
LONG_S = 2 * 3600
"""Length (seconds) of the decompression bombs: 2 hours, far over every default limit."""


@dataclasses.dataclass(frozen=True)
class HostileItem:
    """One input kind: ``data`` (bytes, or None for a link), the expected outcome of the
    detector (``"score"`` or ``"reject"``), of the loader (default: the detector's), the
    service's HTTP status, and a regex that the error of a rejection must match."""

    kind: str
    filename: str
    data: bytes | None
    expect: str
    problem: str = ""
    loader_expect: str | None = None
    status: int | None = None

    @property
    def loader_outcome(self) -> str:
        """What the data loader must do with it (``"score"`` = keep the row)."""
        return self.loader_expect or self.expect

    @property
    def http_status(self) -> int:
        """The service's answer: 200 when scored, else the given status (422 by default)."""
        if self.status is not None:
            return self.status
        return 200 if self.expect == "score" else 422


def tone(seconds: float, sr: int = SR, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    """A modulated tone, float32 ``[samples]`` or ``[samples, channels]``, peak 0.3."""
    t = np.arange(round(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    if channels > 1:
        wave = np.stack([wave * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return wave.astype(np.float32)


def encode(wave: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """``wave`` encoded by libsndfile."""
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _set_flac_total_samples(data: bytes, total: int) -> bytes:
    """``data`` (a FLAC file) with STREAMINFO's 36-bit total-sample count replaced."""
    if data[:4] != b"fLaC" or data[4] & 0x7F != 0:
        raise ValueError("not a FLAC file starting with STREAMINFO")
    out = bytearray(data)
    field = int.from_bytes(out[18:26], "big")
    field = (field & ~((1 << 36) - 1)) | (total & ((1 << 36) - 1))
    out[18:26] = field.to_bytes(8, "big")
    return bytes(out)


def flac_bomb(seconds: float, sr: int = 8_000) -> bytes:
    """A small FLAC of ``seconds`` of a constant level (a few hundred KB for hours), encoded
    block by block so that making it needs no memory."""
    buf = io.BytesIO()
    block = np.full(1 << 20, 0.1, dtype=np.float32)
    with sf.SoundFile(buf, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        left = int(seconds * sr)
        while left > 0:
            f.write(block[: min(left, block.size)])
            left -= block.size
    return buf.getvalue()


def _wav_field(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def build_corpus() -> list[HostileItem]:
    """Every kind, in a fixed order (more than 25)."""
    ok = tone(1.0)
    wav16 = encode(ok, SR)
    flac = encode(ok, SR, "FLAC")
    bomb = flac_bomb(LONG_S)
    nan = ok.copy()
    nan[100:200] = np.nan
    inf = ok.copy()
    inf[5] = np.inf
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    rng = np.random.default_rng(1)  # seed 1: bytes that libsndfile's MP3 probe calls "possibly a pipe?"
    png = b"\x89PNG\r\n\x1a\n" + rng.bytes(3000)
    too_long = "over the limit|more than .* s"
    items = [
        HostileItem("wav_pcm16_16k", "pcm16.wav", wav16, "score"),
        HostileItem("wav_pcm_u8", "pcm_u8.wav", encode(ok, SR, subtype="PCM_U8"), "score"),
        HostileItem(
            "wav_pcm24_48k", "pcm24_48k.wav", encode(tone(1.0, 48_000), 48_000, subtype="PCM_24"), "score"
        ),
        HostileItem(
            "wav_pcm32_44k", "pcm32_44k.wav", encode(tone(1.0, 44_100), 44_100, subtype="PCM_32"), "score"
        ),
        HostileItem(
            "wav_float32_22k", "float_22k.wav", encode(tone(1.0, 22_050), 22_050, subtype="FLOAT"), "score"
        ),
        HostileItem("wav_float64", "double.wav", encode(ok, SR, subtype="DOUBLE"), "score"),
        HostileItem("wav_8k", "rate_8k.wav", encode(tone(1.0, 8_000), 8_000), "score"),
        HostileItem("wav_96k", "rate_96k.wav", encode(tone(1.0, 96_000), 96_000), "score"),
        HostileItem("wav_odd_rate_44056", "rate_44056.wav", encode(tone(1.0, 44_056), 44_056), "score"),
        HostileItem(
            "wav_6ch_48k", "six_channels.wav", encode(tone(1.0, 48_000, channels=6), 48_000), "score"
        ),
        HostileItem("flac_16k", "clip.flac", flac, "score"),
        HostileItem("ogg_vorbis", "clip.ogg", encode(ok, SR, "OGG", "VORBIS"), "score"),
        HostileItem("wav_full_scale_square", "clipped.wav", encode(square, SR), "score"),
        HostileItem(
            "samples_1000",
            "short_1000.wav",
            encode(ok[:1000], SR),
            "reject",
            "too short",
            loader_expect="score",
        ),
        HostileItem(
            "flac_streaminfo_2p36",
            "forged_streaminfo.flac",
            _set_flac_total_samples(flac, (1 << 36) - 1),
            "reject",
            "header declares .* over the limit",
            status=413,
        ),
        HostileItem("flac_bomb_declared", "bomb_declared.flac", bomb, "reject", too_long, status=413),
        HostileItem(
            "flac_bomb_unknown_length",
            "bomb_no_length.flac",
            _set_flac_total_samples(bomb, 0),
            "reject",
            too_long,
            status=413,
        ),
        # libsndfile stops at the declared length: the first second is scored, the rest never decoded
        HostileItem(
            "flac_bomb_declares_1s", "bomb_declares_1s.flac", _set_flac_total_samples(bomb, 8_000), "score"
        ),
        HostileItem(
            "wav_data_size_lie",
            "data_size_lie.wav",
            _wav_field(wav16, 40, "<I", 10 * (len(wav16) - 44)),
            "reject",
            "truncated",
        ),
        HostileItem("wav_cut_mid_samples", "cut.wav", wav16[: len(wav16) // 2 + 1], "reject", "truncated"),
        HostileItem("flac_cut_half", "cut.flac", flac[: len(flac) // 2], "reject", "truncat|corrupt|decode"),
        HostileItem(
            "wav_header_only", "header_only.wav", wav16[:44], "reject", "truncated|zero-length|no samples"
        ),
        HostileItem(
            "wav_cut_in_header", "cut_header.wav", wav16[:20], "reject", "not a recognised|decode|truncated"
        ),
        HostileItem(
            "wav_rate_zero", "rate_zero.wav", _wav_field(wav16, 24, "<I", 0), "reject", "decode|sample rate"
        ),
        HostileItem(
            "wav_rate_4ghz",
            "rate_4ghz.wav",
            _wav_field(wav16, 24, "<I", 4_000_000_000),
            "reject",
            "decode|sample rate",
        ),
        HostileItem(
            "wav_channels_forged",
            "channels_forged.wav",
            _wav_field(wav16, 22, "<H", 60_000),
            "reject",
            "decode|channels|truncated|not a recognised",
        ),
        HostileItem("float_nan", "nan.wav", encode(nan, SR, subtype="FLOAT"), "reject", "NaN or infinite"),
        HostileItem("float_inf", "inf.wav", encode(inf, SR, subtype="FLOAT"), "reject", "NaN or infinite"),
        HostileItem(
            "silence", "silence.wav", encode(np.zeros(SR, np.float32), SR), "reject", "digital silence"
        ),
        HostileItem("one_sample", "one_sample.wav", encode(ok[100:101], SR), "reject", "too short"),
        HostileItem("samples_300", "short_300.wav", encode(ok[:300], SR), "reject", "too short"),
        HostileItem(
            "text_as_wav", "notes.wav", b"these are my notes, not audio\n" * 20, "reject", "not a recognised"
        ),
        HostileItem("random_as_flac", "random.flac", rng.bytes(5000), "reject", "not a recognised"),
        HostileItem("png_as_mp3", "picture.mp3", png, "reject", "not a recognised|decode"),
        HostileItem("zero_bytes", "empty.wav", b"", "reject", "empty"),
    ]
    return items


ODD_NAMES = (
    "carriage\rreturn.wav",
    "new\nline.wav",
    "line\u2028separator.wav",
    "next\u0085line.wav",
    'comma, "quote".wav',
    " leading space.wav",
    "-dash.wav",
    "ünïcødé 音.wav",
)
"""File names that break naive results files (all hold a valid clip)."""
NON_UTF8_NAME = b"latin1-\xe9t\xe9.wav"
"""A file name that is not valid UTF-8 (bytes), as Linux allows."""


@dataclasses.dataclass
class WrittenCorpus:
    """Files written by :func:`write_corpus`: ``items`` maps each path to its item; ``links``
    maps broken or looping links to the problem they must be reported with."""

    root: Path
    items: dict[Path, HostileItem]
    links: dict[Path, str]


def write_corpus(root: Path, items: list[HostileItem]) -> WrittenCorpus:
    """Write ``items`` under ``root`` plus the file-system kinds: files with odd names (valid
    clips), a broken link, a link to itself and a two-link loop. Returns what was written."""
    root.mkdir(parents=True, exist_ok=True)
    written: dict[Path, HostileItem] = {}
    for item in items:
        path = root / item.filename
        path.write_bytes(item.data or b"")
        written[path] = item
    clip = next(i for i in items if i.kind == "wav_pcm16_16k")
    for name in ODD_NAMES:
        path = root / name
        path.write_bytes(clip.data or b"")
        written[path] = dataclasses.replace(clip, kind=f"odd_name {name!r}", filename=name)
    raw = os.path.join(os.fsencode(root), NON_UTF8_NAME)
    with open(raw, "wb") as fh:
        fh.write(clip.data or b"")
    written[Path(os.fsdecode(raw))] = dataclasses.replace(
        clip, kind="non_utf8_name", filename=os.fsdecode(NON_UTF8_NAME)
    )
    links: dict[Path, str] = {}
    broken = root / "broken_link.wav"
    os.symlink(root / "does_not_exist.wav", broken)
    links[broken] = "broken link"
    self_loop = root / "self_loop.wav"
    os.symlink(self_loop.name, self_loop)
    links[self_loop] = "link loop|levels of symbolic links"
    loop_a, loop_b = root / "loop_a.flac", root / "loop_b.flac"
    os.symlink(loop_b.name, loop_a)
    os.symlink(loop_a.name, loop_b)
    links[loop_a] = links[loop_b] = "link loop|levels of symbolic links"
    return WrittenCorpus(root=root, items=written, links=links)
