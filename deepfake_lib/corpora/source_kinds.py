"""Kinds of data source, chosen by what a source string names: the embedded corpus, a parquet file or folder, an audiofolder (real/ and fake/ sub-folders), an ASVspoof-style protocol file, or a Hub dataset id (or a folder laid out like one).

Each kind is a row of :data:`SOURCE_KINDS`: a test that recognises the source string and a loader that returns the source's raw splits (a ``datasets.DatasetDict``); :func:`~deepfake_lib.corpora.sources.load_source` then brings every kind to one schema and checks every row. Adding a kind: ``register_source_kind(SourceKind(...))`` (see CONTRIBUTING.md)."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepfake_lib.audio.io import AUDIO_EXTENSIONS
from deepfake_lib.labels import normalize_label_name

__all__ = [
    "DataSourceError",
    "detect_source_kind",
    "LoadOptions",
    "register_source_kind",
    "SOURCE_KINDS",
    "SourceKind",
]

log = logging.getLogger(__name__)


class DataSourceError(ValueError):
    """A data source cannot be read: names the source and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """What a raw loader may need: the embedded corpus's cache folder and config, streaming,
    and a Hub revision."""

    cache_dir: str | os.PathLike[str] | None = None
    corpus_config: Any | None = None
    streaming: bool = False
    revision: str | None = None


@dataclasses.dataclass(frozen=True)
class SourceKind:
    """One kind of data source: ``matches(source) -> bool`` recognises the (resolved) source
    string, ``load(source, options) -> DatasetDict`` returns its raw splits with an audio column
    and a label column (brought to the common schema afterwards)."""

    name: str
    description: str
    matches: Callable[[str], bool]
    load: Callable[[str, LoadOptions], Any]


SOURCE_KINDS: dict[str, SourceKind] = {}
"""Kind name -> :class:`SourceKind`, tried in order. Change it only through
:func:`register_source_kind`."""


def register_source_kind(kind: SourceKind, *, first: bool = False) -> SourceKind:
    """Add a kind of source (tried after the others, or before them with ``first``)."""
    if kind.name in SOURCE_KINDS:
        raise ValueError(f"source kind {kind.name!r} is already registered")
    items = list(SOURCE_KINDS.items())
    SOURCE_KINDS.clear()
    SOURCE_KINDS.update([(kind.name, kind), *items] if first else [*items, (kind.name, kind)])
    return kind


def detect_source_kind(source: str) -> str:
    """The name of the first kind of :data:`SOURCE_KINDS` that recognises ``source``."""
    for name, kind in SOURCE_KINDS.items():
        if kind.matches(source):
            return name
    raise DataSourceError(source, "no such file or folder, and not a Hub dataset id (owner/name)")


def _is_parquet(source: str) -> bool:
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix == ".parquet"
    return path.is_dir() and not _is_audiofolder(source) and any(path.glob("*.parquet"))


def _is_audiofolder(source: str) -> bool:
    path = Path(source).expanduser()
    return path.is_dir() and bool(
        {p.name.lower() for p in path.iterdir() if p.is_dir()} & {"real", "fake", "bonafide", "spoof"}
    )


def _is_protocol(source: str) -> bool:
    path = Path(source).expanduser()
    return path.is_file() and path.suffix != ".parquet"


def _is_hub(source: str) -> bool:
    # a local folder laid out like a Hub repository (data/*.parquet + card), or an owner/name id
    return Path(source).expanduser().is_dir() or bool(re.fullmatch(r"[\w.-]+/[\w.-]+", source))


def _load_embedded(source: str, options: LoadOptions) -> Any:
    import datasets

    from deepfake_lib.config import resolve_path
    from deepfake_lib.corpora import embedded

    cfg = options.corpus_config or embedded.CorpusConfig()
    folder = Path(options.cache_dir) if options.cache_dir is not None else resolve_path("data")
    path = folder / embedded.corpus_filename(cfg)
    if not path.is_file():
        log.info("generating the embedded corpus into %s", path)
        embedded.write_corpus(path, cfg)
    return datasets.load_dataset("parquet", data_files={"train": str(path)}, streaming=options.streaming)


def _load_parquet(source: str, options: LoadOptions) -> Any:
    import datasets

    p = Path(source).expanduser()
    files = [str(p)] if p.is_file() else sorted(str(f) for f in p.glob("*.parquet"))
    return datasets.load_dataset("parquet", data_files={"train": files}, streaming=options.streaming)


def _load_hub(source: str, options: LoadOptions) -> Any:
    import datasets

    silenced = datasets.utils.are_progress_bars_disabled()  # quiet_libraries silences them
    datasets.enable_progress_bars()  # a download shows its progress
    try:
        return datasets.load_dataset(source, revision=options.revision, streaming=options.streaming)
    except Exception as exc:  # network, auth, missing repo: say which source failed
        raise DataSourceError(
            source, f"could not load from the Hub or folder ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        if silenced:
            datasets.disable_progress_bars()


def _load_audiofolder(source: str, options: LoadOptions) -> Any:
    import datasets

    return datasets.DatasetDict({"train": _audiofolder_dataset(Path(source).expanduser())})


def _load_protocol(source: str, options: LoadOptions) -> Any:
    import datasets

    return datasets.DatasetDict({"train": _protocol_dataset(Path(source).expanduser())})


for _kind in (
    SourceKind("embedded", "the generated offline corpus", lambda s: s == "embedded", _load_embedded),
    SourceKind("parquet", "a parquet file, or a folder of them", _is_parquet, _load_parquet),
    SourceKind(
        "audiofolder",
        "a folder with real/ and fake/ (or bonafide/, spoof/) sub-folders",
        _is_audiofolder,
        _load_audiofolder,
    ),
    SourceKind(
        "protocol", "an ASVspoof-style protocol file (paths relative to it)", _is_protocol, _load_protocol
    ),
    SourceKind(
        "hub", "a Hub dataset id (owner/name) or a folder laid out like a Hub repository", _is_hub, _load_hub
    ),
):
    register_source_kind(_kind)
del _kind


def _is_utf8(name: str) -> bool:
    """False for a file name holding bytes that are not UTF-8 (surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable_name(name: str) -> str:
    """``name`` with bytes that are not UTF-8 shown as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _audiofolder_dataset(root: Path) -> Any:
    import datasets

    rows: list[dict[str, Any]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = normalize_label_name(sub.name)
        except ValueError:
            continue
        for f in sorted(sub.rglob("*")):
            # broken and looping links are kept: the audio check then reports them by name
            if f.suffix.lower() in AUDIO_EXTENSIONS and (f.is_file() or f.is_symlink()):
                clip_id = str(f.relative_to(root).with_suffix("")).replace(os.sep, "/")
                audio: dict[str, Any] = {"bytes": None, "path": str(f)}
                if not _is_utf8(str(f)):  # Arrow stores UTF-8 only: keep the bytes, show the name escaped
                    audio = {"bytes": f.read_bytes() if f.is_file() else b"", "path": _printable_name(str(f))}
                    clip_id = _printable_name(clip_id)
                rows.append({"audio": audio, "label": label, "clip_id": clip_id})
    if not rows:
        raise DataSourceError(
            str(root),
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under real/fake or bonafide/spoof subfolders",
        )
    return datasets.Dataset.from_list(rows)


def _protocol_attack(parts: Sequence[str]) -> str:
    """The attack column of a protocol line: the field just before the bonafide/spoof key
    (ASVspoof 2019, 2021 and 5 layouts), kept as given (``"A01"``, ``"A19"``, ``"TTS_3"``...);
    ``"-"`` when the line has none."""
    key_at = max(i for i, p in enumerate(parts) if p.lower() in ("bonafide", "spoof"))
    if key_at >= 3 and parts[key_at - 1] != "-":
        return parts[key_at - 1]
    return next((p for p in parts[2:key_at] if re.fullmatch(r"A\d\d", p)), "-")


def _protocol_dataset(protocol: Path) -> Any:
    """Parse an ASVspoof-style protocol: whitespace columns with a file id and a bonafide/spoof key."""
    import datasets

    folders = [protocol.parent / "flac", protocol.parent / "wav", protocol.parent]
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(protocol.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        keys = [p for p in parts if p.lower() in ("bonafide", "spoof")]
        if len(parts) < 2 or not keys:
            raise DataSourceError(
                str(protocol), f"line {n}: expected 'speaker file ... attack bonafide|spoof', got {line!r}"
            )
        file_id = parts[1]
        attack = _protocol_attack(parts)
        path = next(
            (
                d / f"{file_id}{ext}"
                for d in folders
                for ext in (".flac", ".wav")
                if (d / f"{file_id}{ext}").is_file()
            ),
            None,
        )
        if path is None:
            raise DataSourceError(
                str(protocol),
                f"line {n}: audio for {file_id!r} not found in {', '.join(str(d) for d in folders)}",
            )
        rows.append(
            {
                "audio": {"bytes": None, "path": str(path)},
                "label": keys[-1].lower(),
                "clip_id": file_id,
                "utterance_id": file_id,
                "speaker_id": parts[0],
                "attack": attack,
            }
        )
    if not rows:
        raise DataSourceError(str(protocol), "protocol file has no entries")
    return datasets.Dataset.from_list(rows)
